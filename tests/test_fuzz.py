"""Fuzzed inputs give a result or a one-line error of the package's own, and a failed write
names its path and leaves nothing behind (fast: the tiny Llama; the cases and how they are
judged: ``fuzz_cases``).

A case that fails in a module another change is working on is marked ``xfail(strict=True)``
with what is wrong: it flips to a failure once that is fixed, and the mark goes.
"""

import json

import pytest

import taskneuron_utils as tn
from fault_kills import tiny_llama
from fuzz_cases import (
    FAULTS,
    WRITERS,
    Context,
    Unavailable,
    applies,
    input_cases,
    judge,
    summary,
    write_fault,
)

CASES = {case.name: case for case in input_cases()}
SCAN = "pages/scan.py (data_items)"
# {case: why it fails}, in modules other changes are editing (see the module docstring).
XFAIL: dict = {}
WRITE_XFAIL: dict = {}
OUTCOMES = []


@pytest.fixture(scope="module")
def ctx(default_tok):
    return Context(tiny_llama(default_tok), default_tok)


@pytest.fixture(scope="module", autouse=True)
def counts():
    yield
    if OUTCOMES:
        print("\nfuzzed inputs:", json.dumps(summary(OUTCOMES), indent=1))


def marked(name, reasons):
    if name in reasons:
        return pytest.param(name, marks=pytest.mark.xfail(strict=True, reason=reasons[name]))
    return name


@pytest.mark.parametrize("name", [marked(name, XFAIL) for name in CASES])
def test_a_fuzzed_input_gives_a_result_or_a_one_line_error_naming_its_cause(name, ctx):
    case = CASES[name]
    outcome = judge(case, ctx)
    OUTCOMES.append(outcome)
    assert outcome.ok, outcome.problems()
    if outcome.error is not None and case.cause is not None:
        assert outcome.named_cause, f"{name}: {outcome.error!r} does not match {case.cause!r}"


@pytest.mark.parametrize(
    "writer, fault",
    [
        pytest.param(
            writer,
            fault,
            marks=[pytest.mark.xfail(strict=True, reason=WRITE_XFAIL[(writer, fault)])]
            if (writer, fault) in WRITE_XFAIL
            else [],
        )
        for writer in WRITERS
        for fault in FAULTS
        if applies(writer, fault)
    ],
)
def test_a_failed_write_names_its_path_and_leaves_nothing_behind(writer, fault, ctx, tmp_path):
    try:
        outcome = write_fault(ctx, writer, fault, tmp_path)
    except Unavailable as why:
        pytest.skip(str(why))
    assert outcome.ok, outcome.problems()


def test_the_same_artefact_gives_the_same_bytes(ctx, tmp_path):
    """safetensors writes its metadata in hash order, different in every process; our files
    sort it (``io.storage.safetensors_bytes``), so a file is the same bytes wherever it was
    written (``test_faults`` compares files of separate processes byte for byte)."""
    path = ctx.neurons.save(tmp_path / "a.safetensors")
    data = path.read_bytes()
    header = json.loads(data[8 : 8 + int.from_bytes(data[:8], "little")])
    keys = list(header["__metadata__"])
    assert keys == sorted(keys) == ["format_version", "meta", "taskneuron_utils_kind"]
    assert tn.NeuronSet.load(path) == ctx.neurons
    assert ctx.neurons.save(tmp_path / "b.safetensors").read_bytes() == data
