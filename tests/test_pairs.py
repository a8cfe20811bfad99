"""Minimal pairs: the shipped alternatives fit the default tokenizer (equal prompt token length,
different first answer tokens) in every split of every task that has them; the Task / Split
pairs API and its records round trip; check_pairs' one-line errors naming the example.

Fast: the default model's tokenizer only (``default_tok``), no model.
"""

from __future__ import annotations

import json

import pytest

from scripts import ROOT, load_script
from taskneuron_utils.experiments.common import data_hash
from taskneuron_utils.tasks import (
    SPLIT_NAMES,
    Example,
    Split,
    Task,
    TaskDataError,
    check_pairs,
    encode,
    load_tasks,
)

SUITE = load_tasks()
WITH_PAIRS = [name for name, task in SUITE.items() if task.has_pairs]
RECORDS = [  # good pairs: the same token length, the answers' first digits differ
    {
        "input": f"{a} + 4",
        "output": str(a + 4),
        "alt_input": f"{a + 30} + 4",
        "alt_output": str(a + 34),
    }
    for a in range(10, 70, 5)
]


def _one_line(err: pytest.ExceptionInfo) -> str:
    message = str(err.value)
    assert "\n" not in message, message
    return message


# -- the shipped suite -------------------------------------------------------------------------


def test_every_task_but_one_has_pairs_and_the_other_says_why():
    assert [name for name in SUITE if name not in WITH_PAIRS] == ["list_to_sentence"]
    task = SUITE["list_to_sentence"]
    with pytest.raises(TaskDataError) as err:
        task.pairs("train")
    message = _one_line(err)
    assert "'list_to_sentence' has no minimal pairs" in message and "We need to buy" in message
    with pytest.raises(TaskDataError, match=r"list_to_sentence/test\[0\]: no minimal-pair"):
        task.test[:3].pairs()


@pytest.mark.parametrize("name", WITH_PAIRS)
def test_shipped_pairs_fit_the_default_tokenizer(name, default_tok):
    """Every split: aligned, other input and answer, equal prompt token length, different
    first answer token (check_pairs, the check the contrastive attribution runs)."""
    task = SUITE[name]
    for split_name in SPLIT_NAMES:
        split, alt = task.splits[split_name], task.pairs(split_name)
        assert len(alt) == len(split) > 0 and alt.task is task
        for ex, other in zip(split, alt):
            assert other.input == ex.alt_input != ex.input
            assert other.output == ex.alt_output != ex.output
            if task.labels is not None:
                assert other.output in task.labels
        encoded, encoded_alt = check_pairs(default_tok, split, alt)
        for i, (e, f) in enumerate(zip(encoded, encoded_alt)):
            assert e.answer_start == f.answer_start, (split_name, i, split[i], alt[i])
            assert e.input_ids[e.answer_start] != f.input_ids[f.answer_start], (split_name, i)


def test_pairs_are_aligned_with_the_split_and_with_any_slice():
    task = SUITE["addition"]
    alt = task.pairs("train")
    assert alt.name == "train.alt" and len(alt) == len(task.train)
    assert all(alt[i] == task.train[i].alternative for i in range(len(alt)))
    # the alternative's alternative is the original: pairs().pairs() is the split again
    assert alt.pairs().records == task.train.records and alt.pairs().name == "train"
    assert list(task.train[:7].pairs()) == list(alt[:7])
    sample = task.dev.sample(5, seed=3)
    assert [ex.input for ex in sample.pairs()] == [ex.alt_input for ex in sample]
    assert task.pairs().records == alt.records  # "train" is the default
    with pytest.raises(ValueError, match="split must be one of"):
        task.pairs("validation")


def test_alternatives_leave_the_data_hashes_of_the_originals_unchanged(default_tok):
    """Caches key on (input, output) (experiments.common.data_hash) and on token ids
    (attribute, finetune): an example's alternative changes neither."""
    task = SUITE["country_capital"]
    split = task.train[:50]
    bare = Split([Example(ex.input, ex.output) for ex in split], task, "train")
    assert data_hash(split) == data_hash(bare)
    assert encode(default_tok, split) == encode(default_tok, bare)
    committed = json.loads((ROOT / "data" / "addition" / "train.jsonl").open().readline())
    assert set(committed) == {"input", "output", "alt_input", "alt_output"}
    assert SUITE["addition"].train[0] == Example(*committed.values())


def test_token_table_matches_the_default_tokenizer(default_tok):
    """The generator counts tokens from the committed table (and one token a digit): the table
    agrees with the tokenizer, and so do its counts of whole shipped inputs."""
    suite = load_script("data/build_suite.py")
    table = json.loads(suite.TOKEN_TABLE.read_text(encoding="utf-8"))["counts"]
    pieces = sorted(table)
    counts = [len(ids) for ids in default_tok(pieces, add_special_tokens=False).input_ids]
    wrong = [(p, table[p], n) for p, n in zip(pieces, counts) if table[p] != n]
    assert not wrong, wrong[:10]
    for number in ("7", " 7", "2024", " 31415"):
        assert len(default_tok(number, add_special_tokens=False).input_ids) == len(number)
    texts = [ex.alt_input for name in WITH_PAIRS for ex in SUITE[name].train[:10]]
    real = [len(ids) for ids in default_tok(texts, add_special_tokens=False).input_ids]
    assert [suite.n_tokens(text) for text in texts] == real


