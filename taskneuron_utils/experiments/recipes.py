"""Model or recipe? The localisation recipes side by side, and Han et al.'s specificity tests.

A recipe is a way to rank FFN units for a task; its top-k sets are compared at every k:

    paper           |grad x act| of the answer NLL, zero baseline, top-k by mean |r| per site
                    (Leng & Xiong 2024)
    contrastive     attribution patching with the minimal-pair alternative's activations as the
                    baseline, gradient of the logit difference, signed top-k (Han et al. 2026)
    relp_nll        RelP (Jafari et al. 2025) on the answer NLL, zero baseline, mean |r|
    relp_ld         RelP on the logit difference with paired baselines, signed top-k
    activation      control: the units with the largest mean |activation|
    low_activation  control (Jamaa et al. 2025): the same count with the lowest mean |activation|
    random          control: as many random units per site, drawn per task (``random_seed``)

Activations: ``tn.activation_stats`` over every real token position of the task's attribution
examples. Every recipe keeps round(k * n) units of every site (per-site top-k, the paper's
default), so sets of one k have equal sizes across recipes.

Han et al.'s tests, per recipe and k (``overlap_ratios``, ``selectivity`` /
``selectivity_scores``):

    overlap ratio   mean Jaccard of two tasks' sets within a family (the suite's ``family``:
                    its "domain") / mean Jaccard across families; 1 = no domain structure
    selectivity     own-task drop / mean other-task drop: each task's set zero-ablated on every
                    task, drop = LD(full) - LD(ablated) (logits) or NLL(ablated) - NLL(full)
                    (nats per token); own = mean over sets of the drop on their own task,
                    other = mean over sets of the mean drop on the other tasks; ratio = own /
                    other, with a bootstrap interval over test examples (each task's examples
                    resampled independently). ``ex.specificity_scores`` of the same matrix
                    gives the record's diagonal dominance and selectivity indices beside it.

``recipe_verdict`` reads the answer to "is the shared core a property of the model or of the
recipe?" off these frames, with its thresholds stated.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from ..attribution.run import attribute
from ..core.identity import content_hash
from ..hooks.baselines import activation_stats
from ..hooks.interventions import deactivate
from ..neurons.analysis import bootstrap_interval, expected_random_jaccard
from ..neurons.neuron_set import NeuronSet
from ..neurons.relevance import Relevance
from .common import ConfigMixin, eval_split, sample
from .faithfulness import K_GRID, pair_metrics
from .specificity import specificity_scores
from .verdicts import Verdict

if TYPE_CHECKING:
    from torch import nn
    from transformers import PreTrainedTokenizerBase

    from ..tasks import Task


@dataclass(frozen=True)
class Recipe:
    """How a recipe ranks units: ``method`` of ``tn.attribute`` (None: a control read off the
    activation statistics, or random), its ``metric``, ``baseline`` ("zero" or "pairs": the
    minimal-pair alternatives) and ``aggregation`` ("mean_abs" or "signed")."""

    name: str
    method: str | None
    metric: str = "nll"
    baseline: str = "zero"
    aggregation: str = "mean_abs"
    description: str = ""


RECIPES = {
    r.name: r
    for r in (
        Recipe("paper", "grad_x_act", description="|GxA| on NLL, mean |r| (Leng & Xiong)"),
        Recipe(
            "contrastive",
            "attribution_patching",
            "logit_diff",
            "pairs",
            "signed",
            "paired patching on LD, signed (Han et al.)",
        ),
        Recipe("relp_nll", "relp", description="RelP on NLL, mean |r|"),
        Recipe("relp_ld", "relp", "logit_diff", "pairs", "signed", "RelP on LD, paired, signed"),
        Recipe("activation", None, description="largest mean |activation|"),
        Recipe("low_activation", None, description="lowest mean |activation| (Jamaa et al.)"),
        Recipe("random", None, description="random units, per site"),
    )
}


@dataclass(frozen=True)
class RecipeConfig(ConfigMixin):
    """Settings of ``recipe_relevance`` and ``recipe_sets``.

    Attributes:
        recipes: names of ``RECIPES``.
        ks: the fractions of units (per site) the sets are taken at.
        n_attribution: training examples per task the recipes rank units on (a seeded sample;
            the activation statistics use the same examples).
        seed: seeds that sample and the random sets.
        batch_size: examples per pass. progress: a bar over (task, recipe).
    """

    recipes: tuple[str, ...] = tuple(RECIPES)
    ks: tuple[float, ...] = K_GRID
    n_attribution: int = 16
    seed: int = 0
    batch_size: int = 8
    progress: bool = True


def _check_recipes(names) -> None:
    unknown = [name for name in names if name not in RECIPES]
    if unknown:
        raise ValueError(f"unknown recipes {unknown}; the recipes are {list(RECIPES)}")


def recipe_relevance(
    model: nn.Module,
    tok: PreTrainedTokenizerBase,
    tasks: dict[str, Task],
    config: RecipeConfig = RecipeConfig(),
) -> dict[str, Any]:
    """Every gradient recipe's Relevance and every task's activation statistics, on every FFN
    site (linear and act: ``kinds="all"``, one pass for both neuron definitions).

    Returns:
        {"relevance": {recipe: {task: Relevance}} (gradient recipes), "stats": {task:
        ActivationStats}}: what ``recipe_sets`` takes.
    """
    _check_recipes(config.recipes)
    gradient = [RECIPES[r] for r in config.recipes if RECIPES[r].method]
    relevance: dict[str, dict[str, Relevance]] = {r.name: {} for r in gradient}
    stats = {}
    bar = tqdm(total=len(tasks) * (len(gradient) + 1), desc="recipes", disable=not config.progress)
    for name, task in tasks.items():
        data = sample(task.train, config.n_attribution, config.seed)
        stats[name] = activation_stats(
            model, tok, data, kinds="all", batch_size=config.batch_size, progress=False
        )
        bar.update()
        for recipe in gradient:
            options: dict[str, Any] = {"metric": recipe.metric} if recipe.metric != "nll" else {}
            if recipe.baseline == "pairs":
                options["baseline"] = data.pairs()
            relevance[recipe.name][name] = attribute(
                model,
                tok,
                data,
                method=str(recipe.method),
                kinds="all",
                batch_size=config.batch_size,
                progress=False,
                **options,
            )
            bar.update()
    bar.close()
    return {"relevance": relevance, "stats": stats}


def random_seed(seed: int, task: str) -> int:
    """The random control's seed for ``task``: ``seed`` plus 31 bits of a hash of the task's
    name, so that tasks get different draws (the same draw would overlap perfectly)."""
    return seed + int(content_hash([task])[:8], 16) % 2**31


def _top_per_site(scores: dict[str, torch.Tensor], k: float, sizes: dict) -> dict:
    """{site: indices of the round(k * n) largest scores}, ties broken by index (stable)."""
    return {
        site: torch.sort(scores[site], descending=True, stable=True).indices[: round(k * n)]
        for site, n in sizes.items()
    }


def recipe_sets(
    artefacts: dict, kinds: str | tuple[str, ...] | None, config: RecipeConfig = RecipeConfig()
) -> dict:
    """{recipe: {task: {k: NeuronSet}}} on the sites of ``kinds`` (None: the linear sites,
    ``"act"``: the intermediate activation), from ``recipe_relevance``'s artefacts."""
    _check_recipes(config.recipes)
    stats = artefacts["stats"]
    some = next(iter(stats.values()))
    wanted = {"act"} if kinds == "act" else None if kinds is None else set(kinds)
    sizes = {
        site: len(values)
        for site, values in some.mean_abs.items()
        if (site.rsplit(".", 1)[-1] == "act") == (wanted == {"act"})
        and (wanted is None or wanted == {"act"} or site.rsplit(".", 1)[-1] in wanted)
    }
    sets: dict = {name: {} for name in config.recipes}
    for task, task_stats in stats.items():
        activity = {site: task_stats.mean_abs[site] for site in sizes}
        for name in config.recipes:
            recipe = RECIPES[name]
            by_k = {}
            for k in config.ks:
                if recipe.method is not None:
                    rel = artefacts["relevance"][name][task]
                    sums = rel.sum_signed if recipe.aggregation == "signed" else rel.sum_abs
                    chosen = _top_per_site({s: sums[s] for s in sizes}, k, sizes)
                elif name == "activation":
                    chosen = _top_per_site(activity, k, sizes)
                elif name == "low_activation":
                    chosen = _top_per_site({s: -v for s, v in activity.items()}, k, sizes)
                else:
                    counts = NeuronSet(_top_per_site(activity, k, sizes), sizes)
                    chosen = NeuronSet.random_like(
                        counts, seed=random_seed(config.seed, task)
                    ).indices
                by_k[float(k)] = NeuronSet(chosen, sizes, {"task": task, "recipe": name, "k": k})
            sets[name][task] = by_k
    return sets


