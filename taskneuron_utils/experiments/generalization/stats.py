"""Statistics over the DataFrames of ``generalization``: correlations of overlap or parameter
similarity with the gain on other tasks (``analysis.correlate``: Pearson / Spearman, scipy
p-values, paired-bootstrap intervals), and the explorer's view of a sweep.
"""

from __future__ import annotations


import pandas as pd
from ...neurons.analysis import correlate


def correlations(
    df: pd.DataFrame,
    x: str = "overlap",
    y: str = "gain",
    by: str | list[str] | None = None,
    *,
    n_boot: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> pd.DataFrame:
    """``analysis.correlate(df[x], df[y])`` for every group of ``by`` (None = all rows): one row
    a group with ``x``, ``y``, the ``by`` values, n, Pearson / Spearman, p-values and bootstrap
    intervals. ``n_boot``, ``confidence``, ``seed``: ``correlate``'s bootstrap."""

    if isinstance(by, str):
        by = [by]
    groups = [((), df)] if not by else df.groupby(by, sort=False)
    rows = []
    for key, part in groups:
        key = key if isinstance(key, tuple) else (key,)
        rows.append(
            {
                **dict(zip(by or [], key)),
                "x": x,
                "y": y,
                **correlate(
                    part[x].to_numpy(),
                    part[y].to_numpy(),
                    n_boot=n_boot,
                    confidence=confidence,
                    seed=seed,
                ),
            }
        )
    return pd.DataFrame(rows)


def sweep_correlations(
    sweep: pd.DataFrame, y: str = "gain", *, n_boot: int = 2000, seed: int = 0
) -> pd.DataFrame:
    """Overlap vs out-of-domain ``y`` across (test task, p, seed): over the task and random
    rows of p < 1 together, and each condition alone; with ``overlap`` (group-level, the paper's)
    and ``task_overlap``. One row each (``subset``, ``x``, ...). ``n_boot``, ``seed``: the
    bootstrap's (``correlations``)."""
    out = sweep[sweep["domain"] == "out"]
    parts = []
    for x in ("overlap", "task_overlap"):
        for subset, rows in (
            ("task+random", out[out.condition.isin(["task", "random"])]),
            ("task+random+full", out),
            ("task", out[out.condition == "task"]),
            ("random", out[out.condition == "random"]),
        ):
            parts.append(correlations(rows, x, y, n_boot=n_boot, seed=seed).assign(subset=subset))
    return pd.concat(parts, ignore_index=True)


def layer_correlations(
    sim: pd.DataFrame, y: str = "gain", *, n_boot: int = 2000, seed: int = 0
) -> pd.DataFrame:
    """Per layer and vectorisation, the correlation of similarity and ``y`` across (source,
    test task) pairs: columns layer, vectorisation, n, pearson..., spearman... ``n_boot``,
    ``seed``: the bootstrap's (``correlations``)."""
    parts = []
    for vec in ("weights", "update"):
        column = f"similarity_{vec}"
        if column in sim and sim[column].notna().any():
            parts.append(
                correlations(sim, column, y, by="layer", n_boot=n_boot, seed=seed).assign(
                    vectorisation=vec
                )
            )
    return pd.concat(parts, ignore_index=True)


def sweep_view(sweep: pd.DataFrame, group: str, p: float) -> pd.DataFrame:
    """The rows of one group at one p, with p = 1.0 (full fine-tuning) always included, the
    random control averaged over seeds: what the notebook's explorer shows."""
    part = sweep[(sweep.group == group) & ((sweep.p == p) | (sweep.p == 1.0))]
    keys = ["condition", "p", "task", "domain"]
    return (
        part.groupby(keys, sort=False)[["gain", "nll_gain", "overlap", "task_overlap"]]
        .mean()
        .reset_index()
    )
