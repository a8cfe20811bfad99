"""Faithfulness over k (MIB, Mueller, Geiger et al. 2025): does a neuron set carry the task?

For one recipe (a way to rank units, ``experiments.recipes``), one task and a grid of sizes
k (fractions of the analysed FFN units), three interventions on the set C_k:

    keep          only C_k kept: every other analysed unit mean-ablated (MIB's circuit test)
    ablate_zero   C_k set to 0 (the paper's deactivation), the rest untouched
    ablate_mean   C_k held at its mean, the rest untouched

each measured per test example by ``pair_metrics`` in one teacher-forced forward pass:

    ld    logit difference logit(A_1) - logit(B_1) at the original's first answer position
          (B_1: the minimal-pair alternative's first answer token; Han et al. 2026's metric,
          ``scoring.contrast``); higher = the model prefers the right answer
    nll   the answer's negative log-likelihood, nats per answer token (the paper's loss)
    score the task metric in [0, 1] (``tn.evaluate``; only with ``FaithfulnessConfig.score``)

"Mean" is each unit's mean output over the real token positions of ``n_reference`` training
examples of the same task (``tn.activation_stats``). The analysed units are the sites of the
sets (the linear sites, or ``act``): the other kind is never touched.

MIB faithfulness, per task and measure m (means over the test examples):

    m(N) = nothing ablated, m(0) = every analysed unit mean-ablated (C empty),
    f(C) = (m(C kept) - m(0)) / (m(N) - m(0))          (NaN when m(N) = m(0))

so f(all units) = 1 and f(empty) = 0 exactly (the same forward passes). Over several tasks f
is pooled: the same formula on the means over tasks of m(C), m(0) and m(N) (a task whose m(N)
is close to its m(0) would dominate a mean of the tasks' f). Areas over the grid
(the x-scale, our choice: MIB integrates over its own grid of edge fractions): with
t = (log10 k - log10 k_min) / (log10 k_max - log10 k_min) in [0, 1] over the grid's k > 0,
the trapezoid rule gives

    CPR = integral of f dt        (higher: small sets already carry the task)
    CMD = integral of |1 - f| dt  (lower: closer to the full model at every size)

A recipe whose sets are faithful at a small k has CPR near 1 and CMD near 0; a random set's
curve rises only as k grows. Intervals: percentile bootstrap over test examples
(``analysis.bootstrap_interval``, i.e. ``scipy.stats.bootstrap``), resampling each task's
examples independently; one draw is shared by every k, condition and reference of a task, so
f and the areas are paired by example.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from ..core.placement import input_device
from ..hooks.baselines import Ablation, activation_stats
from ..hooks.interventions import deactivate
from ..neurons.neuron_set import NeuronSet
from ..scoring.evaluation import evaluate
from ..scoring.contrast import first_tokens
from ..scoring.loss import lm_head_logits
from ..tasks import Task, check_pairs, collate, to_device
from .common import ConfigMixin, eval_split, sample

if TYPE_CHECKING:
    from torch import nn
    from transformers import PreTrainedTokenizerBase

    from ..hooks.baselines import ActivationStats
    from ..tasks import Split

#: The default k grid: 6 fractions of the analysed units, log-spaced from 0.05% to 20%.
K_GRID = tuple(float(k) for k in np.geomspace(0.0005, 0.2, 6))
CONDITIONS = ("keep", "ablate_zero", "ablate_mean")
MEASURES = ("ld", "nll", "score")


@dataclass(frozen=True)
class FaithfulnessConfig(ConfigMixin):
    """Settings of ``faithfulness``.

    Attributes:
        n_eval: test examples per task, a seeded sample (None = the whole test split).
        n_reference: training examples per task whose mean activations mean ablation uses.
        conditions: which of ``CONDITIONS`` to run for every set ("keep" is MIB's).
        score: also score the task metric (``tn.evaluate``, greedy decoding for generation:
            the slow part) under the ablation conditions.
        seed: seeds both samples.
        batch_size: examples per forward pass. max_length: prompt + answer tokens.
        progress: a tqdm bar over the (recipe, task, k, condition) passes.
    """

    n_eval: int | None = 16
    n_reference: int = 32
    conditions: tuple[str, ...] = CONDITIONS
    score: bool = False
    seed: int = 0
    batch_size: int = 8
    max_length: int = 256
    progress: bool = True


def pair_metrics(
    model: Any,
    tok: PreTrainedTokenizerBase,
    data: Split,
    alt: Split,
    *,
    batch_size: int = 8,
    max_length: int = 256,
) -> dict[str, np.ndarray]:
    """Logit difference and answer NLL of every example in one teacher-forced forward pass per
    batch (eval mode, no gradients, through whatever hooks the model carries).

    Returns:
        {"ld": float64 (n,) logit(A_1) - logit(B_1) at the original's last prompt token (as
        ``scoring.contrast.logit_differences``), "nll_sum": float64 (n,) nats summed over the
        answer tokens, "n_tokens": int64 (n,) answer tokens}, in split order.
    """
    encoded, encoded_alt = check_pairs(tok, data, alt, max_length=max_length)
    foils = first_tokens(encoded_alt)
    device = input_device(model)
    out: dict[str, list] = {"ld": [], "nll_sum": [], "n_tokens": []}
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            for start in range(0, len(encoded), batch_size):
                batch = to_device(
                    collate(encoded[start : start + batch_size], tok.pad_token_id), device
                )
                hidden = model.base_model(
                    input_ids=batch["input_ids"],
                    attention_mask=batch["attention_mask"],
                    use_cache=False,
                ).last_hidden_state  # (B, T, d)
                labels = batch["labels"].to(hidden.device)
                predicts = torch.zeros_like(labels, dtype=torch.bool)  # position t predicts t+1
                predicts[:, :-1] = labels[:, 1:] != -100
                logits = lm_head_logits(model, hidden[predicts]).double()  # (N, V)
                targets = labels[:, 1:][predicts[:, :-1]]
                row = predicts.nonzero()[:, 0]  # (N,) example of each answer position
                nll = torch.nn.functional.cross_entropy(logits, targets, reduction="none")
                size = len(labels)
                first = torch.ones(len(row), dtype=torch.bool, device=row.device)
                first[1:] = row[1:] != row[:-1]  # each example's first answer position
                foil = foils[start : start + size].to(logits.device)
                ld = (
                    logits[first].gather(1, targets[first, None])[:, 0]
                    - logits[first].gather(1, foil[:, None])[:, 0]
                )
                out["ld"].append(ld.cpu())
                out["nll_sum"].append(
                    torch.zeros(size, dtype=torch.float64).index_add(0, row.cpu(), nll.cpu())
                )
                out["n_tokens"].append(torch.bincount(row.cpu(), minlength=size))
    finally:
        model.train(was_training)
    return {key: torch.cat(values).numpy() for key, values in out.items()}


def complement(neurons: NeuronSet) -> NeuronSet:
    """Every unit of ``neurons``' sites that is not in it (same layout)."""
    rest = {}
    for site, n in neurons.sizes.items():
        keep = torch.ones(n, dtype=torch.bool)
        keep[neurons.indices[site]] = False
        rest[site] = keep.nonzero()[:, 0]
    return NeuronSet(rest, neurons.sizes, {"selection": "complement", "of": neurons.name})


