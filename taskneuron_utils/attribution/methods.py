"""The attribution methods beside gradient x activation, behind ``tn.attribute(method=...)``.

Every method yields, per example and unit ``j``, a signed number ``r_j`` in nats, read as the
loss change when the unit is moved from its real activation ``a`` to a baseline ``a'``
(``a' = 0`` unless ``baseline=`` says otherwise), or a plain statistic; ``Relevance`` keeps the
sums of ``|r_j|`` and ``r_j`` exactly as for the default method. ``L`` is the example's mean
answer-token NLL; sums over ``t`` run over token positions (padding contributes nothing).

- ``"grad_x_act"``: ``r_j = -sum_t dL/da[t,j] * a[t,j]`` (``attribution.py``; unchanged).
- ``"attribution_patching"``: ``r_j = -sum_t dL/da[t,j] * (a[t,j] - a'[t,j])``, the gradient at
  the real activation. Cost: grad x act's (a paired baseline adds one forward pass).
- ``"integrated_gradients"``: ``r_j = -IG_j``, ``IG_j = sum_t (a - a')[t,j] * (1/m) sum_{s=1..m}
  dL/da[t,j] at a' + (s/m)(a - a')``, the path taken at one site at a time (every other site
  as the model computes it; right Riemann sum, so ``steps=1`` is attribution patching).
  Completeness: ``sum_j IG_j`` approaches ``L(a) - L(a')`` with that site alone at ``a'``; the
  per-site mean ``|sum_j IG_j - (L(a) - L(a'))|`` is reported in ``provenance["completeness"]``.
  Cost: per site, ``m + 1`` points (``a'`` itself for the residual) of forward and backward,
  the steps batched into passes of ``ROWS`` rows; about ``(m + 1)`` times grad x act per site,
  less the part of the network before the site (the backward stops there).
- ``"activation"``: no gradient; ``r_j`` = mean over the example's positions of ``|a[t,j]|``
  (``statistic="mean_abs"``) or the share of positions with ``a[t,j] > 0``
  (``"firing_rate"``, LAPE's). One forward pass per batch.
- ``"ablation"``: exact. ``r_j = L(unit j at a' at every position) - L``, re-running the model
  once per unit of ``neurons=`` (the ground truth; other units are NaN, not measured).
  Cost: one forward pass per unit and batch, units stacked ``ROWS // batch`` to a pass.

Baselines (``baseline=``): ``"zero"``; ``"mean"``, the per-unit mean over the real positions of
the attributed data itself; a ``tn.ActivationStats`` (its ``mean``, from a reference set); or
for attribution patching and integrated gradients a split of corrupted prompts paired one to
one with ``data`` (same number of examples, each with the same token length), whose
activations at each position are ``a'``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import torch

from .state import hash_encoded
from ..errors import AttributionError
from ..hooks.baselines import ActivationStats, stats_of_encoded
from ..hooks.tracing import Edit, trace
from ..scoring.loss import answer_losses
from ..neurons.neuron_set import NeuronSet
from ..tasks import collate, encode

METHODS = ("grad_x_act", "integrated_gradients", "attribution_patching", "activation", "ablation")
STATISTICS = ("mean_abs", "firing_rate")
WITH_BASELINE = ("integrated_gradients", "attribution_patching", "ablation")
ROWS = 64  # batch rows per pass when a method stacks copies of a batch (IG's steps, ablations)


@dataclass
class Plan:
    """A validated method: its settings (JSON, recorded in provenance and checkpoint keys), the
    units it measures, its extra sums, and what runs per batch."""

    method: str
    settings: dict
    description: str
    traced: bool = False  # attribute keeps every site's output and gradient (trace(grad=True))
    measured: dict | None = None  # {site name: bool (n,)}; None: every unit
    extra: dict = field(default_factory=dict)  # {name: shape} of extra float64 sums
    run: Callable | None = None  # run(model, batch, start, tr, state, device, batch_index)
    mean: dict | None = None  # {site name: (n,)} mean baseline
    paired: list | None = None  # encoded corrupted prompts
    sites: list = field(default_factory=list)
    subset: dict = field(default_factory=dict)  # {site name: long indices}, ablation / IG
    data_stats: Callable | None = None  # computes ``mean`` from the data before the loop
    pad_id: int | None = None

    def prepare(self, model, tok, encoded, batch_size: int) -> None:
        """Forward passes a method needs before its loop (the mean over the data itself)."""
        if self.data_stats is not None:
            self.mean = self.data_stats(model, tok, encoded, batch_size)

    def finish(self, state: dict, provenance: dict) -> None:
        """Write what the extra sums say into ``provenance`` (IG's completeness)."""
        if self.method != "integrated_gradients":
            return
        n = max(state["n_examples"], 1)
        residual = (state["extra"]["residual_abs"] / n).tolist()
        delta = (state["extra"]["delta_abs"] / n).tolist()
        names = [site.name for site in self.sites]
        provenance["completeness"] = {
            "definition": "per site, mean over examples of |sum_j IG_j - (L(a) - L(a'))| "
            "(nats), beside the mean |L(a) - L(a')|; the site alone interpolated",
            "mean_abs_residual": sum(residual) / len(residual),
            "mean_abs_delta": sum(delta) / len(delta),
            "max_abs_residual": max(residual),
            "per_site": {
                name: [round(r, 8), round(d, 8)] for name, r, d in zip(names, residual, delta)
            },
        }


def plan(
    method,
    model,
    tok,
    data,
    encoded,
    sites,
    *,
    steps=16,
    baseline="zero",
    statistic="mean_abs",
    neurons=None,
    max_length=512,
) -> Plan:
    """Check every option of ``method`` (ValueError naming what is wrong, before any forward
    pass) and return its Plan."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(
            f"steps must be an integer >= 1 (points on the integration path), got {steps!r}"
        )
    if steps != 16 and method != "integrated_gradients":
        raise ValueError(f"steps applies to integrated_gradients only, not to {method!r}")
    if statistic not in STATISTICS:
        raise ValueError(f"statistic must be one of {STATISTICS}, got {statistic!r}")
    if statistic != "mean_abs" and method != "activation":
        raise ValueError(f"statistic applies to the 'activation' method only, not to {method!r}")
    is_zero = isinstance(baseline, str) and baseline == "zero"
    if not is_zero and method not in WITH_BASELINE:
        raise ValueError(f"baseline applies to {', '.join(WITH_BASELINE)}; {method!r} has none")
    if neurons is not None and method not in ("ablation", "integrated_gradients"):
        raise ValueError(f"neurons applies to ablation and integrated_gradients, not {method!r}")
    if method == "ablation" and neurons is None:
        raise ValueError(
            "ablation needs neurons=: the units to ablate one at a time (a "
            "NeuronSet or {site name: indices}); it costs a forward pass each"
        )
    p = Plan(method, {}, "", sites=sites, pad_id=tok.pad_token_id)
    p.settings["baseline"] = _baseline(p, model, tok, data, encoded, sites, baseline, max_length)
    if neurons is not None:
        p.subset = _subset(neurons, sites)
        p.measured = {s.name: torch.zeros(s.n_neurons, dtype=torch.bool) for s in sites}
        for name, idx in p.subset.items():
            p.measured[name][idx if method == "ablation" else slice(None)] = True
        p.settings["neurons"] = {name: idx.tolist() for name, idx in p.subset.items()}
    if method == "attribution_patching":
        p.traced, p.run = True, lambda *args: _patching_step(p, *args)
        p.description = "|sum_t dL/da * (a - a')| per example at the real activation"
    elif method == "integrated_gradients":
        p.settings["steps"] = steps
        p.extra = {"residual_abs": (len(sites),), "delta_abs": (len(sites),)}
        p.run = lambda *args: _ig_step(p, *args)
        p.description = (
            f"|sum_t (a - a') * mean of dL/da over {steps} points from a' to a| "
            "per example, one site interpolated at a time"
        )
    elif method == "activation":
        p.settings["statistic"] = statistic
        p.run = lambda *args: _activation_step(p, *args)
        p.description = (
            "mean over positions of |a| per example"
            if statistic == "mean_abs"
            else "share of positions with a > 0 per example (LAPE firing rate)"
        )
    elif method == "ablation":
        p.run = lambda *args: _ablation_step(p, *args)
        p.description = "L(unit at baseline at every position) - L per example, exact"
    return p


def _baseline(p: Plan, model, tok, data, encoded, sites, baseline, max_length) -> str:
    """Validate ``baseline``, store what it needs on ``p``; return its description."""
    if isinstance(baseline, str):
        if baseline == "zero":
            return "zero"
        if baseline == "mean":
            p.data_stats = lambda model, tok, encoded, batch_size: (
                stats_of_encoded(model, tok, encoded, sites, batch_size).mean
            )
            return "mean over the data's positions"
        raise ValueError(
            f"baseline must be 'zero', 'mean', tn.activation_stats(...) or a "
            f"split of paired corrupted prompts, got {baseline!r}"
        )
    if isinstance(baseline, ActivationStats):
        baseline.check(sites)
        p.mean = {site.name: baseline.mean[site.name] for site in sites}
        return f"mean of a reference set ({baseline.n_positions} positions, {baseline.fingerprint})"
    if p.method == "ablation":
        raise ValueError(
            "ablation takes baseline 'zero', 'mean' or tn.activation_stats(...); "
            "paired corrupted prompts are for attribution_patching and "
            "integrated_gradients"
        )
    paired = encode(tok, baseline, max_length=max_length)
    if len(paired) != len(encoded):
        raise ValueError(
            f"the paired baseline has {len(paired)} examples but the data has "
            f"{len(encoded)}; corrupted prompts pair one to one with the examples"
        )
    for i, (corrupt, real) in enumerate(zip(paired, encoded)):
        if len(corrupt.input_ids) != len(real.input_ids):
            raise ValueError(
                f"paired baseline example {i} has {len(corrupt.input_ids)} tokens "
                f"but data example {i} has {len(real.input_ids)}; a corrupted "
                "prompt must have its example's token length"
            )
    p.paired = paired
    return f"paired corrupted prompts {hash_encoded(paired)}"


def _subset(neurons, sites) -> dict:
    """{site name: sorted unique long indices} from a NeuronSet or a dict, checked."""
    indices = neurons.indices if isinstance(neurons, NeuronSet) else dict(neurons)
    by_name = {site.name: site for site in sites}
    subset = {}
    for name, idx in indices.items():
        idx = torch.unique(torch.as_tensor(idx, dtype=torch.long).reshape(-1))
        if name not in by_name:
            raise ValueError(
                f"neurons names site {name!r}, which is not among the attributed "
                f"sites (first: {sites[0].name}); pass kinds= to match"
            )
        if len(idx) and (idx.min() < 0 or idx.max() >= by_name[name].n_neurons):
            raise ValueError(
                f"neurons names unit {int(idx.max())} of {name}, which has "
                f"{by_name[name].n_neurons} units"
            )
        if len(idx):
            subset[name] = idx
    if not subset:
        raise ValueError("neurons selects no unit; pass at least one")
    return subset


def _add(state: dict, name: str, r: torch.Tensor, batch_index: int, idx=None) -> None:
    """Add per-example values ``r`` (B, n or len(idx)) of one site to the sums."""
    if not torch.isfinite(r).all():
        raise AttributionError(
            f"non-finite values at {name} in batch {batch_index}; the model may overflow in "
            "this dtype: try dtype=torch.float32 or bfloat16 instead of float16"
        )
    for total, values in (("sum_abs", r.abs().sum(0)), ("sum_signed", r.sum(0))):
        target = state[total][name]
        if idx is None:
            target += values.to(target)
        else:
            target[idx.to(target.device)] += values.to(target)


def _paired_activations(model, batch, start, p: Plan, device, sites) -> dict:
    """{site name: (B, T, n)} activations of the corrupted prompts paired with this batch."""
    other = collate(p.paired[start : start + len(batch["input_ids"])], p.pad_id)
    other = {key: value.to(device) for key, value in other.items()}
    with torch.no_grad(), trace(model, sites) as tr:
        model.base_model(
            input_ids=other["input_ids"], attention_mask=other["attention_mask"], use_cache=False
        )
        return {name: record.output.detach() for name, record in tr.items()}


def _baseline_of(p: Plan, name: str, paired: dict | None):
    """a' at one site: None (zero), (n,) or (B, T, n)."""
    if paired is not None:
        return paired[name]
    return None if p.mean is None else p.mean[name]


def _patching_step(p: Plan, model, batch, start, tr, state, device, batch_index) -> None:
    paired = _paired_activations(model, batch, start, p, device, p.sites) if p.paired else None
    batch = {key: value.to(device) for key, value in batch.items()}
    size, length = batch["input_ids"].shape
    losses, n_tokens = answer_losses(model, batch)
    tr.backward(losses.sum())
    for name, record in tr.items():
        activation = record.output.detach().reshape(size, length, -1).float()
        grad = record.grad.reshape(size, length, -1).float()
        base = _baseline_of(p, name, paired)
        shifted = activation if base is None else activation - base.to(activation)
        _add(state, name, -(grad * shifted).sum(dim=1), batch_index)
    state["n_examples"] += size
    state["n_tokens"] += n_tokens
    tr.clear()


def _ig_step(p: Plan, model, batch, start, tr, state, device, batch_index) -> None:
    sites = [s for s in p.sites if not p.subset or s.name in p.subset]
    paired = _paired_activations(model, batch, start, p, device, sites) if p.paired else None
    batch = {key: value.to(device) for key, value in batch.items()}
    size, length = batch["input_ids"].shape
    steps = p.settings["steps"]
    alphas = torch.arange(steps + 1, dtype=torch.float64) / steps  # 0 (the baseline), ..., 1
    chunks = torch.arange(steps + 1).split(max(1, ROWS // size))
    wanted = {site.name for site in sites}
    for site_index, site in enumerate(p.sites):
        if site.name not in wanted:
            continue
        base = _baseline_of(p, site.name, paired)
        grad_sum, losses_at = 0, torch.zeros(steps + 1, size, dtype=torch.float64)
        for chunk in chunks:
            k = len(chunk)
            rows = {key: value.repeat(k, 1) for key, value in batch.items()}  # row i*B + b
            scale = alphas[chunk].repeat_interleave(size).view(-1, 1, 1)
            shift = (
                torch.zeros(())
                if base is None
                else (1 - scale)
                * (base.double() if base.dim() == 1 else base.double().repeat(k, 1, 1))
            )
            edit = Edit.affine(torch.arange(site.n_neurons), scale.float(), shift.float())
            with trace(model, [site.name], grad=True, edit={site.name: edit}) as one:
                losses, _ = answer_losses(model, rows)
                one.backward(losses.sum())
                point = one[site.name].output.detach().reshape(k, size, length, -1)
                grad = one[site.name].grad.reshape(k, size, length, -1)
            losses_at[chunk] = losses.detach().double().view(k, size).cpu()
            grad_sum = grad_sum + grad[chunk > 0].double().sum(0)
            if chunk[-1] == steps:  # the point at alpha = 1 is the real activation
                activation = point[-1].double()
        difference = activation if base is None else activation - base.to(activation)
        ig = (difference * grad_sum / steps).sum(dim=1)  # (B, n)
        _add(state, site.name, -ig, batch_index)
        delta = losses_at[-1] - losses_at[0]  # L(a) - L(a'), this site alone moved
        residual = ig.sum(1).cpu() - delta
        extra = state["extra"]
        extra["residual_abs"][site_index] += residual.abs().sum().to(extra["residual_abs"])
        extra["delta_abs"][site_index] += delta.abs().sum().to(extra["delta_abs"])
    state["n_examples"] += size
    state["n_tokens"] += int((batch["labels"][:, 1:] != -100).sum())


def _activation_step(p: Plan, model, batch, start, tr, state, device, batch_index) -> None:
    batch = {key: value.to(device) for key, value in batch.items()}
    size, length = batch["input_ids"].shape
    real = batch["attention_mask"].reshape(size, length, 1).float()
    with torch.no_grad(), trace(model, p.sites) as kept:
        model.base_model(
            input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], use_cache=False
        )
        for name, record in kept.items():
            a = record.output.reshape(size, length, -1).float()
            value = a.abs() if p.settings["statistic"] == "mean_abs" else (a > 0).float()
            _add(state, name, (value * real).sum(1) / real.sum(1), batch_index)
    state["n_examples"] += size
    state["n_tokens"] += int((batch["labels"][:, 1:] != -100).sum())


def _ablation_step(p: Plan, model, batch, start, tr, state, device, batch_index) -> None:
    batch = {key: value.to(device) for key, value in batch.items()}
    size = len(batch["input_ids"])
    with torch.no_grad():
        clean, n_tokens = answer_losses(model, batch)
        for name, idx in p.subset.items():
            for chunk in idx.split(max(1, ROWS // size)):
                k = len(chunk)
                rows = {key: value.repeat(k, 1) for key, value in batch.items()}
                keep = 1 - torch.eye(k)  # copy i of the batch ablates unit chunk[i]
                fill = torch.zeros(k) if p.mean is None else p.mean[name][chunk].float()
                keep_rows = keep.repeat_interleave(size, dim=0).unsqueeze(1)  # (k * B, 1, k)
                edit = Edit.affine(chunk, keep_rows, (1 - keep_rows) * fill)
                with trace(model, keep=False, edit={name: edit}):
                    losses, _ = answer_losses(model, rows)
                r = (losses.view(k, size) - clean).T.double()  # (B, k): loss change, nats
                _add(state, name, r, batch_index, chunk)
    state["n_examples"] += size
    state["n_tokens"] += n_tokens
