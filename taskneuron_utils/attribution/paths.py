"""The attribution methods that re-run the model per site or per unit: integrated gradients
and exact ablation (the ground truth the others are measured against).

- ``IntegratedGradients`` (``"integrated_gradients"``): ``r_j = -IG_j``, ``IG_j = sum_t (a -
  a')[t,j] * (1/m) sum_{s=1..m} dL/da[t,j] at a' + (s/m)(a - a')``, the path taken at one site
  at a time (every other site as the model computes it; right Riemann sum, so ``steps=1`` is
  attribution patching). Completeness: ``sum_j IG_j`` approaches ``L(a) - L(a')`` with that
  site alone at ``a'``; the per-site mean ``|sum_j IG_j - (L(a) - L(a'))|`` is reported in
  ``provenance["completeness"]``. Cost: per site, ``m + 1`` points (``a'`` itself for the
  residual) of forward and backward, the steps batched into passes of ``ROWS`` rows.
- ``ExactAblation`` (``"ablation"``): ``r_j = L(unit j at a' at every position) - L``,
  re-running the model once per unit of ``neurons=`` (other units are NaN, not measured).
  Cost: one forward pass per unit and batch, units stacked ``ROWS // batch`` to a pass.
"""

from __future__ import annotations

import torch

from ..hooks.tracing import Edit, trace
from ..scoring.loss import answer_losses
from .methods import Method, answer_token_count

ROWS = 64  # batch rows per pass when a method stacks copies of a batch (IG's steps, ablations)


class IntegratedGradients(Method):
    """Integrated gradients at each site in turn; ``neurons=`` limits the sites computed."""

    name = "integrated_gradients"
    takes_baseline = True

    def __init__(self, steps: int = 16, baseline="zero", neurons=None):
        super().__init__(baseline, neurons)
        if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
            raise ValueError(
                f"steps must be an integer >= 1 (points on the integration path), got {steps!r}"
            )
        self.steps = steps
        self.description = (
            f"|sum_t (a - a') * mean of dL/da over {steps} points from a' to a| "
            "per example, one site interpolated at a time"
        )

    def bind(self, model, tok, data, encoded, sites, max_length) -> None:
        super().bind(model, tok, data, encoded, sites, max_length)
        self.settings["steps"] = self.steps
        self.extra = {"residual_abs": (len(sites),), "delta_abs": (len(sites),)}

    def step(self, model, batch, start, tr, sums, batch_index) -> None:
        sites = [s for s in self.sites if not self.subset or s.name in self.subset]
        paired = self.paired_activations(model, batch, start, batch["input_ids"].device, sites)
        wanted = {site.name for site in sites}
        for site_index, site in enumerate(self.sites):
            if site.name in wanted:
                self._site(model, batch, site_index, site, paired, sums, batch_index)
        sums.count(len(batch["input_ids"]), answer_token_count(batch))

    def _site(self, model, batch, site_index, site, paired, sums, batch_index) -> None:
        """The path integral at one site: ``steps + 1`` points, ``ROWS`` rows a pass."""
        size, length = batch["input_ids"].shape
        steps = self.steps
        alphas = torch.arange(steps + 1, dtype=torch.float64) / steps  # 0 (the baseline), ..., 1
        base = self.baseline_at(site.name, paired)
        grad_sum, losses_at = 0, torch.zeros(steps + 1, size, dtype=torch.float64)
        for chunk in torch.arange(steps + 1).split(max(1, ROWS // size)):
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
        sums.add(site.name, -ig, batch_index)
        delta = losses_at[-1] - losses_at[0]  # L(a) - L(a'), this site alone moved
        residual = ig.sum(1).cpu() - delta
        extra = sums.extra
        extra["residual_abs"][site_index] += residual.abs().sum().to(extra["residual_abs"])
        extra["delta_abs"][site_index] += delta.abs().sum().to(extra["delta_abs"])

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


class ExactAblation(Method):
    """The exact loss change of moving each unit of ``neurons`` to its baseline, one at a time."""

    name = "ablation"
    description = "L(unit at baseline at every position) - L per example, exact"
    takes_baseline = True

    def __init__(self, neurons=None, baseline="zero"):
        if neurons is None:
            raise ValueError(
                "ablation needs neurons=: the units to ablate one at a time (a "
                "NeuronSet or {site name: indices}); it costs a forward pass each"
            )
        super().__init__(baseline, neurons)

    def step(self, model, batch, start, tr, sums, batch_index) -> None:
        size = len(batch["input_ids"])
        with torch.no_grad():
            clean, n_tokens = answer_losses(model, batch)
            for name, idx in self.subset.items():
                for chunk in idx.split(max(1, ROWS // size)):
                    k = len(chunk)
                    rows = {key: value.repeat(k, 1) for key, value in batch.items()}
                    keep = 1 - torch.eye(k)  # copy i of the batch ablates unit chunk[i]
                    fill = torch.zeros(k) if self.mean is None else self.mean[name][chunk].float()
                    keep_rows = keep.repeat_interleave(size, dim=0).unsqueeze(1)  # (k * B, 1, k)
                    edit = Edit.affine(chunk, keep_rows, (1 - keep_rows) * fill)
                    with trace(model, keep=False, edit={name: edit}):
                        losses, _ = answer_losses(model, rows)
                    r = (losses.view(k, size) - clean).T.double()  # (B, k): loss change, nats
                    sums.add(name, r, batch_index, chunk)
        sums.count(size, n_tokens)
