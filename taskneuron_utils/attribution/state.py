"""Running sums of an attribution run, their checkpoints (save, resume, refuse another run's),
the hashes that name its data, and the analysis mode it holds the model in.

The state of a run (``RunningSums``) is plain float64 sums, so a resumed run (or another
process's shard) adds up exactly.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field

import torch

from ..core.parallel import gather_sum
from ..core.placement import only_trainable
from ..io.storage import load_artefact, save_artefact
from ..core.identity import content_hash
from ..errors import AttributionError

COUNTS = ("n_examples", "n_tokens", "batches_done")


@dataclass
class RunningSums:
    """The state of a run: float64 sums over examples (NaN on units a method does not measure).

    Attributes:
        sum_abs, sum_signed: {site name: (n_neurons,)} sums of ``|r_j|`` and ``r_j`` (nats).
        extra: {name: tensor}: a method's own sums (integrated gradients' residuals).
        n_examples, n_tokens, batches_done: counts (answer tokens; batches of this run).
    """

    sum_abs: dict[str, torch.Tensor]
    sum_signed: dict[str, torch.Tensor]
    extra: dict[str, torch.Tensor] = field(default_factory=dict)
    n_examples: int = 0
    n_tokens: int = 0
    batches_done: int = 0

    @classmethod
    def fresh(
        cls, sites, device, dtype, measured: dict | None = None, extra: dict | None = None
    ) -> RunningSums:
        """Zero sums for ``sites``; with ``measured`` ({site name: bool (n,)}), NaN where False;
        ``extra``: {name: shape} of a method's own sums."""

        def zeros(site):
            values = torch.zeros(site.n_neurons, dtype=dtype, device=device)
            if measured is not None:
                values[~measured[site.name].to(device)] = float("nan")
            return values

        return cls(
            {s.name: zeros(s) for s in sites},
            {s.name: zeros(s) for s in sites},
            {
                n: torch.zeros(shape, dtype=dtype, device=device)
                for n, shape in (extra or {}).items()
            },
        )

    def add(self, name: str, r: torch.Tensor, batch_index: int, idx=None) -> None:
        """Add per-example values ``r`` (B, n), or (B, len(idx)) for the units ``idx``, of one
        site to both sums. The one finite check of every method."""
        if not torch.isfinite(r).all():
            raise AttributionError(
                f"non-finite gradients at {name} in batch {batch_index}; the model may "
                "overflow in this dtype: try dtype=torch.float32 or bfloat16 instead of float16"
            )
        # .to(target): dtype and device (a device_map may run the site on another device).
        for target, values in (
            (self.sum_abs[name], r.abs().sum(0)),
            (self.sum_signed[name], r.sum(0)),
        ):
            if idx is None:
                target += values.to(target)
            else:
                target[idx.to(target.device)] += values.to(target)

    def count(self, n_examples: int, n_tokens: int) -> None:
        self.n_examples += n_examples
        self.n_tokens += n_tokens

    def all_reduce(self, device) -> None:
        """Replace every sum and count by its total over the ranks (added in rank order, so every
        rank ends with the identical float64 total)."""
        names = list(self.sum_abs)
        totals = [self.sum_abs[n] for n in names] + [self.sum_signed[n] for n in names]
        totals += list(self.extra.values())
        summed, (self.n_examples, self.n_tokens) = gather_sum(
            totals, [self.n_examples, self.n_tokens], device
        )
        pieces = iter(summed)
        self.sum_abs = {name: next(pieces) for name in names}
        self.sum_signed = {name: next(pieces) for name in names}
        self.extra = {name: next(pieces) for name in self.extra}

    def save(self, path, provenance: dict, batch_size: int) -> None:
        """A checkpoint, atomically: the sums and counts, and the key a resuming run must match."""
        tensors = {f"sum_abs/{s}": v for s, v in self.sum_abs.items()}
        tensors.update({f"sum_signed/{s}": v for s, v in self.sum_signed.items()})
        tensors.update({f"extra/{name}": v for name, v in self.extra.items()})
        meta = {
            "key": checkpoint_key(provenance, batch_size),
            **{k: getattr(self, k) for k in COUNTS},
        }
        save_artefact(path, "AttributionCheckpoint", tensors, meta)

    @classmethod
    def resume(cls, path, provenance, batch_size, sites, device, dtype) -> RunningSums:
        """The sums saved in ``path``; AttributionError if it belongs to another run."""
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

        def total(prefix):  # the file's order is sorted; keep model order
            return {
                site.name: tensors[f"{prefix}/{site.name}"].to(device=device, dtype=dtype)
                for site in sites
            }

        extra = {
            name.split("/", 1)[1]: value.to(device=device, dtype=dtype)
            for name, value in tensors.items()
            if name.startswith("extra/")
        }
        return cls(total("sum_abs"), total("sum_signed"), extra, *(meta[k] for k in COUNTS))


def checkpoint_key(provenance: dict, batch_size: int) -> dict:
    """What a checkpoint must share with the run that resumes it. The default method's key is
    the one it had before other methods existed, so its old checkpoints still resume."""
    keys = ("model", "weights", "data_hash", "max_length", "sites")
    key = {**{k: provenance[k] for k in keys}, "batch_size": batch_size}
    settings = provenance.get("settings") or {}
    if provenance.get("method", "grad_x_act") != "grad_x_act" or "metric" in settings:
        key.update(method=provenance["method"], settings=provenance["settings"])
    if (provenance.get("compute") or {}).get("autocast"):  # absent before autocast existed
        key["autocast"] = provenance["compute"]["autocast"]
    return key


def hash_encoded(encoded) -> str:
    """A short hash of encoded examples (token ids and answer starts): which data a run saw."""
    return content_hash(str((example.input_ids, example.answer_start)) for example in encoded)


@contextlib.contextmanager
def analysis_mode(model):
    """Eval mode and frozen parameters, restored afterwards; no parameter gradients are made."""
    was_training = model.training
    model.eval()
    try:
        with only_trainable(model, drop_grads=False), torch.enable_grad():
            yield
    finally:
        model.train(was_training)
