"""Continual-learning methods for ``experiments.continual``: small strategy objects, one
interface, so that a user can add one.

    class MyMethod(CLMethod):
        name = "mine"
        def train(self, model, tok, task, train, config, stage): ...   # update model in place

A method sees each stage in turn: ``before_task`` (e.g. detect the task's neurons), ``train``
(update the model in place on the stage's training sample), ``after_task`` (e.g. store a Fisher,
an adapter's A matrices, the trained rows). ``evaluate`` scores a split (default ``tn.evaluate``;
W-NCFT overrides it: its inference mixes stored rows per input). ``state_dict`` /
``load_state_dict`` hold everything a method carries between stages (tensors, lists, dicts,
numbers), which the loop checkpoints next to the model weights. ``trainable_parameters`` and
``optimizer_state_bytes`` are those of the latest stage.

Every method trains on ``tn.finetune``'s loop (``train_tensors`` here, ``tn.finetune`` itself for
the neuron-level methods), so ``ContinualConfig.mixed_precision`` and
``gradient_checkpointing`` apply to all of them, and so does data parallelism when the run is
launched with ``torchrun`` (``continual``); EWC's and O-LoRA's penalties enter as the loop's
``penalty``.

Methods here (the neuron-level ones, ``random_neurons``, ``ncft``, ``wncft``, are in
``cl_neurons``; ``continual.CL_METHODS`` names them all):

    seqft           every parameter, task after task
    seqlora         one peft LoRA (FFN + q/v projections), trained through the whole sequence:
                    its A/B persist between stages (optimizer restarts each stage); for
                    evaluation it is merged, and unmerged before the next stage
    olora           O-LoRA (Wang et al. 2023): a new LoRA per task, penalty
                    lambda * sum_old sum_modules |A_old A_new^T| (entrywise L1 of the r x r
                    products; peft stores A as (r, in)); after the task the adapter is merged into
                    the weights (so earlier adapters are frozen) and its A matrices are kept
    ewc             full fine-tuning + (lambda / 2) sum_i F_i (theta_i - theta*_i)^2; F is the
                    diagonal empirical Fisher (mean squared gradient of the answer loss over
                    ``ewc_samples`` examples, one example a backward pass), summed over tasks;
                    theta* = the weights after the previous task
    replay          full fine-tuning on the task's sample mixed with a buffer of
                    ``replay_per_task`` examples of every earlier task (same steps)
"""

from __future__ import annotations

import contextlib

import pandas as pd
import torch

from ...core.placement import input_device, only_trainable
from ...tasks import Split, collate, encode, to_device
from ...training.config import TrainConfig
from ...training.loop import fit
from ...training.finetuning import quiet_peft, lora_targets
from ...scoring.evaluation import evaluate
from ...scoring.loss import answer_losses


def train_tensors(
    model, tok, encoded, params, config: TrainConfig, *, method, penalty=None
) -> pd.DataFrame:
    """Train ``params`` (tensors of ``model``, adapters included) on ``encoded`` the way
    ``tn.finetune`` trains, on its loop (``train_loop.fit``) with ``config`` (a
    ``TrainConfig``, e.g. ``ContinualConfig.train_config``: AdamW, the schedule, gradient
    clipping, batches from a stream of seeded shuffled epochs, mixed precision, gradient
    checkpointing; data parallel over processes), with ``penalty()`` (None, or () -> scalar
    tensor) added to each step's mean loss. ``method`` names the method for the ranks'
    agreement check and the progress bar. Returns the history (``attrs``:
    ``trainable_parameters``, ``optimizer_state_bytes``, ...)."""
    return fit(
        model,
        tok,
        encoded,
        only_trainable(model, params),
        config,
        penalty=penalty,
        agree={"method": method},
        desc=method,
    )


