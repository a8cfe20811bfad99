"""The log-likelihood of every label option of a classification example, in nats, summed over
the option's answer tokens (``tasks.answer_ids``: the label's tokens plus the end marker);
``evaluation.evaluate`` ranks the options by it.

Two paths compute the log-likelihoods, with the same values up to float rounding
(``option_log_likelihoods(share_prefix=...)``):

- plain: one right-padded sequence per (prompt, option) pair, batched; it needs nothing but
  ``model.base_model(input_ids=..., attention_mask=...)``.
- shared prefix (the default, and the fast one): work is shared along the token prefix tree, in
  batches of examples, through a ``transformers.DynamicCache`` passed to the forward with explicit
  ``position_ids``:

      shared prefix (system prompt + instruction, same for the batch) -> run once
        per-example rest of the prompt (left-padded)                  -> once per example
          each label option (right-padded)                            -> once per (example, option)

  so each prompt token is computed once however many options there are (exact: a causal model's
  states at a position depend on the tokens before it only). Models whose forward does not take
  a cache fall back to the plain path.

Either way the LM head runs on the option positions only (``loss.lm_head_logits``).
"""

from __future__ import annotations

import dataclasses
import logging

import torch
from tqdm.auto import tqdm
from transformers import DynamicCache
from transformers.modeling_outputs import BaseModelOutputWithPast

from .generation import inference
from .loss import batch_examples, lm_head_logits
from ..core.placement import input_device
from ..tasks import Encoded, Example, Split, answer_ids, collate, encode

__all__ = ["option_log_likelihoods"]

logger = logging.getLogger(__name__)


def option_log_likelihoods(
    model,
    tok,
    split: Split,
    *,
    batch_size: int = 16,
    max_length: int = 512,
    progress: bool = False,
    share_prefix: bool | str = True,
) -> dict:
    """Summed log-likelihood of every label option of every example of a classification split.

    Args:
        share_prefix: compute each prompt once for all its options through a key/value cache
            (``transformers.DynamicCache``; the fast path, see the module docstring). Models
            whose forward does not take a cache are detected on the first batch and scored by
            the plain path instead (logged at INFO). ``False``: always the plain path, one
            right-padded (prompt + option) sequence per pair, which needs nothing but
            ``model.base_model(input_ids=..., attention_mask=...)``. ``"prompt"``: the cache
            path without its first step, so that every forward row belongs to one example
            (``loss.BATCH_EXAMPLES``). All give the same values up to float rounding.

    Returns:
        {"log_likelihoods": float64 (N, K) tensor, nats, summed over the option's answer tokens
        (end marker included); "n_tokens": long (K,) answer tokens per option; "labels": the K
        options in task order; "path": "shared_prefix" or "plain", the path that scored the
        split}.
    """
    task = split.task
    if task is None or task.category != "classification" or not task.labels:
        raise ValueError(f"{split!r} is not a split of a classification task with labels")
    labels = task.labels
    options = [answer_ids(tok, label) for label in labels]
    # One prompt per example, shared by all its options: truncate the input so that the longest
    # option still fits (encode's policy, one warning per call).
    longest = max(labels, key=lambda label: len(answer_ids(tok, label)))
    prompts = [
        e.input_ids[: e.answer_start]
        for e in encode(
            tok,
            Split([Example(ex.input, longest) for ex in split], task, split.name),
            max_length=max_length,
        )
    ]

    device = input_device(model)
    if share_prefix not in (True, False, "prompt"):
        raise ValueError(f"share_prefix must be True, False or 'prompt', got {share_prefix!r}")
    path = "shared_prefix" if share_prefix else "plain"
    scores = torch.empty(len(prompts), len(labels), dtype=torch.float64)
    # Similar lengths in a batch waste less padding; results go back to their own rows.
    order = sorted(range(len(prompts)), key=lambda i: -len(prompts[i]))
    starts = range(0, len(order), batch_size)
    with inference(model):
        for start in tqdm(starts, desc=f"eval {task.name}/{split.name}", disable=not progress):
            rows = order[start : start + batch_size]
            batch = [prompts[i] for i in rows]
            scored = None
            with batch_examples(rows):
                if path == "shared_prefix":
                    scored = _score_shared_prefix(
                        model, batch, options, tok.pad_token_id, device, across=share_prefix is True
                    )
                    if scored is None:
                        logger.info(
                            "%s does not take a key/value cache in its forward; scoring "
                            "the options of %s/%s without prefix sharing",
                            type(model).__name__,
                            task.name,
                            split.name,
                        )
                        path = "plain"
                if scored is None:
                    scored = _score_plain(model, batch, options, tok.pad_token_id, device)
            scores[rows] = scored.double().cpu()
    return {
        "log_likelihoods": scores,
        "n_tokens": torch.tensor([len(o) for o in options], dtype=torch.long),
        "labels": labels,
        "path": path,
    }


def _score_plain(
    model, prompts: list[list[int]], options: list[list[int]], pad_id: int, device
) -> torch.Tensor:
    """(B, K) summed log-probabilities of each option after each prompt: one right-padded
    sequence per (prompt, option) pair, rows in example-major order, default positions."""
    pairs = collate([Encoded(p + o, len(p)) for p in prompts for o in options], pad_id, "right")
    hidden = model.base_model(
        input_ids=pairs["input_ids"].to(device),
        attention_mask=pairs["attention_mask"].to(device),
        use_cache=False,
    ).last_hidden_state  # (B*K, T, d)
    labels = pairs["labels"].to(hidden.device)  # a device_map may end on another device
    predicts = labels[:, 1:] != -100  # the state at t predicts the option token at t + 1
    totals = _summed_log_probs(
        model,
        hidden[:, :-1][predicts],
        labels[:, 1:][predicts],
        predicts.nonzero()[:, 0],
        len(prompts) * len(options),
    )
    return totals.view(len(prompts), len(options))


