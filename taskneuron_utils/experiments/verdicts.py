"""What each experiment found, computed from its frame: the paper's claim, whether our numbers
support it, and one sentence that quotes them.

A verdict is read off a result frame by a rule stated in its function's docstring, so the text
of a notebook's "What we found" cell or of a replication report cannot drift from the numbers.
``holds`` is True (the interval lies on the claim's side), False (it lies on the other side) or
None (the interval straddles the line: this sample cannot decide). Each verdict carries the
paper's number beside ours where the paper gives one.

    table1_verdict(ex.table1_intervals(...))          own neurons off vs random neurons off
    specificity_verdict(ex.specificity_scores(...))   diagonal dominance: task-specific?
    table2_verdict(ex.neuron_finetuning(...))         training own neurons vs random neurons
    generalization_verdict(ex.correlations(...))      overlap / similarity vs transfer
    continual_verdict({method: result.summary()})     NCFT vs sequential fine-tuning
    agreement_verdict(tn.method_agreement(...))       which method ranks units like ablation
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..neurons.analysis import bootstrap_interval


@dataclass(frozen=True)
class Verdict:
    """A claim tested on a frame. ``data``: the numbers the sentence quotes (JSON-able)."""

    claim: str
    holds: bool | None
    sentence: str
    data: dict = field(default_factory=dict)
    paper: str | None = None

    @property
    def label(self) -> str:
        return {True: "supported", False: "contradicted", None: "undecided"}[self.holds]

    def __str__(self) -> str:
        paper = f" Paper: {self.paper}." if self.paper else ""
        return f"{self.sentence} ({self.label}).{paper}"

    def _repr_markdown_(self) -> str:
        return f"**What we found** ({self.label}): {self.sentence}." + (
            f" *Paper:* {self.paper}." if self.paper else ""
        )


def _side(low: float, high: float, positive: bool = True) -> bool | None:
    """True when the interval [low, high] lies above 0 (below, with ``positive=False``), False
    when it lies on the other side, None when it contains 0 or is undefined."""
    low, high = float(low), float(high)
    if not (np.isfinite(low) and np.isfinite(high)):
        return None
    above, below = low > 0, high < 0
    if not (above or below):
        return None
    return above if positive else below


def _select(frame: pd.DataFrame, where: dict) -> pd.DataFrame:
    """The rows of ``frame`` whose columns equal ``where``'s values (a float compared with
    tolerance); a key that is not a column is an error naming the columns."""
    unknown = set(where) - set(frame.columns)
    if unknown:
        raise ValueError(
            f"no column {sorted(unknown)} to select on; columns: {list(frame.columns)}"
        )
    for column, wanted in where.items():
        values = frame[column]
        if isinstance(wanted, float):
            frame = frame[np.isclose(values.astype(float), wanted)]
        else:
            frame = frame[values == wanted]
    return frame


def _one(rows: pd.DataFrame, what: str) -> pd.Series:
    """The single row ``what`` names; several: an error naming the columns that tell them apart."""
    if rows.empty:
        raise ValueError(f"no {what} in the frame (after the selection)")
    if len(rows) > 1:
        differ = [c for c in rows.columns if rows[c].nunique(dropna=False) > 1]
        raise ValueError(f"{len(rows)} rows are {what}: select one with keywords on {differ}")
    return rows.iloc[0]


def _interval(value: float, low: float, high: float, digits: int = 2) -> str:
    return f"{value:+.{digits}f} [{low:+.{digits}f}, {high:+.{digits}f}]"


def table1_verdict(intervals: pd.DataFrame, measure: str = "nll", **where: object) -> Verdict:
    """Own neurons off hurt more than as many random neurons off? From ``table1_intervals``.

    Rule: over all tasks (the ``task == category == "all"`` row; with one category, that
    category's ``task == "all"`` row), ``holds`` is the side of the interval of
    ``own_vs_random`` (NLL: > 0 hurts; score: < 0); the sentence also counts the tasks whose own
    interval lies beyond random, and beyond the other tasks' sets. ``where``: columns to select
    one run by (``model=...``, ``k=0.1``)."""
    rows = _select(intervals, {"measure": measure, **where})
    if rows.empty:
        raise ValueError(f"no rows of measure {measure!r} (selection {where})")
    tasks = rows[rows["task"] != "all"]
    overall = rows[rows["task"] == "all"]
    if (overall["category"] == "all").any():
        overall = overall[overall["category"] == "all"]
    row = _one(overall, "the all-tasks row")
    harmful = measure == "nll"
    holds = _side(row["own_vs_random_low"], row["own_vs_random_high"], positive=harmful)
    unit = "nats per answer token" if harmful else "score"
    n_random, n_other = int(tasks["beyond_random"].sum()), int(tasks["beyond_other"].sum())
    sentence = (
        f"own neurons off beyond the random interval on {n_random} of {len(tasks)} tasks "
        f"(beyond the other tasks' sets on {n_other}); over all tasks own - random = "
        f"{_interval(row['own_vs_random'], row['own_vs_random_low'], row['own_vs_random_high'])}"
        f" ({unit})"
    )
    return Verdict(
        "switching off a task's neurons hurts it more than switching off as many random neurons",
        holds,
        sentence,
        {
            "measure": measure,
            "tasks": len(tasks),
            "beyond_random": n_random,
            "beyond_other": n_other,
            "own_vs_random": [float(row[f"own_vs_random{s}"]) for s in ("", "_low", "_high")],
        },
        "Table 1 (Llama-2-7b), classification 87.7 original / 84.8 random off / 76.0 task off; "
        "generation 45.6 / 42.3 / 32.0",
    )


def specificity_verdict(scores: pd.DataFrame, value: str = "nll", **where: object) -> Verdict:
    """Are a task's neurons task-specific, i.e. do they hurt their own task more than the other
    tasks' neurons hurt it? From ``specificity_scores`` (its ``task == "mean"`` row).

    Rule: ``holds`` is the side of the interval of the mean diagonal dominance (own effect minus
    the mean off-target effect, in the value's unit; > 0: task-specific). ``where``: columns
    to select one family of sets by (``family="top_k"``, ``k=0.1``, ``model=...``)."""
    rows = _select(scores, {"value": value, **where})
    row = _one(rows[rows["task"] == "mean"], f"'mean' rows of value {value!r}")
    holds = _side(row["dominance_low"], row["dominance_high"])
    own_tasks = rows[rows["task"] != "mean"]
    dominant = int((own_tasks["dominance"] > 0).sum())
    reading = {True: "task-specific", False: "not task-specific", None: "undecided"}[holds]
    sentence = (
        f"diagonal dominance {_interval(row['dominance'], row['dominance_low'], row['dominance_high'])}"
        f" ({value}); own set hurts its task most on {dominant} of {len(own_tasks)} tasks: {reading}"
    )
    return Verdict(
        "a task's neurons hurt their own task more than other tasks' neurons do",
        holds,
        sentence,
        {
            "value": value,
            "dominance": [float(row[f"dominance{s}"]) for s in ("", "_low", "_high")],
            "dominant_tasks": dominant,
            "tasks": len(own_tasks),
        },
        "implied by Table 1 (task-specific neurons off hurt their task most)",
    )


def table2_verdict(df: pd.DataFrame, seed: int = 0, **where: object) -> Verdict:
    """Does training only a task's neurons help it more than training as many random neurons?
    From ``neuron_finetuning`` (methods ``neurons`` and ``random``, one row per task and method).

    Rule: the per-task difference of test scores, neurons - random (x100), averaged over tasks,
    with a percentile bootstrap interval over tasks; ``holds`` is its side. ``where``: columns to
    select runs by (``category="classification"``)."""
    wide = _select(df, where).pivot_table(
        index="task", columns="method", values="score", aggfunc="mean"
    )
    missing = {"neurons", "random"} - set(wide.columns)
    if missing:
        raise ValueError(f"neuron_finetuning rows lack the method(s) {sorted(missing)}")
    diff = (wide["neurons"] - wide["random"]).to_numpy() * 100
    low, high = _mean_interval(diff, seed)
    mean = float(diff.mean())
    holds = _side(low, high)
    better = int((diff > 0).sum())
    sentence = (
        f"training the task's neurons vs as many random ones: {_interval(mean, low, high, 1)} "
        f"points of the task metric, better on {better} of {len(diff)} tasks"
    )
    if "none" in wide:
        sentence += f" (untrained {100 * wide['none'].mean():.1f})"
    return Verdict(
        "training only a task's neurons improves it more than training as many random neurons",
        holds,
        sentence,
        {"difference": [mean, low, high], "better": better, "tasks": len(diff)},
        "Table 2 (Llama-2-7b), classification 53.3 zero-shot / 54.8 random trained / 83.2 task "
        "trained; generation 19.8 / 22.5 / 37.0",
    )


def generalization_verdict(
    correlations: pd.DataFrame, statistic: str = "pearson", **where: object
) -> Verdict:
    """Does more neuron overlap (or parameter similarity) go with more out-of-domain gain? From
    ``correlations`` / ``sweep_correlations`` / ``layer_correlations`` (first row, or the row
    over all conditions when there is a ``condition`` column).

    Rule: ``holds`` is the side of the bootstrap interval of the correlation (> 0: yes).
    ``where``: columns to select one row by (``x="overlap"``, ``subset="task+random"``)."""
    row = _one(_select(correlations, where), "correlation rows")
    low, high = row[f"{statistic}_low"], row[f"{statistic}_high"]
    holds = _side(low, high)
    sentence = (
        f"{statistic.capitalize()} correlation of {row['x']} with {row['y']}: "
        f"{_interval(row[statistic], low, high)} over {int(row['n'])} points"
    )
    return Verdict(
        f"more {row['x']} goes with more {row['y']}",
        holds,
        sentence,
        {"statistic": statistic, "value": [float(row[statistic]), float(low), float(high)]},
        "Section 4: per-layer parameter similarity vs generalization, Pearson 0.79-0.97, "
        "Spearman 0.71-0.83",
    )


def continual_verdict(
    summaries: pd.DataFrame | dict, method: str = "ncft", **where: object
) -> Verdict:
    """Does ``method`` (NCFT by default) forget less than sequential fine-tuning? From the
    ``summary()`` rows of ``continual`` runs (a frame with ``method``, ``CL``, ``FG``, or a
    {method: summary} dict), over the orders run.

    Rule: the per-order difference of the final average score CL, method - seqft, with a
    bootstrap interval over orders when there are several; ``holds`` is its side (one order:
    None unless the difference is larger than 5 points, which is stated). ``where``: columns to
    select runs by (``tasks=4``)."""
    frame = pd.DataFrame(list(summaries.values())) if isinstance(summaries, dict) else summaries
    frame = _select(frame, where)
    if "order" not in frame:
        frame = frame.assign(order=frame.get("order_number", "one order"))
    wide = frame.pivot_table(index="order", columns="method", values="CL", aggfunc="mean")
    if {method, "seqft"} - set(wide.columns):
        raise ValueError(f"the runs lack {method!r} or 'seqft' (methods: {list(wide.columns)})")
    diff = (wide[method] - wide["seqft"]).to_numpy()
    mean = float(diff.mean())
    if len(diff) > 1:
        low, high = _mean_interval(diff, 0)
        holds = _side(low, high)
        spread = f" [{low:+.1f}, {high:+.1f}] over {len(diff)} orders"
    else:
        holds, spread = (True if mean > 5 else False if mean < -5 else None), " (one order)"
    sentence = f"{method} - seqft final average score (CL): {mean:+.1f} points{spread}"
    return Verdict(
        f"{method} keeps more of the earlier tasks than sequential fine-tuning",
        holds,
        sentence,
        {"difference": mean, "orders": len(diff)},
        "Table 5 (Llama-2-7b) CL: SeqFT 47.1 / 34.6, NCFT 71.3 / 70.0, W-NCFT 73.3 / 72.0 "
        "(4 / 8 tasks)",
    )


def agreement_verdict(agreement: pd.DataFrame) -> Verdict:
    """Which attribution method ranks units most like exact ablation? From
    ``tn.method_agreement`` (rows: site, unit, method, score, exact).

    Rule: per method, Spearman correlation of its score with the exact effect over the units; the
    claim (the paper's first-order estimate is a faithful ranking) holds when grad x act's
    correlation is at least 0.8 and no other method beats it by more than 0.05."""
    found = {
        name: float(part["score"].rank().corr(part["exact"].rank()))
        for name, part in agreement.groupby("method", sort=False)
    }
    if "grad_x_act" not in found:
        raise ValueError("method_agreement rows lack 'grad_x_act'")
    best = max(found, key=lambda name: found[name])
    holds = bool(found["grad_x_act"] >= 0.8 and found[best] - found["grad_x_act"] <= 0.05)
    ranked = ", ".join(f"{name} {value:.2f}" for name, value in found.items())
    sentence = f"Spearman with exact ablation: {ranked}; best: {best}"
    return Verdict(
        "gradient x activation ranks units like exact ablation",
        holds,
        sentence,
        {"spearman": found, "best": best},
        None,
    )


def _mean_interval(values: np.ndarray, seed: int) -> tuple[float, float]:
    """95% percentile bootstrap interval of the mean of ``values`` (over its entries)."""
    values = np.asarray(values, dtype=float)
    if len(values) < 2:
        return float("nan"), float("nan")
    low, high = bootstrap_interval(lambda idx: values[idx].mean(axis=-1), (len(values),), seed=seed)
    return float(low), float(high)
