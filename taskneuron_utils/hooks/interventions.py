"""Switch neurons off (or turn them up or down) for the duration of a ``with`` block.

    with tn.deactivate(model, ns):                    # the selected neurons output 0
        scores = tn.evaluate(model, tok, task.test)
    with tn.deactivate(model, ns, mode="weight"):     # their parameters are 0
        ...
    with tn.scale(model, ns, 2.0):                    # their outputs are doubled
        ...

Two ways to deactivate a neuron, both restored exactly when the block ends (also when it raises):

- ``mode="activation"`` (default): ``tn.trace`` edits every site with selected neurons,
  multiplying its output by a fixed {0, 1} mask over its units (``hooks.Edit.scale``): a single
  broadcast multiply on the last dimension, so the cost does not grow with the number of
  neurons. Parameters are never touched.
- ``mode="weight"``: the neurons' parameters (``Site.entries``) are set to zero in place and
  copied back afterwards: weight rows (Conv1D columns) and bias entries; for an act unit, its
  rows of the input projections and its column of the output projection. For a linear layer, a
  unit whose whole row and bias are zero outputs exactly 0, and an act unit whose column is zero
  adds exactly 0, so both modes give the same outputs; weight mode needs no hooks, which helps
  with code that bypasses ``forward`` (compiled graphs, exported models).

- ``mode=tn.Ablation.mean(stats)`` / ``tn.Ablation.noise(stats, seed=0)`` (``baselines``):
  the neurons' outputs are replaced by their mean over a reference set, or redrawn from a
  Gaussian with that mean and std, through the same hooks; zero ablation can push a unit far
  off its distribution, these keep it near its typical values.

An act unit is switched off by a forward pre-hook on the output projection, which scales the
unit in the projection's input (``layers.3.mlp.act``, see ``tn.trace``).

Hooks run on every forward call, so both modes also act during ``model.generate`` (cached
decoding included).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
import math

import torch
from torch import nn

from ..core.layout import Site, layout_of
from .baselines import Ablation
from .tracing import Edit, trace
from ..neurons.neuron_set import NeuronSet
from ..core.placement import check_in_memory

MODES = ("activation", "weight")


@contextlib.contextmanager
def scale(model: nn.Module, neurons: NeuronSet, factor: float) -> Iterator[nn.Module]:
    """Multiply the outputs of ``neurons`` by ``factor`` inside the block; restored on exit.

    ``factor=0`` deactivates them (this is what ``deactivate`` uses), ``factor=2`` amplifies,
    ``0.5`` attenuates, ``1`` changes nothing. Every other output unit is multiplied by 1.

    Args:
        model: a causal LM whose FFN sites ``tn.ffn_sites(model)`` knows.
        neurons: a NeuronSet made for this model's layout.
        factor: a finite number (dimensionless multiplier).

    Yields:
        ``model``, for ``with tn.scale(model, ns, 2.0) as m: ...``.

    Raises:
        NeuronSetMismatchError: ``neurons`` was made for another layout.
    """
    neurons.check_fits(model)
    factor = float(factor)
    if not math.isfinite(factor):
        raise ValueError(f"factor must be a finite number, got {factor}")
    edits = {site.name: Edit.scale(idx, factor) for site, idx in _selected_sites(model, neurons)}
    if not edits:
        yield model
        return
    with trace(model, keep=False, edit=edits):
        yield model


@contextlib.contextmanager
def deactivate(
    model: nn.Module, neurons: NeuronSet, mode: str | Ablation = "activation"
) -> Iterator[nn.Module]:
    """Set the selected neurons' outputs to zero inside the block; the model is restored on exit.

    Args:
        model: a causal LM whose FFN sites ``tn.ffn_sites(model)`` knows.
        neurons: a NeuronSet made for this model's layout (an empty set changes nothing).
        mode: ``"activation"`` zeroes the outputs through forward hooks; ``"weight"`` zeroes the
            neurons' parameters (``Site.entries``) and writes the saved values back afterwards
            (bit-exact, in the parameters' own dtype); an ``Ablation`` (``tn.Ablation.mean(stats)``,
            ``tn.Ablation.noise(stats, seed)``) replaces the outputs by reference values instead
            of zero, through forward hooks.

    Yields:
        ``model``.

    Raises:
        NeuronSetMismatchError: ``neurons`` was made for another layout.
        ValueError: unknown ``mode``.
        OffloadedWeightsError: ``mode="weight"`` on neurons whose parameters a ``device_map``
            offloads (``placement``); activation mode works on such models.
    """
    if isinstance(mode, Ablation):
        neurons.check_fits(model)
        edits = {site.name: mode.edit(site, idx) for site, idx in _selected_sites(model, neurons)}
        with contextlib.ExitStack() as stack:
            if edits:
                stack.enter_context(trace(model, keep=False, edit=edits))
            yield model
        return
    if mode not in MODES:
        hint = (
            f"; for {mode} ablation pass mode=tn.Ablation.{mode}(tn.activation_stats(model, "
            "tok, reference_data))"
            if mode in ("mean", "noise")
            else ""
        )
        raise ValueError(f"mode must be one of {MODES} or a tn.Ablation, got {mode!r}{hint}")
    if mode == "activation":
        with scale(model, neurons, 0.0):
            yield model
        return
    neurons.check_fits(model)
    entries = [
        entry for site, idx in _selected_sites(model, neurons) for entry in site.entries(idx)
    ]
    check_in_memory([param for param, _, _ in entries], "deactivate(mode='weight')")
    saved = []  # (parameter, dim, index, original values), in the order they were zeroed
    try:
        with torch.no_grad():
            for param, dim, index in entries:
                # Save in the parameter's own dtype: restoring is then bit-exact.
                saved.append((param, dim, index, param.index_select(dim, index).clone()))
                param.index_fill_(dim, index, 0)
        yield model
    finally:
        with torch.no_grad():
            # Reverse order, so that overlapping saves (an act unit and a linear unit of the same
            # layer share entries) still restore the original.
            for param, dim, rows, values in reversed(saved):
                param.index_copy_(dim, rows, values)


def _selected_sites(model: nn.Module, neurons: NeuronSet) -> list[tuple[Site, torch.Tensor]]:
    """(site, selected indices) for every site with at least one selected neuron."""
    sites = layout_of(model, "all").by_name
    return [(sites[name], idx) for name, idx in neurons.indices.items() if len(idx)]
