"""The task data model and its readers: ``Example``, ``Split``, ``Task`` and the error classes.

A ``Task`` is an instruction plus three ``Split``s of ``Example(input, output)`` pairs; a split
knows its task. An example may carry a minimal-pair alternative (``alt_input`` / ``alt_output``):
``task.pairs(split)`` returns the alternatives as a ``Split`` aligned with ``task.<split>``. Tasks come from record dicts, a pandas DataFrame or a ``datasets.Dataset``
(``Task.from_records``), JSONL (``Task.from_jsonl``, ``read_jsonl``) or CSV (``Task.from_csv``,
``read_csv``); one list of records is split by (train, dev, test) fractions after a seeded shuffle.
"""

from __future__ import annotations

import csv
import inspect
import json
import operator
import os
import random
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from ..errors import TaskDataError, did_you_mean

CATEGORIES = ("classification", "generation")
METRICS = {"classification": ("accuracy",), "generation": ("exact_match", "rouge_l")}
SPLIT_NAMES = ("train", "dev", "test")
DEFAULT_SPLITS = (0.7, 0.1, 0.2)


# ----------------------------------------------------------------------------------------------
# Examples, splits, tasks
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Example:
    """One input/output pair (both plain text; the instruction lives on the task).

    ``alt_input`` / ``alt_output`` (both or neither): the example's minimal-pair alternative, an
    input that differs in the task-critical part only and has another answer (the shipped
    suite's rule per task is ``Task.pair_rule``). ``alternative`` is it as an Example.
    """

    input: str
    output: str
    alt_input: str | None = None
    alt_output: str | None = None

    @property
    def alternative(self) -> Example | None:
        """The alternative as an Example whose own alternative is this one; None if none."""
        if self.alt_input is None or self.alt_output is None:
            return None
        return Example(self.alt_input, self.alt_output, self.input, self.output)

    def __repr__(self) -> str:
        alt = (
            f", alt_input={self.alt_input!r}, alt_output={self.alt_output!r}"
            if self.alt_input is not None
            else ""
        )
        return f"Example(input={self.input!r}, output={self.output!r}{alt})"


class Split(Sequence):
    """An ordered, immutable sequence of ``Example``s that knows its task and split name.

    ``len(split)``, ``split[i]`` (an Example), ``split[a:b]`` (a Split of the same task and name),
    iteration, ``split.sample(n, seed)`` and ``split.records`` (list of dicts) are supported.
    Functions elsewhere read the instruction, category and labels through ``split.task``.
    ``split.pairs()`` is the minimal-pair alternatives of exactly these examples, aligned.
    """

    def __init__(self, examples: Iterable[Example], task: Task | None = None, name: str = "train"):
        self._examples = tuple(examples)
        self.task = task
        self.name = name

    def __len__(self) -> int:
        return len(self._examples)

    def __getitem__(self, index):
        if isinstance(index, slice):
            return Split(self._examples[index], self.task, self.name)
        try:
            return self._examples[operator.index(index)]
        except TypeError:
            raise TypeError(
                f"Split indices must be integers or slices, not {type(index).__name__}"
            ) from None

    def __iter__(self):
        return iter(self._examples)

    def sample(self, n: int, seed: int = 0) -> Split:
        """``n`` examples drawn without replacement, deterministic in ``seed``, in split order."""
        return Split(
            [self._examples[i] for i in self.sample_indices(n, seed)], self.task, self.name
        )

    def sample_indices(self, n: int, seed: int = 0) -> list[int]:
        """The sorted positions of the examples ``sample(n, seed)`` draws."""
        if not 0 <= n <= len(self):
            raise ValueError(
                f"cannot sample {n} examples from {self._describe()} which has {len(self)}"
            )
        return sorted(random.Random(seed).sample(range(len(self)), n))

    @property
    def records(self) -> list[dict[str, str]]:
        """The examples as ``{"input": ..., "output": ...}`` dicts (plus ``alt_input`` and
        ``alt_output`` for an example that has an alternative)."""
        return [_record(ex) for ex in self._examples]

    def pairs(self) -> Split:
        """The minimal-pair alternatives of these examples: a Split of the same task, named
        ``"<name>.alt"``, whose i-th example is the alternative of ``self[i]`` (and has
        ``self[i]`` as its own alternative, so ``split.pairs().pairs()`` is ``split`` again).

        Raises:
            TaskDataError: an example has no alternative (the message names it and, for a task
                of the shipped suite without pairs, says why).
        """
        alternatives = []
        for i, ex in enumerate(self._examples):
            alternative = ex.alternative
            if alternative is None:
                raise TaskDataError(_no_pairs_message(self.task, f"{self._describe()}[{i}]"))
            alternatives.append(alternative)
        name = self.name[: -len(".alt")] if self.name.endswith(".alt") else f"{self.name}.alt"
        return Split(alternatives, self.task, name)

    def _describe(self) -> str:
        task = self.task.name if self.task is not None else "?"
        return f"{task}/{self.name}"

    def __repr__(self) -> str:
        return f"Split({self._describe()}, n={len(self)})"


