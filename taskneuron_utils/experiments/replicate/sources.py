"""Where a run's models, tasks and files come from: ``Models`` (the base model, fresh copies of
it to train, the multi-task "original" model, cached), ``load_run_tasks`` and the atomic
writers every part uses."""

from __future__ import annotations

import copy
import json
from typing import Any
from pathlib import Path

import pandas as pd
import torch

from ...core.models import load_model
from ...core.parallel import rank_and_world
from ...io.storage import atomic_write
from ...tasks import load_tasks
from ..multitask import multitask_finetune
from .settings import Settings


class Models:
    """The models of one run. ``base``: (model, tok) to start from instead of loading
    ``settings.model`` (the tests' tiny model); it is never trained in place."""

    def __init__(self, settings: Settings, base=None):
        self.settings = settings
        self._given = base
        self._base: tuple | None = None
        self._original: Any = None
        self.original_info: dict = {}

    def _load(self):
        if self._base is None:
            if self._given is not None:
                self._base = self._given
            else:
                kwargs: dict[str, Any] = {}
                if self.settings.dtype not in (None, "float32"):
                    kwargs["dtype"] = self.settings.dtype
                if self.settings.device_map is not None:
                    kwargs["device_map"] = self.settings.device_map
                if rank_and_world()[1] > 1 and torch.cuda.is_available():
                    # under torchrun: data parallel, the whole model on this process's GPU
                    kwargs.pop("device_map", None)
                    kwargs["device"] = f"cuda:{torch.cuda.current_device()}"
                self._base = load_model(self.settings.model, **kwargs)
        return self._base

    @property
    def loaded(self) -> bool:
        """Whether the base model was loaded (or given) in this run."""
        return self._base is not None

    @property
    def tok(self):
        return self._load()[1]

    def base(self):
        """The base model, to read (attribute, evaluate), never to train."""
        return self._load()[0]

    def fresh(self):
        """A copy of the base model to train (the loader every training part is given)."""
        return copy.deepcopy(self.base())

    def original(self, tasks: dict):
        """The multi-task fine-tuned model of Table 1 (``multitask_finetune``, cached on disk
        under ``cache_dir()/finetuned``; in memory for the rest of the run)."""
        if self._original is None:
            config = self.settings.multitask
            chosen = {name: tasks[name] for name in config.tasks}
            model, _, info = multitask_finetune(config, tasks=chosen, base=self._load())
            self._original, self.original_info = model, info
        return self._original


def load_run_tasks(settings: Settings, names=None) -> dict:
    """{name: Task} of every task the run needs, from the settings' source (the shipped suite,
    or the hub data sets: ``settings.data_dir`` or ``$TASKNEURON_HUB_DATA`` for local copies)."""
    names = list(settings.all_tasks() if names is None else names)
    if settings.source == "quick":
        return load_tasks(names)
    kwargs = {} if settings.data_dir is None else {"data_dir": settings.data_dir}
    return load_tasks(names, profile="paper", **kwargs)


def write_csv(frame: pd.DataFrame, path: Path) -> None:
    """``frame`` to ``path`` atomically (gzip when the name ends in .gz): a unit whose file
    exists counts as done."""
    compression = "gzip" if str(path).endswith(".gz") else None
    atomic_write(path, lambda tmp: frame.to_csv(tmp, index=False, compression=compression))


def write_json(path: Path, value) -> None:
    atomic_write(path, lambda tmp: Path(tmp).write_text(json.dumps(value, indent=2) + "\n"))


def read_json(path: Path, default=None):
    return json.loads(Path(path).read_text()) if Path(path).exists() else default
