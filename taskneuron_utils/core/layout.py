"""Where the FFN neurons live, for every supported model family.

A *neuron* is one unit of a transformer block's feed-forward network (FFN). Neurons are grouped
into *sites* with stable, readable names:

    layers.{i}.mlp.gate | up | down      gate/up/down FFNs (Llama, Mistral, Qwen2, Gemma, Phi-3)
    layers.{i}.mlp.fc_in | fc_out        two-matrix FFNs (GPT-2, Bloom, GPT-NeoX, OPT)
    layers.{i}.mlp.act                   the intermediate activation, in both (opt-in, see below)

The linear sites (gate, up, down, fc_in, fc_out) are output units of a linear layer: neuron
``j`` owns row ``j`` of the weight in torch's (out, in) layout (column ``j`` of GPT-2's
``Conv1D``, whose weight is stored (in, out)) plus bias ``j`` when there is a bias.

The ``act`` site is the input of the FFN's output projection: ``act_fn(gate) * up`` in a gated
FFN, ``act_fn(fc_in)`` in a two-matrix one, the "FFN neuron" of knowledge-neuron work. Its unit
``j`` owns row ``j`` (and bias ``j``) of every input projection and column ``j`` of the output
projection. It is a second definition of a neuron, never mixed in silently: the default layout
is the linear sites only, and ``kinds=`` (``"act"``, ``("gate", "up")``, ``"all"``) chooses
others (``ffn_sites``, ``layout_of``, ``tn.attribute``).

All family knowledge is in one declarative table, ``families.FAMILIES``. To support another
family, register a ``Family`` (see ``families.register_family``); nothing else needs to change.

``NeuronLayout`` is a model's sites of some kinds and their sizes, with the model's name: what a
neuron set or a relevance file must match to be used on that model. ``layout_of(model, kinds)``
computes it once per model and reuses it; ``layout_for(model, sizes)`` is the layout a set with
those sites must equal.
"""

from __future__ import annotations

import difflib
import weakref
from collections.abc import Iterable, Mapping

import torch
from torch import nn

# The family table, re-exported: layout is where the rest of the package asks.
from .families import FAMILIES as FAMILIES
from .families import Family as Family
from ..errors import UnsupportedArchitectureError as UnsupportedArchitectureError
from .families import family_of as family_of
from .families import register_family as register_family
from .placement import named_parameter_values
from .sites import Site, parse_site_name
from .wrappers import plain_name, unwrap, unwrap_part
from ..errors import NeuronSetMismatchError, SiteKindError
from .identity import content_hash


# Sites are listed in the order data flows through a block: input projections, the intermediate
# activation, output projections.
KIND_ORDER = ("gate", "up", "fc_in", "act", "down", "fc_out")
INPUT_KINDS = ("gate", "up", "fc_in")
OUTPUT_KINDS = ("down", "fc_out")


def resolve_kinds(
    kinds: str | Iterable[str] | None,
    available: tuple[str, ...] = KIND_ORDER,
    model: str | None = None,
) -> tuple[str, ...]:
    """The site kinds ``kinds`` names, unique, in data-flow order (``KIND_ORDER``).

    Args:
        kinds: None (the default layout: every linear site, i.e. every available kind but
            ``act``), ``"all"`` (every available kind), one kind such as ``"act"``, or an
            iterable of kinds such as ``("gate", "up")``.
        available: the kinds to choose from (a model's, or every known kind).
        model: the model's name, for the error message.

    Raises:
        SiteKindError: an unknown kind, or none at all; the message lists the valid ones.
    """
    if kinds is None:
        return tuple(k for k in available if k != "act")
    if kinds == "all":
        return tuple(available)
    names = [kinds] if isinstance(kinds, str) else list(kinds)
    where = f" of model {model!r}" if model else ""
    choices = ", ".join(available) + ", or 'all'"
    if not names:
        raise SiteKindError(f"no site kind given; choose from {choices}")
    for name in names:
        if name not in available:
            raise SiteKindError(f"{name!r} is not a site kind{where}; choose from {choices}")
    return tuple(k for k in available if k in names)


def ffn_sites(model: nn.Module, kinds: str | Iterable[str] | None = None) -> list[Site]:
    """The FFN sites of ``model`` of the given kinds (``resolve_kinds``; None: the linear
    sites), ordered by layer, then by data flow inside the block."""
    return list(layout_of(model, kinds).sites)


