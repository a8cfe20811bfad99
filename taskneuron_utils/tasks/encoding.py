"""Prompt encoding: the token layout every other module relies on.

Token layout of one example (``encode``)::

    [ prompt tokens ............................ ][ answer tokens ........ ][end]
    format_prompt(tok, instruction, input)          tok(output)               end-of-turn / eos
                                                  ^ answer_start

The prompt and the answer are tokenized separately and concatenated, so the boundary is exact
whatever the tokenizer does at word boundaries. ``labels`` (``collate``) holds the token at
position t for answer positions and -100 elsewhere; as in Hugging Face's own loss, the model's
logits at position t - 1 predict ``labels[:, t]`` (the causal shift happens in the loss).
"""

from __future__ import annotations

import contextlib
import warnings
import weakref
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from .data import Example, Split, to_examples
from ..errors import EncodingError

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase


@dataclass(frozen=True)
class Encoded:
    """One tokenized example: ``input_ids = prompt ids + answer ids`` (answer incl. end marker);
    ``answer_start`` is the index of the first answer token."""

    input_ids: list[int]
    answer_start: int

    @property
    def n_answer(self) -> int:
        """Number of answer tokens (including the end marker)."""
        return len(self.input_ids) - self.answer_start


def has_chat_template(tok) -> bool:
    """Whether ``tok`` formats prompts with a chat template."""
    return bool(getattr(tok, "chat_template", None))


def format_prompt(tok: PreTrainedTokenizerBase, instruction: str, input: str) -> str:
    """The prompt text for one example (the answer follows it directly).

    With a chat template: one user turn holding ``instruction + "\\n\\n" + input`` and the
    generation prompt (the assistant's turn header). Without one: a plain template
    ``"{instruction}\\n\\nInput: {input}\\nAnswer:"`` (the answer then starts with a space, see
    ``answer_ids``). An empty instruction leaves just the input.
    """
    if has_chat_template(tok):
        content = f"{instruction}\n\n{input}" if instruction else input
        return tok.apply_chat_template(
            [{"role": "user", "content": content}], add_generation_prompt=True, tokenize=False
        )
    head = f"{instruction}\n\n" if instruction else ""
    return f"{head}Input: {input}\nAnswer:"


def prompt_ids(tok, instruction: str, input: str) -> list[int]:
    """Token ids of ``format_prompt``. A chat template writes its own special tokens (BOS
    included, when the model uses one), so the tokenizer adds none; the plain template gets the
    tokenizer's usual ones (e.g. Llama-2's BOS)."""
    text = format_prompt(tok, instruction, input)
    return tok(text, add_special_tokens=not has_chat_template(tok)).input_ids


_END_MARKERS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def end_marker_id(tok) -> int | None:
    """The token that ends an answer: the chat template's end-of-turn token (e.g. "<|im_end|>"),
    found by rendering an assistant turn and reading the special token that follows its text;
    without a chat template (or if none follows), ``tok.eos_token_id`` (may be None)."""
    template = getattr(tok, "chat_template", None)
    try:
        cached_template, marker = _END_MARKERS[tok]
        if cached_template == template:
            return marker
    except (KeyError, TypeError):
        pass
    marker = tok.eos_token_id
    if template:
        sentinel = "XQZ_ANSWER_END_PROBE"
        try:
            rendered = tok.apply_chat_template(
                [{"role": "user", "content": "hi"}, {"role": "assistant", "content": sentinel}],
                tokenize=False,
            )
        except Exception:  # an unusual template: fall back to eos
            rendered = ""
        if sentinel in rendered:
            suffix = rendered[rendered.rindex(sentinel) + len(sentinel) :]
            ids = tok(suffix, add_special_tokens=False).input_ids if suffix else []
            special = set(tok.all_special_ids) | set(getattr(tok, "added_tokens_decoder", {}))
            if ids and ids[0] in special:
                marker = ids[0]
    with contextlib.suppress(TypeError):
        _END_MARKERS[tok] = (template, marker)
    return marker


def answer_ids(tok, text: str) -> list[int]:
    """Answer token ids: the text's tokens plus the end marker (``end_marker_id``).

    With a chat template the text is tokenized as is (it starts the assistant's turn). With the
    plain template it follows "Answer:" after a space; it is tokenized in that context
    ("Answer: " + text, minus the tokens of "Answer:") so that word-initial pieces match what
    the model sees, for BPE (GPT-2's "Ġyes") and SentencePiece ("▁yes") tokenizers alike.

    Raises:
        EncodingError: the text tokenizes to zero tokens (e.g. an empty string).
    """
    if has_chat_template(tok):
        ids = tok(text, add_special_tokens=False).input_ids
    else:
        head = tok("Answer:", add_special_tokens=False).input_ids
        full = tok("Answer: " + text, add_special_tokens=False).input_ids
        ids = (
            full[len(head) :]
            if full[: len(head)] == head
            else tok(" " + text, add_special_tokens=False).input_ids
        )
        if not text.strip():
            ids = []  # a lone space token is not an answer
    if not ids:
        raise EncodingError(
            f"the answer {text!r} tokenizes to zero tokens; every output must "
            f"contain text (check for empty outputs in the data)"
        )
    end = end_marker_id(tok)
    return list(ids) + ([end] if end is not None else [])


