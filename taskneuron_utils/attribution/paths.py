"""The attribution methods that re-run the model per site or per unit: integrated gradients
and exact ablation (the ground truth the others are measured against).

- ``IntegratedGradients`` (``"integrated_gradients"``): ``r_j = -IG_j``, ``IG_j = sum_t (a -
  a')[t,j] * (1/m) sum_{s=1..m} dL/da[t,j] at a' + (s/m)(a - a')``, the path taken at one site
  at a time (every other site as the model computes it; right Riemann sum, so ``steps=1`` is
  attribution patching). Completeness: ``sum_j IG_j`` approaches ``L(a) - L(a')`` with that
  site alone at ``a'``; the per-site mean ``|sum_j IG_j - (L(a) - L(a'))|`` is reported in
  ``provenance["completeness"]``. Cost: per site, ``m + 1`` points (``a'`` itself for the
  residual) of forward and backward, ``(m + 1) x`` grad x act's work per site.
- ``ExactAblation`` (``"ablation"``): ``r_j = L(unit j at a' at every position) - L``,
  re-running the model once per unit of ``neurons=`` (other units are NaN, not measured).
  Cost: one forward pass per unit and batch, about half of grad x act's work each.

Both stack copies of a batch into one pass (path points; ablated units), as many as the memory
budget allows (``max_memory=``; default: about grad x act's own pass, ``attribution.budget``),
and keep nothing of a pass once it is done: memory grows with one site's activations for one
chunk of copies, never with the number of sites, steps or units. Both refuse, before any pass,
runs beyond the work budget (``force=True`` runs them with a warning).
"""

from __future__ import annotations

import torch

from ..hooks.tracing import Edit, trace
from .budget import FORWARD_SHARE, WORK_BUDGET, default_budget, largest_fitting, parse_memory
from .cost import forward_pass, path_pass
from .methods import Method, answer_token_count


class Stacked(Method):
    """A method that stacks copies of a batch into one pass, as many as ``max_memory`` allows."""

    def __init__(
        self, baseline="zero", neurons=None, max_memory=None, force=False, metric="nll", pairs=None
    ):
        super().__init__(baseline, neurons, force, metric, pairs)
        self.max_memory = parse_memory(max_memory)

    def budget(self, geometry) -> int:
        """Bytes one pass over this batch may take (``attribution.budget``)."""
        if self.max_memory is not None:
            return self.max_memory
        return default_budget(self.grad_x_act_bytes(*geometry), self.free)

    def copies_per_pass(self, batch, most: int, bytes_of) -> int:
        """How many copies of ``batch`` one pass takes: at most ``most``, ``bytes_of(k)`` (the
        pass's memory with ``k`` copies) within the budget, at least one."""
        geometry = batch_geometry_of(batch)
        return largest_fitting(most, lambda k: bytes_of(k, *geometry), self.budget(geometry))


