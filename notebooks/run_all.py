"""Execute the numbered notebooks in order and save them with their outputs, figures included.

    python notebooks/run_all.py              # 00, 01, ... in order
    python notebooks/run_all.py 02 04        # only those whose names start so

The committed notebooks are this command's output, so that they can be read on GitHub without
running them. Each notebook starts from a clean copy (every output cleared) on a fresh kernel,
in a temporary working folder (the files a notebook writes do not land in the repository), and
replaces the file only when every cell ran: a failure leaves the committed file as it was.
A notebook over ``MAX_BYTES`` is refused (shrink its figures or its printed tables).

Each run's wall time (cold kernel, model cached) is recorded in ``timings.json`` beside the
notebooks ({notebook: {"seconds", "cores", "date"}}), written after every notebook, so the README
table and the notebooks' headers can quote measured times.
"""

from __future__ import annotations

import datetime
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

HERE = Path(__file__).resolve().parent
MAX_BYTES = 1_500_000
TIMEOUT_S = 900  # per cell
TIMINGS = HERE / "timings.json"


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


def record_time(path: Path, seconds: float) -> None:
    """Add this run's wall time to ``TIMINGS`` (atomically; other notebooks' entries kept)."""
    timings = json.loads(TIMINGS.read_text()) if TIMINGS.exists() else {}
    timings[path.name] = {
        "seconds": round(seconds, 1),
        "cores": len(os.sched_getaffinity(0))
        if hasattr(os, "sched_getaffinity")
        else os.cpu_count(),
        "date": datetime.date.today().isoformat(),
    }
    tmp = TIMINGS.with_name(f".{TIMINGS.name}.tmp")
    tmp.write_text(json.dumps(dict(sorted(timings.items())), indent=1) + "\n")
    os.replace(tmp, TIMINGS)


def main(argv: list[str]) -> int:
    paths = numbered(argv)
    if not paths:
        print(f"no numbered notebook in {HERE} starts with {' or '.join(argv)}", file=sys.stderr)
        return 2
    for path in paths:
        started = time.perf_counter()
        with tempfile.TemporaryDirectory() as workdir:
            notebook = execute(path, Path(workdir))
        size = save(notebook, path)
        seconds = time.perf_counter() - started
        record_time(path, seconds)
        print(f"{path.name}: ran in {seconds:.0f} s, {size / 1e6:.2f} MB", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
