"""Fine-tuning: full, neuron-only (the paper's method) and LoRA, with one training loop.

    history = tn.finetune(model, tok, task.train, neurons=ns)            # only ns's neurons change
    history = tn.finetune(model, tok, task.train, method="full")          # every parameter
    history = tn.finetune(model, tok, task.train, method="lora")          # peft LoRA, merged back
    history = tn.finetune(model, tok, task.train, neurons=ns.random_like(ns, seed=1))  # baseline
    history = tn.finetune(model, tok, task.train, tn.TrainConfig(lr=1e-3, steps=40), neurons=ns)

The settings are a ``TrainConfig`` (keywords such as ``lr=1e-3`` change the given one or the
default); LoRA's are a ``LoRAConfig`` (``lora=``). The training loss is ``config.loss``, by
default ``loss.answer_losses``, averaged over examples (each example's mean answer-token NLL, in
nats), the loss attribution differentiates; the history calls it ``loss``.
The dev NLL in the history, ``dev_nll``, is what ``tn.evaluate`` reports as ``nll``: nats per
answer token over all answer tokens of the split (``loss.answer_nll``). The optimizer is AdamW with a
``transformers`` learning-rate schedule. The model is modified in place and left in eval mode.
The loop (``train_loop``) runs on an ``accelerate.Accelerator``: mixed precision
(``mixed_precision="bf16"``), gradient checkpointing, and data parallelism over several
processes (``accelerate launch`` / ``torchrun``), every method alike.

How neuron-only training works, and why. Every parameter of the model is frozen. For each site
with selected neurons, a trainable float32 matrix ``R`` (n_selected, in_features [+ 1 bias]) holds
the selected rows (``Site.read``'s layout), and a ``tn.trace`` edit (``hooks.Edit.replace``)
recomputes those output units from the module's input, ``F.linear(x, R[:, :in], R[:, in])``, and
writes them over the frozen module's values. So:

- only the ``R`` matrices get gradients and optimizer state: AdamW's two moments cost
  ``2 x selected rows x (in + 1)`` numbers, the selected fraction of full fine-tuning's state,
  and weight decay can only touch selected rows;
- a step costs no more than a full fine-tuning step: frozen weights get no weight gradients;
- every other parameter is bit-identical after training, by construction (they are never
  written); at the end ``Site.write`` merges the ``R`` rows into the weights and the hooks go.

Act units (``layers.3.mlp.act``, the FFN's intermediate activation) own rows of the input
projections and a column of the output projection; their ``R`` holds all of them
(``Site.read``). The input-projection rows are recomputed as above (the model's own activation
code then combines them), and the output projection's output gets ``a_sel @ (C - C0)`` added,
``C`` the trainable columns and ``C0`` their starting values: exactly zero until ``C`` moves,
and its gradient with respect to ``C`` is the gradient of the columns themselves.
Because an act unit shares entries with the linear sites of its layer, a neuron set may not
select both in one layer.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from ..core.layout import family_of, layout_of
from ..core.placement import only_trainable
from ..hooks.tracing import Edit, trace
from ..neurons.neuron_set import NeuronSet
from ..tasks import Split, encode
from .config import LoRAConfig, TrainConfig
from .loop import fit

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

METHODS = ("full", "neurons", "lora")
# finetune's keywords of old for LoRA's settings -> the LoRAConfig field each one sets.
OLD_LORA_KEYWORDS = {
    "lora_r": "r",
    "lora_alpha": "alpha",
    "lora_target": "target",
    "lora_dropout": "dropout",
}


def finetune(
    model: nn.Module,
    tok: PreTrainedTokenizerBase,
    data: Split,
    config: TrainConfig | None = None,
    *,
    neurons: NeuronSet | None = None,
    method: str | None = None,
    lora: LoRAConfig | None = None,
    dev: Split | None = None,
    callback: Callable[[int], None] | None = None,
    **overrides: Any,
) -> pd.DataFrame:
    """Train ``model`` in place on ``data``; return the training history.

    Args:
        model: a causal LM (any dtype; neuron rows are trained in float32 and cast back).
        tok: its tokenizer.
        data: the training split, e.g. ``task.train`` (or a slice of one).
        config: how to train (``TrainConfig``: steps or epochs, lr, batch size, schedule, seed,
            mixed precision, the loss, ...); None: ``TrainConfig()``.
        neurons: the neurons to train (method ``"neurons"``); e.g. ``rel.top_k(0.1)`` or a random
            baseline ``NeuronSet.random_like(ns, seed)``.
        method: ``"neurons"`` (default when ``neurons`` is given), ``"full"`` (default otherwise)
            or ``"lora"`` (peft LoRA as ``lora`` says, merged into the weights at the end).
        lora: LoRA's settings (``LoRAConfig``: rank, alpha, target modules, dropout), read by
            ``method="lora"`` only; None: ``LoRAConfig()``.
        dev: a split whose answer NLL (nats per answer token, as ``tn.evaluate`` reports it) is
            measured before training, every ``config.eval_every`` steps and at the end (all of
            it: pass a slice such as ``task.dev[:64]`` to keep it cheap).
        callback: called as ``callback(step)`` after every optimizer step (1-based), with the
            model as trained so far (neuron-only training: the trained rows are spliced in by
            the hooks, so evaluating ``model`` inside the callback sees them). Whatever it does
            to the model must be undone before it returns (``tn.evaluate`` restores the
            training flag); it is how a budget sweep scores one run at several step counts.
        **overrides: settings of ``config`` to change for this call (``config.replace``), e.g.
            ``finetune(model, tok, data, neurons=ns, lr=1e-3, steps=4)``; a name that is no
            setting is a TypeError, raised before any work. The keywords of old ``lora_r``,
            ``lora_alpha``, ``lora_target`` and ``lora_dropout`` set ``lora``'s fields.

    Returns:
        DataFrame with one row per optimizer step: ``step`` (1-based), ``loss`` (mean of
        ``config.loss`` over the step's examples: answer NLL, nats), ``lr``, ``seconds`` (wall
        time of the step); plus, with ``dev``, rows with ``step`` and ``dev_nll`` (nats;
        ``loss`` is NaN there). ``attrs`` holds ``method``, ``trainable_parameters``,
        ``optimizer_state_numel`` and ``optimizer_state_bytes`` (AdamW state: moments and step
        counters), ``steps``, ``examples_per_step`` (the global batch), ``seed``,
        ``mixed_precision`` and ``processes``.

    Several processes (``accelerate launch`` or ``torchrun``, one per GPU): with a
    ``torch.distributed`` group of W > 1 processes (made by the accelerator from the launcher's
    environment if the script has not made one), every process must call ``finetune`` with the
    same model weights, data and options (checked before any work); each step's batch is split
    over them and their gradients summed (``train_loop``), so every process takes the same
    optimizer step and ends with the same weights: the one-process result up to float
    rounding. The model is moved to the process's own device (``accelerator.device``) first.

    The model's ``requires_grad`` flags are restored and it is left in eval mode. If training
    stops early (an error, or a KeyboardInterrupt in a notebook), the model keeps the updates
    made so far, in every method, and is still a plain model without hooks or adapters.
    """
    lora = _lora_settings(lora, overrides)
    config = (config or TrainConfig()).replace(**overrides)
    method = _resolve_method(method, neurons)
    if method == "neurons":
        assert neurons is not None  # _resolve_method: "neurons" comes with a set
        neurons.check_fits(model)
        if len(neurons) == 0:
            raise ValueError("the neuron set is empty: there is nothing to train")
        _check_no_shared_parameters(model, neurons)

    encoded = encode(tok, data, max_length=config.max_length)
    if len(encoded) == 0:
        raise ValueError("the training data is empty; pass a non-empty split")
    dev_encoded = encode(tok, dev, max_length=config.max_length) if dev is not None else None
    if method == "neurons":
        trainable = _neuron_rows(model, neurons)  # type: ignore[arg-type]  # checked above
    elif method == "lora":
        trainable = _lora_adapters(model, lora)
    else:
        trainable = _full_parameters(model)
    selected = neurons and [(name, idx.tolist()) for name, idx in neurons.indices.items()]
    history = fit(
        model,
        tok,
        encoded,
        trainable,
        config,
        dev_encoded=dev_encoded,
        agree={"method": method, "neurons": selected},
        desc=f"finetune ({method})",
        callback=callback,
    )
    history.attrs["method"] = method
    return history


def lora_targets(model: nn.Module) -> list[str]:
    """Default LoRA target module names: the family's FFN linears, then its attention
    projections, e.g. ``["gate_proj", "up_proj", "down_proj", "q_proj", "v_proj"]`` for Llama."""
    family = family_of(model)
    paths = list(family.sites.values()) + [path for path, _ in family.fused_halves.values()]
    names = [path.split(".")[-1] for path in paths] + list(family.attention_targets)
    return list(dict.fromkeys(names))  # unique, in order


# --- checks ------------------------------------------------------------------------------------


def _check_no_shared_parameters(model: nn.Module, neurons: NeuronSet) -> None:
    """An act unit's parameters are entries of its layer's linear sites; one trainable copy of
    each entry is all neuron-only training can keep, so a layer may not select both."""
    sites = layout_of(model, "all").by_name
    selected = [sites[name] for name, idx in neurons.indices.items() if len(idx)]
    act_layers = {site.layer for site in selected if site.kind == "act"}
    for site in selected:
        if site.kind != "act" and site.layer in act_layers:
            raise ValueError(
                f"the neuron set selects units of both layers.{site.layer}.mlp.act and "
                f"{site.name}, which share parameters (an act unit owns rows of the input "
                "projections and a column of the output projection); train act units and the "
                "other kinds in separate runs"
            )


def _lora_settings(lora: LoRAConfig | None, overrides: dict) -> LoRAConfig:
    """``lora`` (default ``LoRAConfig()``) with the keywords of old (``lora_r=`` ...) that
    ``overrides`` holds applied, and taken out of ``overrides``."""
    old = {
        field: overrides.pop(key) for key, field in OLD_LORA_KEYWORDS.items() if key in overrides
    }
    return (lora or LoRAConfig()).replace(**old)


def _resolve_method(method: str | None, neurons: NeuronSet | None) -> str:
    if method is None:
        return "neurons" if neurons is not None else "full"
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    if method == "neurons" and neurons is None:
        raise ValueError(
            "method='neurons' needs the neurons to train: pass neurons=rel.top_k(0.1) (or a "
            "random baseline, NeuronSet.random_like(ns, seed))"
        )
    if method != "neurons" and neurons is not None:
        raise ValueError(
            f"neurons= is only used by method='neurons', but method={method!r}; drop one of them"
        )
    return method


# --- what is trained, per method: context managers that yield the trainable parameters --------


@contextlib.contextmanager
def _full_parameters(model: nn.Module):
    """Every parameter (tied weights once)."""
    params = list(model.parameters())
    for param in params:
        param.requires_grad_(True)
    yield params


@contextlib.contextmanager
def _neuron_rows(model: nn.Module, neurons: NeuronSet):
    """One trainable float32 row matrix per site with selected neurons, spliced into the
    forward pass by ``tn.trace`` edits; merged into the weights on exit (also after an error)."""
    sites = layout_of(model, "all").by_name
    trained, edits = [], {}  # trained: (site, idx, R)
    try:
        for name, idx in neurons.indices.items():
            if not len(idx):
                continue
            site = sites[name]
            rows = nn.Parameter(site.read(idx))  # (n_sel, n_params) float32, a copy
            trained.append((site, idx, rows))
            edits.update(_edits(site, idx, rows))
        # The model's own parameters frozen: only the rows are trained.
        with only_trainable(model), trace(model, keep=False, edit=edits):
            yield [rows for _, _, rows in trained]
    finally:
        for site, idx, rows in trained:
            site.write(idx, rows.detach())


def _edits(site, idx: torch.Tensor, rows: nn.Parameter) -> dict[str, Edit]:
    """{site name: Edit} that make the forward pass use the trainable ``rows`` (n_sel,
    n_params) of ``site``'s neurons ``idx``: a linear site's selected units are recomputed from
    its input; an act unit's units of each input projection likewise, from that projection's
    slice of ``rows``, and its output-projection column enters as a correction (module doc)."""
    if site.port == "output":
        return {site.name: Edit.replace(idx, _recompute(rows, 0, site))}
    *inputs, output = site.parts
    edits, start = {}, 0
    for part in inputs:
        edits[part.name] = Edit.replace(idx, _recompute(rows, start, part))
        start += part.n_params
    edits[output.name] = Edit.add(torch.arange(output.n_neurons), _column_change(rows, start, idx))
    return edits


def _recompute(rows: nn.Parameter, start: int, site):
    """``x -> x @ W_sel.T + b_sel`` from ``site``'s rows, the columns ``start:`` of the trainable
    ``rows`` (n_sel, in [+1]), in (out, in) layout for Linear and Conv1D alike; the result
    (..., n_sel) replaces the selected units."""
    n_in = site.in_features
    has_bias = site.n_params == n_in + 1

    def values(x: torch.Tensor) -> torch.Tensor:
        # Sliced on every call, so that each forward pass reads the current rows.
        weight = rows[:, start : start + n_in]
        bias = rows[:, start + n_in] if has_bias else None
        return F.linear(x.to(rows.dtype), weight, bias)

    return values


def _column_change(rows: nn.Parameter, start: int, idx: torch.Tensor):
    """``a -> a[..., idx] @ (C - C0)``, (..., d_model): what the trained output-projection
    columns ``C`` (the columns ``start:`` of ``rows``, one row per act unit) add to the frozen
    projection's output; ``C0`` are their starting values, so the change starts at exactly 0."""
    starting = rows[:, start:].detach().clone()  # (n_sel, d_model)
    units = idx.to(rows.device)

    def change(a: torch.Tensor) -> torch.Tensor:
        return a[..., units].to(rows.dtype) @ (rows[:, start:] - starting)

    return change


