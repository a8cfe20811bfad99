"""The ``specific_*`` parts of ``benchmarks/replication.py`` (issue 15): are a task's neurons
task-*specific* or merely *important*, for every selection method, at k = 1, 2, 5, 10% per
site, under both neuron definitions.

    specific_<definition>_k<pct>   definition: linear (gate, up, down outputs) or act (the
                                   input of down_proj); pct: 01, 02, 05, 10

Each part, on the multi-task fine-tuned model (Table 1's "original" model):

- relevance of every unit for product_sentiment, news_topic, country_continent and last_word, on
  32 training examples the model was not trained on (``ex.held_out``, seed 0); computed once per
  definition and kept under ``specific_relevance/<definition>/`` for the other k;
- four families of sets at matched counts (``tn.select``): top_k (the paper's), contrastive
  (difference), entropy, exclusive; every set switched off on every task
  (``ex.specificity``), with 10 random sets of the same count per site (seeds 0-9), shared by
  the four families because their counts are equal;
- at k = 2% and 10%, the shared core (neurons in all four top-k sets, ``tn.shared_core``)
  switched off on every task, beside 10 random sets of the core's size: the general-damage
  baseline.

32 test examples per task (seeded sample), activation mode. Writes ``<part>.csv`` (one row per
family, task and condition: score in [0, 1], answer NLL in nats per token) and
``<part>_examples.csv.gz`` (the same per test example, for intervals over examples). The
summary writes ``specific_scores.csv`` (``ex.specificity_scores`` on the NLL and the metric:
diagonal dominance and selectivity per task and their mean with a bootstrap interval over the
tasks), ``specific_table1.csv`` (``ex.table1_intervals`` per family: own vs random and own vs
the other tasks' sets, bootstrap over examples and seeds), ``specific_matrices.csv`` (every
set x task effect matrix, beyond the random baseline, long form), ``specific_core.csv`` and
the figures ``specific_dominance.png`` and ``specific_matrices_k<pct>.png`` (NLL matrices).

Cost: per part and task, 1 intact + 10 random + 4 families x 4 sets = 27 scorings of 32
examples; the core adds 1 + 1 + 10 a task at k = 2% and 10%. Measured on 2 idle cores
(2026-11-29, times.json): 276-313 s for a part without the core, 404-425 s with it, 2,846 s
(47 min) for the eight, relevance detection included.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd

import taskneuron_utils as tn
from harness import write_csv
from taskneuron_utils import experiments as ex, plots

QUICK = ex.PROFILES["quick"]
MULTITASK = QUICK.multitask
TASKS = ("product_sentiment", "news_topic", "country_continent", "last_word")
DEFINITIONS = {"linear": None, "act": ("act",)}
KS = {"k01": 0.01, "k02": 0.02, "k05": 0.05, "k10": 0.10}
METHODS = ("top_k", "contrastive", "entropy", "exclusive")
CORE_KS = (0.02, 0.10)  # the shared core is switched off at these k (each definition)
DETECTION = QUICK.detection.replace(n_attribution=32)
CONFIG = QUICK.deactivation.replace(n_eval=32, random_seeds=tuple(range(10)), others=True)
SPECIFIC_PARTS = tuple(f"specific_{d}_{k}" for d in DEFINITIONS for k in KS)


def relevances(model, tok, tasks: dict, definition: str, out: Path) -> dict:
    """{task: Relevance} of one definition on held-out training examples, cached on disk."""
    folder = out / "specific_relevance" / definition
    folder.mkdir(parents=True, exist_ok=True)
    missing = {
        name: task for name, task in tasks.items() if not (folder / f"{name}.safetensors").exists()
    }
    if missing:
        detection = DETECTION.replace(kinds=DEFINITIONS[definition])
        for name, rel in ex.detect(model, tok, ex.held_out(missing, MULTITASK), detection).items():
            rel.save(folder / f"{name}.safetensors")
    return {name: tn.Relevance.load(folder / f"{name}.safetensors", model) for name in tasks}


def run_specific(part: str, out: Path, model=None, tok=None) -> pd.DataFrame:
    """One part: the per-example rows go to ``<part>_examples.csv.gz``; returns them aggregated
    per condition (``ex.aggregate_examples``), which ``replication.py`` writes as ``<part>.csv``.
    ``model``, ``tok``: another model than the multi-task one (the tests' tiny model)."""
    if part not in SPECIFIC_PARTS:
        raise ValueError(f"unknown part {part!r}; choose from {SPECIFIC_PARTS}")
    _, definition, k_name = part.split("_")
    k = KS[k_name]
    if model is None:
        model, tok, _ = ex.multitask_finetune(MULTITASK)
    tasks = tn.load_tasks(list(TASKS))
    rel = relevances(model, tok, tasks, definition, out)
    families = {method: tn.select(rel, method, k) for method in METHODS}
    label = f"multitask {definition} k={k:g}"
    frames = [ex.specificity(model, tok, tasks, families, CONFIG, label=label, per_example=True)]
    core = tn.shared_core(rel, k)
    if k in CORE_KS and len(core):  # an empty core has nothing to switch off
        frames.append(
            ex.deactivation(
                model,
                tok,
                tasks,
                CONFIG.replace(others=False),
                label=label,
                sets={name: core for name in tasks},
                per_example=True,
            ).assign(family="shared core")
        )
    examples = pd.concat(frames, ignore_index=True).assign(definition=definition, k=k)
    write_csv(examples, out / f"{part}_examples.csv.gz")
    return ex.aggregate_examples(examples)


def summarize_specific(out: Path) -> None:
    """Write the score, interval and core tables of the finished parts; print them; draw the
    dominance figure."""
    parts = [p for p in SPECIFIC_PARTS if (out / f"{p}.csv").exists()]
    if not parts:
        return
    rows = pd.concat([pd.read_csv(out / f"{p}.csv") for p in parts], ignore_index=True)
    families = rows[rows.family != "shared core"]
    scores = pd.concat(
        [
            ex.specificity_scores(part).assign(definition=d, k=k)
            for (d, k), part in families.groupby(["definition", "k"], sort=False)
        ]
    )
    write_csv(scores, out / "specific_scores.csv")
    mean = scores[scores.task == "mean"]
    print(
        mean[
            [
                "definition",
                "k",
                "family",
                "value",
                "dominance",
                "dominance_low",
                "dominance_high",
                "selectivity",
            ]
        ]
        .round(2)
        .to_string(index=False)
    )
    intervals = []
    for p in parts:
        examples = pd.read_csv(out / f"{p}_examples.csv.gz")
        examples = examples[examples.family != "shared core"]
        for family, part in examples.groupby("family", sort=False):
            intervals.append(
                ex.table1_intervals(part.drop(columns="family")).assign(
                    family=family, definition=part.definition.iloc[0]
                )
            )
    table = pd.concat(intervals, ignore_index=True)
    write_csv(table, out / "specific_table1.csv")
    shown = table[(table.task == "all") & (table.category == "all")]
    print(
        shown.filter(regex="^(definition|k|family|measure|own_vs_.*|beyond_.*)$")
        .round(3)
        .to_string(index=False)
    )
    core = ex.deactivation_summary(rows[rows.family == "shared core"])
    core = core.merge(rows[["model", "definition", "k"]].drop_duplicates(), on="model")
    write_csv(core, out / "specific_core.csv")
    print(
        core[["definition", "k", "task", "group", "n_neurons", "score", "nll", "d_nll", "nll_std"]]
        .round(3)
        .to_string(index=False)
    )
    matrices = []
    for (d, k, family), part in families.groupby(["definition", "k", "family"], sort=False):
        for value in ("nll", "score"):
            matrix = ex.deactivation_matrix(part, value)
            matrices.append(
                matrix.rename_axis(index="set", columns="task")
                .stack()
                .rename("effect")
                .reset_index()
                .assign(definition=d, k=k, family=family, value=value)
            )
    matrices = pd.concat(matrices, ignore_index=True)
    write_csv(matrices, out / "specific_matrices.csv")
    for k in sorted(matrices.k.unique()):
        chosen = matrices[(matrices.k == k) & (matrices.value == "nll")]
        panels = list(chosen.groupby(["definition", "family"], sort=False))
        fig, axes = plt.subplots(2, 4, figsize=(20, 7.5), squeeze=False, layout="constrained")
        for ax, ((definition, family), part) in zip(axes.flat, panels):
            matrix = part.pivot(index="set", columns="task", values="effect")
            order = list(dict.fromkeys(part.task))
            plots.plot_specificity(
                matrix.loc[order, order], ax=ax, title=f"{definition}, {family}, k = {100 * k:g}%"
            )
            ax.tick_params(axis="x", rotation=90)
        for ax in list(axes.flat)[len(panels) :]:
            ax.set_visible(False)
        fig.savefig(out / f"specific_matrices_k{round(100 * k):02d}.png", dpi=80)
        plt.close(fig)
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8), sharey=True)
    for ax, (definition, part) in zip(axes, mean[mean.value == "nll"].groupby("definition")):
        plots.plot_dominance_vs_k(part, ax=ax, title=f"{definition} units: diagonal dominance")
    fig.savefig(out / "specific_dominance.png", dpi=110, bbox_inches="tight")
    plt.close(fig)
