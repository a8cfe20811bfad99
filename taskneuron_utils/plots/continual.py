"""Figures of the continual-learning record (the paper's Table 5): accuracy matrices, CL and
FG per method, each task's score along the sequence."""

from __future__ import annotations

import pandas as pd
import seaborn as sns
from matplotlib.axes import Axes

from .figure import new_axes, set_title


def plot_cl_matrix(scores: pd.DataFrame, *, ax=None, title: str | None = None) -> Axes:
    """Heatmap of an accuracy matrix (``ContinualResult.scores``: row i = after training task i,
    column j = task j), x100."""
    ax = new_axes(ax, size=(5, 4))
    sns.heatmap(
        scores * 100,
        annot=True,
        fmt=".0f",
        cmap="viridis",
        vmin=0,
        vmax=100,
        cbar_kws={"label": "score x100"},
        ax=ax,
    )
    ax.set_xlabel("evaluated task")
    ax.set_ylabel("after training")
    set_title(ax, title or "Score of every task after each stage")
    return ax


def plot_cl_summary(
    summary: pd.DataFrame, *, metrics=("CL", "FG"), reference: float | None = None, ax=None
) -> Axes:
    """CL and FG per method (bars: mean over the rows of a method, e.g. orders or seeds; error
    bars: their spread, the standard deviation), from rows of ``ContinualResult.summary()``.
    ``reference`` (e.g. the per-task fine-tuning score x100) is drawn as a dashed line."""
    ax = new_axes(ax, size=(7, 4))
    long = summary.melt(id_vars=["method"], value_vars=list(metrics), var_name="metric")
    sns.barplot(
        long, x="method", y="value", hue="metric", errorbar="sd", palette="colorblind", ax=ax
    )
    if reference is not None:
        ax.axhline(reference, color="#444444", ls="--", lw=1, label="per-task FT (CL)")
    ax.set_xlabel("")
    ax.set_ylabel("x100 (CL) / % (FG)")
    ax.tick_params(axis="x", rotation=30)
    set_title(ax, "Final average score (CL) and retention (FG) per method")
    ax.legend(fontsize=7)
    return ax


def plot_cl_trajectories(scores: pd.DataFrame, *, ax=None, title: str | None = None) -> Axes:
    """Each task's score (x100) along the sequence, from the stage it is trained on (dotted
    before it)."""
    ax = new_axes(ax, size=(6, 4))
    stages = list(range(len(scores)))
    for j, task in enumerate(scores.columns):
        values = scores[task].values * 100
        (line,) = ax.plot(stages[j:], values[j:], marker="o", label=task)
        if j:
            ax.plot(stages[: j + 1], values[: j + 1], ":", color=line.get_color())
    ax.set_xticks(stages, [f"{i}: {name}" for i, name in enumerate(scores.index)], rotation=30)
    ax.set_ylim(0, 105)
    ax.set_xlabel("after training")
    ax.set_ylabel("score x100")
    set_title(ax, title or "Each task's score along the sequence")
    ax.legend(fontsize=7)
    return ax


# --- specificity (experiments.specificity) ------------------------------------------------------