@dataclass(eq=False, repr=False)
class Task:
    """A task: instruction, kind, metric and its train / dev / test splits.

    Attributes:
        name: identifier (also the folder name in ``data/``).
        instruction: the text put before every input in the prompt (``format_prompt``).
        category: "classification" (scored by comparing the likelihood of every label) or
            "generation" (free-form greedy decoding).
        family: a group of related tasks (e.g. "sentiment"); defaults to the task's name.
        metric: "accuracy" (classification), "exact_match" or "rouge_l" (generation).
        labels: the answer options of a classification task (a tuple of strings), else None.
        train, dev, test: ``Split``s. Lists of ``Example``s or record dicts are accepted and
            wrapped; a split may be empty when the task was built without it.
        description: free text for data cards and notebooks.
        pair_rule: how the minimal-pair alternatives were made (``pairs``) or, for a task
            without them, why it has none; free text, as the data card shows it.
    """

    name: str
    instruction: str = ""
    category: str = "generation"
    family: str | None = None
    metric: str | None = None
    labels: tuple[str, ...] | None = None
    train: Split = field(default_factory=tuple)
    dev: Split = field(default_factory=tuple)
    test: Split = field(default_factory=tuple)
    description: str = ""
    pair_rule: str = ""

    def __post_init__(self):
        # The name ends up in file names and one-line messages; the instruction in every prompt.
        if not isinstance(self.name, str) or not self.name.strip() or not self.name.isprintable():
            raise TaskDataError(
                f"a task name must be a non-empty string of printable characters (no line "
                f"breaks or control characters), got {type(self.name).__name__} {self.name!r}"
            )
        if not isinstance(self.instruction, str):
            raise TaskDataError(
                f"task {self.name!r}: the instruction must be a string, got "
                f"{type(self.instruction).__name__} {self.instruction!r}"
            )
        _check_encodable(self.name, "the task name")
        _check_encodable(self.instruction, f"task {self.name!r}: the instruction")
        if self.category not in CATEGORIES:
            raise ValueError(
                f"task {self.name!r}: category must be one of {CATEGORIES}, got {self.category!r}"
            )
        if self.metric is None:
            self.metric = METRICS[self.category][0]
        if self.metric not in METRICS[self.category]:
            raise ValueError(
                f"task {self.name!r}: a {self.category} task's metric must be one of "
                f"{METRICS[self.category]}, got {self.metric!r}"
            )
        self.family = self.family or self.name
        # Bind every split to this task (a Split from elsewhere is re-bound, its examples shared).
        for split_name in SPLIT_NAMES:
            value = getattr(self, split_name)
            examples = to_examples(value, lambda i, s=split_name: f"task {self.name!r}, {s}[{i}]")
            setattr(self, split_name, Split(examples, self, split_name))
        if self.labels is not None:
            self.labels = _checked_labels(self.name, self.labels)
        if self.category == "classification":
            if self.labels is None:
                outputs = {ex.output for s in self.splits.values() for ex in s}
                self.labels = tuple(sorted(outputs))
            if len(self.labels) < 2:
                raise TaskDataError(
                    f"task {self.name!r}: a classification task needs at least two "
                    f"labels, got {self.labels}"
                )
            known = set(self.labels)
            for split in self.splits.values():
                for i, ex in enumerate(split):
                    if ex.output not in known:
                        raise TaskDataError(
                            f"task {self.name!r}, {split.name}[{i}]: output {ex.output!r} is not "
                            f"one of the labels {list(self.labels)}"
                        )
        self._check_pairs()

    def _check_pairs(self) -> None:
        """Minimal pairs are all or none: every example of every split has an alternative, or
        none has; a classification alternative's answer is one of the labels."""
        examples = [(s.name, i, ex) for s in self.splits.values() for i, ex in enumerate(s)]
        with_alt = [ex.alt_input is not None for _, _, ex in examples]
        if any(with_alt) and not all(with_alt):
            first_name, first_i, _ = examples[0]
            split_name, i, _ = next(e for e, has in zip(examples, with_alt) if has != with_alt[0])
            raise TaskDataError(
                f"task {self.name!r}, {split_name}[{i}]: "
                f"{'has no' if with_alt[0] else 'has'} alt_input/alt_output while "
                f"{first_name}[{first_i}] {'has' if with_alt[0] else 'has none'}; minimal pairs "
                "are all or none (give every record alt_input and alt_output, or none)"
            )
        if self.category == "classification" and any(with_alt):
            known = set(self.labels or ())
            for split_name, i, ex in examples:
                if ex.alt_output not in known:
                    raise TaskDataError(
                        f"task {self.name!r}, {split_name}[{i}]: alt_output {ex.alt_output!r} "
                        f"is not one of the labels {list(self.labels or ())}"
                    )

    @property
    def splits(self) -> dict[str, Split]:
        """``{"train": ..., "dev": ..., "test": ...}``."""
        return {name: getattr(self, name) for name in SPLIT_NAMES}

    @property
    def has_pairs(self) -> bool:
        """Whether the examples carry minimal-pair alternatives (``pairs``)."""
        return any(ex.alt_input is not None for s in self.splits.values() for ex in s)

    def pairs(self, split: str = "train") -> Split:
        """The minimal-pair alternatives of ``self.<split>``: a Split of this task whose i-th
        example is the alternative of ``self.<split>[i]`` (in the shipped suite: the same
        prompt token length under the default tokenizer, another first answer token;
        ``pair_rule`` says how they were made). ``tasks.check_pairs(tok, task.train,
        task.pairs("train"))`` checks a pair set for a tokenizer.

        Raises:
            ValueError: ``split`` is not one of train, dev, test.
            TaskDataError: the task has no minimal pairs (the message says why, when known).
        """
        if split not in SPLIT_NAMES:
            raise ValueError(f"split must be one of {SPLIT_NAMES}, got {split!r}")
        if not self.has_pairs:
            raise TaskDataError(_no_pairs_message(self, None))
        return getattr(self, split).pairs()

    def __repr__(self) -> str:
        sizes = "/".join(str(len(s)) for s in self.splits.values())
        labels = f", labels={list(self.labels)}" if self.labels else ""
        return (
            f"Task({self.name!r}, {self.category}, metric={self.metric}, "
            f"train/dev/test={sizes}{labels})"
        )

    # -- constructors ---------------------------------------------------------------------------

    @classmethod
    def from_records(
        cls,
        name: str,
        records: Iterable[Mapping] | Mapping[str, Iterable[Mapping]] | None = None,
        instruction: str = "",
        *,
        category: str = "generation",
        metric: str | None = None,
        labels: Sequence[str] | None = None,
        family: str | None = None,
        splits: tuple[float, float, float] | Mapping[str, Iterable[Mapping]] = DEFAULT_SPLITS,
        seed: int = 0,
        description: str = "",
        pair_rule: str = "",
    ) -> Task:
        """A task from ``{"input": str, "output": str}`` records.

        Records may be a list of dicts, a pandas DataFrame or a ``datasets.Dataset`` with
        ``input`` and ``output`` columns (other columns are ignored). Records may also carry a
        minimal-pair alternative, ``alt_input`` and ``alt_output`` (strings; all records or
        none, each both or neither); ``task.pairs(split)`` returns the alternatives aligned
        with the split, and ``pair_rule`` (free text) says how they were made.

        Args:
            records: all examples (split by ``splits`` fractions after a shuffle seeded by
                ``seed``), or a dict of pre-split lists (``{"train": [...], "test": [...]}``).
            splits: (train, dev, test) fractions summing to 1, or a dict of pre-split records
                (then ``records`` may be None). A split named in the dict must not be empty.
            metric: default "accuracy" for classification, "exact_match" for generation.
            labels: classification answer options; default: the sorted unique outputs.
        """
        if isinstance(records, Mapping):
            splits, records = records, None
        if isinstance(splits, Mapping):
            if records is not None:
                raise ValueError(
                    "pass either records (split by fractions) or a dict of "
                    "pre-split records, not both"
                )
            unknown = set(splits) - set(SPLIT_NAMES)
            if unknown:
                raise ValueError(f"unknown split names {sorted(unknown)}; use {SPLIT_NAMES}")
            parts = {}
            for split_name, split_records in splits.items():
                parts[split_name] = to_examples(
                    split_records, lambda i, s=split_name: f"task {name!r}, {s} record {i}"
                )
                if not parts[split_name]:
                    raise TaskDataError(f"task {name!r}: split {split_name!r} is empty")
        else:
            if records is None:
                raise ValueError("records is required unless splits is a dict of record lists")
            examples = to_examples(records, lambda i: f"task {name!r}, record {i}")
            parts = _split_by_fractions(examples, splits, seed, name)
        return cls(
            name=name,
            instruction=instruction,
            category=category,
            family=family,
            metric=metric,
            labels=labels,
            description=description,
            pair_rule=pair_rule,
            **parts,
        )

    @classmethod
    def from_jsonl(
        cls, path: str | os.PathLike, name: str | None = None, instruction: str = "", **kwargs
    ) -> Task:
        """A task from a JSONL file (one ``{"input", "output"}`` object a line; split by
        ``splits``/``seed`` as in ``from_records``) or from a folder holding ``train.jsonl``,
        ``dev.jsonl`` and/or ``test.jsonl``. ``name`` defaults to the file or folder name."""
        return _from_file(cls, Path(path), "jsonl", read_jsonl, name, instruction, kwargs)

    @classmethod
    def from_csv(
        cls, path: str | os.PathLike, name: str | None = None, instruction: str = "", **kwargs
    ) -> Task:
        """Like ``from_jsonl`` for CSV files with a header row containing ``input`` and
        ``output`` columns (other columns are ignored)."""
        return _from_file(cls, Path(path), "csv", read_csv, name, instruction, kwargs)


