"""What several sections need: the configs' ``replace``, seeded samples of a split, a fresh model
per run, a content hash of a split, and writing a folder atomically (caches)."""

from __future__ import annotations

import copy
import dataclasses
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from ..tasks import Split, Task
from ..errors import did_you_mean
from ..core.identity import content_hash

if TYPE_CHECKING:
    from collections.abc import Callable

    from torch import nn
    from transformers import PreTrainedTokenizerBase

    #: A model (read as is, copied to train), or a function returning a model or (model, tok).
    ModelLoader = nn.Module | Callable[[], nn.Module | tuple[nn.Module, PreTrainedTokenizerBase]]


def refuse_unknown(owner: str, given, valid, what: str = "argument") -> None:
    """A one-line TypeError naming the names of ``given`` that are not in ``valid``, the
    nearest valid name of each and every valid name (as ``TrainConfig.replace`` words it)."""
    valid = list(valid)
    unknown = [name for name in given if name not in valid]
    if not unknown:
        return
    raise TypeError(
        f"{owner} has no {what} {', '.join(map(repr, unknown))}{did_you_mean(unknown, valid)}; "
        f"the {what}s are {', '.join(valid)}"
    )


class ConfigMixin:
    """``replace(**changes)`` for the frozen config dataclasses: a copy with some fields changed;
    an unknown name is a one-line ``TypeError`` naming it, its nearest field and every field."""

    def replace(self, **changes):
        refuse_unknown(
            type(self).__name__,
            changes,
            [f.name for f in dataclasses.fields(self) if f.init],  # type: ignore[arg-type]
            "setting",
        )
        return dataclasses.replace(self, **changes)


def sample(split: Split, n: int | None, seed: int) -> Split:
    """``n`` examples of ``split`` drawn with ``seed`` (all of them, reordered by the draw, when
    ``n >= len(split)``); None = the split itself."""
    return split if n is None else split.sample(min(n, len(split)), seed=seed)


def eval_split(task: Task, n: int | None, seed: int) -> Split:
    """The test examples a task is scored on: a seeded sample of ``n``, or the whole test split
    (in its own order) when ``n`` is None or not smaller than it."""
    test = task.test
    return test if n is None or n >= len(test) else test.sample(n, seed=seed)


def fresh(model_loader):
    """A model to train, never the caller's: a deep copy when ``model_loader`` is a model,
    else ``model_loader()`` (a function returning a model or (model, tok))."""
    if isinstance(model_loader, torch.nn.Module):
        return copy.deepcopy(model_loader)
    if callable(model_loader):
        model = model_loader()
        return model[0] if isinstance(model, tuple) else model
    return copy.deepcopy(model_loader)


def starting_model(model_loader):
    """The starting model to read (attribute, evaluate, fingerprint), never to train:
    ``model_loader`` itself when it is a model (not copied), else the model it returns."""
    return model_loader if isinstance(model_loader, torch.nn.Module) else fresh(model_loader)


def data_hash(split: Split) -> str:
    """16 hex digits of sha256 over the examples' (input, output) pairs, in order."""
    return content_hash(json.dumps([ex.input, ex.output]) for ex in split)


def settings_key(settings: dict) -> str:
    """16 hex digits of sha256 over a JSON-able settings dict (key order does not matter)."""
    return content_hash([json.dumps(settings, sort_keys=True)])


def write_folder(folder: Path, write) -> None:
    """Create ``folder`` atomically: ``write(tmp)`` fills a temporary sibling folder, which is
    then renamed into place (replacing an existing ``folder``). On any error the temporary folder
    is removed and ``folder`` is left as it was."""
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        write(tmp)
        if folder.exists():
            shutil.rmtree(folder)
        os.replace(tmp, folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
