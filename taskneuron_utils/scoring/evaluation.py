"""Evaluate a model on a task split: the task's metric plus the NLL of the gold answers.

    scores = evaluate(model, tok, suite["sentiment_products"].test)
    scores["score"], scores["nll"], scores["predictions"][:5]

All metric values are fractions in [0, 1] (not percentages). ``nll`` is the mean negative
log-likelihood, in nats per token, of the gold answer tokens (end marker included), averaged over
the answer tokens of all examples: the same loss attribution differentiates and training
minimises.

Classification: every label option of every example is scored by the log-likelihood of its
answer tokens (``tasks.answer_ids``: the label's tokens plus the end marker), summed over them.
The prediction is the best option (the first of equal ones) under one of four rankings, named
as lm-evaluation-harness names them (``SCORINGS``):

- ``"sum"`` -> ``accuracy`` (the harness's ``acc``): the summed log-likelihood; the default.
- ``"norm"`` -> ``accuracy_norm`` (``acc_norm``): the sum divided by the option's length in
  characters; ``"bytes"`` -> ``accuracy_bytes`` (``acc_bytes``): by its length in UTF-8 bytes.
  The option is the text that is scored, the label plus the end marker's text (``option_text``,
  e.g. ``"positive<|im_end|>"``), which is also the choice ``tn.export_lm_eval_task`` writes.
- ``"per_token"`` -> ``accuracy_per_token``: the mean log-likelihood per answer token. It is
  none of the harness's metrics. Records made before 2026-12-03 call it ``accuracy_norm``
  (data/scores.json) and ``score_norm`` (benchmarks/results/replication/, docs/replication.md);
  the experiments' readers take that column under either name.

A summed score favours short labels (every extra token can only lower it); the normalised ones
correct for length. All four come from the same log-likelihoods, so the result always carries
all of them; ``scoring`` picks which one is the ``score`` and which predictions are listed.
The log-likelihoods come from ``option_scoring.py`` (a plain path and a shared-prefix one).

Generation (``generation.py``): greedy decoding, scored by exact match or ROUGE-L.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from .generation import evaluate_generation, generate_answers, inference
from .option_scoring import option_log_likelihoods
from ..tasks import Split, Task, end_marker_id
from ..errors import TaskDataError
from ..core.wrappers import unwrap

if TYPE_CHECKING:
    from torch import nn
    from transformers import PreTrainedTokenizerBase

__all__ = ["SCORINGS", "evaluate", "generate_answers", "option_log_likelihoods", "option_text"]

# scoring -> the accuracy it ranks by (the harness's name in the module docstring).
SCORINGS = {
    "sum": "accuracy",
    "norm": "accuracy_norm",
    "bytes": "accuracy_bytes",
    "per_token": "accuracy_per_token",
}


def evaluate(
    model: nn.Module,
    tok: PreTrainedTokenizerBase,
    split: Split,
    *,
    batch_size: int = 16,
    max_new_tokens: int | None = None,
    max_length: int = 512,
    progress: bool = True,
    share_prefix: bool | str = True,
    scoring: str = "sum",
    per_example: bool = False,
) -> dict:
    """Score ``model`` on ``split`` (a Split of a task; a Task means its test split).

    Args:
        batch_size: examples per forward pass (classification: each with all its options).
        max_new_tokens: generation only; default: the longest tokenized gold answer of the
            split (end marker included) + 8.
        max_length: prompt + answer tokens per example; longer inputs are truncated
            (``tasks.encode``).
        share_prefix: classification only: score the label options through a shared prompt
            prefix (fast; the default), ``"prompt"`` (each prompt once for all its options,
            nothing shared between examples: for interventions that differ per example), or
            ``False``, one plain sequence per (example, option) pair
            (``option_log_likelihoods``). Same results up to float rounding.
        scoring: classification only: ``"sum"`` (default), ``"norm"`` (per character),
            ``"bytes"`` or ``"per_token"`` (module docstring). Every accuracy is reported
            either way; this chooses the ``score`` and the ``predictions``.
        per_example: also return each example's values (``"examples"``, below), from which
            ``score`` and ``nll`` are computed: intervals over examples need them.

    Batches group examples of similar length (less padding); results are in split order and
    do not depend on ``batch_size`` beyond float rounding.

    Returns:
        {"task", "split", "metric", "score" (the task's metric, in [0, 1]), "score_norm" and
        "score_per_token" (accuracy_norm and accuracy_per_token for classification, the score
        for generation), "nll" (nats per gold answer token), "n", "predictions" (list of str)}
        plus, for classification, "accuracy", "accuracy_norm", "accuracy_bytes",
        "accuracy_per_token" and "scoring"; for generation, "exact_match" and "rouge_l". With
        ``per_example``: "examples", {"score", "score_norm", "score_per_token": float64 (N,)
        each example's value (1.0 / 0.0 for accuracy and exact match, the F-measure for
        ROUGE-L), "nll_sum": float64 (N,) nats summed over the example's gold answer tokens,
        "n_tokens": int64 (N,) its answer tokens}, numpy arrays in split order; ``score`` is the
        mean of "score" and ``nll`` is sum("nll_sum") / sum("n_tokens") (up to float rounding).
    """
    if scoring not in SCORINGS:
        raise ValueError(
            f"scoring must be one of {sorted(SCORINGS)} (sum: summed "
            f"log-likelihood; norm / bytes: per character / byte of the option; "
            f"per_token: per answer token), got {scoring!r}"
        )
    model = unwrap(model)  # nnsight / TransformerLens wrappers: the transformers model inside
    if isinstance(split, Task):
        split = split.test
    task = getattr(split, "task", None)
    if task is None:
        raise TypeError(
            "evaluate needs a Split of a Task (e.g. suite['name'].test), which "
            "knows its instruction, category and labels"
        )
    if len(split) == 0:
        raise ValueError(f"cannot evaluate on {split!r}: it has no examples")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be an int >= 1, got {batch_size!r}")
    if task.category == "classification":
        for i, example in enumerate(split):
            if example.output not in task.labels:
                raise TaskDataError(
                    f"{split!r}[{i}]: output {example.output!r} is not one of the task's "
                    f"labels {list(task.labels)}, so it cannot be scored against them"
                )
    with inference(model):
        if task.category == "classification":
            result = _evaluate_classification(
                model, tok, split, batch_size, max_length, progress, share_prefix, scoring
            )
            result["score"] = result[SCORINGS[scoring]]  # a classification metric is accuracy
        else:
            result = evaluate_generation(
                model, tok, split, batch_size, max_new_tokens, max_length, progress
            )
            result["score"] = result[task.metric]
    score = result.pop("score")
    # Generation has no options to rank, so its normalised scores are the score.
    ordered = {
        "task": task.name,
        "split": split.name,
        "metric": task.metric,
        "score": score,
        "score_norm": result.get("accuracy_norm", score),
        "score_per_token": result.get("accuracy_per_token", score),
        "nll": result.pop("nll"),
        "n": len(split),
    }
    examples = result.pop("examples")
    if per_example:
        ordered["examples"] = examples
    return {**ordered, **result}


def option_text(tok, label: str) -> str:
    """The text an option's answer tokens spell: the label plus the end marker's text (e.g.
    ``"positive<|im_end|>"``); its length is what ``accuracy_norm`` divides by."""
    end = end_marker_id(tok)
    return label + (tok.decode([end]) if end is not None else "")


def _evaluate_classification(
    model, tok, split, batch_size, max_length, progress, share_prefix, scoring
) -> dict:
    scored = option_log_likelihoods(
        model,
        tok,
        split,
        batch_size=batch_size,
        max_length=max_length,
        progress=progress,
        share_prefix=share_prefix,
    )
    labels = split.task.labels
    log_lik, n_tokens = scored["log_likelihoods"], scored["n_tokens"]  # (N, K), (K,)
    texts = [option_text(tok, label) for label in labels]
    length = {
        "sum": torch.ones(len(labels), dtype=torch.float64),
        "per_token": n_tokens,
        "norm": torch.tensor([len(t) for t in texts], dtype=torch.float64),
        "bytes": torch.tensor([len(t.encode("utf-8")) for t in texts], dtype=torch.float64),
    }
    gold = torch.tensor([labels.index(ex.output) for ex in split])
    predicted = {way: (log_lik / length[way]).argmax(dim=1) for way in SCORINGS}
    correct = {way: (best == gold).double() for way, best in predicted.items()}
    nll_sum = -log_lik[torch.arange(len(split)), gold]  # (N,) float64, nats
    examples = {
        "score": correct[scoring].numpy(),
        "score_norm": correct["norm"].numpy(),
        "score_per_token": correct["per_token"].numpy(),
        "nll_sum": nll_sum.numpy(),
        "n_tokens": n_tokens[gold].numpy(),
    }
    return {
        "nll": float(nll_sum.sum() / n_tokens[gold].sum()),
        **{SCORINGS[way]: float(c.mean()) for way, c in correct.items()},
        "scoring": scoring,
        "predictions": [labels[i] for i in predicted[scoring].tolist()],
        "examples": examples,
    }
