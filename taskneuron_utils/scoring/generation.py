"""Generation: batched greedy decoding, scored by exact match and ROUGE-L (``tn.evaluate``'s
generation half; ``generate_answers`` is also what the playground and conditions use).

Prompts are left-padded so that the new tokens line up, decoding stops at the end marker; the
prediction is the decoded new text, stripped. Exact match compares after lower-casing and
collapsing whitespace; ROUGE-L is the F-measure of ``rouge_score``'s "rougeL" (no stemming).
"""

from __future__ import annotations

import contextlib

import numpy as np
import torch
from tqdm.auto import tqdm

from .loss import answer_nlls, batch_examples
from ..core.placement import input_device
from ..tasks import Encoded, collate, encode, end_marker_id


@contextlib.contextmanager
def inference(model):
    """Eval mode and no autograd; the model's training flag is restored afterwards."""
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            yield
    finally:
        model.train(was_training)


def evaluate_generation(
    model, tok, split, batch_size, max_new_tokens, max_length, progress
) -> dict:
    """``tn.evaluate`` on a generation split: {"nll", "exact_match", "rouge_l", "predictions",
    "examples"} (see ``evaluate``)."""
    from rouge_score import rouge_scorer

    encoded = encode(tok, split, max_length=max_length)
    if max_new_tokens is None:
        max_new_tokens = max(e.n_answer for e in encoded) + 8
    predictions = generate_answers(
        model,
        tok,
        [e.input_ids[: e.answer_start] for e in encoded],
        max_new_tokens=max_new_tokens,
        batch_size=batch_size,
        progress=progress,
        desc=f"eval {split.task.name}/{split.name}",
    )
    references = [ex.output for ex in split]
    scorer = rouge_scorer.RougeScorer(["rougeL"])
    rouge = [
        scorer.score(ref, pred)["rougeL"].fmeasure for ref, pred in zip(references, predictions)
    ]
    exact = [_normalise(ref) == _normalise(pred) for ref, pred in zip(references, predictions)]
    nll_sum, n_tokens = answer_nlls(model, tok, encoded, batch_size=batch_size)
    per_metric = {
        "exact_match": np.array(exact, dtype=np.float64),
        "rouge_l": np.array(rouge, dtype=np.float64),
    }
    score = per_metric[split.task.metric]
    # Nothing to length-normalise in a generated answer: the normalised scores are the metric.
    examples = {
        "score": score,
        "score_norm": score,
        "score_per_token": score,
        "nll_sum": nll_sum.numpy(),
        "n_tokens": n_tokens.numpy(),
    }
    return {
        "nll": float(nll_sum.sum() / n_tokens.sum()),
        "exact_match": sum(exact) / len(exact),
        "rouge_l": sum(rouge) / len(rouge),
        "predictions": predictions,
        "examples": examples,
    }


def _normalise(text: str) -> str:
    return " ".join(text.lower().split())


def generate_answers(
    model,
    tok,
    prompts: list[list[int]],
    *,
    max_new_tokens: int,
    batch_size: int = 16,
    progress: bool = False,
    desc: str = "generate",
) -> list[str]:
    """Greedy continuations of tokenized prompts (e.g. ``tasks.prompt_ids``), decoded (special
    tokens dropped) and stripped; each stops at the end marker or eos, or after
    ``max_new_tokens``. Batched with left padding (every prompt ends at the same column, so
    the new tokens line up); results keep the order of ``prompts``."""
    device = input_device(model)
    stop = sorted({t for t in (end_marker_id(tok), tok.eos_token_id) if t is not None})
    outputs: list[str | None] = [None] * len(prompts)
    order = sorted(range(len(prompts)), key=lambda i: -len(prompts[i]))
    starts = range(0, len(order), batch_size)
    with inference(model):
        for start in tqdm(starts, desc=desc, disable=not progress):
            rows = order[start : start + batch_size]
            batch = collate(
                [Encoded(prompts[i], len(prompts[i])) for i in rows], tok.pad_token_id, "left"
            )
            with batch_examples(rows):
                generated = model.generate(
                    input_ids=batch["input_ids"].to(device),
                    attention_mask=batch["attention_mask"].to(device),
                    do_sample=False,
                    max_new_tokens=max_new_tokens,
                    pad_token_id=tok.pad_token_id,
                    eos_token_id=stop or None,
                    temperature=None,
                    top_p=None,
                    top_k=None,
                )
            new = generated[:, batch["input_ids"].shape[1] :].cpu()  # (b, new tokens)
            for row, ids in zip(rows, new):
                outputs[row] = tok.decode(ids, skip_special_tokens=True).strip()
    return outputs
