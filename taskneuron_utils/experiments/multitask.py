"""The multi-task fine-tuned model: the paper's "original" model of Table 1 (full fine-tuning on
a mixture of the tasks' training data), cached with its provenance."""

from __future__ import annotations

import copy
import dataclasses
import json
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..tasks import Split, Task
from .common import ConfigMixin, data_hash, settings_key, write_folder
from ..core.models import cache_dir, load_model, model_name, weight_fingerprint
from ..tasks import load_tasks
from ..training.config import TrainConfig
from ..training.finetuning import finetune

if TYPE_CHECKING:
    from torch import nn
    from transformers import PreTrainedTokenizerBase


@dataclass(frozen=True)
class MultitaskConfig(ConfigMixin):
    """Settings of ``multitask_finetune``.

    Attributes:
        model: the base model: None = the embedded default model, else a hub id or local path.
        tasks: the tasks whose training data is mixed.
        source: where ``tasks`` load from when none are passed: "quick" (the shipped suite) or
            "paper" (the hub, or ``$TASKNEURON_HUB_DATA``).
        examples: training examples per task in the mixture (a seeded sample).
        steps: optimiser steps (AdamW, linear schedule, 10% warmup).
        lr: peak learning rate.
        batch_size: examples per step.
        max_length: token budget per example (prompt + answer), in tokens.
        seed: seeds the mixture's samples and the training order.
        progress: print training progress.
    """

    model: str | None = None
    tasks: tuple[str, ...] = (
        "product_sentiment",
        "news_topic",
        "country_continent",
        "addition",
        "country_capital",
        "last_word",
    )
    source: str = "quick"
    examples: int = 48
    steps: int = 36
    lr: float = 1e-4
    batch_size: int = 8
    max_length: int = 256
    seed: int = 0
    progress: bool = True


def multitask_mixture(tasks: dict[str, Task], examples: int, seed: int = 0) -> Split:
    """One training Split mixing ``examples`` training examples of each task.

    The shipped tasks differ in their instruction, but ``tasks.encode`` reads one instruction
    per split. So each example carries its own instruction in its input (``instruction + "\\n\\n"
    + input``) and the mixture task has an empty instruction. With a chat template (the default
    model) the prompt is then token-for-token the one ``format_prompt`` builds for the task
    itself, so the model is trained on exactly the prompts it is evaluated on. (With the plain
    template of a base model the prompt reads "Input: <instruction>\\n\\n<input>" instead, a
    small difference.) The order is shuffled by ``finetune``'s batch stream.
    """
    records = []
    for task in tasks.values():
        for ex in (task.train[i] for i in mixture_indices(task, examples, seed)):
            text = f"{task.instruction}\n\n{ex.input}" if task.instruction else ex.input
            records.append({"input": text, "output": ex.output})
    mixture = Task.from_records(
        "multitask",
        {"train": records},
        instruction="",
        category="generation",
        description="mixture of " + ", ".join(tasks),
    )
    return mixture.train


def mixture_indices(task: Task, examples: int, seed: int = 0) -> list[int]:
    """Positions in ``task.train`` of the examples ``multitask_mixture`` takes from ``task``."""
    return task.train.sample_indices(min(examples, len(task.train)), seed=seed)


def held_out(
    tasks: dict[str, Task], config: MultitaskConfig = MultitaskConfig()
) -> dict[str, Task]:
    """Each task with its training split cut to the examples the multi-task model of ``config``
    did not train on (``mixture_indices``; also dropped: any example equal in input and output
    to a trained one). Dev and test splits are kept.

    Detect neurons on the multi-task model with these: relevance measured on the examples it
    was fitted to reflects memorised examples, not the task. (Without this, the quick profile's 32
    detection examples would all be among the 48 trained ones: with the same seed,
    ``Split.sample`` draws a smaller sample as a subset of a larger one.)
    """
    out = {}
    for name, task in tasks.items():
        trained = set(mixture_indices(task, config.examples, config.seed))
        seen = {task.train[i] for i in trained}
        kept = [ex for i, ex in enumerate(task.train) if i not in trained and ex not in seen]
        out[name] = dataclasses.replace(task, train=kept)
    return out


