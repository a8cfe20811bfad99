"""The budgets every attribution method is held to, checked when ``attribute`` binds it (no
forward pass yet), and the memory budget that sizes the passes of the methods that stack
copies of a batch (integrated gradients' path points, exact ablation's units).

Memory. A method that stacks copies runs as many to a pass as fit its budget: ``max_memory=``
(bytes, or a string such as ``"2GB"`` / ``"512MiB"``) or, by default, what grad x act's own
pass over the same batch needs (``cost.grad_pass``), at least ``MEMORY_FLOOR`` (so that small
batches still stack several copies), at most ``FREE_SHARE`` of the device's free memory (CUDA:
``torch.cuda.mem_get_info`` plus what torch's cache holds unused; CPU: ``MemAvailable`` of
/proc/meminfo). By default integrated gradients and ablation therefore need about the memory of
grad x act on the same batch, whatever the number of sites, steps or units. At least one point
(or unit) goes into a pass. Chunking only groups rows: on a CPU the scores are bit-identical
for any budget (the float64 sums add the points in path order).

Refusals. A method whose estimated work exceeds ``WORK_BUDGET`` times grad x act's on the same
data, and ``FLOP_FLOOR`` floating-point operations (so that tiny models never trip it), or
whose one pass needs more than the free memory, is refused with a one-line ValueError naming
the estimate and the option that bounds it; ``force=True`` on the method turns the refusal into
a warning. With the default model (8 examples of ~60 tokens, ~2e11 operations for grad x act)
that means: integrated gradients over more than 200 / (steps + 1) sites (11 sites at 16 steps),
exact ablation of more than ~400 units.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable

import torch

from .cost import FORWARD_SHARE

GiB = 1024**3
MEMORY_FLOOR = GiB // 2  # the smallest default budget for one pass's stacked copies
FREE_SHARE = 0.5  # the default budget never exceeds this share of the free memory
WORK_BUDGET = 200.0  # x grad x act's work on the same data, beyond which a run is refused
FLOP_FLOOR = 1e13  # ... if it also exceeds this many floating-point operations (minutes on a CPU)
__all__ = [
    "FLOP_FLOOR",
    "FORWARD_SHARE",
    "FREE_SHARE",
    "MEMORY_FLOOR",
    "WORK_BUDGET",
    "default_budget",
    "describe_bytes",
    "free_memory",
    "largest_fitting",
    "parse_memory",
]

_UNITS = {
    "": 1,
    "b": 1,
    "kb": 10**3,
    "mb": 10**6,
    "gb": 10**9,
    "tb": 10**12,
    "kib": 2**10,
    "mib": 2**20,
    "gib": 2**30,
    "tib": 2**40,
}


def parse_memory(value) -> int | None:
    """Bytes from ``max_memory``: None, a number of bytes, or a string like ``"2GB"``,
    ``"1.5 GiB"``, ``"512MiB"`` (GB = 10^9, GiB = 2^30)."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise ValueError(f"max_memory must be bytes or a string like '2GB', got {value!r}")
    if isinstance(value, (int, float)):
        number, unit = float(value), ""
    else:
        match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([A-Za-z]*)\s*", str(value))
        if not match or match.group(2).lower() not in _UNITS:
            raise ValueError(
                f"max_memory must be bytes or a string like '2GB' or '512MiB', got {value!r}"
            )
        number, unit = float(match.group(1)), match.group(2).lower()
    size = int(number * _UNITS[unit])
    if size <= 0:
        raise ValueError(f"max_memory must be positive, got {value!r}")
    return size


def free_memory(device: torch.device | str) -> int | None:
    """Bytes the device can still give: CUDA's free memory plus what torch's cache holds
    unused; on a CPU, the kernel's estimate of available memory. None where unknown."""
    device = torch.device(device)
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        cached = torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device)
        return int(free + cached)
    if device.type != "cpu":
        return None
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        import psutil  # optional: other systems than Linux
    except ImportError:
        try:
            return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (ValueError, OSError, AttributeError):
            return None
    return int(psutil.virtual_memory().available)


def describe_bytes(size: float) -> str:
    """``size`` bytes in words: "1.23 GiB", "456 MiB"."""
    return f"{size / GiB:.2f} GiB" if size >= GiB else f"{size / 2**20:,.0f} MiB"


def default_budget(grad_x_act_bytes: float, free: int | None) -> int:
    """The default memory budget of one stacked pass: grad x act's on the same batch, at
    least ``MEMORY_FLOOR``, at most ``FREE_SHARE`` of ``free`` (when known)."""
    budget = max(int(grad_x_act_bytes), MEMORY_FLOOR)
    return budget if free is None else min(budget, int(FREE_SHARE * free))


def largest_fitting(most: int, bytes_of: Callable[[int], float], budget: int) -> int:
    """The largest ``k`` in 1..``most`` with ``bytes_of(k) <= budget`` (1 when none fits);
    ``bytes_of`` grows with ``k``."""
    low, high = 1, most
    while low < high:
        middle = (low + high + 1) // 2
        if bytes_of(middle) <= budget:
            low = middle
        else:
            high = middle - 1
    return low
