"""SIGKILL a long-running command at a random point, run it again, compare its files.

The helpers of ``tests/test_faults.py`` and ``benchmarks/fault_counts.py``. A kill point is
drawn from ``random.Random(seed)``: how much progress to wait for (read from the command's own
checkpoint files) and a random extra delay after it. Then the process gets a real
``SIGKILL`` (no cleanup handler runs), the command is run again to completion in the same
folder, and every file it leaves is compared byte for byte with the files of an uninterrupted
run.

Two ways to run a command in a separate process:

- ``start_job``: a Python job (``attribute_job``, ``top_examples_job``) in a process forked
  from a fork server (``multiprocessing``'s "forkserver") that imported torch, transformers and
  the package and built the tiny Llama and its tokenizer once (``fault_preload``), with one
  torch thread; a job starts in ~0.1 s instead of ~5 s. Its forward passes are slowed by a
  sleep in a hook on the input embedding (``delay``), so that twelve one-example batches last
  long enough to be killed in the middle; the sleep changes no number.
- ``start_command``: the ``taskneurons`` command line itself, in a fresh interpreter
  (``subprocess.Popen``), unmodified; enough batches that it runs for a few seconds.
"""

from __future__ import annotations

import json
import multiprocessing
import multiprocessing.forkserver
import os
import random
import signal
import subprocess
import sys
import time
import traceback
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import transformers
from safetensors import safe_open

import taskneuron_utils as tn
from taskneuron_utils.core.models import default_model_path
from tiny_models import fixture_llama
from tiny_models import swap_task

TESTS = Path(__file__).resolve().parent

# attribute's methods and their settings: integrated gradients and ablation on a few units.
METHOD_OPTIONS = {
    "grad_x_act": {},
    "attribution_patching": {"baseline": "mean"},
    "activation": {"statistic": "firing_rate"},
    "integrated_gradients": {"steps": 2, "neurons": {"layers.1.mlp.up": [0, 5]}},
    "ablation": {"neurons": {"layers.0.mlp.down": [1, 2]}},
}
N_EXAMPLES = 12  # one a batch: twelve checkpoints
TOP_NEURONS = [("layers.0.mlp.act", 1), ("layers.1.mlp.up", 3), ("layers.1.mlp.down", 7)]
CHECKPOINT = "checkpoint.safetensors"


# --- what the jobs run on ------------------------------------------------------------------------


def tokenizer():
    """The default model's tokenizer, as the ``default_tok`` fixture reads it."""
    tok = transformers.AutoTokenizer.from_pretrained(default_model_path())
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return tok


def tiny_llama(tok):
    """The ``tiny_llama`` fixture's model (conftest.py): 2 layers, d 32, d_ff 64, seed 0."""
    return fixture_llama(tok)


def examples():
    return swap_task().train[:N_EXAMPLES]


def _model_and_tok(delay: float):
    """The fork server's model and tokenizer (``fault_preload``), a forward slowed by ``delay``
    seconds."""
    import fault_preload  # the fork server imported it: free in a job, built once otherwise

    warnings.simplefilter("ignore")
    model = fault_preload.MODEL
    model.get_input_embeddings().register_forward_pre_hook(lambda module, args: time.sleep(delay))
    return model, fault_preload.TOK


def attribute_job(out: str, method: str, delay: float) -> None:
    """``tn.attribute`` with a checkpoint saved every batch, then ``rel.save``."""
    model, tok = _model_and_tok(delay)
    relevance = tn.attribute(
        model,
        tok,
        examples(),
        method=method,
        batch_size=1,
        checkpoint=Path(out) / CHECKPOINT,
        checkpoint_every=1,
        progress=False,
        **METHOD_OPTIONS[method],
    )
    relevance.save(Path(out) / "relevance.safetensors")


