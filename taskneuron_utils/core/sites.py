"""Site: one group of FFN neurons of a block, and the parameters each neuron owns.

A linear site (gate, up, down, fc_in, fc_out) is the output units of one linear layer; its
neuron ``j`` owns row ``j`` of the weight in torch's (out, in) layout (column ``j`` of GPT-2's
``Conv1D``, whose weight is stored (in, out)) plus bias ``j``. The act site is the input units of
the FFN's output projection; its unit ``j`` owns row ``j`` (and bias ``j``) of every input
projection and column ``j`` of the output projection. ``Site.entries`` says which parameter
entries those are; ``read`` and ``write`` move them as one vector per neuron.

Sites are found by ``core.layout`` (``tn.ffn_sites``), from the family table.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import torch
from torch import nn

from .placement import check_in_memory, loaded


_SITE_NAME = re.compile(r"^layers\.(\d+)\.mlp\.(\w+)$")


def parse_site_name(name: str) -> tuple[int, str]:
    """``"layers.3.mlp.up"`` -> ``(3, "up")``."""
    match = _SITE_NAME.match(name)
    if not match:
        raise ValueError(f"{name!r} is not a site name of the form 'layers.<i>.mlp.<kind>'")
    return int(match.group(1)), match.group(2)


@dataclass(frozen=True, eq=False)
class Site:
    """A group of FFN neurons: the output units of one linear layer, or the intermediate
    activation (``act``, the input units of the output projection).

    Attributes:
        name: stable name, e.g. ``"layers.3.mlp.up"``; used in files, plots and messages.
        layer: block index.
        kind: ``gate``, ``up``, ``down``, ``fc_in``, ``fc_out`` or ``act``.
        n_neurons: number of units of this site.
        module: the ``nn.Linear`` (or ``Conv1D``) whose output (``port="output"``) or input
            (``port="input"``: the act site, on the output projection) the units are.
        offset: first output unit of the module that belongs to this site (non-zero only for the
            second half of a fused projection).
        transposed: the weight is stored (in, out) (the family's ``transposed``; GPT-2's Conv1D).
        port: ``"output"`` for the linear sites, ``"input"`` for act.
        parts: act only: the input projection sites (whose unit ``j`` feeds unit ``j``), then
            the output projection site (whose input column ``j`` reads it).
    """

    name: str
    layer: int
    kind: str
    n_neurons: int
    module: nn.Module = field(repr=False)
    offset: int = 0
    transposed: bool = False
    port: str = "output"
    parts: tuple[Site, ...] = field(default=(), repr=False)

    @property
    def in_features(self) -> int:
        """Width of the input the units are computed from (d_model for act)."""
        if self.port == "input":
            return self.parts[0].in_features
        weight = self.module.weight
        return weight.shape[0] if self.transposed else weight.shape[1]

    @property
    def n_params(self) -> int:
        """Numbers one neuron owns: the width of ``read``'s rows."""
        return sum(_width(param, dim) for param, dim, _ in self.entries([]))

    def output_slice(self, output: torch.Tensor) -> torch.Tensor:
        """This site's units of the module's output (input, for act), shape (..., n_neurons);
        a view."""
        return output[..., self.offset : self.offset + self.n_neurons]

    def entries(
        self, indices: torch.Tensor | list[int] | int
    ) -> list[tuple[nn.Parameter, int, torch.Tensor]]:
        """(parameter, dim, index) triples, in ``read`` order: ``param.index_select(dim, index)``
        are the given neurons' entries of ``param``.

        A linear site's neuron owns its weight row (Conv1D column) and bias entry. An act unit
        owns those of every input projection and its column of the output projection (a row of
        a Conv1D's (in, out) weight); the output projection's bias is shared by all units.
        """
        idx = self._index(indices)
        if self.port == "input":
            found = [entry for part in self.parts[:-1] for entry in part.entries(indices)]
            found.append((self.module.weight, 0 if self.transposed else 1, idx))
            return found
        idx = idx + self.offset
        found = [(self.module.weight, 1 if self.transposed else 0, idx)]
        if getattr(self.module, "bias", None) is not None:
            found.append((self.module.bias, 0, idx))
        return found

    def read(self, indices: torch.Tensor | list[int] | int) -> torch.Tensor:
        """Parameters of the given neurons, shape (len(indices), n_params).

        The vectorisation is, per ``entries``, each weight row (or column) followed by its bias
        entry, if any: ``[row, bias]`` for a linear site; ``[gate row, gate bias, up row, up
        bias, down column]`` for act (only the parts and biases the model has). Returns a
        float32 copy on the module's device (its execution device, when a ``device_map``
        offloads it: the stored values are read, ``placement.loaded``).
        """
        parts = []
        with loaded(self._modules()):
            for param, dim, index in self.entries(indices):
                values = param.detach().index_select(dim, index).float()
                parts.append(
                    values[:, None] if values.dim() == 1 else values.T if dim == 1 else values
                )
        return torch.cat(parts, dim=1)

    @torch.no_grad()
    def write(self, indices: torch.Tensor | list[int] | int, values: torch.Tensor) -> None:
        """Set the parameters of the given neurons from ``values`` (layout of ``read``)."""
        entries = self.entries(indices)
        check_in_memory(
            [param for param, _, _ in entries], f"writing the parameters of {self.name}"
        )
        values = torch.as_tensor(values).reshape(len(entries[0][2]), -1)
        widths = [_width(param, dim) for param, dim, _ in entries]
        if values.shape[1] != sum(widths):
            raise ValueError(
                f"{self.name}: expected {sum(widths)} values per neuron, got {values.shape[1]}"
            )
        for (param, dim, index), chunk in zip(entries, values.split(widths, dim=1)):
            chunk = chunk[:, 0] if param.dim() == 1 else chunk.T if dim == 1 else chunk
            param.index_copy_(dim, index, chunk.to(param))

    def _modules(self) -> list[nn.Module]:
        """The modules whose parameters ``entries`` names (the input projections too, for act)."""
        return [part.module for part in self.parts[:-1]] + [self.module]

    def _index(self, indices) -> torch.Tensor:
        idx = torch.as_tensor(indices, dtype=torch.long).reshape(-1)
        if len(idx) and (idx.min() < 0 or idx.max() >= self.n_neurons):
            raise IndexError(f"{self.name} has neurons 0..{self.n_neurons - 1}; got {idx.tolist()}")
        return idx.to(self.module.weight.device)


def _width(param: torch.Tensor, dim: int) -> int:
    """Numbers one index along ``dim`` selects from ``param`` (1 for a bias)."""
    return 1 if param.dim() == 1 else param.shape[1 - dim]