def overlap_ratios(sets: dict, tasks: dict[str, Task]) -> pd.DataFrame:
    """Han et al.'s within- vs cross-domain overlap of every recipe and k (module docstring).

    Returns:
        One row per (recipe, k): ``within`` and ``across`` (mean Jaccard over task pairs of the
        same / of different families), ``ratio`` (within / across), ``n_within`` /
        ``n_across`` (pairs), ``random_jaccard`` (two random sets of that k).
    """
    rows = []
    for recipe, by_task in sets.items():
        for k in next(iter(by_task.values())):
            within: list[float] = []
            across: list[float] = []
            for a, b in combinations(tasks, 2):
                value = by_task[a][k].jaccard(by_task[b][k])
                (within if tasks[a].family == tasks[b].family else across).append(value)
            w = float(np.mean(within)) if within else np.nan
            x = float(np.mean(across)) if across else np.nan
            rows.append(
                {
                    "recipe": recipe,
                    "k": k,
                    "within": w,
                    "across": x,
                    "ratio": w / x if x > 0 else np.nan,
                    "n_within": len(within),
                    "n_across": len(across),
                    "random_jaccard": expected_random_jaccard(k),
                }
            )
    return pd.DataFrame(rows)


def selectivity(
    model: nn.Module,
    tok: PreTrainedTokenizerBase,
    tasks: dict[str, Task],
    sets: dict,
    *,
    ks: tuple[float, ...],
    n_eval: int = 16,
    seed: int = 0,
    batch_size: int = 8,
    progress: bool = True,
) -> pd.DataFrame:
    """Each task's set (of each recipe, at each k of ``ks``) zero-ablated on every task.

    Returns:
        One row per (recipe, k, set, task, example), plus ``recipe="reference"``, ``set="none"``
        rows (nothing ablated): ``ld`` (logits), ``nll`` (nats per answer token).
    """
    splits = {name: eval_split(task, n_eval, seed) for name, task in tasks.items()}
    passes = len(tasks) * (1 + len(sets) * len(ks) * len(tasks))
    bar = tqdm(total=passes, desc="selectivity", disable=not progress)
    frames = []

    def run(recipe, k, owner, name, neurons):
        split = splits[name]
        with deactivate(model, neurons):
            values = pair_metrics(model, tok, split, split.pairs(), batch_size=batch_size)
        bar.update()
        frames.append(
            pd.DataFrame(
                {
                    "recipe": recipe,
                    "k": k,
                    "set": owner,
                    "task": name,
                    "example": np.arange(len(split)),
                    "ld": values["ld"],
                    "nll": values["nll_sum"] / values["n_tokens"],
                }
            )
        )

    for name in tasks:
        empty = next(iter(next(iter(sets.values()))[name].values()))
        run("reference", np.nan, "none", name, NeuronSet({}, empty.sizes))
    for recipe, by_task in sets.items():
        for k in ks:
            for owner in tasks:
                for name in tasks:
                    run(recipe, float(k), owner, name, by_task[owner][float(k)])
    bar.close()
    return pd.concat(frames, ignore_index=True)


