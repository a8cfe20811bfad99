"""Rerun the replication record of the paper's Tables 1 and 2 (docs/replication.md).

    python benchmarks/replication.py [--out benchmarks/results/replication] [--parts ...]

Parts (each writes one CSV under --out and is skipped when that CSV exists, so an interrupted
run resumes at the part it was in):

    deact_mt_k10     deactivation on the multi-task fine-tuned model, k = 10% per site
    deact_mt_k02     the same at k = 2%
    deact_base_k10   deactivation on the untuned default model, k = 10% (own vs random only)
    finetune         neuron-only vs random-neuron vs full fine-tuning from the untuned model

Prints the Table 1 and Table 2 analogs and writes ``times.json`` (wall seconds per part).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import pandas as pd

import taskneuron_utils as tn
from harness import add_threads_option, apply_threads
from taskneuron_utils import experiments as ex

CONFIG = ex.PROFILES["quick"].replace(n_attribution=32, n_eval=48, random_seeds=(0, 1, 2),
                                      ft_steps=12, ft_batch_size=4, ft_examples=200, n_dev=24,
                                      ft_lrs=(1e-4, 1e-3), progress=True)
FINETUNE_TASKS = ("product_sentiment", "country_continent", "addition", "last_word")  # of mt_tasks
PARTS = ("deact_mt_k10", "deact_mt_k02", "deact_base_k10", "finetune")


def run_part(part: str):
    tasks = tn.load_tasks(list(CONFIG.mt_tasks))
    if part.startswith("deact_mt"):
        model, tok, _ = ex.multitask_finetune(CONFIG)
        k = 0.10 if part.endswith("k10") else 0.02
        return ex.deactivation(model, tok, tasks, CONFIG.replace(k=k), label=f"multitask k={k:g}")
    if part == "deact_base_k10":
        model, tok = tn.load_model(CONFIG.model)
        return ex.deactivation(model, tok, tasks, CONFIG, label="untuned k=0.1", others=False)
    if part == "finetune":
        _, tok = tn.load_model(CONFIG.model)
        chosen = {name: tasks[name] for name in FINETUNE_TASKS}
        return ex.neuron_finetuning(lambda: tn.load_model(CONFIG.model)[0], tok, chosen, CONFIG)
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
        frame = run_part(part)
        times[part] = round(time.perf_counter() - started, 1)
        tmp = path.with_suffix(".tmp")
        frame.to_csv(tmp, index=False)
        tmp.replace(path)
        times_path.write_text(json.dumps(times, indent=2) + "\n")
    deact = [pd.read_csv(out / f"{p}.csv") for p in PARTS[:3] if (out / f"{p}.csv").exists()]
    if deact:
        print(ex.table1(pd.concat(deact)).round(2).to_string(index=False))
    if (out / "finetune.csv").exists():
        print(ex.table2(pd.read_csv(out / "finetune.csv")).round(3).to_string(index=False))


if __name__ == "__main__":
    main()
