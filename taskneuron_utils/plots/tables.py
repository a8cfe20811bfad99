"""Figures of the paper's Tables 1 and 2 and of specificity: deactivation, neuron-only
fine-tuning, their sweeps over k and training budgets, the set x task effect matrix."""

from __future__ import annotations

import pandas as pd
import seaborn as sns
from matplotlib.axes import Axes

from .figure import new_axes, set_title


def _delta_frame(df: pd.DataFrame, value: str) -> pd.DataFrame:
    """Change of ``value`` against the ``none`` row of the same model and task."""
    base = df[df["condition"] == "none"].set_index(["model", "task"])[value]
    ref = base.reindex(pd.MultiIndex.from_frame(df[["model", "task"]])).values
    return df.assign(delta=df[value].values - ref)


def plot_deactivation_heatmap(
    df: pd.DataFrame, *, value: str = "nll", model: str | None = None, ax=None
) -> Axes:
    """Heatmap, deactivated set (rows) x evaluated task (columns), of the change of ``value``
    ("nll" or "score") against nothing deactivated (``experiments.deactivation``). Random rows
    are averaged over seeds. A strong diagonal means the sets are task-specific.
    """
    model = model or df["model"].iloc[0]
    part = _delta_frame(df[df["model"] == model], value)
    part = part[part["condition"] != "none"]
    tasks = list(dict.fromkeys(part["task"]))
    row_of = part["deactivated"].where(part["condition"] != "own", part["task"])
    table = part.assign(row=row_of).pivot_table(
        index="row", columns="task", values="delta", aggfunc="mean"
    )
    rows = [t for t in tasks if t in table.index] + [r for r in table.index if r not in tasks]
    table = table.loc[rows, tasks]
    scale = 100 if value == "score" else 1
    ax = new_axes(ax, size=(1.6 + 0.9 * len(tasks), 1.0 + 0.6 * len(rows)))
    limit = float(abs(table * scale).max().max()) or 1.0
    cmap = "RdBu" if value == "score" else "RdBu_r"
    sns.heatmap(
        table * scale,
        annot=len(tasks) <= 12,
        fmt=".2f" if value == "nll" else ".0f",
        cmap=cmap,
        center=0,
        vmin=-limit,
        vmax=limit,
        ax=ax,
        cbar_kws={
            "label": f"change of {'metric (points)' if value == 'score' else 'answer NLL (nats)'}"
        },
    )
    ax.set_xlabel("evaluated task")
    ax.set_ylabel("deactivated neurons of")
    set_title(ax, f"Deactivation on the {model} model")
    return ax


def plot_deactivation_bars(
    df: pd.DataFrame, *, value: str = "score", model: str | None = None, ax=None
) -> Axes:
    """Per task, ``value`` with nothing, random neurons (mean ± std over seeds) and the task's
    own neurons deactivated (``experiments.deactivation``)."""
    model = model or df["model"].iloc[0]
    part = df[(df["model"] == model) & df["condition"].isin(["none", "random", "own"])]
    stats = (
        part.groupby(["task", "condition"], sort=False)[value].agg(["mean", "std"]).reset_index()
    )
    tasks = list(dict.fromkeys(part["task"]))
    order = ["none", "random", "own"]
    labels = {"none": "nothing off", "random": "random neurons off", "own": "task neurons off"}
    colors = {"none": "#999999", "random": "#4c72b0", "own": "#c44e52"}
    ax = new_axes(ax, size=(max(5.5, 1.5 + 1.1 * len(tasks)), 4))
    width = 0.27
    for j, cond in enumerate(order):
        sub = stats[stats["condition"] == cond].set_index("task").reindex(tasks)
        x = [i + (j - 1) * width for i in range(len(tasks))]
        scale = 100 if value == "score" else 1
        ax.bar(
            x,
            sub["mean"] * scale,
            width,
            yerr=(sub["std"].fillna(0) * scale),
            capsize=3,
            label=labels[cond],
            color=colors[cond],
        )
    ax.set_xticks(range(len(tasks)))
    ax.set_xticklabels(tasks, rotation=30, ha="right")
    ax.set_ylabel("metric (x100)" if value == "score" else "answer NLL (nats)")
    set_title(ax, f"Deactivation on the {model} model (error bars: std over random seeds)")
    ax.legend(fontsize=8)
    return ax


