"""Relevance of every FFN neuron on a task's data: the paper's gradient x activation score.

For one example, with ``a[t, j]`` the output of neuron ``j`` at token position ``t`` (for an
``act`` site: the value the FFN's output projection reads) and ``L``
the example's causal-LM loss (mean negative log-likelihood, in nats, of its answer tokens;
prompt tokens are masked), the first-order Taylor estimate of the loss change when the neuron's
output is set to zero at every position is

    r_j = - sum_t dL/da[t, j] * a[t, j]          (the loss after zeroing ~= L + r_j)

and the neuron's relevance on that example is ``|r_j|``. Over a data set the default score is
the mean of ``|r_j|`` over examples (``aggregation="mean_abs"``); ``"abs_mean"`` is
``|mean of r_j|``, the absolute value of the summed total; ``"signed"`` the mean of ``r_j``,
units that support the answer first. Other methods (``method=``), the contrastive loss
(``metric="logit_diff"``, minus the logit difference of minimal pairs) and RelP: see
``attribution.methods``, ``attribution.metrics`` and ``attribution.relp``.

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
import copy
import inspect
import os
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from tqdm.auto import tqdm

from ..core.layout import layout_of, weight_fingerprint
from ..core.parallel import rank_and_world, rank_file, ranks_disagree
from ..core.placement import input_device
from ..errors import AttributionError
from ..hooks.tracing import trace
from ..neurons.relevance import Relevance
from ..tasks import Split, collate, encode, to_device
from .methods import Activation, AttributionPatching, GradXAct, Method
from .paths import ExactAblation, IntegratedGradients
from .relp import RelP
from .state import RunningSums, analysis_mode, hash_encoded

if TYPE_CHECKING:
    from torch import nn
    from transformers import PreTrainedTokenizerBase

# {name: class}, in the order the documentation lists them.
METHODS: dict[str, type[Method]] = {
    cls.name: cls
    for cls in (
        GradXAct,
        IntegratedGradients,
        AttributionPatching,
        RelP,
        Activation,
        ExactAblation,
    )
}
# What each option meant before methods were objects; passing it at this value changes nothing.
_NEUTRAL = {"baseline": "zero", "steps": 16, "statistic": "mean_abs", "neurons": None}


def attribute(
    model: nn.Module,
    tok: PreTrainedTokenizerBase,
    data: Split,
    *,
    method: str | Method = "grad_x_act",
    kinds: str | Iterable[str] | None = None,
    batch_size: int = 8,
    max_length: int = 512,
    aggregation: str = "mean_abs",
    checkpoint: str | os.PathLike | None = None,
    checkpoint_every: int = 25,
    accumulate_dtype: torch.dtype | None = None,
    autocast: torch.dtype | str | None = None,
    progress: bool = True,
    **options: Any,
) -> Relevance:
    """Relevance of every FFN neuron of ``model`` on ``data``.

    Args:
        data: a task split (``suite["name"].train``, or a slice of one).
        method: a method object (``tn.attribution.IntegratedGradients(steps=8)``) or its
            name: ``"grad_x_act"`` (default, the paper's score), ``"integrated_gradients"``,
            ``"attribution_patching"``, ``"relp"`` (attribution patching with RelP's backward
            rules; every built-in family), ``"activation"`` or ``"ablation"``
            (exact, on ``neurons`` only); definitions and costs in ``attribution.methods``,
            ``attribution.paths`` and ``attribution.relp``. The method and its settings are
            recorded in ``provenance["method"]`` / ``["settings"]``.
        **options: with a method name, its own settings, passed to its class (a setting of
            another method is a ValueError naming the methods that take it):
            ``baseline`` (integrated_gradients, attribution_patching, ablation: ``"zero"``,
            ``"mean"`` over ``data``, ``tn.activation_stats(...)`` of a reference set, or a
            split of corrupted prompts paired with ``data``; relp as attribution_patching);
            ``metric`` (every method but activation: ``"nll"``, the default, the mean
            answer-token NLL, or ``"logit_diff"``, ``L = -(logit(A_1) - logit(B_1))`` of
            minimal pairs, ``attribution.metrics``; it needs the alternatives,
            ``baseline=task.pairs(split)`` for Han et al.'s recipe or ``pairs=`` for a method
            with another baseline; pairs are checked before any work, one-line errors naming
            the example); ``pairs`` (with ``metric="logit_diff"``: the minimal-pair
            alternatives aligned with ``data``, when they are not the baseline); ``steps``
            (integrated_gradients,
            >= 1); ``statistic`` (activation: ``"mean_abs"`` or ``"firing_rate"``);
            ``neurons`` (a NeuronSet or {site name: indices}: the units ablation measures,
            required there, or the sites integrated gradients computes; other units are NaN);
            ``max_memory`` (integrated_gradients, ablation: bytes or ``"2GB"``, the budget
            one pass of stacked copies is sized by; default about grad x act's pass on the
            same batch, ``attribution.budget``; results do not depend on it); ``force``
            (every method: run even when the estimated work exceeds 200x grad x act's, or one
            pass the free memory; refused before any pass otherwise, ``attribution.budget``).
        kinds: which sites to score (``tn.ffn_sites(model, kinds)``): None, the default, is
            every linear site (gate, up, down / fc_in, fc_out); ``"act"`` the intermediate
            activation only; ``("gate", "up")``; ``"all"``. Top-k, deactivation, training and
            files all work on the Relevance's own sites.
        batch_size: examples per forward/backward pass.
        max_length: prompt + answer tokens; longer inputs are truncated (``tasks.encode``).
        aggregation: how the Relevance scores units, ``"mean_abs"`` (default), ``"abs_mean"``
            or ``"signed"`` (the mean signed score, units that support the answer first;
            ``neurons.relevance``); ``rel.top_k(k, aggregation=...)`` chooses again later.
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
    _check_positive(batch_size=batch_size, checkpoint_every=checkpoint_every)
    method = method_for(method, **options)
    autocast = _autocast_dtype(autocast)
    layout = layout_of(model, kinds)
    sites = list(layout.sites)
    encoded = encode(tok, data, max_length=max_length)
    if len(encoded) == 0:
        raise AttributionError(
            f"no examples to attribute on ({_describe(data)} is empty); pass a non-empty split"
        )
    method.bind(model, tok, data, encoded, sites, max_length, batch_size)  # checked, no work yet
    device = input_device(model)
    if accumulate_dtype is None:
        accumulate_dtype = torch.float32 if device.type == "mps" else torch.float64
    provenance = _provenance(model, layout, data, encoded, max_length, method, autocast)
    rank, world = rank_and_world()
    if world > 1:
        _check_ranks_agree(provenance, batch_size, method, sites, device, world)
    if checkpoint is not None:
        checkpoint = _rank_checkpoint(checkpoint, rank, world)
    sums = RunningSums.fresh(sites, device, accumulate_dtype, method.measured, method.extra)
    if checkpoint is not None and Path(checkpoint).exists():
        sums = RunningSums.resume(
            checkpoint, provenance, batch_size, sites, device, accumulate_dtype
        )
    compute = (
        contextlib.nullcontext
        if autocast is None
        else lambda: torch.autocast(device.type, dtype=autocast)
    )
    with analysis_mode(model), compute():
        method.prepare(model, tok, encoded, batch_size)  # the mean over the data, if asked for
    starts = range(0, len(encoded), batch_size)
    bar = tqdm(
        total=len(range(rank, len(starts), world)),  # this rank's batches: rank, rank + world, ...
        desc=f"attribution {provenance['task'] or ''}".strip(),
        disable=not progress or rank != 0,
        initial=len(range(rank, sums.batches_done, world)),
    )
    traced = trace(model, sites, grad=True) if method.traced else contextlib.nullcontext()
    with analysis_mode(model), compute(), traced as tr:
        for batch_index in range(sums.batches_done, len(starts)):
            if batch_index % world != rank:
                continue
            start = starts[batch_index]
            batch = collate(encoded[start : start + batch_size], tok.pad_token_id)
            method.step(model, to_device(batch, device), start, tr, sums, batch_index)
            sums.batches_done = batch_index + 1
            bar.update(1)
            own_done = len(range(rank, sums.batches_done, world))
            if checkpoint is not None and own_done % checkpoint_every == 0:
                sums.save(checkpoint, provenance, batch_size)
    bar.close()
    if checkpoint is not None:
        sums.save(checkpoint, provenance, batch_size)
    if world > 1:  # every rank ends with the identical float64 total
        sums.all_reduce(device)
    method.finish(sums, provenance)
    return Relevance(
        sums.sum_abs, sums.sum_signed, sums.n_examples, sums.n_tokens, provenance, aggregation
    )


def method_for(method: str | Method, **options) -> Method:
    """A fresh method object from a name of ``METHODS`` and its options (each checked against
    the class's signature: ``metric="logit_diff"`` on ``"activation"`` is a ValueError naming
    the methods that take ``metric``), or a copy of ``method`` (so that binding it to one run
    leaves the caller's object as it was)."""
    if isinstance(method, Method):
        if options:
            raise ValueError(
                f"pass {sorted(options)} to the method object ({type(method).__name__}(...)), "
                "not to attribute"
            )
        return copy.copy(method)
    if method not in METHODS:
        raise ValueError(f"method must be one of {tuple(METHODS)}, got {method!r}")
    takes = {name: set(inspect.signature(cls).parameters) for name, cls in METHODS.items()}
    for key, value in list(options.items()):
        if key in takes[method]:
            continue
        if _is_neutral(key, value):
            del options[key]  # the old signature's default: the method's own behaviour
            continue
        takers = [name for name, keys in takes.items() if key in keys]
        if takers:
            raise ValueError(f"{key} applies to {', '.join(takers)}; {method!r} has none")
        raise ValueError(
            f"unknown option {key!r} for method {method!r} (it takes "
            f"{sorted(takes[method]) or 'no options'}; attribute itself takes kinds, "
            "batch_size, max_length, aggregation, checkpoint, checkpoint_every, "
            "accumulate_dtype, autocast, progress)"
        )
    return METHODS[method](**options)


def _is_neutral(key: str, value) -> bool:
    """``value`` is what ``key`` defaulted to when every method shared one signature."""
    if key not in _NEUTRAL:
        return False
    default = _NEUTRAL[key]
    return value is None if default is None else type(value) is type(default) and value == default


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
    method = GradXAct()
    method.bind(model, tok, data, encoded, sites, max_length)
    rows: dict[str, list] = {site.name: [] for site in sites}
    with analysis_mode(model), trace(model, sites, grad=True) as tr:
        for example in encoded:
            batch = to_device(collate([example], tok.pad_token_id), device)
            sums = RunningSums.fresh(sites, device, torch.float64)
            method.step(model, batch, 0, tr, sums, 0)
            for site in sites:
                rows[site.name].append(sums.sum_signed[site.name].cpu())
    return {name: torch.stack(values) for name, values in rows.items()}


def _provenance(model, layout, data, encoded, max_length, method: Method, autocast) -> dict:
    """What a Relevance records of its run (and what a checkpoint must match)."""
    return {
        "model": layout.model,
        "weights": weight_fingerprint(model),
        "task": getattr(getattr(data, "task", None), "name", None),
        "split": getattr(data, "name", None),
        "data_hash": hash_encoded(encoded),
        "n_examples": len(encoded),
        "max_length": max_length,
        "sites": len(layout.sites),
        "kinds": list(layout.kinds),
        "relevance": method.description + method.metric.loss_text,
        "method": method.name,
        "settings": method.settings,
        "compute": {
            "weights": "+".join(
                sorted({str(p.dtype).removeprefix("torch.") for p in model.parameters()})
            ),
            "autocast": None if autocast is None else str(autocast).removeprefix("torch."),
        },
    }


def _check_ranks_agree(provenance, batch_size, method, sites, device, world) -> None:
    """Data parallel: every rank must attribute the same data with the same options."""
    differs = ranks_disagree(
        {
            "n_examples": provenance["n_examples"],
            "data_hash": provenance["data_hash"],
            "batch_size": batch_size,
            "max_length": provenance["max_length"],
            "weights": provenance["weights"],
            "method": f"{method.name} {method.settings}",
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


def _rank_checkpoint(checkpoint, rank: int, world: int):
    """This rank's checkpoint file; refuses one left by another number of processes."""
    checkpoint, others = rank_file(checkpoint, rank, world)
    if others:
        raise AttributionError(
            f"checkpoint {checkpoint} was made with another number of processes "
            f"({', '.join(others)}); this run has {world}. Resume with the same number of "
            "processes, or delete those files or pass another checkpoint path. They were "
            "left untouched."
        )
    return checkpoint


def _check_positive(**values: int) -> None:
    """Counts that must be positive integers (``batch_size``, ``checkpoint_every``)."""
    for name, value in values.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive int, got {value!r}")


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


def _describe(data) -> str:
    task = getattr(getattr(data, "task", None), "name", None)
    return f"split {getattr(data, 'name', '?')!r} of task {task!r}" if task else "the data"
