"""Tasks: data, prompts and the token layout every other module relies on.

A ``Task`` is an instruction plus three ``Split``s of ``Example(input, output)`` pairs. A split
knows its task, so one object carries everything a consumer needs::

    suite = load_tasks()                              # the shipped suite, {name: Task}
    split = suite["sentiment_products"].train[:64]    # a Split (slices stay Splits)
    encoded = encode(tok, split)                      # [Encoded(input_ids, answer_start)]
    batch = collate(encoded, tok.pad_token_id)        # input_ids / attention_mask / labels

Token layout of one example (``encode``)::

    [ prompt tokens ............................ ][ answer tokens ........ ][end]
    format_prompt(tok, instruction, input)          tok(output)               end-of-turn / eos
                                                  ^ answer_start

The prompt and the answer are tokenized separately and concatenated, so the boundary is exact
whatever the tokenizer does at word boundaries. ``labels`` (``collate``) holds the token at
position t for answer positions and -100 elsewhere; as in Hugging Face's own loss, the model's
logits at position t - 1 predict ``labels[:, t]`` (the causal shift happens in the loss).

Data sources: the shipped suite in ``data/`` (``load_tasks``), your own records, JSONL or CSV
(``Task.from_records`` / ``from_jsonl`` / ``from_csv``), and the paper's Hugging Face Hub data
sets (``load_hub_task``, ``HUB_TASKS``), which can also be read from local files in the data set's
own column layout.
"""

from __future__ import annotations

import contextlib
import csv
import json
import operator
import os
import random
import warnings
import weakref
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch

CATEGORIES = ("classification", "generation")
METRICS = {"classification": ("accuracy",), "generation": ("exact_match", "rouge_l")}
SPLIT_NAMES = ("train", "dev", "test")
DEFAULT_SPLITS = (0.7, 0.1, 0.2)


# ----------------------------------------------------------------------------------------------
# Errors
# ----------------------------------------------------------------------------------------------


class TaskDataError(ValueError):
    """Task data is malformed: bad JSON, a missing field, an empty split, an unknown label."""


class UnknownTaskError(KeyError, ValueError):
    """A task name that is not in the suite (or ``HUB_TASKS``); the message lists the known ones."""

    def __str__(self) -> str:  # KeyError would print the message wrapped in quotes
        return str(self.args[0]) if self.args else ""


class EncodingError(ValueError):
    """An example cannot be turned into tokens (empty answer, or it cannot fit ``max_length``)."""


