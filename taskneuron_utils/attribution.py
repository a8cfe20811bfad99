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
from pathlib import Path

import pandas as pd
import torch
from tqdm.auto import tqdm

from . import attribution_methods
from .architectures import (NeuronSetMismatchError, layout_difference, layout_for, layout_of,
                            weight_fingerprint)
from .hooks import Trace, trace
from .loss import answer_losses
from .neurons import NeuronSet
from .parallel import gather_sum, rank_and_world, rank_file, ranks_disagree
from .placement import input_device
from .attribution_state import (AttributionError, analysis_mode as _analysis_mode,
                                combine_hashes as _combine_hashes, fresh_state, resume,
                                save_checkpoint)
from .attribution_state import hash_encoded as _hash_encoded  # train_loop imports it from here
from .storage import load_artefact, save_artefact
from .tasks import Split, collate, encode

AGGREGATIONS = ("mean_abs", "abs_mean")


class Relevance:
    """Per-neuron relevance sums over a data set, with provenance.

    Attributes:
        sum_abs: {site name: float64 tensor (n_neurons,)}: sum over examples of ``|r_j|``.
        sum_signed: {site name: float64 tensor (n_neurons,)}: sum over examples of ``r_j``.
        n_examples: examples summed. n_tokens: answer tokens summed.
        provenance: model, weights, data, options (JSON-serialisable).
        aggregation: how ``scores`` turns the sums into one score a neuron.
    """

    def __init__(self, sum_abs, sum_signed, n_examples: int, n_tokens: int, provenance: dict,
                 aggregation: str = "mean_abs"):
        if aggregation not in AGGREGATIONS:
            raise ValueError(f"aggregation must be one of {AGGREGATIONS}, got {aggregation!r}")
        self.sum_abs, self.sum_signed = sum_abs, sum_signed
        self.n_examples, self.n_tokens = n_examples, n_tokens
        self.provenance = provenance
        self.aggregation = aggregation

    @property
    def sizes(self) -> dict[str, int]:
        return {site: len(values) for site, values in self.sum_abs.items()}

    @property
    def scores(self) -> dict[str, torch.Tensor]:
        """{site name: float32 tensor (n_neurons,)}: relevance in nats per example."""
        sums = self.sum_abs if self.aggregation == "mean_abs" else self.sum_signed
        out = {}
        for site, total in sums.items():
            mean = total / max(self.n_examples, 1)
            out[site] = (mean if self.aggregation == "mean_abs" else mean.abs()).float().cpu()
        return out

    def with_aggregation(self, aggregation: str) -> Relevance:
        """The same sums, scored another way."""
        return Relevance(self.sum_abs, self.sum_signed, self.n_examples, self.n_tokens,
                         self.provenance, aggregation)

    def __repr__(self) -> str:
        return (f"Relevance({self.provenance.get('task')!r}, {self.n_examples} examples, "
                f"{self.n_tokens} answer tokens, {sum(self.sizes.values())} neurons, "
                f"aggregation={self.aggregation!r})")

    def __add__(self, other: Relevance) -> Relevance:
        """Combine shards of the same model and options computed on disjoint data."""
        for key in ("model", "weights", "sites"):
            if self.provenance.get(key) != other.provenance.get(key):
                raise NeuronSetMismatchError(f"cannot add relevance computed with different {key}")
        if list(self.sum_abs) != list(other.sum_abs):
            difference = layout_difference(self.sizes, other.sizes, "first", "second")
            raise NeuronSetMismatchError(f"cannot add relevance computed on different sites: "
                                         f"{difference}")
        provenance = {**self.provenance, "data_hash": _combine_hashes(
            self.provenance["data_hash"], other.provenance["data_hash"]),
            "n_examples": self.n_examples + other.n_examples}
        return Relevance(
            {s: self.sum_abs[s] + other.sum_abs[s] for s in self.sum_abs},
            {s: self.sum_signed[s] + other.sum_signed[s] for s in self.sum_signed},
            self.n_examples + other.n_examples, self.n_tokens + other.n_tokens,
            provenance, self.aggregation)

    def to_frame(self) -> pd.DataFrame:
        """One row a neuron: site, layer, kind, neuron, score."""
        frames = []
        for site, values in self.scores.items():
            layer, kind = site.split(".")[1], site.split(".")[-1]
            frames.append(pd.DataFrame({"site": site, "layer": int(layer), "kind": kind,
                                        "neuron": range(len(values)), "score": values.numpy()}))
        return pd.concat(frames, ignore_index=True)

    def top_k(self, k: float = 0.10, per: str = "site") -> NeuronSet:
        """The task-specific neurons: the top fraction ``k`` by score.

        Args:
            k: fraction in (0, 1]; the paper uses 0.10 (its "k = 10" is a percentage).
            per: ``"site"`` keeps round(k * n) neurons of every site (every layer and linear
                keeps the same fraction, which the per-layer analyses need); ``"global"``
                keeps round(k * N) neurons of all N together, wherever they are.

        Ties are broken by site order, then neuron index, so the result is deterministic.
        """
        if not 0 < k <= 1:
            raise ValueError(f"k is a fraction in (0, 1]; use 0.10 for the paper's top 10%, got {k}")
        if per not in ("site", "global"):
            raise ValueError(f"per must be 'site' or 'global', got {per!r}")
        scores = self.scores
        unmeasured = [site for site, values in scores.items() if values.isnan().any()]
        if unmeasured:
            raise ValueError(f"this relevance was measured on some units only (NaN at "
                             f"{unmeasured[0]} and {len(unmeasured) - 1} other sites): compare "
                             "it on those units; top-k needs every unit scored")
        chosen = {}
        if per == "site":
            for site, values in scores.items():
                order = torch.sort(values, descending=True, stable=True).indices
                chosen[site] = order[: round(k * len(values))]
        else:
            flat = torch.cat(list(scores.values()))
            order = torch.sort(flat, descending=True, stable=True).indices[: round(k * len(flat))]
            start = 0
            for site, values in scores.items():
                in_site = order[(order >= start) & (order < start + len(values))]
                chosen[site] = in_site - start
                start += len(values)
        meta = {"model": self.provenance.get("model"), "task": self.provenance.get("task"),
                "k": k, "per": per, "aggregation": self.aggregation,
                "relevance": {key: self.provenance.get(key)
                              for key in ("weights", "data_hash", "n_examples", "split")}}
        return NeuronSet(chosen, self.sizes, meta)

    def save(self, path: str | os.PathLike):
        """Write the sums and provenance to a safetensors file, atomically."""
        tensors = {f"sum_abs/{s}": v for s, v in self.sum_abs.items()}
        tensors.update({f"sum_signed/{s}": v for s, v in self.sum_signed.items()})
        meta = {"provenance": self.provenance, "n_examples": self.n_examples,
                "n_tokens": self.n_tokens, "aggregation": self.aggregation,
                "sites": list(self.sum_abs)}
        return save_artefact(path, "Relevance", tensors, meta)

    @classmethod
    def load(cls, path: str | os.PathLike, model=None) -> Relevance:
        """Read a file written by ``save``; with ``model``, check its layout matches."""
        tensors, meta = load_artefact(path, "Relevance")
        sites = meta["sites"]
        relevance = cls({s: tensors[f"sum_abs/{s}"] for s in sites},
                        {s: tensors[f"sum_signed/{s}"] for s in sites},
                        meta["n_examples"], meta["n_tokens"], meta["provenance"],
                        meta["aggregation"])
        if model is not None:
            layout_for(model, relevance.sizes).check(
                relevance.sizes, made_for=relevance.provenance.get("model"), what="relevance")
        return relevance


