"""Generalization (the paper's Section 4): does training the neurons of some tasks help other
tasks, and does the help follow the overlap of the neuron sets and the similarity of their
parameters?

- ``proportion_sweep``: train the union of the training tasks' top-p neurons (p = 1.0: every
  parameter) on the group's mixture; score in-domain and out-of-domain tasks before and after;
  overlap = Jaccard(trained union, union of the test tasks' top-p sets); random control of the
  same per-site size.
- ``pairwise_transfer``: train one task's top-p neurons, measure the gain on every other task.
- ``similarity_vs_gain``: per layer, cosine similarity of the trained task's neurons and each test
  task's neurons in the fine-tuned model, beside the test task's gain.

Every trained model's results are cached (JSON, one file a run, keyed by its settings) under
``config.out_dir`` (default ``cache_dir()/generalization``): ``generalization.runs`` trains and
caches; this module plans the runs and lays out their rows. The statistics over the DataFrames
these return are in ``generalization.stats``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import pandas as pd
from tqdm.auto import tqdm

from ...neurons.neuron_set import NeuronSet
from ...neurons.selection import select
from ...tasks import Task
from ..common import ConfigMixin
from .runs import RunContext, full_set, union

if TYPE_CHECKING:
    from collections.abc import Sequence

    from transformers import PreTrainedTokenizerBase

    from ..common import ModelLoader

#: The data card's suggested groups: (name, training tasks, out-of-domain test tasks).
GROUPS = (
    (
        "classification",
        ("product_sentiment", "news_topic", "number_compare"),
        ("film_sentiment", "question_topic", "number_parity"),
    ),
    (
        "generation",
        ("addition", "uppercase", "country_capital"),
        ("subtraction", "reverse_words", "list_capitals"),
    ),
)


@dataclass(frozen=True)
class GeneralizationConfig(ConfigMixin):
    """Settings of ``proportion_sweep``, ``pairwise_transfer`` and ``similarity_vs_gain``.

    Attributes:
        groups: (name, training tasks, test tasks) triples.
        proportions: trained fractions p in (0, 1]; 1.0 = full fine-tuning (every parameter).
        random_seeds: one random-neuron control per seed at every p < 1 (same count per site).
        n_attribution: training examples per task for detection on the base model.
        examples: training examples per task (in the group's mixture, or alone when pairwise).
        steps, batch_size: optimiser steps (AdamW, linear schedule, 10% warmup) and examples each.
        lrs: learning-rate grid; chosen on the training tasks' dev answer NLL (never test) at
            seed ``seed``, once for neuron training (at p = ``min(proportions)``) and once for full
            fine-tuning, then fixed for every run of the group.
        full_lrs: the grid of full fine-tuning (None = ``lrs``).
        n_dev: dev examples per training task for the choice of lr.
        n_eval: test examples per task, a seeded sample (None = the whole test split).
        pairwise_p: the fraction trained by ``pairwise_transfer`` and ``similarity_vs_gain``.
        max_length, eval_batch_size: tokens per example; evaluation batch size.
        seed: samples, training order and the lr search.
        out_dir: cache folder (None = ``cache_dir()/generalization``).
        progress: tqdm bars over runs.
    """

    groups: tuple = GROUPS
    proportions: tuple[float, ...] = (0.1, 0.3, 0.5, 0.7, 1.0)
    random_seeds: tuple[int, ...] = (0, 1, 2)
    n_attribution: int | None = 32
    examples: int = 200
    steps: int = 12
    batch_size: int = 4
    lrs: tuple[float, ...] = (1e-4, 1e-3)
    full_lrs: tuple[float, ...] | None = (1e-5, 1e-4)
    n_dev: int = 24
    n_eval: int | None = 48
    pairwise_p: float = 0.1
    max_length: int = 256
    eval_batch_size: int = 16
    seed: int = 0
    out_dir: str | None = None
    progress: bool = True

    def __post_init__(self):
        bad = [p for p in (*self.proportions, self.pairwise_p) if not 0 < p <= 1]
        if bad or not self.proportions:
            raise ValueError(
                f"proportions are fractions in (0, 1] (1.0 = full fine-tuning); "
                f"got {self.proportions!r}, pairwise_p={self.pairwise_p!r}"
            )
        if not self.groups:
            raise ValueError("groups is empty: give (name, training tasks, test tasks) triples")
        for group in self.groups:
            if len(group) != 3 or not group[1] or not group[2]:
                raise ValueError(
                    f"group {group!r} needs a name, training tasks and test tasks, "
                    f"none of them empty"
                )
        if not self.lrs:
            raise ValueError("lrs is empty")

    def group_tasks(self) -> list[str]:
        """Every task named by a group, in order, once."""
        return list(dict.fromkeys(t for _, train, test in self.groups for t in (*train, *test)))


# --- experiments ----------------------------------------------------------------------------


SWEEP_COLUMNS = [
    "group",
    "condition",
    "p",
    "seed",
    "lr",
    "task",
    "domain",
    "category",
    "metric",
    "family",
    "n_trained",
    "trainable_parameters",
    "overlap",
    "task_overlap",
    "score_before",
    "score",
    "gain",
    "nll_before",
    "nll",
    "nll_gain",
    "n",
    "dev_nll",
    "train_seconds",
]


def proportion_sweep(
    model_loader: ModelLoader,
    tok: PreTrainedTokenizerBase,
    tasks: dict[str, Task],
    config: GeneralizationConfig = GeneralizationConfig(),
) -> pd.DataFrame:
    """Train the union of each group's training tasks' top-p neurons on the group's mixture, at
    every p of ``config.proportions`` (p = 1.0: every parameter), plus a random control of the
    same per-site size per seed of ``config.random_seeds`` at every p < 1; score every task of
    the group before and after.

    Returns:
        long DataFrame (``SWEEP_COLUMNS``), one row per (group, condition, p, seed, task):
        ``condition`` task / random / full; ``domain`` in (training task) or out; ``n_trained``
        neurons trained (full: all FFN neurons); ``overlap`` = Jaccard(trained neurons, union of
        the test tasks' top-p sets) (the paper's reading), ``task_overlap`` = Jaccard(trained
        neurons, this task's top-p set); ``score_before``/``score``, ``gain`` = score - before
        (metric, [0, 1]); ``nll_before``/``nll`` (nats per answer token), ``nll_gain`` = before -
        nll (positive = better); ``lr`` chosen on dev NLL; ``dev_nll`` (training tasks' dev).
    """
    ctx = RunContext(model_loader, tok, tasks, config)
    rows = []
    for group, train, test in config.groups:
        names = [*train, *test]
        before = ctx.before(names)
        for name in names:  # detection first, with a progress line, before any training
            ctx.relevance(name)
        p_low = min(p for p in config.proportions)
        neuron_lr = full_lr = None
        if any(p < 1 for p in config.proportions):
            neuron_lr, _ = ctx.choose_lr(train, union([ctx.top(t, p_low) for t in train]), names)
        if 1.0 in config.proportions:
            full_lr, _ = ctx.choose_lr(train, None, names)
        plan = []
        for p in config.proportions:
            if p == 1.0:
                plan.append(("full", p, config.seed))
            else:
                plan.append(("task", p, config.seed))
                plan += [("random", p, s) for s in config.random_seeds]
        for condition, p, seed in tqdm(plan, desc=f"sweep {group}", disable=not config.progress):
            trained_union = union([ctx.top(t, p) for t in train])
            test_union = union([ctx.top(t, p) for t in test])
            if condition == "full":
                neurons, lr, counted = None, full_lr, full_set(trained_union)
            else:
                neurons = (
                    trained_union
                    if condition == "task"
                    else NeuronSet.random_like(trained_union, seed=seed)
                )
                lr, counted = neuron_lr, neurons
            run = ctx.train(train, neurons, lr, names)
            overlap = counted.jaccard(test_union)
            for name in names:
                task, b, a = tasks[name], before[name], run["eval"][name]
                rows.append(
                    {
                        "group": group,
                        "condition": condition,
                        "p": p,
                        "seed": seed,
                        "lr": lr,
                        "task": name,
                        "domain": "in" if name in train else "out",
                        "category": task.category,
                        "metric": task.metric,
                        "family": task.family,
                        "n_trained": len(counted),
                        "trainable_parameters": run["trainable_parameters"],
                        "overlap": overlap,
                        "task_overlap": counted.jaccard(ctx.top(name, p)),
                        "score_before": b["score"],
                        "score": a["score"],
                        "gain": a["score"] - b["score"],
                        "nll_before": b["nll"],
                        "nll": a["nll"],
                        "nll_gain": b["nll"] - a["nll"],
                        "n": a["n"],
                        "dev_nll": run["dev_nll"],
                        "train_seconds": run["train_seconds"],
                    }
                )
    return pd.DataFrame(rows, columns=SWEEP_COLUMNS)


def _single_task_runs(model_loader, tok, tasks, config, sources, targets, lr):
    """{source: (run record, lr, lr search)} of training each source's top-``pairwise_p``
    neurons alone, evaluated on ``targets``, with the parameter similarity to every target."""
    ctx = RunContext(model_loader, tok, tasks, config)
    for name in [*sources, *targets]:
        if name not in tasks:
            raise KeyError(f"unknown task {name!r}; tasks has {sorted(tasks)}")
        ctx.relevance(name)
    targets = list(dict.fromkeys(targets))
    before = ctx.before(targets)
    p, out = config.pairwise_p, {}
    for source in tqdm(sources, desc="single-task runs", disable=not config.progress):
        own = ctx.top(source, p)
        sets = {source: own, **{t: ctx.top(t, p) for t in targets if t != source}}
        chosen, search = (
            (lr, {}) if lr is not None else ctx.choose_lr([source], own, targets, similarity=sets)
        )
        run = ctx.train([source], own, chosen, targets, similarity=sets)
        out[source] = (run, chosen, search)
    return ctx, before, out


def pairwise_transfer(
    model_loader: ModelLoader,
    tok: PreTrainedTokenizerBase,
    tasks: dict[str, Task],
    config: GeneralizationConfig = GeneralizationConfig(),
    *,
    sources: Sequence[str] | None = None,
    targets: Sequence[str] | None = None,
    lr: float | None = None,
    selections: tuple[str, ...] = (),
) -> pd.DataFrame:
    """Train one task's top-``config.pairwise_p`` neurons on its own training data, measure the
    gain on every target task (default: every task of the groups, for sources and targets).

    ``lr`` fixes the learning rate; None chooses it per source among ``config.lrs`` on the
    source's dev NLL. Returns one row per (source, task), task != source: ``source``, ``task``,
    ``same_family`` (bool), ``overlap`` (Jaccard of the two top-p sets), ``score_before``,
    ``score``, ``gain``, ``nll_before``, ``nll``, ``nll_gain``, ``lr``, ``n``; plus, for every
    method of ``selections`` (``tn.select``: "contrastive", "entropy", "exclusive"), the column
    ``overlap_<method>``: the Jaccard of the two tasks' sets of that method, same size, selected
    among all sources and targets. The trained neurons stay the top-p set: this asks whether the
    overlap of *specific* neurons predicts the transfer better than that of top-p sets.
    """
    sources = list(sources or config.group_tasks())
    targets = list(targets or config.group_tasks())
    ctx, before, runs = _single_task_runs(model_loader, tok, tasks, config, sources, targets, lr)
    everyone = list(dict.fromkeys(sources + targets))
    specific = {
        m: select({t: ctx.relevance(t) for t in everyone}, m, k=config.pairwise_p)
        for m in selections
    }
    rows = []
    for source, (run, chosen, _) in runs.items():
        for name in targets:
            if name == source:
                continue
            b, a = before[name], run["eval"][name]
            rows.append(
                {
                    "source": source,
                    "task": name,
                    **{
                        f"overlap_{m}": sets[source].jaccard(sets[name])
                        for m, sets in specific.items()
                    },
                    "same_family": tasks[source].family == tasks[name].family,
                    "overlap": ctx.top(source, config.pairwise_p).jaccard(
                        ctx.top(name, config.pairwise_p)
                    ),
                    "score_before": b["score"],
                    "score": a["score"],
                    "gain": a["score"] - b["score"],
                    "nll_before": b["nll"],
                    "nll": a["nll"],
                    "nll_gain": b["nll"] - a["nll"],
                    "lr": chosen,
                    "n": a["n"],
                }
            )
    return pd.DataFrame(rows)


def similarity_vs_gain(
    model_loader: ModelLoader,
    tok: PreTrainedTokenizerBase,
    tasks: dict[str, Task],
    config: GeneralizationConfig = GeneralizationConfig(),
    *,
    sources: Sequence[str] | None = None,
    lr: float | None = None,
) -> pd.DataFrame:
    """Per layer: in a model whose only trained parameters are a training task's top-p neurons
    (``config.pairwise_p``), the cosine similarity between that task's neurons' parameters and
    each out-of-domain test task's neurons' (``analysis.parameter_similarity``: ``weights`` and
    ``update`` = tuned - base), beside the test task's gain from the same run.

    ``sources``: training tasks (default: every group's training tasks; each is compared with
    its group's test tasks, or with every group's when it is in no group). Returns one row per
    (source, task, layer): ``group``, ``source``, ``task``, ``layer``, ``similarity_weights``,
    ``similarity_update``, ``gain``, ``nll_gain``, ``lr``.
    """
    group_of = {t: (g, test) for g, train, test in config.groups for t in train}
    sources = list(sources or group_of)
    all_tests = [t for _, _, test in config.groups for t in test]
    tests = {s: list(group_of.get(s, ("-", all_tests))[1]) for s in sources}
    targets = list(dict.fromkeys(t for s in sources for t in [*config.group_tasks()]))
    ctx, before, runs = _single_task_runs(model_loader, tok, tasks, config, sources, targets, lr)
    rows = []
    for source, (run, chosen, _) in runs.items():
        for sim in run["similarity"]:
            if sim["task"] not in tests[source]:
                continue
            b, a = before[sim["task"]], run["eval"][sim["task"]]
            rows.append(
                {
                    "group": group_of.get(source, ("-",))[0],
                    "source": source,
                    "task": sim["task"],
                    "layer": sim["layer"],
                    "similarity_weights": sim["similarity_weights"],
                    "similarity_update": sim.get("similarity_update"),
                    "gain": a["score"] - b["score"],
                    "nll_gain": b["nll"] - a["nll"],
                    "lr": chosen,
                }
            )
    return pd.DataFrame(rows)
