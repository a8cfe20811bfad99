"""Nasty inputs and write faults, and how their outcomes are judged: the cases of
``tests/test_fuzz.py``, also counted by ``benchmarks/fault_counts.py``.

Fuzzed inputs (``input_cases``): a fixed list of nasty strings (``TEXTS``: empty,
whitespace-only, far past ``max_length``, CJK, emoji, right-to-left text and bidi marks,
combining marks, NUL, ESC, CR, a lone surrogate, and a few drawn with ``random.Random(SEED)``
from a nasty alphabet), each as an example's input and as its output, through
``tn.Task.from_records`` (generation and classification), ``tn.evaluate`` (both categories),
``tn.attribute`` and ``tn.top_examples`` (task data and plain strings); then labels outside the
options, duplicate examples, a huge number of options, None / int / bytes in text fields,
``max_length`` below the prompt, empty data and zero batch sizes. Each must return a result
(finite where it should be) or raise an exception that is one line, a ValueError, TypeError or
LookupError (KeyError, IndexError) or one of ``taskneuron_utils.errors``, and was raised by
the package itself: the innermost frame of its traceback is in ``taskneuron_utils``, not in
torch, transformers, tokenizers or pandas (``judge``). An error *names its cause* when it
matches the case's ``cause`` pattern (the field, value or limit at fault).

Write faults (``WRITERS`` x ``FAULTS``): every writer of artefacts against a folder in the way of
its file (or a file in the way of its folder), a parent that is a file, a read-only folder
(chmod 0o555; as root, which chmod does not stop, a read-only tmpfs mount instead), a full
disk (a 64 KiB tmpfs filled up) and, for writers of several files, a disk that fills up
between two of them (one page left). Each must raise a one-line error naming the path and
leave nothing behind: no temporary file, no folder it made, an earlier file unchanged.
"""

from __future__ import annotations

import contextlib
import math
import os
import random
import re
import shutil
import subprocess
import traceback
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import pandas as pd
import torch

import taskneuron_utils as tn
from taskneuron_utils import errors
from taskneuron_utils.io import hub
from taskneuron_utils.tasks import Example, Split

PACKAGE = Path(tn.__file__).resolve().parent
ERROR_CLASSES = tuple(
    value
    for value in vars(errors).values()
    if isinstance(value, type) and issubclass(value, Exception)
)
ALLOWED = (ValueError, TypeError, LookupError, *ERROR_CLASSES)
SEED = 2024
NEURON = [("layers.0.mlp.act", 1)]

# --- nasty inputs ---------------------------------------------------------------------------------

TEXTS = {
    "empty": "",
    "whitespace": " \t  ",
    "past_max_length": "word " * 500,
    "cjk": "汉字と仮名と한글",
    "emoji": "🙂🚀👍🏽👨‍👩‍👧",
    "rtl": "مرحبا بالعالم שלום",
    "bidi_marks": "\u202eabc\u200f\u2066x\u2069",
    "combining": "e\u0301a\u0308\u20dd\u0338",
    "nul": "a\x00b",
    "escape": "\x1b[31mred\x1b[0m",
    "carriage_return": "a\rb\r\n",
    "newlines": "line 1\nline 2\n",
    "lone_surrogate": "a\ud800b",
}
_ALPHABET = list("\x00\x01\x07\x08\x0b\x1b\x7f\r\n\t \u00a0\u0301\u200b\u200f\u202e\ufeff") + list(
    "汉字🙂👍🏽é∑∞aZ9<>&\"'\\"
)
_rng = random.Random(SEED)
for _i in range(3):
    TEXTS[f"random_{_i}"] = "".join(_rng.choice(_ALPHABET) for _ in range(_rng.randint(1, 40)))

# What an error of a text case must mention to name its cause: the limit, the empty answer, the
# field, the label or the encoding.
TEXT_CAUSE = r"max_length|zero tokens|empty|must be a string|not one of the labels|surrogate|label"


