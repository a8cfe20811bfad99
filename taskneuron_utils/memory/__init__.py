"""How much memory a run needs, before the run. Imports ``core`` and ``training``.

estimate  ``estimate_memory`` / ``estimate_table`` (from a config, on the meta device),
          ``measure_peak``, ``KNOWN_CONFIGS`` (7B configs offline)
formulas  ``MemoryEstimate`` and the per-layer formulas it counts with
"""

from .estimate import KNOWN_CONFIGS, estimate_memory, estimate_table, measure_peak
from .formulas import MemoryEstimate

__all__ = ["KNOWN_CONFIGS", "MemoryEstimate", "estimate_memory", "estimate_table", "measure_peak"]
