"""The paper's data sets on the Hugging Face Hub (``HUB_TASKS``, in ``hub_specs``) and
``load_hub_task``.

Each ``HubSpec`` maps one hub data set's own columns onto ``{"input", "output"}`` records. The
same mapping reads local files in those columns (``source=`` / ``data_files=``), which is how
the hub path is used, and tested, without network access.

A folder of local copies of several data sets (``data_dir=``, or the environment variable
``TASKNEURON_HUB_DATA``) holds one sub-folder per task, named as in ``HUB_TASKS``, with one file
per hub split in the data set's own columns::

    hub_data/sst2/train.jsonl            # GLUE sst2: sentence, label, idx
    hub_data/sst2/validation.jsonl
    hub_data/mnli/validation_matched.jsonl
    hub_data/cnn_dailymail/{train,validation,test}.parquet

``datasets.load_dataset(path, config)[split].to_json(f"{task}/{split}.jsonl")`` writes such a
folder on a machine with network access; ``tests/fixtures/hub`` is a small one.
"""

from __future__ import annotations

import contextlib
import difflib
import inspect
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .data import SPLIT_NAMES, Task
from ..errors import HubUnavailableError, TaskDataError, UnknownTaskError
from .hub_specs import HUB_TASKS, HubSpec

HUB_DATA_ENV = "TASKNEURON_HUB_DATA"


# Split sizes carved from train when the hub has no such split: min(cap, fraction of train).
_CARVE = {"dev": (0.1, 1000), "test": (0.2, 2000)}
_LOCAL_BUILDERS = {
    ".jsonl": "json",
    ".json": "json",
    ".csv": "csv",
    ".tsv": "csv",
    ".parquet": "parquet",
}


def load_hub_task(
    name: str,
    split_sizes: Mapping[str, int | None] | Sequence[int | None] | None = None,
    *,
    seed: int = 0,
    cache_dir: str | os.PathLike | None = None,
    source: str | os.PathLike | None = None,
    data_files: str | Sequence | Mapping | None = None,
    data_dir: str | os.PathLike | None = None,
    **load_dataset_kwargs: Any,
) -> Task:
    """One of the paper's tasks (``HUB_TASKS``) as a Task, via ``datasets.load_dataset``.

    Args:
        split_sizes: examples to keep per split, ``{"train": 1000, "dev": 200, "test": 300}`` or
            a (train, dev, test) tuple; None (or a None entry) keeps the whole split. Subsets
            are a seeded shuffle of the hub split.
        source: a local file or folder with the data set's own columns (``HubSpec.columns``);
            a folder's files (train.*, dev.*, validation.*, test.*) are named like our splits
            or the hub's (validation.* is whatever the hub's validation split is for the task;
            other hub split names of the task, such as mnli's validation_matched.*, work too).
        data_files: passed to ``load_dataset("json" | "csv" | "parquet", data_files=...)``;
            keys may be our split names or the hub's. Local data goes through the same mapping.
        data_dir: a folder of local copies, one sub-folder per task (``data_dir/<name>/``, read
            as ``source``); default: ``$TASKNEURON_HUB_DATA`` when set. Ignored when
            ``source`` or ``data_files`` is given.
        load_dataset_kwargs: passed on (revision, token, ...).

    Raises:
        UnknownTaskError: the name is not in HUB_TASKS.
        HubUnavailableError: the hub cannot be reached (offline); says how to use local files.
        FileNotFoundError: ``data_dir`` (or ``$TASKNEURON_HUB_DATA``) has no folder for the task.
    """
    if name not in HUB_TASKS:
        raise UnknownTaskError(f"unknown hub task {name!r}; known: {', '.join(HUB_TASKS)}")
    _check_dataset_kwargs(load_dataset_kwargs)
    spec = HUB_TASKS[name]
    sizes = _split_sizes(split_sizes)
    if source is None and data_files is None:
        source = _local_copy(name, spec, data_dir)
    if source is not None or data_files is not None:
        dataset = _load_local(spec, source, data_files, cache_dir, load_dataset_kwargs)
    else:
        dataset = _load_from_hub(name, spec, cache_dir, load_dataset_kwargs)
    parts = _resolve_splits(name, spec, dataset, sizes, seed)
    return Task.from_records(
        name,
        None,
        spec.instruction,
        category=spec.category,
        metric=spec.metric,
        labels=spec.labels,
        family=spec.family,
        description=spec.description or f"{spec.path} ({spec.config})",
        splits=parts,
    )