class HubUnavailableError(RuntimeError):
    """A hub data set could not be fetched (no network, or ``HF_HUB_OFFLINE=1``)."""


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
            raise TypeError(f"Split indices must be integers or slices, not "
                            f"{type(index).__name__}") from None

    def __iter__(self):
        return iter(self._examples)

    def sample(self, n: int, seed: int = 0) -> Split:
        """``n`` examples drawn without replacement, deterministic in ``seed``, in split order."""
        if not 0 <= n <= len(self):
            raise ValueError(f"cannot sample {n} examples from {self._describe()} "
                             f"which has {len(self)}")
        chosen = sorted(random.Random(seed).sample(range(len(self)), n))
        return Split([self._examples[i] for i in chosen], self.task, self.name)

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
            raise ValueError(f"task {self.name!r}: category must be one of {CATEGORIES}, "
                             f"got {self.category!r}")
        if self.metric is None:
            self.metric = METRICS[self.category][0]
        if self.metric not in METRICS[self.category]:
            raise ValueError(f"task {self.name!r}: a {self.category} task's metric must be one of "
                             f"{METRICS[self.category]}, got {self.metric!r}")
        self.family = self.family or self.name
        # Bind every split to this task (a Split from elsewhere is re-bound, its examples shared).
        for split_name in SPLIT_NAMES:
            value = getattr(self, split_name)
            examples = _to_examples(value, lambda i, s=split_name: f"task {self.name!r}, {s}[{i}]")
            setattr(self, split_name, Split(examples, self, split_name))
        if self.category == "classification":
            if self.labels is None:
                outputs = {ex.output for s in self.splits.values() for ex in s}
                self.labels = tuple(sorted(outputs))
            self.labels = tuple(self.labels)
            if len(self.labels) < 2:
                raise TaskDataError(f"task {self.name!r}: a classification task needs at least two "
                                    f"labels, got {self.labels}")
            known = set(self.labels)
            for split in self.splits.values():
                for i, ex in enumerate(split):
                    if ex.output not in known:
                        raise TaskDataError(
                            f"task {self.name!r}, {split.name}[{i}]: output {ex.output!r} is not "
                            f"one of the labels {list(self.labels)}")
        elif self.labels is not None:
            self.labels = tuple(self.labels)

    @property
    def splits(self) -> dict[str, Split]:
        """``{"train": ..., "dev": ..., "test": ...}``."""
        return {name: getattr(self, name) for name in SPLIT_NAMES}

    def __repr__(self) -> str:
        sizes = "/".join(str(len(s)) for s in self.splits.values())
        labels = f", labels={list(self.labels)}" if self.labels else ""
        return (f"Task({self.name!r}, {self.category}, metric={self.metric}, "
                f"train/dev/test={sizes}{labels})")

    # -- constructors ---------------------------------------------------------------------------

    @classmethod
    def from_records(
        cls,
        name: str,
        records: Sequence[Mapping] | Mapping[str, Sequence[Mapping]] | None = None,
        instruction: str = "",
        *,
        category: str = "generation",
        metric: str | None = None,
        labels: Sequence[str] | None = None,
        family: str | None = None,
        splits: tuple[float, float, float] | Mapping[str, Sequence[Mapping]] = DEFAULT_SPLITS,
        seed: int = 0,
        description: str = "",
    ) -> Task:
        """A task from ``{"input": str, "output": str}`` dicts.

        Args:
            records: all examples (split by ``splits`` fractions after a shuffle seeded by
                ``seed``), or a dict of pre-split lists (``{"train": [...], "test": [...]}``).
            splits: (train, dev, test) fractions summing to 1, or a dict of pre-split record
                lists (then ``records`` may be None). A split named in the dict must not be empty.
            metric: default "accuracy" for classification, "exact_match" for generation.
            labels: classification answer options; default: the sorted unique outputs.
        """
        if isinstance(records, Mapping):
            splits, records = records, None
        if isinstance(splits, Mapping):
            if records is not None:
                raise ValueError("pass either records (split by fractions) or a dict of "
                                 "pre-split records, not both")
            unknown = set(splits) - set(SPLIT_NAMES)
            if unknown:
                raise ValueError(f"unknown split names {sorted(unknown)}; use {SPLIT_NAMES}")
            parts = {}
            for split_name, split_records in splits.items():
                parts[split_name] = _to_examples(
                    split_records, lambda i, s=split_name: f"task {name!r}, {s} record {i}")
                if not parts[split_name]:
                    raise TaskDataError(f"task {name!r}: split {split_name!r} is empty")
        else:
            if records is None:
                raise ValueError("records is required unless splits is a dict of record lists")
            examples = _to_examples(records, lambda i: f"task {name!r}, record {i}")
            parts = _split_by_fractions(examples, splits, seed, name)
        return cls(name=name, instruction=instruction, category=category, family=family,
                   metric=metric, labels=labels, description=description, **parts)

    @classmethod
    def from_jsonl(cls, path: str | os.PathLike, name: str | None = None, instruction: str = "",
                   **kwargs) -> Task:
        """A task from a JSONL file (one ``{"input", "output"}`` object a line; split by
        ``splits``/``seed`` as in ``from_records``) or from a folder holding ``train.jsonl``,
        ``dev.jsonl`` and/or ``test.jsonl``. ``name`` defaults to the file or folder name."""
        return _from_file(cls, Path(path), "jsonl", read_jsonl, name, instruction, kwargs)

    @classmethod
    def from_csv(cls, path: str | os.PathLike, name: str | None = None, instruction: str = "",
                 **kwargs) -> Task:
        """Like ``from_jsonl`` for CSV files with a header row containing ``input`` and
        ``output`` columns (other columns are ignored)."""
        return _from_file(cls, Path(path), "csv", read_csv, name, instruction, kwargs)


def _to_examples(records, where: Callable[[int], str]) -> list[Example]:
    """Validate records (dicts or Examples) and turn them into Examples; ``where(i)`` names one
    in error messages."""
    examples = []
    for i, record in enumerate(records or ()):
        if isinstance(record, Example):
            examples.append(record)
            continue
        if not isinstance(record, Mapping):
            raise TaskDataError(f"{where(i)}: expected a dict with 'input' and 'output', got "
                                f"{type(record).__name__}")
        for key in ("input", "output"):
            if key not in record:
                raise TaskDataError(f"{where(i)}: missing field {key!r} (fields present: "
                                    f"{sorted(record)})")
            if not isinstance(record[key], str):
                raise TaskDataError(f"{where(i)}: field {key!r} must be a string, got "
                                    f"{type(record[key]).__name__} {record[key]!r}")
        examples.append(Example(record["input"], record["output"]))
    return examples


