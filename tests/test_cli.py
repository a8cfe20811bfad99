"""The `taskneurons` command and the README's main job, on the real default model."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

import taskneuron_utils as tn
from taskneuron_utils import experiments


def run(*args, cwd=None):
    result = subprocess.run(
        [sys.executable, "-m", "taskneuron_utils.cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def test_main_job_writes_figures_and_summary(tmp_path):
    tasks = experiments.PROFILES["quick"].detection.tasks[:3]
    out = tmp_path / "main"
    stdout = run("main", "--out", str(out), "--n", "16", "--tasks", *tasks)
    for name in ("overlap.png", "layers.png", "overlap.csv", "layers.csv", "summary.txt"):
        assert (out / name).stat().st_size > 0, name
    # The README's main job against the committed reference (tests/reference/): the same
    # tasks, sites, layers and neuron counts exactly; the numbers to 4 decimals. Not byte for
    # byte: the last digit moves with library versions (CI installs the newest transformers and
    # pandas; transformers 5.24 / pandas 3.1 moved one overlap by 1e-4 and reformat floats).
    reference = Path(__file__).parent / "reference"
    assert tasks == ("product_sentiment", "film_sentiment", "news_topic")
    for name in ("overlap", "layers"):
        got, want = (
            pd.read_csv(path) for path in (out / f"{name}.csv", reference / f"main_{name}.csv")
        )
        assert list(got.columns) == list(want.columns) and len(got) == len(want)
        numbers = want.select_dtypes("float").columns
        pd.testing.assert_frame_equal(got.drop(columns=numbers), want.drop(columns=numbers))
        np.testing.assert_allclose(
            got[numbers].to_numpy(), want[numbers].to_numpy(), rtol=1e-4, atol=2e-4
        )
    overlap = pd.read_csv(out / "overlap.csv", index_col=0)
    assert list(overlap.index) == list(tasks) and list(overlap.columns) == list(tasks)
    assert (overlap.values.diagonal() == 1).all()
    assert ((overlap.values >= 0) & (overlap.values <= 1)).all()
    assert "wall time" in stdout and tasks[0] in stdout
    model, _ = tn.load_model()
    first = tn.NeuronSet.load(out / "neurons" / f"{tasks[0]}.safetensors", model=model)
    assert len(first) == sum(round(0.1 * n) for n in first.sizes.values())
    relevance = tn.Relevance.load(out / "relevance" / f"{tasks[0]}.safetensors", model=model)
    assert relevance.top_k(0.1) == first
    assert "share of that layer's own neurons" in (out / "summary.txt").read_text()
    modes = {path.stat().st_mode & 0o777 for path in out.rglob("*") if path.is_file()}
    assert len(modes) == 1, modes
    # A second run reuses the finished relevance checkpoints and gives the same sets.
    run("main", "--out", str(out), "--n", "16", "--tasks", *tasks)
    assert tn.NeuronSet.load(out / "neurons" / f"{tasks[0]}.safetensors") == first
    # Other settings into the same folder: refused before any work, unless --overwrite.
    refused = cli("main", "--out", str(out), "--n", "8", "--tasks", tasks[0])
    assert refused.returncode == 2 and "--overwrite" in refused.stderr
    assert "n_attribution" in refused.stderr
    run("main", "--out", str(out), "--n", "8", "--tasks", tasks[0], "--overwrite")
    assert not (out / "neurons" / f"{tasks[1]}.safetensors").exists()


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
    assert sites[0].split() == ["site", "layer", "kind", "neurons"]
    assert len(sites) == 91 and sites[1].split() == ["layers.0.mlp.gate", "0", "gate", "1536"]
    listed = run("tasks").splitlines()
    assert listed[0].split() == ["task", "category", "family", "metric", "train", "dev", "test"]
    assert [line.split()[0] for line in listed[1:]] == list(tn.load_tasks())
    # Aligned: every row's category column starts where the header's does.
    start = listed[0].index("category")
    assert all(line[start - 2 : start] == "  " and line[start] != " " for line in listed[1:])


def cli(*args, **kwargs):
    return subprocess.run(
        [sys.executable, "-m", "taskneuron_utils.cli", *args],
        capture_output=True,
        text=True,
        **kwargs,
    )


def cli_here(capsys, *args):
    """Run the command in this process (no interpreter start-up): (exit status, stdout, stderr)."""
    from taskneuron_utils import cli as command

    try:
        code = command.main(list(args))
    except SystemExit as exit:  # argparse: --help, or arguments it cannot parse
        code = exit.code
    out, err = capsys.readouterr()
    return code, out, err


def test_user_errors_are_short_and_exit_2(tmp_path, monkeypatch, capsys):
    """Checked before any model is loaded (the empty cache stays empty)."""
    monkeypatch.setenv("TASKNEURON_CACHE", str(tmp_path / "cache"))
    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    cases = {
        (
            "detect",
            "--task",
            "addition",
            "--out",
            str(tmp_path / "o"),
            "--model",
            str(tmp_path / "no_model"),
        ): "no such file or folder",
        ("detect", "--task", "addition", "--out", str(tmp_path / "o"), "--n", "-3"): "--n must be",
        ("detect", "--task", "no_such_task", "--out", str(tmp_path / "o")): "product_sentiment",
        ("sites", "--model", "./no/such/folder"): "no such file or folder",
        ("main", "--tasks", "nope", "--out", str(tmp_path / "m")): "nope",
    }
    for args, expected in cases.items():
        code, _, err = cli_here(capsys, *args)
        assert code == 2, (args, err[-2000:])
        assert 1 <= len(err.strip().splitlines()) <= 2, err
        assert expected in err, (args, err)
    assert not (tmp_path / "cache").exists() and not (tmp_path / "o").exists()
    with pytest.raises(Exception, match="is an existing file"):  # --debug: the exception itself
        cli_here(capsys, "--debug", "detect", "--task", "addition", "--out", str(a_file))
    code, helped, _ = cli_here(capsys, "detect", "--help")
    assert code == 0
    for option in ("--task", "--model", "--k", "--per", "--n", "--batch-size", "--out"):
        assert option in helped


def test_a_user_error_from_the_command_has_no_traceback(tmp_path):
    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    result = cli("detect", "--task", "addition", "--out", str(a_file))
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"taskneurons detect: error: --out {a_file} is an existing file; give a folder"
    ]
    debug = cli("--debug", "detect", "--task", "addition", "--out", str(a_file))
    assert debug.returncode != 0 and "Traceback" in debug.stderr


def test_a_broken_pipe_exits_quietly():
    result = subprocess.run(
        f"{sys.executable} -m taskneuron_utils.cli tasks | head -n 2",
        shell=True,
        capture_output=True,
        text=True,
    )
    assert result.stdout.count("\n") == 2 and result.stderr == ""


@pytest.mark.parametrize("k", ["10", "0", "-0.1", "1.5"])
def test_detect_refuses_a_percentage_for_k(k, tmp_path, monkeypatch, capsys):
    """--k is a fraction: anything outside (0, 1] is refused with exit code 2 and a one-line
    message, before any model is loaded (an empty model cache stays empty)."""
    monkeypatch.setenv("TASKNEURON_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "out"
    code, _, err = cli_here(capsys, "detect", "--task", "addition", "--k", k, "--out", str(out))
    assert code == 2
    message = err.strip()
    assert len(message.splitlines()) == 1, message
    assert "fraction" in message and "--k 0.1" in message and "10%" in message
    assert not (tmp_path / "cache").exists() and not out.exists()


def test_detect_kinds_are_checked_early_and_on_the_model(
    tmp_path, monkeypatch, capsys, tiny_llama, default_tok
):
    """An unknown --kinds name fails before any model is loaded; a kind the model lacks fails
    in one line once it is loaded; --kinds act writes a set of act sites. A tiny random Llama
    saved to a folder stands in for the real model."""
    monkeypatch.setenv("TASKNEURON_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "out"
    code, _, err = cli_here(
        capsys, "detect", "--task", "addition", "--kinds", "act", "actt", "--out", str(out)
    )
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "--kinds: 'actt' is not a site kind; choose from gate, up, fc_in, act" in err
    assert not (tmp_path / "cache").exists() and not out.exists()

    folder = tmp_path / "tiny"
    tiny_llama.save_pretrained(folder)
    default_tok.save_pretrained(folder)
    capsys.readouterr()  # the progress bars of saving
    code, _, err = cli_here(
        capsys,
        "detect",
        "--task",
        "addition",
        "--model",
        str(folder),
        "--kinds",
        "fc_in",
        "--n",
        "4",
        "--out",
        str(out),
    )
    assert code == 2
    assert (
        err.strip()
        .splitlines()[-1]
        .startswith("taskneurons detect: error: 'fc_in' is not a site kind of model")
    )
    assert "choose from gate, up, act, down, or 'all'" in err

    code, _, err = cli_here(
        capsys,
        "detect",
        "--task",
        "addition",
        "--model",
        str(folder),
        "--kinds",
        "act",
        "--n",
        "4",
        "--batch-size",
        "2",
        "--out",
        str(out),
    )
    assert code == 0, err
    neurons = tn.NeuronSet.load(out / "addition.neurons.safetensors")
    assert list(neurons.sizes) == ["layers.0.mlp.act", "layers.1.mlp.act"]
    relevance = tn.Relevance.load(out / "addition.relevance.safetensors")
    assert relevance.provenance["kinds"] == ["act"] and relevance.top_k(0.1) == neurons


def test_detect_under_torchrun_equals_one_process(tmp_path, tiny_llama, default_tok):
    """`torchrun --standalone --nproc_per_node 2 -m taskneuron_utils.cli detect ...` (gloo
    processes on the CPU; --standalone needs no network): the relevance file of one process;
    rank 0 alone writes the outputs and prints, each rank keeps its own checkpoint."""
    folder = tmp_path / "tiny"
    tiny_llama.save_pretrained(folder)
    default_tok.save_pretrained(folder)
    args = [
        "detect",
        "--task",
        "addition",
        "--model",
        str(folder),
        "--examples",
        "8",
        "--batch-size",
        "2",
    ]  # 4 batches: 2 a rank
    env = {**os.environ, "OMP_NUM_THREADS": "1"}  # both runs reduce their sums alike
    launch = {
        "one": [sys.executable, "-m", "taskneuron_utils.cli"],
        "two": [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc_per_node",
            "2",
            "-m",
            "taskneuron_utils.cli",
        ],
    }
    stdout = {}
    for name, command in launch.items():
        result = subprocess.run(
            [*command, *args, "--out", str(tmp_path / name)],
            env=env,
            capture_output=True,
            text=True,
        )
        assert result.returncode == 0, result.stderr[-3000:]
        stdout[name] = result.stdout
    assert stdout["one"].count("relevance ->") == stdout["two"].count("relevance ->") == 1
    files = {name: sorted(p.name for p in (tmp_path / name).iterdir()) for name in launch}
    assert (
        files["one"]
        == files["two"]
        == [
            "addition.layers.png",
            "addition.neurons.safetensors",
            "addition.relevance.safetensors",
            "relevance",
        ]
    )
    assert sorted(p.name for p in (tmp_path / "two" / "relevance").iterdir()) == [
        f"addition.checkpoint.rank{r}-of-2.safetensors" for r in range(2)
    ]
    one, two = (
        tn.Relevance.load(tmp_path / name / "addition.relevance.safetensors") for name in launch
    )
    assert two.provenance == one.provenance and two.n_examples == one.n_examples == 8
    for site, total in one.sum_abs.items():
        torch.testing.assert_close(two.sum_abs[site], total, rtol=1e-9, atol=0)
        torch.testing.assert_close(
            two.sum_signed[site], one.sum_signed[site], rtol=1e-9, atol=1e-9 * float(total.max())
        )
    assert tn.NeuronSet.load(
        tmp_path / "two" / "addition.neurons.safetensors"
    ) == tn.NeuronSet.load(tmp_path / "one" / "addition.neurons.safetensors")


def test_main_refuses_several_processes(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("WORLD_SIZE", "2")
    code, _, err = cli_here(capsys, "main", "--out", str(tmp_path / "m"))
    assert code == 2 and "main runs in one process" in err and "taskneurons detect" in err
    assert not (tmp_path / "m").exists()


def test_dtype_bfloat16_runs_detect_and_main_in_bfloat16(
    tmp_path, monkeypatch, capsys, tiny_llama, default_tok
):
    """--dtype bfloat16 loads the weights in bfloat16 (the relevance files say so); the main
    job's run.json keeps the dtype, so a float32 run into the same folder is refused. A tiny
    random Llama saved to a folder stands in for the real model."""
    folder = tmp_path / "tiny"
    tiny_llama.save_pretrained(folder)
    default_tok.save_pretrained(folder)
    out = tmp_path / "detect"
    code, _, err = cli_here(
        capsys,
        "detect",
        "--task",
        "addition",
        "--model",
        str(folder),
        "--n",
        "4",
        "--dtype",
        "bfloat16",
        "--out",
        str(out),
    )
    assert code == 0, err
    relevance = tn.Relevance.load(out / "addition.relevance.safetensors")
    assert relevance.provenance["compute"] == {"weights": "bfloat16", "autocast": None}
    assert relevance.sum_abs["layers.0.mlp.up"].dtype == torch.float64

    main = tmp_path / "main"
    args = ("main", "--model", str(folder), "--tasks", "addition", "--n", "4", "--out", str(main))
    code, _, err = cli_here(capsys, *args, "--dtype", "bfloat16")
    assert code == 0, err
    assert '"dtype": "bfloat16"' in (main / "run.json").read_text()
    relevance = tn.Relevance.load(main / "relevance" / "addition.safetensors")
    assert relevance.provenance["compute"]["weights"] == "bfloat16"
    code, _, err = cli_here(capsys, *args)
    assert code == 2 and "different dtype" in err and "--overwrite" in err


def test_a_bad_dtype_is_a_one_line_error_before_any_work(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("TASKNEURON_CACHE", str(tmp_path / "cache"))
    for command in (
        ("detect", "--task", "addition", "--out", str(tmp_path / "o")),
        ("main", "--out", str(tmp_path / "m")),
    ):
        code, _, err = cli_here(capsys, *command, "--dtype", "float16")
        assert code == 2 and "--dtype: invalid choice: 'float16'" in err, err
    code, helped, _ = cli_here(capsys, "main", "--help")
    assert code == 0 and "--dtype {float32,bfloat16,auto}" in helped
    for value in ("bogus", "int8", torch.int64, 32):
        with pytest.raises(ValueError, match="dtype must be a floating-point torch dtype"):
            tn.load_model(dtype=value)
    assert not (tmp_path / "cache").exists() and not (tmp_path / "o").exists()


def test_a_misspelt_or_shortened_option_is_refused_with_the_nearest(tmp_path, monkeypatch, capsys):
    """No prefix matching (``--batch`` is not read as ``--batch-size``, ``--task`` not as main's
    ``--tasks``): an option that is not exactly one of its command's is exit status 2 and one
    line naming it and the nearest option, before anything is loaded."""
    monkeypatch.setenv("TASKNEURON_CACHE", str(tmp_path / "cache"))
    out = str(tmp_path / "o")
    cases = {
        ("detect", "--task", "addition", "--out", out, "--bacth-size", "4"): "--bacth-size "
        "(did you mean '--batch-size'?)",
        ("detect", "--task", "addition", "--out", out, "--batch", "4"): "--batch (did you mean "
        "'--batch-size'?)",
        ("detect", "--task", "addition", "--out", out, "--batch_size=4"): "--batch_size (did you",
        ("detect", "--task", "addition", "--out", out, "--exam", "8"): "'--examples'?",
        ("main", "--task", "addition", "--out", out): "--task (did you mean '--tasks'?)",
        ("--debgu", "tasks"): "--debgu (did you mean '--debug'?)",
    }
    for args, expected in cases.items():
        code, _, err = cli_here(capsys, *args)
        assert code == 2, (args, err)
        last = err.strip().splitlines()[-1]  # after argparse's usage line
        assert "error: unrecognized option" in last and expected in last, (args, last)
    assert not (tmp_path / "cache").exists() and not (tmp_path / "o").exists()
