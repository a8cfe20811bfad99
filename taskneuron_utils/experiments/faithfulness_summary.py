"""Faithfulness curves and their areas, with bootstrap intervals, from the per-example frame of
``experiments.faithfulness`` (definitions there: f, CPR, CMD and the x-scale of the areas).

    examples = ex.faithfulness(model, tok, tasks, config, sets=sets)
    curves = ex.faithfulness_curves(examples)      # f and the ablation curves, per k
    areas = ex.faithfulness_areas(examples)        # CPR and CMD per recipe and task
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from ..neurons.analysis import bootstrap_interval
from .faithfulness import CONDITIONS, MEASURES


def curve_area(ks, values) -> float:
    """Trapezoid area under ``values`` over t = log10 k normalised to [0, 1] on the ks given
    (all > 0, ascending after sorting): the x-scale of CPR and CMD."""
    ks = np.asarray(ks, dtype=float)
    values = np.asarray(values, dtype=float)
    if len(ks) < 2 or (ks <= 0).any():
        raise ValueError(f"an area needs at least two k > 0, got {ks.tolist()}")
    order = np.argsort(ks)
    return float(_trapezoid(ks[order], values[order]))


def _trapezoid(ks: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Trapezoid area of ``y`` (K, ...) over t = log10 ``ks`` (K,, ascending) scaled to [0, 1]."""
    t = np.log10(ks)
    t = (t - t[0]) / (t[-1] - t[0])
    widths = (t[1:] - t[:-1]).reshape((-1,) + (1,) * (y.ndim - 1))
    return (widths * (y[1:] + y[:-1]) / 2).sum(0)


def _cells(examples: pd.DataFrame, measure: str):
    """Per (recipe, task): the ks (ascending), per condition a (K, n) matrix of the measure, and
    the references (n,) each; the examples in order."""
    if measure not in MEASURES or measure not in examples:
        raise ValueError(f"measure must be one of {MEASURES} present in the frame, got {measure!r}")
    refs = examples[examples["recipe"] == "reference"]
    cells = {}
    for task, part in refs.groupby("task", sort=False):
        table = part.pivot_table(index="condition", columns="example", values=measure, sort=True)
        ref = {c: table.loc[c].to_numpy(dtype=float) for c in ("full", "empty")}
        for recipe, rows in examples[
            (examples["recipe"] != "reference") & (examples["task"] == task)
        ].groupby("recipe", sort=False):
            ks = np.sort(rows["k"].unique())
            matrices = {}
            for condition, cond_rows in rows.groupby("condition", sort=False):
                grid = cond_rows.pivot_table(
                    index="k", columns="example", values=measure, sort=True, dropna=False
                )
                matrices[condition] = grid.reindex(ks).to_numpy(dtype=float)
            cells[(recipe, task)] = {"ks": ks, "values": matrices, **ref}
    return cells


def _means(cell: dict, idx: np.ndarray) -> np.ndarray:
    """(3K + 2, ...) for the drawn examples ``idx`` (..., n): per k the mean of every condition
    (NaN rows for a missing condition), then m(N) and m(0)."""
    rows = []
    for condition in CONDITIONS:
        matrix = cell["values"].get(condition)
        if matrix is None:
            rows.append(np.full((len(cell["ks"]),) + idx.shape[:-1], np.nan))
        else:
            rows.append(matrix[:, idx].mean(-1))
    full, empty = cell["full"][idx].mean(-1), cell["empty"][idx].mean(-1)
    return np.concatenate([*rows, full[None], empty[None]], axis=0)


def _statistics(means: np.ndarray, ks: np.ndarray) -> np.ndarray:
    """(Q, ...): the condition means, f per k, CPR and CMD from ``_means``' rows (of one task,
    or averaged over tasks: then f is the pooled (mean m(C) - mean m(0)) / (mean m(N) - mean
    m(0)), which a task whose m(N) is close to its m(0) cannot blow up)."""
    n = len(ks)
    keep, full, empty = means[:n], means[-2], means[-1]
    with np.errstate(divide="ignore", invalid="ignore"):
        f = np.where(full != empty, (keep - empty) / (full - empty), np.nan)
    positive = ks > 0
    if positive.sum() >= 2:
        cpr = _trapezoid(ks[positive], f[positive])
        cmd = _trapezoid(ks[positive], np.abs(1 - f[positive]))
    else:
        cpr = cmd = np.full(means.shape[1:], np.nan)
    return np.concatenate([means[:-2], f, cpr[None], cmd[None]], axis=0)


