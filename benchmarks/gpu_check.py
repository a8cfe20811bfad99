"""One short check for a machine with a CUDA GPU: the package's code path on a 7B-shaped model.

    python benchmarks/gpu_check.py [--out benchmarks/results/gpu_check.json]   # one GPU, < 5 min
    python benchmarks/gpu_check.py --tiny                                       # tiny config, CPU

No download: a Llama with Llama-2-7b's shapes (``tn.memory.KNOWN_CONFIGS``) and random bfloat16
weights is built directly on the GPU, with an offline word-level tokenizer whose vocabulary has
the config's size, and synthetic examples of exactly ``--seq-len`` tokens (``--answer-len`` of
them scored). Without CUDA (or with ``--tiny``) a tiny config runs on the CPU in float32, which
is what the test suite runs. Measured, as ``benchmarks/attribution.py`` does on the CPU
(``--batches`` batches, the methods interleaved ``--repeats`` times, medians):

- ``tn.attribute`` against a plain training step (full logits, ``loss.backward()`` with
  parameter gradients, no optimizer) and against a forward pass (``torch.no_grad``);
- the peak memory of each (``torch.cuda.max_memory_allocated`` above the weights; on the CPU,
  ``tn.memory.measure_peak``) and ``tn.estimate_memory``'s prediction for attribution;
- a neuron-only fine-tuning run through the public API (``rel.top_k(0.10)`` of that
  attribution, ``tn.finetune(neurons=...)``, ``--finetune-steps`` steps): seconds a step, peak
  memory against the estimate, optimizer state, and whether a neuron outside the set kept its
  weights bit for bit while a selected one changed;
- ``taskneurons replicate``'s plan (``--plan``: peak memory per part and device, the time from
  its calibration) for every part of the paper profile's smoke preset on this model, and one
  part run at those sizes (``table1``'s unit ``deact_base_k10``: detection and deactivation on
  the base model, the hub loaders reading tests/fixtures/hub): its measured wall time and peak
  memory against the plan's estimate.

Prints JSON (and writes it to ``--out``).
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))  # harness, when imported by a test
from harness import emit, timed  # noqa: E402

import taskneuron_utils as tn  # noqa: E402
from taskneuron_utils.memory.estimate import KNOWN_CONFIGS, estimate_memory, measure_peak  # noqa: E402
from taskneuron_utils.experiments.replicate import replicate, settings_for  # noqa: E402
from taskneuron_utils.tasks import Task, collate, encode  # noqa: E402

FIXTURES = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "hub"

TINY = dict(
    model_type="llama",
    hidden_size=64,
    intermediate_size=172,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=4,
    vocab_size=512,
    max_position_embeddings=512,
    tie_word_embeddings=False,
)
INSTRUCTION = "Repeat the last words."
TEMPLATE_WORDS = ["Input:", "Answer:", "Repeat", "the", "last", "words."]
SPECIALS = ["<unk>", "<s>", "</s>", "<pad>"]


def word_tokenizer(vocab_size: int):
    """An offline word-level tokenizer of exactly ``vocab_size`` tokens: specials, the plain
    prompt template's words, then ``w0``, ``w1``, ... (one token a whitespace-separated word)."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    words = SPECIALS + TEMPLATE_WORDS
    words += [f"w{i}" for i in range(vocab_size - len(words))]
    inner = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="<unk>"))
    inner.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return PreTrainedTokenizerFast(
        tokenizer_object=inner,
        unk_token="<unk>",
        bos_token="<s>",
        eos_token="</s>",
        pad_token="<pad>",
    )


def synthetic_task(n: int, seq_len: int, answer_len: int, vocab_size: int, seed: int = 0):
    """``n`` examples of exactly ``seq_len`` tokens, the last ``answer_len`` + 1 (with the end
    marker) the answer: "Repeat the last words." over random words."""
    n_words = vocab_size - len(SPECIALS) - len(TEMPLATE_WORDS)
    n_input = seq_len - answer_len - 1 - (len(INSTRUCTION.split()) + 2)
    if n_input < 1:
        raise ValueError(
            f"seq_len {seq_len} leaves no room for an input of answer_len {answer_len}"
        )
    g = torch.Generator().manual_seed(seed)
    records = []
    for _ in range(n):
        ids = torch.randint(0, n_words, (n_input,), generator=g).tolist()
        words = [f"w{i}" for i in ids]
        records.append({"input": " ".join(words), "output": " ".join(words[-answer_len:])})
    return Task.from_records(
        "synthetic_repeat",
        instruction=INSTRUCTION,
        category="generation",
        metric="exact_match",
        splits={"train": records},
    )


