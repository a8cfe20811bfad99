"""Figures of the paper's Section 4: neuron overlap and parameter similarity against
transfer."""

from __future__ import annotations

import pandas as pd
import seaborn as sns
from matplotlib.axes import Axes

from .figure import label_step, new_axes, set_title
from ..neurons.analysis import correlate
from ..neurons.analysis import PAPER_LAYER_CORRELATION

_CONDITION_COLORS = {"task": "#c44e52", "random": "#4c72b0", "full": "#555555"}


def plot_overlap_gain(
    df: pd.DataFrame, *, x: str = "overlap", y: str = "gain", domain: str | None = "out", ax=None
) -> Axes:
    """Scatter of neuron overlap vs gain (``proportion_sweep`` rows of one ``domain``, or
    ``pairwise_transfer`` rows), coloured by condition (or same/other family), with Pearson and
    Spearman (``analysis.correlate``, 95% bootstrap interval) in the title. Also overlap vs
    forgetting: ``ex.forgetting_overlap`` rows with ``y="forgetting"``."""

    part = df[df["domain"] == domain] if domain is not None and "domain" in df else df
    ax = new_axes(ax, size=(6, 4.2))
    hue = "condition" if "condition" in part else ("same_family" if "same_family" in part else None)
    palette = _CONDITION_COLORS if hue == "condition" else None
    sns.scatterplot(
        part, x=x, y=y, hue=hue, style="p" if "p" in part else None, palette=palette, ax=ax
    )
    r = correlate(part[x].to_numpy(), part[y].to_numpy())
    set_title(
        ax,
        f"{y} vs {x} (n = {r['n']}): Pearson {r['pearson']:.2f} "
        f"[{r['pearson_low']:.2f}, {r['pearson_high']:.2f}], "
        f"Spearman {r['spearman']:.2f}",
        fontsize=9,
    )
    ax.axhline(0, color="#999999", lw=0.8)
    ax.set_xlabel(f"{x} (Jaccard)")
    ax.set_ylabel(f"{y} ({'nats' if 'nll' in y else 'metric'})")
    if hue is not None:
        ax.legend(fontsize=7)
    return ax


def plot_gain_vs_p(df: pd.DataFrame, *, value: str = "gain", ax=None) -> Axes:
    """Mean ``value`` over tasks (and seeds) against the trained proportion p, task neurons vs
    random neurons (full fine-tuning at p = 1), in-domain (solid) and out-of-domain (dashed)."""
    ax = new_axes(ax, size=(6, 4))
    frame = df.groupby(["condition", "domain", "p"], sort=False)[value].mean().reset_index()
    full = frame[frame.condition == "full"]
    for condition in ("task", "random"):
        for domain, style in (("in", "-"), ("out", "--")):
            part = frame[(frame.condition == condition) & (frame.domain == domain)]
            part = pd.concat([part, full[full.domain == domain]]).sort_values("p")
            if len(part):
                ax.plot(
                    part["p"],
                    part[value],
                    style,
                    marker="o",
                    color=_CONDITION_COLORS[condition],
                    label=f"{condition} neurons, {domain}-domain",
                )
    ax.axhline(0, color="#999999", lw=0.8)
    ax.set_xlabel("trained proportion p (1.0 = full fine-tuning)")
    ax.set_ylabel(f"mean {value}")
    set_title(ax, "Gain against the trained proportion")
    ax.legend(fontsize=7)
    return ax


def plot_similarity_heatmap(
    sim: pd.DataFrame, *, value: str = "similarity_update", ax=None
) -> Axes:
    """Heatmap, layer (rows) x test task (columns), of the parameter similarity
    (``similarity_vs_gain``; mean over the training tasks), the test tasks ordered by gain."""
    table = sim.pivot_table(index="layer", columns="task", values=value, aggfunc="mean")
    order = sim.groupby("task")["gain"].mean().sort_values().index
    table = table[[t for t in order if t in table.columns]]
    height = 1.6 + 0.16 * table.shape[0]
    ax = new_axes(ax, size=(max(5.0, 2.5 + 0.8 * table.shape[1]), height))
    sns.heatmap(
        table,
        cmap="viridis",
        ax=ax,
        yticklabels=label_step(table.shape[0], height - 1.6),  # every n-th layer, legible
        cbar_kws={"label": f"cosine ({value[11:]})"},
    )
    ax.tick_params(axis="x", rotation=30)
    for label in ax.get_xticklabels():
        label.set_horizontalalignment("right")
    ax.set_xlabel("test task (left to right: increasing gain)")
    set_title(ax, "Parameter similarity with the trained task's neurons")
    return ax


def plot_layer_correlation(corr: pd.DataFrame, *, ax=None) -> Axes:
    """Per-layer Pearson and Spearman correlation of similarity and gain
    (``layer_correlations``), one line per vectorisation, with the paper's ranges shaded
    (Pearson 0.79-0.97, Spearman 0.71-0.83)."""

    ax = new_axes(ax, size=(7, 4))
    colors = {"pearson": "#c44e52", "spearman": "#4c72b0"}
    for stat, (low, high) in PAPER_LAYER_CORRELATION.items():
        ax.axhspan(low, high, color=colors[stat], alpha=0.12, label=f"paper {stat} {low}-{high}")
    for vec, style in (("weights", ":"), ("update", "-")):
        part = (
            corr[corr.get("vectorisation", "weights") == vec] if "vectorisation" in corr else corr
        )
        if not len(part):
            continue
        for stat in ("pearson", "spearman"):
            ax.plot(
                part["layer"],
                part[stat],
                style,
                marker=".",
                color=colors[stat],
                label=f"ours {stat}, {vec}",
            )
    ax.axhline(0, color="#999999", lw=0.8)
    ax.set_ylim(-1.05, 1.05)
    ax.set_xlabel("layer")
    ax.set_ylabel("correlation of similarity and gain")
    set_title(ax, "Per-layer correlation of parameter similarity and generalization")
    ax.legend(fontsize=7, ncol=2)
    return ax


def plot_sweep_bars(view: pd.DataFrame, *, value: str = "gain", ax=None) -> Axes:
    """Per task, ``value`` of task neurons, random neurons (mean over seeds) and full
    fine-tuning at one p (``experiments.sweep_view``); out-of-domain tasks hatched."""
    ax = new_axes(ax, size=(7, 4))
    frame = view.assign(label=view["task"] + view["domain"].map({"in": "", "out": " (out)"}))
    sns.barplot(frame, x="label", y=value, hue="condition", palette=_CONDITION_COLORS, ax=ax)
    ax.axhline(0, color="#999999", lw=0.8)
    ax.set_xlabel("")
    ax.tick_params(axis="x", rotation=30)
    set_title(ax, f"{value} per task")
    ax.legend(fontsize=7)
    return ax


# --- continual learning (experiments.continual) -------------------------------------------------
