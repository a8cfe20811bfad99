"""Generalization (the paper's Section 4): overlap and parameter similarity vs transfer. The
group's names are exported by ``experiments`` (``ex.proportion_sweep``, ...).

sweep  ``proportion_sweep``, ``pairwise_transfer``, ``similarity_vs_gain``,
       ``GeneralizationConfig``
runs   the trained runs behind them, cached by content
stats  correlations over their frames (``correlations``, ``sweep_correlations``,
       ``layer_correlations``, ``sweep_view``)
"""