def _split_by_fractions(examples: list[Example], fractions, seed: int, name: str) -> dict:
    fractions = tuple(fractions)
    if len(fractions) != 3 or any(f < 0 for f in fractions) or abs(sum(fractions) - 1) > 1e-6:
        raise ValueError(f"splits must be three non-negative (train, dev, test) fractions summing "
                         f"to 1, got {fractions}")
    if not examples:
        raise TaskDataError(f"task {name!r}: no examples")
    order = list(range(len(examples)))
    random.Random(seed).shuffle(order)
    n_train = round(fractions[0] * len(order))
    n_dev = round(fractions[1] * len(order))
    bounds = {"train": (0, n_train), "dev": (n_train, n_train + n_dev),
              "test": (n_train + n_dev, len(order))}
    parts = {}
    for (split_name, (lo, hi)), fraction in zip(bounds.items(), fractions):
        if fraction > 0 and hi <= lo:
            raise TaskDataError(
                f"task {name!r}: split {split_name!r} would be empty ({len(examples)} examples "
                f"split {fractions}); pass more examples or other fractions")
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
            raise FileNotFoundError(f"{path}: no {', '.join(f'{s}.{ext}' for s in SPLIT_NAMES)} "
                                    f"in this folder")
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
                raise TaskDataError(f"{path}:{lineno}: invalid JSON ({err.msg} at column "
                                    f"{err.colno})") from None
            records.extend(_to_examples([record], lambda i: f"{path}:{lineno}"))
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
            raise TaskDataError(f"{path}:1: missing column(s) {missing} in the header "
                                f"{reader.fieldnames}")
        records = []
        for row in reader:
            if row["input"] is None or row["output"] is None:
                raise TaskDataError(f"{path}:{reader.line_num}: too few values in this row")
            records.append({"input": row["input"], "output": row["output"]})
    if not records:
        raise TaskDataError(f"{path}: no examples (empty split)")
    return records


# ----------------------------------------------------------------------------------------------
# The shipped suite
# ----------------------------------------------------------------------------------------------


def default_data_dir() -> Path:
    """``$TASKNEURON_DATA`` if set, else the repository's ``data/`` folder."""
    env = os.environ.get("TASKNEURON_DATA")
    return Path(env) if env else Path(__file__).resolve().parents[1] / "data"


def load_tasks(names: Sequence[str] | str | None = None, profile: str = "quick",
               data_dir: str | os.PathLike | None = None, **hub_kwargs) -> dict[str, Task]:
    """Load tasks by name, in suite order.

    Args:
        names: task names (default: all of the profile's tasks).
        profile: "quick" reads the shipped suite (``data/tasks.json`` + ``data/<name>/*.jsonl``);
            "paper" loads the paper's 12 tasks from the Hugging Face Hub (``load_hub_task``;
            needs network access or local files, ``hub_kwargs`` are passed on).
        data_dir: folder of the shipped suite (default ``default_data_dir()``).

    Raises:
        UnknownTaskError: a name is not in the profile; the message lists the known names.
    """
    if isinstance(names, str):
        names = [names]
    if profile == "paper":
        known = list(PAPER_TASKS) + [n for n in HUB_TASKS if n not in PAPER_TASKS]
        chosen = _check_names(names, known, PAPER_TASKS, "hub tasks (HUB_TASKS)")
        return {name: load_hub_task(name, **hub_kwargs) for name in chosen}
    if profile != "quick":
        raise ValueError(f"profile must be 'quick' or 'paper', got {profile!r}")
    if hub_kwargs:
        raise TypeError(f"unexpected arguments for the shipped suite: {sorted(hub_kwargs)}")
    root = Path(data_dir) if data_dir is not None else default_data_dir()
    index = root / "tasks.json"
    if not index.exists():
        raise FileNotFoundError(f"no task suite at {index}; build it with "
                                f"`python data/build_suite.py` or set TASKNEURON_DATA")
    try:
        entries = json.loads(index.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise TaskDataError(f"{index}:{err.lineno}: invalid JSON ({err.msg})") from None
    by_name = {entry["name"]: entry for entry in entries}
    chosen = _check_names(names, list(by_name), list(by_name), f"tasks in {index}")
    tasks = {}
    for name in chosen:
        entry = by_name[name]
        parts = {s: read_jsonl(root / name / f"{s}.jsonl") for s in SPLIT_NAMES
                 if (root / name / f"{s}.jsonl").exists()}
        if not parts:
            raise FileNotFoundError(f"{root / name}: no train/dev/test.jsonl for task {name!r}")
        tasks[name] = Task.from_records(
            name, None, entry.get("instruction", ""), category=entry.get("category", "generation"),
            metric=entry.get("metric"), labels=entry.get("labels"), family=entry.get("family"),
            description=entry.get("description", ""), splits=parts)
    return tasks


def _check_names(names, known: list[str], default: Sequence[str], what: str) -> list[str]:
    if names is None:
        return list(default)
    unknown = [n for n in names if n not in known]
    if unknown:
        raise UnknownTaskError(f"unknown task name(s) {unknown}; known {what}: {', '.join(known)}")
    order = {name: i for i, name in enumerate(known)}
    return sorted(dict.fromkeys(names), key=order.__getitem__)


# ----------------------------------------------------------------------------------------------
# Prompts and encoding
# ----------------------------------------------------------------------------------------------


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


def format_prompt(tok, instruction: str, input: str) -> str:
    """The prompt text for one example (the answer follows it directly).

    With a chat template: one user turn holding ``instruction + "\\n\\n" + input`` and the
    generation prompt (the assistant's turn header). Without one: a plain template
    ``"{instruction}\\n\\nInput: {input}\\nAnswer:"`` (the answer then starts with a space, see
    ``answer_ids``). An empty instruction leaves just the input.
    """
    if has_chat_template(tok):
        content = f"{instruction}\n\n{input}" if instruction else input
        return tok.apply_chat_template([{"role": "user", "content": content}],
                                       add_generation_prompt=True, tokenize=False)
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
                tokenize=False)
        except Exception:  # an unusual template: fall back to eos
            rendered = ""
        if sentinel in rendered:
            suffix = rendered[rendered.rindex(sentinel) + len(sentinel):]
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
        ids = full[len(head):] if full[:len(head)] == head else \
            tok(" " + text, add_special_tokens=False).input_ids
        if not text.strip():
            ids = []  # a lone space token is not an answer
    if not ids:
        raise EncodingError(f"the answer {text!r} tokenizes to zero tokens; every output must "
                            f"contain text (check for empty outputs in the data)")
    end = end_marker_id(tok)
    return list(ids) + ([end] if end is not None else [])


