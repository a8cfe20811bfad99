"""Compare neuron sets and relevance profiles across tasks; every function returns a DataFrame."""

from __future__ import annotations

import pandas as pd
import torch

from .attribution import Relevance
from .neurons import NeuronSet, parse_site_name


def overlap_matrix(neuron_sets: dict[str, NeuronSet]) -> pd.DataFrame:
    """Jaccard overlap |A ∩ B| / |A ∪ B| of every pair of sets: a square DataFrame, task x task."""
    names = list(neuron_sets)
    values = [[neuron_sets[a].jaccard(neuron_sets[b]) for b in names] for a in names]
    return pd.DataFrame(values, index=pd.Index(names, name="task"), columns=pd.Index(names, name="other"))


def expected_random_jaccard(k: float) -> float:
    """Expected Jaccard overlap of two independent random sets of the same fraction k.

    Two random sets of k*n neurons share about k*k*n, so J = k^2 / (2k - k^2) = k / (2 - k):
    the chance baseline to read an overlap matrix against (0.053 for k = 0.10).
    """
    return k / (2 - k)


def layer_profile(relevances: dict[str, Relevance], k: float = 0.10) -> pd.DataFrame:
    """Where each task's relevance sits, layer by layer and site kind by site kind.

    Per-site top-k gives every site the same fraction by construction, so the layer profile is
    read from the scores themselves: ``mean_score`` (mean relevance of the site's neurons, nats
    per example) and ``global_share`` (fraction of the site's neurons in the task's *global*
    top-k, i.e. where the most relevant neurons are when layers compete).

    Returns one row per (task, site): task, site, layer, kind, neurons, mean_score, global_share.
    """
    rows = []
    for task, relevance in relevances.items():
        global_set = relevance.top_k(k, per="global")
        for site, scores in relevance.scores.items():
            layer, kind = parse_site_name(site)
            rows.append({
                "task": task, "site": site, "layer": layer, "kind": kind,
                "neurons": len(scores), "mean_score": float(scores.mean()),
                "global_share": len(global_set.indices[site]) / len(scores),
            })
    return pd.DataFrame(rows)


def score_correlation(relevances: dict[str, Relevance]) -> pd.DataFrame:
    """Spearman correlation between two tasks' relevance over all neurons, task x task."""
    flat = {name: torch.cat(list(rel.scores.values())).numpy() for name, rel in relevances.items()}
    matrix = pd.DataFrame(flat).corr(method="spearman")
    matrix.index.name, matrix.columns.name = "task", "other"
    return matrix
