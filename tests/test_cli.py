"""The `taskneurons` command and the README's main job, on the real default model."""

import subprocess
import sys

import pandas as pd
import pytest

import taskneuron_utils as tn
from taskneuron_utils import experiments


def run(*args, cwd=None):
    result = subprocess.run([sys.executable, "-m", "taskneuron_utils.cli", *args], cwd=cwd,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def test_main_job_writes_figures_and_summary(tmp_path):
    tasks = experiments.PROFILES["quick"].detection.tasks[:3]
    out = tmp_path / "main"
    stdout = run("main", "--out", str(out), "--n", "16", "--tasks", *tasks)
    for name in ("overlap.png", "layers.png", "overlap.csv", "layers.csv", "summary.txt"):
        assert (out / name).stat().st_size > 0, name
    overlap = pd.read_csv(out / "overlap.csv", index_col=0)
    assert list(overlap.index) == list(tasks) and list(overlap.columns) == list(tasks)
    assert (overlap.values.diagonal() == 1).all()
    assert ((overlap.values >= 0) & (overlap.values <= 1)).all()
    assert "wall time" in stdout and tasks[0] in stdout
    model, _ = tn.load_model()
    first = tn.NeuronSet.load(out / "neurons" / f"{tasks[0]}.safetensors", model=model)
    assert len(first) == sum(round(0.1 * n) for n in first.sizes.values())
    # A second run reuses the finished relevance checkpoints and gives the same sets.
    run("main", "--out", str(out), "--n", "16", "--tasks", *tasks)
    assert tn.NeuronSet.load(out / "neurons" / f"{tasks[0]}.safetensors") == first


def test_detect_command(tmp_path):
    task = experiments.PROFILES["quick"].detection.tasks[0]
    run("detect", "--task", task, "--k", "0.05", "--n", "8", "--out", str(tmp_path))
    neurons = tn.NeuronSet.load(tmp_path / f"{task}.neurons.safetensors")
    assert neurons.meta["k"] == pytest.approx(0.05) and neurons.meta["task"] == task
    assert (tmp_path / f"{task}.layers.png").stat().st_size > 0
    relevance = tn.Relevance.load(tmp_path / f"{task}.relevance.safetensors")
    assert relevance.n_examples == 8 and relevance.top_k(0.05) == neurons


def test_sites_and_tasks_commands():
    sites = run("sites").splitlines()
    assert len(sites) == 90 and sites[0].startswith("layers.0.mlp.gate")
    listed = run("tasks")
    for name in experiments.PROFILES["quick"].detection.tasks:
        assert name in listed


def test_unknown_task_lists_known_ones():
    result = subprocess.run([sys.executable, "-m", "taskneuron_utils.cli", "detect", "--task",
                             "no_such_task", "--out", "x"], capture_output=True, text=True)
    assert result.returncode != 0
    assert experiments.PROFILES["quick"].detection.tasks[0] in result.stderr


@pytest.mark.parametrize("k", ["10", "0", "-0.1", "1.5"])
def test_detect_refuses_a_percentage_for_k(k, tmp_path, monkeypatch):
    """--k is a fraction: anything outside (0, 1] is refused with exit code 2 and a one-line
    message, before any model is loaded (an empty model cache stays empty)."""
    monkeypatch.setenv("TASKNEURON_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "out"
    result = subprocess.run([sys.executable, "-m", "taskneuron_utils.cli", "detect", "--task",
                             "addition", "--k", k, "--out", str(out)],
                            capture_output=True, text=True)
    assert result.returncode == 2
    message = result.stderr.strip()
    assert len(message.splitlines()) == 1, message
    assert "fraction" in message and "--k 0.1" in message and "10%" in message
    assert not (tmp_path / "cache").exists() and not out.exists()