def plot_finetuning(df: pd.DataFrame, *, value: str = "score", ax=None) -> Axes:
    """Per task, ``value`` after no training, training the task's neurons, as many random
    neurons, and full fine-tuning (``experiments.neuron_finetuning``)."""
    labels = {
        "none": "no training",
        "neurons": "task neurons",
        "random": "random neurons",
        "full": "full fine-tuning",
    }
    methods = [m for m in labels if m in set(df["method"])]
    tasks = list(dict.fromkeys(df["task"]))
    ax = new_axes(ax, size=(max(5.0, 1.5 + 1.2 * len(tasks)), 4))
    frame = df.assign(
        method=df["method"].map(labels), shown=df[value] * (100 if value == "score" else 1)
    )
    sns.barplot(
        frame,
        x="task",
        y="shown",
        hue="method",
        order=tasks,
        hue_order=[labels[m] for m in methods],
        palette="colorblind",
        ax=ax,
    )
    ax.set_ylabel("metric (x100)" if value == "score" else "answer NLL (nats)")
    ax.set_xlabel("")
    ax.tick_params(axis="x", rotation=30)
    set_title(ax, "Fine-tuning only the task-specific neurons")
    ax.legend(fontsize=8)
    return ax


def plot_k_sweep(
    intervals: pd.DataFrame, *, value: str = "nll", ax=None, model: str | None = None
) -> Axes:
    """Effect of switching off the own, random and other tasks' sets against the fraction k
    (log axis), mean over tasks, with bootstrap 95% bands over test examples and seeds:
    ``experiments.table1_intervals(experiments.k_sweep(...))``. ``value``: "nll" (change in
    nats per answer token) or "score" (change of the metric, x100)."""
    model = model or intervals["model"].iloc[0]
    table = intervals[
        (intervals["model"] == model)
        & (intervals["measure"] == value)
        & (intervals["task"] == "all")
    ]
    overall = table[table["category"] == "all"]
    table = (overall if len(overall) else table).sort_values("k")
    scale = 100 if value == "score" else 1
    ax = new_axes(ax, size=(6, 4))
    for group, color in (("own", "#c44e52"), ("random", "#4c72b0"), ("other", "#8c8c8c")):
        column = f"{group}_effect"
        if table[column].notna().any():
            ax.plot(
                table["k"],
                table[column] * scale,
                marker="o",
                color=color,
                label=f"{group} neurons off",
            )
            ax.fill_between(
                table["k"],
                table[f"{column}_low"] * scale,
                table[f"{column}_high"] * scale,
                color=color,
                alpha=0.2,
            )
    ax.set_xscale("log")
    ax.axhline(0, color="#999999", lw=0.8)
    ax.set_xlabel("fraction k of neurons per site switched off")
    ax.set_ylabel(
        "change of metric (points)" if value == "score" else "change of answer NLL (nats)"
    )
    set_title(ax, f"Deactivation against k, {model} model (bands: 95% bootstrap)")
    ax.legend(fontsize=8)
    return ax


def plot_budget(df: pd.DataFrame, *, value: str = "nll", ax=None) -> Axes:
    """``value`` at each training budget per method (``experiments.budget_sweep``): the mean
    over tasks per seed, then the mean over seeds (line) and the range over seeds (band); the
    untrained model dashed. ``value``: "nll" / "dev_nll" (nats per answer token), "score"
    (x100), "dev_auc_mean" (mean dev NLL over the steps so far)."""
    labels = {"neurons": "task neurons", "random": "random neurons", "full": "full fine-tuning"}
    at = df[df["is_budget"]]
    per_seed = at.groupby(["method", "step", "seed"], sort=False)[value].mean().reset_index()
    scale = 100 if value == "score" else 1
    ax = new_axes(ax, size=(6, 4))
    for method, color in zip(labels, ("#c44e52", "#4c72b0", "#55a868")):
        part = per_seed[(per_seed["method"] == method) & (per_seed["step"] > 0)]
        if not len(part):
            continue
        stats = part.groupby("step")[value].agg(["mean", "min", "max"]).sort_index() * scale
        ax.plot(stats.index, stats["mean"], marker="o", color=color, label=labels[method])
        ax.fill_between(stats.index, stats["min"], stats["max"], color=color, alpha=0.2)
    start = per_seed[per_seed["step"] == 0][value]
    if len(start) and start.notna().any():
        ax.axhline(start.mean() * scale, color="#999999", ls="--", lw=1, label="untrained")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("training steps (budget)")
    names = {
        "score": "test metric (x100)",
        "nll": "test answer NLL (nats)",
        "dev_nll": "dev answer NLL (nats)",
        "dev_auc_mean": "mean dev NLL so far (nats)",
    }
    ax.set_ylabel(names.get(value, value))
    set_title(ax, "Fine-tuning against the budget (bands: range over seeds)")
    ax.legend(fontsize=8)
    return ax