class IntegratedGradients(Stacked):
    """Integrated gradients at each site in turn; ``neurons=`` limits the sites computed;
    ``max_memory`` bounds one pass (points stacked); ``force`` runs past the work budget."""

    name = "integrated_gradients"
    takes_baseline = True

    def __init__(
        self,
        steps: int = 16,
        baseline="zero",
        neurons=None,
        max_memory=None,
        force=False,
        metric="nll",
        pairs=None,
    ):
        super().__init__(baseline, neurons, max_memory, force, metric, pairs)
        if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
            raise ValueError(
                f"steps must be an integer >= 1 (points on the integration path), got {steps!r}"
            )
        self.steps = steps
        self.description = (
            f"|sum_t (a - a') * mean of dL/da over {steps} points from a' to a| "
            "per example, one site interpolated at a time"
        )

    def bind(self, model, tok, data, encoded, sites, max_length, batch_size=8) -> None:
        self.extra = {"residual_abs": (len(sites),), "delta_abs": (len(sites),)}
        super().bind(model, tok, data, encoded, sites, max_length, batch_size)
        self.settings["steps"] = self.steps

    def computed(self) -> list:
        """The sites whose paths are computed."""
        return [site for site in self.sites if not self.subset or site.name in self.subset]

    def work(self) -> float:
        n = len(self.computed())
        return n * (self.steps + 1) + (n * FORWARD_SHARE if self.paired else 0.0)

    def what(self) -> str:
        return f"{len(self.computed())} sites x {self.steps + 1} path points"

    def bounds(self) -> str:
        most = max(1, int(WORK_BUDGET // (self.steps + 1)))
        return (
            f"neurons={{site: units}} naming the sites to compute (~{most} at {self.steps} "
            f"steps stay within {WORK_BUDGET:.0f}x), fewer steps or kinds="
        )

    def pass_bytes(self, rows, T, N, padding) -> float:
        return max(self.path_bytes(1, rows, T, N, padding, site) for site in self.computed())

    def path_bytes(self, points, rows, T, N, padding, site) -> float:
        sh, s = self.shapes, self.dtype_bytes
        return path_pass(sh, s, points, rows, T, N, padding, site.kind, site.n_neurons)["peak"]

    def step(self, model, batch, start, tr, sums, batch_index) -> None:
        device = batch["input_ids"].device
        for site_index, site in enumerate(self.sites):
            if not self.subset or site.name in self.subset:
                paired = self.paired_activations(model, batch, start, device, [site])
                self._site(model, batch, start, site_index, site, paired, sums, batch_index)
        sums.count(len(batch["input_ids"]), self.metric.count(batch))

    def _site(self, model, batch, start, site_index, site, paired, sums, batch_index) -> None:
        """The path integral at one site: ``steps + 1`` points, as many to a pass as the
        memory budget allows. Nothing of a pass outlives it but the site's float64 sums."""
        size, length = batch["input_ids"].shape
        steps = self.steps
        alphas = torch.arange(steps + 1, dtype=torch.float64) / steps  # 0 (the baseline), ..., 1
        base = self.baseline_at(site.name, paired)
        grad_sum, activation = None, None
        losses_at = torch.zeros(steps + 1, size, dtype=torch.float64)
        for chunk in torch.arange(steps + 1).split(self.points_per_pass(batch, site)):
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
            del scale, shift
            with trace(model, [site.name], grad=True, edit={site.name: edit}) as one:
                losses, _ = self.metric.losses(model, rows, start, size)
                one.backward(losses.sum())
                points = one[site.name].output.detach().reshape(k, size, length, -1)
                grads = one[site.name].grad.reshape(k, size, length, -1)
                one.clear()  # the pass's graph goes now, not when the next pass has run
            losses_at[chunk] = losses.detach().double().view(k, size).cpu()
            del losses, rows, edit
            # Point by point, in path order: the float64 sum does not depend on the chunks.
            for point, alpha in enumerate(chunk.tolist()):
                if alpha > 0:
                    grad = grads[point].double()
                    grad_sum = grad if grad_sum is None else grad_sum.add_(grad)
                    del grad  # a float64 (B, T, n) copy, not to be held through the next pass
            if chunk[-1] == steps:  # the point at alpha = 1 is the real activation
                activation = points[-1].double()
            del points, grads
        assert activation is not None  # the last chunk holds the point at alpha = 1
        difference = activation if base is None else activation - base.to(activation)
        prompt = self.metric.prompt_mask(batch)  # logit_diff: prompt positions only
        if prompt is not None:
            difference = difference * prompt.to(difference)
        assert grad_sum is not None  # steps >= 1: at least one point past the baseline
        ig = (difference * grad_sum / steps).sum(dim=1)  # (B, n)
        sums.add(site.name, -ig, batch_index)
        delta = losses_at[-1] - losses_at[0]  # L(a) - L(a'), this site alone moved
        residual = ig.sum(1).cpu() - delta
        extra = sums.extra
        extra["residual_abs"][site_index] += residual.abs().sum().to(extra["residual_abs"])
        extra["delta_abs"][site_index] += delta.abs().sum().to(extra["delta_abs"])

    def points_per_pass(self, batch, site) -> int:
        """Points of the path stacked into one pass (of ``points x B`` rows): as many as the
        memory budget allows."""
        return self.copies_per_pass(
            batch,
            self.steps + 1,
            lambda k, *geometry: self.path_bytes(k, *geometry, site),  # type: ignore[call-arg]
        )

    def finish(self, sums, provenance) -> None:
        n = max(sums.n_examples, 1)
        residual = (sums.extra["residual_abs"] / n).tolist()
        delta = (sums.extra["delta_abs"] / n).tolist()
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


class ExactAblation(Stacked):
    """The exact loss change of moving each unit of ``neurons`` to its baseline, one at a time;
    ``max_memory`` bounds one pass (units stacked); ``force`` runs past the work budget."""

    name = "ablation"
    description = "L(unit at baseline at every position) - L per example, exact"
    takes_baseline = True

    def __init__(
        self, neurons=None, baseline="zero", max_memory=None, force=False, metric="nll", pairs=None
    ):
        if neurons is None:
            raise ValueError(
                "ablation needs neurons=: the units to ablate one at a time (a "
                "NeuronSet or {site name: indices}); it costs a forward pass each"
            )
        super().__init__(baseline, neurons, max_memory, force, metric, pairs)

    def units(self) -> int:
        return sum(len(idx) for idx in self.subset.values())

    def work(self) -> float:
        return (self.units() + 1) * FORWARD_SHARE  # the clean pass, then one per unit

    def what(self) -> str:
        return f"ablating {self.units():,} units one at a time"

    def bounds(self) -> str:
        most = int(WORK_BUDGET / FORWARD_SHARE) - 1
        return f"a smaller neurons= subset (~{most:,} units stay within {WORK_BUDGET:.0f}x)"

    def pass_bytes(self, rows, T, N, padding) -> float:
        return self.ablation_bytes(1, rows, T, N, padding)

    def ablation_bytes(self, units, rows, T, N, padding) -> float:
        sh, s = self.shapes, self.dtype_bytes
        return forward_pass(sh, s, units * rows, T, units * N, padding, units)["peak"]

    def step(self, model, batch, start, tr, sums, batch_index) -> None:
        size = len(batch["input_ids"])
        with torch.no_grad():
            clean, n_tokens = self.metric.losses(model, batch, start, size)
            for name, idx in self.subset.items():
                per_pass = self.copies_per_pass(batch, len(idx), self.ablation_bytes)
                for chunk in idx.split(per_pass):
                    k = len(chunk)
                    rows = {key: value.repeat(k, 1) for key, value in batch.items()}
                    keep = 1 - torch.eye(k)  # copy i of the batch ablates unit chunk[i]
                    fill = torch.zeros(k) if self.mean is None else self.mean[name][chunk].float()
                    keep_rows = keep.repeat_interleave(size, dim=0).unsqueeze(1)  # (k * B, 1, k)
                    edit = Edit.affine(chunk, keep_rows, (1 - keep_rows) * fill)
                    with trace(model, keep=False, edit={name: edit}):
                        losses, _ = self.metric.losses(model, rows, start, size)
                    r = (losses.view(k, size) - clean).T.double()  # (B, k): loss change, nats
                    sums.add(name, r, batch_index, chunk)
                    del rows, edit, losses
        sums.count(size, n_tokens)


def batch_geometry_of(batch: dict) -> tuple[int, int, int, bool]:
    """(rows, tokens a row, answer tokens, padded) of a collated batch."""
    mask = batch["attention_mask"]
    lengths = mask.sum(1)
    return (
        int(mask.shape[0]),
        int(mask.shape[1]),
        answer_token_count(batch),
        bool((lengths != lengths[0]).any()),
    )
