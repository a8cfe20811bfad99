"""Tasks, splits, loaders, hub mapping and the prompt/answer token layout (real tokenizer)."""

import copy
import csv
import json
import time
import warnings

import pytest

from taskneuron_utils.tasks import (
    HUB_TASKS,
    EncodingError,
    Example,
    HubUnavailableError,
    Split,
    Task,
    TaskDataError,
    UnknownTaskError,
    answer_ids,
    batches,
    collate,
    default_data_dir,
    encode,
    end_marker_id,
    format_prompt,
    load_hub_task,
    load_tasks,
)

RECORDS = [
    {"input": f'item {i}, with "quotes", commas\nand a newline', "output": f"out {i}"}
    for i in range(100)
]


def write_jsonl(path, records):
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def write_csv(path, records):
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(records[0]))
        writer.writeheader()
        writer.writerows(records)
    return path


# -- tasks and splits --------------------------------------------------------------------------


def test_from_records_split_sizes_are_deterministic_and_partition_the_data():
    a = Task.from_records("t", RECORDS, "Copy.", seed=0)
    b = Task.from_records("t", RECORDS, "Copy.", seed=0)
    c = Task.from_records("t", RECORDS, "Copy.", seed=1)
    assert [len(a.train), len(a.dev), len(a.test)] == [70, 10, 20]
    assert a.train.records == b.train.records and a.test.records == b.test.records
    assert a.train.records != c.train.records
    everything = a.train.records + a.dev.records + a.test.records
    assert sorted(r["input"] for r in everything) == sorted(r["input"] for r in RECORDS)
    assert a.metric == "exact_match" and a.family == "t" and a.labels is None


def test_from_records_accepts_a_dataframe_and_a_datasets_dataset():
    import datasets
    import pandas as pd

    reference = Task.from_records("t", RECORDS, "Copy.", seed=2)
    # Extra columns are ignored, as for dicts.
    frame = pd.DataFrame(RECORDS).assign(source="web")
    dataset = datasets.Dataset.from_list([dict(r, source="web") for r in RECORDS])
    for records in (frame, dataset):
        task = Task.from_records("t", records, "Copy.", seed=2)
        for name in ("train", "dev", "test"):
            assert getattr(task, name).records == getattr(reference, name).records
    # Pre-split tables, and the same field checks as for dicts.
    task = Task.from_records("t", {"train": frame.iloc[:8], "test": dataset.select(range(8, 10))})
    assert task.train.records == RECORDS[:8] and task.test.records == RECORDS[8:10]
    with pytest.raises(TaskDataError, match=r"record 0: missing field 'output'"):
        Task.from_records("t", frame.drop(columns="output"))
    with pytest.raises(TaskDataError, match=r"record 0: missing field 'output'"):
        Task.from_records("t", dataset.remove_columns("output"))
    with pytest.raises(TaskDataError, match="no examples"):
        Task.from_records("t", frame.iloc[:0])


def test_split_indexing_slicing_sampling_and_task_link():
    task = Task.from_records("t", RECORDS, "Copy.")
    split = task.train
    assert split.task is task and split.name == "train"
    assert isinstance(split[0], Example) and split[-1] == list(split)[-1]
    head = split[:5]
    assert isinstance(head, Split) and len(head) == 5 and head.task is task
    assert head.name == "train" and list(head) == list(split)[:5]
    s1, s2 = split.sample(10, seed=3), split.sample(10, seed=3)
    assert s1.records == s2.records and len(s1) == 10 and s1.task is task
    assert split.sample(10, seed=4).records != s1.records
    assert split.records[0] == {"input": split[0].input, "output": split[0].output}
    with pytest.raises(ValueError, match="cannot sample 999"):
        split.sample(999)


def test_classification_labels_inferred_and_checked():
    records = [{"input": str(i), "output": "even" if i % 2 == 0 else "odd"} for i in range(30)]
    task = Task.from_records("parity", records, "Even or odd?", category="classification")
    assert task.labels == ("even", "odd") and task.metric == "accuracy"
    with pytest.raises(
        TaskDataError, match=r"output 'odd' is not one of the labels \['even', 'zero'\]"
    ):
        Task.from_records(
            "parity", records, "Even or odd?", category="classification", labels=["even", "zero"]
        )
    with pytest.raises(ValueError, match="metric must be one of"):
        Task.from_records("parity", records, "x", category="classification", metric="rouge_l")


