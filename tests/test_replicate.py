"""``taskneurons replicate``: the plan, the refusal of a part that does not fit, bad input, a kill
in the middle of a part, the paper profile's hub path end to end on a tiny Llama, and the smoke
preset on the default model through the command line (every part, the full report shape)."""

import json
import os
import random
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import torch

from fault_kills import Launched, kill_at, run_to_end, start_command
import taskneuron_utils as tn
from taskneuron_utils import cli
from taskneuron_utils.core.models import cache_dir
from taskneuron_utils.experiments.replicate import (
    PARTS,
    UNITS,
    PlanRefused,
    replicate,
    settings_for,
)
from taskneuron_utils.experiments.replicate.parts_deactivation import unit_file
from taskneuron_utils.experiments.replicate.plan import peak_bytes
from taskneuron_utils.experiments.replicate.settings import with_batch_size

FIXTURES = Path(__file__).parent / "fixtures" / "hub"
RECORD = Path(__file__).parent.parent / "benchmarks" / "results" / "replication"


def _cli(argv, capsys):
    status = cli.main(argv)
    captured = capsys.readouterr()
    return status, captured.out, captured.err


@pytest.mark.slow
def test_plan_of_the_7b_configs_offline_per_part_for_one_and_two_80gb_gpus(capsys):
    for model in ("meta-llama/Llama-2-7b-hf", "bigscience/bloom-7b1"):
        argv = ["replicate", "--plan", "--profile", "paper", "--model", model]
        status, out, err = _cli(argv + ["--devices", "80GB,80GB"], capsys)
        assert status == 0, err
        assert "no calibration: model not loaded" in out and "assumed" in out
        for part in PARTS:
            line = next(line for line in out.splitlines() if line.strip().startswith(part))
            follow = out.splitlines()[out.splitlines().index(line) + 1]
            one, two = map(float, re.findall(r"([\d.]+) GiB per device on [12]", follow))
            assert 0 < two < one, (model, part, follow)  # two GPUs hold less each
        # Full fine-tuning of a 7B model in bfloat16 (weights, gradients, two AdamW moments:
        # 4 x 2 bytes x ~7e9) needs more than 50 GiB on one GPU.
        original = out.splitlines()[out.splitlines().index(next(
            line for line in out.splitlines() if line.strip().startswith("original"))) + 1]  # fmt: skip
        assert float(re.search(r"([\d.]+) GiB per device on 1", original).group(1)) > 50


def test_plan_on_a_tiny_model_calibrates_and_writes_nothing(tiny_llama, default_tok, tmp_path):
    printed = []
    settings = settings_for("quick", preset="smoke")
    result = replicate(
        tmp_path / "run", settings, base=(tiny_llama, default_tok), plan_only=True,
        echo=printed.append,
    )  # fmt: skip
    assert not (tmp_path / "run").exists()
    assert "time from a calibration on cpu" in printed[0] and "total time" in printed[0]
    plans = {p.part: p for p in result["plan"]}
    assert set(plans) == set(PARTS)
    assert all(p.seconds > 0 and p.peak[1] > 0 and p.fix is None for p in plans.values())
    # The work counted matches the settings: table1's first unit detects on 4 examples of each
    # of the two tasks, then scores 4 test examples under none, own, one random seed and the
    # other task's set.
    assert plans["table1"].units == ("deact_mt_k10", "table1_seeds_linear", "k_sweep_linear")
    assert plans["original"].work == {"attr": 0, "train": 2 * 4, "scored": 0}