def top_examples_job(out: str, delay: float) -> None:
    """``tn.top_examples`` with a checkpoint saved every batch, its frame written as CSV."""
    model, tok = _model_and_tok(delay)
    frame = tn.top_examples(
        model,
        tok,
        examples(),
        TOP_NEURONS,
        k=3,
        batch_size=1,
        checkpoint=Path(out) / CHECKPOINT,
        checkpoint_every=1,
        progress=False,
    )
    frame.to_csv(Path(out) / "top_examples.csv", index=False)


# --- separate processes ---------------------------------------------------------------------------

_CONTEXT: list = []


def _forkserver():
    if not _CONTEXT:
        # The server imports fault_preload: torch, transformers, the package, one thread, the
        # tokenizer and the tiny model; every job is a fork of it. Python 3.11's server ignores
        # the caller's sys.path, so this folder reaches it through PYTHONPATH (while it starts).
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(["fault_preload"])
        keys = ("PYTHONPATH", "TOKENIZERS_PARALLELISM")
        saved = {key: os.environ.get(key) for key in keys}
        os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(TESTS), saved["PYTHONPATH"]]))
        os.environ["TOKENIZERS_PARALLELISM"] = "false"
        try:
            multiprocessing.forkserver.ensure_running()
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
        _CONTEXT.append(context)
    return _CONTEXT[0]


class Launched:
    """A running command: a forked job or a subprocess; ``pid``, ``poll()``, ``wait()``."""

    def __init__(self, process, log: Path | None = None):
        self.process, self.log = process, log

    @property
    def pid(self) -> int:
        return self.process.pid

    def poll(self) -> int | None:
        if isinstance(self.process, subprocess.Popen):
            return self.process.poll()
        return self.process.exitcode

    def wait(self, timeout: float = 300) -> int:
        if isinstance(self.process, subprocess.Popen):
            return self.process.wait(timeout)
        self.process.join(timeout)
        return self.process.exitcode

    def tail(self) -> str:
        return self.log.read_text()[-2000:] if self.log and self.log.exists() else ""


def start_job(job: Callable, out: str, *args) -> Launched:
    """``job(out, *args)`` in a forked process; an error's traceback goes to ``<out>.log``
    (beside the folder, whose files are the outputs compared)."""
    log = Path(f"{out}.log")
    process = _forkserver().Process(target=_logged, args=(log, job, out, *args), daemon=True)
    process.start()
    return Launched(process, log)


def _logged(log: Path, job: Callable, *args) -> None:
    try:
        job(*args)
    except BaseException:
        log.write_text(traceback.format_exc())
        raise


def command_env() -> dict:
    """One thread (every run sums alike), offline, no tokenizer threads."""
    return {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "TOKENIZERS_PARALLELISM": "false",
        "HF_HUB_OFFLINE": "1",
        "PYTHONWARNINGS": "ignore",
    }


def taskneurons() -> list[str]:
    """The installed ``taskneurons`` entry point, or ``python -m taskneuron_utils.cli``."""
    script = Path(sys.executable).with_name("taskneurons")
    return [str(script)] if script.exists() else [sys.executable, "-m", "taskneuron_utils.cli"]


def start_command(argv: list[str], log: Path) -> Launched:
    with open(log, "w") as out:
        process = subprocess.Popen(
            [*taskneurons(), *argv], stdout=out, stderr=subprocess.STDOUT, env=command_env()
        )
    return Launched(process, log)


def run_to_end(launched: Launched, what: str) -> None:
    status = launched.wait()
    assert status == 0, f"{what} ended with status {status}\n{launched.tail()}"


# --- progress, kills, files -----------------------------------------------------------------------


def batches_done(path: Path) -> int:
    """Batches a checkpoint file holds (0 while there is none)."""
    try:
        with safe_open(path, framework="pt") as f:
            return int(json.loads((f.metadata() or {})["meta"])["batches_done"])
    except Exception:  # not written yet (safetensors raises its own error class)
        return 0


def checkpoints_done(folder: Path) -> int:
    """Batches done over every ``*.checkpoint.safetensors`` under ``folder`` (the main job's
    tasks, one checkpoint each)."""
    return sum(batches_done(p) for p in sorted(folder.glob("**/*.checkpoint.safetensors")))


