"""The contrastive metric of minimal pairs: the logit difference between two answers.

For an original prompt with answer ``A`` and its minimal-pair alternative (``Task.pairs``) with
answer ``B``, the logit difference is

    LD = logit(A_1) - logit(B_1)                       (nats of log-odds, unnormalised logits)

read from the model's logits after the last prompt token of the ORIGINAL prompt (the position
whose next-token prediction is the first answer token); ``A_1`` and ``B_1`` are the first answer
tokens of the original and of the alternative, which must differ. Only the first answer token
enters, so the two answers may differ in length. Positive LD: the model prefers the original's
answer. Han et al. (2026) attribute ``-LD`` (``tn.attribute(..., metric="logit_diff")``).

``logit_difference`` is the batch-level function (a collated batch, with gradients when asked
for); ``logit_differences`` scores a whole split against its alternatives, a plain forward pass
in eval mode, so it measures the model as it stands, interventions such as ``tn.deactivate``
included.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from tqdm.auto import tqdm

from ..core.placement import input_device
from ..errors import AnswerMaskError
from ..tasks import Encoded, Split, check_pairs, collate, to_device
from .loss import batch_examples, lm_head_logits

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase


def logit_difference(model, batch: dict[str, torch.Tensor], foil: torch.Tensor) -> torch.Tensor:
    """Per-example ``LD = logit(A_1) - logit(B_1)``, (B,) float32 (float64 for a float64
    model), on the batch's device, still attached to the autograd graph when gradients are on.

    Args:
        batch: a collated batch (``tasks.collate``, right padding): ``labels`` marks the answer
            tokens; each row's first answer token is ``A_1``, read from the logits at the
            position before it (the last prompt token). Tokens after it change nothing (the
            model is causal), so a row may hold the whole answer or its first token only.
        foil: long (B,): ``B_1``, the alternative's first answer token of each row.
    """
    hidden = model.base_model(
        input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], use_cache=False
    ).last_hidden_state  # (B, T, d)
    labels = batch["labels"].to(hidden.device)
    is_answer = labels != -100
    if not is_answer.any(dim=1).all():
        raise AnswerMaskError(
            "an example has no answer token left to score (all masked); check that its "
            "output is non-empty and that max_length leaves room for the answer"
        )
    first = is_answer.int().argmax(dim=1)  # (B,) position of A_1
    rows = torch.arange(len(labels), device=hidden.device)
    logits = lm_head_logits(model, hidden[rows, first - 1])  # (B, V) after the prompt
    logits = logits.to(torch.promote_types(logits.dtype, torch.float32))  # half -> float32
    target = labels[rows, first].unsqueeze(1)
    other = foil.to(logits.device).unsqueeze(1)
    difference = logits.gather(1, target) - logits.gather(1, other)
    return difference.squeeze(1).to(batch["labels"].device)


def first_tokens(encoded: list[Encoded]) -> torch.Tensor:
    """long (n,): each encoded example's first answer token (``input_ids[answer_start]``)."""
    return torch.tensor([e.input_ids[e.answer_start] for e in encoded], dtype=torch.long)


def logit_differences(
    model,
    tok: PreTrainedTokenizerBase,
    data: Split,
    alt: Split,
    *,
    batch_size: int = 8,
    max_length: int = 512,
    progress: bool = False,
) -> torch.Tensor:
    """The logit difference of every minimal pair: float64 (n_examples,), in order.

    ``LD_i = logit(A_1) - logit(B_1)`` after the last token of ``data[i]``'s prompt, ``A_1`` /
    ``B_1`` the first answer tokens of ``data[i]`` and ``alt[i]``. One forward pass per batch
    over each original prompt and its first answer token (nothing of the alternative runs: only
    its first answer token is read), in eval mode without gradients, through whatever hooks the
    model carries (``with tn.deactivate(model, ns): tn.logit_differences(...)`` measures the
    ablated model).

    Args:
        data: the originals (``task.train[:64]``); alt: their alternatives, aligned one to one
            (``task.pairs("train")``, ``data.pairs()`` for a slice or sample).
        batch_size: examples per forward pass. max_length: as in ``tasks.encode``.
        progress: show a tqdm bar over the batches.

    Raises:
        TaskDataError: the splits are not aligned (different lengths), an alternative equals
            its original, two prompts differ in token length, or two first answer tokens
            coincide: one line naming the first such example (``tasks.check_pairs``), before
            any forward pass.
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    encoded, encoded_alt = check_pairs(tok, data, alt, max_length=max_length)
    # The prompt and A_1 only: later answer tokens cannot change the logits before them.
    prefixes = [Encoded(e.input_ids[: e.answer_start + 1], e.answer_start) for e in encoded]
    foils = first_tokens(encoded_alt)
    device = input_device(model)
    values = []
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            starts = range(0, len(prefixes), batch_size)
            for start in tqdm(starts, desc="logit differences", disable=not progress):
                batch = to_device(
                    collate(prefixes[start : start + batch_size], tok.pad_token_id), device
                )
                with batch_examples(range(start, start + len(batch["input_ids"]))):
                    difference = logit_difference(model, batch, foils[start : start + batch_size])
                values.append(difference.double().cpu())
    finally:
        model.train(was_training)
    return torch.cat(values) if values else torch.zeros(0, dtype=torch.float64)
