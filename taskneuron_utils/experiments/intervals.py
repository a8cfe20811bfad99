"""Bootstrap intervals for the Table 1 analog: every number of ``deactivation``'s per-example
frame (``per_example=True``, or ``k_sweep``'s) with a 95% interval over test examples and over
random seeds (or over the other tasks' sets), and a "beyond random" verdict read off them.

The resampled units. Per task: its test examples; for the random baseline, its seeds; for the
other tasks' sets, those sets. Each is resampled independently (a two-way bootstrap: examples
crossed with seeds), and the same example draw is used for every condition of the task, so that
effects and differences are paired by example. A category (or all tasks) resamples each task's
units independently and averages the tasks' statistics.

The statistics, per measure (``score``: the task metric in [0, 1]; ``score_per_token``: the
same with options ranked per answer token, when the frame has it (``score_norm`` in frames
recorded before 2026-12-03); ``nll``:
nats per answer token, the summed NLL of the drawn examples over their answer tokens):

    original, own_off, random_off, other_off    the level with nothing / own / random (mean over
                                                seeds) / other sets (mean over sets) switched off
    own_effect, random_effect, other_effect     level - original (NLL: > 0 hurts; score: < 0)
    own_vs_random, own_vs_other                 own_off - random_off, own_off - other_off

Verdict (our definition): ``beyond_random`` when the 95% interval of ``own_vs_random`` lies
entirely on the harmful side of 0 (NLL: low > 0; score: high < 0), i.e. switching off the own
set hurts more than a random set of the same size, beyond what the test sample and the random
draw explain. ``beyond_other`` is the same for ``own_vs_other`` (task specificity).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from ..neurons.analysis import bootstrap_interval

LEVELS = {"none": "original", "own": "own_off", "random": "random_off", "other": "other_off"}
QUANTITIES = (
    "original",
    "own_off",
    "random_off",
    "other_off",
    "own_effect",
    "random_effect",
    "other_effect",
    "own_vs_random",
    "own_vs_other",
)
MEASURES = ("score", "score_per_token", "score_norm", "nll")  # score_norm: recorded name


def _cell(part: pd.DataFrame, measure: str) -> dict:
    """One task's per-example values: {group: (G, N) array} (groups none, own, random (rows by
    seed), other (rows by set)), and the answer tokens per example (nll) or None (score)."""
    value = "nll_sum" if measure == "nll" else measure
    group = part["condition"].where(~part["condition"].str.startswith("other:"), "other")
    frame = part.assign(
        group=group, unit=np.where(group == "random", part["seed"].astype(str), part["deactivated"])
    )
    matrices = {}
    for name in LEVELS:
        rows = frame[frame.group == name]
        if len(rows):
            table = rows.pivot_table(index="unit", columns="example", values=value, sort=True)
            matrices[name] = table.to_numpy(dtype=np.float64)
    none = frame[frame.group == "none"].sort_values("example")
    tokens = none["n_tokens"].to_numpy(dtype=np.float64) if measure == "nll" else None
    if "none" not in matrices or "own" not in matrices:
        raise ValueError(
            f"task {part['task'].iloc[0]!r}: the per-example frame needs its "
            "'none' and 'own' conditions"
        )
    return {"values": matrices, "tokens": tokens}


def _level(cell: dict, group: str, ex: np.ndarray, units: np.ndarray) -> np.ndarray:
    """The group's level over the drawn examples ``ex`` (..., n) and units ``units`` (..., g):
    the mean over units of the metric mean or of the token-weighted NLL."""
    per_unit = cell["values"][group][:, ex].sum(-1)  # (G, ...)
    summed = np.take_along_axis(np.moveaxis(per_unit, 0, -1), units, -1).mean(-1)
    tokens = cell["tokens"]
    return summed / (tokens[ex].sum(-1) if tokens is not None else ex.shape[-1])


def _statistics(cell: dict, ex, seeds, others) -> np.ndarray:
    """All QUANTITIES of one task for one draw: shape (len(QUANTITIES), ...), NaN where a group
    is missing."""
    zero = np.zeros(ex.shape[:-1] + (1,), dtype=np.int64)
    units = {"none": zero, "own": zero, "random": seeds, "other": others}
    level = {}
    for group in LEVELS:
        if group in cell["values"]:
            level[group] = _level(cell, group, ex, units[group])
        else:
            level[group] = np.full(ex.shape[:-1], np.nan)
    return np.stack(
        [
            level["none"],
            level["own"],
            level["random"],
            level["other"],
            level["own"] - level["none"],
            level["random"] - level["none"],
            level["other"] - level["none"],
            level["own"] - level["random"],
            level["own"] - level["other"],
        ]
    )


def _interval_row(cells: list[dict], n_resamples: int, confidence: float, seed: int) -> dict:
    """Point values and intervals of QUANTITIES averaged over ``cells`` (one per task)."""

    sizes = []
    for cell in cells:
        values = cell["values"]
        sizes += [
            values["none"].shape[1],
            len(values.get("random", [0])),
            len(values.get("other", [0])),
        ]

    def statistic(*indices):
        per_task = [_statistics(cell, *indices[3 * i : 3 * i + 3]) for i, cell in enumerate(cells)]
        return np.mean(per_task, axis=0)

    point = statistic(*[np.arange(n) for n in sizes])
    # Quantities of a missing group (no random seeds, no other sets) stay NaN, unresampled.
    defined = np.flatnonzero(np.isfinite(point))
    low, high = np.full(len(point), np.nan), np.full(len(point), np.nan)
    low[defined], high[defined] = bootstrap_interval(
        lambda *indices: statistic(*indices)[defined],
        sizes,
        n_resamples=n_resamples,
        confidence=confidence,
        seed=seed,
    )
    row = {}
    for q, name in enumerate(QUANTITIES):
        row.update({name: point[q], f"{name}_low": low[q], f"{name}_high": high[q]})
    return row


def table1_intervals(
    examples: pd.DataFrame, *, n_resamples: int = 2000, confidence: float = 0.95, seed: int = 0
) -> pd.DataFrame:
    """The Table 1 analog with bootstrap intervals (module docstring: units, statistics, verdict).

    Args:
        examples: ``deactivation(..., per_example=True)`` or ``k_sweep`` output; rows are
            grouped by ``model`` (and ``k`` when present).
        n_resamples: bootstrap resamples (``analysis.bootstrap_interval``).
        confidence: the intervals' coverage (0.95: 95% intervals).
        seed: the bootstrap's seed.

    Returns:
        one row per (model[, k], scope, measure), scope = each task, each category (the mean
        over its tasks; ``task`` = "all") and all tasks (``category`` = ``task`` = "all"):
        ``measure`` (score, score_per_token: metric in [0, 1]; nll: nats per answer token), ``tasks``,
        ``examples`` (test examples, summed over tasks), ``seeds`` (random seeds per task),
        ``others`` (other sets per task), each of QUANTITIES with ``_low`` / ``_high``, and
        the verdicts ``beyond_random`` / ``beyond_other`` (False where the interval is NaN).
    """
    keys = [c for c in ("model", "k") if c in examples.columns]
    rows = []
    for key, frame in examples.groupby(keys, sort=False):
        key = dict(zip(keys, key if isinstance(key, tuple) else (key,)))
        tasks = {name: part for name, part in frame.groupby("task", sort=False)}
        categories = {name: part.iloc[0]["category"] for name, part in tasks.items()}
        scopes = [(categories[t], t, [t]) for t in tasks]
        for category in dict.fromkeys(categories.values()):
            scopes.append((category, "all", [t for t in tasks if categories[t] == category]))
        if len(set(categories.values())) > 1:
            scopes.append(("all", "all", list(tasks)))
        for measure in [m for m in MEASURES if m == "nll" or m in frame]:
            cells = {t: _cell(tasks[t], measure) for t in tasks}
            for category, task, members in scopes:
                chosen = [cells[t] for t in members]
                row = {
                    **key,
                    "category": category,
                    "task": task,
                    "measure": measure,
                    "tasks": len(members),
                    "examples": sum(c["values"]["none"].shape[1] for c in chosen),
                    "seeds": len(chosen[0]["values"].get("random", [])),
                    "others": len(chosen[0]["values"].get("other", [])),
                }
                row.update(_interval_row(chosen, n_resamples, confidence, seed))
                for name, diff in (
                    ("beyond_random", "own_vs_random"),
                    ("beyond_other", "own_vs_other"),
                ):
                    # NaN bounds compare False: no verdict without the comparison set.
                    row[name] = bool(
                        row[f"{diff}_low"] > 0 if measure == "nll" else row[f"{diff}_high"] < 0
                    )
                rows.append(row)
    return pd.DataFrame(rows)
