"""Selecting task-specific neurons beside plain top-k: contrastive, entropy (LAPE-like),
exclusive, and the shared core.

Plain top-k by relevance (``Relevance.top_k``) mostly finds *generally important* neurons:
different tasks' top sets share a large core, and switching off one task's set hurts every task.
The methods here rank a task's neurons against the other tasks' relevance on the same neurons.

Every ``select_*`` function takes ``{task: Relevance}`` (two or more tasks, one model layout)
and a fraction ``k`` in (0, 1], and returns ``{task: NeuronSet}`` with exactly
``round(k * n)`` neurons at every site of ``n`` neurons: the counts of
``Relevance.top_k(k, per="site")``, so that methods are compared at matched neuron counts.
Ties are broken by neuron index (lowest first), as in ``top_k``.

Notation, per site: ``R_t[j]`` is task ``t``'s relevance score of neuron ``j``
(``Relevance.scores``) and ``Rn_t[j] = R_t[j] / mean_j' R_t[j']`` the same divided by the
task's mean score at that site, so that a task with larger losses (hence larger relevance
everywhere) does not dominate the comparison; ``T`` is the number of tasks.
"""

from __future__ import annotations

from functools import reduce
from typing import Any

import torch

from ..core.layout import layout_difference
from ..errors import NeuronSetMismatchError
from .relevance import Relevance
from .neuron_set import NeuronSet, check_fraction

CONTRASTS = ("difference", "zscore")
_EPS = 1e-12


def select(
    relevances: dict[str, Relevance], method: str = "top_k", k: float = 0.10, **options: Any
) -> dict[str, NeuronSet]:
    """{task: NeuronSet} by ``method``: ``"top_k"`` (``Relevance.top_k`` per site),
    ``"contrastive"``, ``"entropy"`` or ``"exclusive"`` (the ``select_*`` functions, which take
    ``options``). Every method keeps ``round(k * n)`` neurons of every site of ``n`` neurons."""
    methods = {
        "top_k": select_top_k,
        "contrastive": select_contrastive,
        "entropy": select_entropy,
        "exclusive": select_exclusive,
    }
    if method not in methods:
        raise ValueError(f"unknown selection method {method!r}; choose one of {sorted(methods)}")
    return methods[method](relevances, k, **options)


def select_top_k(relevances: dict[str, Relevance], k: float = 0.10) -> dict[str, NeuronSet]:
    """The paper's sets, ``rel.top_k(k, per="site")`` for every task (the reference method)."""
    _scores(relevances, k, min_tasks=1)
    return {task: rel.top_k(k, per="site") for task, rel in relevances.items()}


def select_contrastive(
    relevances: dict[str, Relevance], k: float = 0.10, *, contrast: str = "difference"
) -> dict[str, NeuronSet]:
    """A task's neurons by how much more relevant they are to it than to the other tasks.

    Per site, task ``t`` keeps the ``round(k * n)`` neurons with the largest contrast ``c_t``:

    - ``"difference"`` (default): ``c_t[j] = Rn_t[j] - mean_{u != t} Rn_u[j]``. Keeps the
      magnitude: a neuron must matter to ``t`` and matter less to the others. Needs T >= 2.
    - ``"zscore"``: ``c_t[j] = (Rn_t[j] - mean_u Rn_u[j]) / std_u Rn_u[j]`` (mean and
      population std over all T tasks, std floored at 1e-12). Scale-free per neuron: how far
      ``t`` stands out at that neuron, however small the neuron's relevance is overall. Needs
      T >= 3 (with two tasks every z is +-1 and the ranking is only ties).
    """
    if contrast not in CONTRASTS:
        raise ValueError(f"contrast must be one of {CONTRASTS}, got {contrast!r}")
    tasks, sizes, scores = _scores(relevances, k, min_tasks=3 if contrast == "zscore" else 2)
    chosen: dict[str, dict[str, torch.Tensor]] = {task: {} for task in tasks}
    for site, values in scores.items():
        normed = _per_site_normalised(values)  # (T, n)
        if contrast == "difference":
            others = (normed.sum(0, keepdim=True) - normed) / (len(tasks) - 1)
            contrasts = normed - others
        else:
            spread = normed.std(0, correction=0, keepdim=True).clamp_min(_EPS)
            contrasts = (normed - normed.mean(0, keepdim=True)) / spread
        for i, task in enumerate(tasks):
            chosen[task][site] = _take(contrasts[i], round(k * sizes[site]))
    return _sets(chosen, sizes, relevances, k, "contrastive", {"contrast": contrast})


