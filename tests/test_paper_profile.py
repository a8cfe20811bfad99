"""The paper profile's code path without a hub: its tasks read from local copies of the hub data
sets (tests/fixtures/hub, in each data set's own columns and split names), then its detection
and deactivation configs run on a tiny random Llama."""

import time
from pathlib import Path

import pytest

from scripts import load_script
from taskneuron_utils import experiments as ex
from taskneuron_utils.tasks import (
    CONTINUAL_LONG_TASKS,
    CONTINUAL_TASKS,
    HUB_TASKS,
    PAPER_TASKS,
    load_hub_task,
    load_tasks,
)

FIXTURES = Path(__file__).parent / "fixtures" / "hub"


def _generator():
    return load_script("tests/fixtures/hub/generate.py")


def test_fixtures_are_what_their_generator_writes():
    files = _generator().files()
    assert set(files) == {str(p.relative_to(FIXTURES)) for p in FIXTURES.glob("*/*.jsonl")}
    for relative, text in files.items():
        assert (FIXTURES / relative).read_text(encoding="utf-8") == text, relative


def test_every_hub_task_loads_from_a_folder_of_local_copies(tmp_path, monkeypatch):
    assert set(PAPER_TASKS) | set(CONTINUAL_LONG_TASKS) <= set(HUB_TASKS)
    for name, spec in HUB_TASKS.items():
        task = load_hub_task(name, data_dir=FIXTURES, cache_dir=tmp_path / "cache")
        assert len(task.train) >= 30 and len(task.dev) >= 4 and len(task.test) >= 8, name
        assert task.category == spec.category and task.instruction == spec.instruction, name
        if spec.labels is not None:  # every label decoded (none unlabeled, none out of range)
            outputs = {ex_.output for split in (task.train, task.dev, task.test) for ex_ in split}
            assert outputs <= set(spec.labels), name
    # GLUE's "test" split is unlabeled: our test split is its validation split, not empty.
    sst2 = load_hub_task("sst2", data_dir=FIXTURES, cache_dir=tmp_path / "cache")
    assert len(sst2.test) == 12
    # mnli's hub split name (validation_matched) is found as a file of that name.
    mnli = load_hub_task("mnli", data_dir=FIXTURES, cache_dir=tmp_path / "cache")
    assert len(mnli.test) == 12 and mnli.test[0].input.startswith("Premise: ")

    # The environment variable does the same for every loader, load_tasks(profile="paper") too.
    monkeypatch.setenv("TASKNEURON_HUB_DATA", str(FIXTURES))
    tasks = load_tasks(list(CONTINUAL_TASKS), profile="paper", cache_dir=tmp_path / "cache")
    assert list(tasks) == list(CONTINUAL_TASKS)
    assert (
        tasks["ag_news"].test.records
        == load_hub_task(
            "ag_news", source=FIXTURES / "ag_news", cache_dir=tmp_path / "cache"
        ).test.records
    )


def test_a_task_missing_from_the_local_folder_says_where_it_should_be(tmp_path, monkeypatch):
    with pytest.raises(FileNotFoundError, match=r"no folder 'sst2'.*sentence"):
        load_hub_task("sst2", data_dir=tmp_path)
    monkeypatch.setenv("TASKNEURON_HUB_DATA", str(tmp_path))
    with pytest.raises(FileNotFoundError, match=r"TASKNEURON_HUB_DATA.*validation\.jsonl"):
        load_tasks(["sst2"], profile="paper")


def test_paper_profile_detection_and_deactivation_on_a_tiny_llama(
    tiny_llama, default_tok, tmp_path
):
    started = time.perf_counter()
    paper = ex.PROFILES["paper"]
    tasks = paper.load_tasks(data_dir=FIXTURES, cache_dir=tmp_path / "cache")
    assert tuple(tasks) == PAPER_TASKS == paper.detection.tasks
    assert paper.multitask.tasks == PAPER_TASKS

    # The paper's detection settings as they are (whole training splits, batch 8, 512 tokens,
    # top 10% per site); only the progress bars are off.
    detection = paper.detection.replace(progress=False, out_dir=str(tmp_path / "run"))
    relevances = ex.detect(tiny_llama, default_tok, tasks, detection)
    sets = ex.neuron_sets(relevances, detection)
    for name, task in tasks.items():
        assert relevances[name].n_examples == len(task.train)
        assert (tmp_path / "run" / "relevance" / f"{name}.checkpoint.safetensors").exists()
        assert all(
            len(idx) == round(0.1 * sets[name].sizes[site])
            for site, idx in sets[name].indices.items()
        )

    deactivation = paper.deactivation.replace(
        n_eval=4, random_seeds=(0,), others=False, progress=False
    )
    df = ex.deactivation(tiny_llama, default_tok, tasks, deactivation, sets=sets)
    assert set(df["task"]) == set(PAPER_TASKS)
    assert set(df["condition"]) == {"none", "own", "random"} and (df["n"] == 4).all()
    table = ex.table1(df)
    assert set(table["category"]) == {"classification", "generation"}
    assert (table["tasks"] == 6).all()
    assert time.perf_counter() - started < 120  # about 15 s on 2 idle cores
