"""Every long-running command, SIGKILLed at a random point and run again, writes the files an
uninterrupted run writes, byte for byte (the slow set; 2.5 minutes on 2 shared cores).

The commands: ``tn.attribute(..., checkpoint=)`` with each method, ``tn.top_examples(...,
checkpoint=)``, and the command line's ``taskneurons detect`` and ``taskneurons main`` (on the
tiny Llama saved to a folder, three kill points; and once on the embedded default model, whose
runs take ~15 s each here). There is no ``replicate`` command yet. The Python calls run in
processes forked from a fork server, killed three times each (three seeds) in three fresh
folders; a command-line run costs ~5 s of start-up, so each command is killed three times in
one folder, every run resuming from what the last one left (three kill points drawn from one
seed), then run to completion. How kill points are drawn and processes killed:
``fault_kills``. A failing kill point names its seed; ``TASKNEURON_FAULT_SEEDS=5,6,7`` draws
other ones.

Compared byte for byte: every file a command leaves (checkpoints, relevance, neuron sets,
CSVs, figures, run.json), except the ``wall time`` line of the main job's summary.txt (it
records how long that run took). A kill in the middle of a write may leave a hidden
``.<name>.*.tmp`` (the file itself is renamed into place whole or not at all): such a leftover
is no output; it is recorded in the kill's ``leftover_temporaries``, not compared.
"""

import os

import pytest

from fault_kills import (
    CHECKPOINT,
    METHOD_OPTIONS,
    N_EXAMPLES,
    attribute_job,
    batches_done,
    checkpoints_done,
    killed_command,
    killed_jobs,
    tiny_llama,
    top_examples_job,
)

pytestmark = pytest.mark.slow

KILLS = []  # every fault injected by this module (fault_kills.Kill), for the summary
DELAY = 0.02  # seconds of sleep per forward of a forked job: twelve batches last ~0.4 s
MAIN_TASKS = ["addition", "number_parity", "uppercase", "product_sentiment", "last_word"]


def seeds(base: int, n: int = 3) -> tuple[int, ...]:
    """The seeds of a command's kill points; ``TASKNEURON_FAULT_SEEDS`` replaces them."""
    chosen = os.environ.get("TASKNEURON_FAULT_SEEDS")
    if chosen:
        return tuple(int(s) for s in chosen.split(","))[:n]
    return tuple(range(base, base + n))


@pytest.fixture(scope="module", autouse=True)
def summary():
    yield
    by_command = {}
    for kill in KILLS:
        by_command[kill.command] = by_command.get(kill.command, 0) + 1
    print(f"\nfaults injected (SIGKILL, then rerun, files identical): {len(KILLS)}: {by_command}")
    for kill in KILLS:
        left = f"; left {kill.leftover_temporaries}" if kill.leftover_temporaries else ""
        print(f"  {kill.describe()}{left}")


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory, default_tok):
    """The tiny Llama (the ``tiny_llama`` fixture's) and the default tokenizer in a folder, for
    ``--model``."""
    folder = tmp_path_factory.mktemp("tiny_llama")
    tiny_llama(default_tok).save_pretrained(folder)
    default_tok.save_pretrained(folder)
    return folder


@pytest.mark.parametrize("method", list(METHOD_OPTIONS))
def test_attribute_killed_and_rerun_writes_the_same_files(method, tmp_path):
    kills, files = killed_jobs(
        f"attribute {method}",
        attribute_job,
        (method,),
        tmp_path,
        seeds(10 * list(METHOD_OPTIONS).index(method)),
        list(range(1, N_EXAMPLES - 2)),  # checkpoints (one a batch) to wait for
        N_EXAMPLES,
        "relevance.safetensors",
        DELAY,
    )
    assert sorted(files) == [CHECKPOINT, "relevance.safetensors"]
    assert all(0 < kill.progress_at_kill < N_EXAMPLES for kill in kills)
    KILLS.extend(kills)


def test_top_examples_killed_and_rerun_writes_the_same_files(tmp_path):
    kills, files = killed_jobs(
        "top_examples",
        top_examples_job,
        (),
        tmp_path,
        seeds(50),
        list(range(1, N_EXAMPLES - 2)),
        N_EXAMPLES,
        "top_examples.csv",
        DELAY,
    )
    assert sorted(files) == [CHECKPOINT, "top_examples.csv"]
    KILLS.extend(kills)


def test_detect_command_killed_and_rerun_writes_the_same_files(tmp_path, tiny_folder):
    """``taskneurons detect`` resumes from ``--out``/relevance/<task>.checkpoint.safetensors
    (saved every 25 batches): 160 one-example batches, killed three times, each time after a
    drawn checkpoint (three of 25, 50, 75, 100 batches) and up to 0.1 s later."""

    def argv(out):
        return ["detect", "--task", "addition", "--model", str(tiny_folder), "--n", "160"] + [
            "--batch-size",
            "1",
            "--out",
            str(out),
        ]

    kills, files = killed_command(
        "taskneurons detect",
        argv,
        lambda out: batches_done(out / "relevance" / "addition.checkpoint.safetensors"),
        tmp_path,
        seeds(60, 1)[0],
        [25, 50, 75, 100],
        3,
        0.1,
        160,
        "addition.relevance.safetensors",
    )
    assert sorted(files) == [
        "addition.layers.png",
        "addition.neurons.safetensors",
        "addition.relevance.safetensors",
        "relevance/addition.checkpoint.safetensors",
    ]
    KILLS.extend(kills)


def test_main_command_killed_and_rerun_writes_the_same_files(tmp_path, tiny_folder):
    """``taskneurons main``: five tasks, 32 examples each (4 batches of 8; each task's
    checkpoint is written when it ends), killed three times, each time after the checkpoint of
    a later task than the last kill left (or once all are written) and up to 0.15 s later:
    during a later task, or while the results are written."""

    def argv(out):
        return ["main", "--model", str(tiny_folder), "--tasks", *MAIN_TASKS, "--n", "32"] + [
            "--out",
            str(out),
        ]

    kills, files = killed_command(
        "taskneurons main",
        argv,
        lambda out: checkpoints_done(out / "relevance"),
        tmp_path,
        seeds(70, 1)[0],
        [4, 8, 12, 16, 20],
        3,
        0.15,
        20,
        "summary.txt",
        drop_lines=("wall time:",),
    )
    assert {"overlap.csv", "overlap.png", "layers.csv", "layers.png", "run.json"} <= set(files)
    assert {f"neurons/{task}.safetensors" for task in MAIN_TASKS} <= set(files)
    KILLS.extend(kills)


def test_main_command_on_the_default_model_killed_and_rerun_writes_the_same_files(tmp_path):
    """``taskneurons main`` on the embedded default model (~45 s for the three runs, so one
    kill point): two tasks, 16 examples each (two batches; a checkpoint when each task ends),
    killed after the first task's checkpoint and up to 0.5 s later (during the second task)."""
    tasks = ["addition", "product_sentiment"]
    kills, files = killed_command(
        "taskneurons main (default model)",
        lambda out: ["main", "--tasks", *tasks, "--n", "16", "--out", str(out)],
        lambda out: checkpoints_done(out / "relevance"),
        tmp_path,
        seeds(80, 1)[0],
        [2],
        1,
        0.5,
        4,
        "summary.txt",
        drop_lines=("wall time:",),
    )
    assert {f"relevance/{task}.safetensors" for task in tasks} <= set(files)
    KILLS.extend(kills)
