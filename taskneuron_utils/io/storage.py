"""Atomic safetensors files with JSON metadata: how every artefact of the toolkit is stored.

A file is written to a temporary name in the target folder and renamed into place, so a crash
leaves either the old file or the new one, never half of one. The metadata records what kind of
artefact the file holds, so that loading a relevance file as a neuron set fails clearly.

Files are reproducible: the same tensors and metadata give the same bytes in every process
(``safetensors_bytes``), so a run that was killed and resumed writes the files an uninterrupted
one writes. A write that fails (a folder or a file in the way, a read-only folder, a full disk)
raises an ``OSError`` whose one-line message names the target path and the cause, and leaves
nothing behind: no temporary file, no folder it created, and any earlier file unchanged.
"""

from __future__ import annotations

import errno
import json
import os
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save
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
    payload = safetensors_bytes(contiguous, header)
    return atomic_write(path, lambda tmp: Path(tmp).write_bytes(payload))


def safetensors_bytes(tensors: dict[str, torch.Tensor], metadata: dict[str, str]) -> bytes:
    """The bytes of a safetensors file of ``tensors`` and ``metadata``, the same in every process.

    ``safetensors`` writes its ``__metadata__`` in hash order, which changes from one process to
    the next; the header is written again here with the metadata keys sorted and the tensors in
    the order of their data, padded with spaces to a multiple of 8 bytes as ``safetensors`` pads
    it (the data that follows is unchanged)."""
    raw = save(tensors, metadata=metadata)
    size = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8 : 8 + size])
    ordered = {"__metadata__": dict(sorted(header.pop("__metadata__", {}).items()))}
    ordered.update(sorted(header.items(), key=lambda item: (item[1]["data_offsets"], item[0])))
    text = json.dumps(ordered, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    return b"".join([len(text).to_bytes(8, "little"), text, memoryview(raw)[8 + size :]])


def atomic_write(path: str | os.PathLike, write: Callable[[str], object]) -> Path:
    """Call ``write(tmp)`` on a temporary name in ``path``'s folder, then rename it to ``path``
    (created folders included): a crash leaves the old file or the new one, never half.

    Raises:
        OSError: the file cannot be written (a folder or a file in the way, a read-only folder,
            a full disk); one line naming ``path`` and the cause. Nothing is left behind: the
            temporary file and the folders this call created are removed, an old ``path`` is
            unchanged.
    """
    return atomic_write_all({path: write})[0]


def atomic_write_all(writes: Mapping[str | os.PathLike, Callable[[str], object]]) -> list[Path]:
    """``atomic_write`` for several files that belong together (a folder's files): every file
    is written to its temporary name first, and renamed into place only once all of them are
    written, so a failing write (a full disk) leaves none of the new files and the old ones as
    they were. Returns the paths, in order."""
    items = [(Path(path), write) for path, write in writes.items()]
    created: list[Path] = []  # folders made here, outermost first: removed again on failure
    temporaries: list[str] = []
    current = items[0][0]
    try:
        for current, write in items:
            created += _make_parents(current)
            fd, tmp = tempfile.mkstemp(
                dir=current.parent, prefix=f".{current.name}.", suffix=".tmp"
            )
            os.close(fd)
            temporaries.append(tmp)
            write(tmp)
            # mkstemp (and writers that re-create the file) leave it private (0600); give it
            # the mode any other file written here gets. After the write, so nothing resets it.
            os.chmod(tmp, 0o666 & ~_umask())
        for (current, _), tmp in zip(items, temporaries):
            os.replace(tmp, current)
    except BaseException as err:
        for tmp in temporaries:
            Path(tmp).unlink(missing_ok=True)
        for folder in reversed(created):
            try:
                folder.rmdir()
            except OSError:
                pass  # not empty (another writer's file): leave it
        if isinstance(err, OSError):
            raise _write_error(err, current) from err
        raise
    return [path for path, _ in items]


def _make_parents(path: Path) -> list[Path]:
    """Create ``path``'s missing folders; returns those this call created, outermost first. A
    file in the way is a NotADirectoryError naming it."""
    missing = []
    folder = path.parent
    while not folder.exists():
        missing.append(folder)
        folder = folder.parent
    if not folder.is_dir():
        raise NotADirectoryError(errno.ENOTDIR, f"{folder} is a file, not a folder")
    made = []
    for folder in reversed(missing):
        try:
            folder.mkdir()
        except FileExistsError:
            continue  # made meanwhile by someone else: not ours to remove
        made.append(folder)
    return made


def _write_error(err: OSError, path: Path) -> OSError:
    """``err`` as a one-line OSError of the same kind (the errno picks the subclass) that names
    ``path``: the temporary name it may hold means nothing to the caller."""
    code = err.errno  # None for e.g. pyarrow's: the errno is only in its text
    reason = getattr(err, "write_reason", None)  # already one of these (a nested write)
    if reason is None and code is None:
        reason = str(err)
    elif reason is None and code is not None:
        reason = err.strerror or os.strerror(code)
        if code == errno.EISDIR:
            reason = "it is a folder (give a file name)"
    reason = " ".join(str(reason).split())
    message = f"cannot write {path}: {reason}"
    named = OSError(message) if code is None else OSError(code, message)
    named.write_reason = reason  # type: ignore[attr-defined]
    return named


def load_artefact(path: str | os.PathLike, kind: str) -> tuple[dict[str, torch.Tensor], dict]:
    """Read a file written by ``save_artefact``; returns (tensors, meta).

    Raises:
        ArtefactFileError: the file does not exist, is not a readable safetensors file, or holds
            another kind of artefact. The message names the file and what to do.
    """
    path = Path(path)
    if not path.exists():
        raise ArtefactFileError(f"{path} does not exist.")
    if path.is_dir():
        raise ArtefactFileError(f"{path} is a folder; a {kind} file was expected there.")
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
