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
    # Room for the task names (rotated ticks) and a two-line title even for 2-3 tasks.
    ax = _axes(ax, size=(max(6.0, 2.5 + 0.8 * n), max(5.0, 2.0 + 0.7 * n)))
    sns.heatmap(matrix, annot=n <= 14, fmt=".2f", cmap="viridis", vmin=0, vmax=1, square=True,
                cbar_kws={"label": "Jaccard"}, ax=ax)
    if baseline is not None:
        title += f"\nrandom sets of the same size: {baseline:.3f}"
    ax.set_title(title, fontsize=11)
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


def plot_k_sweep(df: pd.DataFrame, *, value: str = "nll", ax=None, model: str | None = None,
                 n_resamples: int = 2000) -> Axes:
    """Effect of switching off the own, random and other tasks' sets against the fraction k
    (log axis), mean over tasks, with bootstrap 95% bands over test examples and seeds
    (``experiments.k_sweep``'s frame, through ``experiments.table1_intervals``). ``value``:
    "nll" (change in nats per answer token) or "score" (change of the metric, x100)."""
    from .experiments.intervals import table1_intervals

    model = model or df["model"].iloc[0]
    table = table1_intervals(df[df["model"] == model], n_resamples=n_resamples)
    table = table[(table["measure"] == value) & (table["task"] == "all")]
    overall = table[table["category"] == "all"]
    table = (overall if len(overall) else table).sort_values("k")
    scale = 100 if value == "score" else 1
    ax = _axes(ax, size=(6, 4))
    for group, color in (("own", "#c44e52"), ("random", "#4c72b0"), ("other", "#8c8c8c")):
        column = f"{group}_effect"
        if table[column].notna().any():
            ax.plot(table["k"], table[column] * scale, marker="o", color=color,
                    label=f"{group} neurons off")
            ax.fill_between(table["k"], table[f"{column}_low"] * scale,
                            table[f"{column}_high"] * scale, color=color, alpha=0.2)
    ax.set_xscale("log")
    ax.axhline(0, color="#999999", lw=0.8)
    ax.set_xlabel("fraction k of neurons per site switched off")
    ax.set_ylabel("change of metric (points)" if value == "score" else
                  "change of answer NLL (nats)")
    ax.set_title(f"Deactivation against k, {model} model (bands: 95% bootstrap)")
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
    ax = _axes(ax, size=(6, 4))
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
    names = {"score": "test metric (x100)", "nll": "test answer NLL (nats)",
             "dev_nll": "dev answer NLL (nats)", "dev_auc_mean": "mean dev NLL so far (nats)"}
    ax.set_ylabel(names.get(value, value))
    ax.set_title("Fine-tuning against the budget (bands: range over seeds)")
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


# --- generalization (experiments.generalization) -------------------------------------------

_CONDITION_COLORS = {"task": "#c44e52", "random": "#4c72b0", "full": "#555555"}


def plot_overlap_gain(df: pd.DataFrame, *, x: str = "overlap", y: str = "gain",
                      domain: str | None = "out", ax=None) -> Axes:
    """Scatter of neuron overlap vs gain (``proportion_sweep`` rows of one ``domain``, or
    ``pairwise_transfer`` rows), coloured by condition (or same/other family), with Pearson and
    Spearman (``analysis.correlate``, 95% bootstrap interval) in the title. Also overlap vs
    forgetting: ``ex.forgetting_overlap`` rows with ``y="forgetting"``."""
    from .analysis import correlate

    part = df[df["domain"] == domain] if domain is not None and "domain" in df else df
    ax = _axes(ax, size=(6, 4.2))
    hue = "condition" if "condition" in part else ("same_family" if "same_family" in part else None)
    palette = _CONDITION_COLORS if hue == "condition" else None
    sns.scatterplot(part, x=x, y=y, hue=hue, style="p" if "p" in part else None,
                    palette=palette, ax=ax)
    r = correlate(part[x].to_numpy(), part[y].to_numpy())
    ax.set_title(f"{y} vs {x} (n = {r['n']}): Pearson {r['pearson']:.2f} "
                 f"[{r['pearson_low']:.2f}, {r['pearson_high']:.2f}], "
                 f"Spearman {r['spearman']:.2f}", fontsize=9)
    ax.axhline(0, color="#999999", lw=0.8)
    ax.set_xlabel(f"{x} (Jaccard)")
    ax.set_ylabel(f"{y} ({'nats' if 'nll' in y else 'metric'})")
    if hue is not None:
        ax.legend(fontsize=7)
    return ax