def selectivity_scores(
    frame: pd.DataFrame, *, n_boot: int = 1000, confidence: float = 0.95, seed: int = 0
) -> pd.DataFrame:
    """Own-task over other-task drop per (recipe, k, measure), with intervals (module docstring),
    and ``ex.specificity_scores``' mean dominance and selectivity of the same effect matrix.

    Returns:
        One row per (recipe, k, measure): ``own``, ``other`` (mean drops: logits for ld, nats
        per token for nll), ``ratio``, ``ratio_low``, ``ratio_high``, ``own_low``/``_high``,
        ``dominance``, ``selectivity_index`` (specificity_scores' mean row).
    """
    reference = frame[frame["recipe"] == "reference"]
    tasks = list(dict.fromkeys(reference["task"]))
    rows = []
    for measure, sign in (("ld", 1.0), ("nll", -1.0)):
        base = {
            t: reference[reference.task == t].sort_values("example")[measure].to_numpy()
            for t in tasks
        }
        for (recipe, k), part in frame[frame["recipe"] != "reference"].groupby(
            ["recipe", "k"], sort=False
        ):
            cube = np.stack(
                [  # (set, task, example) drops; equal examples per task assumed
                    np.stack(
                        [
                            sign
                            * (
                                base[t]
                                - part[(part.set == s) & (part.task == t)]
                                .sort_values("example")[measure]
                                .to_numpy()
                            )
                            for t in tasks
                        ]
                    )
                    for s in tasks
                ]
            )
            n = cube.shape[-1]
            off = ~np.eye(len(tasks), dtype=bool)

            def statistic(*indices, cube=cube, off=off):
                means = np.stack(  # (set, task, ...) mean drop over the drawn examples
                    [cube[:, t, :][:, i].mean(-1) for t, i in enumerate(indices)], axis=1
                )
                own = np.stack([means[t, t] for t in range(len(tasks))]).mean(0)
                other = means[off].mean(0)
                return np.stack([own, other, own / other])

            point = statistic(*[np.arange(n)] * len(tasks))
            low, high = bootstrap_interval(
                statistic,
                [n] * len(tasks),
                n_resamples=n_boot,
                confidence=confidence,
                seed=seed,
            )
            matrix = pd.DataFrame(cube.mean(-1), index=tasks, columns=tasks)
            index = specificity_scores(matrix, n_boot=200, seed=seed)
            mean = index[index.task == "mean"].iloc[0]
            rows.append(
                {
                    "recipe": recipe,
                    "k": k,
                    "measure": measure,
                    "own": point[0],
                    "own_low": low[0],
                    "own_high": high[0],
                    "other": point[1],
                    "ratio": point[2],
                    "ratio_low": low[2],
                    "ratio_high": high[2],
                    "dominance": mean["dominance"],
                    "selectivity_index": mean["selectivity"],
                }
            )
    return pd.DataFrame(rows)