def encode(
    tok, data: Split | Iterable[Example], max_length: int = 512, *, instruction: str | None = None
) -> list[Encoded]:
    """Tokenize examples as prompt + answer (see the module docstring for the layout).

    Args:
        data: a Split (its task's instruction is used) or Examples / record dicts together with
            ``instruction``.
        max_length: the most tokens an example may have (prompt + answer + end marker).

    Over-long examples: the INPUT text is truncated (its last tokens are dropped) until the
    example fits; the instruction, the template and the whole answer are kept. One warning per
    call says how many examples were truncated.

    Raises:
        EncodingError: an answer tokenizes to nothing, or an example cannot fit even with an
            empty input.
    """
    if instruction is None:
        task = getattr(data, "task", None)
        if task is None:
            raise TypeError(
                "encode needs a Split (which knows its task's instruction) or instruction=..."
            )
        instruction = task.instruction
    examples = to_examples(data, lambda i: f"example {i}")
    encoded, n_truncated = [], 0
    for i, ex in enumerate(examples):
        try:
            answer = answer_ids(tok, ex.output)
        except EncodingError as err:
            raise EncodingError(f"{_where(data, i)}: {err}") from None
        prompt = prompt_ids(tok, instruction, ex.input)
        if len(prompt) + len(answer) > max_length:
            prompt = _truncated_prompt(
                tok, instruction, ex.input, len(answer), max_length, _where(data, i)
            )
            n_truncated += 1
        encoded.append(Encoded(prompt + answer, len(prompt)))
    if n_truncated:
        warnings.warn(
            f"encode: {n_truncated} of {len(encoded)} examples exceeded "
            f"max_length={max_length} tokens; their inputs were truncated (instruction "
            f"and answer kept whole)",
            stacklevel=2,
        )
    return encoded


def _truncated_prompt(tok, instruction, text, n_answer, max_length, where) -> list[int]:
    """Prompt ids with the input cut from the end so that prompt + answer fit max_length."""
    overhead = len(prompt_ids(tok, instruction, ""))
    budget = max_length - n_answer - overhead
    if budget < 0:
        raise EncodingError(
            f"{where}: the prompt without its input ({overhead} tokens) plus the answer "
            f"({n_answer} tokens) exceed max_length={max_length}; raise max_length or shorten "
            f"the instruction/answer"
        )
    input_ids = tok(text, add_special_tokens=False).input_ids
    keep = min(budget, len(input_ids))
    while True:
        # Decoding and re-encoding can merge tokens differently; shrink until it fits.
        prompt = prompt_ids(tok, instruction, tok.decode(input_ids[:keep]) if keep else "")
        excess = len(prompt) + n_answer - max_length
        if excess <= 0:
            return prompt
        keep = max(keep - excess, 0)


def _where(data, i: int) -> str:
    return f"{data._describe()}[{i}]" if isinstance(data, Split) else f"example {i}"


def to_device(batch: dict[str, torch.Tensor], device) -> dict[str, torch.Tensor]:
    """A collated batch with every tensor on ``device`` (the model's input device)."""
    return {key: value.to(device) for key, value in batch.items()}


def collate(
    encoded: Sequence[Encoded], pad_token_id: int | None, padding_side: str = "right"
) -> dict[str, torch.Tensor]:
    """Pad encoded examples into a batch.

    Returns:
        input_ids (B, T) long, padded with ``pad_token_id``; attention_mask (B, T) long, 1 on
        real tokens; labels (B, T) long: the token id on answer positions, -100 elsewhere
        (prompt and padding). Causal shift: the logits at position t - 1 predict labels[:, t].
        Right padding is for scoring and training; left padding (every prompt ends at the
        same position) is for generation.
    """
    if pad_token_id is None:
        raise ValueError(
            "the tokenizer has no pad token; set tok.pad_token = tok.eos_token "
            "(tn.load_model does this)"
        )
    if padding_side not in ("right", "left"):
        raise ValueError(f"padding_side must be 'right' or 'left', got {padding_side!r}")
    if not encoded:
        raise ValueError("cannot collate an empty list of examples")
    width = max(len(e.input_ids) for e in encoded)
    input_ids = torch.full((len(encoded), width), pad_token_id, dtype=torch.long)
    attention_mask = torch.zeros((len(encoded), width), dtype=torch.long)
    labels = torch.full((len(encoded), width), -100, dtype=torch.long)
    for b, e in enumerate(encoded):
        n = len(e.input_ids)
        start = 0 if padding_side == "right" else width - n
        input_ids[b, start : start + n] = torch.tensor(e.input_ids, dtype=torch.long)
        attention_mask[b, start : start + n] = 1
        labels[b, start + e.answer_start : start + n] = input_ids[
            b, start + e.answer_start : start + n
        ]
    return {"input_ids": input_ids, "attention_mask": attention_mask, "labels": labels}


def batches(tok, split: Split, batch_size: int, max_length: int = 512, padding_side: str = "right"):
    """Collated batches of ``split`` in order (the last one may be smaller)."""
    encoded = encode(tok, split, max_length=max_length)
    for start in range(0, len(encoded), batch_size):
        yield collate(encoded[start : start + batch_size], tok.pad_token_id, padding_side)
