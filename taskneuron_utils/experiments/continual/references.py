"""Around a continual run (``continual.py``): the upper references it is read against
(each task fine-tuned alone, and all tasks at once) and the choice of each method's learning
rate on dev data.

    refs = ex.continual_references(loader, tok, sequence, config)   # per_task / multitask rows
    config = config.replace(method_lrs=tuple(ex.choose_lrs(loader, tok, sequence[:2],
                                                           ["seqft", "ncft"]).items()))
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd

from ...tasks import Task
from .methods import CLMethod, train_tensors
from ..common import eval_split, fresh, sample
from .sequence import ContinualConfig, make_method
from ...tasks import encode

if TYPE_CHECKING:
    from collections.abc import Sequence

    from transformers import PreTrainedTokenizerBase

    from ..common import ModelLoader


def references(
    model_loader: ModelLoader,
    tok: PreTrainedTokenizerBase,
    sequence: list[Task],
    config: ContinualConfig = ContinualConfig(),
    *,
    which: Sequence[str] = ("per_task", "multitask"),
) -> pd.DataFrame:
    """The upper references: ``per_task`` (each task fine-tuned alone from the starting model,
    full FT, ``config.steps`` steps) and ``multitask`` (full FT on all tasks' samples mixed,
    ``len(sequence) * config.steps`` steps). Returns one row per (reference, task): score, nll."""

    method = CLMethod(config)
    lr = dict(config.method_lrs).get("seqft", config.lr)
    trains = [sample(t.train, config.examples, config.seed) for t in sequence]
    tests = [eval_split(t, config.n_eval, config.seed) for t in sequence]
    rows = []
    if "per_task" in which:
        for stage, (task, train, test) in enumerate(zip(sequence, trains, tests)):
            model = fresh(model_loader)
            train_tensors(
                model,
                tok,
                encode(tok, train, max_length=config.max_length),
                list(model.parameters()),
                config.train_config(lr=lr, seed=config.seed + stage),
                method="per_task",
            )
            r = method.evaluate(model, tok, test)
            rows.append(
                {"reference": "per_task", "task": task.name, "score": r["score"], "nll": r["nll"]}
            )
            del model
    if "multitask" in which:
        model = fresh(model_loader)
        encoded = [e for train in trains for e in encode(tok, train, max_length=config.max_length)]
        train_tensors(
            model,
            tok,
            encoded,
            list(model.parameters()),
            config.train_config(lr=lr, seed=config.seed, steps=config.steps * len(sequence)),
            method="multitask",
        )
        for task, test in zip(sequence, tests):
            r = method.evaluate(model, tok, test)
            rows.append(
                {"reference": "multitask", "task": task.name, "score": r["score"], "nll": r["nll"]}
            )
    return pd.DataFrame(rows)


def choose_lrs(
    model_loader: ModelLoader,
    tok: PreTrainedTokenizerBase,
    tasks: Task | list[Task],
    methods: Sequence[str],
    lrs: Sequence[float] = (1e-4, 1e-3),
    config: ContinualConfig = ContinualConfig(),
) -> dict[str, float]:
    """Per method, the lr of ``lrs`` with the lowest mean answer NLL on ``config.n_dev`` dev
    examples of each of ``tasks`` after training them in order, from the starting model, as
    ``continual`` would (the same sample, steps and seeds). Dev data only, never the test split.

    ``tasks``: one Task, or the first tasks of the sequence. With two or more, an lr that learns
    the first task but wrecks it (or fails to learn) at the second stage loses: one stage alone
    cannot see forgetting, and picks the largest lr that fits the first task. The NLL is read
    through the method's own inference (``method.evaluate``: W-NCFT's mixed neurons, the LoRA
    methods' adapters). Returns {method: lr}, to pass as ``config.method_lrs``; with a single
    lr, that lr for every method, without training.
    """
    tasks = [tasks] if isinstance(tasks, Task) else list(tasks)
    trains = [sample(t.train, config.examples, config.seed) for t in tasks]
    devs = [sample(t.dev, config.n_dev, config.seed) for t in tasks]
    if not lrs:
        raise ValueError("choose_lrs needs at least one learning rate in lrs")
    if len(lrs) == 1:  # nothing to choose between: no training runs
        return {name: float(lrs[0]) for name in methods}
    chosen: dict[str, float] = {}
    for name in methods:
        best = (float("inf"), float("inf"))  # (dev NLL, lr): equal NLLs go to the smaller lr
        for lr in lrs:
            method = make_method(name, config.replace(method_lrs=((name, lr),)))
            model = fresh(model_loader)
            for stage, (task, train) in enumerate(zip(tasks, trains)):
                method.before_task(model, tok, task, stage)
                method.train(model, tok, task, train, stage)
                method.after_task(model, tok, task, train, stage)
            nll = sum(method.evaluate(model, tok, dev)["nll"] for dev in devs) / len(devs)
            best = min(best, (nll, lr))
            del model
        chosen[name] = best[1]
    return chosen