def encode(tok, data: Split | Iterable[Example], max_length: int = 512, *,
           instruction: str | None = None) -> list[Encoded]:
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
            raise TypeError("encode needs a Split (which knows its task's instruction) or "
                            "instruction=...")
        instruction = task.instruction
    examples = _to_examples(data, lambda i: f"example {i}")
    encoded, n_truncated = [], 0
    for i, ex in enumerate(examples):
        try:
            answer = answer_ids(tok, ex.output)
        except EncodingError as err:
            raise EncodingError(f"{_where(data, i)}: {err}") from None
        prompt = prompt_ids(tok, instruction, ex.input)
        if len(prompt) + len(answer) > max_length:
            prompt = _truncated_prompt(tok, instruction, ex.input, len(answer), max_length,
                                       _where(data, i))
            n_truncated += 1
        encoded.append(Encoded(prompt + answer, len(prompt)))
    if n_truncated:
        warnings.warn(f"encode: {n_truncated} of {len(encoded)} examples exceeded "
                      f"max_length={max_length} tokens; their inputs were truncated (instruction "
                      f"and answer kept whole)", stacklevel=2)
    return encoded


def _truncated_prompt(tok, instruction, text, n_answer, max_length, where) -> list[int]:
    """Prompt ids with the input cut from the end so that prompt + answer fit max_length."""
    overhead = len(prompt_ids(tok, instruction, ""))
    budget = max_length - n_answer - overhead
    if budget < 0:
        raise EncodingError(
            f"{where}: the prompt without its input ({overhead} tokens) plus the answer "
            f"({n_answer} tokens) exceed max_length={max_length}; raise max_length or shorten "
            f"the instruction/answer")
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


def collate(encoded: Sequence[Encoded], pad_token_id: int | None,
            padding_side: str = "right") -> dict[str, torch.Tensor]:
    """Pad encoded examples into a batch.

    Returns:
        input_ids (B, T) long, padded with ``pad_token_id``; attention_mask (B, T) long, 1 on
        real tokens; labels (B, T) long: the token id on answer positions, -100 elsewhere
        (prompt and padding). Causal shift: the logits at position t - 1 predict labels[:, t].
        Right padding is for scoring and training; left padding (every prompt ends at the
        same position) is for generation.
    """
    if pad_token_id is None:
        raise ValueError("the tokenizer has no pad token; set tok.pad_token = tok.eos_token "
                         "(tn.load_model does this)")
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
        input_ids[b, start:start + n] = torch.tensor(e.input_ids, dtype=torch.long)
        attention_mask[b, start:start + n] = 1
        labels[b, start + e.answer_start:start + n] = input_ids[b, start + e.answer_start:start + n]
    return {"input_ids": input_ids, "attention_mask": attention_mask, "labels": labels}


def batches(tok, split: Split, batch_size: int, max_length: int = 512,
            padding_side: str = "right"):
    """Collated batches of ``split`` in order (the last one may be smaller)."""
    encoded = encode(tok, split, max_length=max_length)
    for start in range(0, len(encoded), batch_size):
        yield collate(encoded[start:start + batch_size], tok.pad_token_id, padding_side)


