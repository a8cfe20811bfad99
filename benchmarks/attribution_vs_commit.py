"""Attribution now against attribution at an earlier commit, in one process, interleaved.

    python benchmarks/attribution_vs_commit.py --commit 33bf499 [--repeats 3] [--threads 2]

Ratios against other methods move by a few hundredths with the machine's load; this compares
the code itself. The earlier commit's package is extracted with ``git archive`` into a temporary
folder and imported under another name (the package uses relative imports only), then both
attribute the same batches of a shipped task on the same model, alternating, and the medians
are compared, with a paired t-interval of the per-repeat difference. Also reports whether the relevance sums are bit-identical. Prints JSON.
"""

from __future__ import annotations

import argparse
import importlib
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import torch
from scipy import stats

import taskneuron_utils as tn
from harness import add_threads_option, apply_threads, emit, timed
from taskneuron_utils.attribution.run import attribute
from taskneuron_utils.tasks import default_data_dir

ROOT = Path(__file__).resolve().parents[1]


def import_commit(commit: str, folder: Path):
    """The package as it was at ``commit``, imported as ``tn_at_commit``."""
    archive = folder / "old.tar"
    with open(archive, "wb") as f:
        subprocess.run(
            ["git", "archive", commit, "taskneuron_utils"], cwd=ROOT, stdout=f, check=True
        )
    with tarfile.open(archive) as tar:
        tar.extractall(folder, filter="data")
    (folder / "taskneuron_utils").rename(folder / "tn_at_commit")
    sys.path.insert(0, str(folder))
    return importlib.import_module("tn_at_commit")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--commit", required=True)
    parser.add_argument("--task", default="product_sentiment")
    parser.add_argument("--examples", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out")
    add_threads_option(parser)
    args = parser.parse_args()
    apply_threads(args)
    # The old package finds the shipped suite here (it may predate the suite's packaging).
    os.environ.setdefault("TASKNEURON_DATA", str(default_data_dir()))
    with tempfile.TemporaryDirectory() as tmp:
        old = import_commit(args.commit, Path(tmp))
        model, tok = tn.load_model()
        new_data = tn.load_tasks([args.task])[args.task].train[: args.examples]
        old_data = old.load_tasks([args.task])[args.task].train[: args.examples]
        runs = {
            "old": lambda: old.attribute(
                model, tok, old_data, batch_size=args.batch_size, progress=False
            ),
            "new": lambda: attribute(
                model, tok, new_data, batch_size=args.batch_size, progress=False
            ),
        }
        before, now = runs["old"](), runs["new"]()  # also the warm-up
        identical = all(torch.equal(before.sum_abs[s], now.sum_abs[s]) for s in now.sum_abs)
        seconds = {name: [] for name in runs}
        for _ in range(args.repeats):
            for name, fn in runs.items():
                seconds[name].append(round(timed(fn), 3))
    median = {name: statistics.median(values) for name, values in seconds.items()}
    paired = stats.ttest_rel(seconds["new"], seconds["old"])  # repeat i: old, then new
    interval = paired.confidence_interval(0.95)
    emit(
        {
            "commit": args.commit,
            "task": args.task,
            "examples": args.examples,
            "batch_size": args.batch_size,
            "torch_threads": torch.get_num_threads(),
            "seconds": seconds,
            "seconds_median": median,
            "new_over_old": round(median["new"] / median["old"], 3),
            "new_minus_old_s": {
                "mean": round(statistics.mean(seconds["new"]) - statistics.mean(seconds["old"]), 3),
                "ci95": [round(interval.low, 3), round(interval.high, 3)],
                "p": round(float(paired.pvalue), 3),
            },
            "relevance_sums_identical": identical,
        },
        args.out,
    )


if __name__ == "__main__":
    main()