def select_entropy(
    relevances: dict[str, Relevance], k: float = 0.10, *, floor: float = 0.5
) -> dict[str, NeuronSet]:
    """Neurons whose relevance is concentrated on one task (in the spirit of LAPE, Tang et al.
    2024, "Language-specific neurons", which uses activation probabilities instead).

    Per neuron, the tasks' normalised relevance is turned into a distribution over tasks,
    ``p_t[j] = Rn_t[j] / sum_u Rn_u[j]`` (uniform where every task scores 0), with entropy
    ``H[j] = -sum_t p_t[j] ln p_t[j]`` in [0, ln T]; low entropy = specific. The candidates of
    task ``t`` at a site are the neurons where ``t`` has the strictly largest share and whose
    relevance ``R_t[j]`` is at least the ``floor`` quantile of ``t``'s scores at that site (LAPE's
    activation filter: a neuron nobody needs is not specific; ``floor=0`` disables it). Task
    ``t`` keeps its ``round(k * n)`` candidates of lowest entropy; where there are fewer
    candidates, the rest are the non-candidates with the largest share ``p_t[j]``, and
    ``meta["filled"]`` counts them (over all sites).
    """
    if not 0 <= floor < 1:
        raise ValueError(f"floor is a quantile in [0, 1), got {floor!r}")
    tasks, sizes, scores = _scores(relevances, k, min_tasks=2)
    chosen: dict[str, dict[str, torch.Tensor]] = {task: {} for task in tasks}
    filled = dict.fromkeys(tasks, 0)
    for site, values in scores.items():
        normed = _per_site_normalised(values)
        total = normed.sum(0, keepdim=True)
        share = torch.where(
            total > 0, normed / total.clamp_min(_EPS), torch.full_like(normed, 1 / len(tasks))
        )
        entropy = -torch.special.xlogy(share, share).sum(0)
        top2 = share.topk(2, dim=0).values
        largest = (share == top2[0]) & (top2[0] > top2[1])  # (T, n): strictly largest share
        m = round(k * sizes[site])
        for i, task in enumerate(tasks):
            needed = values[i] >= torch.quantile(values[i], floor)
            candidate = largest[i] & needed
            # Candidates first (by entropy, lowest first), then the others by share.
            chosen[task][site] = _take(
                torch.where(candidate, -entropy, share[i]), m, tier=(~candidate).long()
            )
            filled[task] += max(m - int(candidate.sum()), 0)
    sets = _sets(chosen, sizes, relevances, k, "entropy", {"floor": floor})
    for task, neurons in sets.items():
        neurons.meta["filled"] = filled[task]
    return sets


def select_exclusive(relevances: dict[str, Relevance], k: float = 0.10) -> dict[str, NeuronSet]:
    """A task's most relevant neurons among those in no other task's top-k set, topped up to
    the top-k count.

    Per site, task ``t`` ranks its neurons by ``R_t`` (highest first), those in the union of the
    other tasks' ``top_k(k)`` sets last, and keeps the first ``round(k * n)``. Its first members
    are exactly ``experiments.exclusive_sets`` of the top-k sets (own top-k minus the others',
    a smaller set of varying size); the rest are the next most relevant neurons outside every
    other task's top set, and, only when those run out, neurons of the other tasks' sets;
    ``meta["filled"]`` counts the latter (over all sites).
    """
    tasks, sizes, scores = _scores(relevances, k, min_tasks=2)
    tops = select_top_k(relevances, k)
    chosen: dict[str, dict[str, torch.Tensor]] = {task: {} for task in tasks}
    filled = dict.fromkeys(tasks, 0)
    for i, task in enumerate(tasks):
        others = reduce(NeuronSet.union, [tops[u] for u in tasks if u != task])
        for site, values in scores.items():
            blocked = torch.zeros(sizes[site], dtype=torch.long)
            blocked[others.indices[site]] = 1
            m = round(k * sizes[site])
            chosen[task][site] = _take(values[i], m, tier=blocked)
            filled[task] += max(m - int((blocked == 0).sum()), 0)
    sets = _sets(chosen, sizes, relevances, k, "exclusive", {})
    for task, neurons in sets.items():
        neurons.meta["filled"] = filled[task]
    return sets


