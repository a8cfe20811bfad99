"""The shipped task suite: where it lives (``default_data_dir``) and ``load_tasks``.

In a clone or an editable install the suite is the repository's ``data/`` folder; a wheel (or a
plain ``pip install``) carries the same files as the package data ``taskneuron_utils/_data``.
"""

from __future__ import annotations

import inspect
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..errors import did_you_mean
from .data import SPLIT_NAMES, Task, read_jsonl
from ..errors import TaskDataError, UnknownTaskError
from .hub import load_hub_task
from .hub_specs import HUB_TASKS, PAPER_TASKS


def default_data_dir() -> Path:
    """Where the shipped suite is: ``$TASKNEURON_DATA`` if set; else the package data
    ``taskneuron_utils/_data`` of an installed wheel; else the repository's ``data/`` folder (a
    clone, or an editable install, which maps ``_data`` onto ``data/`` without copying it)."""
    env = os.environ.get("TASKNEURON_DATA")
    if env:
        return Path(env)
    package = Path(__file__).resolve().parents[1]
    installed = package / "_data"
    if (installed / "tasks.json").is_file():
        return installed
    return package.parent / "data"


def _quick_arguments_message(given) -> str:
    """One line: the shipped suite takes names and data_dir; the hub loader's arguments are for
    profile="paper"; anything else is named with its nearest valid name."""
    hub = [
        p.name
        for p in inspect.signature(load_hub_task).parameters.values()
        if p.kind is not p.VAR_KEYWORD and p.name not in ("name", "data_dir")
    ]
    for_hub = [key for key in given if key in hub]
    if for_hub:
        return (
            f"load_tasks: {', '.join(map(repr, for_hub))} {'is' if len(for_hub) == 1 else 'are'} "
            "for the hub tasks (profile='paper', load_hub_task); the shipped suite "
            "(profile='quick') takes names and data_dir"
        )
    hint = did_you_mean(given, ["names", "profile", "data_dir", *hub])
    return (
        f"load_tasks has no argument {', '.join(map(repr, given))}{hint}; it takes names, "
        f"profile, data_dir and, for profile='paper', load_hub_task's {', '.join(hub)} and "
        "load_dataset's"
    )


def load_tasks(
    names: Sequence[str] | str | None = None,
    profile: str = "quick",
    data_dir: str | os.PathLike | None = None,
    **hub_kwargs: Any,
) -> dict[str, Task]:
    """Load tasks by name, in suite order.

    Args:
        names: task names (default: all of the profile's tasks).
        profile: "quick" reads the shipped suite (``data/tasks.json`` + ``data/<name>/*.jsonl``);
            "paper" loads the paper's 12 tasks from the Hugging Face Hub (``load_hub_task``;
            needs network access or local files, ``hub_kwargs`` are passed on).
        data_dir: "quick": folder of the shipped suite (default ``default_data_dir()``).
            "paper": a folder of local copies of the hub data sets, one sub-folder per task
            (``load_hub_task``'s ``data_dir``; default ``$TASKNEURON_HUB_DATA``, else the hub).

    Raises:
        UnknownTaskError: a name is not in the profile; the message lists the known names.
    """
    if isinstance(names, str):
        names = [names]
    if profile == "paper":
        known = list(PAPER_TASKS) + [n for n in HUB_TASKS if n not in PAPER_TASKS]
        chosen = _check_names(names, known, PAPER_TASKS, "hub tasks (HUB_TASKS)")
        return {name: load_hub_task(name, data_dir=data_dir, **hub_kwargs) for name in chosen}
    if profile != "quick":
        raise ValueError(f"profile must be 'quick' or 'paper', got {profile!r}")
    if hub_kwargs:
        raise TypeError(_quick_arguments_message(hub_kwargs))
    root = Path(data_dir) if data_dir is not None else default_data_dir()
    index = root / "tasks.json"
    if not index.exists():
        raise FileNotFoundError(
            f"no task suite at {index}; build it with "
            f"`python data/build_suite.py` or set TASKNEURON_DATA"
        )
    try:
        entries = json.loads(index.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise TaskDataError(f"{index}:{err.lineno}: invalid JSON ({err.msg})") from None
    by_name = {entry["name"]: entry for entry in entries}
    chosen = _check_names(names, list(by_name), list(by_name), f"tasks in {index}")
    tasks = {}
    for name in chosen:
        entry = by_name[name]
        parts = {
            s: read_jsonl(root / name / f"{s}.jsonl")
            for s in SPLIT_NAMES
            if (root / name / f"{s}.jsonl").exists()
        }
        if not parts:
            raise FileNotFoundError(f"{root / name}: no train/dev/test.jsonl for task {name!r}")
        tasks[name] = Task.from_records(
            name,
            None,
            entry.get("instruction", ""),
            category=entry.get("category", "generation"),
            metric=entry.get("metric"),
            labels=entry.get("labels"),
            family=entry.get("family"),
            description=entry.get("description", ""),
            pair_rule=entry.get("pair_rule") or "",
            splits=parts,
        )
    return tasks


def _check_names(names, known: list[str], default: Sequence[str], what: str) -> list[str]:
    if names is None:
        return list(default)
    unknown = [n for n in names if n not in known]
    if unknown:
        raise UnknownTaskError(f"unknown task name(s) {unknown}; known {what}: {', '.join(known)}")
    order = {name: i for i, name in enumerate(known)}
    return sorted(dict.fromkeys(names), key=order.__getitem__)
