"""NeuronSet: a set of FFN neurons, named by site, that can be compared, sampled and saved.

A neuron is a (site name, index) pair, for example ``("layers.3.mlp.up", 1201)``. A NeuronSet
remembers the layout of the model it was made for (every site's name and neuron count), so that
random baselines can be matched per site and so that loading it into another model fails with a
message that names the difference. That layout is the model's sites of some kinds (by default the
linear sites; ``"act"`` for the intermediate activation; see ``tn.layout_of``): a set fits a
model when it has exactly the model's sites of the kinds it names.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

import pandas as pd
import torch

from ..core.identity import content_hash
from ..core.sites import parse_site_name
from ..core.layout import layout_difference, layout_for, layout_of
from ..errors import NeuronSetMismatchError
from ..io.storage import register_loader, atomic_write, load_artefact, save_artefact
from ..io import lape
from ..io import hub

__all__ = ["NeuronSet", "NeuronSetMismatchError", "layout_of", "parse_site_name"]


def check_fraction(k: float) -> float:
    """``k`` itself if it is a fraction of neurons in (0, 1]; else a ValueError that says so.
    The one check of every ``k`` (top-k, selections, experiments, the command line)."""
    if isinstance(k, bool) or not isinstance(k, (int, float)) or not 0 < k <= 1:
        raise ValueError(
            f"k is a fraction of neurons in (0, 1], got {k!r}; for the paper's top 10% use k=0.1"
        )
    return k


class NeuronSet:
    """Selected neurons of one model layout.

    Attributes:
        indices: {site name: sorted unique 1-D long tensor of neuron indices}; every site of the
            layout is present, possibly with an empty tensor.
        sizes: {site name: number of neurons of that site} (the model's layout, in model order).
        meta: provenance (model, task, k, selection rule, ...), JSON-serialisable.
    """

    def __init__(
        self,
        indices: Mapping[str, torch.Tensor | Sequence[int]],
        sizes: Mapping[str, int],
        meta: dict | None = None,
    ):
        unknown = set(indices) - set(sizes)
        if unknown:
            raise NeuronSetMismatchError(f"sites {sorted(unknown)} are not in the layout")
        self.sizes = dict(sizes)
        self.meta = dict(meta or {})
        self.indices = {}
        for site, n in self.sizes.items():
            idx = torch.as_tensor(indices.get(site, []), dtype=torch.long).reshape(-1)
            idx = torch.unique(idx)  # sorted
            if len(idx) and (idx[0] < 0 or idx[-1] >= n):
                raise IndexError(f"{site} has neurons 0..{n - 1}; got index {int(idx[-1])}")
            self.indices[site] = idx

    # --- construction -------------------------------------------------------------------

    @classmethod
    def empty(cls, model, meta: dict | None = None, *, kinds=None) -> NeuronSet:
        """No neurons, in the layout of ``model`` over ``kinds`` (``tn.layout_of``; None: the
        linear sites)."""
        layout = layout_of(model, kinds)
        return cls({}, layout, {"model": layout.model, **(meta or {})})

    @classmethod
    def random_like(
        cls, other: NeuronSet, seed: int, exclude: NeuronSet | None = None
    ) -> NeuronSet:
        """As many random neurons per site as ``other`` has, drawn uniformly without replacement.

        The draw depends only on ``seed`` and the layout (sites in model order), so it is
        reproducible. With ``exclude``, neurons of that set are never drawn.
        """
        generator = torch.Generator().manual_seed(seed)
        chosen = {}
        for site, n in other.sizes.items():
            pool = torch.arange(n)
            if exclude is not None:
                pool = pool[~torch.isin(pool, exclude.indices[site])]
            count = len(other.indices[site])
            if count > len(pool):
                raise ValueError(f"{site}: cannot draw {count} neurons from {len(pool)}")
            chosen[site] = pool[torch.randperm(len(pool), generator=generator)[:count]]
        meta = {
            "model": other.meta.get("model"),
            "selection": "random_like",
            "seed": seed,
            "matched_to": other.name,
        }
        return cls(chosen, other.sizes, meta)

    # --- views ------------------------------------------------------------------------------

    @property
    def name(self) -> str | None:
        """A short label for plots: the task name when there is one."""
        return self.meta.get("name") or self.meta.get("task")

    def __len__(self) -> int:
        return sum(len(idx) for idx in self.indices.values())

    def __repr__(self) -> str:
        total = sum(self.sizes.values())
        label = f"{self.name!r}, " if self.name else ""
        return (
            f"NeuronSet({label}{len(self)} of {total} neurons "
            f"({100 * len(self) / max(total, 1):.1f}%) over {len(self.sizes)} sites)"
        )

    def __contains__(self, neuron: tuple[str, int]) -> bool:
        site, index = neuron
        return bool(torch.isin(torch.tensor(index), self.indices.get(site, torch.empty(0))).item())

    def __eq__(self, other) -> bool:
        return (
            isinstance(other, NeuronSet)
            and self.sizes == other.sizes
            and all(torch.equal(self.indices[s], other.indices[s]) for s in self.sizes)
        )

    def fingerprint(self) -> str:
        """16 hex digits of sha256 over the layout and the indices (``core.identity``): every
        site's name, size and count of selected neurons, then those indices as little-endian
        int64, sites sorted by name. Equal sets (``==``) have equal fingerprints, a saved and
        loaded set too; ``meta`` is not hashed."""
        return content_hash(
            part
            for site, n in sorted(self.sizes.items())
            for idx in (self.indices[site],)
            for part in (f"{site}:{n}:{len(idx)}:", idx.numpy().astype("<i8").tobytes())
        )

    def counts(self) -> pd.DataFrame:
        """One row a site: site, layer, kind, selected, neurons, fraction."""
        rows = []
        for site, n in self.sizes.items():
            layer, kind = parse_site_name(site)
            selected = len(self.indices[site])
            rows.append(
                {
                    "site": site,
                    "layer": layer,
                    "kind": kind,
                    "selected": selected,
                    "neurons": n,
                    "fraction": selected / n,
                }
            )
        return pd.DataFrame(rows)

    def per_layer(self) -> pd.DataFrame:
        """One row a layer: selected, neurons, fraction (all kinds together)."""
        by_layer = self.counts().groupby("layer")[["selected", "neurons"]].sum()
        by_layer["fraction"] = by_layer["selected"] / by_layer["neurons"]
        return by_layer.reset_index()

    def to_frame(self) -> pd.DataFrame:
        """One row a neuron: site, layer, kind, neuron (int64 columns but site and kind)."""
        frames = []
        for site, idx in self.indices.items():
            layer, kind = parse_site_name(site)
            frames.append(
                pd.DataFrame({"site": site, "layer": layer, "kind": kind, "neuron": idx.numpy()})
            )
        return pd.concat(frames, ignore_index=True)

    @classmethod
    def from_frame(
        cls, frame: pd.DataFrame, model, meta: dict | None = None, *, kinds=None
    ) -> NeuronSet:
        """The set whose neurons are ``frame``'s (site, neuron) rows (``to_frame``, a CSV or
        Parquet file of ``to_csv`` / ``to_parquet``, read back), over ``model``'s layout of
        ``kinds`` (default: the kinds the sites name). Raises NeuronSetMismatchError naming a
        site the model lacks."""
        missing = {"site", "neuron"} - set(frame.columns)
        if missing:
            raise ValueError(
                f"a neuron frame needs the columns site and neuron; {sorted(missing)} missing"
            )
        names = list(dict.fromkeys(frame["site"]))
        for name in names:
            parse_site_name(name)
        layout = (
            layout_of(model, kinds)
            if kinds is not None
            else layout_for(model, dict.fromkeys(names, 0))
        )
        unknown = [name for name in names if name not in layout]
        if unknown:
            raise NeuronSetMismatchError(
                f"site {unknown[0]} is not a site of {layout.model!r} "
                f"({len(layout)} sites, e.g. {next(iter(layout))})"
            )
        indices = {
            name: torch.tensor(part.to_numpy(), dtype=torch.long)
            for name, part in frame.groupby("site", sort=False)["neuron"]
        }
        return cls(indices, layout, {"model": layout.model, **(meta or {})})

    def to_csv(self, path: str | os.PathLike):
        """``to_frame`` as a CSV file (one row a neuron), atomically; ``from_frame`` reads it."""
        frame = self.to_frame()
        return atomic_write(path, lambda tmp: frame.to_csv(tmp, index=False))

    def to_parquet(self, path: str | os.PathLike):
        """``to_frame`` as a Parquet file (needs pyarrow, which ``datasets`` brings), atomically."""
        frame = self.to_frame()
        return atomic_write(path, lambda tmp: frame.to_parquet(tmp, index=False))

    # --- set algebra --------------------------------------------------------------------

    def _combine(self, other: NeuronSet, op: str) -> NeuronSet:
        self.check_same_layout(other)
        combined = {}
        for site in self.sizes:
            a, b = self.indices[site], other.indices[site]
            if op == "union":
                combined[site] = torch.cat([a, b])
            elif op == "intersection":
                combined[site] = a[torch.isin(a, b)]
            else:
                combined[site] = a[~torch.isin(a, b)]
        meta = {"model": self.meta.get("model"), "name": f"{self.name} {op} {other.name}"}
        return NeuronSet(combined, self.sizes, meta)

    def union(self, other: NeuronSet) -> NeuronSet:
        return self._combine(other, "union")

    def intersection(self, other: NeuronSet) -> NeuronSet:
        return self._combine(other, "intersection")

    def difference(self, other: NeuronSet) -> NeuronSet:
        return self._combine(other, "difference")

    __or__, __and__, __sub__ = union, intersection, difference

    def jaccard(self, other: NeuronSet) -> float:
        """|A ∩ B| / |A ∪ B| over (site, index) pairs; 0.0 when both are empty."""
        union = len(self | other)
        return len(self & other) / union if union else 0.0

    # --- compatibility and files -------------------------------------------------------------

    def check_same_layout(self, other: NeuronSet) -> None:
        if self.sizes != other.sizes:
            raise NeuronSetMismatchError(
                "the two neuron sets come from different model layouts: "
                + layout_difference(self.sizes, other.sizes, "first", "second")
            )

    def check_fits(self, model) -> None:
        """Raise ``NeuronSetMismatchError`` naming the difference if ``model``'s layout over
        this set's site kinds is another one."""
        layout_for(model, self.sizes).check(self.sizes, made_for=self.meta.get("model"))

    def save(self, path: str | os.PathLike):
        """Write a safetensors file (one index tensor a site) with the layout and meta; atomic."""
        tensors = {site: idx for site, idx in self.indices.items()}
        return save_artefact(path, "NeuronSet", tensors, {"sizes": self.sizes, "meta": self.meta})

    @classmethod
    def load(cls, path: str | os.PathLike, model=None) -> NeuronSet:
        """Read a file written by ``save``; with ``model``, check that it fits that model."""
        tensors, stored = load_artefact(path, "NeuronSet")
        sizes = {site: int(n) for site, n in stored["sizes"].items()}
        missing = set(sizes) - set(tensors)
        if missing:
            raise NeuronSetMismatchError(f"{path} lacks the index tensors of {sorted(missing)[:3]}")
        neurons = cls(tensors, sizes, stored["meta"])
        if model is not None:
            neurons.check_fits(model)
        return neurons

    # --- other tools' formats (taskneuron_utils.interop) ---------------------------------

    @classmethod
    def from_lape(cls, source, model, names=None) -> dict[str, NeuronSet]:
        """{name: NeuronSet} from LAPE's ``torch.save`` file (or the list it holds): one set a
        language / task, over ``model``'s ``act`` units (``io.lape.load_lape``)."""

        layout = layout_of(model, "act")
        where = str(source) if isinstance(source, (str, os.PathLike)) else "the LAPE masks"
        return {
            name: cls(
                indices,
                layout,
                {"model": layout.model, "name": name, "selection": "lape import", "source": where},
            )
            for name, indices in lape.load_lape(source, layout, names).items()
        }

    def to_lape(self) -> list[torch.Tensor]:
        """LAPE's mask of this ``act``-unit set: one index tensor a layer. Several sets, as
        LAPE's file: ``NeuronSet.save_lape([a, b], path)``."""

        return lape.lape_masks({self.name or "set 0": self.indices})[0]

    @staticmethod
    def save_lape(sets, path: str | os.PathLike):
        """Write NeuronSets (a list, a {name: set} dict or one set) as one LAPE file."""

        if isinstance(sets, NeuronSet):
            sets = [sets]
        if not isinstance(sets, Mapping):
            sets = {f"set {i} ({s.name!r})": s for i, s in enumerate(sets)}
        return lape.save_lape({name: s.indices for name, s in sets.items()}, path)

    def push_to_hub(self, repo_id: str, **kwargs) -> str:
        """Upload to a Hub model repository with a model card (``io.hub.push_to_hub``)."""

        return hub.push_to_hub(self, repo_id, **kwargs)

    @classmethod
    def from_hub(cls, repo_id, model=None, **kwargs) -> NeuronSet:
        """Download a set pushed by ``push_to_hub`` (or read a local folder of that layout)."""

        return hub.from_hub(repo_id, model, kind="NeuronSet", **kwargs)


register_loader("NeuronSet", NeuronSet.load)
