"""Neurons as data: sets of them, their relevance scores, and comparisons between sets.
Imports ``errors``, ``core``, ``tasks`` and ``io``.

    neuron_set  ``NeuronSet``: ``{site: indices}`` that can be compared, sampled and saved
    relevance   ``Relevance``: per-neuron relevance sums with provenance; ``top_k`` -> NeuronSet
    selection   selections beside plain top-k: contrastive, entropy, exclusive, shared core
    analysis    overlap, layer profiles, parameter similarity, correlations (DataFrames)
"""

from .neuron_set import NeuronSet
from .relevance import Relevance
from .selection import matched_top, select, shared_core

__all__ = ["NeuronSet", "Relevance", "matched_top", "select", "shared_core"]