def recipe_verdict(
    curves: pd.DataFrame,
    overlap: pd.DataFrame,
    scores: pd.DataFrame,
    *,
    measure: str = "ld",
    f_min: float = 0.5,
    ratio_min: float = 2.0,
) -> Verdict:
    """Does any recipe give sets that are both faithful and task-specific?

    Rule, per (recipe, k) where selectivity was measured, on ``measure`` and with the 95%
    intervals of ``curves`` (``f_low``, ``f_high``; f alone where they are missing) and of
    ``scores`` (``ratio_low``, ``ratio_high``): *faithful* when the all-tasks faithfulness f of
    the set kept alone has its interval at or above ``f_min``; *task-specific* when the own/other
    drop ratio is at least ``ratio_min`` with its interval above 1; *ruled out* when f's interval
    lies below ``f_min`` or the ratio's below ``ratio_min``. ``holds`` is True when some
    (recipe, k) is both, False when every one is ruled out, None (undecided) otherwise: the
    intervals are too wide to say. The sentence names the most specific and the most faithful
    (f closest to 1, MIB's ideal) and quotes the overlap ratios."""
    keep = curves[
        (curves.condition == "keep") & (curves.task == "all") & (curves.measure == measure)
    ].set_index(["recipe", "k"])
    part = scores[scores.measure == measure].copy()

    def column(name: str, fallback: str = "f") -> list:
        source = name if name in keep.columns else fallback
        return [keep[source].get((r, k), np.nan) for r, k in zip(part.recipe, part.k)]

    part["f"], part["f_low"], part["f_high"] = column("f"), column("f_low"), column("f_high")
    part["faithful"] = part["f_low"] >= f_min
    part["specific"] = (part["ratio"] >= ratio_min) & (part["ratio_low"] > 1)
    part["ruled_out"] = (part["f_high"] < f_min) | (part["ratio_high"] < ratio_min)
    both = part[part.faithful & part.specific]
    ratios = overlap.set_index(["recipe", "k"])["ratio"]

    def describe(row) -> str:
        return (
            f"{row.recipe} at k={row.k:.2%}: f={row.f:.2f} [{row.f_low:.2f}, {row.f_high:.2f}], "
            f"own/other drop {row.ratio:.2f} [{row.ratio_low:.2f}, {row.ratio_high:.2f}], "
            f"overlap ratio {ratios.get((row.recipe, row.k), np.nan):.1f}"
        )

    if len(both):
        holds: bool | None = True
        best = both.sort_values("ratio", ascending=False).iloc[0]
        sentence = (
            f"{len(both)} (recipe, k) pairs are both faithful and task-specific on {measure}; "
            f"best {describe(best)}"
        )
    else:
        holds = False if bool(part["ruled_out"].all()) else None
        specific = part.sort_values("ratio", ascending=False).iloc[0]
        faithful = part.assign(gap=(part["f"] - 1).abs()).sort_values("gap").iloc[0]
        open_ = part[~part["ruled_out"]]
        why = (
            "every (recipe, k) is ruled out by its intervals"
            if holds is False
            else f"{len(open_)} of {len(part)} (recipe, k) pairs have intervals too wide to "
            f"rule them out ({', '.join(f'{r} {k:.2%}' for r, k in zip(open_.recipe, open_.k))})"
        )
        sentence = (
            f"no recipe gives sets both faithful (f >= {f_min}) and task-specific "
            f"(own/other drop >= {ratio_min}, interval above 1) on {measure}: {why}; most "
            f"specific: {describe(specific)}; f closest to 1: {describe(faithful)}"
        )
    return Verdict(
        "some recipe finds sets that are both faithful and task-specific",
        holds,
        sentence,
        {
            "pairs": both[["recipe", "k"]].values.tolist(),
            "undecided": part.loc[~part["ruled_out"], ["recipe", "k"]].values.tolist(),
            "measure": measure,
            "f_min": f_min,
            "ratio_min": ratio_min,
        },
        "Han et al. 2026: 4.3x within-domain overlap, 10.3x own-domain ablation effect",
    )
