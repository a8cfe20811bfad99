"""How well does an attribution method predict the exact effect of switching a unit off?

    frame = tn.method_agreement(model, tok, data, "layers.15.mlp.act", n_units=24)
    plots.plot_method_agreement(frame)

Each method of ``tn.attribute`` and exact ablation (``method="ablation"``, one unit at a time,
the ground truth) run on the same examples and the same sampled units of one site, so their
scores can be put side by side. ``benchmarks/attribution_methods.py`` does this on three sites
of each neuron definition for the record (docs/attribution.md).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pandas as pd
import torch

from ..core.layout import layout_of
from ..core.sites import parse_site_name
from ..tasks import Split
from .run import attribute

if TYPE_CHECKING:
    from torch import nn
    from transformers import PreTrainedTokenizerBase

    from ..hooks.baselines import ActivationStats


def method_agreement(
    model: nn.Module,
    tok: PreTrainedTokenizerBase,
    data: Split,
    site: str,
    *,
    methods: tuple[str, ...] = ("grad_x_act", "integrated_gradients"),
    n_units: int = 24,
    seed: int = 0,
    steps: int = 16,
    baseline: str | ActivationStats | Split = "zero",
    metric: str = "nll",
    pairs: Split | None = None,
    batch_size: int = 8,
    force: bool = False,
) -> pd.DataFrame:
    """Each method's score beside exact ablation's, for ``n_units`` units of ``site``.

    Args:
        data: the examples (a Split) every method and the ablations run on.
        site: a site name, e.g. ``"layers.15.mlp.act"`` or ``"layers.3.mlp.up"``.
        methods: ``tn.attribute`` methods (not ``"ablation"``, which is the reference).
        n_units: units drawn without replacement (``torch.randperm``, seeded by ``seed``).
        steps: integrated gradients' points on the path.
        baseline: what a unit is moved to, for the gradient methods with a baseline and for the
            exact ablation alike (``"zero"``, ``"mean"`` or ``tn.activation_stats(...)``); the
            activation method takes none. A split of minimal-pair alternatives aligned with
            ``data`` (``task.pairs(split)``) moves each unit to its value on the alternative.
        metric: what the scores and the exact ablation measure (``tn.attribute``'s ``metric``):
            ``"nll"``, the mean answer-token NLL, or ``"logit_diff"``, ``-LD`` of minimal
            pairs (``attribution.metrics``), which needs the alternatives: the paired baseline
            above or ``pairs``. The activation method has no metric and is refused with one.
        pairs: with ``metric="logit_diff"`` and a baseline that is not the pairs themselves,
            the alternatives aligned with ``data``.
        force: run the exact ablation (and integrated gradients) even beyond the work budget
            (``n_units`` ablations cost about ``n_units / 2`` x grad x act; more than 200x
            is refused otherwise, ``attribution.budget``).

    Returns:
        One row per (method, unit): ``site``, ``unit``, ``method``, ``score`` (the method's
        mean over examples of ``|r_j|``, nats for the gradient methods), ``signed`` (mean
        of ``r_j``; NaN for the activation method, which has no sign), ``exact`` and
        ``exact_signed`` (the same for exact ablation: the loss change, nats).
    """

    if "ablation" in methods:
        raise ValueError("methods are compared with exact ablation; leave 'ablation' out")
    if metric != "nll" and "activation" in methods:
        raise ValueError(
            f"the activation method has no metric; leave it out with metric={metric!r}"
        )
    _, kind = parse_site_name(site)
    sizes = layout_of(model, (kind,))
    if site not in sizes:
        raise ValueError(f"no site {site!r} in this model (first of its kind: {next(iter(sizes))})")
    if not 1 <= n_units <= sizes[site]:
        raise ValueError(
            f"n_units must be in 1..{sizes[site]} (the units of {site}), got {n_units}"
        )
    generator = torch.Generator().manual_seed(seed)
    units = torch.randperm(sizes[site], generator=generator)[:n_units].sort().values
    run: dict[str, Any] = dict(kinds=(kind,), batch_size=batch_size, progress=False)
    scored: dict[str, Any] = {} if metric == "nll" else {"metric": metric}
    if pairs is not None:
        scored["pairs"] = pairs
    exact = attribute(
        model,
        tok,
        data,
        method="ablation",
        neurons={site: units},
        baseline=baseline,
        force=force,
        **run,
        **scored,
    )
    frames = []
    for method in methods:
        options: dict[str, Any] = (
            {} if method in ("grad_x_act", "activation") else {"baseline": baseline}
        )
        if method != "activation":
            options.update(scored)
        if method == "grad_x_act" and metric != "nll" and isinstance(baseline, Split):
            options.setdefault("pairs", baseline)  # no baseline of its own: the pairs alone
        if method == "integrated_gradients":
            options.update(steps=steps, neurons={site: units[:1]}, force=force)
        rel = attribute(model, tok, data, method=method, **run, **options)
        signed = rel.sum_signed[site][units] / rel.n_examples
        frames.append(
            pd.DataFrame(
                {
                    "site": site,
                    "unit": units.numpy(),
                    "method": method,
                    "score": rel.scores[site][units].numpy(),
                    "signed": float("nan") if method == "activation" else signed.numpy(),
                    "exact": exact.scores[site][units].numpy(),
                    "exact_signed": (exact.sum_signed[site][units] / exact.n_examples).numpy(),
                }
            )
        )
    return pd.concat(frames, ignore_index=True)
