"""Cost of deactivation hooks: a masked forward against a plain one, measured in the same run.

    python benchmarks/interventions.py [--repeats 15] [--batch-size 8] [--length 64] [--out FILE]

On the default model, a batch of random tokens (8 x 64), no gradients, full logits. The plain
forward and the forward under ``tn.deactivate`` (activation mode) with a random 10%-per-site
NeuronSet alternate, so that load from other processes affects both alike; medians are compared.
Weight mode (zero the rows, forward, restore) is timed too, for reference. Prints JSON; the
issue's target is ``masked_over_unmasked <= 1.05``.
"""

from __future__ import annotations

import argparse
import platform
import statistics

import torch

import taskneuron_utils as tn
from harness import add_threads_option, apply_threads, emit, random_tenth, timed
from taskneuron_utils.hooks.interventions import deactivate


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--length", type=int, default=64)
    add_threads_option(parser)
    parser.add_argument("--out")
    args = parser.parse_args()
    apply_threads(args)

    model, tok = tn.load_model()
    ids = torch.randint(
        0, len(tok), (args.batch_size, args.length), generator=torch.Generator().manual_seed(0)
    )
    neurons = random_tenth(model)

    @torch.no_grad()
    def plain():
        model(input_ids=ids, use_cache=False)

    def masked():
        with deactivate(model, neurons), torch.no_grad():
            model(input_ids=ids, use_cache=False)

    def weight():
        with deactivate(model, neurons, mode="weight"), torch.no_grad():
            model(input_ids=ids, use_cache=False)

    for fn in (plain, masked, weight):  # warm-up: allocator, thread pool, first-call costs
        fn()
    times = {"plain": [], "masked": [], "weight": []}
    for _ in range(args.repeats):
        for name, fn in (("plain", plain), ("masked", masked), ("weight", weight)):
            times[name].append(timed(fn))
    median = {name: statistics.median(values) for name, values in times.items()}
    result = {
        "masked_over_unmasked": round(median["masked"] / median["plain"], 4),
        "weight_mode_over_unmasked": round(median["weight"] / median["plain"], 4),
        "unmasked_forward_s": round(median["plain"], 4),
        "masked_forward_s": round(median["masked"], 4),
        "weight_mode_forward_s": round(median["weight"], 4),
        "neurons_deactivated": len(neurons),
        "neurons_total": sum(neurons.sizes.values()),
        "batch": [args.batch_size, args.length],
        "repeats": args.repeats,
        "model": tn.core.model_name(model),
        "torch_threads": torch.get_num_threads(),
        "machine": platform.processor() or platform.machine(),
        "target": "masked_over_unmasked <= 1.05",
    }
    emit(result, args.out)


if __name__ == "__main__":
    main()
