"""What a neuron is compared with when it is "switched off": statistics of its activations on a
reference set, and the ablations built from them.

    stats = tn.activation_stats(model, tok, suite["addition"].train[:64])
    stats.mean["layers.3.mlp.up"]                        # (1536,) mean output of each unit
    with tn.deactivate(model, ns, mode=tn.Ablation.mean(stats)):     # mean ablation
        ...
    with tn.deactivate(model, ns, mode=tn.Ablation.noise(stats, seed=0)):  # Gaussian resample
        ...

Zero ablation (``mode="activation"``) sets a unit to a value it may never take; mean ablation
keeps it at its typical value, so the loss change measures the information the unit carries
rather than the shock of an off-distribution input. Statistics are taken over every real
token position (prompt and answer, padding excluded) of the reference examples.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from tqdm.auto import tqdm

from ..core.identity import content_hash
from ..core.layout import layout_of
from .tracing import Edit, trace
from ..core.placement import input_device
from ..tasks import Split, collate, encode, to_device

if TYPE_CHECKING:
    from torch import nn
    from transformers import PreTrainedTokenizerBase

ABLATIONS = ("mean", "noise")


@dataclass(frozen=True)
class ActivationStats:
    """Per-unit statistics over the token positions of a reference set.

    Attributes (each {site name: float32 (n_neurons,)}, in the site's output units):
        mean, std (population), mean_abs (mean |activation|), firing_rate (share of positions
        with activation > 0, as LAPE counts it; dimensionless). n_positions: positions counted.
    """

    mean: dict
    std: dict
    mean_abs: dict
    firing_rate: dict
    n_positions: int

    @property
    def fingerprint(self) -> str:
        """A short hash of the means and stds: which baseline a Relevance was computed with."""
        return content_hash(
            part
            for site in sorted(self.mean)
            for part in (site, self.mean[site].numpy().tobytes(), self.std[site].numpy().tobytes())
        )

    def check(self, sites) -> None:
        """ValueError, naming the first site, unless these statistics cover ``sites`` (Sites)
        with the same number of units."""
        for site in sites:
            if site.name not in self.mean:
                raise ValueError(
                    f"the baseline statistics have no site {site.name}; compute "
                    "them with tn.activation_stats(model, tok, data) on this model"
                )
            if self.mean[site.name].shape != (site.n_neurons,):
                raise ValueError(
                    f"the baseline has shape {tuple(self.mean[site.name].shape)} at "
                    f"{site.name}, whose {site.n_neurons} units need "
                    f"({site.n_neurons},)"
                )


def activation_stats(
    model: nn.Module,
    tok: PreTrainedTokenizerBase,
    data: Split,
    *,
    kinds: str | Iterable[str] | None = "all",
    batch_size: int = 8,
    max_length: int = 512,
    progress: bool = True,
) -> ActivationStats:
    """Mean, std, mean |activation| and firing rate of every unit of the sites of ``kinds``
    (default: all, act included) over the real token positions of ``data``; no gradients.
    Float64 sums; one forward pass per batch."""
    sites = list(layout_of(model, kinds).sites)
    encoded = encode(tok, data, max_length=max_length)
    if len(encoded) == 0:
        raise ValueError("no examples to take activation statistics on; pass a non-empty split")
    return stats_of_encoded(model, tok, encoded, sites, batch_size, progress)


def stats_of_encoded(
    model, tok, encoded, sites, batch_size: int = 8, progress: bool = False
) -> ActivationStats:
    """``activation_stats`` on already encoded examples and resolved Sites."""
    device = input_device(model)
    sums = {s.name: torch.zeros(4, s.n_neurons, dtype=torch.float64) for s in sites}
    count = 0
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), trace(model, sites) as tr:
            for start in tqdm(
                range(0, len(encoded), batch_size),
                desc="activation statistics",
                disable=not progress,
            ):
                batch = collate(encoded[start : start + batch_size], tok.pad_token_id)
                batch = to_device(batch, device)
                model.base_model(
                    input_ids=batch["input_ids"],
                    attention_mask=batch["attention_mask"],
                    use_cache=False,
                )
                real = batch["attention_mask"].reshape(-1).bool()
                count += int(real.sum())
                for name, record in tr.items():
                    a = record.output.reshape(real.numel(), -1)[real].double().cpu()
                    sums[name] += torch.stack(
                        [a.sum(0), (a * a).sum(0), a.abs().sum(0), (a > 0).double().sum(0)]
                    )
                tr.clear()
    finally:
        model.train(was_training)
    mean = {n: (v[0] / count) for n, v in sums.items()}
    std = {n: (v[1] / count - mean[n] ** 2).clamp_min(0).sqrt().float() for n, v in sums.items()}
    return ActivationStats(
        {n: m.float() for n, m in mean.items()},
        std,
        {n: (v[2] / count).float() for n, v in sums.items()},
        {n: (v[3] / count).float() for n, v in sums.items()},
        count,
    )


@dataclass(frozen=True)
class Ablation:
    """How ``tn.deactivate(mode=...)`` switches units off when not by zeroing them: ``"mean"``
    (each unit held at its reference mean) or ``"noise"`` (redrawn from a Gaussian with its
    reference mean and std at every position, seeded)."""

    kind: str
    stats: ActivationStats
    seed: int = 0

    def __post_init__(self):
        if self.kind not in ABLATIONS:
            raise ValueError(f"ablation kind must be one of {ABLATIONS}, got {self.kind!r}")
        if not isinstance(self.stats, ActivationStats):
            raise TypeError(
                "an Ablation needs tn.activation_stats(model, tok, data) as stats, "
                f"got {type(self.stats).__name__}"
            )

    @classmethod
    def mean(cls, stats: ActivationStats) -> Ablation:
        return cls("mean", stats)

    @classmethod
    def noise(cls, stats: ActivationStats, seed: int = 0) -> Ablation:
        return cls("noise", stats, seed)

    def edit(self, site, neurons: torch.Tensor) -> Edit:
        """The Edit that ablates ``neurons`` (site-local indices) of ``site`` this way."""
        self.stats.check([site])
        means = self.stats.mean[site.name][neurons]
        if self.kind == "mean":
            return Edit.mean(neurons, means)
        # One seed per site, so two sites never draw the same noise.
        seed = self.seed * 1_000_003 + int(content_hash([site.name])[:8], 16)
        return Edit.noise(neurons, means, self.stats.std[site.name][neurons], seed=seed)