def _check_dataset_kwargs(kwargs) -> None:
    """A key of ``load_dataset_kwargs`` that is no argument of ``load_dataset`` but nearly one
    of its or ours (``split_size``, ``revison``) is a one-line TypeError before any download.
    Other keys are the builder's options (csv's ``delimiter``...), and the builder names an
    unknown one itself. The match is strict (difflib cutoff 0.8) so that no option of the
    csv / json / parquet / text builders is taken for a misspelling."""
    import datasets

    own = ["split_sizes", "seed", "cache_dir", "source", "data_files", "data_dir"]
    named = [
        p.name
        for p in inspect.signature(datasets.load_dataset).parameters.values()
        if p.kind is not p.VAR_KEYWORD
    ]
    theirs = [p for p in named if p not in own and p not in ("path", "name", "split")]
    for key in kwargs:
        near = difflib.get_close_matches(key, own + theirs, n=1, cutoff=0.8)
        if key not in named and near:
            raise TypeError(
                f"load_hub_task has no argument {key!r} (did you mean {near[0]!r}?); it takes "
                f"{', '.join(own)} and load_dataset's {', '.join(theirs)}"
            )


def _local_copy(name: str, spec: HubSpec, data_dir) -> Path | None:
    """``data_dir/<name>`` (``data_dir`` defaulting to ``$TASKNEURON_HUB_DATA``), or None when
    neither is set."""
    origin = "data_dir"
    if data_dir is None:
        data_dir, origin = os.environ.get(HUB_DATA_ENV) or None, f"${HUB_DATA_ENV}"
    if data_dir is None:
        return None
    folder = Path(data_dir).expanduser() / name
    if not folder.is_dir():
        splits = sorted({"train", *spec.splits.values()})
        raise FileNotFoundError(
            f"hub task {name!r}: {origin} is {str(data_dir)!r} but it has no folder {name!r}; "
            f"put the data set {spec.path!r}{f' ({spec.config})' if spec.config else ''} there "
            f"as {', '.join(s + '.jsonl' for s in splits)} (or .csv/.parquet) with its own "
            f"columns {list(spec.columns)}, or unset {origin} to download it from the hub"
        )
    return folder


def _split_sizes(split_sizes) -> dict[str, int | None]:
    if split_sizes is None:
        return dict.fromkeys(SPLIT_NAMES)
    if isinstance(split_sizes, Mapping):
        unknown = set(split_sizes) - set(SPLIT_NAMES)
        if unknown:
            raise ValueError(f"unknown split names {sorted(unknown)} in split_sizes")
        return {s: split_sizes.get(s) for s in SPLIT_NAMES}
    split_sizes = tuple(split_sizes)
    if len(split_sizes) != 3:
        raise ValueError(f"split_sizes must be (train, dev, test), got {split_sizes}")
    return dict(zip(SPLIT_NAMES, split_sizes))


@contextlib.contextmanager
def _honour_offline_env():
    """``datasets`` and ``huggingface_hub`` read HF_HUB_OFFLINE once, at import; read it now so
    that setting it later (in a notebook, a test) avoids minutes of connection retries."""
    offline = any(
        os.environ.get(var, "").upper() in ("1", "ON", "YES", "TRUE")
        for var in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")
    )
    if not offline:
        yield False
        return
    import datasets.config
    import huggingface_hub.constants

    saved = datasets.config.HF_HUB_OFFLINE, huggingface_hub.constants.HF_HUB_OFFLINE
    datasets.config.HF_HUB_OFFLINE = huggingface_hub.constants.HF_HUB_OFFLINE = True
    try:
        yield True
    finally:
        datasets.config.HF_HUB_OFFLINE, huggingface_hub.constants.HF_HUB_OFFLINE = saved


def _load_from_hub(name: str, spec: HubSpec, cache_dir, kwargs):
    import datasets

    with _honour_offline_env() as offline:
        try:
            return datasets.load_dataset(spec.path, spec.config, cache_dir=cache_dir, **kwargs)
        except ConnectionError as err:  # also what datasets raises in offline mode
            reason = "HF_HUB_OFFLINE is set" if offline else f"{type(err).__name__}: {err}"
            example = {s: f"{s}.jsonl" for s in ("train", *spec.splits)}
            raise HubUnavailableError(
                f"hub task {name!r} needs network access to download {spec.path!r}"
                f"{f' ({spec.config})' if spec.config else ''} from the Hugging Face Hub, and it "
                f"is not in the local cache ({reason}). Without network access, pass local files "
                f"in the data set's own columns {list(spec.columns)} instead: "
                f"load_hub_task({name!r}, data_files={example}) or "
                f"load_hub_task({name!r}, source='folder/with/train.jsonl')"
            ) from err


