"""The loss a gradient method differentiates (``metric=``): the answer NLL (default) or minus
the logit difference of minimal pairs (Han et al. 2026's contrastive recipe).

- ``"nll"``: ``L`` = the example's mean answer-token NLL (``scoring.loss.answer_losses``).
  Bit for bit the loss every method had before metrics existed.
- ``"logit_diff"``: ``L = -LD``, ``LD = logit(A_1) - logit(B_1)`` after the original's last
  prompt token (``scoring.contrast``), ``A_1`` / ``B_1`` the first answer tokens of the
  original and of its minimal-pair alternative. The alternatives come from a paired baseline
  (``baseline=task.pairs(split)``: their activations are then ``a'``) or, for a method with
  another baseline, from ``pairs=``. Pairs are checked before any work (``tasks.check_pairs``:
  aligned splits, equal prompt token lengths, different first answer tokens; one-line
  ``TaskDataError`` naming the example).

Positions under ``"logit_diff"``: the passes run on prompt + answer as under NLL (the loop is
the same), and every sum over positions ``t`` runs over the prompt tokens only; nothing after
the last prompt token can change ``LD`` (the model is causal), so its gradient there is zero
anyway, and the mask makes ``(a - a')`` at answer positions, where a pair's answers may differ,
irrelevant. A paired baseline's activations are taken from the alternative's prompt followed by
the ORIGINAL's answer tokens, so both passes have the same shape whatever the answers' lengths;
at prompt positions they are the alternative's own activations (causality again).
"""

from __future__ import annotations

import torch

from ..hooks.baselines import ActivationStats
from ..scoring.contrast import first_tokens, logit_difference
from ..scoring.loss import answer_losses
from ..tasks import Encoded, check_pairs
from .state import hash_encoded

METRICS = ("nll", "logit_diff")
LOSS_TEXT = {
    "nll": ", L = mean answer-token NLL",
    "logit_diff": ", L = -(logit(A_1) - logit(B_1)) after the original's prompt, B_1 the "
    "first answer token of its minimal-pair alternative; sums over prompt positions",
}


class Metric:
    """The loss of one attribution run. ``name``: one of ``METRICS``."""

    def __init__(self, name: str = "nll", pairs=None):
        if name not in METRICS:
            raise ValueError(f"metric must be one of {METRICS}, got {name!r}")
        if pairs is not None and name != "logit_diff":
            raise ValueError(
                "pairs= gives the minimal-pair alternatives of metric='logit_diff'; "
                f"metric={name!r} takes none"
            )
        self.name, self.pairs = name, pairs
        self.foils: torch.Tensor | None = None  # long (n,): B_1 of every example
        self.loss_text = LOSS_TEXT[name]

    def bind(self, method, tok, data, encoded, max_length: int) -> tuple[list | None, dict]:
        """Check the alternatives against ``data`` (``logit_diff``) and keep their first answer
        tokens. Returns the paired baseline's encoded prompts (each alternative's prompt + its
        original's answer) when the baseline is the alternatives, else None; and the settings
        to record (none under NLL). No forward pass."""
        if self.name == "nll":
            return None, {}
        paired = _is_split(method.baseline)
        if paired and self.pairs is not None:
            raise ValueError(
                "pass the minimal-pair alternatives once: as baseline= (their activations "
                "are a') or as pairs= (their answers only), not both"
            )
        alternatives = method.baseline if paired else self.pairs
        if alternatives is None:
            where = (
                "baseline=task.pairs(split) (their activations as a') or pairs=task.pairs(split)"
                if method.takes_baseline
                else "pairs=task.pairs(split), or use method='attribution_patching' with "
                "baseline=task.pairs(split) (the contrastive recipe)"
            )
            raise ValueError(
                f"metric='logit_diff' needs the minimal-pair alternatives of the data "
                f"(their first answer tokens B_1): pass {where}"
            )
        _, encoded_alt = check_pairs(tok, data, alternatives, max_length=max_length)
        self.foils = first_tokens(encoded_alt)
        if not paired:
            return None, {"metric": self.name, "pairs": hash_encoded(encoded_alt)}
        spliced = [
            Encoded(f.input_ids[: f.answer_start] + e.input_ids[e.answer_start :], e.answer_start)
            for e, f in zip(encoded, encoded_alt)
        ]
        return spliced, {"metric": self.name}

    def losses(self, model, rows: dict, start: int, size: int) -> tuple[torch.Tensor, int]:
        """Per-row loss (len(rows),) and the answer tokens it scores, for ``rows``: a collated
        batch of ``size`` examples from ``start``, or ``k`` copies of it stacked copy by copy
        (row ``i * size + b``), as integrated gradients and ablation stack them."""
        if self.name == "nll":
            return answer_losses(model, rows)
        assert self.foils is not None  # bound
        copies = len(rows["input_ids"]) // size
        foil = self.foils[start : start + size].repeat(copies)
        return -logit_difference(model, rows, foil), len(rows["input_ids"])

    def count(self, batch: dict) -> int:
        """Answer tokens a batch's loss scores (NLL: every answer token; LD: one an example)."""
        if self.name == "nll":
            return int((batch["labels"][:, 1:] != -100).sum())
        return len(batch["input_ids"])

    def prompt_mask(self, batch: dict) -> torch.Tensor | None:
        """(B, T, 1) float: 1 at prompt positions, where ``logit_diff``'s sums run; None under
        NLL (every position counts)."""
        if self.name == "nll":
            return None
        labels = batch["labels"]
        first = (labels != -100).int().argmax(dim=1, keepdim=True)  # (B, 1) position of A_1
        positions = torch.arange(labels.shape[1], device=labels.device)
        return (positions < first).unsqueeze(-1).float()


def _is_split(baseline) -> bool:
    """A paired baseline (a split of prompts), not 'zero' / 'mean' / statistics."""
    return baseline is not None and not isinstance(baseline, (str, ActivationStats))