@dataclass
class Case:
    """One fuzzed call: ``run(ctx)`` returns a result or raises; ``cause`` is the pattern an
    error must match to name its cause (None: a result is expected, an error names nothing)."""

    name: str
    call: str  # from_records, evaluate, attribute or top_examples
    run: Callable[[Context], object]
    cause: str | None = TEXT_CAUSE


@dataclass
class Outcome:
    case: str
    call: str
    result: str | None = None  # the result's type when it returned
    finite: bool | None = None
    error: str | None = None  # "Type: message" when it raised
    one_line: bool | None = None
    allowed_type: bool | None = None
    ours: bool | None = None
    innermost: str | None = None  # file:line of the innermost frame
    named_cause: bool | None = None

    @property
    def ok(self) -> bool:
        if self.error is None:
            return bool(self.finite)
        return bool(self.one_line and self.allowed_type and self.ours)

    def problems(self) -> str:
        if self.error is None:
            return "" if self.finite else f"{self.case}: a result that is not finite"
        found = [
            what
            for what, fine in (
                ("more than one line", self.one_line),
                ("not a ValueError/TypeError/LookupError/tn.errors class", self.allowed_type),
                (f"raised outside the package, at {self.innermost}", self.ours),
            )
            if not fine
        ]
        return f"{self.case}: {self.error!r}: {', '.join(found)}" if found else ""


class Context:
    """The tiny model and tokenizer, and what the cases and writers build from them (lazily)."""

    def __init__(self, model, tok):
        self.model, self.tok = model, tok

    @cached_property
    def addition(self) -> tn.Task:
        return tn.load_tasks(["addition"])["addition"]

    @cached_property
    def data(self) -> Split:
        return self.addition.train[:4]

    @cached_property
    def relevance(self) -> tn.Relevance:
        return tn.attribute(self.model, self.tok, self.data, batch_size=2, progress=False)

    @cached_property
    def neurons(self) -> tn.NeuronSet:
        return self.relevance.top_k(0.1)

    @cached_property
    def act_neurons(self) -> tn.NeuronSet:
        act = tn.attribute(
            self.model, self.tok, self.data, batch_size=2, kinds="act", progress=False
        )
        return act.top_k(0.5)


# --- building tasks around one nasty text ---------------------------------------------------------

GENERATION = [("apple river", "river apple"), ("stone cloud", "cloud stone")]
CLASSIFICATION = [("apple 1", "yes"), ("river 2", "no")]


def records(text: str, where: str, category: str) -> list[dict]:
    """The nasty example first (``text`` as its input or output), then two plain ones."""
    plain = GENERATION if category == "generation" else CLASSIFICATION
    nasty = (text, plain[0][1]) if where == "input" else (plain[0][0], text)
    return [{"input": i, "output": o} for i, o in [nasty, *plain]]


def task_of(text: str, where: str, category: str, **options) -> tn.Task:
    """A task whose train and test splits are ``records`` (three examples)."""
    rows = records(text, where, category)
    return tn.Task.from_records(
        f"fuzz_{category}",
        splits={"train": rows, "test": rows},
        category=category,
        instruction="Do it.",
        **options,
    )


def ten_records(text: str, where: str, category: str) -> list[dict]:
    return records(text, where, category) + records("apple", "input", category)[1:] * 4


def evaluate(ctx, split, **options):
    return tn.evaluate(ctx.model, ctx.tok, split, progress=False, max_new_tokens=2, **options)


def attribute(ctx, data, **options):
    return tn.attribute(ctx.model, ctx.tok, data, progress=False, **{"batch_size": 2, **options})


def top_examples(ctx, data, **options):
    return tn.top_examples(ctx.model, ctx.tok, data, NEURON, k=2, progress=False, **options)