@dataclass
class Kill:
    """One injected fault: what was drawn, and what the process had done when it died."""

    command: str
    seed: int
    wait_for: int  # progress (batches in checkpoints) waited for
    extra_s: float  # then this long
    progress_at_kill: int  # batches the checkpoints held just after the kill
    total: int  # batches of a whole run
    status: int  # the process's exit status (-9: killed by SIGKILL)
    leftover_temporaries: list[str]  # hidden .tmp files the kill left (a write cut short)

    def describe(self) -> str:
        return (
            f"{self.command}, seed {self.seed}: SIGKILL {self.extra_s:.3f} s after progress "
            f"{self.wait_for} (checkpoints held {self.progress_at_kill} of {self.total} batches)"
        )


def kill_point(seed: int, choices: list[int], extra_s: float) -> tuple[int, float]:
    """A kill point drawn with ``random.Random(seed)``: the progress to wait for (one of
    ``choices``) and the seconds to wait after it (``0..extra_s``)."""
    rng = random.Random(seed)
    return rng.choice(choices), rng.uniform(0, extra_s)


def next_kill_point(
    rng: random.Random, choices: list[int], done: int, kills_left: int, extra_s: float
) -> tuple[int, float] | None:
    """The next kill point of a run killed again and again: a progress target above ``done``
    (what the last kill left), drawn so that ``kills_left - 1`` targets stay above it, and the
    extra wait; None when no target is left."""
    above = [c for c in choices if c > done]
    usable = above[: len(above) - (kills_left - 1)] or above
    return (rng.choice(usable), rng.uniform(0, extra_s)) if usable else None


def kill_at(
    command: str,
    launched: Launched,
    progress: Callable[[], int],
    seed: int,
    point: tuple[int, float],
    total: int,
    folder: Path,
    timeout: float = 240,
) -> Kill:
    """Wait until ``progress()`` reaches ``point[0]``, then ``point[1]`` seconds more, then
    SIGKILL the process; it must still have been running."""
    wait_for, extra = point
    deadline = time.monotonic() + timeout
    while progress() < wait_for:
        status = launched.poll()
        if status is not None or time.monotonic() > deadline:
            if status is None:
                os.kill(launched.pid, signal.SIGKILL)
            raise AssertionError(
                f"{command}, seed {seed}: the process ended (status {status}) or timed out "
                f"before progress {wait_for}\n{launched.tail()}"
            )
        time.sleep(0.002)
    time.sleep(extra)
    ended_first = launched.poll()
    os.kill(launched.pid, signal.SIGKILL)
    status = launched.wait()
    assert ended_first is None and status == -signal.SIGKILL, (
        f"{command}, seed {seed}: the process ended (status {ended_first}) before the kill "
        f"{extra:.3f} s after progress {wait_for}: draw another seed"
    )
    return Kill(
        command, seed, wait_for, round(extra, 4), progress(), total, status, temporaries(folder)
    )


def temporaries(folder: Path) -> list[str]:
    """The hidden ``.<name>.*.tmp`` files under ``folder`` (``io.storage.atomic_write``'s)."""
    return sorted(
        str(p.relative_to(folder))
        for p in folder.rglob(".*.tmp")
        if p.is_file() and p.name.startswith(".")
    )


def output_files(folder: Path, drop_lines: tuple[str, ...] = ()) -> dict[str, bytes]:
    """{relative path: bytes} of every file under ``folder`` except a killed write's hidden
    temporaries; lines starting with one of ``drop_lines`` are left out of text files (a
    recorded wall time)."""
    skipped = set(temporaries(folder))
    files = {}
    for path in sorted(folder.rglob("*")):
        name = str(path.relative_to(folder))
        if not path.is_file() or name in skipped:
            continue
        data = path.read_bytes()
        if drop_lines and path.suffix == ".txt":
            lines = data.decode().splitlines(keepends=True)
            data = "".join(line for line in lines if not line.startswith(drop_lines)).encode()
        files[name] = data
    return files


