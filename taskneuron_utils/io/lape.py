"""LAPE's neuron files (Tang et al. 2024, "Language-Specific Neurons"): read and write.

LAPE's ``identify.py`` saves, with ``torch.save``, one mask a language (here: a task)::

    [                                   # one entry a language / task
        [LongTensor, LongTensor, ...],  # one tensor a layer: indices of the selected units
        ...
    ]

over the FFN intermediate activation, our ``act`` site (``layers.i.mlp.act``: the input of the
down projection, ``act_fn(gate) * up``). A NeuronSet over the ``act`` layout of a model maps onto
it one to one: layer ``i``'s tensor is ``indices["layers.<i>.mlp.act"]``. The files carry no
names, model or layout; ``load_lape`` therefore takes the model (whose layer count and width the
file must match) and optional names.
"""

from __future__ import annotations

import io
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import torch

from ..core.layout import NeuronLayout
from ..core.sites import parse_site_name
from ..errors import ArtefactFileError, NeuronSetMismatchError
from .storage import atomic_write

Indices = Mapping[str, torch.Tensor]  # {site name: 1-D long tensor of unit indices}


def lape_masks(sets: Mapping[str, Indices]) -> list[list[torch.Tensor]]:
    """``[[LongTensor per layer] per set]`` from ``{set name: {site: indices}}`` over an ``act``
    layout (sites in layer order, as a ``NeuronSet``'s ``indices`` are)."""

    if not sets:
        raise ValueError("no neuron sets to write in LAPE's format")
    masks = []
    for name, indices in sets.items():
        others = sorted({parse_site_name(site)[1] for site in indices} - {"act"})
        if others:
            raise NeuronSetMismatchError(
                f"LAPE's format holds act units only; set {name!r} has "
                f"{others} sites (select over kinds='act', e.g. tn.attribute(..., kinds='act'))"
            )
        masks.append([idx.clone() for idx in indices.values()])
    return masks


def save_lape(sets: Mapping[str, Indices], path: str | os.PathLike) -> Path:
    """Write ``sets`` (see ``lape_masks``) as LAPE's ``torch.save`` file, atomically.

    Saved to memory first: ``torch.save`` to a path names its archive after the file (here the
    temporary name, different every time) and reports a full disk as a bare C++ stream error;
    the bytes are then written as any other file (same bytes every time, errors naming
    ``path``)."""
    masks = lape_masks(sets)
    buffer = io.BytesIO()
    torch.save(masks, buffer)
    payload = buffer.getvalue()
    return atomic_write(path, lambda tmp: Path(tmp).write_bytes(payload))


def load_lape(
    source, layout: NeuronLayout, names: Sequence[str] | None = None
) -> dict[str, dict[str, torch.Tensor]]:
    """``{name: {site: indices}}`` over ``layout`` (a model's ``act`` layout) from a LAPE file (a
    path) or the list it holds. ``names``: one a mask (default ``lape_0``, ``lape_1``, ...).

    Raises:
        NeuronSetMismatchError: the file's layer count differs from the layout's, or an index is
            past the width of its layer (the message names both numbers).
        ArtefactFileError: the file is not a list of lists of integer tensors.
    """

    where = str(source) if isinstance(source, (str, os.PathLike)) else "the LAPE masks"
    if isinstance(source, (str, os.PathLike)):
        if not Path(source).exists():
            raise ArtefactFileError(f"{source} does not exist.")
        source = torch.load(source, map_location="cpu", weights_only=True)
    if (
        isinstance(source, torch.Tensor)
        or not isinstance(source, Sequence)
        or not all(
            isinstance(mask, Sequence) and all(isinstance(t, torch.Tensor) for t in mask)
            for mask in source
        )
    ):
        raise ArtefactFileError(
            f"{where} is not LAPE's format, a list (one entry a language "
            f"or task) of lists (one a layer) of index tensors"
        )
    sites = list(layout)
    names = list(names) if names is not None else [f"lape_{i}" for i in range(len(source))]
    if len(names) != len(source):
        raise ValueError(f"{len(names)} names for the {len(source)} masks of {where}")
    for name, mask in zip(names, source):
        if len(mask) != len(sites):
            raise NeuronSetMismatchError(
                f"{where}: mask {name!r} has {len(mask)} layers, model {layout.model!r} has "
                f"{len(sites)}"
            )
        for site, idx in zip(sites, mask):
            if idx.is_floating_point() or (
                len(idx) and (idx.min() < 0 or idx.max() >= layout[site])
            ):
                raise NeuronSetMismatchError(
                    f"{where}: mask {name!r} at {site} holds index "
                    f"{idx.max().item() if len(idx) else '?'}, but the model's layer is "
                    f"{layout[site]} units wide (integer indices 0..{layout[site] - 1})"
                )
    return {name: dict(zip(sites, mask)) for name, mask in zip(names, source)}