def _find_sites(model: nn.Module) -> list[Site]:
    """Every site of every kind, act included, in model order."""
    family = family_of(model)
    blocks = model.get_submodule(family.blocks)
    sites = []
    for layer, block in enumerate(blocks):
        found = {}
        for kind, path in family.sites.items():
            module = unwrap_part(block.get_submodule(path))
            found[kind] = (module, 0, _out_features(module))
        for kind, (path, half) in family.fused_halves.items():
            module = unwrap_part(block.get_submodule(path))
            n = _out_features(module) // 2
            found[kind] = (module, half * n, n)
        linear = {
            kind: Site(
                f"layers.{layer}.mlp.{kind}", layer, kind, n, module, offset, family.transposed
            )
            for kind, (module, offset, n) in found.items()
        }
        inputs = [linear[k] for k in INPUT_KINDS if k in linear]
        outputs = [linear[k] for k in OUTPUT_KINDS if k in linear]
        if inputs and outputs:
            out = outputs[0]
            linear["act"] = Site(
                f"layers.{layer}.mlp.act",
                layer,
                "act",
                out.in_features,
                out.module,
                0,
                family.transposed,
                "input",
                (*inputs, out),
            )
        sites.extend(linear[kind] for kind in sorted(linear, key=KIND_ORDER.index))
    return sites


def site_map(model: nn.Module, kinds: str | Iterable[str] | None = None) -> dict[str, Site]:
    """``ffn_sites`` keyed by site name."""
    return dict(layout_of(model, kinds).by_name)


class NeuronLayout(Mapping):
    """FFN sites of one model: a read-only mapping {site name: neuron count}, in model order.

    Attributes:
        model: the model's readable name (``model_name``).
        sites: the Site objects, in model order. by_name: {site name: Site}.
        kinds: the site kinds present, in data-flow order.

    ``fingerprint()`` hashes the model's current weights (they change with training, so it is
    never cached). ``check(sizes, model=...)`` is the "does this set fit this model" test.
    """

    def __init__(self, model: nn.Module, sites: list[Site]):
        self.model = model_name(model)
        self.sites = tuple(sites)
        self.by_name = {site.name: site for site in sites}
        self.kinds = tuple(k for k in KIND_ORDER if any(site.kind == k for site in sites))
        self._model = weakref.ref(model)
        self._blocks = _blocks_of(model)

    def __getitem__(self, name: str) -> int:
        return self.by_name[name].n_neurons

    def __iter__(self):
        return iter(self.by_name)

    def __len__(self) -> int:
        return len(self.by_name)

    def __repr__(self) -> str:
        return f"NeuronLayout({self.model!r}, {len(self)} sites, {sum(self.values())} neurons)"

    def site(self, name: str) -> Site:
        """The Site called ``name``; a KeyError naming the nearest valid names otherwise."""
        if name not in self.by_name:
            near = difflib.get_close_matches(str(name), list(self.by_name), n=3)
            hint = f"; did you mean {', '.join(near)}?" if near else ""
            raise KeyError(
                f"{name!r} is not a site of {self.model!r} (sites are named like "
                f"{self.sites[0].name!r}, see tn.ffn_sites(model)){hint}"
            )
        return self.by_name[name]

    def fingerprint(self) -> str:
        model = self._model()
        if model is None:
            raise ReferenceError("the model of this layout no longer exists")
        return weight_fingerprint(model)

    def check(
        self, sizes: Mapping[str, int], made_for: str | None = None, what: str = "neuron set"
    ) -> None:
        """Raise ``NeuronSetMismatchError`` naming the first difference if ``sizes`` (a layout
        as {site name: neuron count}) is not this model's layout."""
        if dict(sizes) == dict(self):
            return
        raise NeuronSetMismatchError(
            f"this {what} was made for model {made_for!r} and does not fit model {self.model!r}: "
            + layout_difference(dict(sizes), dict(self), what, "model")
            + ". Detect neurons on this model with tn.attribute(...).top_k(...) instead."
        )