def build_model(config_values: dict, dtype: torch.dtype, device: str):
    """A causal LM of that config with random weights, initialised on ``device`` (no copy of a
    7B model ever sits in host memory)."""
    from transformers import AutoConfig, AutoModelForCausalLM

    config = AutoConfig.for_model(**config_values)
    torch.manual_seed(0)
    with torch.device(device):
        model = AutoModelForCausalLM.from_config(config, dtype=dtype)
    return model.eval()


def synchronize(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def run(
    tiny: bool,
    batch_size: int,
    seq_len: int,
    answer_len: int,
    batches: int,
    repeats: int,
    finetune_steps: int,
) -> dict:
    started = time.perf_counter()
    cuda = torch.cuda.is_available() and not tiny
    device = "cuda" if cuda else "cpu"
    dtype = torch.bfloat16 if cuda else torch.float32
    values = dict(KNOWN_CONFIGS["meta-llama/Llama-2-7b-hf"]) if cuda else dict(TINY)
    model = build_model(values, dtype, device)
    built = time.perf_counter() - started
    tok = word_tokenizer(values["vocab_size"])
    task = synthetic_task(batch_size * batches, seq_len, answer_len, values["vocab_size"])
    data = task.train
    encoded = encode(tok, data, max_length=seq_len)
    batch_list = [
        {k: v.to(device) for k, v in collate(encoded[i : i + batch_size], tok.pad_token_id).items()}
        for i in range(0, len(encoded), batch_size)
    ]
    shape = list(batch_list[0]["input_ids"].shape)
    answer_tokens = int((batch_list[0]["labels"][:, 1:] != -100).sum()) // batch_size
    weights = sum(p.numel() * p.element_size() for p in model.parameters())
    weights += sum(b.numel() * b.element_size() for b in model.buffers())

    def attribution():
        return tn.attribute(
            model, tok, data, batch_size=batch_size, max_length=seq_len, progress=False
        )

    def train_step():
        for batch in batch_list:
            model.zero_grad(set_to_none=True)
            model(**batch).loss.backward()
        synchronize(device)

    def forward():
        with torch.no_grad():
            for batch in batch_list:
                model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
        synchronize(device)

    methods = {
        "attribution": lambda: (attribution(), synchronize(device)),
        "train_step": train_step,
        "forward": forward,
    }
    peak = {}
    for name, fn in methods.items():  # warm-up, and each method's peak memory
        _, peak[name] = measure_peak(fn, device)
        model.zero_grad(set_to_none=True)
    times = {name: [] for name in methods}
    for _ in range(repeats):
        for name, fn in methods.items():
            times[name].append(timed(fn))
        model.zero_grad(set_to_none=True)
    median = {name: statistics.median(values) for name, values in times.items()}
    if cuda:
        torch.cuda.empty_cache()

    rel = attribution()
    neurons = rel.top_k(0.10)
    site = tn.ffn_sites(model)[0]
    chosen = neurons.indices[site.name]
    outside = int(next(i for i in range(site.n_neurons) if i not in set(chosen.tolist())))
    before_out, before_in = site.read([outside]).clone(), site.read(chosen[:1]).clone()
    history, peak["finetune_neurons"] = measure_peak(
        lambda: tn.finetune(
            model,
            tok,
            data,
            neurons=neurons,
            steps=finetune_steps,
            batch_size=batch_size,
            lr=1e-3,
            max_length=seq_len,
            progress=False,
        ),
        device,
    )
    estimate = {
        method: estimate_memory(
            model,
            batch_size,
            shape[1],
            method,
            answer_len=answer_tokens,
            padding=False,
            device=device,
        )
        for method in ("attribution", "neurons")
    }
    measured = {
        "attribution": weights + peak["attribution"],
        "neurons": weights + peak["finetune_neurons"],
    }
    tokens = batch_size * shape[1] * len(batch_list)
    return {
        "device": torch.cuda.get_device_name()
        if cuda
        else f"cpu ({platform.processor() or platform.machine()})",
        "cuda": cuda,
        "torch": torch.__version__,
        "model": "Llama-2-7b shapes, random weights" if cuda else "tiny Llama (random)",
        "dtype": str(dtype).replace("torch.", ""),
        "parameters": sum(p.numel() for p in model.parameters()),
        "build_seconds": round(built, 2),
        "batches": [shape] * len(batch_list),
        "answer_tokens_per_example": answer_tokens,
        "seconds_median": {k: round(v, 4) for k, v in median.items()},
        "tokens_per_second": {k: round(tokens / v, 1) for k, v in median.items()},
        "attribution_over_train_step": round(median["attribution"] / median["train_step"], 3),
        "attribution_over_forward": round(median["attribution"] / median["forward"], 3),
        "weights_bytes": weights,
        "peak_bytes_above_weights": peak,
        "peak_bytes": measured,
        "estimated_peak_bytes": {k: e.peak for k, e in estimate.items()},
        "estimate_over_measured": {k: round(estimate[k].peak / measured[k], 3) for k in measured},
        "finetune": {
            "steps": finetune_steps,
            "step_seconds_median": round(float(history["seconds"].median()), 4),
            "loss_first_last": [
                round(float(history["loss"].iloc[0]), 4),
                round(float(history["loss"].iloc[-1]), 4),
            ],
            "neurons_selected": len(neurons),
            "neurons_total": sum(neurons.sizes.values()),
            "trainable_parameters": int(history.attrs["trainable_parameters"]),
            "optimizer_state_bytes": int(history.attrs["optimizer_state_bytes"]),
            "unselected_row_unchanged": bool(torch.equal(site.read([outside]), before_out)),
            "selected_row_changed": not bool(torch.equal(site.read(chosen[:1]), before_in)),
        },
        "replicate": replicate_check(model, tok, device, weights),
        "wall_seconds": round(time.perf_counter() - started, 1),
    }


def replicate_check(model, tok, device: str, weights: int) -> dict:
    """The replicate plan of every part on ``model`` (paper profile, smoke sizes, the fixture
    hub files), then the part ``table1`` with its unit ``deact_base_k10`` alone: measured wall
    seconds and peak bytes (weights included) against the plan's estimate for that part."""
    settings = settings_for("paper", preset="smoke", data_dir=str(FIXTURES))
    printed: list[str] = []
    plan = replicate(None, settings, base=(model, tok), plan_only=True, echo=printed.append)
    one = settings.replace(units=(("table1", ("deact_base_k10",)),))
    with tempfile.TemporaryDirectory() as folder:
        started = time.perf_counter()
        result, peak = measure_peak(
            lambda: replicate(
                Path(folder) / "run", one, ["table1"], base=(model, tok), echo=printed.append
            ),
            device,
        )
        wall = time.perf_counter() - started
    estimate = next(p for p in result["plan"] if p.part == "table1")
    return {
        "plan": {
            p.part: {"peak_bytes_per_device": p.peak[1], "seconds": round(p.seconds or 0, 1)}
            for p in plan["plan"]
        },
        "plan_text": printed[0],
        "part": "table1 (deact_base_k10)",
        "ran": result["ran"],
        "measured_seconds": round(wall, 1),
        "estimated_seconds": round(estimate.seconds or 0, 1),
        "measured_peak_bytes": weights + peak,
        "estimated_peak_bytes": estimate.peak[1],
        "estimate_over_measured_memory": round(estimate.peak[1] / (weights + peak), 3),
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--tiny",
        action="store_true",
        help="a tiny config on the CPU (the default when CUDA is not available)",
    )
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--seq-len", type=int)
    parser.add_argument(
        "--answer-len", type=int, help="scored tokens an example (default 16; tiny 8)"
    )
    parser.add_argument("--batches", type=int)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--finetune-steps", type=int, default=3)
    parser.add_argument("--out")
    args = parser.parse_args(argv)
    tiny = args.tiny or not torch.cuda.is_available()
    result = run(
        tiny,
        batch_size=args.batch_size or (2 if tiny else 4),
        seq_len=args.seq_len or (48 if tiny else 512),
        answer_len=args.answer_len or (8 if tiny else 16),
        batches=args.batches or (2 if tiny else 4),
        repeats=args.repeats,
        finetune_steps=args.finetune_steps,
    )
    emit(result, args.out)
    return result


if __name__ == "__main__":
    main()
