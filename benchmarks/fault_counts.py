"""The counts of the fault and fuzz suite (tests/test_faults.py, tests/test_fuzz.py), for the
closing note: faults injected, inputs fuzzed, errors raised and how many named their cause.

    python benchmarks/fault_counts.py [--no-kills] [--out FILE]

Runs the suite's own cases (tests/fuzz_cases.py, tests/fault_kills.py) outside pytest:

- fuzzed inputs: every case of ``fuzz_cases.input_cases`` on the tiny Llama, judged by
  ``fuzz_cases.judge`` (a result, finite; or a one-line error of an allowed type raised by the
  package; and whether it names its cause);
- write faults: every writer x fault of ``fuzz_cases.WRITERS`` / ``FAULTS`` (those that cannot
  be made here, e.g. chmod as root, are counted as unavailable);
- kills (unless ``--no-kills``, ~3 minutes): the kill plans of tests/test_faults.py, SIGKILL
  and rerun, every file compared byte for byte with an uninterrupted run's.

Writes the counts as JSON (default benchmarks/results/fault_counts.json) and prints them. Any
case that misbehaves is listed, not raised: the tests are where failures fail.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
import warnings
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))  # the suite's case modules
sys.path.insert(0, str(HERE))

import torch  # noqa: E402

import fault_kills  # noqa: E402
import fuzz_cases  # noqa: E402
import taskneuron_utils as tn  # noqa: E402
from harness import emit  # noqa: E402

DEFAULT_OUT = HERE / "results" / "fault_counts.json"


def fuzz(ctx) -> dict:
    outcomes = [fuzz_cases.judge(case, ctx) for case in fuzz_cases.input_cases()]
    counts = fuzz_cases.summary(outcomes)
    counts["problems"] = [o.problems() for o in outcomes if not o.ok]
    return counts


def write_faults(ctx) -> dict:
    done, unavailable, problems, named = [], [], [], 0
    for writer in fuzz_cases.WRITERS:
        for fault in fuzz_cases.FAULTS:
            if not fuzz_cases.applies(writer, fault):
                continue
            with tempfile.TemporaryDirectory() as tmp:
                try:
                    outcome = fuzz_cases.write_fault(ctx, writer, fault, Path(tmp))
                except fuzz_cases.Unavailable as why:
                    unavailable.append(f"{writer} / {fault}: {why}")
                    continue
            done.append(outcome)
            named += bool(outcome.error and outcome.names_path)
            if not outcome.ok:
                problems.append(outcome.problems())
    return {
        "faults_injected": len(done),
        "errors_raised": sum(o.error is not None for o in done),
        "errors_one_line_naming_the_path": named,
        "clean (error, one line, path named, nothing left, earlier file unchanged)": sum(
            o.ok for o in done
        ),
        "problems": problems,
        "unavailable": unavailable,
    }


def kills(tok) -> dict:
    """The plans of tests/test_faults.py, with its seeds."""
    found: list = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        tiny = tmp / "tiny_llama"
        fault_kills.tiny_llama(tok).save_pretrained(tiny)
        tok.save_pretrained(tiny)
        choices = list(range(1, fault_kills.N_EXAMPLES - 2))
        for i, method in enumerate(fault_kills.METHOD_OPTIONS):
            folder = tmp / method
            folder.mkdir()
            found += fault_kills.killed_jobs(
                f"attribute {method}",
                fault_kills.attribute_job,
                (method,),
                folder,
                tuple(range(10 * i, 10 * i + 3)),
                choices,
                fault_kills.N_EXAMPLES,
                "relevance.safetensors",
                0.02,
            )[0]
        folder = tmp / "top_examples"
        folder.mkdir()
        found += fault_kills.killed_jobs(
            "top_examples",
            fault_kills.top_examples_job,
            (),
            folder,
            (50, 51, 52),
            choices,
            fault_kills.N_EXAMPLES,
            "top_examples.csv",
            0.02,
        )[0]
        folder = tmp / "detect"
        folder.mkdir()
        found += fault_kills.killed_command(
            "taskneurons detect",
            lambda out: (
                ["detect", "--task", "addition", "--model", str(tiny), "--n", "160"]
                + ["--batch-size", "1", "--out", str(out)]
            ),
            lambda out: fault_kills.batches_done(
                out / "relevance" / "addition.checkpoint.safetensors"
            ),
            folder,
            60,
            [25, 50, 75, 100],
            3,
            0.1,
            160,
            "addition.relevance.safetensors",
        )[0]
        folder = tmp / "main"
        folder.mkdir()
        tasks = ["addition", "number_parity", "uppercase", "product_sentiment", "last_word"]
        found += fault_kills.killed_command(
            "taskneurons main",
            lambda out: (
                ["main", "--model", str(tiny), "--tasks", *tasks, "--n", "32"] + ["--out", str(out)]
            ),
            lambda out: fault_kills.checkpoints_done(out / "relevance"),
            folder,
            70,
            [4, 8, 12, 16, 20],
            3,
            0.15,
            20,
            "summary.txt",
            drop_lines=("wall time:",),
        )[0]
        folder = tmp / "main_default_model"
        folder.mkdir()
        found += fault_kills.killed_command(
            "taskneurons main (default model)",
            lambda out: (
                ["main", "--tasks", "addition", "product_sentiment", "--n", "16"]
                + ["--out", str(out)]
            ),
            lambda out: fault_kills.checkpoints_done(out / "relevance"),
            folder,
            80,
            [2],
            1,
            0.5,
            4,
            "summary.txt",
            drop_lines=("wall time:",),
        )[0]
    by_command: dict[str, int] = {}
    for kill in found:
        by_command[kill.command] = by_command.get(kill.command, 0) + 1
    return {
        "faults_injected": len(found),
        "by_command": by_command,
        "reruns_with_identical_files": len(found),  # killed_* raise on any difference
        "kills_that_left_a_temporary": sum(bool(k.leftover_temporaries) for k in found),
        "kills": [kill.describe() for kill in found],
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--no-kills", action="store_true", help="skip the SIGKILL runs")
    parser.add_argument("--out", default=str(DEFAULT_OUT))
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    started = time.perf_counter()
    tok = fault_kills.tokenizer()
    ctx = fuzz_cases.Context(fault_kills.tiny_llama(tok), tok)
    result = {
        "inputs": fuzz(ctx),
        "write_faults": write_faults(ctx),
        "kills": None if args.no_kills else kills(tok),
        "seconds": None,
        "versions": {
            "taskneuron_utils": tn.__version__,
            "torch": torch.__version__,
            "python": platform.python_version(),
        },
    }
    result["seconds"] = round(time.perf_counter() - started, 1)
    emit(result, args.out)
    print(json.dumps({k: v for k, v in result["inputs"].items() if isinstance(v, int)}))


if __name__ == "__main__":
    main()
