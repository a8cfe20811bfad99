"""Cost and memory of ``tn.top_examples``, against a plain forward pass in the same run.

    python benchmarks/top_examples.py [--examples 48] [--memory-examples 16] [--repeats 5]
                                      [--threads 2] [--out FILE]

On the default model, test examples of one shipped task (``addition``), batches of 16,
top and bottom k = 20 of two neuron sets: 1% of every act site (a task page's worth) and 10%
of every act site (4,620 units).

- cost: ``top_examples`` vs a plain forward (``model(input_ids, attention_mask)``, no
  gradients, no hooks) over the same batches, alternating, medians; target <= 1.2.
  ``extra_s_per_batch``: the difference per batch (hooks, gathering, the running top-k).
- memory: on N (16: one full batch) and on 10 x N examples, each in a fresh process, the
  peak resident memory during ``top_examples`` above what the process held just before it
  (RSS sampled every 5 ms from /proc, in a child whose malloc maps large blocks on their own,
  ``harness.measuring_env``; it counts torch's tensors and Python's objects alike);
  target <= 1.1. (``tn.memory.measure_peak``'s profiler keeps every allocation event and ran out
  of memory on 80 examples here; RSS sampling costs nothing.)
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys

import torch

import taskneuron_utils as tn
from harness import (
    add_threads_option,
    apply_threads,
    emit,
    interleaved_medians,
    measuring_env,
    peak_rss,
)
from taskneuron_utils.pages.scan import data_items
from taskneuron_utils.tasks import Encoded, collate


def act_fraction(model, fraction: float) -> tn.NeuronSet:
    """The first round(fraction * n) units of every act site (which units does not matter
    for cost)."""
    layout = tn.layout_of(model, "act")
    return tn.NeuronSet(
        {site: torch.arange(round(fraction * n)) for site, n in layout.items()}, layout
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--examples", type=int, default=48)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument(
        "--memory-examples",
        type=int,
        default=16,
        help="N of the memory comparison (N vs 10 x N examples)",
    )
    parser.add_argument("--memory-child", type=int, help=argparse.SUPPRESS)
    add_threads_option(parser)
    parser.add_argument("--out")
    args = parser.parse_args()
    apply_threads(args)

    model, tok = tn.load_model()
    test = tn.load_tasks(["addition"])["addition"].test
    if args.memory_child:
        return _measure_memory(model, tok, test, args)
    data = test[: args.examples]
    sets = {"act_1pct": act_fraction(model, 0.01), "act_10pct": act_fraction(model, 0.10)}
    items = data_items(tok, data)
    batches = [
        collate(
            [Encoded(i.ids, len(i.ids)) for i in items[s : s + args.batch_size]], tok.pad_token_id
        )
        for s in range(0, len(items), args.batch_size)
    ]

    @torch.inference_mode()
    def plain():
        for batch in batches:
            model(
                input_ids=batch["input_ids"],
                attention_mask=batch["attention_mask"],
                use_cache=False,
            )

    def top(neurons, split=data):
        return tn.top_examples(
            model, tok, split, neurons, k=20, batch_size=args.batch_size, progress=False
        )

    runs = {"plain": plain, **{name: (lambda ns=ns: top(ns)) for name, ns in sets.items()}}
    median = interleaved_medians(runs, args.repeats)

    memory = {
        label: _child(n, args)
        for label, n in (("n", args.memory_examples), ("10n", 10 * args.memory_examples))
    }

    result = {
        "top_examples_over_forward": {
            name: round(median[name] / median["plain"], 4) for name in sets
        },
        "forward_s": round(median["plain"], 4),
        "top_examples_s": {name: round(median[name], 4) for name in sets},
        "extra_s_per_batch": {
            name: round((median[name] - median["plain"]) / len(batches), 4) for name in sets
        },
        "neurons": {name: len(ns) for name, ns in sets.items()},
        "examples": len(data),
        "batches": len(batches),
        "batch_size": args.batch_size,
        "tokens": sum(len(i.ids) for i in items),
        "k": 20,
        "repeats": args.repeats,
        "peak_memory_10x_over_1x": round(
            memory["10n"]["peak_rss_increase_bytes"] / memory["n"]["peak_rss_increase_bytes"], 4
        ),
        "memory": memory,
        "model": tn.core.model_name(model),
        "torch_threads": torch.get_num_threads(),
        "machine": platform.processor() or platform.machine(),
        "target": "top_examples_over_forward <= 1.2; peak_memory_10x_over_1x <= 1.1",
    }
    emit(result, args.out)


def _measure_memory(model, tok, test, args) -> None:
    """In a fresh process: warm up on one batch, then the peak RSS increase of one
    top_examples call on ``--memory-child`` examples; printed as JSON."""
    neurons = act_fraction(model, 0.10)
    run = lambda n: tn.top_examples(
        model,
        tok,
        test[:n],
        neurons,
        k=20,  # noqa: E731
        batch_size=args.batch_size,
        progress=False,
    )
    run(args.batch_size)
    before, peak = peak_rss(lambda: run(args.memory_child))
    print(
        json.dumps(
            {
                "examples": args.memory_child,
                "rss_before_bytes": before,
                "peak_rss_increase_bytes": peak - before,
            }
        )
    )


def _child(n: int, args) -> dict:
    command = [
        sys.executable,
        __file__,
        "--memory-child",
        str(n),
        "--batch-size",
        str(args.batch_size),
    ]
    if args.threads:
        command += ["--threads", str(args.threads)]
    out = subprocess.run(
        command, check=True, capture_output=True, text=True, env=measuring_env()
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


if __name__ == "__main__":
    main()