# model -> {"all": the layout of every site, kinds tuple: the layout of those kinds}
_LAYOUTS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def layout_of(model: nn.Module, kinds: str | Iterable[str] | None = None) -> NeuronLayout:
    """The model's NeuronLayout over the sites of ``kinds`` (``resolve_kinds``: None, the
    default, is every linear site; ``"act"``; ``("gate", "up")``; ``"all"``), computed once per
    model and kinds.

    It is recomputed when the block list is replaced or changes length. (peft's LoRA wraps the
    site modules and ``merge_and_unload`` puts the same module objects back, so the cached
    sites stay valid through LoRA training.) Layouts of one model share their Site objects.

    Raises:
        SiteKindError: a kind the model's family does not have.
    """
    wrapper, model = model, unwrap(model)  # nnsight / TransformerLens: the model inside
    cached = _LAYOUTS.get(model)
    if cached is None or cached["all"]._blocks != _blocks_of(model):
        family_of(wrapper)  # an unsupported one is named here, with the wrapper around it
        cached = {"all": NeuronLayout(model, _find_sites(model))}
        _LAYOUTS[model] = cached
    every = cached["all"]
    chosen = resolve_kinds(kinds, every.kinds, every.model)
    if chosen not in cached:
        sites = [site for site in every.sites if site.kind in chosen]
        cached[chosen] = every if chosen == every.kinds else NeuronLayout(model, sites)
    return cached[chosen]


def layout_for(model: nn.Module, sizes: Mapping[str, int]) -> NeuronLayout:
    """The layout of ``model`` that ``sizes`` ({site name: neuron count}, a neuron set's or a
    relevance's) must equal to fit it: the model's sites of the kinds ``sizes`` names. Kinds
    the model lacks are left out (no kind left: the default layout), so that ``check`` then
    names the difference."""
    every = layout_of(model, "all")
    named = {parse_site_name(name)[1] for name in sizes}
    return layout_of(model, [k for k in every.kinds if k in named] or None)


def _blocks_of(model: nn.Module) -> tuple[int, int]:
    blocks = model.get_submodule(family_of(model).blocks)
    return id(blocks), len(blocks)


def layout_difference(a: Mapping[str, int], b: Mapping[str, int], a_name: str, b_name: str) -> str:
    """A readable account of the first difference between two layouts."""
    only_a = [s for s in a if s not in b]
    only_b = [s for s in b if s not in a]
    if only_a or only_b:
        parts = []
        if only_a:
            parts.append(f"{len(only_a)} sites only in the {a_name} (first: {only_a[0]})")
        if only_b:
            parts.append(f"{len(only_b)} sites only in the {b_name} (first: {only_b[0]})")
        return f"{a_name} has {len(a)} sites, {b_name} has {len(b)}; " + "; ".join(parts)
    site = next(s for s in a if a[s] != b[s])
    return f"site {site} has {a[site]} neurons in the {a_name} but {b[site]} in the {b_name}"


def model_name(model: nn.Module) -> str:
    """A readable identifier of a loaded model (hub id, path, or the default's name)."""
    model = unwrap(model)
    config = getattr(model, "config", None)
    return str(
        getattr(model, "name_or_path", None)
        or getattr(config, "_name_or_path", None)
        or type(model).__name__
    )


@torch.no_grad()
def weight_fingerprint(model: nn.Module) -> str:
    """A short hash of the model's weights, cheap enough to compute on a 7B model on a GPU.

    Hashes every parameter's name, shape, dtype, sum and L2 norm, and its first and last 16
    values: a training step or an edit of a neuron's row changes it (a change below float32
    resolution of the sums might not). The sums are taken in float64 and rounded to float32, so
    that the order of the reduction, which follows the number of threads, does not change the
    hash. The float64 copies are taken 2^20 values at a time, so the extra memory is at most
    8 MiB whatever the model. Not a cryptographic digest of the bytes. Offloaded
    weights (``device_map`` with "disk" or "cpu" entries) are read from their offload storage,
    so a split model has the fingerprint of the same weights loaded in one piece.
    """
    return content_hash(_weight_parts(model))


def _weight_parts(model: nn.Module):
    for name, param in named_parameter_values(unwrap(model)):
        flat = param.detach().reshape(-1)
        total = flat.new_zeros((), dtype=torch.float64)
        squares = flat.new_zeros((), dtype=torch.float64)
        for chunk in flat.split(1 << 20):
            chunk = chunk.double()
            total += chunk.sum()
            squares += chunk.square().sum()
        stats = torch.stack([total, squares.sqrt()]).float()
        edges = torch.cat([flat[:16], flat[-16:]]).float()
        yield f"{plain_name(name)}{tuple(param.shape)}{param.dtype}"
        yield stats.cpu().numpy().tobytes()
        yield edges.cpu().numpy().tobytes()


def _out_features(module: nn.Module) -> int:
    if isinstance(module, nn.Linear):
        return module.out_features
    if hasattr(module, "nf"):  # transformers' Conv1D
        return module.nf
    raise TypeError(f"{type(module).__name__} is not a linear layer")