def _check_encodable(text: str, where: str) -> None:
    """A TaskDataError naming ``where`` if ``text`` cannot be UTF-8 encoded (a lone surrogate,
    e.g. from bytes decoded with ``errors="surrogateescape"``): tokenizers would fail on it with
    an error of their own, far from the data."""
    if text.isascii():
        return
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as err:
        raise TaskDataError(
            f"{where} is not valid Unicode text: it holds a lone surrogate "
            f"{text[err.start]!r} at character {err.start} (decode the source with "
            f"errors='replace', or fix its encoding)"
        ) from None


def _checked_labels(name: str, labels) -> tuple[str, ...]:
    """``labels`` as a tuple, once it is a sequence of distinct strings (a bare string would be
    read as one label a character)."""
    if isinstance(labels, (str, bytes)) or not isinstance(labels, Iterable):
        raise TaskDataError(
            f"task {name!r}: labels must be a list of strings, got "
            f"{type(labels).__name__} {labels!r}"
        )
    labels = tuple(labels)
    for label in labels:
        if not isinstance(label, str):
            raise TaskDataError(
                f"task {name!r}: every label must be a string, got {type(label).__name__} "
                f"{label!r} in {list(labels)!r}"
            )
    repeated = sorted({label for label in labels if labels.count(label) > 1})
    if repeated:
        raise TaskDataError(f"task {name!r}: labels {repeated} are given more than once")
    return labels