def test_a_part_that_does_not_fit_is_refused_before_work_with_the_fix(
    tiny_llama, default_tok, tmp_path
):
    settings = settings_for("quick", preset="smoke")
    at_batch, _ = peak_bytes(tiny_llama, settings, "table1", "cpu", torch.float32, 1)
    small = with_batch_size(settings, 1)
    at_one, _ = peak_bytes(tiny_llama, small, "table1", "cpu", torch.float32, 1)
    assert at_one < at_batch
    limit = (at_one + at_batch) // 2
    with pytest.raises(PlanRefused, match=r"part table1 needs .* GiB per device.*--batch-size"):
        replicate(
            tmp_path / "run", settings, ["table1"], base=(tiny_llama, default_tok),
            devices=str(limit), echo=lambda text: None,
        )  # fmt: skip
    assert not (tmp_path / "run").exists()  # nothing written, nothing trained
    # The plan alone says so without raising; with the batch size the refusal names, it fits.
    printed = []
    replicate(None, settings, ["table1"], base=(tiny_llama, default_tok), devices=str(limit),
              plan_only=True, echo=printed.append)  # fmt: skip
    assert "DOES NOT FIT:" in printed[0] and "--batch-size" in printed[0]
    message = _refusal(settings, tiny_llama, default_tok, limit)
    fix = int(re.search(r"--batch-size (\d+)", message).group(1))
    fits = with_batch_size(settings, fix)
    plan = replicate(None, fits, ["table1"], base=(tiny_llama, default_tok), devices=str(limit),
                     plan_only=True, echo=lambda text: None)["plan"]  # fmt: skip
    assert plan[0].fix is None and plan[0].peak[1] <= limit


def _refusal(settings, model, tok, limit) -> str:
    """The refusal's message (no folder: nothing would be written even if it ran)."""
    try:
        replicate(None, settings, ["table1"], base=(model, tok), devices=str(limit),
                  echo=lambda text: None)  # fmt: skip
    except PlanRefused as err:
        return str(err)
    raise AssertionError("not refused")


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--parts", "tabel1", "--out", "x"], r"unknown part 'tabel1' \(did you mean 'table1'\?\)"),
        (["--profile", "paper", "--data", "no/such/folder", "--out", "x"], r"--data no/such/folder: no such folder"),
        (["--out", "x", "--model", "./no/such/model"], r"no such file or folder"),
        (["--plan", "--devices", "lots"], r"--devices 'lots'"),
        (["--plan", "--batch-size", "0"], r"--batch-size must be at least 1"),
        (["--preset", "smoke"], r"--out is required"),
    ],
)  # fmt: skip
def test_bad_input_is_one_line_and_exit_2_before_any_model_load(argv, message, capsys, tmp_path):
    argv = [str(tmp_path / a) if a == "x" else a for a in argv]
    started = time.perf_counter()
    status, out, err = _cli(["replicate", *argv], capsys)
    assert status == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and re.search(message, err), err
    assert time.perf_counter() - started < 5  # nothing was loaded (a model load takes longer)


def test_a_model_of_an_unsupported_family_is_refused_from_its_config(tmp_path, capsys):
    folder = tmp_path / "t5"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"model_type": "t5"}))
    status, _, err = _cli(["replicate", "--plan", "--model", str(folder)], capsys)
    assert status == 2 and "model_type 't5' is not a supported family" in err
    assert len(err.strip().splitlines()) == 1


def test_a_unit_file_in_the_folder_is_adopted_and_not_rerun(tiny_llama, default_tok, tmp_path):
    """The committed record's format: a finished unit's CSV in the folder is not rerun; the
    report reads it."""
    out = tmp_path / "run"
    out.mkdir()
    for unit in ("deact_mt_k10", "finetune", "budget"):
        shutil.copy(RECORD / f"{unit}.csv", out / f"{unit}.csv")
    settings = settings_for("quick", preset="smoke").replace(
        units=(("table1", ("deact_mt_k10",)), ("table2", ("finetune", "budget")))
    )
    result = replicate(out, settings, ["table1", "table2"], base=(tiny_llama, default_tok),
                       echo=lambda text: None)  # fmt: skip
    assert result["ran"] == [] and result["adopted"] == ["deact_mt_k10", "finetune", "budget"]
    report = (out / "report.md").read_text()
    # Table 1's numbers of the record (94.4 original, 42.6 random off, 38.2 task off) and the
    # paper's beside them.
    assert (
        "| multitask k=0.1 | classification | 87.7 | 94.4 | 84.8 | 42.6 | 76.0 | 38.2 |" in report
    )
    assert "**Missing**" not in report.split("## Table 2")[1].split("## ")[0]
    assert "data:image/png;base64," in (out / "report.html").read_text()