def multitask_finetune(
    config: MultitaskConfig = MultitaskConfig(),
    *,
    tasks: dict[str, Task] | None = None,
    base: tuple[nn.Module, PreTrainedTokenizerBase] | None = None,
    rebuild: bool = False,
) -> tuple[nn.Module, PreTrainedTokenizerBase, dict]:
    """Full fine-tuning of the base model on the mixture of ``config.tasks``' training data.

    ``config.examples`` training examples per task (``multitask_mixture``), ``config.steps``
    AdamW steps of ``config.batch_size`` examples at peak lr ``config.lr`` (linear schedule,
    10% warmup), seed ``config.seed``. The quick profile (36 steps over 6 x 48 examples, one
    pass) takes about 2 minutes on 2 CPU cores.

    The result is cached in ``cache_dir()/finetuned/<key>/`` (``save_pretrained`` + tokenizer +
    ``history.csv`` + ``provenance.json``), written to a temporary folder and renamed into place;
    ``<key>`` hashes the base model's weight fingerprint, the data and every training setting,
    so a second call with the same settings loads the cache in about a second.

    Args:
        config: the settings (``config.model`` is the base model).
        tasks: {name: Task} to mix (default: ``load_tasks(config.tasks)``).
        base: optional (model, tok) to start from instead of ``load_model(config.model)`` (tests
            use a tiny model). It is not modified: training runs on a deep copy.
        rebuild: retrain even if a cache exists.

    Returns:
        (model, tok, info): the fine-tuned model (eval mode), its tokenizer, and the provenance
        dict plus ``cached`` (bool, True when loaded from the cache) and ``path``.
    """

    tasks = load_tasks(list(config.tasks), profile=config.source) if tasks is None else tasks
    base_model, tok = load_model(config.model) if base is None else base
    mixture = multitask_mixture(tasks, config.examples, config.seed)
    training = TrainConfig(
        steps=config.steps,
        lr=config.lr,
        batch_size=config.batch_size,
        seed=config.seed,
        max_length=config.max_length,
        progress=config.progress,
    )
    settings = {
        "base_model": model_name(base_model),
        "base_fingerprint": weight_fingerprint(base_model),
        "tasks": list(tasks),
        "examples_per_task": config.examples,
        "n_examples": len(mixture),
        "data_hash": data_hash(mixture),
        "steps": config.steps,
        "lr": config.lr,
        "batch_size": config.batch_size,
        "seed": config.seed,
        "schedule": training.schedule,
        "warmup": training.warmup,
        "method": "full",
    }
    if config.max_length != 256:  # absent = 256: keeps the keys of caches written without it
        settings["max_length"] = config.max_length
    key = settings_key(settings)
    folder = cache_dir() / "finetuned" / key
    if folder.is_dir() and (folder / "provenance.json").exists() and not rebuild:
        started = time.perf_counter()
        model, tok = load_model(str(folder))
        info = json.loads((folder / "provenance.json").read_text())
        info.update(cached=True, path=str(folder), load_seconds=time.perf_counter() - started)
        return model, tok, info

    model = copy.deepcopy(base_model)
    started = time.perf_counter()
    history = finetune(model, tok, mixture, training, method="full")
    wall = time.perf_counter() - started
    losses = history["loss"].dropna()
    tail = max(1, len(losses) // 10)
    info = {
        **settings,
        "key": key,
        "first_loss": float(losses.iloc[:tail].mean()),
        "final_loss": float(losses.iloc[-tail:].mean()),
        "wall_seconds": round(wall, 1),
        "weight_fingerprint": weight_fingerprint(model),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }

    def write(tmp):
        model.save_pretrained(tmp)
        tok.save_pretrained(tmp)
        history.to_csv(tmp / "history.csv", index=False)
        (tmp / "provenance.json").write_text(json.dumps(info, indent=2))

    write_folder(folder, write)  # replaces a folder without provenance, or one when rebuild=True
    model.name_or_path = str(folder)
    model.config._name_or_path = str(folder)
    info.update(cached=False, path=str(folder))
    return model, tok, info
