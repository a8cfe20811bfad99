"""The reference answers of the notebooks' exercises: each function is the solution a notebook's
folded "Solution" shows, word for word (tests/test_course.py holds the notebooks to these
sources and each function to the package's own implementation of the same quantity).

    jaccard(a, b)               overlap of two sets of (site, neuron) pairs          (00)
    relevance(activation, grad) |grad x act| per example, mean over examples          (01)
    top_k(scores, k)            the top fraction k of every site                      (01)
    dominance(harm)             diagonal dominance of a sets x tasks harm matrix      (02)
    cl_metrics(A)               CL, FG and BWT of a continual-learning matrix         (05)
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch


def jaccard(a: set, b: set) -> float:
    """|a ∩ b| / |a ∪ b| of two sets of (site, neuron) pairs; 0.0 when both are empty."""
    union = a | b
    return len(a & b) / len(union) if union else 0.0


def relevance(activation: torch.Tensor, grad: torch.Tensor) -> torch.Tensor:
    """Relevance of every neuron of one site: |sum over tokens of grad x activation| per
    example, then the mean over examples. activation, grad: (batch, tokens, neurons), grad =
    dL/d(activation) of the answer loss. Returns (neurons,), in nats."""
    per_example = (grad * activation).sum(dim=1)  # (batch, neurons): one r_j per example
    return per_example.abs().mean(dim=0)


def top_k(scores: dict[str, torch.Tensor], k: float) -> dict[str, torch.Tensor]:
    """The round(k * n) highest-scoring neurons of every site of n neurons. scores: {site: (n,)}.
    Returns {site: sorted 1-D long tensor of neuron indices}."""
    chosen = {}
    for site, values in scores.items():
        order = torch.argsort(values, descending=True, stable=True)
        chosen[site] = order[: round(k * len(values))].sort().values
    return chosen


def dominance(harm: pd.DataFrame) -> pd.Series:
    """Diagonal dominance per task. harm: rows = whose neurons were switched off, columns = the
    task evaluated (the same task names), larger = more harmful. For task t: own = harm[t, t],
    others = the mean of column t over the other rows; dominance = (own - others) /
    (|own| + |others|), in [-1, 1]."""
    tasks = list(harm.columns)
    values = {}
    for task in tasks:
        own = harm.loc[task, task]
        others = harm.loc[[t for t in tasks if t != task], task].mean()
        values[task] = (own - others) / (abs(own) + abs(others))
    return pd.Series(values)


def cl_metrics(A: np.ndarray) -> dict:
    """Continual-learning metrics of A (N x N, A[i, j] = score on task j after training stage
    i, in [0, 1]): CL = mean of the last row; FG = mean over j of A[N-1, j] / A[j, j] x 100
    (tasks with A[j, j] = 0 skipped); BWT = mean over j < N-1 of A[N-1, j] - A[j, j]."""
    last, diag = A[-1], np.diag(A)
    kept = diag != 0
    return {
        "CL": float(last.mean()),
        "FG": float((last[kept] / diag[kept]).mean() * 100),
        "BWT": float((last[:-1] - diag[:-1]).mean()),
    }
