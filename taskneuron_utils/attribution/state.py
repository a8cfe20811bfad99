"""Running sums of an attribution run, their checkpoints (save, resume, refuse another run's),
the hashes that name its data, and the analysis mode it holds the model in.

The state of a run is plain float64 sums, so a resumed run (or another process's shard) adds up
exactly:

    sum_abs, sum_signed: {site name: (n_neurons,)}: sums over examples of ``|r_j|`` and ``r_j``;
        NaN on the units a method does not measure (``neurons=`` of ``attribute``).
    extra: {name: tensor}: a method's own sums (integrated gradients' completeness residuals).
    n_examples, n_tokens, batches_done: counts.
"""

from __future__ import annotations

import contextlib

import torch

from ..io.storage import load_artefact, save_artefact
from ..core.identity import content_hash
from ..errors import AttributionError

COUNTS = ("n_examples", "n_tokens", "batches_done")


def fresh_state(
    sites, device, dtype, measured: dict | None = None, extra: dict | None = None
) -> dict:
    """Zero sums for ``sites``; with ``measured`` ({site name: bool (n,)}), NaN where False."""

    def zeros(site):
        values = torch.zeros(site.n_neurons, dtype=dtype, device=device)
        if measured is not None:
            values[~measured[site.name].to(device)] = float("nan")
        return values

    return {
        "sum_abs": {s.name: zeros(s) for s in sites},
        "sum_signed": {s.name: zeros(s) for s in sites},
        "extra": {
            name: torch.zeros(shape, dtype=dtype, device=device)
            for name, shape in (extra or {}).items()
        },
        "n_examples": 0,
        "n_tokens": 0,
        "batches_done": 0,
    }


def checkpoint_key(provenance: dict, batch_size: int) -> dict:
    """What a checkpoint must share with the run that resumes it. The default method's key is
    the one it had before other methods existed, so its old checkpoints still resume."""
    keys = ("model", "weights", "data_hash", "max_length", "sites")
    key = {**{k: provenance[k] for k in keys}, "batch_size": batch_size}
    if provenance.get("method", "grad_x_act") != "grad_x_act":
        key.update(method=provenance["method"], settings=provenance["settings"])
    if (provenance.get("compute") or {}).get("autocast"):  # absent before autocast existed
        key["autocast"] = provenance["compute"]["autocast"]
    return key


def save_checkpoint(path, state, provenance, batch_size) -> None:
    tensors = {f"sum_abs/{s}": v for s, v in state["sum_abs"].items()}
    tensors.update({f"sum_signed/{s}": v for s, v in state["sum_signed"].items()})
    tensors.update({f"extra/{name}": v for name, v in state["extra"].items()})
    meta = {"key": checkpoint_key(provenance, batch_size), **{k: state[k] for k in COUNTS}}
    save_artefact(path, "AttributionCheckpoint", tensors, meta)


def resume(path, provenance, batch_size, sites, device, dtype) -> dict:
    """The state saved in ``path``; AttributionError if it belongs to another run."""
    tensors, meta = load_artefact(path, "AttributionCheckpoint")
    expected = checkpoint_key(provenance, batch_size)
    differs = [k for k in {**meta["key"], **expected} if meta["key"].get(k) != expected.get(k)]
    # The key predates site kinds; the sites themselves are the names of the stored sums.
    stored = {name.split("/", 1)[1] for name in tensors if not name.startswith("extra/")}
    if stored != {site.name for site in sites}:
        differs.append("site kinds")
    if differs:
        raise AttributionError(
            f"checkpoint {path} belongs to another run (different {', '.join(differs)}); "
            "delete it or pass another checkpoint path. It was left untouched."
        )
    state = {k: meta[k] for k in COUNTS}
    for total in ("sum_abs", "sum_signed"):  # the file's order is sorted; keep model order
        state[total] = {
            site.name: tensors[f"{total}/{site.name}"].to(device=device, dtype=dtype)
            for site in sites
        }
    state["extra"] = {
        name.split("/", 1)[1]: value.to(device=device, dtype=dtype)
        for name, value in tensors.items()
        if name.startswith("extra/")
    }
    return state


def hash_encoded(encoded) -> str:
    """A short hash of encoded examples (token ids and answer starts): which data a run saw."""
    return content_hash(str((example.input_ids, example.answer_start)) for example in encoded)


@contextlib.contextmanager
def analysis_mode(model):
    """Eval mode and frozen parameters, restored afterwards; no parameter gradients are made."""
    was_training = model.training
    flags = [(p, p.requires_grad) for p in model.parameters()]
    model.eval()
    for param, _ in flags:
        param.requires_grad_(False)
    try:
        with torch.enable_grad():
            yield
    finally:
        for param, flag in flags:
            param.requires_grad_(flag)
        model.train(was_training)