def faithfulness(
    model: nn.Module,
    tok: PreTrainedTokenizerBase,
    tasks: dict[str, Task],
    config: FaithfulnessConfig = FaithfulnessConfig(),
    *,
    sets: dict,
    stats: dict[str, ActivationStats] | None = None,
) -> pd.DataFrame:
    """Every set kept alone and ablated on its task, per test example (module docstring).

    Args:
        tasks: {name: Task}, each with minimal pairs (``Task.pairs``).
        sets: {recipe: {task: {k: NeuronSet}}}, every NeuronSet in one layout (the analysed
            sites); k is the set's nominal fraction (0 and 1 allowed: the empty and full set).
            ``experiments.recipes.recipe_sets`` builds it.
        stats: {task: ActivationStats} covering the sites (default: computed on
            ``n_reference`` training examples of each task).

    Returns:
        One row per (recipe, task, k, condition, example), plus per (task, example) the
        references ``recipe="reference"``, k NaN, condition ``full`` (m(N)), ``empty`` (every
        analysed unit mean-ablated: m(0)) and ``all_zero`` (every analysed unit zeroed):
        ``recipe``, ``task``, ``family``, ``k``, ``n_units`` (units in the set), ``share``
        (n_units / analysed units), ``condition``, ``example``, ``ld`` (logits), ``nll_sum``
        (nats), ``n_tokens``, ``nll`` (nats per answer token) and, with ``config.score``,
        ``score`` (NaN under ``keep`` and ``empty``). Read it with ``faithfulness_summary.faithfulness_curves`` and
        ``faithfulness_areas``.
    """
    unknown = [c for c in config.conditions if c not in CONDITIONS]
    if unknown:
        raise ValueError(f"conditions must be among {CONDITIONS}, got {unknown}")
    layouts = {
        tuple(ns.sizes.items())
        for family in sets.values()
        for by_k in family.values()
        for ns in by_k.values()
    }
    if len(layouts) != 1:
        raise ValueError(f"every set must have one layout (the analysed sites); got {len(layouts)}")
    for recipe, family in sets.items():
        missing = [t for t in tasks if t not in family]
        if missing:
            raise KeyError(f"recipe {recipe!r} has no sets for the tasks {missing}")
    no_pairs = [name for name, task in tasks.items() if not task.has_pairs]
    if no_pairs:
        raise ValueError(f"faithfulness needs minimal pairs; the tasks {no_pairs} have none")
    sizes = dict(next(iter(layouts)))
    passes = [
        (r, t, k, c) for r in sets for t in tasks for k in sets[r][t] for c in config.conditions
    ]
    bar = tqdm(total=len(passes) + 3 * len(tasks), desc="faithfulness", disable=not config.progress)
    frames = []
    for name, task in tasks.items():
        frames += _task_rows(model, tok, name, task, sets, config, stats, sizes, bar)
    bar.close()
    keys = ["recipe", "task", "family", "k", "n_units", "share", "condition", "example"]
    frame = pd.concat(frames, ignore_index=True)
    return frame[keys + [c for c in frame.columns if c not in keys]]