def plot_gain_vs_p(df: pd.DataFrame, *, value: str = "gain", ax=None) -> Axes:
    """Mean ``value`` over tasks (and seeds) against the trained proportion p, task neurons vs
    random neurons (full fine-tuning at p = 1), in-domain (solid) and out-of-domain (dashed)."""
    ax = _axes(ax, size=(6, 4))
    frame = df.groupby(["condition", "domain", "p"], sort=False)[value].mean().reset_index()
    full = frame[frame.condition == "full"]
    for condition in ("task", "random"):
        for domain, style in (("in", "-"), ("out", "--")):
            part = frame[(frame.condition == condition) & (frame.domain == domain)]
            part = pd.concat([part, full[full.domain == domain]]).sort_values("p")
            if len(part):
                ax.plot(part["p"], part[value], style, marker="o",
                        color=_CONDITION_COLORS[condition], label=f"{condition} neurons, {domain}-domain")
    ax.axhline(0, color="#999999", lw=0.8)
    ax.set_xlabel("trained proportion p (1.0 = full fine-tuning)")
    ax.set_ylabel(f"mean {value}")
    ax.set_title("Gain against the trained proportion")
    ax.legend(fontsize=7)
    return ax


def plot_similarity_heatmap(sim: pd.DataFrame, *, value: str = "similarity_update",
                            ax=None) -> Axes:
    """Heatmap, layer (rows) x test task (columns), of the parameter similarity
    (``similarity_vs_gain``; mean over the training tasks), the test tasks ordered by gain."""
    table = sim.pivot_table(index="layer", columns="task", values=value, aggfunc="mean")
    order = sim.groupby("task")["gain"].mean().sort_values().index
    table = table[[t for t in order if t in table.columns]]
    ax = _axes(ax, size=(1.5 + 1.0 * table.shape[1], 1.0 + 0.18 * table.shape[0]))
    sns.heatmap(table, cmap="viridis", ax=ax, cbar_kws={"label": f"cosine ({value[11:]})"})
    ax.set_xlabel("test task (left to right: increasing gain)")
    ax.set_title("Parameter similarity with the trained task's neurons")
    return ax


def plot_layer_correlation(corr: pd.DataFrame, *, ax=None) -> Axes:
    """Per-layer Pearson and Spearman correlation of similarity and gain
    (``layer_correlations``), one line per vectorisation, with the paper's ranges shaded
    (Pearson 0.79-0.97, Spearman 0.71-0.83)."""
    from .experiments.generalization import PAPER_LAYER_CORRELATION

    ax = _axes(ax, size=(7, 4))
    colors = {"pearson": "#c44e52", "spearman": "#4c72b0"}
    for stat, (low, high) in PAPER_LAYER_CORRELATION.items():
        ax.axhspan(low, high, color=colors[stat], alpha=0.12, label=f"paper {stat} {low}-{high}")
    for vec, style in (("weights", ":"), ("update", "-")):
        part = corr[corr.get("vectorisation", "weights") == vec] if "vectorisation" in corr else corr
        if not len(part):
            continue
        for stat in ("pearson", "spearman"):
            ax.plot(part["layer"], part[stat], style, marker=".", color=colors[stat],
                    label=f"ours {stat}, {vec}")
    ax.axhline(0, color="#999999", lw=0.8)
    ax.set_ylim(-1.05, 1.05)
    ax.set_xlabel("layer")
    ax.set_ylabel("correlation of similarity and gain")
    ax.set_title("Per-layer correlation of parameter similarity and generalization")
    ax.legend(fontsize=7, ncol=2)
    return ax


def plot_sweep_bars(view: pd.DataFrame, *, value: str = "gain", ax=None) -> Axes:
    """Per task, ``value`` of task neurons, random neurons (mean over seeds) and full
    fine-tuning at one p (``experiments.sweep_view``); out-of-domain tasks hatched."""
    ax = _axes(ax, size=(7, 4))
    frame = view.assign(label=view["task"] + view["domain"].map({"in": "", "out": " (out)"}))
    sns.barplot(frame, x="label", y=value, hue="condition", palette=_CONDITION_COLORS, ax=ax)
    ax.axhline(0, color="#999999", lw=0.8)
    ax.set_xlabel("")
    ax.tick_params(axis="x", rotation=30)
    ax.set_title(f"{value} per task")
    ax.legend(fontsize=7)
    return ax


# --- continual learning (experiments.continual) -------------------------------------------------


def plot_cl_matrix(scores: pd.DataFrame, *, ax=None, title: str | None = None) -> Axes:
    """Heatmap of an accuracy matrix (``ContinualResult.scores``: row i = after training task i,
    column j = task j), x100."""
    ax = _axes(ax, size=(5, 4))
    sns.heatmap(scores * 100, annot=True, fmt=".0f", cmap="viridis", vmin=0, vmax=100,
                cbar_kws={"label": "score x100"}, ax=ax)
    ax.set_xlabel("evaluated task")
    ax.set_ylabel("after training")
    ax.set_title(title or "Score of every task after each stage")
    return ax


