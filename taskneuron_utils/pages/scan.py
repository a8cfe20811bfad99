"""What does a neuron do? Its top-activating examples and its statistics over a data set.

    ns = rel.top_k(0.01)                                   # a NeuronSet (or [(site, index), ...])
    top = tn.top_examples(model, tok, suite["addition"], ns, k=20)     # a long DataFrame
    stats = tn.neuron_stats(model, tok, [suite["addition"], suite["nli"]], ns)

The activation of a unit is what ``tn.trace`` keeps at its site: for the ``act`` site
(``layers.3.mlp.act``, ``act_fn(gate) * up``, the input of the down projection) that is
Neuronpedia's MLP neuron; a linear site's unit is its output. One forward pass a batch traces
only the sites of the given neurons and keeps, per neuron, a running top ``k`` (largest) and
bottom ``k`` (most negative: GLU units are signed) over token positions, and running sums for
the statistics (``running_top``), so memory is O(neurons x k), never O(tokens)
(``benchmarks/top_examples.py``).

Which positions count: every real token (padding never) but position 0 (as Neuronpedia: the
first position is an attention sink whose activations are outliers) and, for task data with
``skip_template=True``, the prompt template before the input (system prompt and instruction),
which is the same in every example and would fill the top k with copies of one position.
Ties are broken deterministically: equal activations rank by data order (example, then
position).

Data: a ``Split``, a ``Task`` (its test split, as in ``tn.evaluate``), a list or dict of them,
or a list of plain strings (tokenized with the tokenizer's special tokens; task ``None``).
"""

from __future__ import annotations

import inspect
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Union

import pandas as pd
import torch
from tqdm.auto import tqdm

from ..core.layout import Site, layout_of, weight_fingerprint
from ..hooks.tracing import trace
from ..neurons.neuron_set import NeuronSet
from ..core.placement import input_device
from .running_top import fresh_state, update
from .frames import Scan
from ..io.storage import load_artefact, save_artefact
from ..tasks import Encoded, Split, Task, collate, encode, prompt_ids
from ..errors import did_you_mean
from ..core.identity import content_hash

if TYPE_CHECKING:
    from torch import nn
    from transformers import PreTrainedTokenizerBase

# What a scan reads: a split, a task (its test split), plain strings, or a list / dict of those.
ScanData = Union[Split, Task, list[str], Sequence[Union[Split, Task, list[str]]], Mapping[str, Any]]
# The units: a NeuronSet made for the model, or (site name, unit index) pairs.
Units = Union[NeuronSet, Sequence[tuple[str, int]]]


@dataclass(frozen=True)
class Item:
    """One scanned sequence: ``ids`` (token ids), ``start`` (first counted position), its
    ``task`` (None for plain strings) and ``example`` (its index in that task's data)."""

    ids: list[int]
    start: int
    task: str | None
    example: int


def resolve_neurons(model, neurons) -> list[tuple[Site, int]]:
    """(Site, unit index) pairs, unique, in the given order (a NeuronSet: model order).

    Raises (one line, before any forward pass): NeuronSetMismatchError for a set made for
    another model; ValueError for an unknown site or no neurons; IndexError for an index out
    of range.
    """
    if isinstance(neurons, NeuronSet):
        neurons.check_fits(model)
        pairs = [(site, int(i)) for site, idx in neurons.indices.items() for i in idx]
    elif isinstance(neurons, tuple) and len(neurons) == 2 and isinstance(neurons[0], str):
        pairs = [neurons]
    else:
        pairs = list(neurons)
    layout = layout_of(model, "all")
    resolved, seen = [], set()
    for name, index in pairs:
        try:
            site = layout.site(name)
        except KeyError as err:
            raise ValueError(err.args[0]) from None
        if not 0 <= int(index) < site.n_neurons:
            raise IndexError(f"{name} has neurons 0..{site.n_neurons - 1}; got {int(index)}")
        if (name, int(index)) not in seen:
            seen.add((name, int(index)))
            resolved.append((site, int(index)))
    if not resolved:
        raise ValueError("no neurons given: pass a non-empty NeuronSet or [(site, index), ...]")
    return resolved


def data_items(tok, data, *, max_length: int = 512, skip_template: bool = True) -> list[Item]:
    """The sequences ``data`` stands for (see the module docstring), with their first counted
    position; raises ValueError when there are none."""
    if isinstance(data, Mapping):
        data = list(data.values())
    if isinstance(data, (Split, Task)) or (
        isinstance(data, list) and data and isinstance(data[0], str)
    ):
        data = [data]
    if not isinstance(data, (list, tuple)):
        raise TypeError(
            "data must be a Split, a Task, a list of strings, or a list / {name: ...} of "
            f"them, got {type(data).__name__}"
        )
    items = []
    for part in data:
        if isinstance(part, list) and all(isinstance(text, str) for text in part):
            items += [Item(_string_ids(tok, text, i), 1, None, i) for i, text in enumerate(part)]
            continue
        split = part.test if isinstance(part, Task) else part
        if not isinstance(split, Split) or split.task is None:
            raise TypeError(
                f"data must be Splits, Tasks or lists of strings, got {type(part).__name__}"
            )
        template = prompt_ids(tok, split.task.instruction, "")
        for i, example in enumerate(encode(tok, split, max_length=max_length)):
            start = _common_prefix(template, example.input_ids) if skip_template else 1
            items.append(Item(example.input_ids, max(start, 1), split.task.name, i))
    if not items:
        raise ValueError("the data set is empty: pass a non-empty Split, Task or list of strings")
    return items


