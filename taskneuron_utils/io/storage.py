"""Atomic safetensors files with JSON metadata: how every artefact of the toolkit is stored.

A file is written to a temporary name in the target folder and renamed into place, so a crash
leaves either the old file or the new one, never half of one. The metadata records what kind of
artefact the file holds, so that loading a relevance file as a neuron set fails clearly.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file
from ..errors import ArtefactFileError

FORMAT_VERSION = "1"

# {artefact kind: load(path, model=None)}: each class that saves artefacts registers its loader
# here, so that readers of folders and repositories (``io.hub``) load by the kind a file names
# without importing the classes (which sit in layers above this one).
LOADERS: dict[str, Callable[..., object]] = {}


def register_loader(kind: str, load: Callable[..., object]) -> None:
    """Make ``load(path, model=None)`` the reader of artefacts of ``kind``."""
    LOADERS[kind] = load


def save_artefact(
    path: str | os.PathLike, kind: str, tensors: dict[str, torch.Tensor], meta: dict
) -> Path:
    """Write ``tensors`` and JSON-serialisable ``meta`` to ``path`` atomically."""
    header = {
        "taskneuron_utils_kind": kind,
        "format_version": FORMAT_VERSION,
        "meta": json.dumps(meta, sort_keys=True),
    }
    contiguous = {name: t.detach().contiguous().cpu() for name, t in tensors.items()}
    return atomic_write(path, lambda tmp: save_file(contiguous, tmp, metadata=header))


def atomic_write(path: str | os.PathLike, write: Callable[[str], object]) -> Path:
    """Call ``write(tmp)`` on a temporary name in ``path``'s folder, then rename it to ``path``
    (created folders included): a crash leaves the old file or the new one, never half."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        # mkstemp (and writers that re-create the file) leave it private (0600); give it the
        # mode any other file written here gets. After the write, so nothing resets it.
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def load_artefact(path: str | os.PathLike, kind: str) -> tuple[dict[str, torch.Tensor], dict]:
    """Read a file written by ``save_artefact``; returns (tensors, meta).

    Raises:
        ArtefactFileError: the file does not exist, is not a readable safetensors file, or holds
            another kind of artefact. The message names the file and what to do.
    """
    path = Path(path)
    if not path.exists():
        raise ArtefactFileError(f"{path} does not exist.")
    try:
        tensors = load_file(path)
        with safe_open(path, framework="pt") as f:
            header = f.metadata() or {}
        meta = json.loads(header["meta"])
    except (SafetensorError, OSError, ValueError, KeyError) as err:
        raise ArtefactFileError(
            f"{path} is not a readable {kind} file ({type(err).__name__}: {err}). It may be "
            "truncated or written by another program; re-create it (its writer is atomic, so an "
            "interrupted save never leaves a half file under the final name)."
        ) from err
    found = header.get("taskneuron_utils_kind")
    if found != kind:
        raise ArtefactFileError(f"{path} holds a {found!r} artefact, not a {kind!r}.")
    return tensors, meta


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