# ----------------------------------------------------------------------------------------------
# The paper's data sets on the Hugging Face Hub
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class HubSpec:
    """How to turn one hub data set into a Task.

    Attributes:
        path, config: ``datasets.load_dataset(path, config)``.
        splits: our split name -> the hub's split name. A missing "dev" (or "test") is carved
            from the hub's train split with a seeded shuffle (GLUE-style test sets have no
            labels, so their validation split serves as our test split).
        to_record: hub row -> ``{"input", "output"}``, or None to drop the row (e.g. unlabeled).
        columns: the hub columns ``to_record`` reads (what local files must provide).
    """

    path: str
    config: str | None
    splits: Mapping[str, str]
    to_record: Callable[[Mapping], dict | None]
    columns: tuple[str, ...]
    instruction: str
    category: str
    metric: str
    labels: tuple[str, ...] | None = None
    family: str | None = None
    description: str = ""


def _label(names: Sequence[str], value) -> str | None:
    """A class name from a hub label: an integer index (or its string form, as CSV gives it)
    or the name itself; None for unlabeled rows (GLUE uses -1)."""
    if isinstance(value, str):
        if value in names:
            return value
        value = value.strip()
        if not value.lstrip("-").isdigit():
            raise TaskDataError(f"label {value!r} is neither an index nor one of {list(names)}")
        value = int(value)
    if value is None or int(value) < 0:
        return None
    return names[int(value)]


def _pair(first: str, second: str, a: str, b: str) -> str:
    return f"{first}: {a}\n{second}: {b}"


def _first(values) -> str:
    """The first reference of a list-valued answer column (or the value itself)."""
    if isinstance(values, (list, tuple)):
        return values[0] if values else ""
    return values


def _classification(path, config, splits, columns, labels, family, instruction, make_input,
                    label_column="label", description=""):
    options = ", ".join(labels)

    def to_record(row):
        output = _label(labels, row[label_column])
        return None if output is None else {"input": make_input(row), "output": output}

    return HubSpec(path, config, splits, to_record, columns,
                   f"{instruction} Answer with one of: {options}.", "classification", "accuracy",
                   tuple(labels), family, description)


def _generation(path, config, splits, columns, family, instruction, make_input, make_output,
                description=""):
    def to_record(row):
        output = make_output(row)
        return None if not output or not str(output).strip() else \
            {"input": make_input(row), "output": str(output).strip()}

    return HubSpec(path, config, splits, to_record, columns, instruction, "generation", "rouge_l",
                   None, family, description)


def _amazon_food(row):
    # Kaggle's Amazon Fine Food reviews: Score 1-5. The paper does not say how it binarised
    # them; we use 1-2 -> negative, 4-5 -> positive and drop the neutral 3s.
    score = int(row["Score"])
    if score == 3:
        return None
    return {"input": f"{row['Summary']}. {row['Text']}".strip(),
            "output": "positive" if score > 3 else "negative"}


GLUE = "nyu-mll/glue"
TRAIN_VAL = {"train": "train", "test": "validation"}
TRAIN_VAL_TEST = {"train": "train", "dev": "validation", "test": "test"}
TRAIN_TEST = {"train": "train", "test": "test"}
NLI = ("entailment", "neutral", "contradiction")

