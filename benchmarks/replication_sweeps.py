"""The parts of ``benchmarks/replication.py`` that make Tables 1 and 2 informative (issue 12):
bootstrap intervals over test examples and random seeds, a sweep over k, and a sweep over the
training budget.

    table1_seeds_linear  Table 1 on the multi-task model at the paper's k = 10% per site, linear
                         sites (gate, up, down): 6 tasks, 150 test examples each, random seeds
                         0-9, own vs random only (other tasks' sets: the k sweeps); per-example
                         CSV, intervals in table1_seeds_linear_intervals.csv
    table1_seeds_act     the same with the act units (the FFN's intermediate activation)
    k_sweep_linear       multi-task model, k in (0.5, 1, 2, 5, 10, 20)%, linear sites:
                         product_sentiment, news_topic, last_word; 32 test examples, random
                         seeds 0-2, own / random / the other two tasks' sets; per-example CSV,
                         intervals in k_sweep_linear_intervals.csv, figure k_sweep_linear_nll.png
    k_sweep_act          the same with the act units
    budget               Table 2 over budgets of 2, 4, 8, 16, 32 steps of 4 examples from the
                         untuned model: all six tasks of the multi-task mixture (zero-shot far
                         from the ceiling on four of them), task neurons / random neurons (lr
                         1e-3, which the record's two-point search chose in 20 of its 24 neuron
                         and random runs) / full fine-tuning (lr 1e-4, chosen in all 4), seeds
                         0 and 1 for every method, constant lr (one run scored at every budget);
                         dev NLL on 16 examples at 0, every 8 steps and the budgets; 24 test
                         examples (score and score_norm, the per-token score); task neurons against random
                         neurons and full fine-tuning, paired by run, with bootstrap intervals
                         over the runs in budget_contrasts.csv; figures budget_nll.png,
                         budget_dev_auc.png

Detection on the multi-task model uses training examples it was not trained on
(``ex.held_out``): 32 per task, seed 0.

Time, measured (``times.json``, 2026-11-29): table1_seeds_linear 1,545 s (about 3 min of it lost
to a test run beside it), table1_seeds_act 1,304 s, k_sweep_linear 347 s, k_sweep_act 355 s,
budget 2,251 s: 5,802 s in all. Estimated for 2 idle cores before the run, from the record
(``deact_mt_k10.csv``'s ``seconds``, ``finetune.csv``'s ``train_seconds``): scoring one test
example under one condition takes 0.073-0.086 s for the classification tasks and 0.22-0.29 s for
the generation tasks (0.98 s summed over the six); a training step of 4 examples 1.1 s for
neuron training, 1.9 s for full fine-tuning. Derived: detection about 18 s a task at 32 examples
(the README's 70 s a task at 128). Assumed: the dev NLL of 24 examples (teacher-forced, no
generation) 2.5 s.

    table1_seeds_linear  12 conditions x 150 examples x 0.98 s + 110 s detection   ~ 1,870 s
    table1_seeds_act     the same                                                  ~ 1,870 s
    k_sweep_linear       37 scorings x 32 examples x 0.38 s + 55 s detection       ~   500 s
    k_sweep_act          the same                                                  ~   500 s
    budget               6 tasks x 2 seeds x (32 x 1.1 x 2 + 32 x 1.9) s training (1,570 s),
                         (36 runs x 5 budgets + 6 starts) x 24 test examples x 0.165 s
                         (740 s), 6 dev points x 36 runs (250 s), detection (110 s) ~ 2,700 s

in all about 7,200 s (2 h), plus 127 s when the multi-task model is not cached yet. The budget
sweep was first written for two tasks and three seeds; the issue asks for all six tasks, which
fit the two hours with two seeds, 24 test examples and budgets up to 32 steps (64 would double
the training time).
Each part writes its CSV when it finishes and is skipped when that CSV exists; a part
interrupted midway starts again.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

import taskneuron_utils as tn
from harness import write_csv
from taskneuron_utils import experiments as ex, plots

QUICK = ex.PROFILES["quick"]
MULTITASK = QUICK.multitask
DETECTION = QUICK.detection.replace(n_attribution=32)
SWEEP_PARTS = ("table1_seeds_linear", "table1_seeds_act", "k_sweep_linear", "k_sweep_act", "budget")
KINDS = {"linear": None, "act": ("act",)}
TABLE1 = QUICK.deactivation.replace(n_eval=150, random_seeds=tuple(range(10)), others=False)
K_SWEEP = QUICK.deactivation.replace(n_eval=32, random_seeds=(0, 1, 2))
K_SWEEP_TASKS = ("product_sentiment", "news_topic", "last_word")
KS = (0.005, 0.01, 0.02, 0.05, 0.1, 0.2)
BUDGET = ex.BudgetConfig(
    examples=200,
    batch_size=4,
    lr=1e-3,
    full_lr=1e-4,
    seeds=(0, 1),
    n_dev=16,
    n_eval=24,
    dev_every=8,
)
BUDGETS = (2, 4, 8, 16, 32)
BUDGET_TASKS = MULTITASK.tasks


def detection_tasks(tasks: dict) -> dict:
    """The tasks to detect neurons with on the multi-task model: their training splits without
    the examples that model was trained on."""
    return ex.held_out(tasks, MULTITASK)


def run_sweep(part: str, out: Path) -> pd.DataFrame:
    tasks = tn.load_tasks(list(MULTITASK.tasks))
    if part.startswith(("table1_seeds_", "k_sweep_")):
        kinds = part.rsplit("_", 1)[1]
        model, tok, _ = ex.multitask_finetune(MULTITASK)
        detection = DETECTION.replace(kinds=KINDS[kinds])
        if part.startswith("table1_seeds_"):
            # held_out keeps the test splits, so the same tasks are detected on and scored.
            return ex.deactivation(
                model,
                tok,
                detection_tasks(tasks),
                TABLE1,
                label=f"multitask k=0.1 {kinds}",
                detection=detection,
                per_example=True,
            )
        chosen = detection_tasks({name: tasks[name] for name in K_SWEEP_TASKS})
        return ex.k_sweep(
            model,
            tok,
            chosen,
            KS,
            K_SWEEP,
            detection=detection,
            kinds=KINDS[kinds],
            label=f"multitask {kinds}",
        )
    if part == "budget":
        _, tok = tn.load_model(MULTITASK.model)

        def fresh_model():
            return tn.load_model(MULTITASK.model)[0]

        chosen = {name: tasks[name] for name in BUDGET_TASKS}
        return ex.budget_sweep(fresh_model, tok, chosen, BUDGETS, BUDGET, detection=DETECTION)
    raise ValueError(f"unknown part {part!r}; choose from {SWEEP_PARTS}")


def summarize_sweeps(out: Path) -> None:
    """Write the interval tables, print them and draw the figures of whatever CSVs exist."""
    columns = [
        "category",
        "task",
        "measure",
        "own_effect",
        "own_effect_low",
        "own_effect_high",
        "random_effect",
        "random_effect_low",
        "random_effect_high",
        "beyond_random",
    ]
    for part in SWEEP_PARTS[:4]:
        path = out / f"{part}.csv"
        if not path.exists():
            continue
        examples = pd.read_csv(path)
        intervals = ex.table1_intervals(examples)
        write_csv(intervals, out / f"{part}_intervals.csv")
        shown = intervals[intervals.task == "all"] if "k" in intervals else intervals
        print(shown[[c for c in ("k", *columns) if c in shown]].round(3).to_string(index=False))
        if part.startswith("k_sweep_"):
            plots.plot_k_sweep(intervals, value="nll").figure.savefig(
                out / f"{part}_nll.png", dpi=110, bbox_inches="tight"
            )
    if (out / "budget.csv").exists():
        budget = pd.read_csv(out / "budget.csv")
        print(ex.budget_table(budget).round(3).to_string(index=False))
        contrasts = ex.budget_contrasts(budget)
        write_csv(contrasts, out / "budget_contrasts.csv")
        print(contrasts[contrasts.category == "all"].round(3).to_string(index=False))
        for value, name in (("nll", "budget_nll"), ("dev_auc_mean", "budget_dev_auc")):
            plots.plot_budget(budget, value=value).figure.savefig(
                out / f"{name}.png", dpi=110, bbox_inches="tight"
            )
