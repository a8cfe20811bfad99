"""Rerun the replication record of the paper's Tables 1 and 2 (docs/replication.md).

    python benchmarks/replication.py [--out benchmarks/results/replication] [--parts ...]

Parts (each writes one CSV under --out and is skipped when that CSV exists, so an interrupted
run resumes at the part it was in):

    deact_mt_k10     deactivation on the multi-task fine-tuned model, k = 10% per site
    deact_mt_k02     the same at k = 2%
    deact_base_k10   deactivation on the untuned default model, k = 10% (own vs random only)
    deact_mt_kinds   multi-task model, k = 10%, the sets cut to their gate+up sites or to their
                     down sites (own vs random only): which part makes random sets so harmful
    deact_mt_excl    multi-task model, k = 2%, each task's set minus every other task's set
                     (its exclusive neurons): are they specific once the shared core is gone?
    finetune         neuron-only vs random-neuron vs full fine-tuning from the untuned model
    finetune_seeds   task vs random neurons again with seeds 1 and 2 (detection sample, random
                     set, training order, dev and test samples all follow the seed)
    continual        Table 5 analog: every method of ex.CL_METHODS on the offline 4-task sequence
                     in orders 1-3 and the 8-task sequence in order 4, plus the references, and
                     forgetting vs neuron overlap: see replication_continual.py; one CSV per
                     (method, order), stage checkpoints, so resumable mid-run
    gen_sweep_cls, gen_sweep_gen, gen_pairwise, gen_similarity
                     Section 4 (overlap, parameter similarity, generalization): see
                     replication_generalization.py; every trained run cached, so resumable mid-part
    table1_seeds_linear, table1_seeds_act, k_sweep_linear, k_sweep_act, budget
                     Tables 1 and 2 with intervals (per-example values, 10 random seeds, 150 test
                     examples), over k, and over training budgets: see replication_sweeps.py
                     (5,802 s on 2 cores for the five, measured 2026-11-29)
    specific_linear_k01 ... specific_act_k10
                     task-specific or merely important? every selection method (top_k,
                     contrastive, entropy, exclusive) at k = 1, 2, 5, 10% under both neuron
                     definitions, 10 random seeds, and the shared core switched off: see
                     replication_specificity.py (2,846 s on 2 cores for the eight, 2026-11-29)

Neurons of the multi-task model are detected on training examples it was not trained on
(``ex.held_out``, through ``replication_sweeps.detection_tasks``). The deact_mt_* CSVs were
first recorded (2026-11-27) with detection on 32 trained examples; they were rerun with held-out
detection on 2026-11-29 (1,313 s for the four).

Prints the Table 1 and Table 2 analogs, writes ``times.json`` (wall seconds per part) and draws the
record's figures (``deact_mt_k10_nll.png``, ``deact_mt_k02_nll.png``, ``deact_mt_excl_nll.png``,
``finetune_nll.png``).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import pandas as pd  # noqa: E402

import taskneuron_utils as tn  # noqa: E402
from harness import add_threads_option, apply_threads, write_csv  # noqa: E402
from replication_continual import run_continual, summarize_continual  # noqa: E402
from replication_generalization import (
    GEN_PARTS,
    run_generalization,  # noqa: E402
    summarize_generalization,
)
from replication_specificity import SPECIFIC_PARTS, run_specific, summarize_specific  # noqa: E402
from replication_sweeps import (
    SWEEP_PARTS,
    detection_tasks,
    run_sweep,  # noqa: E402
    summarize_sweeps,
)
from taskneuron_utils import experiments as ex, plots  # noqa: E402
from taskneuron_utils.neurons.neuron_set import NeuronSet, parse_site_name  # noqa: E402

QUICK = ex.PROFILES["quick"]
MULTITASK = QUICK.multitask  # the "original" model of Table 1, and the tasks of every part
DETECTION = QUICK.detection.replace(n_attribution=32)  # on held-out examples: detection_tasks
DEACTIVATION = QUICK.deactivation.replace(n_eval=48, random_seeds=(0, 1, 2))
FINETUNING = QUICK.finetuning.replace(
    steps=12, batch_size=4, examples=200, n_dev=24, n_eval=48, lrs=(1e-4, 1e-3)
)
FINETUNE_TASKS = ("product_sentiment", "country_continent", "addition", "last_word")  # of MULTITASK
KINDS_TASKS = ("product_sentiment", "addition")
PARTS = (
    (
        "deact_mt_k10",
        "deact_mt_k02",
        "deact_base_k10",
        "deact_mt_kinds",
        "deact_mt_excl",
        "finetune",
        "finetune_seeds",
        "continual",
    )
    + GEN_PARTS
    + SWEEP_PARTS
    + SPECIFIC_PARTS
)


def only_kinds(neurons: NeuronSet, kinds: tuple[str, ...]) -> NeuronSet:
    """``neurons`` restricted to the sites of the given kinds (e.g. ("gate", "up"))."""
    kept = {
        site: idx if parse_site_name(site)[1] in kinds else idx[:0]
        for site, idx in neurons.indices.items()
    }
    return NeuronSet(kept, neurons.sizes, meta=neurons.meta)


def run_part(part: str, out: Path | None = None):
    if part == "continual":
        return run_continual(out)
    if part in GEN_PARTS:
        return run_generalization(part, out)
    if part in SWEEP_PARTS:
        return run_sweep(part, out)
    if part in SPECIFIC_PARTS:
        return run_specific(part, out)
    tasks = tn.load_tasks(list(MULTITASK.tasks))
    held_out = detection_tasks(tasks)  # same test splits; training splits the model did not see
    own_only = DEACTIVATION.replace(others=False)
    if part in ("deact_mt_k10", "deact_mt_k02"):
        model, tok, _ = ex.multitask_finetune(MULTITASK)
        k = 0.10 if part == "deact_mt_k10" else 0.02
        return ex.deactivation(
            model,
            tok,
            held_out,
            DEACTIVATION,
            label=f"multitask k={k:g}",
            detection=DETECTION.replace(k=k),
        )
    if part == "deact_base_k10":
        model, tok = tn.load_model(MULTITASK.model)
        return ex.deactivation(
            model, tok, tasks, own_only, label="untuned k=0.1", detection=DETECTION
        )
    if part == "deact_mt_kinds":
        model, tok, _ = ex.multitask_finetune(MULTITASK)
        chosen = {name: held_out[name] for name in KINDS_TASKS}
        sets = ex.neuron_sets(ex.detect(model, tok, chosen, DETECTION), DETECTION)
        return pd.concat(
            [
                ex.deactivation(
                    model,
                    tok,
                    chosen,
                    own_only,
                    label=f"multitask k=0.1 {label}",
                    sets={n: only_kinds(s, kinds) for n, s in sets.items()},
                )
                for label, kinds in (("gate+up", ("gate", "up")), ("down", ("down",)))
            ]
        )
    if part == "deact_mt_excl":
        model, tok, _ = ex.multitask_finetune(MULTITASK)
        detection = DETECTION.replace(k=0.02)
        sets = ex.neuron_sets(ex.detect(model, tok, held_out, detection), detection)
        return ex.deactivation(
            model,
            tok,
            tasks,
            DEACTIVATION,
            label="multitask k=0.02 exclusive",
            sets=ex.exclusive_sets(sets),
        )
    if part in ("finetune", "finetune_seeds"):
        _, tok = tn.load_model(MULTITASK.model)
        chosen = {name: tasks[name] for name in FINETUNE_TASKS}

        def fresh_model():
            return tn.load_model(MULTITASK.model)[0]

        if part == "finetune":
            return ex.neuron_finetuning(fresh_model, tok, chosen, FINETUNING, detection=DETECTION)
        # Another seed: the detection sample, random set, training order, dev and test samples.
        return pd.concat(
            [
                ex.neuron_finetuning(
                    fresh_model,
                    tok,
                    chosen,
                    FINETUNING.replace(seed=seed, methods=("none", "neurons", "random")),
                    detection=DETECTION.replace(seed=seed),
                ).assign(seed=seed)
                for seed in (1, 2)
            ]
        )
    raise ValueError(f"unknown part {part!r}; choose from {PARTS}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "replication"))
    parser.add_argument("--parts", nargs="+", default=list(PARTS), choices=PARTS)
    add_threads_option(parser)
    args = parser.parse_args()
    apply_threads(args)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    times_path = out / "times.json"
    times = json.loads(times_path.read_text()) if times_path.exists() else {}
    for part in args.parts:
        path = out / f"{part}.csv"
        if path.exists():
            continue
        started = time.perf_counter()
        frame = run_part(part, out)
        times[part] = round(time.perf_counter() - started, 1)
        write_csv(frame, path)
        times_path.write_text(json.dumps(times, indent=2) + "\n")
    deact = {
        p: pd.read_csv(out / f"{p}.csv")
        for p in PARTS
        if p.startswith("deact") and (out / f"{p}.csv").exists()
    }
    if deact:
        print(ex.table1(pd.concat(deact.values())).round(2).to_string(index=False))
    for part in ("deact_mt_k10", "deact_mt_k02", "deact_mt_excl"):
        if part in deact:
            plots.plot_deactivation_heatmap(deact[part], value="nll").figure.savefig(
                out / f"{part}_nll.png", dpi=110, bbox_inches="tight"
            )
    if (out / "finetune.csv").exists():
        tuned = pd.read_csv(out / "finetune.csv").assign(seed=FINETUNING.seed)
        if (out / "finetune_seeds.csv").exists():
            tuned = pd.concat([tuned, pd.read_csv(out / "finetune_seeds.csv")])
        print(ex.table2(tuned).round(3).to_string(index=False))
        plots.plot_finetuning(tuned, value="nll").figure.savefig(
            out / "finetune_nll.png", dpi=110, bbox_inches="tight"
        )
    summarize_continual(out)
    summarize_generalization(out)
    summarize_sweeps(out)
    summarize_specific(out)


if __name__ == "__main__":
    main()
