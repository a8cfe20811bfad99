"""The ``continual`` part of ``benchmarks/replication.py``: the paper's Table 5 analog.

Every method of ``ex.CL_METHODS`` on the offline 4-task sequence in orders 1-3 and on the 8-task
sequence in order 4 (``ex.QUICK_ORDERS``), plus the per-task and multi-task references, all with
the same training sample, steps and batch size per task. Learning rates are chosen on dev data of
the first two tasks of order 1, trained in order (``ex.choose_lrs``: the lowest mean dev NLL
after the second stage; never the test split), once per way of training and stored in
``continual/lrs.json``: full fine-tuning (seqft; ewc and replay train the same parameters with a
penalty or a buffer and use its lr), each LoRA method, and neuron-only training (ncft;
random_neurons, its control, and wncft, whose training is NCFT's, use its lr). (A first version
chose on the first task alone: it picked 1e-3 for every method, and full fine-tuning at 1e-3 then
failed to learn the second task at all.)

Written under ``<out>/continual/`` as each (method, order) finishes: ``<method>_order<i>.csv``
(the accuracy matrix in long form, with the run's CL / FG / BWT / forgetting) and
``forgetting_<method>_order<i>.csv`` (what training task i cost every earlier task j, beside the
overlap of their neuron sets: detected on the starting model for every method, ``sets="start"``,
and the sets the method trained for NCFT / W-NCFT, ``sets="own"``). The references do not depend
on the order: ``references_4.csv`` / ``references_8.csv`` hold them once per sequence (each task
alone, and all tasks mixed). Stage checkpoints under ``continual/checkpoints/`` make an
interrupted run resume mid-sequence. Orders 1-3 run first, then the references, so a stop during
the 8-task order loses nothing of the 4-task record.
"""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd

import taskneuron_utils as tn
from harness import write_csv, write_json
from taskneuron_utils import experiments as ex, plots

CONFIG = ex.PROFILES["quick"].continual.replace(
    examples=64,
    steps=8,
    batch_size=4,
    n_eval=48,
    n_dev=24,
    n_attribution=16,
    wncft_samples=64,
    lora_r=4,
    ewc_samples=16,
    replay_per_task=8,
    max_length=128,
    eval_upcoming=False,
    progress=True,
)
ORDERS = (1, 2, 3, 4)
LRS = (1e-4, 1e-3)
# Methods that train exactly as another one does use that one's lr (see the docstring).
SHARED_LR = {"ewc": "seqft", "replay": "seqft", "random_neurons": "ncft", "wncft": "ncft"}
SUMMARY_COLUMNS = [
    "method",
    "order_number",
    "tasks",
    "CL",
    "FG",
    "BWT",
    "forgetting",
    "trainable_parameters",
    "optimizer_state_bytes",
    "train_seconds",
]


def start_sets(model, tok, suite: dict, folder: Path) -> dict:
    """Each task's top-k neurons on the starting model (the same k and examples as NCFT's
    detection), saved under ``folder/start_sets`` so that a resumed run reuses them."""
    sets = {}
    (folder / "start_sets").mkdir(parents=True, exist_ok=True)
    for name, task in suite.items():
        path = folder / "start_sets" / f"{name}.pt"
        if not path.exists():
            rel = tn.attribute(
                model,
                tok,
                task.train[: CONFIG.n_attribution],
                batch_size=CONFIG.batch_size,
                max_length=CONFIG.max_length,
                progress=False,
            )
            rel.top_k(CONFIG.k).save(path)
        sets[name] = tn.NeuronSet.load(path)
    return sets


