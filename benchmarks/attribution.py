"""Attribution speed and memory, as ratios against baselines measured in the same run.

    python benchmarks/attribution.py [--task NAME] [--repeats 5] [--out benchmarks/results/attribution.json]

On the default model, 8 batches of 8 examples of a shipped task (fixed per-call costs such as
encoding and the weight fingerprint are included and amortised as in real use), interleaving
the methods and taking medians:
  - attribution / plain training step (full logits, loss.backward() with parameter gradients)
  - attribution / plain forward (torch.no_grad, full logits)
  - attribution / Captum LayerGradientXActivation over the same sites, with a forward function
    returning the same per-example answer loss (captum is in the ``bench`` extra)
  - peak resident memory of attribution over 640 examples / over 64 (each in a fresh process)
Prints JSON.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

import taskneuron_utils as tn
from taskneuron_utils.attribution import attribute
from taskneuron_utils.loss import answer_losses
from taskneuron_utils.tasks import collate, encode, load_tasks


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def captum_step(model, batch, sites):
    from captum.attr import LayerGradientXActivation

    modules = list({site.module: None for site in sites})

    def forward(input_ids):
        losses, _ = answer_losses(model, {**batch, "input_ids": input_ids})
        return losses

    attributions = LayerGradientXActivation(forward, modules).attribute(batch["input_ids"])
    # Reduce as attribute() does: sum over positions, absolute value, per example.
    return [a.sum(dim=1).abs() for a in attributions]


def peak_memory_child(task: str, n: int) -> None:
    model, tok = tn.load_model()
    data = load_tasks([task])[task].train[:n]
    attribute(model, tok, data, batch_size=8, progress=False)
    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)


def peak_memory(task: str, n: int) -> int:
    out = subprocess.run([sys.executable, __file__, "--memory-child", str(n), "--task", task],
                         capture_output=True, text=True, check=True)
    return int(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--task", default="product_sentiment")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--batches", type=int, default=8)
    parser.add_argument("--memory-child", type=int)
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument("--out")
    args = parser.parse_args()
    if args.memory_child:
        return peak_memory_child(args.task, args.memory_child)

    torch.manual_seed(0)
    model, tok = tn.load_model()
    task = load_tasks([args.task])[args.task]
    data = task.train[: args.batch_size * args.batches]
    encoded = encode(tok, data)
    batches = [collate(encoded[i : i + args.batch_size], tok.pad_token_id)
               for i in range(0, len(encoded), args.batch_size)]
    sites = tn.ffn_sites(model)

    def train_step():
        for batch in batches:
            model.zero_grad(set_to_none=True)
            model(**batch).loss.backward()

    def forward():
        with torch.no_grad():
            for batch in batches:
                model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])

    def captum():
        for batch in batches:
            captum_step(model, batch, sites)

    methods = {
        "attribution": lambda: attribute(model, tok, data, batch_size=args.batch_size, progress=False),
        "train_step": train_step,
        "forward": forward,
    }
    try:
        import captum  # noqa: F401

        methods["captum"] = captum
    except ImportError:
        print("captum not installed (pip install -e '.[bench]'); skipping that baseline", file=sys.stderr)

    for fn in methods.values():  # warm-up
        fn()
    times = {name: [] for name in methods}
    for _ in range(args.repeats):
        for name, fn in methods.items():
            times[name].append(timed(fn))
    model.zero_grad(set_to_none=True)
    median = {name: statistics.median(values) for name, values in times.items()}
    result = {
        "machine": f"{platform.machine()}, {torch.get_num_threads()} torch threads, "
                   f"{platform.processor() or platform.platform()}",
        "torch": torch.__version__,
        "model": tn.model_name(model),
        "task": args.task,
        "batches": [list(b["input_ids"].shape) for b in batches],
        "answer_tokens": sum(int((b["labels"] != -100).sum()) for b in batches),
        "seconds_median": {k: round(v, 4) for k, v in median.items()},
        "attribution_over_train_step": round(median["attribution"] / median["train_step"], 3),
        "attribution_over_forward": round(median["attribution"] / median["forward"], 3),
    }
    if "captum" in median:
        result["attribution_over_captum"] = round(median["attribution"] / median["captum"], 3)
    if not args.skip_memory:
        small, large = peak_memory(args.task, 64), peak_memory(args.task, 640)
        result["peak_rss_bytes"] = {"64": small, "640": large}
        result["peak_memory_640_over_64"] = round(large / small, 4)
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text + "\n")


if __name__ == "__main__":
    main()
