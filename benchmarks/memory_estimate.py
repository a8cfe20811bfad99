"""tn.estimate_memory against measured peaks, over families, dtypes, attention kernels, methods.

    python benchmarks/memory_estimate.py [--default-model] [--out benchmarks/results/memory_estimate.json]

Each case builds a random model from a config (4 layers, d 256; Llama: d_ff 688, 4 heads, 2
key/value heads; Bloom: d_ff 1024, 4 heads) with the default model's tokenizer, runs the
package's own code on 8 padded examples (about 240 tokens, 9 answer tokens) -- ``tn.attribute``
or two steps of ``tn.finetune`` -- and compares ``tn.memory.measure_peak`` (torch's profiler,
replayed; plus the weights) with the estimate. ``--default-model`` adds the embedded default
model (batch 4 of a shipped task). Prints JSON: one row a case, with estimate / measured.
"""

from __future__ import annotations

import argparse
import platform
import time

import torch
import transformers

import taskneuron_utils as tn
from harness import add_threads_option, apply_threads, emit
from taskneuron_utils.memory.estimate import estimate_memory, measure_peak
from taskneuron_utils.core.models import default_model_path
from taskneuron_utils.tasks import Task, collate, encode

CASES = [  # (family, attention, dtype, method)
    *[("llama", "sdpa", "float32", m) for m in ("attribution", "full", "neurons", "lora")],
    *[("llama", "sdpa", "bfloat16", m) for m in ("attribution", "full", "neurons", "lora")],
    *[("llama", "eager", "float32", m) for m in ("attribution", "full")],
    *[("bloom", "eager", "float32", m) for m in ("attribution", "full", "neurons", "lora")],
    *[("bloom", "eager", "bfloat16", m) for m in ("attribution", "full")],
]
WORDS = ["apple", "river", "stone", "cloud", "tiger", "piano", "lemon", "candle"]


def tiny(family: str, attention: str, dtype: torch.dtype, tok):
    common = dict(vocab_size=len(tok), hidden_size=256, pad_token_id=tok.pad_token_id)
    if family == "llama":
        config = transformers.LlamaConfig(
            **common,
            intermediate_size=688,
            num_hidden_layers=4,
            num_attention_heads=4,
            num_key_value_heads=2,
        )
        extra = {"attn_implementation": attention}
    else:
        config, extra = transformers.BloomConfig(**common, n_layer=4, n_head=4), {}
    torch.manual_seed(0)
    return transformers.AutoModelForCausalLM.from_config(config, dtype=dtype, **extra).eval()


def padded_examples(n: int = 8):
    records = [
        {"input": " ".join(WORDS[j % 8] for j in range(200 - 5 * i)), "output": " ".join(WORDS[:6])}
        for i in range(n)
    ]
    return Task.from_records(
        "memory", instruction="Repeat the first words.", splits={"train": records}
    ).train


def compare(model, tok, split, method: str, batch_size: int) -> dict:
    batch = collate(encode(tok, split), tok.pad_token_id)
    seq_len = batch["input_ids"].shape[1]
    answer_len = round(int((batch["labels"][:, 1:] != -100).sum()) / len(split))
    padded = bool((batch["attention_mask"] == 0).any())
    weights = sum(p.numel() * p.element_size() for p in model.parameters()) + sum(
        b.numel() * b.element_size() for b in model.buffers()
    )
    if method == "attribution":
        run = lambda: tn.attribute(model, tok, split, batch_size=batch_size, progress=False)  # noqa: E731
    else:
        options = {"method": method}
        if method == "neurons":
            layout = tn.layout_of(model)
            template = tn.NeuronSet(
                {s: torch.arange(round(0.1 * n)) for s, n in layout.items()}, layout
            )
            options = {"neurons": tn.NeuronSet.random_like(template, seed=0)}
        run = lambda: tn.finetune(
            model,
            tok,
            split,
            steps=2,
            batch_size=batch_size,  # noqa: E731
            lr=1e-6,
            progress=False,
            **options,
        )
    started = time.perf_counter()
    _, growth = measure_peak(run)
    seconds = time.perf_counter() - started
    estimate = estimate_memory(
        model, batch_size, seq_len, method, answer_len=answer_len, padding=padded, device="cpu"
    )
    measured = weights + growth
    return {
        "method": method,
        "batch": [batch_size, seq_len],
        "answer_tokens": answer_len,
        "measured_MiB": round(measured / 2**20, 1),
        "estimated_MiB": round(estimate.peak / 2**20, 1),
        "estimate_over_measured": round(estimate.peak / measured, 3),
        "above_weights_ratio": round((estimate.peak - weights) / growth, 3),
        "phase": estimate.details["phase"],
        "seconds": round(seconds, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--default-model", action="store_true")
    add_threads_option(parser)
    parser.add_argument("--out")
    args = parser.parse_args()
    apply_threads(args)
    tok = transformers.AutoTokenizer.from_pretrained(default_model_path())
    tok.pad_token = tok.pad_token or tok.eos_token
    split = padded_examples()
    rows = []
    for family, attention, dtype, method in CASES:
        model = tiny(family, attention, getattr(torch, dtype), tok)
        rows.append(
            {
                "model": f"tiny {family}",
                "attention": attention,
                "dtype": dtype,
                **compare(model, tok, split, method, batch_size=8),
            }
        )
        print(rows[-1], flush=True)
    if args.default_model:
        for method in ("attribution", "full"):
            model, dtok = tn.load_model()
            data = tn.load_tasks(["product_sentiment"])["product_sentiment"].train[:4]
            rows.append(
                {
                    "model": "default (SmolLM2-135M)",
                    "attention": "sdpa",
                    "dtype": "float32",
                    **compare(model, dtok, data, method, batch_size=4),
                }
            )
            print(rows[-1], flush=True)
    ratios = [row["estimate_over_measured"] for row in rows]
    emit(
        {
            "cases": rows,
            "estimate_over_measured_range": [min(ratios), max(ratios)],
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "torch_threads": torch.get_num_threads(),
            "machine": platform.processor() or platform.machine(),
        },
        args.out,
    )


if __name__ == "__main__":
    main()