def _report_numbers(out: Path) -> str:
    """The report without what changes from run to run (the date, times, provenance)."""
    text = (out / "report.md").read_text().split("## Provenance")[0]
    return "\n".join(line for line in text.splitlines() if "Generated by" not in line)


def _unit_frames(out: Path, units) -> dict:
    frames = {}
    for unit in units:
        frame = pd.read_csv(unit_file(out, unit))
        frames[unit] = frame.drop(columns=[c for c in frame if "seconds" in c])
    return frames


@pytest.mark.slow
def test_killed_in_the_middle_of_a_part_and_rerun_gives_the_same_report(
    tmp_path, default_tok, tiny_llama, monkeypatch
):
    """``taskneurons replicate`` on a tiny Llama, SIGKILLed after the first unit of table1 and
    up to 0.2 s later (during the second unit: up to 1 s later let a run on free cores finish
    all three before the kill), then run again: the same unit files and
    report numbers as an uninterrupted run."""
    model = tmp_path / "tiny"
    tiny_llama.save_pretrained(model)
    default_tok.save_pretrained(model)
    monkeypatch.setenv("TASKNEURON_CACHE", str(tmp_path / "cache"))
    units = UNITS["table1"][:1] + ("table1_seeds_linear", "k_sweep_linear")

    def argv(out):
        return ["replicate", "--preset", "smoke", "--model", str(model), "--parts", "table1",
                "--out", str(out)]  # fmt: skip

    run_to_end(start_command(argv(tmp_path / "whole"), tmp_path / "whole.log"), "replicate")
    out = tmp_path / "killed"
    seed = 0
    extra = random.Random(seed).uniform(0, 0.2)
    launched: Launched = start_command(argv(out), tmp_path / "killed.log")
    kill = kill_at(
        "taskneurons replicate",
        launched,
        lambda: sum(unit_file(out, u).exists() for u in units),
        seed,
        (1, extra),
        len(units),
        out,
    )
    assert kill.progress_at_kill < len(units) and not (out / "report.md").exists()
    run_to_end(start_command(argv(out), tmp_path / "rerun.log"), "replicate rerun")
    whole, again = _unit_frames(tmp_path / "whole", units), _unit_frames(out, units)
    for unit in units:
        pd.testing.assert_frame_equal(whole[unit], again[unit])
    assert _report_numbers(tmp_path / "whole") == _report_numbers(out)
    log = (out / "replicate.log").read_text()
    assert "already done (adopted)" in log  # the rerun started after the units the kill left


@pytest.mark.slow
def test_paper_profile_end_to_end_through_the_hub_loaders_on_a_tiny_llama(
    tiny_llama, default_tok, tmp_path, monkeypatch
):
    """Every part at smoke sizes on the paper's tasks, read by the hub loaders from the fixture
    files in the hub data sets' own formats."""
    monkeypatch.setenv("TASKNEURON_CACHE", str(tmp_path / "cache"))
    settings = settings_for("paper", preset="smoke", data_dir=str(FIXTURES))
    assert settings.source == "paper" and set(settings.tasks) <= {"sst2", "sciqa"}
    out = tmp_path / "run"
    result = replicate(out, settings, base=(tiny_llama, default_tok), echo=lambda text: None)
    expected = [u for p in PARTS for u in settings.units_of(p)]
    assert sorted(result["ran"]) == sorted(expected)
    for unit in expected:
        assert unit_file(out, unit).exists(), unit
    report = (out / "report.md").read_text()
    assert "**Missing**" not in report
    for title in (
        "Verdicts",
        "Settings",
        "Table 1",
        "Table 2",
        "Section 4",
        "Table 5",
        "Provenance",
    ):
        assert title in report
    table1 = pd.read_csv(out / "deact_mt_k10.csv")
    assert set(table1.task) == {"sst2", "sciqa"} and (table1.n == 4).all()
    continual = pd.read_csv(out / "continual.csv")
    assert set(continual.method) == {"seqft", "ncft"} and set(continual.tasks) == {2, 3}


