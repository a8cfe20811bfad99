"""Relevance: per-neuron relevance sums over a data set, with their provenance.

``tn.attribute`` computes one; ``Relevance.top_k`` turns it into a NeuronSet; ``save`` / ``load``
keep it in a safetensors file (sums exact, provenance in its metadata). The sums are plain sums
over examples, so shards computed on disjoint data add up: ``rel_a + rel_b``.

Aggregations (``aggregation=``), with ``r_j`` the signed per-example estimate of the loss change
when unit ``j`` moves from its real activation ``a`` to the baseline ``a'``,
``r_j = -sum_t dL/da * (a - a') ~= L(a') - L(a)`` (``attribution.methods``):

- ``"mean_abs"`` (default): the mean over examples of ``|r_j|``, importance either way;
- ``"abs_mean"``: ``|mean of r_j|``, the absolute value of the summed total;
- ``"signed"``: the mean of ``r_j`` itself, largest first. ``r_j > 0`` means moving the unit to
  its baseline would RAISE the loss: the unit supports the right answer. Under the answer NLL
  it lowers the NLL of the answer; under ``metric="logit_diff"`` (``L = -LD``), ``r_j ~= LD(a) -
  LD(a')``, the share of the logit difference ``logit(A_1) - logit(B_1)`` the unit's real
  activation (against its value on the alternative) carries, so a positive score pushes the
  model toward the original's answer and away from the alternative's. Signed top-k therefore
  keeps the supporters and leaves out units that work against the answer, however large.
"""

from __future__ import annotations

import os

import pandas as pd
import torch

from ..core.layout import layout_difference, layout_for
from ..core.sites import parse_site_name
from ..errors import NeuronSetMismatchError
from ..core.identity import combine_hashes
from .neuron_set import NeuronSet, check_fraction
from ..io.storage import register_loader, load_artefact, save_artefact
from ..io import hub

AGGREGATIONS = ("mean_abs", "abs_mean", "signed")