def attribute(
    model,
    tok,
    data: Split,
    *,
    method: str = "grad_x_act",
    kinds=None,
    steps: int = 16,
    baseline="zero",
    statistic: str = "mean_abs",
    neurons=None,
    batch_size: int = 8,
    max_length: int = 512,
    aggregation: str = "mean_abs",
    checkpoint: str | os.PathLike | None = None,
    checkpoint_every: int = 25,
    accumulate_dtype: torch.dtype | None = None,
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
    layout = layout_of(model, kinds)
    sites = list(layout.sites)
    encoded = encode(tok, data, max_length=max_length)
    if len(encoded) == 0:
        raise AttributionError(
            f"no examples to attribute on ({_describe(data)} is empty); pass a non-empty split")
    plan = attribution_methods.plan(method, model, tok, data, encoded, sites, steps=steps,
                                    baseline=baseline, statistic=statistic, neurons=neurons,
                                    max_length=max_length)  # every option checked, no work yet
    device = input_device(model)
    if accumulate_dtype is None:
        accumulate_dtype = torch.float32 if device.type == "mps" else torch.float64
    provenance = {
        "model": layout.model,
        "weights": weight_fingerprint(model),
        "task": getattr(getattr(data, "task", None), "name", None),
        "split": getattr(data, "name", None),
        "data_hash": _hash_encoded(encoded),
        "n_examples": len(encoded),
        "max_length": max_length,
        "sites": len(sites),
        "kinds": list(layout.kinds),
        "relevance": (plan.description or "|sum_t dL/da * a| per example")
        + ", L = mean answer-token NLL",
        "method": method,
        "settings": plan.settings,
    }
    rank, world = rank_and_world()
    if world > 1:
        differs = ranks_disagree({
            "n_examples": provenance["n_examples"], "data_hash": provenance["data_hash"],
            "batch_size": batch_size, "max_length": provenance["max_length"],
            "weights": provenance["weights"], "method": f"{method} {plan.settings}",
            "sites": str([(site.name, site.n_neurons) for site in sites])}, device)
        if differs:
            raise AttributionError(
                f"data-parallel attribution: the {world} processes disagree on "
                f"{', '.join(differs)}; every rank must pass the same model, data and options "
                "to attribute (each attributes its own share of the batches)")
    if checkpoint is not None:
        checkpoint, others = rank_file(checkpoint, rank, world)
        if others:
            raise AttributionError(
                f"checkpoint {checkpoint} was made with another number of processes "
                f"({', '.join(others)}); this run has {world}. Resume with the same number of "
                "processes, or delete those files or pass another checkpoint path. They were "
                "left untouched.")
    state = fresh_state(sites, device, accumulate_dtype, plan.measured, plan.extra)
    if checkpoint is not None and Path(checkpoint).exists():
        state = resume(checkpoint, provenance, batch_size, sites, device, accumulate_dtype)

    starts = range(0, len(encoded), batch_size)
    mine = range(rank, len(starts), world)  # this rank's batches (all of them in one process)
    bar = tqdm(total=len(mine), desc=f"attribution {provenance['task'] or ''}".strip(),
               disable=not progress or rank != 0,
               initial=len(range(rank, state["batches_done"], world)))
    with _analysis_mode(model):
        plan.prepare(model, tok, encoded, batch_size)  # the mean over the data, if asked for
    with _analysis_mode(model), _site_trace(model, sites, plan) as tr:
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
            totals, [state["n_examples"], state["n_tokens"]], device)
        pieces = iter(summed)
        for total in ("sum_abs", "sum_signed"):
            state[total] = {name: next(pieces) for name in names}
        state["extra"] = {name: next(pieces) for name in state["extra"]}
    plan.finish(state, provenance)
    return Relevance(state["sum_abs"], state["sum_signed"], state["n_examples"],
                     state["n_tokens"], provenance, aggregation)


def per_example_relevance(model, tok, data: Split, *, kinds=None,
                          max_length: int = 512) -> dict[str, torch.Tensor]:
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
        r = -(grad.float() * activation.float()).sum(dim=1)  # (B, n)
        if not torch.isfinite(r).all():
            raise AttributionError(
                f"non-finite gradients at {name} in batch {batch_index}; the model may "
                "overflow in this dtype: try dtype=torch.float32 or bfloat16 instead of float16")
        # .to(sums): dtype and device (a device_map may run the site on another device).
        state["sum_abs"][name] += r.abs().sum(0).to(state["sum_abs"][name])
        state["sum_signed"][name] += r.sum(0).to(state["sum_signed"][name])
    state["n_examples"] += batch_size
    state["n_tokens"] += n_tokens
    tr.clear()


def _site_trace(model, sites, plan):
    """The trace attribute keeps open (outputs and gradients of every site) when the method
    reads it; methods that run their own passes get none."""
    if plan.run is None or plan.traced:
        return trace(model, sites, grad=True)
    return contextlib.nullcontext()


def _describe(data) -> str:
    task = getattr(getattr(data, "task", None), "name", None)
    return f"split {getattr(data, 'name', '?')!r} of task {task!r}" if task else "the data"
