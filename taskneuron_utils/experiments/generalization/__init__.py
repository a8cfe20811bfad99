"""Generalization (the paper's Section 4): overlap and parameter similarity vs transfer.

sweep  ``proportion_sweep``, ``pairwise_transfer``, ``similarity_vs_gain``,
       ``GeneralizationConfig``
runs   the trained runs behind them, cached by content
stats  correlations over their frames (``correlations``, ``sweep_correlations``,
       ``layer_correlations``, ``sweep_view``)
"""

from .stats import correlations, layer_correlations, sweep_correlations, sweep_view
from .sweep import (
    GROUPS,
    SWEEP_COLUMNS,
    GeneralizationConfig,
    pairwise_transfer,
    proportion_sweep,
    similarity_vs_gain,
)

__all__ = [
    "GROUPS",
    "GeneralizationConfig",
    "SWEEP_COLUMNS",
    "correlations",
    "layer_correlations",
    "pairwise_transfer",
    "proportion_sweep",
    "similarity_vs_gain",
    "sweep_correlations",
    "sweep_view",
]
