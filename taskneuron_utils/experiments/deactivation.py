"""Deactivation (the paper's Table 1): each task scored with its own neurons, as many random
neurons, or another task's neurons switched off."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from ..tasks import Task
from .common import ConfigMixin, eval_split
from .detection import DetectionConfig, detected_sets
from ..scoring.evaluation import evaluate
from ..hooks.interventions import deactivate
from ..neurons.neuron_set import NeuronSet

if TYPE_CHECKING:
    from torch import nn
    from transformers import PreTrainedTokenizerBase

# The per-token score's column (``evaluate``'s ``score_per_token``), and its name in frames
# recorded before 2026-12-03 (benchmarks/results/replication/): readers take either.
PER_TOKEN = ("score_per_token", "score_norm")


@dataclass(frozen=True)
class DeactivationConfig(ConfigMixin):
    """Settings of ``deactivation``.

    Attributes:
        n_eval: test examples per task, a seeded sample (None = the whole test split).
        random_seeds: one random-neuron baseline per seed.
        seed: seeds the test sample.
        mode: "activation" (outputs set to zero by hooks) or "weight" (parameters zeroed,
            restored afterwards).
        others: also deactivate every other task's set on each task.
        batch_size: evaluation batch size, in examples.
        progress: print one line per evaluated condition.
    """

    n_eval: int | None = 100
    random_seeds: tuple[int, ...] = (0, 1, 2)
    seed: int = 0
    mode: str = "activation"
    others: bool = True
    batch_size: int = 16
    progress: bool = True


def deactivation(
    model: nn.Module,
    tok: PreTrainedTokenizerBase,
    tasks: dict[str, Task],
    config: DeactivationConfig = DeactivationConfig(),
    *,
    label: str = "multitask",
    sets: dict | None = None,
    detection: DetectionConfig | None = None,
    per_example: bool = False,
) -> pd.DataFrame:
    """Each task's test score and answer NLL with neuron sets deactivated (the paper's Table 1).

    For every task in ``tasks``: nothing deactivated (``none``), its own set (``own``), as many
    random neurons per site (``random``, one row per seed of ``config.random_seeds``), and every
    other task's set (``other:<task>``, when ``config.others``). The sets are ``sets`` when
    given, else detected on ``model`` itself with ``detection`` (default ``DetectionConfig()``:
    128 training examples, top 10% per site). Each task is evaluated on ``config.n_eval`` test
    examples. The cost is one evaluation per (task, condition): linear in the number of seeds.

    Returns:
        long DataFrame, one row per (task, condition[, seed]): ``model`` (= ``label``), ``task``,
        ``category``, ``metric``, ``condition`` (none / own / random / other:<task>),
        ``deactivated`` (the set's task, "random" or "none"), ``seed`` (random rows; else -1),
        ``n_neurons``, ``score`` (metric, in [0, 1]), ``score_per_token`` (the same with
        options ranked per answer token, ``accuracy_per_token``; = ``score`` for generation;
        recorded frames call it ``score_norm``, ``PER_TOKEN``), ``nll`` (nats per answer
        token), ``n`` (examples), ``seconds`` (wall time
        of the evaluation).

        With ``per_example=True``, one row per (task, condition[, seed], test example) instead:
        the same columns up to ``n_neurons``, then ``example`` (position in the evaluated
        sample), ``score`` (that example's metric, in [0, 1]), ``score_per_token`` (the same with
        options ranked per answer token; = ``score`` for generation), ``nll_sum`` (nats summed
        over its answer tokens), ``n_tokens`` (its answer tokens) and ``nll`` (nats per answer
        token). ``aggregate_examples`` turns it into the frame above (without ``seconds``);
        ``table1_intervals`` gives bootstrap intervals from it.
    """
    if sets is None:
        sets = detected_sets(model, tok, tasks, detection)
    rows = list(deactivation_rows(model, tok, tasks, sets, config, label))
    if per_example:
        return examples_frame(rows)
    return pd.DataFrame(
        [{key: value for key, value in row.items() if key != "examples"} for row in rows]
    )


def deactivation_rows(
    model,
    tok,
    tasks: dict[str, Task],
    sets: dict,
    config: DeactivationConfig,
    label: str,
    reuse: dict | None = None,
):
    """Yield ``deactivation``'s rows, each with its per-example values under ``"examples"``
    (``evaluate(per_example=True)``). ``reuse``: a dict of already evaluated rows to reuse (and
    to fill) for the conditions that do not depend on which set is the task's: ``none``, and
    ``random`` for the same seed and the same count per site. A sweep over k thus scores the
    intact model once, and families of equal-sized sets (``specificity``) share their random
    baselines."""

    for name, task in tasks.items():
        split = eval_split(task, config.n_eval, config.seed)
        own = sets[name]
        conditions = [("none", "none", -1, NeuronSet({}, own.sizes))]
        conditions.append(("own", name, -1, own))
        for seed in config.random_seeds:
            conditions.append(("random", "random", seed, NeuronSet.random_like(own, seed=seed)))
        if config.others:
            conditions += [(f"other:{o}", o, -1, s) for o, s in sets.items() if o != name]
        counts = tuple(len(own.indices[site]) for site in own.sizes)
        for condition, deactivated, seed, neurons in conditions:
            key = (name, condition, seed, counts if condition == "random" else None)
            if condition in ("none", "random") and reuse is not None and key in reuse:
                yield reuse[key]
                continue
            started = time.perf_counter()
            with deactivate(model, neurons, mode=config.mode):
                result = evaluate(
                    model,
                    tok,
                    split,
                    batch_size=config.batch_size,
                    progress=False,
                    per_example=True,
                )
            row = {
                "model": label,
                "task": name,
                "category": task.category,
                "metric": task.metric,
                "condition": condition,
                "deactivated": deactivated,
                "seed": seed,
                "n_neurons": len(neurons),
                "score": result["score"],
                "score_per_token": result["score_per_token"],
                "nll": result["nll"],
                "n": result["n"],
                "seconds": round(time.perf_counter() - started, 2),
                "examples": result["examples"],
            }
            if condition in ("none", "random") and reuse is not None:
                reuse[key] = row
            if config.progress:
                tqdm.write(
                    f"[{label}] {name:<20} {condition:<28} score {result['score']:.3f} "
                    f"nll {result['nll']:.3f}"
                )
            yield row


def examples_frame(rows) -> pd.DataFrame:
    """One row per (condition row, example) from ``deactivation_rows``' rows."""
    frames = []
    for row in rows:
        values = row["examples"]
        frame = pd.DataFrame(
            {
                "example": np.arange(len(values["score"])),
                "score": values["score"],
                "score_per_token": values["score_per_token"],
                "nll_sum": values["nll_sum"],
                "n_tokens": values["n_tokens"],
            }
        )
        frame["nll"] = frame["nll_sum"] / frame["n_tokens"]
        keys = {
            key: row[key]
            for key in row
            if key not in frame and key not in ("examples", "nll", "n", "seconds")
        }
        frames.append(frame.assign(**keys)[[*keys, *frame.columns]])
    return pd.concat(frames, ignore_index=True)


def aggregate_examples(examples: pd.DataFrame) -> pd.DataFrame:
    """``deactivation``'s frame from its ``per_example=True`` frame: per condition row, ``score``
    = mean of the examples' scores, ``nll`` = their summed NLL / their answer tokens (nats per
    token, as ``evaluate`` computes it), ``n`` = examples. Extra key columns (e.g. ``k``) are
    kept."""
    values = ("example", "score", *PER_TOKEN, "nll_sum", "n_tokens", "nll")
    keys = [c for c in examples.columns if c not in values]
    # Frames recorded before 2026-11-29 have no per-token score; later ones under either name.
    norm = {c: (c, "mean") for c in PER_TOKEN if c in examples}
    grouped = examples.groupby(keys, sort=False, dropna=False)
    out = grouped.agg(
        score=("score", "mean"),
        **norm,
        nll_sum=("nll_sum", "sum"),
        n_tokens=("n_tokens", "sum"),
        n=("score", "size"),
    ).reset_index()
    out["nll"] = out.pop("nll_sum") / out.pop("n_tokens")
    return out[[*keys, "score", *norm, "nll", "n"]]


def _group(condition: str) -> str:
    return "other" if condition.startswith("other:") else condition


def deactivation_summary(df: pd.DataFrame) -> pd.DataFrame:
    """One row per (model, task, condition group): mean and std of score and NLL.

    Groups: ``none``, ``own``, ``random`` (over seeds) and ``other`` (mean over the other tasks'
    sets). Adds ``d_score`` / ``d_nll`` (change against ``none``) and, for ``own``:
    ``score_beyond_random`` (own's score is below the random mean by more than 2 random stds, or
    by 0.01 when the seeds agree exactly), ``nll_beyond_random`` (own's NLL is above the random
    mean by the same rule) and ``beyond_random`` (both).
    """
    frame = df.assign(group=df["condition"].map(_group))
    keys = ["model", "task", "category", "metric", "group"]
    out = (
        frame.groupby(keys, sort=False)
        .agg(
            score=("score", "mean"),
            score_std=("score", "std"),
            nll=("nll", "mean"),
            nll_std=("nll", "std"),
            runs=("score", "size"),
            n_neurons=("n_neurons", "first"),
        )
        .reset_index()
    )
    none = out[out.group == "none"].set_index(["model", "task"])
    ref = out.set_index(["model", "task"]).index
    out["d_score"] = out["score"].values - none.loc[ref, "score"].values
    out["d_nll"] = out["nll"].values - none.loc[ref, "nll"].values
    rand = out[out.group == "random"].set_index(["model", "task"])
    by_score: list[bool | None] = []
    by_nll: list[bool | None] = []
    for _, row in out.iterrows():
        if row.group != "own" or (row.model, row.task) not in rand.index:
            by_score.append(None)
            by_nll.append(None)
            continue
        r = rand.loc[(row.model, row.task)]
        tol_s = max(2 * (r.score_std if pd.notna(r.score_std) else 0), 0.01)
        tol_n = max(2 * (r.nll_std if pd.notna(r.nll_std) else 0), 0.01)
        by_score.append(bool(row.score < r.score - tol_s))
        by_nll.append(bool(row.nll > r.nll + tol_n))
    out["score_beyond_random"] = pd.Series(by_score, index=out.index, dtype=object)
    out["nll_beyond_random"] = pd.Series(by_nll, index=out.index, dtype=object)
    out["beyond_random"] = [None if s is None else bool(s and n) for s, n in zip(by_score, by_nll)]
    return out


def table1(df: pd.DataFrame) -> pd.DataFrame:
    """The Table 1 analog: per model and category, the mean metric (x100) with nothing, random
    neurons (mean over seeds, then tasks; ± the mean over tasks of the std over seeds) and
    the task's own neurons deactivated, and the mean answer NLL (nats per token) of each;
    ``own_*beyond_random`` count the tasks where own neurons hurt more than random ones beyond
    the seeds' spread (``deactivation_summary``)."""
    summary = deactivation_summary(df)
    rows = []
    for (model, category), part in summary.groupby(["model", "category"], sort=False):
        by = part.set_index(["task", "group"])
        tasks = part["task"].unique()
        row = {"model": model, "category": category, "tasks": len(tasks)}
        for group, label in (("none", "original"), ("random", "random_off"), ("own", "task_off")):
            vals = by.xs(group, level="group")
            row[label] = 100 * vals["score"].mean()
            row[f"{label}_nll"] = vals["nll"].mean()
            if group == "random":
                row["random_off_std"] = 100 * vals["score_std"].mean()
                row["random_off_nll_std"] = vals["nll_std"].mean()
        own = part[part.group == "own"]
        for column in ("beyond_random", "score_beyond_random", "nll_beyond_random"):
            row[f"own_{column}"] = int(own[column].sum())
        rows.append(row)
    return pd.DataFrame(rows)
