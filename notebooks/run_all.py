"""Execute the numbered notebooks in order and save them with their outputs, figures included.

    python notebooks/run_all.py              # 00, 01, ... in order
    python notebooks/run_all.py 02 04        # only those whose names start so

The committed notebooks are this command's output, so that they can be read on GitHub without
running them. Each notebook starts from a clean copy (every output cleared) on a fresh kernel,
in a temporary working folder (the files a notebook writes do not land in the repository), and
replaces the file only when every cell ran: a failure leaves the committed file as it was.
A notebook over ``MAX_BYTES`` is refused (shrink its figures or its printed tables).

Each run's wall time (cold kernel, model cached) is recorded in ``timings.json`` beside the
notebooks ({notebook: {"seconds", "cores", "load", "date"}}; ``load``: the machine's 1-minute
load average, the mean of its values at the start and the end, since other jobs on the same
cores slow a run down), written after every notebook, so the README
table can quote measured times; the same time is written into the notebook's header line
``**Time:** ...`` (its first cell) before it is saved, so the committed header states the run
that produced the committed outputs, and into the course outline's table (``docs/notebooks.md``:
the time column of the notebook's row, and the course's total).
"""

from __future__ import annotations

import datetime
import json
import os
import re
import sys
import tempfile
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

HERE = Path(__file__).resolve().parent
MAX_BYTES = 1_500_000
TIMEOUT_S = 1800  # per cell: a shared machine can stretch a 1-minute cell tenfold
TIMINGS = HERE / "timings.json"
OUTLINE = HERE.parent / "docs" / "notebooks.md"


def numbered(prefixes=()) -> list[Path]:
    """The numbered notebooks (``00_*.ipynb`` ...) in order, those starting with ``prefixes``."""
    paths = sorted(p for p in HERE.glob("[0-9][0-9]_*.ipynb"))
    return [p for p in paths if not prefixes or p.name.startswith(tuple(prefixes))]


def clean(notebook):
    """Clear every output and execution count (in place), as a fresh notebook has none.
    ``notebook``: an nbformat node or the plain dict of the file's JSON."""
    for cell in notebook["cells"]:
        if cell["cell_type"] == "code":
            cell["outputs"], cell["execution_count"] = [], None
        cell.get("metadata", {}).pop("execution", None)
    return notebook


def execute(path: Path, workdir: Path):
    """Run a clean copy of the notebook at ``path`` with ``workdir`` as its working folder;
    returns the executed notebook. Raises ``nbclient`` errors when a cell fails."""
    notebook = clean(nbformat.read(path, as_version=4))
    NotebookClient(
        notebook,
        timeout=TIMEOUT_S,
        kernel_name="python3",
        resources={"metadata": {"path": str(workdir)}},
    ).execute()
    return notebook


def cores() -> int:
    """The CPU cores this process may use."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def time_line(seconds: float, n_cores: int, load: float | None = None) -> str:
    """The header's time line for a run of ``seconds`` on ``n_cores`` cores at load average
    ``load`` (None: not recorded)."""
    minutes = max(1, round(seconds / 60))
    at_load = "" if load is None else f" at load average {load:.1f}"
    return (
        f"**Time:** about {minutes} min ({seconds:.0f} s measured on {n_cores} CPU cores"
        f"{at_load}, fresh kernel, model cached; `notebooks/timings.json`)."
    )


def stamp_time(notebook, seconds: float, n_cores: int, load: float | None = None) -> None:
    """Replace the ``**Time:** ...`` line of the first cell (in place); a notebook without one
    is left as it is."""
    first = notebook["cells"][0]
    source = "".join(first["source"])
    first["source"] = re.sub(
        r"^\*\*Time:\*\*.*$", time_line(seconds, n_cores, load), source, count=1, flags=re.M
    )


def save(notebook, path: Path) -> int:
    """Write atomically; returns the size in bytes. Refuses a file over ``MAX_BYTES``."""
    text = nbformat.writes(notebook) + "\n"
    size = len(text.encode())
    if size > MAX_BYTES:
        raise ValueError(
            f"{path.name} would be {size / 1e6:.2f} MB, over the "
            f"{MAX_BYTES / 1e6:.1f} MB limit; not written"
        )
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
    return size


def record_time(path: Path, seconds: float, load: float | None = None) -> None:
    """Add this run's wall time to ``TIMINGS`` (atomically; other notebooks' entries kept)."""
    timings = json.loads(TIMINGS.read_text()) if TIMINGS.exists() else {}
    timings[path.name] = {
        "seconds": round(seconds, 1),
        "cores": cores(),
        "load": None if load is None else round(load, 1),
        "date": datetime.date.today().isoformat(),
    }
    tmp = TIMINGS.with_name(f".{TIMINGS.name}.tmp")
    tmp.write_text(json.dumps(dict(sorted(timings.items())), indent=1) + "\n")
    os.replace(tmp, TIMINGS)


def time_cell(entry: dict) -> str:
    """The outline's time column for a timings.json entry: "95 s (load 7.5)"."""
    load = entry.get("load")
    return f"{entry['seconds']:.0f} s" + ("" if load is None else f" (load {load:.1f})")


def update_outline(timings: dict) -> None:
    """Rewrite the time column of each notebook's row of ``OUTLINE`` (the row that links
    ``notebooks/<name>``; its last cell) and the sentence "the course takes N minutes", from
    ``timings``; no outline, nothing to do."""
    if not OUTLINE.exists():
        return
    lines, total = OUTLINE.read_text().split("\n"), 0.0
    for i, line in enumerate(lines):
        name = next((n for n in timings if f"(notebooks/{n})" in line), None)
        if name and line.startswith("|"):
            total += timings[name]["seconds"]
            lines[i] = re.sub(r"\|[^|]*\|$", f"| {time_cell(timings[name])} |", line)
    text = re.sub(
        r"the course takes [\d.]+ minutes",
        f"the course takes {total / 60:.1f} minutes",
        "\n".join(lines),
    )
    tmp = OUTLINE.with_name(f".{OUTLINE.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, OUTLINE)


def main(argv: list[str]) -> int:
    paths = numbered(argv)
    if not paths:
        print(f"no numbered notebook in {HERE} starts with {' or '.join(argv)}", file=sys.stderr)
        return 2
    for path in paths:
        started, load_before = time.perf_counter(), os.getloadavg()[0]
        with tempfile.TemporaryDirectory() as workdir:
            notebook = execute(path, Path(workdir))
        seconds = round(time.perf_counter() - started, 1)  # as timings.json keeps it
        load = round((load_before + os.getloadavg()[0]) / 2, 1)
        stamp_time(notebook, seconds, cores(), load)
        size = save(notebook, path)
        record_time(path, seconds, load)
        update_outline(json.loads(TIMINGS.read_text()))
        print(
            f"{path.name}: ran in {seconds:.0f} s at load {load}, {size / 1e6:.2f} MB", flush=True
        )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
