"""Do bfloat16 runs pick the same task-specific neurons as float32? (issue 27, part 1: sets)

    python benchmarks/bf16_sets.py [--n 128] [--work /tmp/bf16_sets] [--out benchmarks/results/bf16_sets.json]

The main job's detection (``DetectionConfig()``: the seeded sample of ``--n`` training
examples, max_length 256, batch 8, top 10% per site) of the six multitask-mixture tasks and
the main job's four tasks, on the default model, three ways:
  - ``fp32``:     float32 weights (today's default)
  - ``bf16``:     weights in bfloat16 (``tn.load_model(dtype=torch.bfloat16)``)
  - ``autocast``: float32 weights, ``tn.attribute(..., autocast=torch.bfloat16)``
Relevance sums are float64 in every case. Reported: the Jaccard of each bf16 way's top-10% set
with the fp32 set, per task (all sites, and per site kind); the main job's overlap matrix
(``overlap.csv``) each way and the largest change against fp32, and whether any pair's overlap
changes at its third decimal (as ``summary.txt`` prints it); the summary's three layers holding
most of the global top 10%. Each (task, way) is checkpointed under ``--work`` and the JSON
rewritten after each, so a stopped run resumes where it was.
"""

from __future__ import annotations

import argparse
import platform
import time
from dataclasses import replace
from pathlib import Path

import torch

import taskneuron_utils as tn
from harness import emit
from taskneuron_utils.neurons.analysis import layer_profile, overlap_matrix
from taskneuron_utils.experiments import DetectionConfig, detect
from taskneuron_utils.experiments.multitask import MultitaskConfig

MAIN_JOB = list(DetectionConfig().tasks)
TASKS = MAIN_JOB + [t for t in MultitaskConfig().tasks if t not in MAIN_JOB]
WAYS = ("fp32", "bf16", "autocast")


def jaccards(a: tn.NeuronSet, b: tn.NeuronSet) -> dict:
    row = {"all": round(a.jaccard(b), 4)}
    for kind in ("gate", "up", "down"):
        keep = [s for s in a.indices if s.endswith("." + kind)]
        inter = sum(len(set(a.indices[s].tolist()) & set(b.indices[s].tolist())) for s in keep)
        union = sum(len(set(a.indices[s].tolist()) | set(b.indices[s].tolist())) for s in keep)
        row[kind] = round(inter / union, 4)
    return row


def top_layers(relevances: dict, k: float) -> list[int]:
    """The summary's three layers holding most of the global top-k neurons."""
    profile = layer_profile(relevances, k)
    shares = profile.assign(selected=profile.global_share * profile.neurons)
    by_layer = shares.groupby("layer")["selected"].sum() / shares.groupby("layer")["neurons"].sum()
    return [int(layer) for layer in by_layer.nlargest(3).index]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=128, help="training examples per task")
    parser.add_argument("--tasks", nargs="+", default=TASKS)
    parser.add_argument("--work", default="/tmp/bf16_sets", help="checkpoints, one folder a way")
    parser.add_argument("--out")
    args = parser.parse_args()
    config = DetectionConfig(n_attribution=args.n, progress=False)
    suite = tn.load_tasks(args.tasks)
    models = {"fp32": tn.load_model()[0], "bf16": tn.load_model(dtype=torch.bfloat16)[0]}
    tok = tn.load_model()[1]
    models["autocast"] = models["fp32"]
    relevances: dict[str, dict] = {way: {} for way in WAYS}
    seconds: dict[str, float] = {}
    for task in args.tasks:
        for way in WAYS:
            started = time.perf_counter()
            relevances[way][task] = one_run(models[way], tok, suite[task], config, way, args.work)
            seconds[f"{way}/{task}"] = round(time.perf_counter() - started, 2)
            emit(report(relevances, config, seconds, args), args.out)


def one_run(model, tok, task, config, way, work) -> tn.Relevance:
    """``task``'s relevance computed by the main job's own ``experiments.detect``, checkpointed
    in ``work/way/relevance``; a finished checkpoint is read back, not redone."""
    autocast = "bfloat16" if way == "autocast" else None
    way_config = replace(config, out_dir=str(Path(work) / way), autocast=autocast)
    return detect(model, tok, {task.name: task}, way_config)[task.name]


def report(relevances: dict, config, seconds: dict, args) -> dict:
    fp32 = relevances["fp32"]
    sets = {
        way: {t: rel.top_k(config.k, per=config.per) for t, rel in rels.items()}
        for way, rels in relevances.items()
    }
    result = {
        "machine": f"{platform.machine()}, {torch.get_num_threads()} torch threads",
        "torch": torch.__version__,
        "model": fp32 and next(iter(fp32.values())).provenance["model"],
        "n_examples_per_task": args.n,
        "k": config.k,
        "per": config.per,
        "seconds": seconds,
        "jaccard_vs_fp32": {
            f"{way}/{t}": jaccards(sets["fp32"][t], s)
            for way in ("bf16", "autocast")
            for t, s in sets[way].items()
        },
    }
    if all(t in sets[way] for way in WAYS for t in MAIN_JOB):
        overlaps = {way: overlap_matrix({t: sets[way][t] for t in MAIN_JOB}) for way in WAYS}
        result["main_job_overlap"] = {way: overlaps[way].round(4).to_dict() for way in WAYS}
        for way in ("bf16", "autocast"):
            delta = (overlaps[way] - overlaps["fp32"]).abs().to_numpy()
            third = (overlaps[way].round(3) != overlaps["fp32"].round(3)).to_numpy()
            result[f"main_job_overlap_{way}"] = {
                "max_abs_change": round(float(delta.max()), 5),
                "pairs_changed_at_3rd_decimal": int(third.sum() // 2),
            }
        result["main_job_top_layers"] = {
            way: top_layers({t: relevances[way][t] for t in MAIN_JOB}, config.k) for way in WAYS
        }
    done = [t for t in args.tasks if all(t in sets[way] for way in WAYS)]
    result["tasks_done"] = done
    if done:
        worst = {
            way: min(result["jaccard_vs_fp32"][f"{way}/{t}"]["all"] for t in done)
            for way in ("bf16", "autocast")
        }
        result["min_jaccard_all_sites"] = worst
    return result


if __name__ == "__main__":
    main()