def run_continual(out: Path) -> pd.DataFrame:
    """Run what is missing; return one summary row per (method, order)."""
    folder = out / "continual"
    folder.mkdir(parents=True, exist_ok=True)
    model, tok = tn.load_model(ex.PROFILES["quick"].multitask.model)
    suite = tn.load_tasks(list(ex.QUICK_SEQUENCE_8))
    lrs_path = folder / "lrs.json"
    lrs = json.loads(lrs_path.read_text()) if lrs_path.exists() else {}
    first_two = [suite[name] for name in ex.QUICK_ORDERS[1][:2]]
    for method in ex.CL_METHODS:  # one method at a time, saved as it is chosen (resumable)
        if method not in lrs and method not in SHARED_LR:
            lrs |= ex.choose_lrs(model, tok, first_two, [method], LRS, CONFIG)
            write_json(lrs_path, lrs)
    lrs |= {method: lrs[source] for method, source in SHARED_LR.items()}
    config = CONFIG.replace(method_lrs=tuple(sorted(lrs.items())), lr=lrs["seqft"])
    sets = start_sets(model, tok, suite, folder)
    for number in ORDERS:
        if number == 4:  # the references before the long 8-task order
            run_references(model, tok, suite, config, folder)
        sequence = [suite[name] for name in ex.QUICK_ORDERS[number]]
        for method in ex.CL_METHODS:
            path = folder / f"{method}_order{number}.csv"
            if path.exists():
                continue
            run = ex.continual(
                model,
                tok,
                sequence,
                method,
                config,
                checkpoint=folder / "checkpoints" / f"{method}_order{number}",
            )
            forgetting = [ex.forgetting_overlap(run, sets).assign(sets="start")]
            if run.sets:
                forgetting.append(ex.forgetting_overlap(run).assign(sets="own"))
            write_csv(
                pd.concat(forgetting).assign(order_number=number),
                folder / f"forgetting_{method}_order{number}.csv",
            )
            frame = run.to_frame().assign(
                **{k: v for k, v in run.summary().items() if k != "method"}
            )
            write_csv(frame.assign(order_number=number), path)
    return continual_summary(folder)


def run_references(model, tok, suite: dict, config, folder: Path) -> None:
    """``references_8.csv``: every task of the 8-task sequence fine-tuned alone, and all 8 mixed;
    ``references_4.csv``: the 4-task sequence's tasks alone (the same runs: the 4 tasks come
    first in ``QUICK_SEQUENCE_8``, so their seeds agree) and the 4 mixed."""
    eight, four = folder / "references_8.csv", folder / "references_4.csv"
    if not eight.exists():
        write_csv(
            ex.continual_references(
                model, tok, [suite[n] for n in ex.QUICK_SEQUENCE_8], config
            ).assign(tasks=8),
            eight,
        )
    if not four.exists():
        alone = pd.read_csv(eight).query("reference == 'per_task'")
        alone = alone[alone.task.isin(ex.QUICK_SEQUENCE_4)].assign(tasks=4)
        mixed = ex.continual_references(
            model, tok, [suite[n] for n in ex.QUICK_SEQUENCE_4], config, which=("multitask",)
        ).assign(tasks=4)
        write_csv(pd.concat([alone, mixed], ignore_index=True), four)


def continual_summary(folder: Path) -> pd.DataFrame:
    """One row per finished (method, order) run, from the CSVs under ``folder``."""
    rows = []
    for path in sorted(folder.glob("*_order*.csv")):
        if path.name.startswith(("references", "forgetting")):
            continue
        frame = pd.read_csv(path)
        rows.append(frame.iloc[0].to_dict() | {"tasks": frame.task.nunique()})
    return pd.DataFrame(rows, columns=SUMMARY_COLUMNS)


def reference_cl(folder: Path) -> pd.DataFrame:
    """The references' CL (x100): one row per (reference, sequence length) with the mean score
    over that sequence's tasks, from ``references_4.csv`` / ``references_8.csv``; columns
    ``method`` (per_task, multitask), ``tasks``, ``CL``."""
    refs = [pd.read_csv(p) for p in sorted(folder.glob("references_[48].csv"))]
    if not refs:
        return pd.DataFrame(columns=["method", "tasks", "CL"])
    cl = pd.concat(refs).groupby(["reference", "tasks"]).score.mean().mul(100).reset_index()
    return cl.rename(columns={"reference": "method", "score": "CL"})


def table5(folder: Path) -> pd.DataFrame:
    """CL (x100) per method: mean and std over the 4-task orders, the 8-task order(s), beside
    the paper's Table 5; FG and forgetting likewise (4-task mean)."""
    summary = continual_summary(folder)
    summary = pd.concat([summary, reference_cl(folder)], ignore_index=True)
    rows = []
    for method, part in summary.groupby("method", sort=False):
        four, eight = part[part.tasks == 4], part[part.tasks == 8]
        paper = ex.PAPER_TABLE5.get(method, (float("nan"), float("nan")))
        rows.append(
            {
                "method": method,
                "CL_4": four.CL.mean(),
                "CL_4_std": four.CL.std(),
                "orders_4": len(four),
                "CL_8": eight.CL.mean(),
                "paper_CL_4": paper[0],
                "paper_CL_8": paper[1],
                "FG_4": four.FG.mean(),
                "forgetting_4": four.forgetting.mean(),
            }
        )
    return pd.DataFrame(rows)


