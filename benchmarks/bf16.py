"""float32 vs bfloat16 on this CPU, as ratios measured in one run (issue 27, part 1).

    python benchmarks/bf16.py [--threads 2] [--repeats 5] [--out benchmarks/results/bf16.json]

On the default model, ``--batches`` batches of 8 examples of a shipped task (their own lengths,
about 65 tokens for product_sentiment; the shapes are recorded), three ways
of running, interleaved, medians over ``--repeats``:
  - ``fp32``:     float32 weights (today's default)
  - ``bf16``:     the weights cast to bfloat16 (``tn.load_model(dtype=torch.bfloat16)``)
  - ``autocast``: float32 weights under ``torch.autocast("cpu", dtype=torch.bfloat16)``
                  (``tn.attribute(..., autocast=torch.bfloat16)`` for attribution)
and three workloads each: a no-grad forward pass (full logits), ``tn.attribute`` (relevance
sums are float64 in every case) and a plain training step (``loss.backward()``, parameter
gradients). Ratios are ``fp32 seconds / other seconds`` (> 1: the other is faster).

Whether the neurons found agree with float32's: ``benchmarks/bf16_sets.py``. Whether a CPU has
bf16 matrix units: ``lscpu`` (amx_bf16, avx512_bf16); the flags found are recorded.
"""

from __future__ import annotations

import argparse
import contextlib
import platform

import torch

import taskneuron_utils as tn
from harness import add_threads_option, apply_threads, emit, interleaved_medians
from taskneuron_utils.tasks import collate, encode


def cpu_flags() -> list[str]:
    try:
        text = open("/proc/cpuinfo").read()
    except OSError:
        return []
    flags = next(
        (line.split(":", 1)[1].split() for line in text.splitlines() if line.startswith("flags")),
        [],
    )
    return sorted(f for f in flags if "bf16" in f or f.startswith("amx"))


def main() -> None:
    parser = argparse.ArgumentParser()
    add_threads_option(parser)
    parser.add_argument("--task", default="product_sentiment")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--batches", type=int, default=4)
    parser.add_argument("--out")
    args = parser.parse_args()
    apply_threads(args)
    torch.manual_seed(0)

    model32, tok = tn.load_model()
    model16, _ = tn.load_model(dtype=torch.bfloat16)
    suite = tn.load_tasks()
    data = suite[args.task].train[: 8 * args.batches]
    encoded = encode(tok, data)
    batches = [collate(encoded[i : i + 8], tok.pad_token_id) for i in range(0, len(encoded), 8)]
    ways = {
        "fp32": (model32, contextlib.nullcontext),
        "bf16": (model16, contextlib.nullcontext),
        "autocast": (model32, lambda: torch.autocast("cpu", dtype=torch.bfloat16)),
    }
    autocast = {"fp32": None, "bf16": None, "autocast": torch.bfloat16}

    def workloads(model, context, compute):
        def forward():
            with torch.no_grad(), context():
                for b in batches:
                    model(input_ids=b["input_ids"], attention_mask=b["attention_mask"])

        def attribution():
            tn.attribute(model, tok, data, batch_size=8, progress=False, autocast=compute)

        def train_step():
            for b in batches:
                model.zero_grad(set_to_none=True)
                with context():
                    loss = model(**b).loss
                loss.backward()
            model.zero_grad(set_to_none=True)

        return {"forward": forward, "attribution": attribution, "train_step": train_step}

    runs = {
        (way, work): fn
        for way, (model, context) in ways.items()
        for work, fn in workloads(model, context, autocast[way]).items()
    }
    median = interleaved_medians(runs, args.repeats)
    result = {
        "machine": f"{platform.machine()}, {torch.get_num_threads()} torch threads",
        "cpu_bf16_flags": cpu_flags(),
        "torch": torch.__version__,
        "model": tn.core.model_name(model32),
        "batches": [list(b["input_ids"].shape) for b in batches],
        "repeats": args.repeats,
        "seconds_median": {f"{way}/{work}": round(s, 4) for (way, work), s in median.items()},
        "speedup_over_fp32": {
            f"{way}/{work}": round(median[("fp32", work)] / median[(way, work)], 3)
            for (way, work) in median
            if way != "fp32"
        },
    }
    emit(result, args.out)


if __name__ == "__main__":
    main()
