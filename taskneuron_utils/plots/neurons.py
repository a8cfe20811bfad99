"""Figures of detected neuron sets: their overlap and where they sit."""

from __future__ import annotations

import pandas as pd
import seaborn as sns
from matplotlib.axes import Axes

from .figure import new_axes, set_title


def plot_overlap(
    matrix: pd.DataFrame,
    *,
    baseline: float | None = None,
    ax=None,
    title: str = "Overlap of task-specific neurons (Jaccard)",
) -> Axes:
    """Heatmap of a task x task overlap matrix (``analysis.overlap_matrix``).

    ``baseline`` (for example ``analysis.expected_random_jaccard(k)``) is shown in the title so
    that readers can tell a real overlap from chance.
    """
    n = len(matrix)
    # Room for the task names (rotated ticks) and a two-line title even for 2-3 tasks.
    ax = new_axes(ax, size=(max(6.0, 2.5 + 0.8 * n), max(5.0, 2.0 + 0.7 * n)))
    sns.heatmap(
        matrix,
        annot=n <= 14,
        fmt=".2f",
        cmap="viridis",
        vmin=0,
        vmax=1,
        square=True,
        cbar_kws={"label": "Jaccard"},
        ax=ax,
    )
    if baseline is not None:
        title += f"\nrandom sets of the same size: {baseline:.3f}"
    set_title(ax, title, fontsize=11)
    ax.set_xlabel("")
    ax.set_ylabel("")
    return ax


def plot_layer_profile(profile: pd.DataFrame, *, value: str = "global_share", ax=None) -> Axes:
    """Per-layer profile of each task (``analysis.layer_profile``), all site kinds together.

    ``value="global_share"``: fraction of the layer's neurons in the task's global top-k.
    ``value="mean_score"``: mean relevance of the layer's neurons (nats per example).
    """
    ax = new_axes(ax, size=(7, 4))
    if value == "global_share":
        selected = (
            (profile["global_share"] * profile["neurons"])
            .groupby([profile["task"], profile["layer"]])
            .sum()
        )
        neurons = profile.groupby(["task", "layer"])["neurons"].sum()
        per_layer = (selected / neurons).rename(value).reset_index()
        ylabel = "share of the layer's neurons in the global top-k"
    else:
        per_layer = profile.groupby(["task", "layer"])[value].mean().reset_index()
        ylabel = "mean relevance (nats per example)"
    sns.lineplot(per_layer, x="layer", y=value, hue="task", marker="o", palette="colorblind", ax=ax)
    ax.set_ylabel(ylabel)
    set_title(ax, "Where the task-specific neurons sit")
    return ax


def plot_kind_profile(profile: pd.DataFrame, *, value: str = "mean_score", ax=None) -> Axes:
    """Per-layer profile split by site kind (``gate``/``up``/``down``...), tasks averaged."""
    ax = new_axes(ax, size=(7, 4))
    per_kind = profile.groupby(["kind", "layer"])[value].mean().reset_index()
    sns.lineplot(per_kind, x="layer", y=value, hue="kind", marker="o", palette="colorblind", ax=ax)
    set_title(ax, f"{value} by layer and site kind (mean over tasks)")
    return ax