# The paper's ordering of CL (Table 5, both sequences) as adjacent pairs, each method below the
# per-task reference, and NCFT against its random-neuron control (ours).
PAPER_PAIRS = (
    [("olora", "wncft"), ("wncft", "ncft"), ("ncft", "seqlora"), ("seqlora", "seqft")]
    + [("per_task", m) for m in ("olora", "wncft", "ncft", "seqlora", "seqft")]
    + [("ncft", "random_neurons")]
)


def orderings(folder: Path) -> pd.DataFrame:
    """For every pair (a, b) of ``PAPER_PAIRS``: CL(a) - CL(b) (x100) in each 4-task order
    (paired: the same order for both; the per-task reference is the same in every order), its
    mean, min and max, and whether a > b in every order; the 8-task difference beside it."""
    summary = continual_summary(folder)
    orders = summary[["order_number", "tasks"]].drop_duplicates()
    summary = pd.concat(
        [summary, reference_cl(folder).merge(orders, on="tasks")], ignore_index=True
    )  # each reference's CL repeated in every order
    cl = summary.pivot_table(index="order_number", columns="method", values="CL")
    tasks = summary.groupby("order_number").tasks.first()
    rows = []
    for a, b in PAPER_PAIRS:
        if a not in cl or b not in cl:
            continue
        diff = (cl[a] - cl[b]).dropna()
        four, eight = diff[tasks[diff.index] == 4], diff[tasks[diff.index] == 8]
        rows.append(
            {
                "a": a,
                "b": b,
                "orders_4": len(four),
                "diff_4": four.mean(),
                "min_4": four.min(),
                "max_4": four.max(),
                "a_above_b_every_order": bool(len(four) and (four > 0).all()),
                "diff_8": eight.mean() if len(eight) else float("nan"),
            }
        )
    return pd.DataFrame(rows)


def forgetting_correlations(folder: Path) -> pd.DataFrame:
    """Overlap vs forgetting across (order, trained task, earlier task) pairs, per method and
    kind of set: ``ex.correlations`` (Pearson / Spearman, p-values, bootstrap intervals)."""
    frames = [pd.read_csv(p) for p in sorted(folder.glob("forgetting_*_order*.csv"))]
    if not frames:
        return pd.DataFrame()
    pairs = pd.concat(frames, ignore_index=True)
    return ex.correlations(pairs, "overlap", "forgetting", by=["method", "sets"])


def summarize_continual(out: Path) -> None:
    """Print Table 5 and the forgetting correlations; draw the record's figures."""
    folder = out / "continual"
    summary = continual_summary(folder) if folder.exists() else pd.DataFrame()
    if summary.empty:
        return
    table = table5(folder)
    write_csv(table, out / "continual_table5.csv")
    print(table.round(1).to_string(index=False))
    correlations = forgetting_correlations(folder)
    write_csv(correlations, out / "continual_forgetting_overlap.csv")
    print(correlations.round(2).to_string(index=False))
    pairs = orderings(folder)
    write_csv(pairs, out / "continual_orderings.csv")
    print(pairs.round(1).to_string(index=False))
    four = summary[summary.tasks == 4]
    if not four.empty:
        reference = table.set_index("method").CL_4.get("per_task")
        plots.plot_cl_summary(four, reference=reference).figure.savefig(
            out / "continual_cl.png", dpi=110, bbox_inches="tight"
        )
    for number in sorted(summary.order_number.unique()):
        matrices(folder, out, int(number))


def matrices(folder: Path, out: Path, number: int) -> None:
    """``continual_matrices_order<i>.png`` (every method's accuracy matrix) and
    ``continual_trajectories_order<i>.png`` (each task's score along the sequence, per method)."""
    runs = {
        method: pd.read_csv(folder / f"{method}_order{number}.csv")
        for method in ex.CL_METHODS
        if (folder / f"{method}_order{number}.csv").exists()
    }
    size = 4.2 if number < 4 else 6.5
    for name, draw in (
        ("matrices", plots.plot_cl_matrix),
        ("trajectories", plots.plot_cl_trajectories),
    ):
        fig, axes = plt.subplots(
            2, 4, figsize=(4 * size, 2 * size * 0.8), squeeze=False, layout="constrained"
        )
        for ax, (method, frame) in zip(axes.flat, runs.items()):
            order = list(dict.fromkeys(frame.trained))
            scores = frame.pivot(index="trained", columns="task", values="score").loc[order, order]
            draw(scores, ax=ax, title=f"{method}, order {number}")
        for ax in list(axes.flat)[len(runs) :]:
            ax.set_visible(False)
        fig.savefig(out / f"continual_{name}_order{number}.png", dpi=70)
        plt.close(fig)