def _rows(records) -> Iterable:
    """The rows of ``records``: a sequence of dicts or Examples, a ``datasets.Dataset`` (its
    rows are dicts), a pandas DataFrame (iterating one gives column names, so it is read as
    ``to_dict(orient="records")``) or None (no rows)."""
    if records is None:
        return ()
    if hasattr(records, "iterrows") and hasattr(records, "to_dict"):  # a pandas DataFrame
        return records.to_dict(orient="records")
    if not isinstance(records, Iterable):
        raise TaskDataError(
            f"records must be a list of {{'input': str, 'output': str}} dicts (or a DataFrame "
            f"or datasets.Dataset with those columns), got {type(records).__name__} {records!r}"
        )
    return records


def to_examples(records, where: Callable[[int], str]) -> list[Example]:
    """Validate records (dicts or Examples; a list, a pandas DataFrame or a ``datasets.Dataset``)
    and turn them into Examples; ``where(i)`` names one in error messages."""
    examples = []
    for i, record in enumerate(_rows(records)):
        if isinstance(record, Example):
            examples.append(record)
            continue
        if not isinstance(record, Mapping):
            raise TaskDataError(
                f"{where(i)}: expected a dict with 'input' and 'output', got "
                f"{type(record).__name__}"
            )
        for key in ("input", "output"):
            if key not in record:
                raise TaskDataError(
                    f"{where(i)}: missing field {key!r} (fields present: {sorted(record)})"
                )
        alt = [key for key in ALT_FIELDS if _present(record, key)]
        if len(alt) == 1:
            (missing,) = set(ALT_FIELDS) - set(alt)
            raise TaskDataError(
                f"{where(i)}: has {alt[0]!r} but no {missing!r}; a minimal pair needs both"
            )
        for key in ("input", "output", *alt):
            if not isinstance(record[key], str):
                raise TaskDataError(
                    f"{where(i)}: field {key!r} must be a string, got "
                    f"{type(record[key]).__name__} {record[key]!r}"
                )
            if not record[key].isascii():
                _check_encodable(record[key], f"{where(i)}: field {key!r}")
        examples.append(Example(*(record[key] for key in ("input", "output", *alt))))
    return examples