@pytest.mark.slow
def test_smoke_preset_on_the_default_model_gives_the_full_report_shape(tmp_path, monkeypatch):
    """``taskneurons replicate --preset smoke``: every unit of the preset on the embedded model,
    a report with every section and no missing table, a time per unit, and no model-sized
    leftovers (continual checkpoints are removed once their run's result is written)."""
    tn.load_model()  # the embedded model converted into the cache, if it is not there yet
    cache = tmp_path / "cache"  # every trained run cold, the converted model shared
    cache.mkdir()
    (cache / "models").symlink_to(cache_dir() / "models", target_is_directory=True)
    monkeypatch.setenv("TASKNEURON_CACHE", str(cache))
    out = tmp_path / "smoke"
    assert cli.main(["replicate", "--preset", "smoke", "--out", str(out)]) in (0, None)
    settings = settings_for("quick", preset="smoke")
    expected = [u for p in PARTS for u in settings.units_of(p)]
    for unit in expected:
        assert unit_file(out, unit).exists(), unit
    times = json.loads((out / "times.json").read_text())
    assert set(times) == set(expected) and all(s > 0 for s in times.values())
    report = (out / "report.md").read_text()
    assert "**Missing**" not in report
    for title in ("Verdicts", "Settings", "Table 1", "Table 2", "Section 4", "Table 5"):
        assert title in report
    assert (out / "report.html").stat().st_size > 10_000  # figures embedded
    sizes = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    assert sizes < 100 * 2**20, f"{sizes / 2**20:.0f} MB left in the run folder"


@pytest.mark.slow
def test_under_torchrun_two_processes_write_the_files_of_one(tmp_path, default_tok, tiny_llama):
    """``torchrun --standalone --nproc_per_node 2 -m taskneuron_utils.cli replicate ...`` (gloo
    processes on the CPU) on a tiny Llama: table1's units, whose multi-task model is trained
    with each step's batch split over the ranks and whose relevance is attributed with the
    batches split over them, hold the numbers of a one-process run (float sums in another
    order: within 1e-6); one report, printed once."""
    model = tmp_path / "tiny"
    tiny_llama.save_pretrained(model)
    default_tok.save_pretrained(model)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    args = ["replicate", "--preset", "smoke", "--model", str(model), "--parts", "table1"]
    launch = {
        "one": [sys.executable, "-m", "taskneuron_utils.cli"],
        "two": [sys.executable, "-m", "torch.distributed.run", "--standalone",
                "--nproc_per_node", "2", "-m", "taskneuron_utils.cli"],
    }  # fmt: skip
    printed = {}
    for name, command in launch.items():
        env["TASKNEURON_CACHE"] = str(tmp_path / f"cache_{name}")  # each trains its own model
        result = subprocess.run(
            [*command, *args, "--out", str(tmp_path / name)], env=env, capture_output=True,
            text=True,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr[-3000:]
        printed[name] = result.stdout
    assert printed["one"].count("report:") == printed["two"].count("report:") == 1
    assert printed["two"].count("replicate plan") == 1
    units = UNITS["table1"][:1] + ("table1_seeds_linear", "k_sweep_linear")
    one, two = _unit_frames(tmp_path / "one", units), _unit_frames(tmp_path / "two", units)
    for unit in units:
        pd.testing.assert_frame_equal(one[unit], two[unit], check_exact=False, rtol=1e-6)
    assert (tmp_path / "two" / "report.md").exists()
    # The batches were split: each rank kept its own share's attribution checkpoint.
    kept = sorted(p.name for p in (tmp_path / "two").glob("relevance/deact_mt_k10/relevance/*"))
    assert kept == [
        f"{task}.checkpoint.rank{r}-of-2.safetensors"
        for task in ("addition", "product_sentiment")
        for r in range(2)
    ]
    log = (tmp_path / "two" / "replicate.log").read_text()
    assert log.count("table1: deact_mt_k10 started") == 1  # rank 0 alone logs
