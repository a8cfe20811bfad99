"""Neuron-level fine-tuning (the paper's Table 2): training only a task's neurons vs as many
random neurons vs every parameter, from the same starting model, with the same budget."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pandas as pd
from tqdm.auto import tqdm

from ..tasks import Task, encode
from .common import ConfigMixin, eval_split, fresh, sample
from .detection import DetectionConfig, detected_sets
from ..scoring.evaluation import evaluate
from ..scoring.loss import answer_nll
from ..neurons.neuron_set import NeuronSet
from ..training.config import TrainConfig
from ..training.finetuning import finetune

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

    from .common import ModelLoader

FT_METHODS = ("none", "neurons", "random", "full")


@dataclass(frozen=True)
class FinetuningConfig(ConfigMixin):
    """Settings of ``neuron_finetuning``.

    Attributes:
        methods: which of ``FT_METHODS`` to run: "none" (no training), "neurons" (the task's
            neurons only), "random" (as many random neurons per site), "full" (every parameter).
        examples: training examples per task, a seeded sample.
        steps: optimiser steps per run (AdamW, linear schedule, 10% warmup).
        batch_size: training examples per step.
        lrs: the learning-rate grid every trained method searches (``method_lrs`` overrides it
            per method).
        n_dev: dev examples per task on which the grid is judged (answer NLL), a seeded sample.
        n_eval: test examples per task, a seeded sample (None = the whole test split).
        max_length: token budget per example (prompt + answer), in tokens.
        seed: seeds the samples, the random neurons and the training order.
        eval_batch_size: batch size of the dev and test evaluations, in examples.
        progress: print one line per (task, method).
    """

    methods: tuple[str, ...] = FT_METHODS
    examples: int = 200
    steps: int = 20
    batch_size: int = 8
    lrs: tuple[float, ...] = (1e-4, 1e-3)
    n_dev: int = 32
    n_eval: int | None = 100
    max_length: int = 256
    seed: int = 0
    eval_batch_size: int = 16
    progress: bool = True

    def __post_init__(self):
        unknown = set(self.methods) - set(FT_METHODS)
        if unknown:
            raise ValueError(f"unknown methods {sorted(unknown)}; choose from {FT_METHODS}")


def neuron_finetuning(
    model_loader: ModelLoader,
    tok: PreTrainedTokenizerBase,
    tasks: dict[str, Task],
    config: FinetuningConfig = FinetuningConfig(),
    *,
    sets: dict | None = None,
    method_lrs: dict[str, tuple[float, ...]] | None = None,
    detection: DetectionConfig | None = None,
) -> pd.DataFrame:
    """Per task: no training vs its own neurons vs as many random neurons vs full fine-tuning
    (the paper's Table 2), from the same starting model.

    Every trained method gets the same budget: ``config.steps`` steps of ``config.batch_size``
    examples drawn from ``config.examples`` training examples, for each learning rate of its grid
    (``method_lrs[method]``, default ``config.lrs``); the lr with the lowest answer NLL on
    ``config.n_dev`` dev examples is kept and that run is evaluated on ``config.n_eval`` test
    examples. Each run starts from a fresh model: ``model_loader()`` (a function returning a
    model or (model, tok)) or a deep copy of ``model_loader`` when it is a model. The task's
    neurons are ``sets[task]`` when given, else detected on the starting model with ``detection``
    (default ``DetectionConfig()``); the random neurons use seed ``config.seed``.

    Returns:
        DataFrame, one row per (task, method): ``task``, ``category``, ``metric``, ``method``,
        ``lr`` (chosen; NaN for none), ``dev_nll`` (nats per answer token, of the chosen run),
        ``lr_search`` (JSON dict lr -> dev NLL), ``n_neurons``, ``trainable_parameters``,
        ``score`` (metric, in [0, 1]), ``nll`` (nats per answer token), ``n`` (test examples),
        ``train_seconds``, ``first_loss`` / ``final_loss`` (chosen run's first and last fifth).
    """

    if sets is None:
        sets = detected_sets(model_loader, tok, tasks, detection)
    training = TrainConfig(
        steps=config.steps,
        batch_size=config.batch_size,
        seed=config.seed,
        max_length=config.max_length,
        progress=False,
    )
    rows = []
    for name, task in tasks.items():
        train = sample(task.train, config.examples, config.seed)
        dev = sample(task.dev, config.n_dev, config.seed)
        dev_encoded = encode(tok, dev, max_length=config.max_length)
        test = eval_split(task, config.n_eval, config.seed)
        own = sets[name]
        random_set = NeuronSet.random_like(own, seed=config.seed)
        for method in config.methods:
            row = {
                "task": name,
                "category": task.category,
                "metric": task.metric,
                "method": method,
                "lr": float("nan"),
                "lr_search": "",
                "n_neurons": 0,
                "trainable_parameters": 0,
                "train_seconds": 0.0,
                "first_loss": float("nan"),
                "final_loss": float("nan"),
            }
            if method == "none":
                best = fresh(model_loader)
                best_dev = answer_nll(best, tok, dev_encoded, batch_size=config.eval_batch_size)
            else:
                neurons = {"neurons": own, "random": random_set}.get(method)
                search, best, best_dev = {}, None, float("inf")
                for lr in (method_lrs or {}).get(method, config.lrs):
                    model = fresh(model_loader)
                    started = time.perf_counter()
                    history = finetune(
                        model,
                        tok,
                        train,
                        training.replace(lr=lr),
                        neurons=neurons,
                        method="neurons" if neurons is not None else "full",
                    )
                    seconds = time.perf_counter() - started
                    dev_nll = answer_nll(model, tok, dev_encoded, batch_size=config.eval_batch_size)
                    search[lr] = round(dev_nll, 4)
                    if dev_nll < best_dev:
                        losses = history["loss"].dropna()
                        tail = max(1, len(losses) // 5)
                        best, best_dev = model, dev_nll
                        row.update(
                            lr=lr,
                            train_seconds=round(seconds, 1),
                            trainable_parameters=history.attrs["trainable_parameters"],
                            first_loss=float(losses.iloc[:tail].mean()),
                            final_loss=float(losses.iloc[-tail:].mean()),
                        )
                    else:
                        del model
                row["lr_search"] = json.dumps({f"{k:g}": v for k, v in search.items()})
                row["n_neurons"] = len(neurons) if neurons is not None else 0
            result = evaluate(best, tok, test, batch_size=config.eval_batch_size, progress=False)
            row.update(dev_nll=best_dev, score=result["score"], nll=result["nll"], n=result["n"])
            rows.append(row)
            del best
            if config.progress:
                tqdm.write(
                    f"{name:<20} {method:<8} lr {row['lr']:<8g} dev_nll {best_dev:.3f} "
                    f"score {row['score']:.3f} nll {row['nll']:.3f}"
                )
    return pd.DataFrame(rows)


def table2(df: pd.DataFrame) -> pd.DataFrame:
    """The Table 2 analog: per category, the mean metric (x100) and the mean answer NLL (nats per
    token, columns ``<method>_nll``) of each method."""
    scores = (
        df.pivot_table(
            index="category", columns="method", values="score", aggfunc="mean", sort=False
        )
        * 100
    )
    nll = df.pivot_table(
        index="category", columns="method", values="nll", aggfunc="mean", sort=False
    )
    order = [m for m in FT_METHODS if m in scores.columns]
    return scores[order].join(nll[order].add_suffix("_nll")).reset_index()