# The hub ids below are the canonical public copies as of 2025. Uncertain choices: the paper
# names "Amazon Fine Food" and "GPT-NLI" without ids (we use a mirror of the Kaggle/SNAP file
# and a GPT-3-generated NLI set); the continual-learning "Amazon" task follows the 5-class
# review-rating benchmark of de Masson d'Autume et al. (a public 5-class English copy).
HUB_TASKS: dict[str, HubSpec] = {
    # -- classification (accuracy) -------------------------------------------------------------
    "amazon_food": HubSpec(
        # A single "train" split on the hub: dev and test are carved from it.
        "kfuangsung/AmazonFineFoodReviews", None, {"train": "train"},
        _amazon_food, ("Score", "Summary", "Text"),
        "Is the sentiment of this food review positive or negative? Answer with one of: "
        "negative, positive.", "classification", "accuracy", ("negative", "positive"),
        "sentiment", "Amazon Fine Food reviews (SNAP), 1-2 stars negative, 4-5 positive."),
    "sst2": _classification(
        GLUE, "sst2", TRAIN_VAL, ("sentence", "label"), ("negative", "positive"), "sentiment",
        "What is the sentiment of this movie review sentence?", lambda r: r["sentence"]),
    "qqp": _classification(
        GLUE, "qqp", TRAIN_VAL, ("question1", "question2", "label"),
        ("not_duplicate", "duplicate"), "paraphrase",
        "Do these two questions ask the same thing?",
        lambda r: _pair("Question 1", "Question 2", r["question1"], r["question2"])),
    "paws": _classification(
        "google-research-datasets/paws", "labeled_final", TRAIN_VAL_TEST,
        ("sentence1", "sentence2", "label"), ("not_paraphrase", "paraphrase"), "paraphrase",
        "Are these two sentences paraphrases of each other?",
        lambda r: _pair("Sentence 1", "Sentence 2", r["sentence1"], r["sentence2"])),
    "mnli": _classification(
        GLUE, "mnli", {"train": "train", "test": "validation_matched"},
        ("premise", "hypothesis", "label"), NLI, "nli",
        "Does the premise entail the hypothesis, contradict it, or neither?",
        lambda r: _pair("Premise", "Hypothesis", r["premise"], r["hypothesis"])),
    "gpt_nli": _classification(
        "pietrolesci/gpt3_nli", None, {"train": "train"}, ("premise", "hypothesis", "label"),
        NLI, "nli", "Does the premise entail the hypothesis, contradict it, or neither?",
        lambda r: _pair("Premise", "Hypothesis", r["premise"], r["hypothesis"]),
        description="GPT-3-generated NLI pairs (hub id uncertain; pass local files if needed)."),
    # -- generation (ROUGE-L) ------------------------------------------------------------------
    "sciqa": _generation(
        "allenai/sciq", None, TRAIN_VAL_TEST, ("question", "support", "correct_answer"), "qa",
        "Answer the science question.",
        lambda r: (f"Context: {r['support']}\n" if r.get("support") else "")
        + f"Question: {r['question']}",
        lambda r: r["correct_answer"]),
    "tweetqa": _generation(
        "ucsbnlp/tweet_qa", None, TRAIN_VAL, ("Tweet", "Question", "Answer"), "qa",
        "Answer the question about the tweet.",
        lambda r: f"Tweet: {r['Tweet']}\nQuestion: {r['Question']}", lambda r: _first(r["Answer"])),
    "e2e": _generation(
        "tuetschek/e2e_nlg", None, TRAIN_VAL_TEST, ("meaning_representation", "human_reference"),
        "data_to_text", "Describe the restaurant in one or two sentences from its attributes.",
        lambda r: r["meaning_representation"], lambda r: r["human_reference"]),
    "commongen": _generation(
        "allenai/common_gen", None, TRAIN_VAL, ("concepts", "target"), "concept_to_text",
        "Write one everyday sentence that uses all of these concepts.",
        lambda r: ", ".join(r["concepts"]) if isinstance(r["concepts"], list) else r["concepts"],
        lambda r: r["target"]),
    "cnn_dailymail": _generation(
        "abisee/cnn_dailymail", "3.0.0", TRAIN_VAL_TEST, ("article", "highlights"),
        "summarization", "Summarize the news article in a few sentences.",
        lambda r: r["article"], lambda r: r["highlights"]),
    "xsum": _generation(
        "EdinburghNLP/xsum", None, TRAIN_VAL_TEST, ("document", "summary"), "summarization",
        "Summarize the article in one sentence.", lambda r: r["document"], lambda r: r["summary"]),
    # -- continual-learning benchmarks (plus mnli, qqp, sst2 above) ---------------------------
    "ag_news": _classification(
        "fancyzhx/ag_news", None, TRAIN_TEST, ("text", "label"),
        ("World", "Sports", "Business", "Sci/Tech"), "topic",
        "What is the topic of this news article?", lambda r: r["text"]),
    "amazon": _classification(
        "SetFit/amazon_reviews_multi_en", None, TRAIN_VAL_TEST, ("text", "label"),
        ("very negative", "negative", "neutral", "positive", "very positive"), "sentiment",
        "How positive is this product review?", lambda r: r["text"],
        description="5-class Amazon review ratings (hub copy uncertain)."),
    "dbpedia": _classification(
        "fancyzhx/dbpedia_14", None, TRAIN_TEST, ("title", "content", "label"),
        ("Company", "EducationalInstitution", "Artist", "Athlete", "OfficeHolder",
         "MeanOfTransportation", "Building", "NaturalPlace", "Village", "Animal", "Plant",
         "Album", "Film", "WrittenWork"), "topic",
        "What kind of entity does this encyclopedia entry describe?",
        lambda r: f"{r['title']}: {r['content']}"),
    "yahoo": _classification(
        "community-datasets/yahoo_answers_topics", None, TRAIN_TEST,
        ("question_title", "question_content", "best_answer", "topic"),
        ("Society & Culture", "Science & Mathematics", "Health", "Education & Reference",
         "Computers & Internet", "Sports", "Business & Finance", "Entertainment & Music",
         "Family & Relationships", "Politics & Government"), "topic",
        "What is the topic of this question and answer?",
        lambda r: f"Question: {r['question_title']} {r['question_content']}".strip()
        + f"\nAnswer: {r['best_answer']}", label_column="topic"),
    "rte": _classification(
        GLUE, "rte", TRAIN_VAL, ("sentence1", "sentence2", "label"),
        ("entailment", "not_entailment"), "nli", "Does the first sentence entail the second?",
        lambda r: _pair("Sentence 1", "Sentence 2", r["sentence1"], r["sentence2"])),
}