def _string_ids(tok, text: str, index: int) -> list[int]:
    """The token ids of string ``index`` of the data, checked: text the tokenizer can read and
    that has at least one token (a sequence of none has no position to scan)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as err:
        raise ValueError(
            f"string {index} of the data is not valid text ({err.reason} at {err.start})"
        ) from None
    ids = tok(text).input_ids
    if not ids:
        raise ValueError(f"string {index} of the data ({text!r}) is empty: it has zero tokens")
    return ids


def _common_prefix(a: list[int], b: list[int]) -> int:
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return n


def scan(
    model: nn.Module,
    tok: PreTrainedTokenizerBase,
    data: ScanData,
    neurons: Units,
    *,
    k: int = 20,
    batch_size: int = 16,
    max_length: int = 512,
    skip_template: bool = True,
    checkpoint: str | os.PathLike | None = None,
    checkpoint_every: int = 25,
    keep_values: bool = False,
    progress: bool = True,
) -> Scan:
    """One pass over ``data``: per neuron, the top and bottom ``k`` positions and running sums.

    ``top_examples`` and ``neuron_stats`` are views of it; call it directly to get both from
    one pass. ``checkpoint``: a file the running state is saved to every ``checkpoint_every``
    batches (atomically); a run finding one made for the same model, data, neurons and options
    resumes from it, with a result identical to an uninterrupted run. ``keep_values`` also
    keeps every counted activation (``Scan.values``): O(tokens x neurons) memory, for the
    pages of a few neurons; it cannot be combined with a checkpoint.
    """
    for name, value in (
        ("k", k),
        ("batch_size", batch_size),
        ("checkpoint_every", checkpoint_every),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive int, got {value!r}")
    if keep_values and checkpoint is not None:
        raise ValueError(
            "keep_values keeps O(tokens) values, which a checkpoint does not hold; "
            "use one or the other"
        )
    pairs = resolve_neurons(model, neurons)
    items = data_items(tok, data, max_length=max_length, skip_template=skip_template)
    tasks = list(dict.fromkeys(item.task for item in items if item.task is not None))
    by_site: dict[str, list[int]] = {}
    for site, index in pairs:
        by_site.setdefault(site.name, []).append(index)
    # Columns grouped by site (model order), so each site's gathered block is contiguous.
    order = [
        (site, index)
        for site in layout_of(model, "all").sites
        for index in by_site.get(site.name, [])
    ]
    columns = {
        site.name: torch.tensor(by_site[site.name])
        for site in layout_of(model, "all").sites
        if site.name in by_site
    }
    # What a checkpoint must match (hashing the weights costs: only when there is one).
    key: dict[str, Any] = {}
    if checkpoint is not None:
        key = {
            "model": layout_of(model).model,
            "weights": weight_fingerprint(model),
            "data": _hash_items(items),
            "neurons": [(s.name, i) for s, i in order],
            "k": k,
            "batch_size": batch_size,
            "format": 2,
        }
    state = fresh_state(k, len(order), len(tasks))
    if checkpoint is not None and Path(checkpoint).exists():
        state = _resume(checkpoint, key)
    if keep_values:
        state["kept"] = []
    device = input_device(model)
    task_row: dict[str | None, int] = {task: row for row, task in enumerate(tasks)}
    starts = range(0, len(items), batch_size)
    bar = tqdm(
        total=len(starts), initial=state["batches_done"], desc="top examples", disable=not progress
    )
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode(), trace(model, keep=columns) as tr:
            for batch_index, start in enumerate(starts):
                if batch_index < state["batches_done"]:
                    continue
                chunk = items[start : start + batch_size]
                batch = collate(
                    [Encoded(item.ids, len(item.ids)) for item in chunk], tok.pad_token_id
                )
                model(
                    input_ids=batch["input_ids"].to(device),
                    attention_mask=batch["attention_mask"].to(device),
                    use_cache=False,
                )
                counted = _counted(chunk, batch["input_ids"].shape[1])  # (B, T) bool
                acts = _gather(tr, counted.reshape(-1).nonzero()[:, 0])  # (M, n)
                tr.clear()
                rows = [task_row.get(item.task, -1) for item in chunk]
                update(state, acts, counted, start, rows, k)
                state["batches_done"] = batch_index + 1
                bar.update(1)
                if checkpoint is not None and state["batches_done"] % checkpoint_every == 0:
                    _save(checkpoint, state, key)
    finally:
        model.train(was_training)
        bar.close()
    if checkpoint is not None:
        _save(checkpoint, state, key)
    return Scan(order, items, k, tasks, state)


def _gather(tr, positions: torch.Tensor) -> torch.Tensor:
    """float32 (M, n) on the CPU: the kept units of every traced site (``trace(keep=
    {site: units})``; one row each, sites in order) at the n flat ``positions`` of the batch
    (only those counted: fewer values to rank and sum). Filled block by block: torch.cat of 30
    blocks measured ~10x slower than these copies."""
    blocks = []
    for record in tr.values():
        kept = record.output
        flat = kept.reshape(-1, kept.shape[-1])  # (B * T, units): OPT's FFN runs on rows already
        blocks.append(flat.T.index_select(1, positions.to(flat.device)))
    out = torch.empty(sum(len(b) for b in blocks), len(positions))
    row = 0
    for block in blocks:
        out[row : row + len(block)].copy_(block)
        row += len(block)
    return out


def _counted(chunk: list[Item], width: int) -> torch.Tensor:
    mask = torch.zeros(len(chunk), width, dtype=torch.bool)
    for row, item in enumerate(chunk):
        mask[row, item.start : len(item.ids)] = True
    return mask


def _hash_items(items: list[Item]) -> str:
    return content_hash(str((item.ids, item.start, item.task)) for item in items)


def _save(path, state: dict, key: dict) -> None:
    tensors = {name: value for name, value in state.items() if isinstance(value, torch.Tensor)}
    save_artefact(
        path, "TopExamplesCheckpoint", tensors, {"key": key, "batches_done": state["batches_done"]}
    )


def _resume(path, key: dict) -> dict:
    tensors, meta = load_artefact(path, "TopExamplesCheckpoint")
    stored = json.loads(json.dumps(meta["key"]))
    differs = [name for name in key if stored.get(name) != json.loads(json.dumps(key[name]))]
    if differs:
        raise ValueError(
            f"checkpoint {path} belongs to another run (different "
            f"{', '.join(differs)}); delete it or pass another path. It was left "
            "untouched."
        )
    return {**tensors, "batches_done": meta["batches_done"]}


def top_examples(
    model: nn.Module,
    tok: PreTrainedTokenizerBase,
    data: ScanData,
    neurons: Units,
    *,
    k: int = 20,
    window: int = 8,
    **options: Any,
) -> pd.DataFrame:
    """For every neuron, the ``k`` token positions of ``data`` where it is largest, and the
    ``k`` where it is most negative, in one streamed pass (``scan``; its options apply:
    batch_size, max_length, skip_template, checkpoint, progress).

    Args:
        neurons: a NeuronSet made for ``model`` (any site kinds), or [(site name, index)].
        window: tokens of context either side of the token in ``context``.

    Returns:
        One row a (neuron, sign, rank): site, neuron, sign ("top": largest first; "bottom":
        most negative first), rank (1 = most extreme), activation (the site's value, float),
        task, example (index in that task's data), data_index (index in the scanned data),
        position (token index in the sequence), token_id, token (decoded), context (text
        with the token in ⟦ ⟧). A neuron with fewer counted positions than k has fewer rows.
    """
    _check_options("top_examples", options, taken=("k",))
    return scan(model, tok, data, neurons, k=k, **options).examples(tok, window)


def neuron_stats(
    model: nn.Module, tok: PreTrainedTokenizerBase, data: ScanData, neurons: Units, **options: Any
) -> pd.DataFrame:
    """Per-neuron statistics over the counted positions of ``data`` (``Scan.stats``): mean,
    std, firing rate, min, max, and the mean per task ("which tasks move this neuron")."""
    _check_options("neuron_stats", options, taken=("k",))
    return scan(model, tok, data, neurons, k=1, **options).stats()


def _check_options(owner: str, options, taken=()) -> None:
    """A one-line TypeError naming the ``options`` that are no option of ``scan`` (or are set by
    ``owner`` itself), before any work."""
    valid = [
        p.name
        for p in inspect.signature(scan).parameters.values()
        if p.kind is p.KEYWORD_ONLY and p.name not in taken
    ]
    unknown = [key for key in options if key not in valid]
    if unknown:
        raise TypeError(
            f"{owner} has no option {', '.join(map(repr, unknown))}"
            f"{did_you_mean(unknown, valid)}; its scan options are {', '.join(valid)}"
        )


def token_values(model, tok, ids: list[list[int]], site: str, neuron: int) -> list[list[float]]:
    """The neuron's activation at every position of each sequence (one plain forward per
    sequence batch); used to colour a page's examples and to check ``top_examples``."""
    ((site_obj, index),) = resolve_neurons(model, [(site, neuron)])
    out, device = [], input_device(model)
    with torch.inference_mode(), trace(model, keep={site_obj.name: [index]}) as tr:
        for start in range(0, len(ids), 16):
            chunk = ids[start : start + 16]
            batch = collate([Encoded(s, len(s)) for s in chunk], tok.pad_token_id)
            model(
                input_ids=batch["input_ids"].to(device),
                attention_mask=batch["attention_mask"].to(device),
                use_cache=False,
            )
            # (B, T, 1), or (B * T, 1) where the FFN runs on rows (OPT): one value a position
            values = tr[site_obj.name].output.float().cpu().reshape(batch["input_ids"].shape)
            out += [values[row, : len(s)].tolist() for row, s in enumerate(chunk)]
    return out
