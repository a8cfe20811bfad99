"""What every benchmark here shares: a --threads option, a timer, interleaved medians, the peak
resident memory of a call, a random 10% neuron set, printing the result as JSON, and writing a
result table atomically.

The scripts import it as a sibling module (``python benchmarks/<name>.py`` puts this folder on
``sys.path``).
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import json
import os
import statistics
import threading
import time
from collections.abc import Callable, Hashable
from pathlib import Path

import torch

from taskneuron_utils.neurons.neuron_set import NeuronSet, layout_of


def add_threads_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--threads",
        type=int,
        help="torch threads (default: torch's); 1 gives stable ratios on a "
        "machine shared with other jobs",
    )


def apply_threads(args: argparse.Namespace) -> None:
    if args.threads:
        torch.set_num_threads(args.threads)


def timed(fn) -> float:
    """Seconds one call of ``fn()`` takes."""
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def interleaved_medians(runs: dict[Hashable, Callable[[], object]], repeats: int) -> dict:
    """{name: median seconds of ``runs[name]()``}: one warm-up call of each, then ``repeats``
    rounds that call each once in turn, so that a slow spell of a shared machine falls on every
    run alike and the ratios between them stay fair."""
    for fn in runs.values():
        fn()
    times: dict[Hashable, list[float]] = {name: [] for name in runs}
    for _ in range(repeats):
        for name, fn in runs.items():
            times[name].append(timed(fn))
    return {name: statistics.median(values) for name, values in times.items()}


def rss_bytes() -> int:
    """This process's resident memory now, in bytes (Linux /proc)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def measuring_env() -> dict[str, str]:
    """The environment for a child process whose RSS is measured: glibc's malloc maps every
    block of 64 KiB or more on its own and unmaps it when freed (a fixed
    ``MALLOC_MMAP_THRESHOLD_`` also turns off its adaptive threshold), so RSS follows the
    memory in use instead of what the heap kept from earlier batches. Measured here on the same
    call: 392-486 MB of peak increase with glibc's defaults, 368.2-368.3 MB with this."""
    return {**os.environ, "MALLOC_MMAP_THRESHOLD_": "65536"}


def release_free_memory() -> None:
    """Collect garbage and return the C heap's free pages to the OS (glibc ``malloc_trim``;
    a no-op elsewhere): without it, an RSS baseline depends on how much freed memory earlier
    calls left in the heap (measured here: 200-360 MB of noise on the same call)."""
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def peak_rss(fn: Callable[[], object]) -> tuple[int, int]:
    """(resident bytes before, peak resident bytes during) one call of ``fn()``, sampled every
    5 ms. ``ru_maxrss`` would not do: its peak is usually reached while loading the model.
    Free memory the allocator still holds is handed back first (``release_free_memory``), so
    that ``before`` is what is in use, whatever ran earlier in the process."""
    release_free_memory()
    before, done = rss_bytes(), threading.Event()
    peak = [before]

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], rss_bytes())
            time.sleep(0.005)

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        fn()
    finally:
        done.set()
        sampler.join()
    return before, max(peak[0], rss_bytes())


def random_tenth(model, seed: int = 0) -> NeuronSet:
    """round(0.1 * n) random neurons of every site, like a top-10% set."""
    layout = layout_of(model)
    template = NeuronSet({site: torch.arange(round(0.1 * n)) for site, n in layout.items()}, layout)
    return NeuronSet.random_like(template, seed=seed)


def emit(result: dict, out: str | None = None) -> None:
    """Print ``result`` as JSON and, with ``out``, write it there too."""
    text = json.dumps(result, indent=2)
    print(text)
    if out:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_text(text + "\n")


def _write_atomically(path: Path, write) -> None:
    """``write(tmp)`` to a temporary sibling, then move it onto ``path``: a stopped run leaves
    no half file."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    write(tmp)
    tmp.replace(path)


def write_csv(frame, path: Path) -> None:
    """Write the DataFrame ``frame`` to ``path`` atomically (a part whose CSV exists counts as
    done); gzip-compressed when ``path`` ends in .gz."""
    _write_atomically(
        path,
        lambda tmp: frame.to_csv(
            tmp, index=False, compression="gzip" if str(path).endswith(".gz") else None
        ),
    )


def write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically."""
    _write_atomically(path, lambda tmp: tmp.write_text(text))


def write_json(path: Path, value) -> None:
    """Write ``value`` as indented JSON to ``path`` atomically."""
    _write_atomically(path, lambda tmp: tmp.write_text(json.dumps(value, indent=2) + "\n"))
