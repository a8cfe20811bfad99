"""The loss every part of the toolkit agrees on: causal-LM loss on the answer tokens only.

Attribution differentiates it, fine-tuning minimises it, evaluation reports it as NLL. The LM
head runs on answer positions only, which saves most of its cost (the vocabulary is large and
the answers are short).
"""

from __future__ import annotations

import contextlib
from contextvars import ContextVar

import torch
import torch.nn.functional as F

from ..core.layout import FAMILIES
from ..core.placement import input_device
from ..tasks import collate, to_device
from ..errors import AnswerMaskError


def answer_losses(model, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, int]:
    """Per-example answer loss (mean NLL in nats over answer tokens), shape (B,), on the
    batch's device, and the number of answer tokens. The LM head is applied to answer positions
    only.

    ``batch`` is a collated batch (input_ids, attention_mask, labels with -100 off-answer).
    """
    hidden = model.base_model(
        input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], use_cache=False
    ).last_hidden_state  # (B, T, d)
    # Under a device_map the last layers and the LM head may run on other devices than the
    # batch: the loss is computed beside the hidden states, and returned on the batch's device.
    labels = batch["labels"].to(hidden.device)
    # The logits at position t predict token t + 1, hence the shift.
    predicts_answer = torch.zeros_like(labels, dtype=torch.bool)
    predicts_answer[:, :-1] = labels[:, 1:] != -100
    example_of = predicts_answer.nonzero()[:, 0]  # (N,)
    logits = lm_head_logits(model, hidden[predicts_answer])  # (N, V)
    targets = labels[:, 1:][predicts_answer[:, :-1]]
    nll = F.cross_entropy(logits.float(), targets.to(logits.device), reduction="none")  # (N,)
    nll = nll.to(hidden.device)
    batch_size = labels.shape[0]
    counts = torch.bincount(example_of, minlength=batch_size)
    if (counts == 0).any():
        raise AnswerMaskError(
            "an example has no answer tokens left to score (all masked); check that its "
            "output is non-empty and that max_length leaves room for the answer"
        )
    totals = torch.zeros(batch_size, device=nll.device).index_add(0, example_of, nll)
    return (totals / counts).to(batch["labels"].device), int(counts.sum())


def answer_nll(model, tok, encoded, *, batch_size: int = 16) -> float:
    """Nats per answer token over all answer tokens of ``encoded`` (a list of ``tasks.Encoded``),
    teacher-forced, in eval mode without gradients: the ``nll`` that ``tn.evaluate`` reports and
    the ``dev_nll`` of a training history (``answer_nlls`` summed: total nats / total tokens)."""
    nll_sum, n_tokens = answer_nlls(model, tok, encoded, batch_size=batch_size)
    return float(nll_sum.sum() / n_tokens.sum())


# The examples of the forward pass in progress: their indices in what is being scored, one per
# batch row, in row order (in evaluation's plain classification path an example's K options are
# K consecutive model rows). Set by ``answer_nlls`` and by ``evaluation``'s classification and
# generation loops, so that an intervention can differ per example (W-NCFT mixes its neurons
# per input). None outside those loops. The default shared-prefix path runs the batch's common
# prefix once (one row), so per-example interventions need ``share_prefix="prompt"`` (or False).
BATCH_EXAMPLES: ContextVar[list[int] | None] = ContextVar("batch_examples", default=None)


@contextlib.contextmanager
def batch_examples(indices):
    """Within the block, ``BATCH_EXAMPLES.get()`` is ``list(indices)``."""
    token = BATCH_EXAMPLES.set(list(indices))
    try:
        yield
    finally:
        BATCH_EXAMPLES.reset(token)


def answer_nlls(model, tok, encoded, *, batch_size: int = 16) -> tuple[torch.Tensor, torch.Tensor]:
    """Per example of ``encoded``, in order: the answer NLL summed over its answer tokens
    (float64 (N,), nats) and its number of answer tokens (long (N,)); teacher-forced, in eval
    mode without gradients. Their sums' ratio is ``answer_nll``."""
    device = input_device(model)
    sums, counts = [], []
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            for start in range(0, len(encoded), batch_size):
                batch = collate(encoded[start : start + batch_size], tok.pad_token_id)
                batch = to_device(batch, device)
                with batch_examples(range(start, start + len(batch["input_ids"]))):
                    per_example, _ = answer_losses(model, batch)  # (b,) mean over answer tokens
                n_answer = (batch["labels"] != -100).sum(1)  # tokens scored, per example
                sums.append((per_example.double() * n_answer).cpu())
                counts.append(n_answer.cpu())
    finally:
        model.train(was_training)
    return torch.cat(sums), torch.cat(counts)


def lm_head_logits(model, hidden: torch.Tensor) -> torch.Tensor:
    """Logits (..., V) from final hidden states (..., d), as the model's own forward makes them,
    including a final logit soft-cap where the family has one (``Family.logit_softcap``)."""
    logits = model.get_output_embeddings()(hidden)
    cap = logit_softcap(model)
    if cap:
        logits = torch.tanh(logits / cap) * cap
    return logits


def logit_softcap(model) -> float | None:
    model_type = getattr(model.config, "model_type", None)
    for family in FAMILIES.values():
        if model_type in family.model_types and family.logit_softcap:
            return getattr(model.config, family.logit_softcap, None)
    return None
