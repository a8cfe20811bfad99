"""Figures, one function a figure. Each takes the DataFrame an analysis or experiment returns,
draws on ``ax`` (a new figure when omitted) and returns the matplotlib Axes it drew on, so a
notebook cell ending in a plot call shows the figure once, with no trailing ``;``:

    ax = plots.plot_overlap(matrix)               # a new figure
    ax.figure.savefig("overlap.png")
    fig, axes = plt.subplots(1, 2)
    plots.plot_layer_profile(profile, ax=axes[0])  # drawn into a panel of your own figure

Plots depend on frames: they import matplotlib, seaborn and the statistics of
``neurons.analysis``, never ``experiments`` (which import them).
"""

from .continual import plot_cl_matrix, plot_cl_summary, plot_cl_trajectories
from .generalization import (
    plot_gain_vs_p,
    plot_layer_correlation,
    plot_overlap_gain,
    plot_similarity_heatmap,
    plot_sweep_bars,
)
from .faithfulness import plot_faithfulness
from .methods import plot_method_agreement
from .neurons import plot_kind_profile, plot_layer_profile, plot_overlap
from .tables import (
    plot_budget,
    plot_deactivation_bars,
    plot_deactivation_heatmap,
    plot_dominance_vs_k,
    plot_finetuning,
    plot_k_sweep,
    plot_specificity,
    plot_training_curves,
)

__all__ = [
    "plot_budget",
    "plot_cl_matrix",
    "plot_cl_summary",
    "plot_cl_trajectories",
    "plot_deactivation_bars",
    "plot_deactivation_heatmap",
    "plot_dominance_vs_k",
    "plot_faithfulness",
    "plot_finetuning",
    "plot_gain_vs_p",
    "plot_k_sweep",
    "plot_kind_profile",
    "plot_layer_correlation",
    "plot_layer_profile",
    "plot_method_agreement",
    "plot_overlap",
    "plot_overlap_gain",
    "plot_similarity_heatmap",
    "plot_specificity",
    "plot_sweep_bars",
    "plot_training_curves",
]
