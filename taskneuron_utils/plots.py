"""Figures, one function a figure. Each takes the DataFrame an analysis or experiment returns,
draws on ``ax`` (a new figure when omitted) and returns the matplotlib Figure."""

from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns


def _axes(ax, size=(6, 4)):
    if ax is None:
        fig, ax = plt.subplots(figsize=size, layout="constrained")
    return ax.figure, ax


def plot_overlap(matrix: pd.DataFrame, *, baseline: float | None = None, ax=None,
                 title: str = "Overlap of task-specific neurons (Jaccard)"):
    """Heatmap of a task x task overlap matrix (``analysis.overlap_matrix``).

    ``baseline`` (for example ``analysis.expected_random_jaccard(k)``) is shown in the title so
    that readers can tell a real overlap from chance.
    """
    n = len(matrix)
    fig, ax = _axes(ax, size=(1.0 + 0.8 * n, 0.6 + 0.7 * n))
    sns.heatmap(matrix, annot=n <= 14, fmt=".2f", cmap="viridis", vmin=0, vmax=1, square=True,
                cbar_kws={"label": "Jaccard"}, ax=ax)
    if baseline is not None:
        title += f"\nrandom sets of the same size: {baseline:.3f}"
    ax.set_title(title)
    ax.set_xlabel("")
    ax.set_ylabel("")
    return fig


def plot_layer_profile(profile: pd.DataFrame, *, value: str = "global_share", ax=None):
    """Per-layer profile of each task (``analysis.layer_profile``), all site kinds together.

    ``value="global_share"``: fraction of the layer's neurons in the task's global top-k.
    ``value="mean_score"``: mean relevance of the layer's neurons (nats per example).
    """
    fig, ax = _axes(ax, size=(7, 4))
    if value == "global_share":
        selected = (profile["global_share"] * profile["neurons"]).groupby(
            [profile["task"], profile["layer"]]).sum()
        neurons = profile.groupby(["task", "layer"])["neurons"].sum()
        per_layer = (selected / neurons).rename(value).reset_index()
        ylabel = "share of the layer's neurons in the global top-k"
    else:
        per_layer = profile.groupby(["task", "layer"])[value].mean().reset_index()
        ylabel = "mean relevance (nats per example)"
    sns.lineplot(per_layer, x="layer", y=value, hue="task", marker="o", ax=ax)
    ax.set_ylabel(ylabel)
    ax.set_title("Where the task-specific neurons sit")
    return fig


def plot_kind_profile(profile: pd.DataFrame, *, value: str = "mean_score", ax=None):
    """Per-layer profile split by site kind (``gate``/``up``/``down``...), tasks averaged."""
    fig, ax = _axes(ax, size=(7, 4))
    per_kind = profile.groupby(["kind", "layer"])[value].mean().reset_index()
    sns.lineplot(per_kind, x="layer", y=value, hue="kind", marker="o", ax=ax)
    ax.set_title(f"{value} by layer and site kind (mean over tasks)")
    return fig