def _load_local(spec: HubSpec, source, data_files, cache_dir, kwargs):
    import datasets

    if data_files is None:
        source = Path(source)
        if source.is_dir():
            # Keys stay the file stems; _resolve_splits maps them as it maps hub split names.
            data_files = {}
            stems = dict.fromkeys(("train", "dev", "validation", "test", *spec.splits.values()))
            for stem in stems:
                found = [p for p in sorted(source.glob(f"{stem}.*")) if p.suffix in _LOCAL_BUILDERS]
                if found:
                    data_files[stem] = str(found[0])
            if not data_files:
                raise FileNotFoundError(
                    f"{source}: no {'/'.join(stems)} files ({', '.join(_LOCAL_BUILDERS)})"
                )
        elif source.exists():
            data_files = {"train": str(source)}
        else:
            raise FileNotFoundError(f"{source}: no such file or folder")
    files = (
        data_files.values()
        if isinstance(data_files, Mapping)
        else [data_files]
        if isinstance(data_files, (str, os.PathLike))
        else data_files
    )
    suffixes = {Path(str(f)).suffix for f in files}
    builders = {_LOCAL_BUILDERS.get(s) for s in suffixes}
    if len(builders) != 1 or None in builders:
        raise ValueError(
            f"local files must all be one of {sorted(_LOCAL_BUILDERS)}, got {suffixes}"
        )
    builder = builders.pop()
    if ".tsv" in suffixes:
        kwargs = {"delimiter": "\t", **kwargs}
    if isinstance(data_files, Mapping):
        data_files = {k: str(v) for k, v in data_files.items()}
    return datasets.load_dataset(builder, data_files=data_files, cache_dir=cache_dir, **kwargs)


def _resolve_splits(name: str, spec: HubSpec, dataset, sizes, seed) -> dict[str, list[dict]]:
    """Map the loaded DatasetDict onto train/dev/test, carve missing ones from train, subsample
    and convert rows with ``spec.to_record``."""
    found = {}
    for split_name in SPLIT_NAMES:
        # The hub's split for ours first: GLUE's "test" split is unlabeled, and our test split
        # is its "validation" (TRAIN_VAL); a split named like ours is the fallback.
        for key in (spec.splits.get(split_name), split_name):
            if key is not None and key in dataset:
                found[split_name] = dataset[key]
                break
    if "train" in found:
        train = found["train"].shuffle(seed=seed)
        start = 0
        for split_name in ("dev", "test"):
            if split_name in found:
                continue
            fraction, cap = _CARVE[split_name]
            n = sizes[split_name] or min(cap, int(fraction * len(train)))
            found[split_name] = train.select(range(start, min(start + n, len(train))))
            start += n
        if start >= len(train) and len(train) > 0:
            raise TaskDataError(
                f"hub task {name!r}: train has {len(train)} rows, too few to "
                f"carve dev/test from; pass more data or smaller split_sizes"
            )
        found["train"] = train.select(range(start, len(train)))
    parts = {}
    for split_name, rows in found.items():
        parts[split_name] = _convert(name, spec, rows, sizes[split_name], seed)
    return parts


def _convert(name, spec: HubSpec, rows, n: int | None, seed: int) -> list[dict]:
    missing = [c for c in spec.columns if c not in rows.column_names]
    if missing:
        raise TaskDataError(
            f"hub task {name!r}: the data has columns {rows.column_names} but "
            f"needs {list(spec.columns)} (missing {missing})"
        )
    if n is not None:
        rows = rows.shuffle(seed=seed)
    records = []
    for i, row in enumerate(rows):
        if n is not None and len(records) >= n:
            break
        try:
            record = spec.to_record(row)
        except (KeyError, TypeError, ValueError) as err:
            raise TaskDataError(
                f"hub task {name!r}, row {i}: cannot map {dict(row)!r} "
                f"({type(err).__name__}: {err})"
            ) from None
        if record is not None:
            records.append(record)
    return records