PAPER_TASKS = ("amazon_food", "sst2", "qqp", "paws", "mnli", "gpt_nli",
               "sciqa", "tweetqa", "e2e", "commongen", "cnn_dailymail", "xsum")
CONTINUAL_TASKS = ("ag_news", "amazon", "dbpedia", "yahoo")
CONTINUAL_LONG_TASKS = CONTINUAL_TASKS + ("mnli", "qqp", "rte", "sst2")

# Split sizes carved from train when the hub has no such split: min(cap, fraction of train).
_CARVE = {"dev": (0.1, 1000), "test": (0.2, 2000)}
_LOCAL_BUILDERS = {".jsonl": "json", ".json": "json", ".csv": "csv", ".tsv": "csv",
                   ".parquet": "parquet"}


def load_hub_task(
    name: str,
    split_sizes: Mapping[str, int | None] | Sequence[int | None] | None = None,
    *,
    seed: int = 0,
    cache_dir: str | os.PathLike | None = None,
    source: str | os.PathLike | None = None,
    data_files: str | Sequence | Mapping | None = None,
    **load_dataset_kwargs,
) -> Task:
    """One of the paper's tasks (``HUB_TASKS``) as a Task, via ``datasets.load_dataset``.

    Args:
        split_sizes: examples to keep per split, ``{"train": 1000, "dev": 200, "test": 300}`` or
            a (train, dev, test) tuple; None (or a None entry) keeps the whole split. Subsets
            are a seeded shuffle of the hub split.
        source: a local file or folder with the data set's own columns (``HubSpec.columns``);
            a folder's files (train.*, dev.*, validation.*, test.*) are named like our splits
            or the hub's (validation.* is whatever the hub's validation split is for the task).
        data_files: passed to ``load_dataset("json" | "csv" | "parquet", data_files=...)``;
            keys may be our split names or the hub's. Local data goes through the same mapping.
        load_dataset_kwargs: passed on (revision, token, ...).

    Raises:
        UnknownTaskError: the name is not in HUB_TASKS.
        HubUnavailableError: the hub cannot be reached (offline); says how to use local files.
    """
    if name not in HUB_TASKS:
        raise UnknownTaskError(f"unknown hub task {name!r}; known: {', '.join(HUB_TASKS)}")
    spec = HUB_TASKS[name]
    sizes = _split_sizes(split_sizes)
    if source is not None or data_files is not None:
        dataset = _load_local(spec, source, data_files, cache_dir, load_dataset_kwargs)
    else:
        dataset = _load_from_hub(name, spec, cache_dir, load_dataset_kwargs)
    parts = _resolve_splits(name, spec, dataset, sizes, seed)
    return Task.from_records(name, None, spec.instruction, category=spec.category,
                             metric=spec.metric, labels=spec.labels, family=spec.family,
                             description=spec.description or f"{spec.path} ({spec.config})",
                             splits=parts)


def _split_sizes(split_sizes) -> dict[str, int | None]:
    if split_sizes is None:
        return dict.fromkeys(SPLIT_NAMES)
    if isinstance(split_sizes, Mapping):
        unknown = set(split_sizes) - set(SPLIT_NAMES)
        if unknown:
            raise ValueError(f"unknown split names {sorted(unknown)} in split_sizes")
        return {s: split_sizes.get(s) for s in SPLIT_NAMES}
    split_sizes = tuple(split_sizes)
    if len(split_sizes) != 3:
        raise ValueError(f"split_sizes must be (train, dev, test), got {split_sizes}")
    return dict(zip(SPLIT_NAMES, split_sizes))


