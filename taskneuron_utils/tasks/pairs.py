"""Minimal pairs: checking that an original split and its alternatives fit a tokenizer.

A minimal pair is an example and an alternative input that differs from it in the task-critical
part only and has another answer (``Task.pairs``; the shipped suite's rule per task is
``Task.pair_rule`` and the data card's "Minimal pairs" section). Contrastive methods patch the
alternative's activations into the original position by position and compare the two answers'
first tokens, so for a tokenizer every pair needs

- the two prompts of equal token length (positions are patched one for one; the answers may
  differ in length, only the first answer token enters the metric),
- different first answer tokens (the logit difference ``logit(A_1) - logit(B_1)``),
- different inputs (identical prompts have identical activations).

``check_pairs`` tests all of it, and that the two splits are aligned, before any model work;
every problem is a one-line ``TaskDataError`` naming the example.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from .data import Example, Split, to_examples
from .encoding import Encoded, encode
from ..errors import TaskDataError

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase


def check_pairs(
    tok: PreTrainedTokenizerBase,
    split: Split | Sequence[Example],
    alt: Split | Sequence[Example],
    *,
    max_length: int = 512,
    instruction: str | None = None,
) -> tuple[list[Encoded], list[Encoded]]:
    """Check that ``alt`` is a minimal-pair set for ``split`` under ``tok``; return both encoded.

    Args:
        split: the original examples (a Split, e.g. ``task.train[:64]``, or Examples together
            with ``instruction``).
        alt: their alternatives, aligned one to one (``task.pairs("train")`` for
            ``task.train``, ``split.pairs()`` for any slice or sample of a split).
        max_length: as in ``encode`` (an over-long input is truncated).
        instruction: the instruction of both, when they are not Splits of a task.

    Returns:
        ``(encode(tok, split), encode(tok, alt))``: per pair, equal ``answer_start`` (the prompt
        length) and different first answer tokens ``input_ids[answer_start]``.

    Raises:
        TaskDataError: the two are not aligned (different lengths), an alternative's input is
            its original's, two prompts differ in token length, or two answers start with the
            same token; one line naming the first such example.
    """
    originals = to_examples(split, lambda i: _where(split, i, "example"))
    alternatives = to_examples(alt, lambda i: _where(alt, i, "alternative"))
    if len(originals) != len(alternatives):
        n = min(len(originals), len(alternatives))
        lonely = (
            _where(split, n, "example") if n < len(originals) else _where(alt, n, "alternative")
        )
        raise TaskDataError(
            f"{lonely} has no partner: {_name(split, 'the examples')} has {len(originals)} "
            f"examples and {_name(alt, 'the alternatives')} {len(alternatives)}; minimal pairs "
            "are aligned one to one (task.pairs(name) for task.<name>, split.pairs() for a "
            "slice or sample)"
        )
    for i, (ex, other) in enumerate(zip(originals, alternatives)):
        if ex.input == other.input:
            raise TaskDataError(
                f"{_where(split, i, 'example')}: the alternative's input is the same "
                f"({_short(ex.input)}); a minimal pair changes the task-critical part"
            )
    encoded = encode(tok, _with_instruction(split, originals), max_length, instruction=instruction)
    encoded_alt = encode(
        tok, _with_instruction(alt, alternatives), max_length, instruction=instruction
    )
    for i, (ex, other, e, f) in enumerate(zip(originals, alternatives, encoded, encoded_alt)):
        where = _where(split, i, "example")
        if e.answer_start != f.answer_start:
            raise TaskDataError(
                f"{where}: the prompt is {e.answer_start} tokens, its alternative's "
                f"{f.answer_start} ({_short(ex.input)} vs {_short(other.input)}); a minimal "
                "pair needs prompts of equal token length (positions are patched one for one)"
            )
        first, first_alt = e.input_ids[e.answer_start], f.input_ids[f.answer_start]
        if first == first_alt:
            piece = tok.convert_ids_to_tokens(first)
            raise TaskDataError(
                f"{where}: the answer {_short(ex.output)} and the alternative's "
                f"{_short(other.output)} start with the same token {piece!r} (id {first}); "
                "the logit difference needs different first answer tokens"
            )
    return encoded, encoded_alt


def _with_instruction(data, examples: list[Example]):
    """The Split itself (encode reads its task's instruction), else the plain examples."""
    return data if isinstance(data, Split) else examples


def _where(data, i: int, what: str) -> str:
    return f"{data._describe()}[{i}]" if isinstance(data, Split) else f"{what} {i}"


def _name(data, default: str) -> str:
    return data._describe() if isinstance(data, Split) else default


def _short(text: str, limit: int = 60) -> str:
    """``repr`` of ``text``, cut to ``limit`` characters (one line whatever the text holds)."""
    return repr(text if len(text) <= limit else text[: limit - 3] + "...")
