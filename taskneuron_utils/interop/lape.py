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

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import torch

from ..architectures import NeuronSetMismatchError, layout_of
from ..storage import ArtefactFileError, atomic_write


def lape_masks(sets) -> list[list[torch.Tensor]]:
    """``[[LongTensor per layer] per set]`` from NeuronSets over an ``act`` layout (a sequence,
    a {name: set} mapping, or one set)."""
    from ..neurons import NeuronSet

    if isinstance(sets, NeuronSet):
        sets = [sets]
    sets = list(sets.values()) if isinstance(sets, Mapping) else list(sets)
    if not sets:
        raise ValueError("no neuron sets to write in LAPE's format")
    masks = []
    for number, neurons in enumerate(sets):
        others = sorted({site.rsplit(".", 1)[-1] for site in neurons.sizes} - {"act"})
        if others:
            raise NeuronSetMismatchError(
                f"LAPE's format holds act units only; set {number} ({neurons.name!r}) has "
                f"{others} sites (select over kinds='act', e.g. tn.attribute(..., kinds='act'))"
            )
        masks.append([neurons.indices[site].clone() for site in neurons.sizes])
    return masks


def save_lape(sets, path: str | os.PathLike) -> Path:
    """Write ``sets`` (see ``lape_masks``) as LAPE's ``torch.save`` file, atomically."""
    masks = lape_masks(sets)
    return atomic_write(path, lambda tmp: torch.save(masks, tmp))


def load_lape(source, model, names: Sequence[str] | None = None) -> dict:
    """{name: NeuronSet over ``model``'s ``act`` layout} from a LAPE file (a path) or the list
    it holds. ``names``: one a mask (default ``lape_0``, ``lape_1``, ...).

    Raises:
        NeuronSetMismatchError: the file's layer count differs from the model's, or an index is
            past the width of its layer (the message names both numbers).
        ArtefactFileError: the file is not a list of lists of integer tensors.
    """
    from ..neurons import NeuronSet

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
    layout = layout_of(model, "act")
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
    return {
        name: NeuronSet(
            dict(zip(sites, mask)),
            layout,
            {"model": layout.model, "name": name, "selection": "lape import", "source": where},
        )
        for name, mask in zip(names, source)
    }