@contextlib.contextmanager
def _lora_adapters(model: nn.Module, lora: LoRAConfig):
    """peft LoRA adapters on the target modules; merged and unloaded on exit, so that ``model``
    is again a plain module of its own class holding the merged weights."""
    from peft import LoraConfig, get_peft_model

    targets = list(lora.target or lora_targets(model))
    matched = [m for name, m in model.named_modules() if name.split(".")[-1] in targets]
    if not matched:
        raise ValueError(
            f"no module of the model is named any of {targets}; pass lora=LoRAConfig(target=...)"
        )
    config = LoraConfig(
        r=lora.r,
        lora_alpha=lora.alpha,
        lora_dropout=lora.dropout,
        target_modules=targets,
        bias="none",
        # GPT-2's Conv1D stores its weight (in, out).
        fan_in_fan_out=any(type(m).__name__ == "Conv1D" for m in matched),
    )
    with quiet_peft():
        peft_model = get_peft_model(model, config)
    try:
        # peft injects the adapters into ``model`` itself, so answer_losses(model, ...) uses them.
        yield [p for p in peft_model.parameters() if p.requires_grad]
    finally:
        with quiet_peft():
            merged = peft_model.merge_and_unload()
        if merged is not model:  # not expected with peft's LoRA; keep finetune in place anyway
            model.load_state_dict(merged.state_dict())


@contextlib.contextmanager
def quiet_peft():
    """Hide a transformers deprecation warning that peft 0.21 triggers (not the user's doing)."""
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning
        )
        yield