def differences(expected: dict[str, bytes], got: dict[str, bytes]) -> list[str]:
    """What differs between two ``output_files``: missing, extra or changed files."""
    found = [f"missing {name}" for name in sorted(set(expected) - set(got))]
    found += [f"extra {name}" for name in sorted(set(got) - set(expected))]
    for name in sorted(set(expected) & set(got)):
        if expected[name] != got[name]:
            a, b = expected[name], got[name]
            at = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
            found.append(f"{name} differs from byte {at} ({len(a)} vs {len(b)} bytes)")
    return found


def record(kills: list[Kill]) -> list[dict]:
    return [asdict(kill) for kill in kills]


# --- the two plans ------------------------------------------------------------------------------


def killed_jobs(
    command: str,
    job: Callable,
    args: tuple,
    tmp: Path,
    seeds: tuple[int, ...],
    choices: list[int],
    total: int,
    done: str,
    delay: float,
) -> tuple[list[Kill], dict[str, bytes]]:
    """A forked job: one uninterrupted run, then per seed a fresh folder where the job is
    killed at the seed's point (before ``done`` exists) and run again to completion; every
    folder must end with the uninterrupted run's files. Returns the kills and those files."""
    whole = tmp / "whole"
    whole.mkdir()
    run_to_end(start_job(job, str(whole), *args, 0.0), command)
    expected = output_files(whole)
    kills = []
    for seed in seeds:
        folder = tmp / f"seed{seed}"
        folder.mkdir()
        kill = kill_at(
            command,
            start_job(job, str(folder), *args, delay),
            lambda folder=folder: batches_done(folder / CHECKPOINT),
            seed,
            kill_point(seed, choices, delay),
            total,
            folder,
        )
        assert not (folder / done).exists(), f"{kill.describe()}: it had finished"
        run_to_end(start_job(job, str(folder), *args, 0.0), f"rerun after {kill.describe()}")
        found = differences(expected, output_files(folder))
        assert not found, f"{kill.describe()}: {found}"
        kills.append(kill)
    return kills, expected


def killed_command(
    command: str,
    argv: Callable[[Path], list[str]],
    progress: Callable[[Path], int],
    tmp: Path,
    seed: int,
    choices: list[int],
    n_kills: int,
    extra_s: float,
    total: int,
    done: str,
    drop_lines: tuple[str, ...] = (),
) -> tuple[list[Kill], dict[str, bytes]]:
    """``taskneurons <argv(out)>``: one uninterrupted run; then, in one fresh ``--out``, the
    command is killed ``n_kills`` times, each run resuming from what the last one left and
    killed at a point drawn with ``seed`` above it (``next_kill_point``), and run once more to
    completion; that folder must end with the uninterrupted run's files. Returns the kills and
    those files."""
    whole = tmp / "whole"
    whole.mkdir()
    run_to_end(start_command(argv(whole / "out"), whole / "log.txt"), command)
    expected = output_files(whole / "out", drop_lines)
    folder = tmp / f"seed{seed}"
    folder.mkdir()
    out = folder / "out"
    kills: list[Kill] = []
    rng = random.Random(seed)
    for i in range(n_kills):
        point = next_kill_point(rng, choices, progress(out), n_kills - i, extra_s)
        assert point is not None, f"{command}, seed {seed}: no kill point left after {kills}"
        launched = start_command(argv(out), folder / f"log{i}.txt")
        kill = kill_at(command, launched, lambda: progress(out), seed, point, total, folder)
        assert not (out / done).exists(), f"{kill.describe()}: it had finished"
        kills.append(kill)
    final = start_command(argv(out), folder / "log.txt")
    run_to_end(final, f"rerun after {[kill.describe() for kill in kills]}")
    found = differences(expected, output_files(out, drop_lines))
    assert not found, f"{[kill.describe() for kill in kills]}: {found}"
    return kills, expected
