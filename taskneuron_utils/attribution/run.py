"""Relevance of every FFN neuron on a task's data: the paper's gradient x activation score.

For one example, with ``a[t, j]`` the output of neuron ``j`` at token position ``t`` (for an
``act`` site: the value the FFN's output projection reads) and ``L``
the example's causal-LM loss (mean negative log-likelihood, in nats, of its answer tokens;
prompt tokens are masked), the first-order Taylor estimate of the loss change when the neuron's
output is set to zero at every position is

    r_j = - sum_t dL/da[t, j] * a[t, j]          (the loss after zeroing ~= L + r_j)

and the neuron's relevance on that example is ``|r_j|``. Over a data set the default score is
the mean of ``|r_j|`` over examples (``aggregation="mean_abs"``); ``"abs_mean"`` is
``|mean of r_j|``, the absolute value of the summed total.

Cost: one forward and one backward per batch. Gradients are taken with respect to the site
outputs only (no parameter gradients), and the LM head runs on answer positions only, which
makes attribution cheaper than a plain training step. Running sums are plain float64 sums, so
shards from several processes (or a resumed run) add up exactly: ``rel_a + rel_b``.

Data parallel: when ``torch.distributed`` is initialised with more than one process (``torchrun``,
``accelerate launch``; gloo on CPU, nccl on GPU), ``attribute`` splits the batches among the
processes (batch ``i`` goes to rank ``i % world_size``), gathers the float64 partial sums and adds
them up in rank order on every rank, so every rank returns the same Relevance, equal to the
one-process result up to float64 rounding. Every rank must pass the same ``data``; this is
checked (number of examples, data hash, batch size, weights, sites) before any work.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from tqdm.auto import tqdm

from . import methods as attribution_methods
from ..core.layout import layout_of, weight_fingerprint
from .state import analysis_mode as _analysis_mode, fresh_state, resume, save_checkpoint
from ..errors import AttributionError
from .state import hash_encoded
from ..hooks.tracing import Trace, trace
from ..scoring.loss import answer_losses
from ..core.parallel import gather_sum, rank_and_world, rank_file, ranks_disagree
from ..core.placement import input_device
from ..neurons.relevance import AGGREGATIONS, Relevance  # noqa: F401  (re-exported: tn.Relevance)
from ..tasks import Split, collate, encode

if TYPE_CHECKING:
    from torch import nn
    from transformers import PreTrainedTokenizerBase

    from ..hooks.baselines import ActivationStats
    from ..neurons.neuron_set import NeuronSet


def attribute(
    model: nn.Module,
    tok: PreTrainedTokenizerBase,
    data: Split,
    *,
    method: str = "grad_x_act",
    kinds: str | Iterable[str] | None = None,
    steps: int = 16,
    baseline: str | ActivationStats | Split = "zero",
    statistic: str = "mean_abs",
    neurons: NeuronSet | Mapping[str, torch.Tensor] | None = None,
    batch_size: int = 8,
    max_length: int = 512,
    aggregation: str = "mean_abs",
    checkpoint: str | os.PathLike | None = None,
    checkpoint_every: int = 25,
    accumulate_dtype: torch.dtype | None = None,
    autocast: torch.dtype | str | None = None,
    progress: bool = True,
) -> Relevance:
    """Relevance of every FFN neuron of ``model`` on ``data``.

    Args:
        data: a task split (``suite["name"].train``, or a slice of one).
        method: ``"grad_x_act"`` (default, the paper's score), ``"integrated_gradients"``,
            ``"attribution_patching"``, ``"activation"`` or ``"ablation"`` (exact, on
            ``neurons`` only); definitions and costs in ``attribution_methods``. The method and
            its settings are recorded in ``provenance["method"]`` / ``["settings"]``.
        steps: points on the integration path (integrated_gradients only; >= 1).
        baseline: what a unit is moved to (integrated_gradients, attribution_patching,
            ablation): ``"zero"``, ``"mean"`` (over ``data``), ``tn.activation_stats(...)`` of
            a reference set, or a split of corrupted prompts paired with ``data``.
        statistic: ``"mean_abs"`` or ``"firing_rate"`` (the activation method).
        neurons: a NeuronSet or {site name: indices}: the units ablation measures (required
            there), or the sites integrated gradients computes; other units are NaN.
        kinds: which sites to score (``tn.ffn_sites(model, kinds)``): None, the default, is
            every linear site (gate, up, down / fc_in, fc_out); ``"act"`` the intermediate
            activation only; ``("gate", "up")``; ``"all"``. Top-k, deactivation, training and
            files all work on the Relevance's own sites.
        batch_size: examples per forward/backward pass.
        max_length: prompt + answer tokens; longer inputs are truncated (``tasks.encode``).
        checkpoint: a file to save running sums to every ``checkpoint_every`` batches
            (atomically). If it exists and belongs to the same model, data and options, the run
            resumes from it, and the result is identical to an uninterrupted run.
        accumulate_dtype: float64 by default (float32 on Apple's MPS, which lacks float64;
            float32 sums of |r| over N examples carry a relative error below N * 6e-8).
        autocast: None (default: every operation in the weights' own dtype) or
            ``torch.bfloat16`` / ``"bfloat16"`` (``torch.float16`` on GPUs): the forward and
            backward passes run under ``torch.autocast(device type, dtype)``, the weights as
            they are. Whatever the compute dtype, the products ``dL/da * a`` are taken in
            float32 and summed in ``accumulate_dtype``. ``provenance["compute"]`` records the
            weights' dtype and this; a checkpoint resumes only under the same autocast.

    Data parallel (``torch.distributed`` initialised, world size > 1): every rank must call
    ``attribute`` with the same model weights, ``data`` and options; rank ``r`` attributes
    batches ``r, r + w, r + 2w, ...`` and the sums are gathered in float64 and added in rank
    order, so every rank returns the identical Relevance (the one-process result up to float64
    rounding). Ranks that disagree on the data, batch size, weights or sites raise
    ``AttributionError`` on every rank before any work. With ``checkpoint``, rank ``r`` of ``w``
    keeps its own partial sums in ``<stem>.rank{r}-of-{w}<suffix>`` next to ``checkpoint``;
    resuming needs the same number of processes (a checkpoint of another world size is refused).
    An error inside one rank's batches (e.g. non-finite gradients) stops that rank only; the
    launcher (torchrun, accelerate) then ends the others.

    Returns:
        Relevance with one score a neuron for every site of ``tn.ffn_sites(model, kinds)``.

    Raises:
        SiteKindError: a kind the model does not have.
    """
    autocast = _autocast_dtype(autocast)
    layout = layout_of(model, kinds)
    sites = list(layout.sites)
    encoded = encode(tok, data, max_length=max_length)
    if len(encoded) == 0:
        raise AttributionError(
            f"no examples to attribute on ({_describe(data)} is empty); pass a non-empty split"
        )
    plan = attribution_methods.plan(
        method,
        model,
        tok,
        data,
        encoded,
        sites,
        steps=steps,
        baseline=baseline,
        statistic=statistic,
        neurons=neurons,
        max_length=max_length,
    )  # every option checked, no work yet
    device = input_device(model)
    if accumulate_dtype is None:
        accumulate_dtype = torch.float32 if device.type == "mps" else torch.float64
    provenance = {
        "model": layout.model,
        "weights": weight_fingerprint(model),
        "task": getattr(getattr(data, "task", None), "name", None),
        "split": getattr(data, "name", None),
        "data_hash": hash_encoded(encoded),
        "n_examples": len(encoded),
        "max_length": max_length,
        "sites": len(sites),
        "kinds": list(layout.kinds),
        "relevance": (plan.description or "|sum_t dL/da * a| per example")
        + ", L = mean answer-token NLL",
        "method": method,
        "settings": plan.settings,
        "compute": {
            "weights": "+".join(
                sorted({str(p.dtype).removeprefix("torch.") for p in model.parameters()})
            ),
            "autocast": None if autocast is None else str(autocast).removeprefix("torch."),
        },
    }
    rank, world = rank_and_world()
    if world > 1:
        differs = ranks_disagree(
            {
                "n_examples": provenance["n_examples"],
                "data_hash": provenance["data_hash"],
                "batch_size": batch_size,
                "max_length": provenance["max_length"],
                "weights": provenance["weights"],
                "method": f"{method} {plan.settings}",
                "sites": str([(site.name, site.n_neurons) for site in sites]),
            },
            device,
        )
        if differs:
            raise AttributionError(
                f"data-parallel attribution: the {world} processes disagree on "
                f"{', '.join(differs)}; every rank must pass the same model, data and options "
                "to attribute (each attributes its own share of the batches)"
            )
    if checkpoint is not None:
        checkpoint, others = rank_file(checkpoint, rank, world)
        if others:
            raise AttributionError(
                f"checkpoint {checkpoint} was made with another number of processes "
                f"({', '.join(others)}); this run has {world}. Resume with the same number of "
                "processes, or delete those files or pass another checkpoint path. They were "
                "left untouched."
            )
    state = fresh_state(sites, device, accumulate_dtype, plan.measured, plan.extra)
    if checkpoint is not None and Path(checkpoint).exists():
        state = resume(checkpoint, provenance, batch_size, sites, device, accumulate_dtype)

    starts = range(0, len(encoded), batch_size)
    mine = range(rank, len(starts), world)  # this rank's batches (all of them in one process)
    bar = tqdm(
        total=len(mine),
        desc=f"attribution {provenance['task'] or ''}".strip(),
        disable=not progress or rank != 0,
        initial=len(range(rank, state["batches_done"], world)),
    )
    compute = (
        contextlib.nullcontext
        if autocast is None
        else lambda: torch.autocast(device.type, dtype=autocast)
    )
    with _analysis_mode(model), compute():
        plan.prepare(model, tok, encoded, batch_size)  # the mean over the data, if asked for
    with _analysis_mode(model), compute(), _site_trace(model, sites, plan) as tr:
        for batch_index, start in enumerate(starts):
            if batch_index < state["batches_done"] or batch_index % world != rank:
                continue
            batch = collate(encoded[start : start + batch_size], tok.pad_token_id)
            if plan.run is None:
                _accumulate(model, batch, tr, state, device, batch_index)
            else:
                plan.run(model, batch, start, tr, state, device, batch_index)
            state["batches_done"] = batch_index + 1
            bar.update(1)
            own_done = len(range(rank, state["batches_done"], world))
            if checkpoint is not None and own_done % checkpoint_every == 0:
                save_checkpoint(checkpoint, state, provenance, batch_size)
    bar.close()
    if checkpoint is not None:
        save_checkpoint(checkpoint, state, provenance, batch_size)
    if world > 1:  # every rank ends with the identical float64 total
        names = [site.name for site in sites]
        totals = [state[t][n] for t in ("sum_abs", "sum_signed") for n in names]
        totals += list(state["extra"].values())
        summed, (state["n_examples"], state["n_tokens"]) = gather_sum(
            totals, [state["n_examples"], state["n_tokens"]], device
        )
        pieces = iter(summed)
        for total in ("sum_abs", "sum_signed"):
            state[total] = {name: next(pieces) for name in names}
        state["extra"] = {name: next(pieces) for name in state["extra"]}
    plan.finish(state, provenance)
    return Relevance(
        state["sum_abs"],
        state["sum_signed"],
        state["n_examples"],
        state["n_tokens"],
        provenance,
        aggregation,
    )


def per_example_relevance(
    model, tok, data: Split, *, kinds=None, max_length: int = 512
) -> dict[str, torch.Tensor]:
    """Signed Taylor estimates ``r_j`` for every example: {site: float64 (n_examples, n_neurons)}.

    The same computation as ``attribute`` (on the sites of ``kinds``, as there), kept per
    example; used to compare with exact ablation. Memory grows with the data, so use it on
    small samples.
    """
    sites = list(layout_of(model, kinds).sites)
    encoded = encode(tok, data, max_length=max_length)
    device = input_device(model)
    rows = {site.name: [] for site in sites}
    with _analysis_mode(model), trace(model, sites, grad=True) as tr:
        for example in encoded:
            batch = collate([example], tok.pad_token_id)
            state = fresh_state(sites, device, torch.float64)
            _accumulate(model, batch, tr, state, device, 0)
            for site in sites:
                rows[site.name].append(state["sum_signed"][site.name].cpu())
    return {name: torch.stack(values) for name, values in rows.items()}


def _accumulate(model, batch, tr: Trace, state: dict, device, batch_index: int) -> None:
    """One forward and one backward; adds this batch's per-example |r| and r to the sums."""
    batch = {key: value.to(device) for key, value in batch.items()}
    batch_size, length = batch["input_ids"].shape
    losses, n_tokens = answer_losses(model, batch)
    tr.backward(losses.sum())  # gradients of the site outputs only, no parameter gradients
    for name, record in tr.items():
        activation = record.output.detach().reshape(batch_size, length, -1)
        grad = record.grad.reshape(batch_size, length, -1)
        # r = -(dL/da . a): the first-order change of the loss when the output is zeroed.
        r = -_product(grad, activation).sum(dim=1)  # (B, n)
        if not torch.isfinite(r).all():
            raise AttributionError(
                f"non-finite gradients at {name} in batch {batch_index}; the model may "
                "overflow in this dtype: try dtype=torch.float32 or bfloat16 instead of float16"
            )
        # .to(sums): dtype and device (a device_map may run the site on another device).
        state["sum_abs"][name] += r.abs().sum(0).to(state["sum_abs"][name])
        state["sum_signed"][name] += r.sum(0).to(state["sum_signed"][name])
    state["n_examples"] += batch_size
    state["n_tokens"] += n_tokens
    tr.clear()


def _product(grad: torch.Tensor, activation: torch.Tensor) -> torch.Tensor:
    """``grad * activation`` in float32, (B, T, n). Float32 and contiguous (the usual case):
    written into ``grad``, which nothing reads after this (each site's gradient is its own
    tensor), so no (B, T, n) tensor is allocated per site; the values are the same bits."""
    if (
        grad.dtype == activation.dtype == torch.float32
        and grad.is_contiguous()
        and activation.is_contiguous()
    ):
        return grad.mul_(activation)
    return grad.float() * activation.float()


def _autocast_dtype(value) -> torch.dtype | None:
    """``attribute``'s ``autocast`` as a torch dtype, checked before any work."""
    if value is None:
        return None
    dtype = getattr(torch, value, None) if isinstance(value, str) else value
    if dtype not in (torch.bfloat16, torch.float16):
        raise ValueError(
            f"autocast must be None, torch.bfloat16 or torch.float16 (the "
            f"dtype the passes compute in; sums stay float64), got {value!r}"
        )
    return dtype


def _site_trace(model, sites, plan):
    """The trace attribute keeps open (outputs and gradients of every site) when the method
    reads it; methods that run their own passes get none."""
    if plan.run is None or plan.traced:
        return trace(model, sites, grad=True)
    return contextlib.nullcontext()


def _describe(data) -> str:
    task = getattr(getattr(data, "task", None), "name", None)
    return f"split {getattr(data, 'name', '?')!r} of task {task!r}" if task else "the data"
