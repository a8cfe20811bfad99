"""Attribution speed and memory, as ratios against baselines measured in the same run.

    python benchmarks/attribution.py [--task NAME] [--repeats 5] [--threads 2]
                                     [--out benchmarks/results/attribution.json]

On the default model, 8 batches of 8 examples of a shipped task (fixed per-call costs such as
encoding and the weight fingerprint are included and amortised as in real use), interleaving
the methods and taking medians:
  - attribution / plain training step (full logits, loss.backward() with parameter gradients)
  - attribution / plain forward (torch.no_grad, full logits)
  - attribution / its floor: the same passes with nothing of attribution's own, a forward
    (graph kept, LM head on answer positions) and an activation-only backward to the input
    embeddings (torch.autograd.grad; no parameter gradients, no hooks, no products or sums)
  - the matrix-product floor: multiply-adds of that forward and backward over those of the
    plain forward, counted from the linear layers' shapes (attention scores left out: <1% at
    these lengths); the ratio no attribution by autograd can go below in the same dtype
  - attribution / Captum LayerGradientXActivation over the same sites, with a forward function
    returning the same per-example answer loss computed the usual way, from the model's full
    logits (captum is in the ``bench`` extra); also reported against Captum given our own loss
    function, which applies the LM head to answer positions only (captum_cheap_head)
  - peak resident memory during attribution over 640 examples / over 64 (each in a fresh
    process, sampled from /proc every 5 ms; Linux only)
Prints JSON.
"""

from __future__ import annotations

import argparse
import platform
import subprocess
import sys

import torch
import torch.nn.functional as F

import taskneuron_utils as tn
from harness import (
    add_threads_option,
    apply_threads,
    emit,
    interleaved_medians,
    measuring_env,
    peak_rss,
)
from taskneuron_utils.attribution.run import attribute
from taskneuron_utils.scoring.loss import answer_losses
from taskneuron_utils.tasks import collate, encode, load_tasks


def captum_step(model, batch, sites, cheap_head: bool = False):
    from captum.attr import LayerGradientXActivation

    modules = list({site.module: None for site in sites})

    def forward(input_ids):
        if cheap_head:  # our own loss function, LM head on answer positions only
            return answer_losses(model, {**batch, "input_ids": input_ids})[0]
        # What a Captum user writes: the model's own forward, then the same per-example answer
        # loss as attribute() (mean NLL of the answer tokens), from the full logits.
        logits = model(input_ids=input_ids, attention_mask=batch["attention_mask"]).logits
        targets = batch["labels"][:, 1:]
        nll = F.cross_entropy(
            logits[:, :-1].transpose(1, 2).float(), targets, ignore_index=-100, reduction="none"
        )  # (B, T-1)
        return nll.sum(1) / (targets != -100).sum(1)

    attributions = LayerGradientXActivation(forward, modules).attribute(batch["input_ids"])
    # Reduce as attribute() does: sum over positions, absolute value, per example.
    return [a.sum(dim=1).abs() for a in attributions]


def floor_step(model, batch) -> None:
    """Attribution's passes without attribution: forward with the graph, the same answer loss
    (``answer_losses``), gradient with respect to the input embeddings only (made a leaf that
    requires grad, as ``tn.trace(grad=True)`` does; no site hooks, products or sums)."""
    embeds = []

    def leaf(module, args, output):
        embeds.append(output.detach().requires_grad_(True))
        return embeds[-1]

    handle = model.get_input_embeddings().register_forward_hook(leaf)
    try:
        losses, _ = answer_losses(model, batch)
    finally:
        handle.remove()
    torch.autograd.grad(losses.sum(), embeds)


def matmul_floor(model, batches) -> dict:
    """Multiply-adds of the linear layers (weights' shapes x positions): the plain forward
    (every layer and the LM head on every position) against attribution's forward (LM head on
    answer positions) plus its backward, which needs input gradients of every linear above the
    earliest site (layers 1.. and layer 0's output projection; the earliest site, layer 0's
    gate / up output, needs nothing below it)."""
    layers = model.base_model.layers
    per_layer = [
        sum(m.weight.numel() for m in layer.modules() if isinstance(m, torch.nn.Linear))
        for layer in layers
    ]
    down = tn.core.site_map(model)["layers.0.mlp.down"].module.weight.numel()
    head = model.get_output_embeddings().weight.numel()
    tokens = sum(b["input_ids"].numel() for b in batches)
    answers = sum(int((b["labels"][:, 1:] != -100).sum()) for b in batches)
    forward = tokens * (sum(per_layer) + head)
    attribution = tokens * sum(per_layer) + answers * head + tokens * (sum(per_layer[1:]) + down)
    # A training step: the forward, then input and weight gradients of every linear (the
    # embeddings are trained too, so layer 0 needs its input gradients as well): 3x.
    return {
        "forward_multiply_adds": forward,
        "attribution_multiply_adds": attribution,
        "train_step_multiply_adds": 3 * forward,
        "attribution_over_forward": round(attribution / forward, 3),
        "attribution_over_train_step": round(attribution / (3 * forward), 3),
    }


