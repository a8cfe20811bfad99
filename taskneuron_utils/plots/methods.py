"""Figures comparing attribution methods with exact ablation (``tn.method_agreement``)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from scipy.stats import spearmanr

from .figure import new_axes, set_title


def plot_method_agreement(
    frame: pd.DataFrame, *, value: str = "signed", ax=None, title: str | None = None
) -> Axes:
    """Scatter of each method's estimate (x) against the exact loss change of ablating the unit
    (y), one colour per method, one point per unit, the diagonal dashed; the legend gives each
    method's Spearman correlation with the exact values over the units shown.

    Args:
        frame: ``tn.method_agreement``'s rows (``method``, ``score``, ``signed``, ``exact``,
            ``exact_signed``).
        value: ``"signed"`` (the estimated loss change, nats, against the exact one; methods
            without a sign are left out) or ``"score"`` (the magnitudes top-k ranks).
    """
    if value not in ("signed", "score"):
        raise ValueError(f"value must be 'signed' or 'score', got {value!r}")
    missing = {"method", value, "exact", "exact_signed"} - set(frame.columns)
    if missing:
        raise ValueError(f"not a method_agreement frame: columns {sorted(missing)} are missing")
    reference = "exact_signed" if value == "signed" else "exact"
    ax = new_axes(ax, size=(4.8, 4.2))
    shown = frame.dropna(subset=[value])
    for method, part in shown.groupby("method", sort=False):
        rho = spearmanr(part[value], part[reference]).statistic
        ax.scatter(
            part[value], part[reference], s=16, alpha=0.8, label=f"{method} (Spearman {rho:.2f})"
        )
    values = shown[[value, reference]].to_numpy(dtype=float)
    low, high = (np.nanmin(values), np.nanmax(values)) if len(values) else (0.0, 1.0)
    pad = 0.05 * (high - low or 1.0)
    ax.plot([low - pad, high + pad], [low - pad, high + pad], "k--", lw=0.8)
    what = "loss change" if value == "signed" else "|loss change|"
    ax.set_xlabel(f"method's estimate of the {what} (nats)")
    ax.set_ylabel(f"exact {what} on ablation (nats)")
    set_title(ax, title or f"{', '.join(shown['site'].unique()) if 'site' in shown else ''}")
    ax.legend(fontsize=8)
    return ax
