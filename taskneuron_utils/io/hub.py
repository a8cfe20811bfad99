"""Neuron sets and relevance scores on the Hugging Face Hub.

A repository made by ``push_to_hub`` holds three files::

    taskneurons.json       what the repository holds (our metadata: kind, file, model, ...)
    <kind>.safetensors     the artefact itself, as ``NeuronSet.save`` / ``Relevance.save`` write it
    README.md              a model card: model, weight fingerprint, tasks, k, method, command

``write_repo_folder`` / ``read_repo_folder`` make and read that folder on disk; ``push_to_hub``
uploads it (``huggingface_hub.HfApi.create_repo`` + ``upload_folder``), ``from_hub`` downloads it
(``huggingface_hub.snapshot_download``) or reads a local folder of the same layout, as
``from_pretrained`` does. ``huggingface_hub`` comes with transformers; no other extra is needed.
"""

from __future__ import annotations

import json
import os
import shlex
import sys
import tempfile
from pathlib import Path

from ..core.sites import parse_site_name
from ..errors import ArtefactFileError, HubRepoError
from .storage import FORMAT_VERSION, LOADERS, atomic_write_all

METADATA = "taskneurons.json"
KINDS = ("NeuronSet", "Relevance")


def _kind_of(obj) -> str:
    kind = type(obj).__name__
    if kind not in KINDS:
        raise TypeError(f"push_to_hub takes a NeuronSet or a Relevance, got {kind}")
    return kind


def describe(obj, command: str | None = None) -> dict:
    """The metadata of ``obj`` (``taskneurons.json``): kind, file, model, weights (fingerprint),
    tasks, k, method, command (default: this process's command line)."""
    kind = _kind_of(obj)
    if kind == "NeuronSet":
        meta = obj.meta
        relevance = meta.get("relevance") or {}
        weights = relevance.get("weights") or meta.get("weights")
        method = meta.get("selection") or (
            f"top-k per {meta['per']} of relevance ({meta.get('aggregation')})"
            if "per" in meta
            else None
        )
        k, sizes = meta.get("k"), obj.sizes
        counts = {"neurons": len(obj), "of": sum(sizes.values())}
    else:
        meta = obj.provenance
        weights, method, k, sizes = (
            meta.get("weights"),
            meta.get("method", "taylor"),
            None,
            obj.sizes,
        )
        counts = {"examples": obj.n_examples, "tokens": obj.n_tokens}
    task = meta.get("task")
    return {
        "kind": kind,
        "file": f"{kind.lower()}.safetensors",
        "format_version": FORMAT_VERSION,
        "model": meta.get("model"),
        "weights": weights,
        "tasks": [task] if isinstance(task, str) else list(task or []),
        "k": k,
        "method": method,
        "sites": len(sizes),
        "site_kinds": sorted({parse_site_name(site)[1] for site in sizes}),
        **counts,
        "command": command
        or " ".join(
            shlex.quote(arg)
            for arg in [
                Path(sys.argv[0]).name if sys.argv and sys.argv[0] else "python",
                *sys.argv[1:],
            ]
        ),
    }


def model_card(info: dict) -> str:
    """README.md for a repository holding the artefact ``info`` describes."""
    model = info["model"] or "unknown"
    front = [
        "---",
        "library_name: taskneuron_utils",
        "tags:",
        "- task-neurons",
        "- interpretability",
    ]
    if model != "unknown" and not Path(model).is_absolute() and model.count("/") == 1:
        front.append(f"base_model: {model}")
    rows = [
        ("model", model),
        ("weight fingerprint", info["weights"]),
        ("tasks", ", ".join(info["tasks"]) or "-"),
        ("k", info["k"]),
        ("method", info["method"]),
        ("sites", f"{info['sites']} ({', '.join(info['site_kinds'])})"),
    ]
    rows += [(key, info[key]) for key in ("neurons", "of", "examples", "tokens") if key in info]
    table = "\n".join(f"| {key} | {'-' if value is None else value} |" for key, value in rows)
    return "\n".join(
        [
            *front,
            "---",
            "",
            f"# {info['kind']}: task-specific neurons of {model}",
            "",
            "Made with [taskneuron_utils](https://pypi.org/project/taskneuron-utils/) "
            "(Leng & Xiong 2024, task-specific neurons).",
            "",
            "| | |",
            "|---|---|",
            table,
            "",
            "Made by:",
            "",
            "```",
            info["command"],
            "```",
            "",
            "Load it:",
            "",
            "```python",
            "import taskneuron_utils as tn",
            f"obj = tn.interop.hub.from_hub(REPO_ID, model=model)  # a {info['kind']}",
            "```",
            "",
        ]
    )