def input_cases() -> list[Case]:
    """Every fuzzed call, in a fixed order."""
    cases = []
    for name, text in TEXTS.items():
        for where in ("input", "output"):
            tag = f"{where}={name}"
            for category in ("generation", "classification"):
                short = category[:3]
                cases.append(
                    Case(
                        f"from_records {short} {tag}",
                        "from_records",
                        lambda ctx, t=text, w=where, c=category: tn.Task.from_records(
                            "fuzz", ten_records(t, w, c), category=c
                        ),
                    )
                )
                cases.append(
                    Case(
                        f"evaluate {short} {tag}",
                        "evaluate",
                        lambda ctx, t=text, w=where, c=category: evaluate(
                            ctx, task_of(t, w, c).test
                        ),
                    )
                )
            cases.append(
                Case(
                    f"attribute {tag}",
                    "attribute",
                    lambda ctx, t=text, w=where: attribute(ctx, task_of(t, w, "generation").train),
                )
            )
            cases.append(
                Case(
                    f"top_examples {tag}",
                    "top_examples",
                    lambda ctx, t=text, w=where: top_examples(
                        ctx, task_of(t, w, "generation").train
                    ),
                )
            )
        cases.append(
            Case(
                f"top_examples strings {name}",
                "top_examples",
                lambda ctx, t=text: top_examples(ctx, [t, "a plain string"]),
            )
        )
        cases.append(
            Case(
                f"top_examples string alone {name}",
                "top_examples",
                lambda ctx, t=text: top_examples(ctx, [t]),
                cause=TEXT_CAUSE + r"|no tokens",
            )
        )
    long = TEXTS["past_max_length"]
    for max_length in (16, 48):
        cases += [
            Case(
                f"evaluate gen max_length={max_length} long input",
                "evaluate",
                lambda ctx, m=max_length: evaluate(
                    ctx, task_of(long, "input", "generation").test, max_length=m
                ),
                r"max_length",
            ),
            Case(
                f"evaluate cls max_length={max_length} long input",
                "evaluate",
                lambda ctx, m=max_length: evaluate(
                    ctx, task_of(long, "input", "classification").test, max_length=m
                ),
                r"max_length",
            ),
            Case(
                f"attribute max_length={max_length} long input",
                "attribute",
                lambda ctx, m=max_length: attribute(
                    ctx, task_of(long, "input", "generation").train, max_length=m
                ),
                r"max_length",
            ),
            Case(
                f"top_examples max_length={max_length} long input",
                "top_examples",
                lambda ctx, m=max_length: top_examples(
                    ctx, task_of(long, "input", "generation").train, max_length=m
                ),
                r"max_length",
            ),
            Case(
                f"top_examples strings max_length={max_length} long input",
                "top_examples",
                lambda ctx, m=max_length: top_examples(ctx, [long], max_length=m),
                r"max_length",
            ),
        ]
    return cases + special_cases()


def _outside(ctx) -> Split:
    """A test split of a yes/no task holding an example labelled "maybe" (a Split built by
    hand: ``Task`` itself refuses one)."""
    task = task_of("apple", "input", "classification")
    return Split([Example("pear 3", "maybe"), *task.test], task, "test")


def _duplicates(category: str) -> tn.Task:
    rows = [{"input": "apple 1", "output": "yes"}] * 5 + [{"input": "river 2", "output": "no"}] * 5
    if category == "generation":
        rows = [{"input": "apple river", "output": "river apple"}] * 10
    return tn.Task.from_records("dup", rows, category=category, splits=(0.6, 0.2, 0.2))


def _many_options(n: int) -> tn.Task:
    labels = [f"option {i}" for i in range(n)]
    rows = [{"input": f"pick {i}", "output": labels[i]} for i in range(3)]
    return tn.Task.from_records(
        "many", splits={"test": rows}, category="classification", labels=labels
    )


def _records(**fields) -> list[dict]:
    return [{"input": "apple", "output": "yes", **fields}] * 10