def shared_core(relevances: dict[str, Relevance], k: float = 0.10) -> NeuronSet:
    """The neurons in every task's top-k set (``top_k(k, per="site")``): the generally important
    core that plain top-k sets share.

    Its size is whatever the data make it: ``len(core)`` in all, ``core.counts()`` per site. To
    compare it at the same size, use ``NeuronSet.random_like(core, seed)`` (random neurons, the
    same count per site) and ``matched_top(relevances, core)`` (each task's most relevant
    neurons, the same count per site).
    """
    _scores(relevances, k, min_tasks=2)
    tops = select_top_k(relevances, k)
    core = reduce(NeuronSet.intersection, tops.values())
    first = next(iter(relevances.values()))
    core.meta = {
        "model": first.provenance.get("model"),
        "name": "shared core",
        "k": k,
        "per": "site",
        "selection": "shared_core",
        "tasks": list(relevances),
    }
    return core


def matched_top(relevances: dict[str, Relevance], like: NeuronSet) -> dict[str, NeuronSet]:
    """{task: its most relevant neurons, as many per site as ``like`` has}: the top-k comparison
    for a set of any size (the shared core, an exclusive set, a user's set)."""
    tasks, sizes, scores = _scores(relevances, 1.0, min_tasks=1)
    if like.sizes != sizes:
        raise NeuronSetMismatchError(
            "the set does not fit the relevance's layout: "
            + layout_difference(like.sizes, sizes, "set", "relevance")
        )
    chosen = {
        task: {site: _take(values[i], len(like.indices[site])) for site, values in scores.items()}
        for i, task in enumerate(tasks)
    }
    return _sets(chosen, sizes, relevances, None, "matched_top", {"matched_to": like.name})


def _scores(relevances: dict[str, Relevance], k: float, min_tasks: int):
    """Check the input; return (task names, layout {site: n}, {site: float32 (T, n) scores})."""
    check_fraction(k)
    if not isinstance(relevances, dict) or not all(
        isinstance(r, Relevance) for r in relevances.values()
    ):
        raise TypeError("relevances must be a dict {task name: Relevance}")
    if len(relevances) < min_tasks:
        raise ValueError(
            f"this selection compares tasks: it needs at least {min_tasks} "
            f"relevances, got {len(relevances)}"
        )
    tasks = list(relevances)
    sizes = relevances[tasks[0]].sizes
    for task in tasks[1:]:
        if relevances[task].sizes != sizes:
            raise NeuronSetMismatchError(
                f"the relevances of {tasks[0]!r} and {task!r} come from different model layouts: "
                + layout_difference(sizes, relevances[task].sizes, tasks[0], task)
            )
    per_task = [rel.scores for rel in relevances.values()]
    return tasks, sizes, {site: torch.stack([s[site] for s in per_task]) for site in sizes}


def _per_site_normalised(values: torch.Tensor) -> torch.Tensor:
    """(T, n) scores divided by each task's mean score at the site: ``Rn_t``."""
    return values / values.mean(1, keepdim=True).clamp_min(_EPS)


def _take(key: torch.Tensor, m: int, tier: torch.Tensor | None = None) -> torch.Tensor:
    """The ``m`` indices first in the order (tier ascending, key descending, index ascending)."""
    order = torch.sort(key, descending=True, stable=True).indices
    if tier is not None:
        order = order[torch.sort(tier[order], stable=True).indices]
    return order[:m]


def _sets(chosen: dict, sizes: dict, relevances: dict, k, selection: str, options: dict):
    """{task: NeuronSet} with the provenance meta of ``Relevance.top_k`` plus the method."""
    out = {}
    for task, indices in chosen.items():
        provenance = relevances[task].provenance
        meta = {
            "model": provenance.get("model"),
            "task": task,
            "k": k,
            "per": "site",
            "selection": selection,
            **options,
            "aggregation": relevances[task].aggregation,
            "tasks": list(relevances),
            "relevance": {
                key: provenance.get(key) for key in ("weights", "data_hash", "n_examples", "split")
            },
        }
        out[task] = NeuronSet(indices, sizes, meta)
    return out