ALT_FIELDS = ("alt_input", "alt_output")


def _present(record: Mapping, key: str) -> bool:
    """Whether ``record`` has ``key`` with a value: a DataFrame or a ``datasets.Dataset`` with
    the column for some rows only holds None (or NaN) in the others, which counts as absent."""
    value = record.get(key)
    if value is None:
        return False
    try:
        return bool(value == value)  # NaN != NaN
    except (TypeError, ValueError):  # pandas.NA has no truth value
        return False


def _record(ex: Example) -> dict[str, str]:
    """``{"input", "output"}`` plus ``alt_input`` / ``alt_output`` when the example has them."""
    record = {"input": ex.input, "output": ex.output}
    if ex.alt_input is not None and ex.alt_output is not None:
        record.update(alt_input=ex.alt_input, alt_output=ex.alt_output)
    return record


def _no_pairs_message(task: Task | None, where: str | None) -> str:
    """One line: this task (or example) has no minimal-pair alternative, and why if known."""
    name = task.name if task is not None else "?"
    head = (
        f"{where}: no minimal-pair alternative" if where else f"task {name!r} has no minimal pairs"
    )
    if task is not None and task.pair_rule and not task.has_pairs:
        return f"{head}: {task.pair_rule}"
    return f"{head}; give every record alt_input and alt_output fields (Task.from_records)"