class Relevance:
    """Per-neuron relevance sums over a data set, with provenance.

    Attributes:
        sum_abs: {site name: float64 tensor (n_neurons,)}: sum over examples of ``|r_j|``.
        sum_signed: {site name: float64 tensor (n_neurons,)}: sum over examples of ``r_j``.
        n_examples: examples summed. n_tokens: answer tokens summed.
        provenance: model, weights, data, options (JSON-serialisable).
        aggregation: how ``scores`` turns the sums into one score a neuron.
    """

    def __init__(
        self,
        sum_abs,
        sum_signed,
        n_examples: int,
        n_tokens: int,
        provenance: dict,
        aggregation: str = "mean_abs",
    ):
        if aggregation not in AGGREGATIONS:
            raise ValueError(f"aggregation must be one of {AGGREGATIONS}, got {aggregation!r}")
        self.sum_abs, self.sum_signed = sum_abs, sum_signed
        self.n_examples, self.n_tokens = n_examples, n_tokens
        self.provenance = provenance
        self.aggregation = aggregation

    @property
    def sizes(self) -> dict[str, int]:
        return {site: len(values) for site, values in self.sum_abs.items()}

    @property
    def scores(self) -> dict[str, torch.Tensor]:
        """{site name: float32 tensor (n_neurons,)}: relevance in nats per example (under
        ``"logit_diff"``: in logits), aggregated as ``self.aggregation`` says (module docstring);
        larger is more relevant whatever the aggregation."""
        sums = self.sum_abs if self.aggregation == "mean_abs" else self.sum_signed
        out = {}
        for site, total in sums.items():
            mean = total / max(self.n_examples, 1)
            out[site] = (mean.abs() if self.aggregation == "abs_mean" else mean).float().cpu()
        return out

    def with_aggregation(self, aggregation: str) -> Relevance:
        """The same sums, scored another way."""
        return Relevance(
            self.sum_abs,
            self.sum_signed,
            self.n_examples,
            self.n_tokens,
            self.provenance,
            aggregation,
        )

    def __repr__(self) -> str:
        return (
            f"Relevance({self.provenance.get('task')!r}, {self.n_examples} examples, "
            f"{self.n_tokens} answer tokens, {sum(self.sizes.values())} neurons, "
            f"aggregation={self.aggregation!r})"
        )

    def __add__(self, other: Relevance) -> Relevance:
        """Combine shards of the same model and options computed on disjoint data."""
        for key in ("model", "weights", "sites"):
            if self.provenance.get(key) != other.provenance.get(key):
                raise NeuronSetMismatchError(f"cannot add relevance computed with different {key}")
        metrics = [
            (rel.provenance.get("settings") or {}).get("metric", "nll") for rel in (self, other)
        ]
        if metrics[0] != metrics[1]:
            raise NeuronSetMismatchError(
                f"cannot add relevance of different losses (metric {metrics[0]!r} and {metrics[1]!r})"
            )
        if list(self.sum_abs) != list(other.sum_abs):
            difference = layout_difference(self.sizes, other.sizes, "first", "second")
            raise NeuronSetMismatchError(
                f"cannot add relevance computed on different sites: {difference}"
            )
        provenance = {
            **self.provenance,
            "data_hash": combine_hashes(
                self.provenance["data_hash"], other.provenance["data_hash"]
            ),
            "n_examples": self.n_examples + other.n_examples,
        }
        return Relevance(
            {s: self.sum_abs[s] + other.sum_abs[s] for s in self.sum_abs},
            {s: self.sum_signed[s] + other.sum_signed[s] for s in self.sum_signed},
            self.n_examples + other.n_examples,
            self.n_tokens + other.n_tokens,
            provenance,
            self.aggregation,
        )

    def to_frame(self) -> pd.DataFrame:
        """One row a neuron: site, layer, kind, neuron, score."""
        frames = []
        for site, values in self.scores.items():
            layer, kind = parse_site_name(site)
            frames.append(
                pd.DataFrame(
                    {
                        "site": site,
                        "layer": int(layer),
                        "kind": kind,
                        "neuron": range(len(values)),
                        "score": values.numpy(),
                    }
                )
            )
        return pd.concat(frames, ignore_index=True)

    def top_k(
        self, k: float = 0.10, per: str = "site", aggregation: str | None = None
    ) -> NeuronSet:
        """The task-specific neurons: the top fraction ``k`` by score, largest first.

        Args:
            k: fraction in (0, 1]; the paper uses 0.10 (its "k = 10" is a percentage).
            per: ``"site"`` keeps round(k * n) neurons of every site (every layer and linear
                keeps the same fraction, which the per-layer analyses need); ``"global"``
                keeps round(k * N) neurons of all N together, wherever they are.
            aggregation: how to score the neurons for this selection (``"mean_abs"``,
                ``"abs_mean"``, ``"signed"``: the mean signed score, so units that support the
                right answer come first; module docstring); None: ``self.aggregation``.

        Ties are broken by site order, then neuron index, so the result is deterministic.
        """
        check_fraction(k)
        if per not in ("site", "global"):
            raise ValueError(f"per must be 'site' or 'global', got {per!r}")
        if aggregation is not None and aggregation != self.aggregation:
            return self.with_aggregation(aggregation).top_k(k, per)
        scores = self.scores
        unmeasured = [site for site, values in scores.items() if values.isnan().any()]
        if unmeasured:
            raise ValueError(
                f"this relevance was measured on some units only (NaN at "
                f"{unmeasured[0]} and {len(unmeasured) - 1} other sites): compare "
                "it on those units; top-k needs every unit scored"
            )
        chosen = {}
        if per == "site":
            for site, values in scores.items():
                order = torch.sort(values, descending=True, stable=True).indices
                chosen[site] = order[: round(k * len(values))]
        else:
            flat = torch.cat(list(scores.values()))
            order = torch.sort(flat, descending=True, stable=True).indices[: round(k * len(flat))]
            start = 0
            for site, values in scores.items():
                in_site = order[(order >= start) & (order < start + len(values))]
                chosen[site] = in_site - start
                start += len(values)
        meta = {
            "model": self.provenance.get("model"),
            "task": self.provenance.get("task"),
            "k": k,
            "per": per,
            "aggregation": self.aggregation,
            "relevance": {
                key: self.provenance.get(key)
                for key in ("weights", "data_hash", "n_examples", "split")
            },
        }
        return NeuronSet(chosen, self.sizes, meta)

    def save(self, path: str | os.PathLike):
        """Write the sums and provenance to a safetensors file, atomically."""
        tensors = {f"sum_abs/{s}": v for s, v in self.sum_abs.items()}
        tensors.update({f"sum_signed/{s}": v for s, v in self.sum_signed.items()})
        meta = {
            "provenance": self.provenance,
            "n_examples": self.n_examples,
            "n_tokens": self.n_tokens,
            "aggregation": self.aggregation,
            "sites": list(self.sum_abs),
        }
        return save_artefact(path, "Relevance", tensors, meta)

    @classmethod
    def load(cls, path: str | os.PathLike, model=None) -> Relevance:
        """Read a file written by ``save``; with ``model``, check its layout matches."""
        tensors, meta = load_artefact(path, "Relevance")
        sites = meta["sites"]
        relevance = cls(
            {s: tensors[f"sum_abs/{s}"] for s in sites},
            {s: tensors[f"sum_signed/{s}"] for s in sites},
            meta["n_examples"],
            meta["n_tokens"],
            meta["provenance"],
            meta["aggregation"],
        )
        if model is not None:
            layout_for(model, relevance.sizes).check(
                relevance.sizes, made_for=relevance.provenance.get("model"), what="relevance"
            )
        return relevance

    def push_to_hub(self, repo_id: str, **kwargs) -> str:
        """Upload to a Hub model repository with a model card (``io.hub.push_to_hub``)."""

        return hub.push_to_hub(self, repo_id, **kwargs)

    @classmethod
    def from_hub(cls, repo_id: str | os.PathLike, model=None, **kwargs) -> Relevance:
        """Download relevance pushed by ``push_to_hub`` (or read a local folder of that
        layout); with ``model``, checked to fit it."""

        return hub.from_hub(repo_id, model, kind="Relevance", **kwargs)


register_loader("Relevance", Relevance.load)