class CLMethod:
    """The interface; ``seqft`` behaviour by default (every parameter, no memory)."""

    name = "seqft"

    def __init__(self, config):
        self.config = config
        self.trainable_parameters = 0
        self.optimizer_state_bytes = 0

    def before_task(self, model, tok, task, stage: int) -> None:
        """Called before ``train`` at every stage (0-based)."""

    def train(self, model, tok, task, train: Split, stage: int) -> None:
        """Update ``model`` in place on ``train`` (the stage's sample of the task's train split)."""
        params = [p for p in model.parameters()]
        self._run(model, tok, encode(tok, train, max_length=self.config.max_length), params, stage)

    def after_task(self, model, tok, task, train: Split, stage: int) -> None:
        """Called after ``train``."""

    def evaluate(self, model, tok, split: Split, **options) -> dict:
        """``tn.evaluate`` at the sequence's batch size and length; ``options`` go to it."""
        config = self.config
        return evaluate(
            model,
            tok,
            split,
            batch_size=config.eval_batch_size,
            max_length=config.max_length,
            progress=False,
            **options,
        )

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass

    def lr(self) -> float:
        return dict(self.config.method_lrs).get(self.name, self.config.lr)

    def train_config(self, stage: int) -> TrainConfig:
        """How stage ``stage`` trains: the method's lr, seed ``config.seed + stage``."""
        return self.config.train_config(lr=self.lr(), seed=self.config.seed + stage)

    def _run(self, model, tok, encoded, params, stage, penalty=None):
        history = train_tensors(
            model,
            tok,
            encoded,
            params,
            self.train_config(stage),
            method=self.name,
            penalty=penalty,
        )
        self.trainable_parameters = history.attrs["trainable_parameters"]
        self.optimizer_state_bytes = history.attrs["optimizer_state_bytes"]


class SeqFT(CLMethod):
    name = "seqft"


class Replay(CLMethod):
    """Full fine-tuning on the task's sample plus ``config.replay_per_task`` stored examples of
    every earlier task (the first ones of its sample; they keep their own instruction)."""

    name = "replay"

    def __init__(self, config):
        super().__init__(config)
        self.buffer: list[dict] = []  # {"instruction", "input", "output"}

    def train(self, model, tok, task, train, stage):
        encoded = encode(tok, train, max_length=self.config.max_length)
        for rec in self.buffer:
            encoded += encode(
                tok,
                [{"input": rec["input"], "output": rec["output"]}],
                max_length=self.config.max_length,
                instruction=rec["instruction"],
            )
        self._run(model, tok, encoded, list(model.parameters()), stage)

    def after_task(self, model, tok, task, train, stage):
        for ex in list(train)[: self.config.replay_per_task]:
            self.buffer.append(
                {"instruction": task.instruction, "input": ex.input, "output": ex.output}
            )

    def state_dict(self):
        return {"buffer": list(self.buffer)}

    def load_state_dict(self, state):
        self.buffer = list(state["buffer"])


class EWC(CLMethod):
    """Elastic weight consolidation with a diagonal empirical Fisher, summed over tasks."""

    name = "ewc"

    def __init__(self, config):
        super().__init__(config)
        self.fisher: dict[str, torch.Tensor] = {}
        self.anchor: dict[str, torch.Tensor] = {}

    def train(self, model, tok, task, train, stage):
        named = dict(model.named_parameters())
        lam = self.config.ewc_lambda

        def penalty():
            return (
                lam
                / 2
                * sum(
                    (self.fisher[n] * (named[n] - self.anchor[n]) ** 2).sum() for n in self.fisher
                )
            )

        encoded = encode(tok, train, max_length=self.config.max_length)
        # No Fisher before the first task is done: nothing to hold on to.
        self._run(
            model, tok, encoded, list(named.values()), stage, penalty if self.fisher else None
        )

    def after_task(self, model, tok, task, train, stage):
        encoded = encode(
            tok,
            list(train)[: self.config.ewc_samples],
            max_length=self.config.max_length,
            instruction=task.instruction,
        )
        named = dict(model.named_parameters())
        device = input_device(model)
        fisher = {n: torch.zeros_like(p, dtype=torch.float32) for n, p in named.items()}
        with only_trainable(model, named.values()):
            for e in encoded:
                batch = to_device(collate([e], tok.pad_token_id), device)
                model.zero_grad(set_to_none=True)
                answer_losses(model, batch)[0].sum().backward()
                for n, p in named.items():
                    if p.grad is not None:
                        fisher[n] += p.grad.float() ** 2 / len(encoded)
            model.zero_grad(set_to_none=True)
        for n in fisher:
            self.fisher[n] = self.fisher.get(n, 0) + fisher[n]
            self.anchor[n] = named[n].detach().clone()

    def state_dict(self):
        return {"fisher": self.fisher, "anchor": self.anchor}

    def load_state_dict(self, state):
        self.fisher, self.anchor = dict(state["fisher"]), dict(state["anchor"])


# --- LoRA methods -------------------------------------------------------------------------------