def plot_cl_summary(summary: pd.DataFrame, *, metrics=("CL", "FG"), reference: float | None = None,
                    ax=None) -> Axes:
    """CL and FG per method (bars: mean over the rows of a method, e.g. orders or seeds; error
    bars: their spread, the standard deviation), from rows of ``ContinualResult.summary()``.
    ``reference`` (e.g. the per-task fine-tuning score x100) is drawn as a dashed line."""
    ax = _axes(ax, size=(7, 4))
    long = summary.melt(id_vars=["method"], value_vars=list(metrics), var_name="metric")
    sns.barplot(long, x="method", y="value", hue="metric", errorbar="sd", ax=ax)
    if reference is not None:
        ax.axhline(reference, color="#444444", ls="--", lw=1, label="per-task FT (CL)")
    ax.set_xlabel("")
    ax.set_ylabel("x100 (CL) / % (FG)")
    ax.tick_params(axis="x", rotation=30)
    ax.set_title("Final average score (CL) and retention (FG) per method")
    ax.legend(fontsize=7)
    return ax


def plot_cl_trajectories(scores: pd.DataFrame, *, ax=None, title: str | None = None) -> Axes:
    """Each task's score (x100) along the sequence, from the stage it is trained on (dotted
    before it)."""
    ax = _axes(ax, size=(6, 4))
    stages = list(range(len(scores)))
    for j, task in enumerate(scores.columns):
        values = scores[task].values * 100
        line, = ax.plot(stages[j:], values[j:], marker="o", label=task)
        if j:
            ax.plot(stages[:j + 1], values[:j + 1], ":", color=line.get_color())
    ax.set_xticks(stages, [f"{i}: {name}" for i, name in enumerate(scores.index)], rotation=30)
    ax.set_ylim(0, 105)
    ax.set_xlabel("after training")
    ax.set_ylabel("score x100")
    ax.set_title(title or "Each task's score along the sequence")
    ax.legend(fontsize=7)
    return ax


# --- specificity (experiments.specificity) ------------------------------------------------------


def plot_specificity(matrix: pd.DataFrame, *, value: str = "nll", ax=None,
                     title: str | None = None) -> Axes:
    """Heatmap of an effect matrix, switched-off set (rows) x evaluated task (columns)
    (``experiments.deactivation_matrix``: harm beyond the random baseline, larger = more
    harmful), with each task's own set outlined. A task-specific family lights up the outlined
    diagonal; a family of generally important neurons lights up whole columns. ``value``
    ("nll" or "score") labels the colour bar; "score" cells are shown x100 (metric points)."""
    from matplotlib.patches import Rectangle

    shown = matrix * (100 if value == "score" else 1)
    ax = _axes(ax, size=(1.8 + 0.9 * matrix.shape[1], 1.0 + 0.6 * matrix.shape[0]))
    limit = float(shown.abs().max().max()) or 1.0
    unit = "drop of metric (points)" if value == "score" else "rise of answer NLL (nats)"
    sns.heatmap(shown, annot=matrix.shape[1] <= 12, fmt=".0f" if value == "score" else ".2f",
                cmap="RdBu_r", center=0, vmin=-limit, vmax=limit, ax=ax,
                cbar_kws={"label": unit})
    for j, task in enumerate(matrix.columns):
        if task in matrix.index:
            i = list(matrix.index).index(task)
            ax.add_patch(Rectangle((j, i), 1, 1, fill=False, edgecolor="black", lw=2))
    ax.set_xlabel("evaluated task")
    ax.set_ylabel("switched-off set")
    ax.set_title(title or "Harm of each set beyond random neurons (own set outlined)")
    return ax


def plot_dominance_vs_k(scores: pd.DataFrame, *, value: str = "dominance", ax=None,
                        title: str | None = None) -> Axes:
    """Diagonal dominance (or ``value="selectivity"``) of each family of sets against k:
    the ``task == "mean"`` rows of ``experiments.specificity_scores`` with a ``k`` column (a
    fraction), one line per ``family`` with its bootstrap interval as error bars. 1 = only the
    own set harms its task, 0 = the other tasks' sets harm it as much."""
    means = scores[scores["task"] == "mean"] if "task" in scores else scores
    ax = _axes(ax)
    for family, part in means.groupby("family", sort=False):
        part = part.sort_values("k")
        low, high = part[f"{value}_low"], part[f"{value}_high"]
        ax.errorbar(100 * part["k"], part[value], yerr=[part[value] - low, high - part[value]],
                    marker="o", capsize=3, label=family)
    ax.axhline(0, color="grey", lw=0.8)
    ax.set_xscale("log")
    ax.set_xticks(sorted(100 * means["k"].unique()), labels=[f"{100 * k:g}%" for k in
                                                             sorted(means["k"].unique())])
    ax.set_xlabel("k (neurons per site)")
    ax.set_ylabel(value)
    ax.set_title(title or f"{value.capitalize()} of each selection method")
    ax.legend(fontsize=8)
    return ax