def _summaries(examples, measure, n_boot, confidence, seed):
    """{(recipe, task or "all"): (ks, point (Q,), low (Q,), high (Q,))}."""
    cells = _cells(examples, measure)
    results = {}
    scopes = [((recipe, task), [(recipe, task)]) for recipe, task in cells]
    for recipe in dict.fromkeys(r for r, _ in cells):
        members = [key for key in cells if key[0] == recipe]
        if len(members) > 1:
            scopes.append(((recipe, "all"), members))
    for key, members in scopes:
        chosen = [cells[m] for m in members]
        ks = chosen[0]["ks"]
        if any(len(c["ks"]) != len(ks) or (c["ks"] != ks).any() for c in chosen):
            raise ValueError(f"recipe {key[0]!r}: its tasks were run on different k grids")

        def statistic(*indices, chosen=chosen, ks=ks):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN rows stay NaN
                means = np.nanmean([_means(c, i) for c, i in zip(chosen, indices)], axis=0)
            return _statistics(means, ks)

        sizes = [len(c["full"]) for c in chosen]
        point = statistic(*[np.arange(n) for n in sizes])
        low, high = np.full(len(point), np.nan), np.full(len(point), np.nan)
        defined = np.flatnonzero(np.isfinite(point))
        if len(defined):
            low[defined], high[defined] = bootstrap_interval(
                lambda *i, statistic=statistic, defined=defined: statistic(*i)[defined],
                sizes,
                n_resamples=n_boot,
                confidence=confidence,
                seed=seed,
            )
        results[key] = (ks, point, low, high)
    return results


def faithfulness_curves(
    examples: pd.DataFrame,
    measures: tuple[str, ...] = ("ld", "nll"),
    *,
    n_boot: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> pd.DataFrame:
    """The curves of ``faithfulness``' per-example frame, with bootstrap intervals over examples.

    Returns:
        One row per (recipe, task, measure, condition, k), task = each task and ``"all"``
        (the means over tasks, each task's examples resampled independently; its f is pooled,
        (mean m(C) - mean m(0)) / (mean m(N) - mean m(0)), not the mean of the tasks' f, which a
        task with m(N) close to m(0) would dominate): ``value`` (mean of the
        measure over examples; ld in logits, nll in nats per token, score in [0, 1]),
        ``value_low`` / ``value_high``, and ``f`` / ``f_low`` / ``f_high`` (MIB faithfulness,
        on the ``keep`` rows; NaN elsewhere), ``full`` and ``empty`` (m(N), m(0)).
    """
    rows = []
    for measure in measures:
        summaries = _summaries(examples, measure, n_boot, confidence, seed)
        refs = _reference_means(examples, measure)
        for (recipe, task), (ks, point, low, high) in summaries.items():
            n = len(ks)
            for c, condition in enumerate(CONDITIONS):
                block = slice(c * n, (c + 1) * n)
                if not np.isfinite(point[block]).any():
                    continue
                for i, k in enumerate(ks):
                    j = c * n + i
                    f = 3 * n + i
                    keep = condition == "keep"
                    rows.append(
                        {
                            "recipe": recipe,
                            "task": task,
                            "measure": measure,
                            "condition": condition,
                            "k": k,
                            "value": point[j],
                            "value_low": low[j],
                            "value_high": high[j],
                            "f": point[f] if keep else np.nan,
                            "f_low": low[f] if keep else np.nan,
                            "f_high": high[f] if keep else np.nan,
                            "full": refs.get(task, {}).get("full", np.nan),
                            "empty": refs.get(task, {}).get("empty", np.nan),
                        }
                    )
    return pd.DataFrame(rows)


def faithfulness_areas(
    examples: pd.DataFrame,
    measures: tuple[str, ...] = ("ld", "nll"),
    *,
    n_boot: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> pd.DataFrame:
    """CPR and CMD (module docstring: trapezoid over log10 k scaled to [0, 1] on the grid's
    k > 0) of every recipe and task (and ``"all"``), with bootstrap intervals over examples.

    Returns:
        One row per (recipe, task, measure): ``cpr``, ``cpr_low``, ``cpr_high``, ``cmd``,
        ``cmd_low``, ``cmd_high``, ``k_min``, ``k_max`` (the grid the areas span).
    """
    rows = []
    for measure in measures:
        for (recipe, task), (ks, point, low, high) in _summaries(
            examples, measure, n_boot, confidence, seed
        ).items():
            positive = ks[ks > 0]
            rows.append(
                {
                    "recipe": recipe,
                    "task": task,
                    "measure": measure,
                    "cpr": point[-2],
                    "cpr_low": low[-2],
                    "cpr_high": high[-2],
                    "cmd": point[-1],
                    "cmd_low": low[-1],
                    "cmd_high": high[-1],
                    "k_min": positive.min() if len(positive) else np.nan,
                    "k_max": positive.max() if len(positive) else np.nan,
                }
            )
    return pd.DataFrame(rows)


def _reference_means(examples: pd.DataFrame, measure: str) -> dict:
    """{task: {"full": m(N), "empty": m(0)}} and "all": their means over tasks."""
    refs = examples[examples["recipe"] == "reference"]
    means = refs.groupby(["task", "condition"])[measure].mean().unstack()
    out = {t: {"full": means.loc[t, "full"], "empty": means.loc[t, "empty"]} for t in means.index}
    out["all"] = {"full": means["full"].mean(), "empty": means["empty"].mean()}
    return out
