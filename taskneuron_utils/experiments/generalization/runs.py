"""The trained runs behind the generalization experiments (``experiments.generalization``): one
context per call holds the base model, its relevances and its test scores, trains a model on a
set of tasks (their neurons, or every parameter), and keeps every run's results in a JSON cache.

Every trained model's results are cached (JSON, one file a run, keyed by its settings) under
``config.out_dir`` (default ``cache_dir()/generalization``), so reruns and interrupted runs cost
only what is missing. Relevance is computed once per task on the base model, checkpointed there.
``config`` is a ``GeneralizationConfig``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import torch

from ...neurons.neuron_set import NeuronSet
from ...tasks import Task, encode
from ..common import eval_split, fresh, sample, settings_key, starting_model
from ..detection import DetectionConfig, detect
from ..multitask import multitask_mixture
from ...core.models import cache_dir
from ...core.models import model_name, weight_fingerprint
from ...scoring.evaluation import evaluate
from ...neurons.analysis import parameter_similarity
from ...scoring.loss import answer_nll
from ...training.config import TrainConfig
from ...training.finetuning import finetune
from ...core.identity import content_hash
from ...io.storage import atomic_write


def check_tasks(tasks: dict[str, Task], config) -> None:
    """A KeyError naming every task the groups need and ``tasks`` lacks."""
    missing = [t for t in config.group_tasks() if t not in tasks]
    if missing:
        raise KeyError(
            f"unknown tasks {missing}: the groups need them but tasks has only {sorted(tasks)}"
        )


# --- caches -------------------------------------------------------------------------------


def cache_root(config) -> Path:
    """The folder of every cached run: ``config.out_dir``, or ``cache_dir()/generalization``."""

    return Path(config.out_dir) if config.out_dir else cache_dir() / "generalization"


def set_hash(neurons) -> str:
    """16 hex digits naming a neuron set's (site, indices) content, for cache keys."""
    return content_hash(
        part
        for site, idx in sorted(neurons.indices.items())
        for part in (site, idx.numpy().tobytes())
    )


def _cached(config, kind: str, settings: dict, compute) -> dict:
    """``compute()`` once per ``settings``: its JSON is kept in ``<root>/<kind>/<key>.json``."""
    path = cache_root(config) / kind / f"{settings_key(settings)}.json"
    if path.exists():
        return json.loads(path.read_text())
    record = {"settings": settings, **compute()}
    atomic_write(path, lambda tmp: Path(tmp).write_text(json.dumps(record)))
    return record