def special_cases() -> list[Case]:
    """Labels outside the options, duplicates, many options, wrong types, empty data."""
    yes_no = {"category": "classification", "labels": ["yes", "no"]}
    return [
        Case(
            "from_records label outside the options",
            "from_records",
            lambda ctx: tn.Task.from_records("t", _records(output="maybe"), **yes_no),
            r"'maybe'.*labels",
        ),
        Case(
            "evaluate label outside the options",
            "evaluate",
            lambda ctx: evaluate(ctx, _outside(ctx)),
            r"'maybe'.*labels",
        ),
        Case(
            "attribute label outside the options",
            "attribute",
            lambda ctx: attribute(ctx, _outside(ctx)),
            None,
        ),
        Case(
            "top_examples label outside the options",
            "top_examples",
            lambda ctx: top_examples(ctx, _outside(ctx)),
            None,
        ),
        *[
            Case(f"{call} duplicate examples {category}", call, run, None)
            for category in ("generation", "classification")
            for call, run in (
                ("from_records", lambda ctx, c=category: _duplicates(c)),
                ("evaluate", lambda ctx, c=category: evaluate(ctx, _duplicates(c).test)),
                ("attribute", lambda ctx, c=category: attribute(ctx, _duplicates(c).train)),
                ("top_examples", lambda ctx, c=category: top_examples(ctx, _duplicates(c).train)),
            )
        ],
        Case("from_records 500 options", "from_records", lambda ctx: _many_options(500), None),
        Case(
            "evaluate 64 options",
            "evaluate",
            lambda ctx: evaluate(ctx, _many_options(64).test, batch_size=1),
            None,
        ),
        *[
            Case(
                f"from_records {key}={value!r}",
                "from_records",
                lambda ctx, k=key, v=value: tn.Task.from_records("t", _records(**{k: v})),
                rf"'{key}'.*must be a string",
            )
            for key in ("input", "output")
            for value in (None, 3, 2.5, b"bytes", ["a list"])
        ],
        *[
            Case(
                f"from_records {what}",
                "from_records",
                run,
                cause,
            )
            for what, run, cause in (
                (
                    "instruction=None",
                    lambda ctx: tn.Task.from_records("t", _records(), instruction=None),
                    "instruction",
                ),
                (
                    "instruction=3",
                    lambda ctx: tn.Task.from_records("t", _records(), instruction=3),
                    "instruction",
                ),
                ("name=None", lambda ctx: tn.Task.from_records(None, _records()), "task name"),
                ("name=7", lambda ctx: tn.Task.from_records(7, _records()), "task name"),
                (
                    "name with a line break",
                    lambda ctx: tn.Task.from_records("a\nb", _records()),
                    "task name",
                ),
                (
                    "name with ESC",
                    lambda ctx: tn.Task.from_records("a\x1b[2Jb", _records()),
                    "task name",
                ),
                (
                    "labels=[1, 2]",
                    lambda ctx: tn.Task.from_records(
                        "t", _records(), category="classification", labels=[1, 2]
                    ),
                    "label",
                ),
                (
                    "labels='yn' (a string)",
                    lambda ctx: tn.Task.from_records(
                        "t", _records(), category="classification", labels="yn"
                    ),
                    "labels must be a list",
                ),
                (
                    "repeated labels",
                    lambda ctx: tn.Task.from_records(
                        "t",
                        _records(),
                        category="classification",
                        labels=["yes", "no", "yes"],
                    ),
                    "more than once",
                ),
                ("records=5", lambda ctx: tn.Task.from_records("t", 5), "records must be"),
                ("records=None", lambda ctx: tn.Task.from_records("t", None), "records"),
                ("records=[]", lambda ctx: tn.Task.from_records("t", []), "no examples"),
                (
                    "records of strings",
                    lambda ctx: tn.Task.from_records("t", ["a", "b"]),
                    "expected a dict",
                ),
                (
                    "record without output",
                    lambda ctx: tn.Task.from_records("t", [{"input": "a"}] * 5),
                    "missing field 'output'",
                ),
                (
                    "splits=('a', 'b', 'c')",
                    lambda ctx: tn.Task.from_records("t", _records(), splits=("a", "b", "c")),
                    "splits must be",
                ),
                (
                    "splits with an empty split",
                    lambda ctx: tn.Task.from_records("t", splits={"train": [], "test": _records()}),
                    "empty",
                ),
            )
        ],
        Case(
            "evaluate empty split",
            "evaluate",
            lambda ctx: evaluate(ctx, _duplicates("generation").test[:0]),
            "no examples",
        ),
        Case(
            "attribute empty split",
            "attribute",
            lambda ctx: attribute(ctx, _duplicates("generation").train[:0]),
            "no examples|empty",
        ),
        Case("top_examples no data", "top_examples", lambda ctx: top_examples(ctx, []), "empty"),
        Case(
            "top_examples data=None",
            "top_examples",
            lambda ctx: top_examples(ctx, None),
            r"\bdata\b",
        ),
        Case(
            "evaluate batch_size=0",
            "evaluate",
            lambda ctx: evaluate(ctx, _duplicates("classification").test, batch_size=0),
            "batch_size",
        ),
        Case(
            "attribute batch_size=0",
            "attribute",
            lambda ctx: attribute(ctx, _duplicates("generation").train, batch_size=0),
            "batch_size",
        ),
        Case(
            "top_examples batch_size=0",
            "top_examples",
            lambda ctx: top_examples(ctx, _duplicates("generation").train, batch_size=0),
            "batch_size",
        ),
        Case(
            "evaluate a list of Examples",
            "evaluate",
            lambda ctx: evaluate(ctx, [Example("a", "b")]),
            "Split",
        ),
        Case(
            "attribute a list of Examples",
            "attribute",
            lambda ctx: attribute(ctx, [Example("a", "b")]),
            "Split",
        ),
        Case(
            "top_examples neuron index out of range",
            "top_examples",
            lambda ctx: tn.top_examples(ctx.model, ctx.tok, ["a b"], [("layers.0.mlp.act", 999)]),
            "999",
        ),
    ]