@contextlib.contextmanager
def _peft(model, config, seed: int):
    """``model`` with a fresh LoRA (initialised from ``seed``, global RNG untouched); yields
    {module name in ``model``: LoRA layer}; on exit the adapter is merged into the weights."""
    from peft import LoraConfig, get_peft_model

    targets = list(config.lora_target or lora_targets(model))
    lora = LoraConfig(
        r=config.lora_r,
        lora_alpha=config.lora_alpha,
        lora_dropout=0.0,
        target_modules=targets,
        bias="none",
    )
    with quiet_peft(), torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        peft_model = get_peft_model(model, lora)
    try:
        yield {
            name.replace("base_model.model.", "", 1): m
            for name, m in peft_model.named_modules()
            if hasattr(m, "lora_A") and "default" in getattr(m, "lora_A", {})
        }
    finally:
        with quiet_peft():
            peft_model.merge_and_unload()


class SeqLoRA(CLMethod):
    """One LoRA trained through the whole sequence (its A/B persist across stages)."""

    name = "seqlora"

    def __init__(self, config):
        super().__init__(config)
        self.adapter: dict[str, torch.Tensor] = {}  # "<module>.A" / ".B" -> tensor
        self.scaling = config.lora_alpha / config.lora_r

    def _unmerge(self, model):
        modules = dict(model.named_modules())
        with torch.no_grad():
            for key in [k for k in self.adapter if k.endswith(".A")]:
                name = key[:-2]
                weight = modules[name].weight
                delta = self.scaling * self.adapter[name + ".B"] @ self.adapter[key]
                weight.copy_((weight.float() - delta).to(weight.dtype))

    def train(self, model, tok, task, train, stage):
        if self.adapter:
            self._unmerge(model)
        encoded = encode(tok, train, max_length=self.config.max_length)
        # The same initialisation every stage; from the second stage on, the stored A/B replace it.
        with _peft(model, self.config, seed=self.config.seed) as layers:
            for name, m in layers.items():
                if name + ".A" in self.adapter:
                    with torch.no_grad():
                        m.lora_A["default"].weight.copy_(self.adapter[name + ".A"])
                        m.lora_B["default"].weight.copy_(self.adapter[name + ".B"])
            self._run(model, tok, encoded, _lora_params(layers), stage)
            for name, m in layers.items():
                self.adapter[name + ".A"] = m.lora_A["default"].weight.detach().float().clone()
                self.adapter[name + ".B"] = m.lora_B["default"].weight.detach().float().clone()

    def state_dict(self):
        return {"adapter": self.adapter}

    def load_state_dict(self, state):
        self.adapter = dict(state["adapter"])


def _lora_params(layers: dict) -> list[torch.Tensor]:
    """The trainable A and B matrices of every LoRA layer."""
    return [
        p for m in layers.values() for p in (m.lora_A["default"].weight, m.lora_B["default"].weight)
    ]


def olora_penalty(old_As: list[dict[str, torch.Tensor]], new_A: dict[str, torch.Tensor]):
    """O-LoRA's orthogonality loss: sum over earlier tasks and modules of the entrywise L1 norm
    of A_old A_new^T (A in peft's (r, in) layout); zero iff every new row is orthogonal to every
    old row."""
    total = torch.zeros(())
    for old in old_As:
        for name, a_new in new_A.items():
            if name in old:
                total = total + (old[name].to(a_new) @ a_new.T).abs().sum()
    return total


class OLoRA(CLMethod):
    """O-LoRA: a new LoRA per task, orthogonal (by penalty) to the earlier tasks' A subspaces;
    earlier adapters are merged into the weights after their task (frozen)."""

    name = "olora"

    def __init__(self, config):
        super().__init__(config)
        self.old_As: list[dict[str, torch.Tensor]] = []

    def train(self, model, tok, task, train, stage):
        encoded = encode(tok, train, max_length=self.config.max_length)
        with _peft(
            model, self.config, seed=self.config.seed + stage
        ) as layers:  # a new A each task
            new_A = {n: m.lora_A["default"].weight for n, m in layers.items()}
            lam = self.config.olora_lambda
            penalty = (lambda: lam * olora_penalty(self.old_As, new_A)) if self.old_As else None
            self._run(model, tok, encoded, _lora_params(layers), stage, penalty)
            self.old_As.append({n: a.detach().float().clone() for n, a in new_A.items()})

    def state_dict(self):
        return {"old_As": self.old_As}

    def load_state_dict(self, state):
        self.old_As = list(state["old_As"])