class RunContext:
    """What every run of one call shares: the base model, its fingerprint, relevances, evals."""

    def __init__(self, model_loader, tok, tasks, config):
        check_tasks(tasks, config)
        self.loader, self.tok, self.tasks, self.config = model_loader, tok, tasks, config
        self.base = starting_model(model_loader)
        self.fingerprint = weight_fingerprint(self.base)
        self.name = model_name(self.base)
        self._relevance = {}

    def relevance(self, name: str):
        """The base model's relevance on task ``name`` (detected once, checkpointed)."""
        if name not in self._relevance:
            c = self.config
            key = settings_key({"n": c.n_attribution, "len": c.max_length, "seed": c.seed})
            detection = DetectionConfig(
                n_attribution=c.n_attribution,
                max_length=c.max_length,
                seed=c.seed,
                progress=False,
                out_dir=str(cache_root(c) / self.fingerprint[:16] / key),
            )
            self._relevance[name] = detect(
                self.base, self.tok, {name: self.tasks[name]}, detection
            )[name]
        return self._relevance[name]

    def top(self, name: str, p: float) -> NeuronSet:
        """Task ``name``'s top-p neurons on the base model (per site)."""
        return self.relevance(name).top_k(p)

    def evaluate(self, model, names) -> dict:
        """{task: {"score", "nll", "n"}} of ``model`` on a seeded sample of each task's test."""

        out = {}
        for name in names:
            split = eval_split(self.tasks[name], self.config.n_eval, self.config.seed)
            r = evaluate(
                model,
                self.tok,
                split,
                batch_size=self.config.eval_batch_size,
                max_length=self.config.max_length,
                progress=False,
            )
            out[name] = {"score": r["score"], "nll": r["nll"], "n": r["n"]}
        return out

    def before(self, names) -> dict:
        """The base model's test scores (cached)."""
        settings = {
            "base": self.fingerprint,
            "tasks": list(names),
            "n_eval": self.config.n_eval,
            "seed": self.config.seed,
            "max_length": self.config.max_length,
        }
        return _cached(
            self.config, "base", settings, lambda: {"eval": self.evaluate(self.base, names)}
        )["eval"]

    def train(self, train_tasks, neurons, lr: float | None, eval_names, similarity=None) -> dict:
        """Train (neurons, or every parameter when ``neurons`` is None) on the mixture of
        ``train_tasks``; dev NLL on their dev samples; test scores on ``eval_names``; with
        ``similarity`` ({name: NeuronSet}, first = reference), ``parameter_similarity`` rows."""

        c = self.config
        chosen = {t: self.tasks[t] for t in train_tasks}
        data = (
            multitask_mixture(chosen, c.examples, c.seed)
            if len(chosen) > 1
            else sample(chosen[train_tasks[0]].train, c.examples, c.seed)
        )
        settings = {
            "base": self.fingerprint,
            "train": list(train_tasks),
            "examples": c.examples,
            "neurons": None if neurons is None else set_hash(neurons),
            "lr": lr,
            "steps": c.steps,
            "batch_size": c.batch_size,
            "seed": c.seed,
            "max_length": c.max_length,
            "n_dev": c.n_dev,
            "n_eval": c.n_eval,
            "eval": list(eval_names),
            "similarity": None if similarity is None else list(similarity),
        }

        def compute():
            training = TrainConfig(
                steps=c.steps,
                lr=lr,
                batch_size=c.batch_size,
                seed=c.seed,
                max_length=c.max_length,
                progress=False,
            )
            model = fresh(self.loader)
            started = time.perf_counter()
            history = finetune(
                model,
                self.tok,
                data,
                training,
                neurons=neurons,
                method="full" if neurons is None else "neurons",
            )
            seconds = time.perf_counter() - started
            dev = [
                answer_nll(
                    model,
                    self.tok,
                    encode(
                        self.tok,
                        sample(self.tasks[t].dev, c.n_dev, c.seed),
                        max_length=c.max_length,
                    ),
                    batch_size=c.eval_batch_size,
                )
                for t in train_tasks
            ]
            out = {
                "dev_nll": sum(dev) / len(dev),
                "train_seconds": round(seconds, 1),
                "trainable_parameters": int(history.attrs["trainable_parameters"]),
                "eval": self.evaluate(model, eval_names),
            }
            if similarity is not None:
                reference = next(iter(similarity))
                sim = parameter_similarity(model, similarity, reference, base=self.base)
                out["similarity"] = sim.to_dict(orient="records")
            return out

        return _cached(c, "runs", settings, compute)

    def choose_lr(self, train_tasks, neurons, eval_names, similarity=None) -> tuple[float, dict]:
        """The lr of ``config.lrs`` (full: ``config.full_lrs``) with the lowest dev NLL on the
        training tasks' dev data."""
        grid = self.config.lrs if neurons is not None else (self.config.full_lrs or self.config.lrs)
        search = {
            lr: self.train(train_tasks, neurons, lr, eval_names, similarity)["dev_nll"]
            for lr in grid
        }
        return min(search, key=lambda lr: search[lr]), search


def full_set(like: NeuronSet) -> NeuronSet:
    """Every neuron of ``like``'s sites: what full fine-tuning trains, counted as a set."""
    return NeuronSet(
        {s: torch.arange(n) for s, n in like.sizes.items()}, like.sizes, {"name": "all"}
    )


def union(sets: list[NeuronSet]) -> NeuronSet:
    """The union of one or more neuron sets of the same model."""
    out = sets[0]
    for s in sets[1:]:
        out = out | s
    return out
