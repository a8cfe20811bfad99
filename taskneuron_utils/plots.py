"""Figures, one function a figure. Each takes the DataFrame an analysis or experiment returns,
draws on ``ax`` (a new figure when omitted) and returns the matplotlib Axes it drew on, so a
notebook cell ending in a plot call shows the figure once, with no trailing ``;``:

    ax = plots.plot_overlap(matrix)               # a new figure
    ax.figure.savefig("overlap.png")
    fig, axes = plt.subplots(1, 2)
    plots.plot_layer_profile(profile, ax=axes[0])  # drawn into a panel of your own figure
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns
from matplotlib.axes import Axes


def _axes(ax, size=(6, 4)) -> Axes:
    """``ax``, or the Axes of a new constrained-layout figure of ``size`` inches."""
    if ax is None:
        _, ax = plt.subplots(figsize=size, layout="constrained")
    return ax


def plot_overlap(matrix: pd.DataFrame, *, baseline: float | None = None, ax=None,
                 title: str = "Overlap of task-specific neurons (Jaccard)") -> Axes:
    """Heatmap of a task x task overlap matrix (``analysis.overlap_matrix``).

    ``baseline`` (for example ``analysis.expected_random_jaccard(k)``) is shown in the title so
    that readers can tell a real overlap from chance.
    """
    n = len(matrix)
    ax = _axes(ax, size=(1.0 + 0.8 * n, 0.6 + 0.7 * n))
    sns.heatmap(matrix, annot=n <= 14, fmt=".2f", cmap="viridis", vmin=0, vmax=1, square=True,
                cbar_kws={"label": "Jaccard"}, ax=ax)
    if baseline is not None:
        title += f"\nrandom sets of the same size: {baseline:.3f}"
    ax.set_title(title)
    ax.set_xlabel("")
    ax.set_ylabel("")
    return ax


def plot_layer_profile(profile: pd.DataFrame, *, value: str = "global_share", ax=None) -> Axes:
    """Per-layer profile of each task (``analysis.layer_profile``), all site kinds together.

    ``value="global_share"``: fraction of the layer's neurons in the task's global top-k.
    ``value="mean_score"``: mean relevance of the layer's neurons (nats per example).
    """
    ax = _axes(ax, size=(7, 4))
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
    return ax


def plot_kind_profile(profile: pd.DataFrame, *, value: str = "mean_score", ax=None) -> Axes:
    """Per-layer profile split by site kind (``gate``/``up``/``down``...), tasks averaged."""
    ax = _axes(ax, size=(7, 4))
    per_kind = profile.groupby(["kind", "layer"])[value].mean().reset_index()
    sns.lineplot(per_kind, x="layer", y=value, hue="kind", marker="o", ax=ax)
    ax.set_title(f"{value} by layer and site kind (mean over tasks)")
    return ax


def _delta_frame(df: pd.DataFrame, value: str) -> pd.DataFrame:
    """Change of ``value`` against the ``none`` row of the same model and task."""
    base = df[df["condition"] == "none"].set_index(["model", "task"])[value]
    ref = base.reindex(pd.MultiIndex.from_frame(df[["model", "task"]])).values
    return df.assign(delta=df[value].values - ref)


def plot_deactivation_heatmap(df: pd.DataFrame, *, value: str = "nll", model: str | None = None,
                              ax=None) -> Axes:
    """Heatmap, deactivated set (rows) x evaluated task (columns), of the change of ``value``
    ("nll" or "score") against nothing deactivated (``experiments.deactivation``). Random rows
    are averaged over seeds. A strong diagonal means the sets are task-specific.
    """
    model = model or df["model"].iloc[0]
    part = _delta_frame(df[df["model"] == model], value)
    part = part[part["condition"] != "none"]
    tasks = list(dict.fromkeys(part["task"]))
    row_of = part["deactivated"].where(part["condition"] != "own", part["task"])
    table = part.assign(row=row_of).pivot_table(index="row", columns="task", values="delta",
                                                aggfunc="mean")
    rows = [t for t in tasks if t in table.index] + [r for r in table.index if r not in tasks]
    table = table.loc[rows, tasks]
    scale = 100 if value == "score" else 1
    ax = _axes(ax, size=(1.6 + 0.9 * len(tasks), 1.0 + 0.6 * len(rows)))
    limit = float(abs(table * scale).max().max()) or 1.0
    cmap = "RdBu" if value == "score" else "RdBu_r"
    sns.heatmap(table * scale, annot=len(tasks) <= 12, fmt=".2f" if value == "nll" else ".0f",
                cmap=cmap, center=0, vmin=-limit, vmax=limit, ax=ax,
                cbar_kws={"label": f"change of {'metric (points)' if value == 'score' else 'answer NLL (nats)'}"})
    ax.set_xlabel("evaluated task")
    ax.set_ylabel("deactivated neurons of")
    ax.set_title(f"Deactivation on the {model} model")
    return ax


def plot_deactivation_bars(df: pd.DataFrame, *, value: str = "score", model: str | None = None,
                           ax=None) -> Axes:
    """Per task, ``value`` with nothing, random neurons (mean ± std over seeds) and the task's
    own neurons deactivated (``experiments.deactivation``)."""
    model = model or df["model"].iloc[0]
    part = df[(df["model"] == model) & df["condition"].isin(["none", "random", "own"])]
    stats = part.groupby(["task", "condition"], sort=False)[value].agg(["mean", "std"]).reset_index()
    tasks = list(dict.fromkeys(part["task"]))
    order = ["none", "random", "own"]
    labels = {"none": "nothing off", "random": "random neurons off", "own": "task neurons off"}
    colors = {"none": "#999999", "random": "#4c72b0", "own": "#c44e52"}
    ax = _axes(ax, size=(max(5.5, 1.5 + 1.1 * len(tasks)), 4))
    width = 0.27
    for j, cond in enumerate(order):
        sub = stats[stats["condition"] == cond].set_index("task").reindex(tasks)
        x = [i + (j - 1) * width for i in range(len(tasks))]
        scale = 100 if value == "score" else 1
        ax.bar(x, sub["mean"] * scale, width, yerr=(sub["std"].fillna(0) * scale), capsize=3,
               label=labels[cond], color=colors[cond])
    ax.set_xticks(range(len(tasks)))
    ax.set_xticklabels(tasks, rotation=30, ha="right")
    ax.set_ylabel("metric (x100)" if value == "score" else "answer NLL (nats)")
    ax.set_title(f"Deactivation on the {model} model (error bars: std over random seeds)")
    ax.legend(fontsize=8)
    return ax


def plot_finetuning(df: pd.DataFrame, *, value: str = "score", ax=None) -> Axes:
    """Per task, ``value`` after no training, training the task's neurons, as many random
    neurons, and full fine-tuning (``experiments.neuron_finetuning``)."""
    labels = {"none": "no training", "neurons": "task neurons", "random": "random neurons",
              "full": "full fine-tuning"}
    methods = [m for m in labels if m in set(df["method"])]
    tasks = list(dict.fromkeys(df["task"]))
    ax = _axes(ax, size=(max(5.0, 1.5 + 1.2 * len(tasks)), 4))
    frame = df.assign(method=df["method"].map(labels),
                      shown=df[value] * (100 if value == "score" else 1))
    sns.barplot(frame, x="task", y="shown", hue="method", order=tasks,
                hue_order=[labels[m] for m in methods], ax=ax)
    ax.set_ylabel("metric (x100)" if value == "score" else "answer NLL (nats)")
    ax.set_xlabel("")
    ax.tick_params(axis="x", rotation=30)
    ax.set_title("Fine-tuning only the task-specific neurons")
    ax.legend(fontsize=8)
    return ax


def plot_training_curves(histories: dict, *, ax=None, smooth: int = 3) -> Axes:
    """Training loss per step of several ``finetune`` histories ({label: DataFrame})."""
    ax = _axes(ax, size=(6, 4))
    for label, history in histories.items():
        losses = history.dropna(subset=["loss"])
        ax.plot(losses["step"], losses["loss"].rolling(smooth, min_periods=1).mean(), label=label)
    ax.set_xlabel("step")
    ax.set_ylabel("training loss (answer NLL, nats)")
    ax.set_title("Training curves")
    ax.legend(fontsize=8)
    return ax
