"""Sweeps that make Tables 1 and 2 informative: deactivation over the fraction k of neurons
switched off (``k_sweep``), and neuron-level fine-tuning over the number of training steps
(``budget_sweep``)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from ..tasks import Task, encode
from ..neurons.neuron_set import check_fraction
from .common import ConfigMixin, eval_split, fresh, sample
from .deactivation import PER_TOKEN, DeactivationConfig, deactivation_rows, examples_frame
from .detection import DetectionConfig, detect, detected_sets
from ..scoring.evaluation import evaluate
from ..scoring.loss import answer_nll
from ..neurons.neuron_set import NeuronSet
from ..training.config import TrainConfig
from ..training.finetuning import finetune
from ..neurons.analysis import bootstrap_interval

if TYPE_CHECKING:
    from collections.abc import Sequence

    from torch import nn
    from transformers import PreTrainedTokenizerBase

    from .common import ModelLoader


def k_sweep(
    model: nn.Module,
    tok: PreTrainedTokenizerBase,
    tasks: dict[str, Task],
    ks: Sequence[float] = (0.005, 0.01, 0.02, 0.05, 0.1, 0.2),
    config: DeactivationConfig = DeactivationConfig(),
    *,
    detection: DetectionConfig | None = None,
    kinds: str | Sequence[str] | None = None,
    label: str = "multitask",
    relevances: dict | None = None,
) -> pd.DataFrame:
    """Deactivation (``deactivation``) at every fraction k of ``ks``, per example.

    Relevance is computed once per task (``detect`` with ``detection``, its ``kinds`` replaced
    by ``kinds``; or ``relevances`` when given) and each k takes its top k per
    ``detection.per``, so every k ranks the same scores. At each k every task is scored with its
    own set, as many random neurons per site (every seed of ``config.random_seeds``) and, with
    ``config.others``, every other task's set; the intact model (``none``) is scored once per
    task and its rows repeated at every k.

    Args:
        ks: fractions in (0, 1]; a k that rounds a site's share to 0 neurons leaves that site
            intact.
        kinds: the site kinds scored, as ``DetectionConfig.kinds``: None = the linear sites
            (gate, up, down / fc_in, fc_out), ("act",) = the intermediate activation units.

    Returns:
        ``deactivation(..., per_example=True)``'s frame with a ``k`` column (one row per k,
        task, condition[, seed] and test example; score in [0, 1], nll in nats per answer
        token). ``table1_intervals`` gives its effects with intervals per k,
        ``plots.plot_k_sweep`` draws them.
    """
    ks = [check_fraction(k) for k in ks]
    detection = (DetectionConfig() if detection is None else detection).replace(kinds=kinds)
    if relevances is None:
        relevances = detect(model, tok, tasks, detection)
    reuse: dict = {}  # the intact model's rows, scored at the first k and reused
    rows = []
    for k in tqdm(ks, desc="k sweep", disable=not config.progress):
        sets = {name: relevances[name].top_k(k, per=detection.per) for name in tasks}
        rows += [
            {**row, "k": k}
            for row in deactivation_rows(model, tok, tasks, sets, config, label, reuse)
        ]
    return examples_frame(rows)


@dataclass(frozen=True)
class BudgetConfig(ConfigMixin):
    """Settings of ``budget_sweep``.

    Attributes:
        methods: which of "neurons" (the task's neurons), "random" (as many random neurons per
            site), "full" (every parameter) to train.
        examples: training examples per task, a sample seeded by each run's seed.
        batch_size: training examples per step.
        lr: the constant learning rate of "neurons" and "random" (the same for both, so that
            they differ only in which neurons train).
        full_lr: the constant learning rate of "full" (every parameter moves, so smaller).
        seeds: one run per (task, method, seed): the seed draws the training sample, its order
            and the random set.
        n_dev: dev examples per task whose answer NLL traces the learning curve.
        n_eval: test examples per task (None = the whole test split).
        dev_every: also measure the dev NLL every this many steps (None: at the budgets only).
        max_length: token budget per example (prompt + answer), in tokens.
        seed: seeds the dev and test samples (fixed across runs).
        eval_batch_size: batch size of the dev and test evaluations, in examples.
        progress: print one line per run.
    """

    methods: tuple[str, ...] = ("neurons", "random", "full")
    examples: int = 200
    batch_size: int = 4
    lr: float = 1e-3
    full_lr: float = 1e-4
    seeds: tuple[int, ...] = (0, 1, 2)
    n_dev: int = 24
    n_eval: int | None = 48
    dev_every: int | None = None
    max_length: int = 256
    seed: int = 0
    eval_batch_size: int = 16
    progress: bool = True

    def __post_init__(self):
        unknown = set(self.methods) - {"neurons", "random", "full"}
        if unknown:
            raise ValueError(
                f"unknown methods {sorted(unknown)}; choose from neurons, random, full"
            )


def budget_sweep(
    model_loader: ModelLoader,
    tok: PreTrainedTokenizerBase,
    tasks: dict[str, Task],
    budgets: Sequence[int] = (2, 4, 8, 16, 32, 64),
    config: BudgetConfig = BudgetConfig(),
    *,
    sets: dict | None = None,
    detection: DetectionConfig | None = None,
) -> pd.DataFrame:
    """Table 2 over training budgets: per task, method and seed, test score and NLL after each
    budget of steps, and the area under the dev-NLL curve up to it.

    One run per (task, method, seed) trains to the largest budget and is scored at every
    budget on the way. That equals a separate run per budget because the schedule is constant
    with no warmup (``finetune(schedule="constant", warmup=0)``): a linear or warmup schedule
    depends on the total number of steps, so its checkpoints would not be runs of the smaller
    budgets; here the first b steps do not depend on the total (same batches, drawn from the
    seed alone; same AdamW state). Every method of a seed trains on the same examples in the
    same order. Each run starts from ``fresh(model_loader)``; the task's neurons are
    ``sets[task]`` or detected once on the starting model with ``detection``.

    Returns:
        long DataFrame, one row per (task, method, seed, step) for step 0, every budget and
        every ``config.dev_every``-th step: ``task``, ``category``, ``metric``, ``method``,
        ``seed``, ``lr``, ``n_neurons``, ``trainable_parameters``, ``step``, ``is_budget``
        (step 0, the untrained model, counts as budget 0), ``dev_nll`` (nats per answer token),
        ``loss`` (that step's training loss, nats), ``train_seconds`` (training wall time up to
        the step, evaluations excluded); at budgets also ``dev_auc`` (trapezoid area under
        dev_nll over steps 0..step, nats x steps), ``dev_auc_mean`` (dev_auc / step: the mean
        dev NLL over the run so far, nats per answer token), ``score`` (metric, in [0, 1]),
        ``score_per_token`` (the same with options ranked per answer token),
        ``nll`` (nats per answer token) and ``n`` (test examples).
    """
    from scipy.integrate import trapezoid

    budgets = sorted({int(b) for b in budgets})
    if not budgets or budgets[0] < 1:
        raise ValueError(f"budgets are positive numbers of steps, got {budgets}")
    last = budgets[-1]
    points = set(budgets) | set(
        range(config.dev_every, last + 1, config.dev_every) if config.dev_every else ()
    )
    if sets is None:
        sets = detected_sets(model_loader, tok, tasks, detection)
    rows = []
    bar = tqdm(
        total=len(tasks) * len(config.seeds) * len(config.methods),
        desc="budget sweep",
        disable=not config.progress,
    )
    for name, task in tasks.items():
        dev = encode(tok, sample(task.dev, config.n_dev, config.seed), max_length=config.max_length)
        test = eval_split(task, config.n_eval, config.seed)

        def score(model, test=test):  # test bound now: the closure outlives no iteration
            return evaluate(
                model,
                tok,
                test,
                batch_size=config.eval_batch_size,
                max_length=config.max_length,
                progress=False,
            )

        start = fresh(model_loader)  # step 0 is the same model for every method and seed
        dev_start = answer_nll(start, tok, dev, batch_size=config.eval_batch_size)
        test_start = score(start)
        del start
        for seed in config.seeds:
            train = sample(task.train, config.examples, seed)
            neurons = {
                "neurons": sets[name],
                "random": NeuronSet.random_like(sets[name], seed=seed),
                "full": None,
            }
            for method in config.methods:
                lr = config.full_lr if method == "full" else config.lr
                started = time.perf_counter()
                history, curve, tested = _scored_run(
                    fresh(model_loader),
                    tok,
                    train,
                    neurons[method],
                    lr,
                    seed,
                    budgets,
                    points,
                    lambda model, dev=dev: answer_nll(
                        model, tok, dev, batch_size=config.eval_batch_size
                    ),
                    score,
                    config,
                )
                curve[0], tested[0] = dev_start, test_start
                wall = time.perf_counter() - started
                steps = sorted(curve)
                dev_nll = np.array([curve[s] for s in steps])
                clock = history["seconds"].cumsum().to_numpy()
                for i, step in enumerate(steps):
                    row = {
                        "task": name,
                        "category": task.category,
                        "metric": task.metric,
                        "method": method,
                        "seed": seed,
                        "lr": lr,
                        "n_neurons": len(neurons[method]) if neurons[method] is not None else 0,
                        "trainable_parameters": history.attrs["trainable_parameters"],
                        "step": step,
                        "is_budget": step in tested,
                        "dev_nll": dev_nll[i],
                        "loss": history["loss"].iloc[step - 1] if step else np.nan,
                        "train_seconds": clock[step - 1] if step else 0.0,
                    }
                    if step in tested:
                        auc = float(trapezoid(dev_nll[: i + 1], steps[: i + 1]))
                        result = tested[step]
                        row.update(
                            dev_auc=auc,
                            dev_auc_mean=auc / step if step else np.nan,
                            score=result["score"],
                            score_per_token=result["score_per_token"],
                            nll=result["nll"],
                            n=result["n"],
                        )
                    rows.append(row)
                bar.update(1)
                if config.progress:
                    final = tested[last]
                    tqdm.write(
                        f"{name:<20} {method:<8} seed {seed} {wall:6.1f} s  dev_nll "
                        f"{curve[last]:.3f}  score {final['score']:.3f}  nll "
                        f"{final['nll']:.3f}"
                    )
    bar.close()
    return pd.DataFrame(rows)


def _scored_run(
    model,
    tok,
    train,
    neurons,
    lr: float,
    seed: int,
    budgets,
    points,
    dev_nll,
    score,
    config: BudgetConfig,
):
    """Train ``model`` (neurons, or every parameter when ``neurons`` is None) for the largest
    budget at a constant ``lr``; ``dev_nll(model)`` at each step of ``points`` and ``score(model)``
    at each budget. Returns (history, {step: dev NLL}, {step: evaluate's result})."""

    curve, tested = {}, {}

    def checkpoint(step):
        if step in points:
            curve[step] = dev_nll(model)
        if step in budgets:
            tested[step] = score(model)

    training = TrainConfig(
        steps=max(budgets),
        lr=lr,
        batch_size=config.batch_size,
        warmup=0.0,
        schedule="constant",
        seed=seed,
        max_length=config.max_length,
        progress=False,
    )
    history = finetune(
        model,
        tok,
        train,
        training,
        neurons=neurons,
        method="full" if neurons is None else "neurons",
        callback=checkpoint,
    )
    return history, curve, tested


def budget_table(df: pd.DataFrame) -> pd.DataFrame:
    """``budget_sweep``'s budgets per (category, method, step): the mean over tasks, then the
    mean and the std over seeds, of ``score`` and ``score_per_token`` (x100, where recorded; ``score_norm`` in older
    records), ``nll``
    and ``dev_auc_mean`` (nats per answer token)."""
    at = df[df["is_budget"]]
    scores = [c for c in ("score", *PER_TOKEN) if c in at]
    per_seed = at.groupby(["category", "method", "step", "seed"], sort=False)[
        [*scores, "nll", "dev_auc_mean"]
    ].mean()
    per_seed[scores] *= 100
    out = per_seed.groupby(["category", "method", "step"], sort=False).agg(["mean", "std"])
    out.columns = [f"{value}_{stat}" if stat == "std" else value for value, stat in out.columns]
    return out.reset_index().sort_values(["category", "method", "step"], kind="stable")


def budget_contrasts(
    df: pd.DataFrame,
    *,
    against: Sequence[str] = ("random", "full"),
    n_resamples: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> pd.DataFrame:
    """Task neurons against each method of ``against`` at every budget of ``budget_sweep``'s
    frame, paired by run: per (task, seed), the neurons run's value minus the other method's
    (same examples, same order), then the mean over the runs of a category (and of all tasks)
    with a percentile bootstrap interval over those runs (``analysis.bootstrap_interval``; the
    test and dev samples are fixed, so the interval is over tasks and training seeds).

    Returns:
        one row per (category, against, step, value): ``category`` (or "all"), ``against``,
        ``step``, ``value`` (score and score_per_token x100, nll and dev_auc_mean in nats per answer
        token), ``runs`` (paired runs), ``diff`` (mean of neurons - other), ``low``, ``high``.
        Negative NLL / dev AUC differences and positive score differences favour task neurons.
    """

    values = [c for c in ("score", *PER_TOKEN, "nll", "dev_auc_mean") if c in df]
    at = df[df["is_budget"] & (df["step"] > 0)]
    wide = at.pivot_table(
        index=["category", "task", "seed", "step"], columns="method", values=values
    ).reset_index()
    groups = [(c, part) for c, part in wide.groupby("category", sort=False)]
    if len(groups) > 1:
        groups.append(("all", wide))
    rows = []
    for category, part in groups:
        for other in against:
            for step, runs in part.groupby("step"):
                for value in values:
                    scale = 100 if value.startswith("score") else 1
                    diff = ((runs[(value, "neurons")] - runs[(value, other)]) * scale).to_numpy()
                    diff = diff[np.isfinite(diff)]
                    if not len(diff):
                        continue
                    low, high = bootstrap_interval(
                        lambda i, diff=diff: diff[i].mean(-1),
                        [len(diff)],
                        n_resamples=n_resamples,
                        confidence=confidence,
                        seed=seed,
                    )
                    rows.append(
                        {
                            "category": category,
                            "against": other,
                            "step": int(step),
                            "value": value,
                            "runs": len(diff),
                            "diff": diff.mean(),
                            "low": float(low),
                            "high": float(high),
                        }
                    )
    return pd.DataFrame(rows)