def write_repo_folder(obj, folder: str | os.PathLike, command: str | None = None) -> Path:
    """Write the repository's files for ``obj`` into ``folder``, all or nothing: the three are
    written to temporary names and renamed into place once all are written, so a failing write
    (a full disk) leaves no partial repository (``storage.atomic_write_all``)."""
    folder = Path(folder)
    info = describe(obj, command)
    atomic_write_all(
        {
            folder / info["file"]: obj.save,
            folder / "README.md": lambda tmp: Path(tmp).write_text(model_card(info)),
            folder / METADATA: lambda tmp: Path(tmp).write_text(json.dumps(info, indent=2) + "\n"),
        }
    )
    return folder


def read_repo_folder(
    folder: str | os.PathLike, model=None, kind: str | None = None, where: str | None = None
):
    """The NeuronSet or Relevance in ``folder`` (``write_repo_folder``'s layout); with
    ``model``, checked to fit it; with ``kind``, refused if it holds the other kind."""

    folder, where = Path(folder), where or str(folder)
    if not (folder / METADATA).is_file():
        raise HubRepoError(
            f"{where} has no {METADATA}: not a repository made by "
            f"taskneuron_utils' push_to_hub (files: "
            f"{sorted(p.name for p in folder.iterdir())[:5] if folder.is_dir() else 'none'})"
        )
    try:
        info = json.loads((folder / METADATA).read_text())
        found, file = info["kind"], info["file"]
    except (ValueError, KeyError, TypeError) as err:
        raise HubRepoError(f"{where}/{METADATA} is not our metadata ({err!r})") from None
    if found not in KINDS or (kind is not None and found != kind):
        raise HubRepoError(f"{where} holds a {found!r}, not a {kind or ' or '.join(KINDS)!r}")
    if not (folder / file).is_file():
        raise ArtefactFileError(f"{where} lacks {file}, which its {METADATA} names")
    return LOADERS[found](folder / file, model=model)


def push_to_hub(
    obj,
    repo_id: str,
    *,
    command: str | None = None,
    private: bool | None = None,
    token: str | None = None,
    commit_message: str | None = None,
    api=None,
) -> str:
    """Upload ``obj`` (NeuronSet or Relevance) with its model card to the model repository
    ``repo_id`` (created if missing); returns the commit URL. ``api``: a
    ``huggingface_hub.HfApi`` (default: a new one with ``token``)."""
    if api is None:
        from huggingface_hub import HfApi

        api = HfApi(token=token)
    kind = _kind_of(obj)
    with tempfile.TemporaryDirectory() as folder:
        write_repo_folder(obj, folder, command)
        api.create_repo(repo_id, repo_type="model", private=private, exist_ok=True)
        commit = api.upload_folder(
            repo_id=repo_id,
            repo_type="model",
            folder_path=folder,
            commit_message=commit_message or f"Upload {kind} ({describe(obj, command)['model']})",
        )
    return str(getattr(commit, "commit_url", commit))


def from_hub(
    repo_id: str | os.PathLike,
    model=None,
    *,
    kind: str | None = None,
    revision: str | None = None,
    token: str | None = None,
    cache_dir=None,
):
    """The NeuronSet or Relevance of a repository made by ``push_to_hub``: ``repo_id`` on the
    Hub (downloaded with ``huggingface_hub.snapshot_download``, which honours HF_HUB_OFFLINE
    and its cache), or a local folder of the same layout."""
    if Path(repo_id).is_dir():
        return read_repo_folder(repo_id, model=model, kind=kind)
    from huggingface_hub import snapshot_download

    folder = snapshot_download(
        str(repo_id),
        revision=revision,
        token=token,
        cache_dir=cache_dir,
        allow_patterns=[METADATA, "*.safetensors", "README.md"],
    )
    return read_repo_folder(folder, model=model, kind=kind, where=f"hub repo {repo_id}")
