"""The replication record of the quick profile: ``taskneurons replicate --profile quick`` into
benchmarks/results/replication, and docs/replication.md regenerated from it.

    python benchmarks/replication.py [--out benchmarks/results/replication] [--parts ...]
        [--threads N]

The units' files already in ``--out`` (the committed record, measured 2026-11-27 to 29 on 2
cores; ``times.json`` holds each unit's seconds) are adopted, so a rerun only computes what is
missing and rewrites the report: ``--out/report.md``, ``--out/report.html``, and
``docs/replication.md`` (the same Markdown, figure links relative to docs/). The parts, their
units and settings are ``taskneuron_utils.experiments.replicate`` (``quick_settings``); the
record's hand-written analysis is ``--out/notes.md``, appended to the report as written.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

from harness import add_threads_option, apply_threads  # noqa: E402
from taskneuron_utils.experiments.replicate import PARTS, replicate, settings_for  # noqa: E402
from taskneuron_utils.experiments.replicate.report import write_report  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
RECORD = ROOT / "benchmarks" / "results" / "replication"
DOCS = ROOT / "docs" / "replication.md"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", default=str(RECORD))
    parser.add_argument("--parts", nargs="+", default=list(PARTS), choices=PARTS)
    add_threads_option(parser)
    args = parser.parse_args(argv)
    apply_threads(args)
    out = Path(args.out)
    settings = settings_for("quick")
    replicate(out, settings, args.parts)
    if out.resolve() == RECORD.resolve():
        prefix = os.path.relpath(out, DOCS.parent).replace(os.sep, "/") + "/"
        write_report(out, settings, PARTS, md_path=DOCS, link_prefix=prefix)


if __name__ == "__main__":
    main()