def _task_rows(model, tok, name, task, sets, config, stats, sizes, bar) -> list[pd.DataFrame]:
    """``faithfulness``' rows of one task: the three references, then every set's conditions."""
    split = eval_split(task, config.n_eval, config.seed)
    alt = split.pairs()
    total = sum(sizes.values())
    if stats is not None and name in stats:
        reference = stats[name]
    else:
        reference = activation_stats(
            model,
            tok,
            sample(task.train, config.n_reference, config.seed),
            kinds="all",
            batch_size=config.batch_size,
            progress=False,
        )
    mean = Ablation.mean(reference)

    def measure(neurons: NeuronSet, mode, scored: bool) -> dict:
        with deactivate(model, neurons, mode=mode):
            values = pair_metrics(
                model, tok, split, alt, batch_size=config.batch_size, max_length=config.max_length
            )
            if config.score:  # the task metric is not defined for "keep": NaN there
                values["score"] = np.full(len(split), np.nan)
                if scored:
                    values["score"] = evaluate(
                        model,
                        tok,
                        split,
                        batch_size=config.batch_size,
                        progress=False,
                        max_length=config.max_length,
                        per_example=True,
                    )["examples"]["score"]
        bar.update()
        return values

    def rows(recipe, k, neurons, condition, values) -> pd.DataFrame:
        frame = pd.DataFrame({"example": np.arange(len(split)), **values})
        frame["nll"] = frame["nll_sum"] / frame["n_tokens"]
        return frame.assign(
            recipe=recipe,
            task=name,
            family=task.family,
            k=k,
            n_units=len(neurons),
            share=len(neurons) / total,
            condition=condition,
        )

    empty = NeuronSet({}, sizes)
    everything = complement(empty)
    frames = [
        rows("reference", np.nan, empty, "full", measure(empty, "activation", True)),
        rows("reference", np.nan, empty, "empty", measure(everything, mean, False)),
        rows("reference", np.nan, everything, "all_zero", measure(everything, "activation", True)),
    ]
    for recipe, family in sets.items():
        for k, neurons in family[name].items():
            for condition in config.conditions:
                if condition == "keep":
                    values = measure(complement(neurons), mean, False)
                else:
                    values = measure(
                        neurons, "activation" if condition == "ablate_zero" else mean, True
                    )
                frames.append(rows(recipe, float(k), neurons, condition, values))
    return frames