# --- judging ----------------------------------------------------------------------------------


def _finite(result) -> bool:
    if isinstance(result, tn.Task):
        return True
    if isinstance(result, dict):  # evaluate
        return 0 <= result["score"] <= 1 and math.isfinite(result["nll"])
    if isinstance(result, tn.Relevance):
        return all(bool(torch.isfinite(v).all()) for v in result.sum_abs.values())
    if isinstance(result, pd.DataFrame):  # top_examples
        return bool(result["activation"].map(math.isfinite).all())
    return False


def judge(case: Case, ctx: Context) -> Outcome:
    """Run ``case`` and judge what it did."""
    outcome = Outcome(case.name, case.call)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = case.run(ctx)
    except Exception as err:  # what the case is about
        frames = traceback.extract_tb(err.__traceback__)
        inner = frames[-1] if frames else None
        message = str(err)
        outcome.error = f"{type(err).__name__}: {message}"
        outcome.one_line = "\n" not in message and "\r" not in message
        outcome.allowed_type = isinstance(err, ALLOWED)
        outcome.innermost = f"{inner.filename}:{inner.lineno}" if inner else "?"
        outcome.ours = inner is not None and Path(inner.filename).resolve().is_relative_to(PACKAGE)
        outcome.named_cause = bool(case.cause and re.search(case.cause, message))
        return outcome
    outcome.result = type(result).__name__
    outcome.finite = _finite(result)
    return outcome


def summary(outcomes: list[Outcome]) -> dict:
    errors_ = [o for o in outcomes if o.error is not None]
    return {
        "inputs_fuzzed": len(outcomes),
        "by_call": {
            call: sum(o.call == call for o in outcomes)
            for call in ("from_records", "evaluate", "attribute", "top_examples")
        },
        "results": len(outcomes) - len(errors_),
        "results_finite": sum(bool(o.finite) for o in outcomes if o.error is None),
        "errors": len(errors_),
        "errors_one_line": sum(bool(o.one_line) for o in errors_),
        "errors_of_an_allowed_type": sum(bool(o.allowed_type) for o in errors_),
        "errors_raised_by_the_package": sum(bool(o.ours) for o in errors_),
        "errors_naming_their_cause": sum(bool(o.named_cause) for o in errors_),
        "tracebacks_from_outside_the_package": [
            f"{o.case}: {o.error[:120]} at {o.innermost}" for o in errors_ if not o.ours
        ],
        "errors_not_naming_their_cause": [
            f"{o.case}: {o.error[:120]}" for o in errors_ if not o.named_cause
        ],
    }


