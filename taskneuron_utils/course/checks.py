"""Check a learner's function against the reference on generated inputs, in one line.

Each ``check_*`` calls the learner's function on a few seeded inputs (edge cases first: empty
sets, signs that cancel, counts where flooring and rounding differ), compares with
``solutions``, and returns a ``Check``: ``passed`` and one line that says what differs (the
input, their value, the reference's), naming a known mistake when their answer matches one.
A cell ending in ``course.check_jaccard(jaccard)`` shows that line.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from . import solutions


@dataclass(frozen=True)
class Check:
    """The outcome of a check: ``passed`` and a one-line ``message``."""

    passed: bool
    message: str

    def __bool__(self) -> bool:
        return self.passed

    def __repr__(self) -> str:
        return self.message

    __str__ = __repr__


def _run(
    name: str,
    fn: Callable,
    cases: list,
    reference: Callable,
    same: Callable,
    show,
    mistakes: dict[str, Callable],
) -> Check:
    """Call ``fn(*case)`` on every case; the first difference from ``reference`` fails."""
    if not callable(fn):
        return Check(False, f"✗ {name}: expected a function, got {type(fn).__name__}")
    for case in cases:
        expected = reference(*case)
        try:
            got = fn(*case)
        except Exception as error:  # the learner's bug, reported in one line
            return Check(
                False, f"✗ {name} raised {type(error).__name__}: {error} (on {show(*case)})"
            )
        problem = same(got, expected)
        if problem:
            hint = next(
                (
                    f" Looks like {what}."
                    for what, wrong in mistakes.items()
                    if not same(got, wrong(*case))
                ),
                "",
            )
            return Check(False, f"✗ {name} differs on {show(*case)}: {problem}.{hint}")
    return Check(True, f"✓ {name} matches the reference on {len(cases)} generated inputs")


def _close(got, expected) -> str:
    """'' when two numbers agree (1e-6 relative), else what differs."""
    try:
        value = float(got)
    except (TypeError, ValueError):
        return f"you return {got!r}, expected a number"
    if np.isclose(value, expected, rtol=1e-6, atol=1e-9, equal_nan=True):
        return ""
    return f"you return {value:.4g}, the reference {expected:.4g}"


# --- 00: Jaccard ------------------------------------------------------------------------------


def _jaccard_cases() -> list:
    rng = np.random.default_rng(0)
    pairs = [(f"layers.{layer}.mlp.up", j) for layer in range(3) for j in range(20)]
    some = {pairs[i] for i in rng.choice(len(pairs), 12, replace=False)}
    more = {pairs[i] for i in rng.choice(len(pairs), 15, replace=False)}
    subset = set(sorted(some)[:5])
    return [
        (some, more),
        (some, subset),
        (some, set(some)),
        (some, set(pairs) - some),
        (set(), some),
        (set(), set()),
    ]


def _show_sets(a: set, b: set) -> str:
    return f"a of {len(a)} and b of {len(b)} pairs, {len(a & b)} shared"


def check_jaccard(fn: Callable[[set, set], float]) -> Check:
    """``fn(a, b)``: Jaccard overlap of two sets of (site, neuron) pairs (0.0 when both empty)."""
    return _run(
        "jaccard",
        fn,
        _jaccard_cases(),
        solutions.jaccard,
        _close,
        _show_sets,
        {
            "|a ∩ b| / min(|a|, |b|) (the overlap coefficient)": lambda a, b: (
                len(a & b) / min(len(a), len(b)) if a and b else 0.0
            ),
            "|a ∩ b| / (|a| + |b|), which counts the shared pairs twice in the denominator": lambda a, b: (
                len(a & b) / (len(a) + len(b)) if a or b else 0.0
            ),
        },
    )


# --- 01: relevance and top-k ------------------------------------------------------------------


def _relevance_cases() -> list:
    generator = torch.Generator().manual_seed(0)
    act = torch.randn(4, 6, 5, generator=generator)
    grad = torch.randn(4, 6, 5, generator=generator)
    flipped = torch.cat([act[:2], -act[:2]])  # examples 2-3 cancel examples 0-1 in the sum
    return [(act, grad), (flipped, torch.cat([grad[:2], grad[:2]])), (act[:1, :1], grad[:1, :1])]


def _tensors_close(got, expected) -> str:
    if not isinstance(got, torch.Tensor):
        return f"you return a {type(got).__name__}, expected a tensor"
    if tuple(got.shape) != tuple(expected.shape):
        return f"your shape is {tuple(got.shape)}, the reference's {tuple(expected.shape)}"
    if torch.allclose(got.double(), expected.double(), rtol=1e-5, atol=1e-7):
        return ""
    worst = int((got.double() - expected.double()).abs().argmax())
    return (
        f"at neuron {worst} you return {float(got.flatten()[worst]):.4g}, the reference "
        f"{float(expected.flatten()[worst]):.4g}"
    )


def _show_tensors(act, grad) -> str:
    return f"activation and grad of shape {tuple(act.shape)} (batch, tokens, neurons)"


def check_relevance(fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> Check:
    """``fn(activation, grad)``, both (batch, tokens, neurons): the relevance of every neuron,
    (neurons,): |sum over tokens of grad x activation| per example, mean over examples."""
    return _run(
        "relevance",
        fn,
        _relevance_cases(),
        solutions.relevance,
        _tensors_close,
        _show_tensors,
        {
            "|mean over examples| instead of the mean of |r| per example (signs cancel)": lambda a, g: (
                (g * a).sum(1).mean(0).abs()
            ),
            "|grad x act| per token before the sum over tokens": lambda a, g: (
                (g * a).abs().sum(1).mean(0)
            ),
            "a sum over examples instead of the mean": lambda a, g: (g * a).sum(1).abs().sum(0),
        },
    )


def _top_k_cases() -> list:
    generator = torch.Generator().manual_seed(0)
    scores = {
        "layers.0.mlp.up": torch.rand(1536, generator=generator),
        "layers.0.mlp.down": torch.rand(576, generator=generator) * 5,
        "layers.1.mlp.up": torch.rand(7, generator=generator),
    }
    return [(scores, 0.10), (scores, 0.01), (scores, 0.5)]


def _same_sets(got, expected) -> str:
    if not isinstance(got, dict) or set(got) != set(expected):
        names = sorted(got) if isinstance(got, dict) else type(got).__name__
        return f"you return {names}, expected a dict over the sites {sorted(expected)}"
    for site, indices in expected.items():
        mine = sorted(int(i) for i in torch.as_tensor(got[site]).flatten())
        if mine != indices.tolist():
            return f"at {site} you keep {len(mine)} neurons, the reference {len(indices)}" + (
                "" if len(mine) != len(indices) else " (other ones)"
            )
    return ""


def check_top_k(fn: Callable[[dict, float], dict]) -> Check:
    """``fn(scores, k)``: {site: sorted indices of the round(k * n) highest scores}."""

    def show(scores, k):
        return f"k = {k} over sites of {[len(v) for v in scores.values()]} neurons"

    def floored(scores, k):
        return {
            s: torch.argsort(v, descending=True)[: int(k * len(v))].sort().values
            for s, v in scores.items()
        }

    def global_top(scores, k):
        flat = torch.cat(list(scores.values()))
        cut = flat.sort(descending=True).values[round(k * len(flat)) - 1]
        return {s: torch.nonzero(v >= cut).flatten() for s, v in scores.items()}

    return _run(
        "top_k",
        fn,
        _top_k_cases(),
        solutions.top_k,
        _same_sets,
        show,
        {
            "int(k * n), which floors; the count is round(k * n)": floored,
            "a global top k over all sites together; here every site keeps its own fraction": global_top,
        },
    )


# --- 02: diagonal dominance -------------------------------------------------------------------


def _dominance_cases() -> list:
    rng = np.random.default_rng(0)
    tasks = ["product_sentiment", "news_topic", "addition"]
    harm = pd.DataFrame(rng.uniform(5, 30, (3, 3)), index=tasks, columns=tasks)
    four = ["a", "b", "c", "d"]
    skewed = pd.DataFrame(rng.uniform(0, 2, (4, 4)), index=four, columns=four)
    skewed.loc["a"] *= 10  # set a hurts everyone: rows and columns now differ
    return [(harm,), (skewed,)]


def _same_series(got, expected) -> str:
    try:
        got = pd.Series(got).astype(float)
    except (TypeError, ValueError):
        return f"you return {type(got).__name__}, expected a Series over the tasks"
    if set(got.index) != set(expected.index):
        return f"your index is {list(got.index)}, expected the tasks {list(expected.index)}"
    for task, value in expected.items():
        if not np.isclose(got[task], value, rtol=1e-6):
            return f"for {task} you return {got[task]:.4g}, the reference {value:.4g}"
    return ""


def check_dominance(fn: Callable[[pd.DataFrame], pd.Series]) -> Check:
    """``fn(harm)``, harm a sets x tasks frame: diagonal dominance per task (a Series)."""

    def by_rows(harm):  # selectivity: the own set's harm on the other tasks
        return solutions.dominance(harm.T)

    def plain(harm):
        tasks = list(harm.columns)
        return pd.Series(
            {t: harm.loc[t, t] - harm.loc[[u for u in tasks if u != t], t].mean() for t in tasks}
        )

    return _run(
        "dominance",
        fn,
        _dominance_cases(),
        solutions.dominance,
        _same_series,
        lambda harm: f"a {harm.shape[0]} x {harm.shape[1]} harm matrix",
        {
            "the mean over the row (the own set on the other tasks: selectivity); dominance "
            "compares the column, the other sets on this task": by_rows,
            "own - others without dividing by |own| + |others|": plain,
        },
    )


# --- 05: continual-learning metrics -----------------------------------------------------------


def _cl_cases() -> list:
    rng = np.random.default_rng(0)
    A = np.tril(rng.uniform(0.2, 1.0, (4, 4)))
    zero = A.copy()
    zero[1, 1] = 0.0  # a task never learned: FG skips it
    return [(A,), (zero,)]


def _same_metrics(got, expected) -> str:
    if not isinstance(got, dict):
        return f"you return {type(got).__name__}, expected a dict with CL, FG, BWT"
    for key, value in expected.items():
        if key not in got:
            return f"your dict lacks {key!r}"
        problem = _close(got[key], value)
        if problem:
            return f"{key}: {problem}"
    return ""


def check_cl_metrics(fn: Callable[[np.ndarray], dict]) -> Check:
    """``fn(A)``: {"CL", "FG", "BWT"} of a stages x tasks score matrix (see solutions)."""

    def diagonal_cl(A):
        return {**solutions.cl_metrics(A), "CL": float(np.diag(A).mean())}

    return _run(
        "cl_metrics",
        fn,
        _cl_cases(),
        solutions.cl_metrics,
        _same_metrics,
        lambda A: f"A of shape {A.shape}",
        {
            "CL from the diagonal (each task just after training it); CL is the last row": diagonal_cl,
        },
    )