# -- Task.from_records with alternatives ---------------------------------------------------------


def test_from_records_with_alt_fields_round_trips(tmp_path):
    task = Task.from_records("adding", RECORDS, "Add.", splits=(0.6, 0.2, 0.2), seed=1)
    assert task.has_pairs
    for split_name in SPLIT_NAMES:
        split = task.splits[split_name]
        assert [ex.input for ex in task.pairs(split_name)] == [ex.alt_input for ex in split]
        assert all(set(r) == set(RECORDS[0]) for r in split.records)
    again = Task.from_records("adding", {s: task.splits[s].records for s in SPLIT_NAMES}, "Add.")
    assert all(again.splits[s].records == task.splits[s].records for s in SPLIT_NAMES)
    for s in SPLIT_NAMES:  # and through JSONL files
        lines = "".join(json.dumps(r) + "\n" for r in task.splits[s].records)
        (tmp_path / f"{s}.jsonl").write_text(lines, encoding="utf-8")
    from_files = Task.from_jsonl(tmp_path, "adding", "Add.")
    assert from_files.pairs("test").records == task.pairs("test").records
    assert "alt_input=" in repr(task.train[0]) and "alt_input" not in repr(Example("a", "b"))


def test_from_records_accepts_a_dataframe_with_alt_columns():
    pd = pytest.importorskip("pandas")
    task = Task.from_records("adding", pd.DataFrame(RECORDS), splits=(0.6, 0.2, 0.2))
    assert task.pairs("dev")[0].input == task.dev[0].alt_input


def test_a_task_without_pairs_says_so():
    task = Task.from_records("plain", [{"input": str(i), "output": "x"} for i in range(10)])
    assert not task.has_pairs
    with pytest.raises(TaskDataError) as err:
        task.pairs("train")
    message = _one_line(err)
    assert "'plain' has no minimal pairs" in message and "alt_input" in message


def test_mixed_or_half_pairs_are_one_line_errors_naming_the_record():
    mixed = RECORDS[:5] + [{"input": "1 + 1", "output": "2"}]
    with pytest.raises(TaskDataError) as err:
        Task.from_records("mixed", {"train": mixed[:3], "test": mixed[3:]})
    assert "'mixed', test[2]: has no alt_input/alt_output while train[0] has" in _one_line(err)
    half = [{"input": "1 + 1", "output": "2", "alt_input": "2 + 2"}]
    with pytest.raises(TaskDataError) as err:
        Task.from_records("half", {"train": half})
    assert "record 0: has 'alt_input' but no 'alt_output'" in _one_line(err)
    with pytest.raises(TaskDataError, match="field 'alt_output' must be a string"):
        Task.from_records("typed", {"train": [dict(half[0], alt_output=4)]})
    labelled = [{"input": "good", "output": "yes", "alt_input": "bad", "alt_output": "maybe"}]
    with pytest.raises(TaskDataError, match=r"train\[0\]: alt_output 'maybe' is not one of"):
        Task.from_records(
            "cls", {"train": labelled}, category="classification", labels=["yes", "no"]
        )


# -- check_pairs: the three bad inputs, before any work ------------------------------------------


@pytest.fixture(scope="module")
def toy():
    return Task.from_records("toy", {"train": RECORDS}, "Add.")


def test_check_pairs_accepts_a_good_set(default_tok, toy):
    encoded, encoded_alt = check_pairs(default_tok, toy.train, toy.pairs("train"))
    assert [e.answer_start for e in encoded] == [f.answer_start for f in encoded_alt]


def test_check_pairs_misaligned(default_tok, toy):
    with pytest.raises(TaskDataError) as err:
        check_pairs(default_tok, toy.train, toy.pairs("train")[:-1])
    message = _one_line(err)
    last = len(toy.train) - 1
    assert f"toy/train[{last}] has no partner" in message and "aligned one to one" in message


def test_check_pairs_unequal_prompt_lengths(default_tok, toy):
    alt = list(toy.pairs("train"))
    alt[2] = Example("300 + 4", alt[2].output)  # one digit more: one token more
    with pytest.raises(TaskDataError) as err:
        check_pairs(default_tok, toy.train, Split(alt, toy, "train.alt"))
    message = _one_line(err)
    assert message.startswith("toy/train[2]: the prompt is") and "equal token length" in message


def test_check_pairs_coinciding_first_answer_tokens(default_tok):
    close = {"input": "11 + 4", "output": "15", "alt_input": "12 + 4", "alt_output": "16"}
    task = Task.from_records("bad", {"train": [close, RECORDS[0]]}, "Add.")
    with pytest.raises(TaskDataError) as err:
        check_pairs(default_tok, task.train, task.pairs("train"))
    message = _one_line(err)
    assert message.startswith("bad/train[0]: the answer '15' and the alternative's '16'")
    assert "same token '1'" in message


def test_check_pairs_identical_inputs_and_plain_examples(default_tok):
    same = [Example("3 + 4", "7")]
    with pytest.raises(TaskDataError, match=r"example 0: the alternative's input is the same"):
        check_pairs(default_tok, same, [Example("3 + 4", "8")], instruction="Add.")
    encoded, _ = check_pairs(default_tok, same, [Example("5 + 4", "9")], instruction="Add.")
    assert encoded[0].answer_start > 0