# --- write faults -----------------------------------------------------------------------------


class Unavailable(Exception):
    """The fault cannot be made here (no tmpfs mount, or root where chmod cannot stop writes)."""


# name: (what the writer writes: "file" or "folder", write(ctx, path))
WRITERS: dict[str, tuple[str, Callable[[Context, Path], object]]] = {
    "NeuronSet.save": ("file", lambda ctx, p: ctx.neurons.save(p)),
    "NeuronSet.to_csv": ("file", lambda ctx, p: ctx.neurons.to_csv(p)),
    "NeuronSet.to_parquet": ("file", lambda ctx, p: ctx.neurons.to_parquet(p)),
    "Relevance.save": ("file", lambda ctx, p: ctx.relevance.save(p)),
    "NeuronSet.save_lape": ("file", lambda ctx, p: tn.NeuronSet.save_lape(ctx.act_neurons, p)),
    "attribute checkpoint": (
        "file",
        lambda ctx, p: tn.attribute(
            ctx.model, ctx.tok, ctx.data, batch_size=2, checkpoint=p, progress=False
        ),
    ),
    "export_lm_eval_task": (
        "folder",
        lambda ctx, p: tn.export_lm_eval_task(ctx.addition, ctx.tok, p, n=4),
    ),
    "export_neuron_pages": (
        "folder",
        lambda ctx, p: tn.export_neuron_pages(
            ctx.model, ctx.tok, ctx.data, NEURON, p, k=2, progress=False
        ),
    ),
    "io.hub.write_repo_folder": (
        "folder",
        lambda ctx, p: hub.write_repo_folder(ctx.neurons, p, command="fuzz"),
    ),
}
FAULTS = (
    "in_the_way",  # a folder where the file goes (a file where the folder goes)
    "parent_is_a_file",
    "read_only_chmod",
    "read_only_mount",
    "full_disk",
    "disk_fills_midway",  # writers of several files: room for the first one only
)


def applies(writer: str, fault: str) -> bool:
    return fault != "disk_fills_midway" or WRITERS[writer][0] == "folder"


def listing(folder: Path) -> dict[str, bytes | None]:
    """{relative path: bytes (None for a folder)} of everything under ``folder``."""
    return {
        str(p.relative_to(folder)): None if p.is_dir() else p.read_bytes()
        for p in sorted(folder.rglob("*"))
    }


@contextlib.contextmanager
def tmpfs(folder: Path, size: str = "64k"):
    """A tmpfs of ``size`` mounted on ``folder`` (Unavailable where mounting is refused)."""
    folder.mkdir(parents=True, exist_ok=True)
    if shutil.which("mount") is None:
        raise Unavailable("no mount command")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise Unavailable(f"mounting a tmpfs was refused ({done.stderr.strip()[:100]})")
    try:
        yield folder
    finally:
        if subprocess.run(["umount", str(folder)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(folder)], capture_output=True)


def remount_read_only(folder: Path) -> None:
    subprocess.run(["mount", "-o", "remount,ro", str(folder)], check=True, capture_output=True)


def fill(folder: Path, leave: int = 0) -> None:
    """Fill the file system of ``folder`` up, then free ``leave`` bytes (whole pages)."""
    filler = folder / "filler"
    with open(filler, "wb", buffering=0) as f:
        with contextlib.suppress(OSError):
            while True:
                f.write(b"\0" * 4096)
    if leave:
        os.truncate(filler, max(filler.stat().st_size - leave, 0))


@dataclass
class WriteOutcome:
    writer: str
    fault: str
    error: str | None = None
    one_line: bool = False
    names_path: bool = False
    left_behind: list[str] = field(default_factory=list)  # new or changed entries
    earlier_file_unchanged: bool | None = None

    @property
    def ok(self) -> bool:
        return (
            self.error is not None
            and self.one_line
            and self.names_path
            and not self.left_behind
            and self.earlier_file_unchanged is not False
        )

    def problems(self) -> str:
        if self.error is None:
            return f"{self.writer} / {self.fault}: no error was raised"
        found = [
            what
            for what, bad in (
                ("more than one line", not self.one_line),
                ("the path is not named", not self.names_path),
                (f"left behind {self.left_behind}", self.left_behind),
                ("the earlier file changed", self.earlier_file_unchanged is False),
            )
            if bad
        ]
        return f"{self.writer} / {self.fault}: {self.error!r}: {', '.join(found)}"


