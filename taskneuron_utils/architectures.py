"""Where the FFN neurons live, for every supported model family.

A *neuron* is one output unit of a linear layer inside a transformer block's feed-forward
network. Each such linear layer is a *site* with a stable, readable name:

    layers.{i}.mlp.gate | up | down      gate/up/down FFNs (Llama, Mistral, Qwen2, Gemma, Phi-3)
    layers.{i}.mlp.fc_in | fc_out        two-matrix FFNs (GPT-2, Bloom, GPT-NeoX, OPT)

Neuron ``j`` of a site owns row ``j`` of the weight in torch's (out, in) layout (column ``j`` of
GPT-2's ``Conv1D``, whose weight is stored (in, out)) plus bias ``j`` when there is a bias.

All family knowledge is in one declarative table, ``FAMILIES``. To support another family,
register a ``Family`` (see ``register_family``); nothing else needs to change.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn


@dataclass(frozen=True)
class Family:
    """How to find the FFN sites of one model family.

    ``model_types`` are the ``config.model_type`` values of the family. ``blocks`` is the dotted
    path from the top-level model to the list of transformer blocks. ``sites`` maps a site kind
    to the dotted path of its linear layer inside a block. ``fused_halves`` maps a kind to
    (path, half) for projections that compute two sites at once, such as Phi-3's
    ``gate_up_proj`` (half 0 is the gate, half 1 the up projection).
    """

    name: str
    model_types: tuple[str, ...]
    blocks: str
    sites: dict[str, str]
    fused_halves: dict[str, tuple[str, int]] = field(default_factory=dict)


FAMILIES: dict[str, Family] = {}


def register_family(family: Family) -> Family:
    """Add (or replace) a model family, so that ``ffn_sites`` understands its models.

    Example, for a hypothetical ``mymodel`` whose blocks live at ``backbone.blocks`` with an
    FFN made of ``ffn.w_in`` and ``ffn.w_out``::

        tn.register_family(tn.Family(
            name="mymodel", model_types=("mymodel",), blocks="backbone.blocks",
            sites={"fc_in": "ffn.w_in", "fc_out": "ffn.w_out"}))
    """
    for model_type in family.model_types:
        for other in FAMILIES.values():
            if other.name != family.name and model_type in other.model_types:
                raise ValueError(
                    f"model_type {model_type!r} already belongs to family {other.name!r}"
                )
    FAMILIES[family.name] = family
    return family


_GATED = {"gate": "mlp.gate_proj", "up": "mlp.up_proj", "down": "mlp.down_proj"}

for _family in (
    Family("llama", ("llama",), "model.layers", _GATED),
    Family("mistral", ("mistral",), "model.layers", _GATED),
    Family("qwen2", ("qwen2",), "model.layers", _GATED),
    Family("gemma", ("gemma", "gemma2"), "model.layers", _GATED),
    Family(
        "phi3",
        ("phi3",),
        "model.layers",
        {"down": "mlp.down_proj"},
        fused_halves={"gate": ("mlp.gate_up_proj", 0), "up": ("mlp.gate_up_proj", 1)},
    ),
    Family("gpt2", ("gpt2",), "transformer.h", {"fc_in": "mlp.c_fc", "fc_out": "mlp.c_proj"}),
    Family(
        "bloom",
        ("bloom",),
        "transformer.h",
        {"fc_in": "mlp.dense_h_to_4h", "fc_out": "mlp.dense_4h_to_h"},
    ),
    Family(
        "gpt_neox",
        ("gpt_neox",),
        "gpt_neox.layers",
        {"fc_in": "mlp.dense_h_to_4h", "fc_out": "mlp.dense_4h_to_h"},
    ),
    Family("opt", ("opt",), "model.decoder.layers", {"fc_in": "fc1", "fc_out": "fc2"}),
):
    register_family(_family)

# Sites are listed in the order data flows through a block.
KIND_ORDER = ("gate", "up", "down", "fc_in", "fc_out")


class UnsupportedArchitectureError(ValueError):
    """The model's family is not in the table; the message says how to register it."""


