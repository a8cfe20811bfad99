"""Neuron-only fine-tuning against full fine-tuning: optimizer memory and time per step.

    python benchmarks/finetune_memory.py [--task NAME] [--steps 5] [--rounds 2] [--out FILE]

On the default model, a random 10%-per-site NeuronSet, ``--steps`` optimizer steps of batch 8
on a shipped task (``data/``; a synthetic word-swap task when the suite is not built), each run
on a freshly loaded model. Neuron and full runs alternate (``--rounds`` times each), so that load
from other processes affects both alike; the per-step wall times of all runs of a method are
pooled and their medians compared. Prints JSON. Issue targets:

- ``state_ratio`` (AdamW state bytes, neurons / full) ~= ``selected_parameter_fraction``
  (numbers trained by neuron fine-tuning / all parameters);
- ``step_time_ratio`` (neurons / full) <= 1.0.
"""

from __future__ import annotations

import argparse
import platform
import statistics

import torch

import taskneuron_utils as tn
from harness import add_threads_option, apply_threads, emit, random_tenth
from taskneuron_utils.tasks import Task, load_tasks
from taskneuron_utils.training.finetuning import finetune

WORDS = [
    "apple",
    "river",
    "stone",
    "cloud",
    "tiger",
    "piano",
    "lemon",
    "candle",
    "forest",
    "mirror",
    "rocket",
    "garden",
    "window",
    "dragon",
    "pencil",
    "silver",
]


def training_data(name: str | None):
    """(task name, train split): a shipped task if the suite is built, else a synthetic one."""
    try:
        suite = load_tasks()
    except FileNotFoundError:
        records = [
            {"input": f"{a} {b}", "output": f"{b} {a}"} for a in WORDS for b in WORDS if a != b
        ]
        task = Task.from_records(
            "synthetic_swap", instruction="Swap the two words.", splits={"train": records}
        )
        return task.name, task.train
    task = suite[name] if name else next(iter(suite.values()))
    return task.name, task.train[:200]  # plenty for a few steps; encoding all is wasted time


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--task", help="a shipped task (default: the suite's first)")
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=8)
    add_threads_option(parser)
    parser.add_argument("--out")
    args = parser.parse_args()
    apply_threads(args)

    task_name, data = training_data(args.task)
    model, tok = tn.load_model()
    neurons = random_tenth(model)
    total_params = sum(p.numel() for p in model.parameters())
    del model

    step_seconds = {"neurons": [], "full": []}
    attrs = {}
    for _ in range(args.rounds):
        for method in ("neurons", "full"):
            model, tok = tn.load_model()  # fresh weights for every run
            options = {"neurons": neurons} if method == "neurons" else {"method": "full"}
            history = finetune(
                model,
                tok,
                data,
                steps=args.steps,
                batch_size=args.batch_size,
                lr=1e-5,
                progress=False,
                **options,
            )
            # The first step also allocates the optimizer state; it is kept, the median
            # makes it count no more than any other step.
            step_seconds[method].extend(history["seconds"].tolist())
            attrs[method] = history.attrs
            del model, history
    median = {method: statistics.median(values) for method, values in step_seconds.items()}
    selected_fraction = attrs["neurons"]["trainable_parameters"] / total_params
    state_ratio = attrs["neurons"]["optimizer_state_bytes"] / attrs["full"]["optimizer_state_bytes"]
    result = {
        "state_ratio": round(state_ratio, 5),
        "selected_parameter_fraction": round(selected_fraction, 5),
        "step_time_ratio": round(median["neurons"] / median["full"], 4),
        "neurons_step_s": round(median["neurons"], 3),
        "full_step_s": round(median["full"], 3),
        "neurons_state_bytes": attrs["neurons"]["optimizer_state_bytes"],
        "full_state_bytes": attrs["full"]["optimizer_state_bytes"],
        "neurons_selected": len(neurons),
        "neurons_total": sum(neurons.sizes.values()),
        "task": task_name,
        "batch_size": args.batch_size,
        "steps_per_run": args.steps,
        "rounds": args.rounds,
        "model": "default (SmolLM2-135M-Instruct)",
        "torch_threads": torch.get_num_threads(),
        "machine": platform.processor() or platform.machine(),
        "targets": "state_ratio ~= selected_parameter_fraction; step_time_ratio <= 1.0",
    }
    emit(result, args.out)


if __name__ == "__main__":
    main()
