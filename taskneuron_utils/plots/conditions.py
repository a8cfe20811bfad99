"""The playground's figures (``ui.playground.neuron_playground``; each takes ``ax=`` and returns
the Axes it drew on): the model's answers and the task metric under each condition (all on,
the task's neurons off, random neurons off), and where the switched-off neurons sit."""

from __future__ import annotations

import pandas as pd
from matplotlib.axes import Axes

from .figure import new_axes, set_title


# Colour-blind safe (no red / green pair): all on blue, the task's neurons off orange.
_COLOURS = {"all on": "tab:blue", "task off": "tab:orange", "random off": "tab:gray"}


def _shorten(text: str, n: int = 34) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= n else text[: n - 1] + "…"


def plot_conditions(frame: pd.DataFrame, *, ax=None) -> Axes:
    """Horizontal bars of ``p_expected`` per condition (``compare_conditions``), each labelled
    with the model's answer under that condition."""
    ax = new_axes(ax, (6.5, 1.3 + 0.5 * len(frame)))
    conditions = list(frame["condition"])
    values = frame["p_expected"].fillna(0.0).to_numpy()
    colours = [_COLOURS.get(c, "tab:blue") for c in conditions]
    ax.barh(range(len(frame)), values, color=colours)
    ax.set_yticks(
        range(len(frame)), [f"{c}\n({n:,} off)" for c, n in zip(conditions, frame["neurons_off"])]
    )
    ax.invert_yaxis()
    ax.set_xlim(0, 1.6)
    ax.set_xticks([0, 0.25, 0.5, 0.75, 1.0])
    for i, (value, answer) in enumerate(zip(values, frame["answer"])):
        ax.text(value + 0.02, i, f"{value:.2f}  “{_shorten(answer)}”", va="center", fontsize=8)
    expected = frame.attrs.get("expected")
    measure = frame.attrs.get("measure", "P(expected)")
    ax.set_xlabel(f"{measure} of the expected answer" + (f" “{expected}”" if expected else ""))
    set_title(ax, f"{frame.attrs.get('task', '')}: the model's answers".strip(": "))
    ax.spines[["top", "right"]].set_visible(False)
    return ax


def plot_condition_scores(scores: pd.DataFrame, *, ax=None) -> Axes:
    """Bars of the task metric per condition (``condition_scores``), NLL written on each bar."""
    ax = new_axes(ax, (5, 3.2))
    conditions = list(scores["condition"])
    bars = ax.bar(
        conditions, scores["score"], color=[_COLOURS.get(c, "tab:blue") for c in conditions]
    )
    for bar, nll, n_off in zip(bars, scores["nll"], scores["neurons_off"]):
        ax.annotate(
            f"NLL {nll:.2f}\n{n_off:,} off",
            (bar.get_x() + bar.get_width() / 2, bar.get_height()),
            ha="center",
            va="bottom",
            fontsize=8,
        )
    ax.set_ylim(0, 1.25)
    metric = scores["metric"].iloc[0] if len(scores) else "score"
    ax.set_ylabel(metric)
    task = scores["task"].iloc[0] if len(scores) else ""
    set_title(
        ax, f"{task}: {metric} on {int(scores['n'].iloc[0]) if len(scores) else 0} test examples"
    )
    ax.spines[["top", "right"]].set_visible(False)
    return ax


def plot_layer_counts(counts: pd.DataFrame, *, ax=None, title: str | None = None) -> Axes:
    """Stacked bars: selected neurons per layer, one colour a site kind (``layer_counts``)."""
    ax = new_axes(ax, (6.5, 2.8))
    table = counts.pivot_table(
        index="layer", columns="kind", values="selected", aggfunc="sum", fill_value=0, sort=False
    )
    bottom = None
    for kind in table.columns:
        ax.bar(table.index, table[kind], bottom=bottom, label=kind, width=0.8)
        bottom = table[kind] if bottom is None else bottom + table[kind]
    ax.set_xlabel("layer")
    ax.set_ylabel("neurons switched off")
    if len(table):
        ax.set_xticks(list(table.index))
        ax.legend(
            title="site",
            fontsize=8,
            ncols=len(table.columns),
            loc="upper left",
            bbox_to_anchor=(0, 1.0),
            frameon=False,
        )
        ax.set_ylim(0, max(1, float(table.sum(axis=1).max())) * 1.3)  # the stacks' tallest
    set_title(ax, title or "Where the switched-off task neurons sit")
    ax.spines[["top", "right"]].set_visible(False)
    return ax