def test_jsonl_and_csv_round_trip(tmp_path):
    from_records = Task.from_records("t", RECORDS, "Copy.", seed=5)
    jsonl = Task.from_jsonl(write_jsonl(tmp_path / "t.jsonl", RECORDS), instruction="Copy.", seed=5)
    csv_task = Task.from_csv(write_csv(tmp_path / "t.csv", RECORDS), instruction="Copy.", seed=5)
    for task in (jsonl, csv_task):
        assert task.name == "t" and task.instruction == "Copy."
        for name in ("train", "dev", "test"):
            assert getattr(task, name).records == getattr(from_records, name).records


def test_folder_of_split_files(tmp_path):
    folder = tmp_path / "mytask"
    folder.mkdir()
    write_jsonl(folder / "train.jsonl", RECORDS[:8])
    write_jsonl(folder / "test.jsonl", RECORDS[8:10])
    task = Task.from_jsonl(folder, instruction="Copy.")
    assert task.name == "mytask" and task.train.records == RECORDS[:8]
    assert task.test.records == RECORDS[8:10] and len(task.dev) == 0


# -- errors ------------------------------------------------------------------------------------


def test_malformed_jsonl_is_reported_with_file_and_line(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"input": "a", "output": "b"}\n\n{"input": "a", "output": \n')
    with pytest.raises(TaskDataError, match=r"bad\.jsonl:3: invalid JSON"):
        Task.from_jsonl(path)


def test_missing_field_names_field_and_line(tmp_path):
    path = write_jsonl(tmp_path / "t.jsonl", [{"input": "a", "output": "b"}, {"input": "c"}])
    with pytest.raises(TaskDataError, match=r"t\.jsonl:2: missing field 'output'"):
        Task.from_jsonl(path)
    with pytest.raises(TaskDataError, match=r"record 1: missing field 'input'"):
        Task.from_records("t", [{"input": "a", "output": "b"}, {"output": "c"}])
    with pytest.raises(TaskDataError, match=r"t\.csv:1: missing column"):
        Task.from_csv(write_csv(tmp_path / "t.csv", [{"input": "a", "answer": "b"}]))


def test_empty_splits_are_errors(tmp_path):
    (tmp_path / "empty.jsonl").write_text("\n")
    with pytest.raises(TaskDataError, match="empty.jsonl: no examples"):
        Task.from_jsonl(tmp_path / "empty.jsonl")
    with pytest.raises(TaskDataError, match="split 'dev' is empty"):
        Task.from_records("t", splits={"train": RECORDS[:3], "dev": []})
    with pytest.raises(TaskDataError, match="split 'dev' would be empty"):
        Task.from_records("t", RECORDS[:4])


@pytest.fixture
def suite_dir(tmp_path):
    entries = [
        {
            "name": "zeta",
            "instruction": "Copy.",
            "category": "generation",
            "family": "copy",
            "metric": "exact_match",
            "labels": None,
            "description": "copy",
        },
        {
            "name": "alpha",
            "instruction": "Yes?",
            "category": "classification",
            "family": "yn",
            "metric": "accuracy",
            "labels": ["no", "yes"],
            "description": "yes/no",
        },
    ]
    (tmp_path / "tasks.json").write_text(json.dumps(entries))
    for entry in entries:
        (tmp_path / entry["name"]).mkdir()
        for split in ("train", "dev", "test"):
            records = [
                {"input": f"{split} {i}", "output": "yes" if i % 2 else "no"} for i in range(4)
            ]
            write_jsonl(tmp_path / entry["name"] / f"{split}.jsonl", records)
    return tmp_path


def test_load_tasks_from_a_suite_folder(suite_dir, monkeypatch):
    tasks = load_tasks(data_dir=suite_dir)
    assert list(tasks) == ["zeta", "alpha"]  # the order of tasks.json
    assert tasks["alpha"].labels == ("no", "yes") and tasks["alpha"].family == "yn"
    assert list(load_tasks(["alpha", "zeta"], data_dir=suite_dir)) == ["zeta", "alpha"]
    monkeypatch.setenv("TASKNEURON_DATA", str(suite_dir))
    assert default_data_dir() == suite_dir and list(load_tasks("alpha")) == ["alpha"]


def test_unknown_task_name_lists_the_known_ones(suite_dir):
    with pytest.raises(UnknownTaskError, match="unknown task name.*'nope'.*zeta, alpha") as info:
        load_tasks(["nope"], data_dir=suite_dir)
    assert isinstance(info.value, KeyError)
    with pytest.raises(KeyError, match="known: amazon_food, sst2"):
        load_hub_task("nope")


def test_answer_that_tokenizes_to_nothing_fails_at_encode(default_tok):
    task = Task.from_records(
        "t", {"train": [{"input": "a", "output": "b"}, {"input": "c", "output": ""}]}, "Copy."
    )
    with pytest.raises(EncodingError, match=r"t/train\[1\]: the answer '' tokenizes to zero"):
        encode(default_tok, task.train)


# -- prompts and encoding ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def words_task():
    records = [
        {"input": " ".join(["word"] * (i + 1)), "output": f"answer number {i}"} for i in range(6)
    ]
    return Task.from_records("words", {"train": records}, "Repeat the words.")


def test_encode_layout_prompt_then_answer_then_end_marker(default_tok, words_task):
    tok = default_tok
    assert tok.convert_ids_to_tokens(end_marker_id(tok)) == "<|im_end|>"
    for example, enc in zip(words_task.train, encode(tok, words_task.train)):
        prompt = tok.decode(enc.input_ids[: enc.answer_start])
        assert prompt == format_prompt(tok, "Repeat the words.", example.input)
        assert prompt.endswith("<|im_start|>assistant\n") and example.input in prompt
        assert tok.decode(enc.input_ids[enc.answer_start :]) == example.output + "<|im_end|>"
        assert enc.input_ids[enc.answer_start :] == answer_ids(tok, example.output)


def test_collate_masks_all_but_answers_and_pads_either_side(default_tok, words_task):
    tok = default_tok
    encoded = encode(tok, words_task.train)
    right = collate(encoded, tok.pad_token_id)
    left = collate(encoded, tok.pad_token_id, padding_side="left")
    width = max(len(e.input_ids) for e in encoded)
    assert right["input_ids"].shape == left["input_ids"].shape == (len(encoded), width)
    for b, enc in enumerate(encoded):
        n = len(enc.input_ids)
        assert right["input_ids"][b, :n].tolist() == enc.input_ids
        assert left["input_ids"][b, width - n :].tolist() == enc.input_ids
        assert right["attention_mask"][b].tolist() == [1] * n + [0] * (width - n)
        assert left["attention_mask"][b].tolist() == [0] * (width - n) + [1] * n
        answer = enc.input_ids[enc.answer_start :]
        assert right["labels"][b].tolist() == [-100] * enc.answer_start + answer + [-100] * (
            width - n
        )
        assert left["labels"][b].tolist() == [-100] * (width - n + enc.answer_start) + answer
    assert set(right["input_ids"][right["attention_mask"] == 0].tolist()) <= {tok.pad_token_id}
    assert [b["input_ids"].shape[0] for b in batches(tok, words_task.train, 4)] == [4, 2]
    first = next(batches(tok, words_task.train, 4))
    assert first["labels"].tolist() == collate(encoded[:4], tok.pad_token_id)["labels"].tolist()


def test_truncation_cuts_the_input_keeps_answer_and_warns_once(default_tok, words_task):
    tok = default_tok
    full = encode(tok, words_task.train)
    limit = len(full[3].input_ids)  # examples 4 and 5 are longer
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        cut = encode(tok, words_task.train, max_length=limit)
    assert [str(w.message) for w in caught if "truncated" in str(w.message)] == [
        f"encode: 2 of 6 examples exceeded max_length={limit} tokens; their inputs were "
        "truncated (instruction and answer kept whole)"
    ]
    for before, after in zip(full, cut):
        assert len(after.input_ids) <= limit
        assert after.input_ids[after.answer_start :] == before.input_ids[before.answer_start :]
        prompt = tok.decode(after.input_ids[: after.answer_start])
        assert "Repeat the words." in prompt and prompt.endswith("<|im_start|>assistant\n")
    assert cut[:4] == full[:4] and len(cut[5].input_ids) < len(full[5].input_ids)
    with pytest.raises(EncodingError, match=r"without its input .* exceed max_length=20"):
        encode(tok, words_task.train, max_length=20)


def test_plain_template_without_chat_template(default_tok):
    tok = copy.deepcopy(default_tok)
    tok.chat_template = None
    assert format_prompt(tok, "Say yes.", "now") == "Say yes.\n\nInput: now\nAnswer:"
    assert end_marker_id(tok) == tok.eos_token_id
    (enc,) = encode(tok, [Example("now", "yes please")], instruction="Say yes.")
    assert tok.decode(enc.input_ids[: enc.answer_start]) == "Say yes.\n\nInput: now\nAnswer:"
    assert tok.decode(enc.input_ids[enc.answer_start :]) == " yes please" + tok.eos_token


# -- hub data sets, through local files ----------------------------------------------------


def test_hub_mapping_through_local_files_in_the_datasets_own_columns(tmp_path):
    rows = [
        {"sentence": f"a {'fine' if i % 2 else 'dull'} film {i}", "label": i % 2, "idx": i}
        for i in range(40)
    ]
    write_jsonl(tmp_path / "train.jsonl", rows[:30])
    write_jsonl(
        tmp_path / "validation.jsonl", rows[30:] + [{"sentence": "?", "label": -1, "idx": 99}]
    )
    task = load_hub_task(
        "sst2",
        split_sizes={"dev": 5},
        cache_dir=tmp_path / "cache",
        data_files={
            "train": str(tmp_path / "train.jsonl"),
            "validation": str(tmp_path / "validation.jsonl"),
        },
    )
    spec = HUB_TASKS["sst2"]
    assert task.category == "classification" and task.labels == ("negative", "positive")
    assert task.instruction == spec.instruction and "negative, positive" in task.instruction
    # validation (unlabeled -1 row dropped) serves as test; dev is carved out of train.
    assert task.test.records == [
        {"input": r["sentence"], "output": ["negative", "positive"][r["label"]]} for r in rows[30:]
    ]
    assert len(task.dev) == 5 and len(task.train) == 25
    seen = {r["input"] for r in task.train.records + task.dev.records}
    assert seen == {r["sentence"] for r in rows[:30]}

    # A CSV folder (labels arrive as strings) gives the same test split through the same mapping.
    folder = tmp_path / "csv"
    folder.mkdir()
    write_csv(folder / "train.csv", rows[:30])
    write_csv(folder / "validation.csv", rows[30:])
    from_csv = load_hub_task(
        "sst2", split_sizes={"dev": 5}, source=folder, cache_dir=tmp_path / "cache"
    )
    assert from_csv.test.records == task.test.records


def test_hub_generation_task_mapping(tmp_path):
    rows = [
        {
            "question": f"What is {i}?",
            "support": f"{i} is a number.",
            "correct_answer": str(i),
            "distractor1": "x",
            "distractor2": "y",
            "distractor3": "z",
        }
        for i in range(6)
    ]
    for split in ("train", "validation", "test"):
        write_jsonl(tmp_path / f"{split}.jsonl", rows)
    task = load_hub_task(
        "sciqa", source=tmp_path, split_sizes=(4, None, None), cache_dir=tmp_path / "cache"
    )
    assert task.category == "generation" and task.metric == "rouge_l"
    assert len(task.train) == 4 and len(task.dev) == len(task.test) == 6
    assert task.test[0] == Example("Context: 0 is a number.\nQuestion: What is 0?", "0")
    with pytest.raises(TaskDataError, match=r"missing \['correct_answer'\]"):
        write_jsonl(tmp_path / "bad.jsonl", [{"question": "q", "support": "s"}])
        load_hub_task(
            "sciqa", data_files={"train": str(tmp_path / "bad.jsonl")}, cache_dir=tmp_path / "cache"
        )


def test_hub_task_offline_says_it_needs_network_and_how_to_use_local_files(monkeypatch):
    import datasets.config

    before = datasets.config.HF_HUB_OFFLINE
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    started = time.perf_counter()
    with pytest.raises(HubUnavailableError, match="needs network access") as info:
        load_hub_task("sst2")
    assert time.perf_counter() - started < 10  # no connection retries
    assert "data_files=" in str(info.value) and "sentence" in str(info.value)
    assert datasets.config.HF_HUB_OFFLINE == before  # the library flag is restored


def test_every_hub_spec_is_consistent():
    for name, spec in HUB_TASKS.items():
        assert spec.category in ("classification", "generation"), name
        assert (spec.labels is not None) == (spec.category == "classification"), name
        assert "train" in spec.splits and spec.instruction, name


# -- the shipped suite -------------------------------------------------------------------------


@pytest.mark.skipif(
    not (default_data_dir() / "tasks.json").exists(),
    reason="the shipped suite (data/tasks.json) is not built yet",
)
def test_shipped_suite_loads_in_index_order():
    entries = json.loads((default_data_dir() / "tasks.json").read_text())
    tasks = load_tasks()
    assert list(tasks) == [e["name"] for e in entries] and len(tasks) >= 12
    for task in tasks.values():
        assert len(task.train) and len(task.test)
        assert (task.category == "classification") == (task.labels is not None)