def peak_memory_child(task: str, n: int) -> None:
    """Peak resident memory while attributing n examples, sampled every 5 ms (model included).

    ru_maxrss cannot be used: its peak is reached while loading the model, before attribution.
    """
    model, tok = tn.load_model()
    data = load_tasks([task])[task].train[:n]
    _, peak = peak_rss(lambda: attribute(model, tok, data, batch_size=8, progress=False))
    print(peak)


def peak_memory(task: str, n: int) -> int:
    out = subprocess.run(
        [sys.executable, __file__, "--memory-child", str(n), "--task", task],
        capture_output=True,
        text=True,
        check=True,
        env=measuring_env(),
    )
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
    add_threads_option(parser)
    args = parser.parse_args()
    apply_threads(args)
    if args.memory_child:
        return peak_memory_child(args.task, args.memory_child)

    torch.manual_seed(0)
    model, tok = tn.load_model()
    task = load_tasks([args.task])[args.task]
    data = task.train[: args.batch_size * args.batches]
    encoded = encode(tok, data)
    batches = [
        collate(encoded[i : i + args.batch_size], tok.pad_token_id)
        for i in range(0, len(encoded), args.batch_size)
    ]
    sites = tn.ffn_sites(model)

    def train_step():
        for batch in batches:
            model.zero_grad(set_to_none=True)
            model(**batch).loss.backward()

    def forward():
        with torch.no_grad():
            for batch in batches:
                model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])

    def floor():
        for batch in batches:
            floor_step(model, batch)

    def captum_run():
        for batch in batches:
            captum_step(model, batch, sites)

    def captum_cheap_head_run():
        for batch in batches:
            captum_step(model, batch, sites, cheap_head=True)

    methods = {
        "attribution": lambda: attribute(
            model, tok, data, batch_size=args.batch_size, progress=False
        ),
        "train_step": train_step,
        "forward": forward,
        "floor": floor,
    }
    try:
        import captum.attr  # noqa: F401 (only to learn whether it is installed)

        methods["captum"] = captum_run
        methods["captum_cheap_head"] = captum_cheap_head_run
    except ImportError:
        print(
            "captum not installed (pip install -e '.[bench]'); skipping that baseline",
            file=sys.stderr,
        )

    median = interleaved_medians(methods, args.repeats)
    model.zero_grad(set_to_none=True)
    result = {
        "machine": f"{platform.machine()}, {torch.get_num_threads()} torch threads, "
        f"{platform.processor() or platform.platform()}",
        "torch": torch.__version__,
        "model": tn.core.model_name(model),
        "task": args.task,
        "batches": [list(b["input_ids"].shape) for b in batches],
        "answer_tokens": sum(int((b["labels"] != -100).sum()) for b in batches),
        "seconds_median": {k: round(v, 4) for k, v in median.items()},
        "attribution_over_train_step": round(median["attribution"] / median["train_step"], 3),
        "attribution_over_forward": round(median["attribution"] / median["forward"], 3),
        "attribution_over_floor": round(median["attribution"] / median["floor"], 3),
        "floor_over_forward": round(median["floor"] / median["forward"], 3),
        "floor_over_train_step": round(median["floor"] / median["train_step"], 3),
        "matmul_floor": matmul_floor(model, batches),
    }
    if "captum" in median:
        result["attribution_over_captum"] = round(median["attribution"] / median["captum"], 3)
        result["attribution_over_captum_cheap_head"] = round(
            median["attribution"] / median["captum_cheap_head"], 3
        )
    if not args.skip_memory:
        small, large = peak_memory(args.task, 64), peak_memory(args.task, 640)
        result["peak_rss_bytes"] = {"64": small, "640": large}
        result["peak_memory_640_over_64"] = round(large / small, 4)
    emit(result, args.out)


if __name__ == "__main__":
    main()
