"""Compare neuron sets and relevance profiles across tasks; every function returns a DataFrame."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from scipy import stats
import torch

from .relevance import Relevance
from ..core.sites import parse_site_name
from .neuron_set import NeuronSet
from ..core.layout import layout_for

#: The paper's range of per-layer correlations between parameter similarity and generalization
#: (Section 4), drawn by ``plots.plot_layer_correlation``; here, below both the experiments and the
#: plots, so that neither imports the other for it.
PAPER_LAYER_CORRELATION = {"pearson": (0.79, 0.97), "spearman": (0.71, 0.83)}


def overlap_matrix(neuron_sets: dict[str, NeuronSet]) -> pd.DataFrame:
    """Jaccard overlap |A ∩ B| / |A ∪ B| of every pair of sets: a square DataFrame, task x task."""
    names = list(neuron_sets)
    values = [[neuron_sets[a].jaccard(neuron_sets[b]) for b in names] for a in names]
    return pd.DataFrame(
        values, index=pd.Index(names, name="task"), columns=pd.Index(names, name="other")
    )


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
            rows.append(
                {
                    "task": task,
                    "site": site,
                    "layer": layer,
                    "kind": kind,
                    "neurons": len(scores),
                    "mean_score": float(scores.mean()),
                    "global_share": len(global_set.indices[site]) / len(scores),
                }
            )
    return pd.DataFrame(rows)


def correlate(x, y, *, n_boot: int = 2000, confidence: float = 0.95, seed: int = 0) -> dict:
    """Pearson and Spearman correlation of paired samples, with p-values and bootstrap intervals.

    p-values are scipy's (``pearsonr``, ``spearmanr``: two-sided, against no correlation); the
    intervals are percentile bootstrap intervals over the pairs (``scipy.stats.bootstrap``,
    ``paired=True``, ``n_boot`` resamples, seeded). NaN where fewer than 3 pairs or a constant
    input leave the statistic undefined.

    Returns:
        {"n", "pearson", "pearson_p", "pearson_low", "pearson_high", "spearman", "spearman_p",
        "spearman_low", "spearman_high"}.
    """

    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError(f"x and y must be 1-D and paired; got shapes {x.shape} and {y.shape}")
    keep = np.isfinite(x) & np.isfinite(y)
    x, y = x[keep], y[keep]
    out = {"n": int(len(x))}
    defined = len(x) >= 3 and np.ptp(x) > 0 and np.ptp(y) > 0
    for name, test in (("pearson", stats.pearsonr), ("spearman", stats.spearmanr)):
        if not defined:
            out.update(
                {name: np.nan, f"{name}_p": np.nan, f"{name}_low": np.nan, f"{name}_high": np.nan}
            )
            continue
        result = test(x, y)
        out[name], out[f"{name}_p"] = float(result.statistic), float(result.pvalue)
        statistic = _pearson if name == "pearson" else _spearman
        with warnings.catch_warnings():
            # A resample can be constant (NaN statistic) or all resamples equal (a perfect
            # correlation): the interval is then degenerate, which is what it should report.
            warnings.simplefilter("ignore")
            boot = stats.bootstrap(
                (x, y),
                statistic,
                paired=True,
                vectorized=True,
                axis=-1,
                n_resamples=n_boot,
                confidence_level=confidence,
                method="percentile",
                rng=np.random.default_rng(seed),
            )
        out[f"{name}_low"] = float(boot.confidence_interval.low)
        out[f"{name}_high"] = float(boot.confidence_interval.high)
    return out


def bootstrap_interval(
    statistic, sizes, *, n_resamples: int = 2000, confidence: float = 0.95, seed: int = 0
):
    """Percentile bootstrap interval of a statistic of several independently resampled units.

    ``sizes`` gives the number of units along each resampled dimension, e.g. (test examples,
    random seeds): each dimension is resampled with replacement independently of the others
    (with two, the two-way bootstrap of a crossed design). ``statistic(*indices)`` gets one
    int array of unit indices per dimension, each of shape (..., size) with the same leading
    resample axes, and returns the statistic with shape (...), or (Q, ...) for Q statistics
    at once. A dimension of size 1 cannot be resampled: its index array is all zeros.
    ``scipy.stats.bootstrap`` (``paired=False``, ``method="percentile"``, ``n_resamples``,
    seeded by ``seed``) does the resampling.

    Returns:
        (low, high): floats, or arrays of shape (Q,); both equal the statistic when no
        dimension has more than one unit.
    """

    sizes = [int(n) for n in sizes]
    if not sizes or min(sizes) < 1:
        raise ValueError(f"every resampled dimension needs at least one unit, got sizes {sizes}")
    varying = [i for i, n in enumerate(sizes) if n > 1]

    def full(*resampled, axis=-1):
        lead = resampled[0].shape[:-1] if resampled else ()
        indices, given = [], iter(resampled)
        for n in sizes:
            indices.append(next(given) if n > 1 else np.zeros(lead + (1,), dtype=np.int64))
        return statistic(*indices)

    if not varying:
        value = np.asarray(full())
        return (float(value), float(value)) if value.ndim == 0 else (value, value)
    result = stats.bootstrap(
        tuple(np.arange(sizes[i]) for i in varying),
        full,
        paired=False,
        vectorized=True,
        axis=-1,
        n_resamples=n_resamples,
        batch=250,
        confidence_level=confidence,
        method="percentile",
        rng=np.random.default_rng(seed),
    )
    low, high = result.confidence_interval.low, result.confidence_interval.high
    if np.ndim(low) == 0:
        return float(low), float(high)
    return np.asarray(low), np.asarray(high)


def _pearson(a, b, axis=-1):
    """Pearson's r along ``axis`` (vectorised over resamples)."""

    a = a - a.mean(axis=axis, keepdims=True)
    b = b - b.mean(axis=axis, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (a * b).sum(axis) / np.sqrt((a * a).sum(axis) * (b * b).sum(axis))


def _spearman(a, b, axis=-1):
    """Spearman's rho: Pearson's r of the ranks (ties averaged), along ``axis``."""

    return _pearson(stats.rankdata(a, axis=axis), stats.rankdata(b, axis=axis), axis)


def neuron_vectors(model, neurons: NeuronSet, base=None) -> dict[int, torch.Tensor]:
    """One parameter vector a layer for a neuron set: {layer: float32 (sum over kinds of in+1,)}.

    Vectorisation: for every site, the mean of the selected neurons' parameter rows
    (``Site.read``: weight row then bias, float32); the site means of a layer are concatenated
    in site order. With ``base`` (the model before fine-tuning, same layout), the rows are the
    updates ``tuned - base`` instead. A site with no selected neuron contributes zeros.
    """

    layout = layout_for(model, neurons.sizes)  # the set's kinds: default sites, act, or all
    neurons.check_fits(model)
    base_sites = layout_for(base, neurons.sizes).by_name if base is not None else None
    parts: dict[int, list[torch.Tensor]] = {}
    for site in layout.sites:
        idx = neurons.indices[site.name]
        if len(idx) == 0:
            mean = torch.zeros(site.read([0]).shape[1])
        else:
            rows = site.read(idx).cpu()
            if base_sites is not None:
                rows = rows - base_sites[site.name].read(idx).cpu()
            mean = rows.mean(0)
        parts.setdefault(site.layer, []).append(mean)
    return {layer: torch.cat(vectors) for layer, vectors in parts.items()}


def parameter_similarity(
    model, sets: dict[str, NeuronSet], reference: str, base=None
) -> pd.DataFrame:
    """Per-layer cosine similarity between the parameters of ``reference``'s neurons and each
    other set's neurons, in ``model`` (typically fine-tuned on the reference task).

    Two vectorisations (``neuron_vectors``): ``weights`` (mean parameter rows of the set, per
    site, concatenated over the layer's sites) and, with ``base``, ``update`` (the same of the
    rows' change from ``base``). Returns one row per (task, layer): reference, task, layer,
    similarity_weights [, similarity_update]; dimensionless, in [-1, 1].
    """
    if reference not in sets:
        raise KeyError(f"reference {reference!r} is not one of the sets {list(sets)}")
    kinds = {"weights": None} if base is None else {"weights": None, "update": base}
    vectors = {
        kind: {name: neuron_vectors(model, ns, base=b) for name, ns in sets.items()}
        for kind, b in kinds.items()
    }
    rows = []
    for name in sets:
        if name == reference:
            continue
        for layer in vectors["weights"][reference]:
            row = {"reference": reference, "task": name, "layer": layer}
            for kind in kinds:
                a, b = vectors[kind][reference][layer], vectors[kind][name][layer]
                row[f"similarity_{kind}"] = float(
                    torch.nn.functional.cosine_similarity(a, b, dim=0)
                )
            rows.append(row)
    return pd.DataFrame(rows)
