"""The README's main job, recorded: the files its numbers cite (the sentiment pair's overlap,
the unrelated pairs', the random baseline, where the relevant neurons sit).

    python benchmarks/main_job_reference.py [--out docs/reference/main_job] [--model PATH]

Runs ``experiments.main_job`` with the quick profile's detection settings (the embedded
default model, ``product_sentiment``, ``film_sentiment``, ``news_topic``, ``addition``, 128
training examples each, top 10% per site; what ``taskneurons main`` runs) in a temporary folder
and copies its small outputs to ``--out``: ``overlap.csv``, ``layers.csv``, ``summary.txt``,
``overlap.png``, ``layers.png``. The relevance and neuron-set files stay out of the repository.
About 5 minutes on 2 CPU cores (the README: 292 s warm).
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

from taskneuron_utils import experiments as ex  # noqa: E402

FILES = ("overlap.csv", "layers.csv", "summary.txt", "overlap.png", "layers.png")
OUT = Path(__file__).resolve().parents[1] / "docs" / "reference" / "main_job"


def record(out: Path = OUT, config: ex.DetectionConfig = ex.PROFILES["quick"].detection) -> Path:
    """Run the main job with ``config`` and copy ``FILES`` to ``out`` (replacing them)."""
    out = Path(out)
    with tempfile.TemporaryDirectory() as tmp:
        ex.main_job(tmp, config)
        out.mkdir(parents=True, exist_ok=True)
        for name in FILES:
            shutil.copyfile(Path(tmp) / name, out / name)
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=str(OUT), help=f"output folder (default: {OUT})")
    parser.add_argument("--model", help="hub id or local folder (default: the embedded model)")
    parser.add_argument("--n", type=int, help="training examples per task (default: 128)")
    args = parser.parse_args(argv)
    config = ex.PROFILES["quick"].detection
    if args.model:
        config = config.replace(model=args.model)
    if args.n:
        config = config.replace(n_attribution=args.n)
    out = record(Path(args.out), config.replace(progress=False))
    print((out / "summary.txt").read_text(), end="")


if __name__ == "__main__":
    main()