def _split_by_fractions(examples: list[Example], fractions, seed: int, name: str) -> dict:
    fractions = tuple(fractions) if isinstance(fractions, Iterable) else (fractions,)
    numbers = all(isinstance(f, (int, float)) and not isinstance(f, bool) for f in fractions)
    if (
        not numbers
        or len(fractions) != 3
        or any(f < 0 for f in fractions)
        or abs(sum(fractions) - 1) > 1e-6
    ):
        raise ValueError(
            f"splits must be three non-negative (train, dev, test) fractions summing "
            f"to 1, got {fractions}"
        )
    if not examples:
        raise TaskDataError(f"task {name!r}: no examples")
    order = list(range(len(examples)))
    random.Random(seed).shuffle(order)
    n_train = round(fractions[0] * len(order))
    n_dev = round(fractions[1] * len(order))
    bounds = {
        "train": (0, n_train),
        "dev": (n_train, n_train + n_dev),
        "test": (n_train + n_dev, len(order)),
    }
    parts = {}
    for (split_name, (lo, hi)), fraction in zip(bounds.items(), fractions):
        if fraction > 0 and hi <= lo:
            raise TaskDataError(
                f"task {name!r}: split {split_name!r} would be empty ({len(examples)} examples "
                f"split {fractions}); pass more examples or other fractions"
            )
        # Keep the file order inside each split: it makes splits easy to inspect.
        parts[split_name] = [examples[i] for i in sorted(order[lo:hi])]
    return parts


def _from_file(cls, path: Path, ext: str, reader, name, instruction, kwargs) -> Task:
    options = [
        p
        for p in inspect.signature(cls.from_records).parameters
        if p not in ("name", "records", "instruction")
    ]
    unknown = [key for key in kwargs if key not in options]
    if unknown:  # before the file is read
        raise TypeError(
            f"Task.from_{ext} has no argument {', '.join(map(repr, unknown))}"
            f"{did_you_mean(unknown, options)}; it takes name, instruction, {', '.join(options)}"
        )
    if path.is_dir():
        parts = {}
        for split_name in SPLIT_NAMES:
            file = path / f"{split_name}.{ext}"
            if file.exists():
                parts[split_name] = reader(file)
        if not parts:
            raise FileNotFoundError(
                f"{path}: no {', '.join(f'{s}.{ext}' for s in SPLIT_NAMES)} in this folder"
            )
        if "splits" in kwargs:
            raise ValueError(f"{path} is a folder of pre-split files; 'splits' does not apply")
        return cls.from_records(name or path.name, None, instruction, splits=parts, **kwargs)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file or folder")
    return cls.from_records(name or path.stem, reader(path), instruction, **kwargs)


def read_jsonl(path: str | os.PathLike) -> list[dict[str, str]]:
    """Records of a JSONL file; every problem is reported as ``file:line: what is wrong``."""
    path = Path(path)
    records = []
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as err:
                raise TaskDataError(
                    f"{path}:{lineno}: invalid JSON ({err.msg} at column {err.colno})"
                ) from None
            records.extend(to_examples([record], lambda i, where=f"{path}:{lineno}": where))
    if not records:
        raise TaskDataError(f"{path}: no examples (empty split)")
    return [_record(ex) for ex in records]


def read_csv(path: str | os.PathLike) -> list[dict[str, str]]:
    """Records of a CSV file with ``input`` and ``output`` columns (``file:line`` errors)."""
    path = Path(path)
    with open(path, encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f)
        missing = [c for c in ("input", "output") if c not in (reader.fieldnames or [])]
        if missing:
            raise TaskDataError(
                f"{path}:1: missing column(s) {missing} in the header {reader.fieldnames}"
            )
        records = []
        for row in reader:
            if row["input"] is None or row["output"] is None:
                raise TaskDataError(f"{path}:{reader.line_num}: too few values in this row")
            records.append({"input": row["input"], "output": row["output"]})
    if not records:
        raise TaskDataError(f"{path}: no examples (empty split)")
    return records