def _run_write(ctx, writer, target, sandbox, outcome, earlier=None) -> WriteOutcome:
    """Write ``target`` and judge it: an error naming ``target``, ``sandbox`` as it was (and
    the ``earlier`` file in it unchanged)."""
    _, write = WRITERS[writer]
    before = listing(sandbox)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            write(ctx, target)
    except Exception as err:  # what the fault is about
        message = str(err)
        outcome.error = f"{type(err).__name__}: {message}"
        outcome.one_line = "\n" not in message
        outcome.names_path = str(target) in message
    after = listing(sandbox)
    outcome.left_behind = sorted(
        name for name in set(before) | set(after) if before.get(name, 0) != after.get(name, 0)
    )
    if earlier is not None:
        name = str(earlier.relative_to(sandbox))
        outcome.earlier_file_unchanged = before.get(name) is not None and (
            before.get(name) == after.get(name)
        )
    return outcome


def write_fault(ctx: Context, writer: str, fault: str, tmp: Path) -> WriteOutcome:
    """Inject ``fault`` into ``writer`` under ``tmp``; Unavailable where it cannot be made."""
    kind, write = WRITERS[writer]
    outcome = WriteOutcome(writer, fault)
    name = "out" if kind == "folder" else "out.bin"
    if fault == "in_the_way":
        sandbox = tmp / "sandbox"
        sandbox.mkdir()
        target = sandbox / name
        if kind == "file":
            target.mkdir()
            (target / "kept.txt").write_text("a file of the folder in the way\n")
            return _run_write(ctx, writer, target, sandbox, outcome)
        target.write_text("a file where the folder should be\n")
        return _run_write(ctx, writer, target, sandbox, outcome, earlier=target)
    if fault == "parent_is_a_file":
        sandbox = tmp / "sandbox"
        sandbox.mkdir()
        (sandbox / "a_file").write_text("not a folder\n")
        return _run_write(ctx, writer, sandbox / "a_file" / name, sandbox, outcome)
    if fault == "read_only_chmod":
        sandbox = tmp / "sandbox"
        sandbox.mkdir()
        target = sandbox / name
        write(ctx, target)  # an earlier good file (or folder)
        earlier = target if kind == "file" else None
        sandbox.chmod(0o555)
        if kind == "folder":
            for sub in [target, *target.rglob("*")]:
                if sub.is_dir():
                    sub.chmod(0o555)
        try:
            probe = sandbox / "probe"
            try:
                probe.write_text("x")
            except OSError:
                pass
            else:
                probe.unlink()
                raise Unavailable(
                    "chmod 0o555 does not stop this user's writes (root): the read-only "
                    "mount case stands in for it"
                )
            return _run_write(ctx, writer, target, sandbox, outcome, earlier=earlier)
        finally:
            for sub in [sandbox, *sandbox.rglob("*")]:
                if sub.is_dir():
                    sub.chmod(0o755)
    with tmpfs(tmp / "mount") as sandbox:
        target = sandbox / name
        if fault == "read_only_mount":
            write(ctx, target)
            remount_read_only(sandbox)
            return _run_write(
                ctx, writer, target, sandbox, outcome, earlier=target if kind == "file" else None
            )
        if fault == "full_disk":
            write(ctx, target)
            fill(sandbox)
            return _run_write(
                ctx, writer, target, sandbox, outcome, earlier=target if kind == "file" else None
            )
        assert fault == "disk_fills_midway", fault
        fill(sandbox, leave=4096)  # one page: the first small file fits, the next does not
        return _run_write(ctx, writer, target, sandbox, outcome)