@dataclass(frozen=True, eq=False)
class Site:
    """One FFN linear layer whose output units are neurons.

    Attributes:
        name: stable name, e.g. ``"layers.3.mlp.up"``; used in files, plots and messages.
        layer: block index.
        kind: ``gate``, ``up``, ``down``, ``fc_in`` or ``fc_out``.
        n_neurons: number of output units of this site.
        module: the ``nn.Linear`` (or ``Conv1D``) that computes them.
        offset: first output unit of the module that belongs to this site (non-zero only for the
            second half of a fused projection).
    """

    name: str
    layer: int
    kind: str
    n_neurons: int
    module: nn.Module = field(repr=False)
    offset: int = 0

    @property
    def transposed(self) -> bool:
        """True for GPT-2's Conv1D, whose weight is stored (in, out)."""
        return not isinstance(self.module, nn.Linear)

    @property
    def in_features(self) -> int:
        weight = self.module.weight
        return weight.shape[0] if self.transposed else weight.shape[1]

    def output_slice(self, output: torch.Tensor) -> torch.Tensor:
        """This site's units of the module's output, shape (..., n_neurons); a view."""
        return output[..., self.offset : self.offset + self.n_neurons]

    def parameter_rows(self) -> list[tuple[nn.Parameter, int]]:
        """(parameter, dim) pairs: along ``dim``, entry ``offset + j`` belongs to neuron ``j``."""
        rows = [(self.module.weight, 1 if self.transposed else 0)]
        if getattr(self.module, "bias", None) is not None:
            rows.append((self.module.bias, 0))
        return rows

    def read(self, indices: torch.Tensor | list[int] | int) -> torch.Tensor:
        """Parameters of the given neurons, shape (len(indices), in_features [+ 1 for bias]).

        The vectorisation is the weight row (or Conv1D column) followed by the bias, if any.
        Returns a float32 copy on the module's device.
        """
        idx = self._index(indices)
        parts = [p.detach().index_select(dim, idx).float() for p, dim in self.parameter_rows()]
        parts[0] = parts[0].T if self.transposed else parts[0]
        if len(parts) == 2:
            parts[1] = parts[1].unsqueeze(1)
        return torch.cat(parts, dim=1)

    @torch.no_grad()
    def write(self, indices: torch.Tensor | list[int] | int, values: torch.Tensor) -> None:
        """Set the parameters of the given neurons from ``values`` (layout of ``read``)."""
        idx = self._index(indices)
        values = torch.as_tensor(values).reshape(len(idx), -1)
        expected = self.in_features + (1 if len(self.parameter_rows()) == 2 else 0)
        if values.shape[1] != expected:
            raise ValueError(
                f"{self.name}: expected {expected} values per neuron, got {values.shape[1]}"
            )
        weight_values = values[:, : self.in_features]
        for param, dim in self.parameter_rows():
            if param.dim() == 1:
                param.index_copy_(0, idx, values[:, -1].to(param))
            else:
                src = weight_values.T if self.transposed else weight_values
                param.index_copy_(dim, idx, src.to(param))

    def _index(self, indices) -> torch.Tensor:
        idx = torch.as_tensor(indices, dtype=torch.long).reshape(-1)
        if len(idx) and (idx.min() < 0 or idx.max() >= self.n_neurons):
            raise IndexError(f"{self.name} has neurons 0..{self.n_neurons - 1}; got {idx.tolist()}")
        return (idx + self.offset).to(self.module.weight.device)


def family_of(model: nn.Module) -> Family:
    """The registered family of ``model`` (by ``model.config.model_type``)."""
    model_type = getattr(getattr(model, "config", None), "model_type", None)
    for family in FAMILIES.values():
        if model_type in family.model_types:
            return family
    supported = ", ".join(f"{f.name} ({'/'.join(f.model_types)})" for f in FAMILIES.values())
    raise UnsupportedArchitectureError(
        f"Unsupported architecture: model_type={model_type!r} ({type(model).__name__}). "
        f"Supported families: {supported}. To add one, call "
        "tn.register_family(tn.Family(name=..., model_types=(...,), blocks='path.to.blocks', "
        "sites={'fc_in': 'mlp.in_proj', 'fc_out': 'mlp.out_proj'})); see "
        "help(tn.register_family)."
    )


def ffn_sites(model: nn.Module) -> list[Site]:
    """All FFN sites of ``model``, ordered by layer, then by data flow inside the block."""
    family = family_of(model)
    blocks = model.get_submodule(family.blocks)
    sites = []
    for layer, block in enumerate(blocks):
        found = {}
        for kind, path in family.sites.items():
            module = block.get_submodule(path)
            found[kind] = (module, 0, _out_features(module))
        for kind, (path, half) in family.fused_halves.items():
            module = block.get_submodule(path)
            n = _out_features(module) // 2
            found[kind] = (module, half * n, n)
        for kind in sorted(found, key=KIND_ORDER.index):
            module, offset, n = found[kind]
            sites.append(Site(f"layers.{layer}.mlp.{kind}", layer, kind, n, module, offset))
    return sites


def site_map(model: nn.Module) -> dict[str, Site]:
    """``ffn_sites`` keyed by site name."""
    return {site.name: site for site in ffn_sites(model)}


def _out_features(module: nn.Module) -> int:
    if isinstance(module, nn.Linear):
        return module.out_features
    if hasattr(module, "nf"):  # transformers' Conv1D
        return module.nf
    raise TypeError(f"{type(module).__name__} is not a linear layer")