def _cache_keyword() -> str:
    """The forward argument that takes a ``transformers.Cache``: ``cache`` since transformers
    5 renamed it (the old name is deprecated there), ``past_key_values`` before. Read off the
    public output class, whose field is named like the argument."""
    fields = {field.name for field in dataclasses.fields(BaseModelOutputWithPast)}
    return "cache" if "cache" in fields else "past_key_values"


def _score_shared_prefix(
    model,
    prompts: list[list[int]],
    options: list[list[int]],
    pad_id: int,
    device,
    across: bool = True,
) -> torch.Tensor | None:
    """(B, K) summed log-probabilities of each option after each prompt, via the prefix tree,
    with a ``transformers.DynamicCache`` and explicit ``position_ids``. None when the model's
    forward does not take the cache (it raises TypeError, or leaves the cache empty).
    ``across=False`` skips step 1: nothing is shared between the prompts."""
    n_examples, n_options = len(prompts), len(options)
    body = model.base_model
    cache = DynamicCache()
    cache_arg = {_cache_keyword(): cache}

    def run(input_ids, attention_mask, positions):
        return body(
            input_ids=input_ids,
            attention_mask=attention_mask,
            position_ids=positions,
            use_cache=True,
            **cache_arg,
        ).last_hidden_state  # (B, T, d)

    def first_run(input_ids, attention_mask, positions):
        """``run``, or None when the model does not fill the cache it was given."""
        try:
            hidden = run(input_ids, attention_mask, positions)
        except TypeError:  # an unexpected keyword argument
            return None
        return hidden if cache.get_seq_length() == input_ids.shape[1] else None

    # 1. The prefix every prompt of the batch shares (leave >= 1 token per prompt for step 2,
    #    whose last hidden state predicts the first option token).
    shared = _common_prefix_length(prompts, limit=min(len(p) for p in prompts) - 1) if across else 0
    mask = torch.ones(1, shared, dtype=torch.long, device=device)
    if shared:
        prefix = torch.tensor([prompts[0][:shared]], device=device)
        if first_run(prefix, mask, torch.arange(shared, device=device)[None]) is None:
            return None
        cache.batch_repeat_interleave(n_examples)
    mask = mask.expand(n_examples, shared)

    # 2. The rest of each prompt, left-padded so that every prompt ends at the same column.
    rest = collate([Encoded(p[shared:], len(p) - shared) for p in prompts], pad_id, "left")
    rest_ids = rest["input_ids"].to(device)
    mask = torch.cat([mask, rest["attention_mask"].to(device)], dim=1)  # (B, S + R)
    positions = (mask.cumsum(1) - 1).clamp(min=0)  # real tokens count 0, 1, 2, ... past padding
    hidden = (run if shared else first_run)(rest_ids, mask, positions[:, shared:])
    if hidden is None:
        return None
    last = hidden[:, -1]  # (B, d): predicts each option's first token

    # 3. Every option after every prompt: rows (b, k) in example-major order.
    cache.batch_repeat_interleave(n_options)
    opts = collate([Encoded(o, 0) for o in options], pad_id, "right")
    opt_ids = opts["input_ids"].to(device).repeat(n_examples, 1)  # (B*K, O)
    opt_mask = opts["attention_mask"].to(device).repeat(n_examples, 1)
    full_mask = torch.cat([mask.repeat_interleave(n_options, 0), opt_mask], dim=1)
    opt_positions = (
        positions[:, -1:].repeat_interleave(n_options, 0)
        + 1
        + torch.arange(opt_ids.shape[1], device=device)
    )
    opt_hidden = run(opt_ids, full_mask, opt_positions)

    # The hidden state before option token j predicts it: the prompt's last state for j = 0,
    # option state j - 1 after that. The LM head runs on real option tokens only.
    before = torch.cat([last.repeat_interleave(n_options, 0)[:, None], opt_hidden[:, :-1]], dim=1)
    real = opt_mask.bool().to(before.device)  # a device_map may end on another device
    totals = _summed_log_probs(
        model,
        before[real],
        opt_ids.to(before.device)[real],
        real.nonzero()[:, 0],
        n_examples * n_options,
    )
    return totals.view(n_examples, n_options)


def _summed_log_probs(
    model, hidden: torch.Tensor, targets: torch.Tensor, row_of: torch.Tensor, n_rows: int
) -> torch.Tensor:
    """Sum over tokens, per row, of log p(target | hidden state): hidden (N, d), targets (N,),
    row_of (N,) the row of each token; returns (n_rows,) float32 on the LM head's device. The
    LM head runs on these N states only."""
    logits = lm_head_logits(model, hidden)  # (N, V)
    targets, row_of = targets.to(logits.device), row_of.to(logits.device)
    token_lp = torch.log_softmax(logits.float(), dim=-1).gather(1, targets[:, None])[:, 0]
    return torch.zeros(n_rows, device=token_lp.device).index_add(0, row_of, token_lp)


def _common_prefix_length(sequences: list[list[int]], limit: int) -> int:
    first = sequences[0]
    n = 0
    while n < limit and all(seq[n] == first[n] for seq in sequences):
        n += 1
    return n
