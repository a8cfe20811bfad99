"""Specificity: are a task's neurons *task-specific* or merely *important*?

Switching off a task's top-k set hurts that task; the question is whether it hurts the task
more than the other tasks' sets do, and more than it hurts the other tasks. This module turns
the rows of ``experiments.deactivation`` into a set x task matrix of effects and scores its
diagonal, for any family of sets (the paper's top-k, ``selection`` methods, a user's sets).

The effect matrix ``E[s, t]`` is the harm done to task ``t`` by switching set ``s`` off, beyond
the baseline ``b_t``: ``E = nll(s off) - b_t`` (rise of the answer NLL, nats per token) or
``E = b_t - score(s off)`` (drop of the metric, in [0, 1]), so larger is more harmful for both.
``b_t`` is the mean over seeds with as many random neurons per site off as task ``t``'s own set
has (``baseline="random"``), or nothing off (``baseline="none"``). The random baseline of
column ``t`` fits every row only when a family's sets have equal sizes, which top-k and every
``selection`` method guarantee (same ``k``, per site). Per task ``t`` of ``T``:

    own_t         = E[t, t]
    others_t      = mean_{s != t} E[s, t]     (the other sets, on this task: a column)
    off_target_t  = mean_{u != t} E[t, u]     (this set, on the other tasks: a row)
    dominance_t   = (own_t - others_t)     / (|own_t| + |others_t|)
    selectivity_t = (own_t - off_target_t) / (|own_t| + |off_target_t|)

Both indices lie in [-1, 1] (NaN where both terms are 0): 1 when only the diagonal is harmful
(a perfectly diagonal matrix), 0 when the own set does no more than the others (a constant
matrix), negative when the others do more. ``dominance`` asks "is the own set the one that
hurts this task?", ``selectivity`` asks "does this set hurt its own task more than the others?".
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import torch

from ..tasks import Task
from .deactivation import DeactivationConfig, deactivation_rows, examples_frame
from ..neurons.neuron_set import NeuronSet
from ..core.layout import layout_for
from ..hooks.tracing import trace
from ..core.placement import input_device
from ..tasks import collate, encode, to_device

if TYPE_CHECKING:
    from torch import nn
    from transformers import PreTrainedTokenizerBase

    from ..neurons.neuron_set import NeuronSet

VALUES = ("nll", "score")
_GROUPS = ("model", "family")


def specificity(
    model: nn.Module,
    tok: PreTrainedTokenizerBase,
    tasks: dict[str, Task],
    sets: dict,
    config: DeactivationConfig = DeactivationConfig(),
    *,
    label: str = "model",
    per_example: bool = False,
) -> pd.DataFrame:
    """Every set of one or more families switched off on every task (``deactivation`` with
    ``others=True``, whatever ``config.others`` says).

    Args:
        sets: one family ``{task: NeuronSet}`` (named ``"sets"``) or several,
            ``{family: {task: NeuronSet}}``. Every family needs a set for every task of
            ``tasks``; a set under another name (for example ``"shared core"``) is switched off
            on every task too and becomes an extra row of the matrix, outside the scores.
            The random baseline of each task matches the size of that family's own set; it
            is scored once for all families whose own sets have the same count per site.
        label: the ``model`` column of the rows.
        per_example: rows per test example, as ``deactivation(per_example=True)`` (for
            ``table1_intervals`` or bootstrap intervals over examples).

    Returns:
        ``deactivation``'s rows of every family, with a ``family`` column; read it with
        ``specificity_scores``, ``deactivation_matrix`` and ``plots.plot_specificity``.
    """

    families = {"sets": sets} if all(isinstance(s, NeuronSet) for s in sets.values()) else sets
    reuse: dict = {}  # none and random rows, shared by families whose sets have equal sizes
    frames = []
    for family, members in families.items():
        if not isinstance(members, dict) or not all(
            isinstance(s, NeuronSet) for s in members.values()
        ):
            raise TypeError(
                "sets must be {task: NeuronSet} or {family: {task: NeuronSet}}; "
                f"family {family!r} is not a dict of NeuronSets"
            )
        missing = [task for task in tasks if task not in members]
        if missing:
            raise KeyError(f"family {family!r} has no set for the tasks {missing}")
        rows = deactivation_rows(
            model, tok, tasks, members, config.replace(others=True), label, reuse
        )
        frame = (
            examples_frame(rows)
            if per_example
            else pd.DataFrame(
                [{key: value for key, value in row.items() if key != "examples"} for row in rows]
            )
        )
        frames.append(frame.assign(family=family))
    return pd.concat(frames, ignore_index=True)


def core_profile(
    model: nn.Module,
    tok: PreTrainedTokenizerBase,
    tasks: dict[str, Task],
    core: NeuronSet,
    *,
    n_examples: int = 8,
    max_length: int = 256,
) -> pd.DataFrame:
    """Where a set (typically ``selection.shared_core``) sits and how large its activations are,
    next to the other units of the same site: the massive-activation question.

    Activations: every site's output (``tn.trace``) on the first ``n_examples`` training
    examples of every task (prompt and answer tokens, padding excluded), as the mean of |value|
    per unit over those tokens; then, per site, the mean of that over the set's units and over
    the site's other units.

    Returns:
        One row per site: ``site``, ``layer``, ``kind``, ``n_neurons``, ``n_set`` (units of the
        set there), ``share`` (n_set / n_neurons), ``set_act`` and ``other_act`` (mean |output|,
        the site's unit: the model's activations), ``ratio`` (set_act / other_act; NaN where the
        set has no unit or the others none). ``.groupby("layer")`` or ``("kind")`` summarises.
    """

    layout = layout_for(model, core.sizes)
    core.check_fits(model)
    device = input_device(model)
    sums = {site.name: torch.zeros(site.n_neurons, dtype=torch.float64) for site in layout.sites}
    tokens = 0
    for task in tasks.values():
        encoded = encode(tok, task.train[:n_examples], max_length=max_length)
        batch = to_device(collate(encoded, tok.pad_token_id), device)
        mask = batch["attention_mask"].to(torch.float64)  # (B, T): 1 on real tokens
        with torch.no_grad(), trace(model, list(layout.sites)) as tr:
            model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
        for name in sums:  # (B, T, n) -> (n,): |output| summed over real tokens
            out = tr[name].output.to(torch.float64).abs()
            sums[name] += (out * mask.to(out.device)[..., None]).sum((0, 1)).cpu()
        tokens += int(mask.sum())
    rows = []
    for site in layout.sites:
        mean = sums[site.name] / tokens  # (n,): mean |output| per unit
        inside = torch.zeros(site.n_neurons, dtype=torch.bool)
        inside[core.indices[site.name]] = True
        set_act = float(mean[inside].mean()) if inside.any() else float("nan")
        other_act = float(mean[~inside].mean()) if (~inside).any() else float("nan")
        rows.append(
            {
                "site": site.name,
                "layer": site.layer,
                "kind": site.kind,
                "n_neurons": site.n_neurons,
                "n_set": int(inside.sum()),
                "share": float(inside.float().mean()),
                "set_act": set_act,
                "other_act": other_act,
                "ratio": set_act / other_act,
            }
        )
    return pd.DataFrame(rows)


def deactivation_matrix(
    df: pd.DataFrame, value: str = "nll", *, baseline: str | None = None
) -> pd.DataFrame:
    """The effect matrix ``E`` (see the module docstring) of one model and family.

    Args:
        df: rows of ``deactivation`` or ``specificity`` (columns ``task``, ``condition`` and
            ``value``) of a single ``model`` and ``family``; filter first if there are several.
        value: ``"nll"`` (rise of the answer NLL, nats) or ``"score"`` (drop of the metric).
        baseline: ``"random"`` (subtract the same-size random sets' mean), ``"none"``
            (subtract nothing-off) or None: ``"random"`` when every task has random rows, else
            ``"none"``.

    Returns:
        DataFrame, rows = sets (index ``set``: the tasks' own sets in task order, then the other
        sets; with ``baseline="none"`` also ``random``, the mean over seeds), columns = the
        evaluated tasks (``task``).
    """
    if value not in VALUES:
        raise ValueError(f"value must be one of {VALUES}, got {value!r}")
    missing = {"task", "condition", value} - set(df.columns)
    if missing:
        raise ValueError(f"not a deactivation frame: columns {sorted(missing)} are missing")
    groups = [key for key in _GROUPS if key in df and df[key].nunique() > 1]
    if groups:
        raise ValueError(
            f"the rows hold several {' and '.join(groups)} values "
            f"({', '.join(map(str, df[groups[0]].unique()))}); select one first, "
            f"e.g. df[df.{groups[0]} == ...], or use specificity_scores"
        )
    tasks = list(dict.fromkeys(df["task"]))
    means = {
        cond: df[df["condition"] == cond].groupby("task")[value].mean()
        for cond in ("none", "random")
    }
    if baseline is None:
        baseline = "random" if all(t in means["random"].index for t in tasks) else "none"
    if baseline not in ("random", "none"):
        raise ValueError(f"baseline must be 'random', 'none' or None, got {baseline!r}")
    lacking = [t for t in tasks if t not in means[baseline].index]
    if lacking:
        raise ValueError(
            f"no {baseline!r} rows for the tasks {lacking}: cannot subtract the {baseline} baseline"
        )
    part = df[(df["condition"] != "none") & ((df["condition"] != "random") | (baseline == "none"))]
    rows = (
        part["condition"].str.removeprefix("other:").where(part["condition"] != "own", part["task"])
    )
    reference = means[baseline].reindex(part["task"]).to_numpy()
    sign = 1.0 if value == "nll" else -1.0
    effect = sign * (part[value].to_numpy(dtype=float) - reference)
    matrix = pd.DataFrame(
        {"set": rows.to_numpy(), "task": part["task"].to_numpy(), "effect": effect}
    ).pivot_table(index="set", columns="task", values="effect", aggfunc="mean")
    order = [t for t in tasks if t in matrix.index]
    order += [s for s in dict.fromkeys(rows) if s not in order]
    return matrix.loc[order, tasks]


def specificity_scores(
    data: pd.DataFrame,
    value: str | tuple[str, ...] | None = None,
    *,
    baseline: str | None = None,
    n_boot: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> pd.DataFrame:
    """Diagonal dominance and selectivity of a family of sets (formulas: module docstring).

    Args:
        data: rows of ``deactivation`` / ``specificity`` (scored per ``model`` and ``family``
            present, for each ``value``), or an effect matrix, sets x tasks, larger = more
            harmful (``deactivation_matrix`` or one of your own). Only the sets named like a
            column (a task) are scored; other rows are ignored.
        value: for rows, ``"nll"``, ``"score"`` or both (default); for a matrix, a label for the
            ``value`` column (default ``"effect"``).
        baseline: as in ``deactivation_matrix``.
        n_boot: resamples of the interval of the mean rows, a percentile bootstrap over the
            tasks (``scipy.stats.bootstrap``, seeded). With a handful of tasks it is coarse:
            read it as the spread over tasks, not as a test.
        confidence: that interval's coverage.
        seed: that bootstrap's seed.

    Returns:
        One row per (model, family, value, task), plus a row ``task="mean"`` per (model,
        family, value): ``own``, ``others``, ``off_target`` (effects, in the value's unit),
        ``dominance``, ``selectivity``, ``n_neurons`` (the own set's size, NaN for a matrix);
        on the mean rows, the means over tasks and ``dominance_low`` / ``_high``,
        ``selectivity_low`` / ``_high`` (NaN on the task rows, and with fewer than 2 tasks).
    """
    boot = dict(n_boot=n_boot, confidence=confidence, seed=seed)
    if "condition" not in data.columns:
        if value is not None and not isinstance(value, str):
            raise ValueError("for a matrix, value is a single label (a string)")
        return _score_matrix(data, **boot).assign(value=value or "effect")[_columns([])]
    values = VALUES if value is None else (value,) if isinstance(value, str) else tuple(value)
    keys = [key for key in _GROUPS if key in data.columns]
    frames = []
    for group, part in data.groupby(keys, sort=False) if keys else [((), data)]:
        group = group if isinstance(group, tuple) else (group,)
        sizes = (
            part[part["condition"] == "own"].groupby("task")["n_neurons"].first()
            if "n_neurons" in part
            else pd.Series(dtype=float)
        )
        for name in values:
            scores = _score_matrix(deactivation_matrix(part, name, baseline=baseline), **boot)
            scores["n_neurons"] = scores["task"].map(sizes)
            frames.append(scores.assign(value=name, **dict(zip(keys, group))))
    return pd.concat(frames, ignore_index=True)[_columns(keys)]


def _columns(keys: list[str]) -> list[str]:
    return [
        *keys,
        "value",
        "task",
        "n_neurons",
        "own",
        "others",
        "off_target",
        "dominance",
        "selectivity",
        "dominance_low",
        "dominance_high",
        "selectivity_low",
        "selectivity_high",
    ]


def _score_matrix(
    matrix: pd.DataFrame, *, n_boot: int, confidence: float, seed: int
) -> pd.DataFrame:
    """Per-task rows and the mean row of one effect matrix (sets x tasks)."""
    tasks = [t for t in matrix.columns if t in matrix.index]
    if len(tasks) < 2:
        raise ValueError(
            "specificity compares sets: the matrix needs the sets of at least two "
            f"of its tasks (rows named like columns); rows {list(matrix.index)}, "
            f"columns {list(matrix.columns)}"
        )
    square = matrix.loc[tasks, tasks].astype(float)
    own = pd.Series(np.diag(square.to_numpy()), index=tasks)
    off = square.mask(np.eye(len(tasks), dtype=bool))
    others, off_target = off.mean(axis=0), off.mean(axis=1)  # NaNs skipped
    rows = pd.DataFrame(
        {
            "task": tasks,
            "own": own.values,
            "others": others[tasks].values,
            "off_target": off_target[tasks].values,
        }
    )
    rows["dominance"] = _contrast(rows["own"], rows["others"])
    rows["selectivity"] = _contrast(rows["own"], rows["off_target"])
    mean = {"task": "mean", **rows.drop(columns="task").mean().to_dict()}
    for name in ("dominance", "selectivity"):
        mean[f"{name}_low"], mean[f"{name}_high"] = _mean_interval(
            rows[name].to_numpy(), n_boot=n_boot, confidence=confidence, seed=seed
        )
    return pd.concat([rows, pd.DataFrame([mean])], ignore_index=True).assign(n_neurons=np.nan)


def _contrast(a: pd.Series, b: pd.Series) -> pd.Series:
    """(a - b) / (|a| + |b|), in [-1, 1]; NaN where both are 0."""
    denominator = a.abs() + b.abs()
    return (a - b) / denominator.where(denominator > 0)


def _mean_interval(
    values: np.ndarray, *, n_boot: int, confidence: float, seed: int
) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of the finite ``values``; NaN with fewer than 2."""
    from scipy import stats

    values = values[np.isfinite(values)]
    if len(values) < 2:
        return np.nan, np.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # equal values: a degenerate (zero-width) interval
        result = stats.bootstrap(
            (values,),
            np.mean,
            n_resamples=n_boot,
            confidence_level=confidence,
            method="percentile",
            rng=np.random.default_rng(seed),
        )
    return float(result.confidence_interval.low), float(result.confidence_interval.high)
