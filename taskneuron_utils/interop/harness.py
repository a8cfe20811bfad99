"""An lm-evaluation-harness model: any loaded model, with a neuron set switched off or scaled.

Needs the ``lm-eval`` extra (``pip install "taskneuron_utils[lm-eval]"``). Importing this module
registers the model under the name ``taskneurons``; the harness has no plugin discovery, so run
its command line through ours, which imports it first::

    python -m taskneuron_utils.interop.harness run --model taskneurons \\
        --model_args pretrained=PATH,neurons=ns.safetensors,mode=zero \\
        --include_path harness_tasks --tasks tn_product_sentiment

or in Python: ``lm_eval.simple_evaluate(model=TaskNeuronsLM(model=m, tokenizer=tok,
neurons=ns), tasks=[...], task_manager=TaskManager(include_path=...))``.

``model_args``: ``pretrained`` (``tn.load_model``'s name or path; none: the embedded default; a
neuron-tuned model saved with ``save_pretrained`` is a path like any other), ``neurons`` (a
NeuronSet file, ``NeuronSet.save``), ``mode``: ``zero`` (``tn.deactivate``, activation hooks),
``zero_weights`` (``tn.deactivate(mode="weight")``), ``scale`` (``tn.scale`` by ``factor``, which
it needs), ``random`` (``NeuronSet.random_like(neurons, seed)`` switched off, ``seed`` default 0:
the baseline), ``none`` (the plain model); left out: ``zero`` with ``neurons``, ``none`` without;
``check_model`` (default true: a set made for another model is refused; false applies a set of
the same layout anyway, e.g. to a fine-tune of its model); ``batch_size`` (``auto``: 16),
``max_batch_size`` (a cap on it), ``max_length``, ``dtype``, ``device``, ``trust_remote_code``.

Every argument is checked before the model loads, each mistake a one-line error: an unknown key
(``neuron=``: "did you mean 'neurons'?"), a mode that needs ``neurons`` without them,
``factor`` / ``seed`` with a mode that does not use them, a ``neurons`` file made for another
model (its meta names the model it was made for; ``tn.core.model_name`` of the loaded model must
be that name). The results' ``config`` holds ``intervention`` (``get_model_info``): mode, the
set's file, fingerprint (``NeuronSet.fingerprint``), unit count and model, the units acted on and
their fingerprint (``random``: the drawn set), seed and factor: a results file says what was
switched off.

Scoring: ``loglikelihood`` tokenizes the context as ``tn.evaluate`` tokenizes a prompt (special
tokens only without a chat template, which writes its own) and the continuation in context
(the tokens of context + continuation past the context's, as ``tasks.answer_ids`` does), then
sums the continuation's log-probabilities from one right-padded forward pass per batch. On a
task from ``tn.export_lm_eval_task`` this gives ``tn.evaluate``'s option log-likelihoods, so
the harness's ``acc`` equals our ``accuracy`` (``tests/test_interop_harness.py``).
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from pathlib import Path

import torch
from lm_eval.api.model import LM
from lm_eval.api.registry import register_model
from tqdm.auto import tqdm

from ..scoring.generation import generate_answers, inference
from ..hooks.interventions import deactivate, scale
from ..scoring.loss import lm_head_logits
from ..neurons.neuron_set import NeuronSet
from ..core.placement import input_device
from ..tasks import collate, has_chat_template
from ..errors import did_you_mean
from ..tasks.encoding import Encoded
from ..core.layout import model_name
from ..core.models import DEFAULT_MODEL, load_model

logger = logging.getLogger(__name__)

MODES = ("none", "zero", "zero_weights", "scale", "random")


# What TaskNeuronsLM takes from ``--model_args`` (and as keywords). lm-eval adds batch_size,
# max_batch_size and device itself (``LM.create_from_arg_string``'s additional_config) and
# trust_remote_code with its ``--trust_remote_code`` flag.
MODEL_ARGS = (
    "pretrained",
    "neurons",
    "mode",
    "factor",
    "seed",
    "check_model",
    "batch_size",
    "max_batch_size",
    "max_length",
    "dtype",
    "device",
    "trust_remote_code",
    "model",
    "tokenizer",
)


def unknown_args_message(unknown, valid=MODEL_ARGS) -> str:
    """One line naming the unknown ``model_args`` keys, the nearest valid name of each and every
    valid name."""
    unknown = list(unknown)
    return (
        f"taskneurons: unknown model_args {', '.join(map(repr, unknown))}"
        f"{did_you_mean(unknown, valid)}; "
        f"the model_args are {', '.join(valid)}"
    )


def _resolve_mode(mode, neurons, factor, seed) -> str:
    """The mode to run (``auto``: ``zero`` with ``neurons``, ``none`` without), once it, the
    set and ``factor`` / ``seed`` go together; else a one-line ValueError."""
    mode = "none" if mode is None else mode  # the harness parses mode=none as None
    if mode == "auto":
        mode = "none" if neurons is None else "zero"
    if mode not in MODES:
        raise ValueError(f"taskneurons: mode must be one of {', '.join(MODES)}, got {mode!r}")
    if neurons is None and mode != "none":
        raise ValueError(
            f"taskneurons: mode={mode} switches off a neuron set, and no neurons= was given "
            "(a NeuronSet.save file); pass neurons=FILE, or mode=none for the plain model"
        )
    if factor is not None and mode != "scale":
        raise ValueError(f"taskneurons: factor= is for mode=scale, not mode={mode}")
    if mode == "scale" and factor is None:
        raise ValueError("taskneurons: mode=scale needs factor= (factor=0 is mode=zero)")
    if seed is not None and mode != "random":
        raise ValueError(f"taskneurons: seed= is for mode=random, not mode={mode}")
    return mode


def _same_model(recorded: str, name: str) -> bool:
    """Whether two model names name one model: equal, or two spellings of one local folder."""
    if recorded == name:
        return True
    a, b = Path(recorded).expanduser(), Path(name).expanduser()
    return a.exists() and b.exists() and a.resolve() == b.resolve()


@register_model("taskneurons")
class TaskNeuronsLM(LM):
    """The harness's LM interface over a transformers causal LM with an intervention applied
    to every request (``model_args`` in the module docstring). Every argument is checked before
    the model is loaded; ``get_model_info`` puts the intervention in the results' config."""

    def __init__(
        self,
        pretrained: str | None = None,
        neurons=None,
        mode: str | None = "auto",
        factor: float | None = None,
        seed: int | None = None,
        check_model: bool = True,
        batch_size: int | str = 16,
        max_batch_size: int | None = None,
        max_length: int = 2048,
        dtype: str | None = None,
        device: str | None = None,
        trust_remote_code: bool = False,
        model=None,
        tokenizer=None,
        **unknown,
    ):
        super().__init__()
        if unknown:
            raise TypeError(unknown_args_message(unknown))
        mode = _resolve_mode(mode, neurons, factor, seed)
        if model is not None:
            loading = {"pretrained": pretrained, "dtype": dtype, "device": device}
            given = [key for key, value in loading.items() if value is not None]
            given += ["trust_remote_code"] if trust_remote_code else []
            if given:
                raise ValueError(
                    f"taskneurons: {', '.join(given)} load a model, and model= is given; pass "
                    "one or the other"
                )
            if tokenizer is None:
                raise ValueError("taskneurons: model= needs tokenizer= too")
        elif tokenizer is not None:
            raise ValueError("taskneurons: tokenizer= goes with model=; pretrained= loads its own")
        source = None
        if isinstance(neurons, (str, os.PathLike)):
            source = str(neurons)
            neurons = NeuronSet.load(neurons)  # a bad file fails before the model loads
        elif neurons is not None and not isinstance(neurons, NeuronSet):
            raise TypeError(
                f"taskneurons: neurons= is a NeuronSet or its file, got {type(neurons).__name__}"
            )
        made_for = None if neurons is None else neurons.meta.get("model")
        if model is None:
            # load_model's name for the model (tn.core.model_name of what it returns)
            self._check_made_for(
                made_for,
                DEFAULT_MODEL if pretrained is None else str(pretrained),
                check_model,
                source,
            )
            if str(device or "").startswith("cuda") and not torch.cuda.is_available():
                # The harness's command line passes device="cuda" unless told otherwise.
                logger.warning(
                    "no CUDA device here: loading %s on the CPU", pretrained or "the default model"
                )
                device = None
            model, tokenizer = load_model(
                pretrained, dtype=dtype, device=device, trust_remote_code=trust_remote_code
            )
        self._check_made_for(made_for, model_name(model), check_model, source)
        if neurons is not None:
            neurons.check_fits(model)
        seed = 0 if seed is None and mode == "random" else seed
        applied = (
            NeuronSet.random_like(neurons, seed=int(seed or 0)) if mode == "random" else neurons
        )
        self.model, self.tok, self.neurons = model, tokenizer, applied
        self.mode, self.factor = mode, None if factor is None else float(factor)
        self.batch_size = 16 if str(batch_size).startswith("auto") else int(batch_size)
        if max_batch_size is not None:
            self.batch_size = min(self.batch_size, int(max_batch_size))
        self.max_length = int(max_length)
        self.intervention = {
            "mode": mode,
            "neurons": source or (None if neurons is None else neurons.name),
            "set_fingerprint": None if neurons is None else neurons.fingerprint(),
            "set_units": 0 if neurons is None else len(neurons),
            "set_model": made_for,
            "units": 0 if mode == "none" else len(applied),
            "fingerprint": None if mode == "none" else applied.fingerprint(),
            "seed": seed,
            "factor": self.factor,
            "model": model_name(model),
        }

    @staticmethod
    def _check_made_for(made_for, name: str, check_model: bool, source) -> None:
        """A set made for another model than ``name`` is refused (``check_model=False``: a set
        of the same layout is applied anyway, e.g. to a fine-tune of the model it was made for)."""
        if made_for is None or not check_model or _same_model(str(made_for), name):
            return
        raise ValueError(
            f"taskneurons: neurons={source or 'the NeuronSet'} was made for model "
            f"{made_for!r}, not {name!r}; detect the neurons on this model, or pass "
            "check_model=False to apply them anyway (same layout only)"
        )

    def get_model_info(self) -> dict:
        """What the results' config records besides ``model`` and ``model_args``: the
        intervention (mode, the set's fingerprint and unit count, the units acted on, seed,
        factor) and the model's name and dtype."""
        return {
            "intervention": dict(self.intervention),
            "model_name": model_name(self.model),
            "model_dtype": str(next(self.model.parameters()).dtype),
        }

    @contextlib.contextmanager
    def _intervened(self):
        """The model with the set switched off / scaled, restored on exit; no autograd."""
        edit: contextlib.AbstractContextManager
        if self.mode == "none":
            edit = contextlib.nullcontext()
        elif self.mode == "scale":
            assert self.factor is not None  # __init__ refuses scale without a factor
            edit = scale(self.model, self.neurons, self.factor)
        else:
            edit = deactivate(
                self.model,
                self.neurons,
                mode="weight" if self.mode == "zero_weights" else "activation",
            )
        with edit, inference(self.model):
            yield

    def _context_ids(self, context: str) -> list[int]:
        return self.tok(context, add_special_tokens=not has_chat_template(self.tok)).input_ids

    def _continuation_ids(self, context: str, continuation: str) -> list[int]:
        """The continuation's tokens in context: those of context + continuation past the
        context's when the context's tokens are a prefix of them, else its own tokens."""
        head = self.tok(context, add_special_tokens=False).input_ids
        whole = self.tok(context + continuation, add_special_tokens=False).input_ids
        if whole[: len(head)] == head and len(whole) > len(head):
            return whole[len(head) :]
        return self.tok(continuation, add_special_tokens=False).input_ids

    def loglikelihood(self, requests, disable_tqdm: bool = False) -> list[tuple[float, bool]]:
        """Per request (context, continuation): (summed log p of the continuation's tokens in
        nats, whether greedy decoding would produce all of them)."""
        pairs = []
        for request in requests:
            context, continuation = request.args
            prompt = self._context_ids(context) if context else [self._start_id()]
            answer = self._continuation_ids(context, continuation)
            keep = max(1, self.max_length - len(answer))  # drop the context's oldest tokens
            pairs.append((prompt[-keep:], answer))
        return self._score(pairs, disable_tqdm)

    def loglikelihood_rolling(self, requests, disable_tqdm: bool = False) -> list[float]:
        """Summed log p of each whole text, every token after a start token (no windows past
        ``max_length``: longer texts are refused)."""
        pairs = []
        for request in requests:
            (text,) = request.args[:1]
            ids = self.tok(text, add_special_tokens=False).input_ids
            if len(ids) + 1 > self.max_length:
                raise ValueError(
                    f"a rolling text of {len(ids)} tokens exceeds max_length={self.max_length}"
                )
            pairs.append(([self._start_id()], ids))
        return [total for total, _ in self._score(pairs, disable_tqdm)]

    def generate_until(self, requests, disable_tqdm: bool = False) -> list[str]:
        """Greedy continuations (``generation.generate_answers``), cut at the first ``until``
        string; ``max_gen_toks`` (default 256) new tokens at most."""
        outputs = []
        with self._intervened():
            for request in tqdm(requests, desc="taskneurons generate", disable=disable_tqdm):
                context, kwargs = request.args
                until = kwargs.get("until") or []
                until = [until] if isinstance(until, str) else list(until)
                text = generate_answers(
                    self.model,
                    self.tok,
                    [self._context_ids(context)],
                    max_new_tokens=int(kwargs.get("max_gen_toks", 256)),
                )[0]
                for stop in until:
                    text = text.split(stop)[0] if stop else text
                outputs.append(text)
        return outputs

    def _start_id(self) -> int:
        start = (
            self.tok.bos_token_id if self.tok.bos_token_id is not None else self.tok.eos_token_id
        )
        if start is None:
            raise ValueError(
                "the tokenizer has neither a BOS nor an EOS token to start a text with"
            )
        return start

    def _score(self, pairs: list[tuple[list[int], list[int]]], disable_tqdm: bool):
        results: list[tuple[float, bool] | None] = [None] * len(pairs)
        order = sorted(range(len(pairs)), key=lambda i: -len(pairs[i][0]) - len(pairs[i][1]))
        device = input_device(self.model)
        with self._intervened():
            for start in tqdm(
                range(0, len(order), self.batch_size), desc="taskneurons", disable=disable_tqdm
            ):
                rows = order[start : start + self.batch_size]
                batch = collate(
                    [Encoded(pairs[i][0] + pairs[i][1], len(pairs[i][0])) for i in rows],
                    self.tok.pad_token_id,
                    "right",
                )
                hidden = self.model.base_model(
                    input_ids=batch["input_ids"].to(device),
                    attention_mask=batch["attention_mask"].to(device),
                ).last_hidden_state
                # The LM head runs on the continuation positions only (the state at t predicts
                # token t + 1), as in tn.evaluate.
                at = torch.cat(
                    [torch.arange(len(pairs[i][0]) - 1, sum(map(len, pairs[i])) - 1) for i in rows]
                )
                row_of = torch.cat([torch.full((len(pairs[i][1]),), b) for b, i in enumerate(rows)])
                logits = lm_head_logits(
                    self.model, hidden[row_of.to(hidden.device), at.to(hidden.device)]
                )
                log_probs = torch.log_softmax(logits.float(), dim=-1)  # (answer tokens, V)
                target = torch.tensor(
                    [t for i in rows for t in pairs[i][1]], device=log_probs.device
                )
                token_lp = log_probs.gather(1, target[:, None])[:, 0].double()
                greedy = log_probs.argmax(-1) == target
                start_of = 0
                for i in rows:
                    n = len(pairs[i][1])
                    results[i] = (
                        float(token_lp[start_of : start_of + n].sum()),
                        bool(greedy[start_of : start_of + n].all()),
                    )
                    start_of += n
        return results


def main(argv: list[str] | None = None) -> None:
    """The harness's command line (``lm-eval ...``) with the ``taskneurons`` model registered."""
    from lm_eval.__main__ import cli_evaluate

    if argv is not None:
        sys.argv = [sys.argv[0], *argv]
    cli_evaluate()


if __name__ == "__main__":
    main()
