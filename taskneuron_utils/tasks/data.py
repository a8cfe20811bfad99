"""The task data model and its readers: ``Example``, ``Split``, ``Task`` and the error classes.

A ``Task`` is an instruction plus three ``Split``s of ``Example(input, output)`` pairs; a split
knows its task. Tasks come from record dicts, a pandas DataFrame or a ``datasets.Dataset``
(``Task.from_records``), JSONL (``Task.from_jsonl``, ``read_jsonl``) or CSV (``Task.from_csv``,
``read_csv``); one list of records is split by (train, dev, test) fractions after a seeded shuffle.
"""

from __future__ import annotations

import csv
import json
import operator
import os
import random
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from ..errors import TaskDataError

CATEGORIES = ("classification", "generation")
METRICS = {"classification": ("accuracy",), "generation": ("exact_match", "rouge_l")}
SPLIT_NAMES = ("train", "dev", "test")
DEFAULT_SPLITS = (0.7, 0.1, 0.2)


# ----------------------------------------------------------------------------------------------
# Examples, splits, tasks
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Example:
    """One input/output pair (both plain text; the instruction lives on the task)."""

    input: str
    output: str


class Split(Sequence):
    """An ordered, immutable sequence of ``Example``s that knows its task and split name.

    ``len(split)``, ``split[i]`` (an Example), ``split[a:b]`` (a Split of the same task and name),
    iteration, ``split.sample(n, seed)`` and ``split.records`` (list of dicts) are supported.
    Functions elsewhere read the instruction, category and labels through ``split.task``.
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
        """The examples as ``{"input": ..., "output": ...}`` dicts."""
        return [{"input": ex.input, "output": ex.output} for ex in self._examples]

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

    def __post_init__(self):
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
        if self.category == "classification":
            if self.labels is None:
                outputs = {ex.output for s in self.splits.values() for ex in s}
                self.labels = tuple(sorted(outputs))
            self.labels = tuple(self.labels)
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
        elif self.labels is not None:
            self.labels = tuple(self.labels)

    @property
    def splits(self) -> dict[str, Split]:
        """``{"train": ..., "dev": ..., "test": ...}``."""
        return {name: getattr(self, name) for name in SPLIT_NAMES}

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
    ) -> Task:
        """A task from ``{"input": str, "output": str}`` records.

        Records may be a list of dicts, a pandas DataFrame or a ``datasets.Dataset`` with
        ``input`` and ``output`` columns (other columns are ignored).

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


def _rows(records) -> Iterable:
    """The rows of ``records``: a sequence of dicts or Examples, a ``datasets.Dataset`` (its
    rows are dicts), a pandas DataFrame (iterating one gives column names, so it is read as
    ``to_dict(orient="records")``) or None (no rows)."""
    if records is None:
        return ()
    if hasattr(records, "iterrows") and hasattr(records, "to_dict"):  # a pandas DataFrame
        return records.to_dict(orient="records")
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
            if not isinstance(record[key], str):
                raise TaskDataError(
                    f"{where(i)}: field {key!r} must be a string, got "
                    f"{type(record[key]).__name__} {record[key]!r}"
                )
        examples.append(Example(record["input"], record["output"]))
    return examples


def _split_by_fractions(examples: list[Example], fractions, seed: int, name: str) -> dict:
    fractions = tuple(fractions)
    if len(fractions) != 3 or any(f < 0 for f in fractions) or abs(sum(fractions) - 1) > 1e-6:
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
    return [{"input": ex.input, "output": ex.output} for ex in records]


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
