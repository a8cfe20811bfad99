"""Faithfulness over k (``experiments.faithfulness``): one curve per recipe."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.axes import Axes

from .figure import new_axes, set_title

_LABELS = {
    "keep": ("faithfulness f (set kept alone)", "only the set kept, the rest mean-ablated"),
    "ablate_zero": ("{measure} with the set zeroed", "the set zero-ablated"),
    "ablate_mean": ("{measure} with the set mean-ablated", "the set mean-ablated"),
}
_UNITS = {"ld": "logit difference (logits)", "nll": "answer NLL (nats/token)", "score": "score"}


def plot_faithfulness(
    curves: pd.DataFrame,
    *,
    measure: str = "ld",
    condition: str = "keep",
    task: str = "all",
    ax=None,
    title: str | None = None,
) -> Axes:
    """Each recipe's curve over k (log scale) with its bootstrap band: the faithfulness f of the
    set kept alone (``condition="keep"``; dotted lines at 0, the all-ablated model, and 1, the
    full model) or the measure with the set ablated (``"ablate_zero"`` / ``"ablate_mean"``; a
    dotted line at the full model's value).

    Args:
        curves: ``ex.faithfulness_curves``' rows (``recipe``, ``task``, ``measure``,
            ``condition``, ``k``, ``value``, ``f`` and their ``_low`` / ``_high``, ``full``).
        measure: ``"ld"``, ``"nll"`` or ``"score"``. task: a task name or ``"all"``.
    """
    if condition not in _LABELS:
        raise ValueError(f"condition must be one of {list(_LABELS)}, got {condition!r}")
    missing = {"recipe", "task", "measure", "condition", "k", "value", "f"} - set(curves.columns)
    if missing:
        raise ValueError(f"not a faithfulness_curves frame: columns {sorted(missing)} are missing")
    part = curves[
        (curves.measure == measure) & (curves.condition == condition) & (curves.task == task)
    ]
    if part.empty:
        raise ValueError(
            f"no rows for measure={measure!r}, condition={condition!r}, task={task!r}; "
            f"tasks: {sorted(curves.task.unique())}"
        )
    column = "f" if condition == "keep" else "value"
    ax = new_axes(ax, size=(6.4, 4.2))
    for recipe, rows in part.groupby("recipe", sort=False):
        rows = rows.sort_values("k")
        rows = rows[rows.k > 0]
        (line,) = ax.plot(rows.k, rows[column], marker="o", ms=3, label=recipe)
        ax.fill_between(
            rows.k,
            rows[f"{column}_low"],
            rows[f"{column}_high"],
            color=line.get_color(),
            alpha=0.15,
            lw=0,
        )
    if condition == "keep":
        for level in (0.0, 1.0):
            ax.axhline(level, color="grey", ls=":", lw=0.8)
    elif "full" in part and np.isfinite(part["full"].iloc[0]):
        ax.axhline(part["full"].iloc[0], color="grey", ls=":", lw=0.8)
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(lambda x, _: f"{100 * x:g}%")
    ax.set_xlabel("k: share of the analysed FFN units in the set (per site)")
    ylabel, what = _LABELS[condition]
    ax.set_ylabel(ylabel.format(measure=_UNITS.get(measure, measure)))
    ax.legend(fontsize=8, ncols=2)
    set_title(ax, title or f"{what}: {_UNITS.get(measure, measure)}, task {task}", fontsize=10)
    return ax