@contextlib.contextmanager
def _honour_offline_env():
    """``datasets`` and ``huggingface_hub`` read HF_HUB_OFFLINE once, at import; read it now so
    that setting it later (in a notebook, a test) avoids minutes of connection retries."""
    offline = any(os.environ.get(var, "").upper() in ("1", "ON", "YES", "TRUE")
                  for var in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"))
    if not offline:
        yield False
        return
    import datasets.config
    import huggingface_hub.constants
    saved = datasets.config.HF_HUB_OFFLINE, huggingface_hub.constants.HF_HUB_OFFLINE
    datasets.config.HF_HUB_OFFLINE = huggingface_hub.constants.HF_HUB_OFFLINE = True
    try:
        yield True
    finally:
        datasets.config.HF_HUB_OFFLINE, huggingface_hub.constants.HF_HUB_OFFLINE = saved


def _load_from_hub(name: str, spec: HubSpec, cache_dir, kwargs):
    import datasets

    with _honour_offline_env() as offline:
        try:
            return datasets.load_dataset(spec.path, spec.config, cache_dir=cache_dir, **kwargs)
        except ConnectionError as err:  # also what datasets raises in offline mode
            reason = "HF_HUB_OFFLINE is set" if offline else f"{type(err).__name__}: {err}"
            example = {s: f"{s}.jsonl" for s in ("train", *spec.splits)}
            raise HubUnavailableError(
                f"hub task {name!r} needs network access to download {spec.path!r}"
                f"{f' ({spec.config})' if spec.config else ''} from the Hugging Face Hub, and it "
                f"is not in the local cache ({reason}). Without network access, pass local files "
                f"in the data set's own columns {list(spec.columns)} instead: "
                f"load_hub_task({name!r}, data_files={example}) or "
                f"load_hub_task({name!r}, source='folder/with/train.jsonl')") from err


def _load_local(spec: HubSpec, source, data_files, cache_dir, kwargs):
    import datasets

    if data_files is None:
        source = Path(source)
        if source.is_dir():
            # Keys stay the file stems; _resolve_splits maps them as it maps hub split names.
            data_files = {}
            for stem in ("train", "dev", "validation", "test"):
                found = [p for p in sorted(source.glob(f"{stem}.*")) if p.suffix in _LOCAL_BUILDERS]
                if found:
                    data_files[stem] = str(found[0])
            if not data_files:
                raise FileNotFoundError(f"{source}: no train/dev/validation/test files "
                                        f"({', '.join(_LOCAL_BUILDERS)})")
        elif source.exists():
            data_files = {"train": str(source)}
        else:
            raise FileNotFoundError(f"{source}: no such file or folder")
    files = data_files.values() if isinstance(data_files, Mapping) else \
        [data_files] if isinstance(data_files, (str, os.PathLike)) else data_files
    suffixes = {Path(str(f)).suffix for f in files}
    builders = {_LOCAL_BUILDERS.get(s) for s in suffixes}
    if len(builders) != 1 or None in builders:
        raise ValueError(f"local files must all be one of {sorted(_LOCAL_BUILDERS)}, "
                         f"got {suffixes}")
    builder = builders.pop()
    if ".tsv" in suffixes:
        kwargs = {"delimiter": "\t", **kwargs}
    if isinstance(data_files, Mapping):
        data_files = {k: str(v) for k, v in data_files.items()}
    return datasets.load_dataset(builder, data_files=data_files, cache_dir=cache_dir, **kwargs)


def _resolve_splits(name: str, spec: HubSpec, dataset, sizes, seed) -> dict[str, list[dict]]:
    """Map the loaded DatasetDict onto train/dev/test, carve missing ones from train, subsample
    and convert rows with ``spec.to_record``."""
    found = {}
    for split_name in SPLIT_NAMES:
        for key in (split_name, spec.splits.get(split_name)):
            if key is not None and key in dataset:
                found[split_name] = dataset[key]
                break
    if "train" in found:
        train = found["train"].shuffle(seed=seed)
        start = 0
        for split_name in ("dev", "test"):
            if split_name in found:
                continue
            fraction, cap = _CARVE[split_name]
            n = sizes[split_name] or min(cap, int(fraction * len(train)))
            found[split_name] = train.select(range(start, min(start + n, len(train))))
            start += n
        if start >= len(train) and len(train) > 0:
            raise TaskDataError(f"hub task {name!r}: train has {len(train)} rows, too few to "
                                f"carve dev/test from; pass more data or smaller split_sizes")
        found["train"] = train.select(range(start, len(train)))
    parts = {}
    for split_name, rows in found.items():
        parts[split_name] = _convert(name, spec, rows, sizes[split_name], seed)
    return parts


def _convert(name, spec: HubSpec, rows, n: int | None, seed: int) -> list[dict]:
    missing = [c for c in spec.columns if c not in rows.column_names]
    if missing:
        raise TaskDataError(f"hub task {name!r}: the data has columns {rows.column_names} but "
                            f"needs {list(spec.columns)} (missing {missing})")
    if n is not None:
        rows = rows.shuffle(seed=seed)
    records = []
    for i, row in enumerate(rows):
        if n is not None and len(records) >= n:
            break
        try:
            record = spec.to_record(row)
        except (KeyError, TypeError, ValueError) as err:
            raise TaskDataError(f"hub task {name!r}, row {i}: cannot map {dict(row)!r} "
                                f"({type(err).__name__}: {err})") from None
        if record is not None:
            records.append(record)
    return records