def plot_training_curves(histories: dict, *, ax=None, smooth: int = 3) -> Axes:
    """Training loss per step of several ``finetune`` histories ({label: DataFrame})."""
    ax = new_axes(ax, size=(6, 4))
    for label, history in histories.items():
        losses = history.dropna(subset=["loss"])
        ax.plot(losses["step"], losses["loss"].rolling(smooth, min_periods=1).mean(), label=label)
    ax.set_xlabel("step")
    ax.set_ylabel("training loss (answer NLL, nats)")
    set_title(ax, "Training curves")
    ax.legend(fontsize=8)
    return ax


# --- generalization (experiments.generalization) -------------------------------------------


def plot_specificity(
    matrix: pd.DataFrame, *, value: str = "nll", ax=None, title: str | None = None
) -> Axes:
    """Heatmap of an effect matrix, switched-off set (rows) x evaluated task (columns)
    (``experiments.deactivation_matrix``: harm beyond the random baseline, larger = more
    harmful), with each task's own set outlined. A task-specific family lights up the outlined
    diagonal; a family of generally important neurons lights up whole columns. ``value``
    ("nll" or "score") labels the colour bar; "score" cells are shown x100 (metric points)."""
    from matplotlib.patches import Rectangle

    shown = matrix * (100 if value == "score" else 1)
    ax = new_axes(ax, size=(1.8 + 0.9 * matrix.shape[1], 1.0 + 0.6 * matrix.shape[0]))
    limit = float(shown.abs().max().max()) or 1.0
    unit = "drop of metric (points)" if value == "score" else "rise of answer NLL (nats)"
    sns.heatmap(
        shown,
        annot=matrix.shape[1] <= 12,
        fmt=".0f" if value == "score" else ".2f",
        cmap="RdBu_r",
        center=0,
        vmin=-limit,
        vmax=limit,
        ax=ax,
        cbar_kws={"label": unit},
    )
    for j, task in enumerate(matrix.columns):
        if task in matrix.index:
            i = list(matrix.index).index(task)
            ax.add_patch(Rectangle((j, i), 1, 1, fill=False, edgecolor="black", lw=2))
    ax.set_xlabel("evaluated task")
    ax.set_ylabel("switched-off set")
    set_title(ax, title or "Harm of each set beyond random neurons (own set outlined)")
    return ax


def plot_dominance_vs_k(
    scores: pd.DataFrame, *, value: str = "dominance", ax=None, title: str | None = None
) -> Axes:
    """Diagonal dominance (or ``value="selectivity"``) of each family of sets against k:
    the ``task == "mean"`` rows of ``experiments.specificity_scores`` with a ``k`` column (a
    fraction), one line per ``family`` with its bootstrap interval as error bars. 1 = only the
    own set harms its task, 0 = the other tasks' sets harm it as much."""
    means = scores[scores["task"] == "mean"] if "task" in scores else scores
    ax = new_axes(ax)
    for family, part in means.groupby("family", sort=False):
        part = part.sort_values("k")
        low, high = part[f"{value}_low"], part[f"{value}_high"]
        ax.errorbar(
            100 * part["k"],
            part[value],
            yerr=[part[value] - low, high - part[value]],
            marker="o",
            capsize=3,
            label=family,
        )
    ax.axhline(0, color="grey", lw=0.8)
    ax.set_xscale("log")
    ax.set_xticks(
        sorted(100 * means["k"].unique()),
        labels=[f"{100 * k:g}%" for k in sorted(means["k"].unique())],
    )
    ax.set_xlabel("k (neurons per site)")
    ax.set_ylabel(value)
    set_title(ax, title or f"{value.capitalize()} of each selection method")
    ax.legend(fontsize=8)
    return ax
