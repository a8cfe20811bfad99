"""One hooks layer over named FFN sites: keep an output, keep its gradient, edit it.

Every intervention point is a site with a stable name (``layers.3.mlp.up``, see
``tn.ffn_sites``). ``trace`` registers hooks on the modules of the named sites for the duration
of a ``with`` block and always removes them, also when the block raises::

    with tn.trace(model, ["layers.3.mlp.up"]) as tr:            # keep outputs
        model(**inputs)
    tr["layers.3.mlp.up"].output                                # (B, T, 1536)

    with tn.trace(model, edit={"layers.3.mlp.up": tn.Edit.zero([7, 42])}):
        model(**inputs)                                         # units 7 and 42 output 0

    with tn.trace(model, keep={"layers.3.mlp.act": torch.tensor([7, 42])}) as tr:
        model(**inputs)                                         # keep two units only
    tr["layers.3.mlp.act"].output                               # (B, T, 2)

    with tn.trace(model, ["layers.3.mlp.up"], grad=True) as tr:
        loss = answer_losses(model, batch)[0].sum()
        tr.backward(loss)                                       # gradients of the kept outputs only
    tr["layers.3.mlp.up"].grad                                  # (B, T, 1536)

Attribution (keep outputs and gradients), ``deactivate`` / ``scale`` (``Edit.scale``) and
neuron-only training (``Edit.replace`` / ``Edit.add`` with a function of the module's input)
all use it.

Two sites can share one module (Phi-3's fused ``gate_up_proj`` holds ``gate`` and ``up``); each
site sees only its own units, ``Site.output_slice`` of the module's output. An ``act`` site
(``layers.3.mlp.act``) is the *input* of the FFN's output projection: a forward pre-hook on that
module keeps and edits it, so its "output" in a trace is what the projection reads, and its
edits change what the projection reads.
"""

from __future__ import annotations

import contextlib
import functools
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator, Mapping, Sequence

import torch
from torch import nn

from ..core.layout import Site, layout_of

EDIT_OPS = ("scale", "add", "replace", "affine")


@dataclass(frozen=True, eq=False)
class Edit:
    """A change to some output units of one site, applied in every forward pass.

    Build one with ``Edit.zero(idx)``, ``Edit.mean(idx, means)``, ``Edit.noise(idx, means, stds)``,
    ``Edit.scale(idx, factor)``, ``Edit.add(idx, value)``, ``Edit.replace(idx, values)`` or
    ``Edit.affine(idx, scale, shift)``. ``neurons`` are site-local unit indices, 1-D long.
    ``value`` is a number (scale, add), a tensor ((len(neurons),) for add, broadcastable to
    (..., len(neurons)) for replace), or for ``add`` and ``replace`` a function of the module's
    input ``x`` (..., in_features; for an act site, the act values themselves) returning values
    (..., len(neurons)); that is how neuron-only training recomputes trained rows.
    """

    op: str
    neurons: torch.Tensor
    value: float | torch.Tensor | Callable[[torch.Tensor], torch.Tensor]

    def __post_init__(self):
        if self.op not in EDIT_OPS:
            raise ValueError(f"op must be one of {EDIT_OPS}, got {self.op!r}")
        if self.op == "scale" and callable(self.value):
            raise TypeError("a scale factor is a number, not a function")
        object.__setattr__(
            self, "neurons", torch.as_tensor(self.neurons, dtype=torch.long).reshape(-1)
        )

    @classmethod
    def zero(cls, neurons) -> Edit:
        """Outputs of ``neurons`` set to 0."""
        return cls("scale", neurons, 0.0)

    @classmethod
    def mean(cls, neurons, means) -> Edit:
        """Outputs of ``neurons`` replaced by ``means`` ((len(neurons),), the units' mean
        activations over a reference set, ``tn.activation_stats``): mean ablation."""
        return cls("replace", neurons, torch.as_tensor(means).reshape(-1))

    @classmethod
    def noise(cls, neurons, means, stds, seed: int = 0) -> Edit:
        """Outputs of ``neurons`` replaced, at every position and in every forward pass, by a
        fresh draw of ``means + stds * N(0, 1)`` ((len(neurons),) each): a Gaussian resample
        ablation matching each unit's first two moments on a reference set. Draws come from
        one generator seeded with ``seed``, so a run is reproducible given its forward passes."""
        means = torch.as_tensor(means, dtype=torch.float32).reshape(-1)
        stds = torch.as_tensor(stds, dtype=torch.float32).reshape(-1)
        generator = torch.Generator().manual_seed(seed)

        def draw(x: torch.Tensor) -> torch.Tensor:
            shape = (*x.shape[:-1], len(means))
            return (means + stds * torch.randn(shape, generator=generator)).to(x.device)

        return cls("replace", neurons, draw)

    @classmethod
    def affine(cls, neurons, scale: torch.Tensor, shift: torch.Tensor) -> Edit:
        """Outputs ``y`` of ``neurons`` become ``y * scale + shift``, both tensors broadcastable
        to (..., len(neurons)): one row of a batch may be edited differently from another (the
        interpolation points of integrated gradients, one ablated unit per copy of a batch)."""
        return cls("affine", neurons, (torch.as_tensor(scale), torch.as_tensor(shift)))

    @classmethod
    def scale(cls, neurons, factor: float) -> Edit:
        """Outputs of ``neurons`` multiplied by ``factor`` (dimensionless)."""
        return cls("scale", neurons, float(factor))

    @classmethod
    def add(cls, neurons, value) -> Edit:
        """``value`` added to the outputs of ``neurons``: a number, a (len(neurons),) tensor, or
        a function of the module input ``x`` returning values (..., len(neurons))."""
        return cls("add", neurons, value)

    @classmethod
    def replace(cls, neurons, values) -> Edit:
        """Outputs of ``neurons`` replaced by ``values``: a tensor broadcastable to
        (..., len(neurons)), or a function of the module input ``x`` returning one."""
        return cls("replace", neurons, values)

    def apply(
        self, out: torch.Tensor, x: torch.Tensor, n: int, in_place: bool = True
    ) -> torch.Tensor:
        """The edited site output (..., n), from the site output ``out`` and module input ``x``.

        Scaling multiplies by a {factor, 1} mask over the units: one broadcast multiply, done in
        place when ``in_place`` and no gradient flows through ``out`` (a fresh linear output
        aliases nothing; a module's input might, so pre-hooks pass ``in_place=False``).
        """
        if len(self.neurons) and int(self.neurons.max()) >= n:
            raise IndexError(f"edit names unit {int(self.neurons.max())} of a site with {n} units")
        if self.op == "affine":
            scale, shift = self.value
            index = self.neurons.to(out.device)
            part = out.index_select(-1, index)
            return out.index_copy(-1, index, part * scale.to(part) + shift.to(part))
        if self.op == "replace" or callable(self.value):
            values = self.value(x) if callable(self.value) else self.value
            values = torch.as_tensor(values, dtype=out.dtype, device=out.device)
            values = values.expand(*out.shape[:-1], len(self.neurons))
            index = self.neurons.to(out.device)
            if self.op == "replace":
                return out.index_copy(-1, index, values)
            return out.index_add(-1, index, values)
        vector = self._vector(n, out.dtype, out.device)
        in_place = in_place and not out.requires_grad
        if self.op == "scale":
            return out.mul_(vector) if in_place else out * vector
        return out.add_(vector) if in_place else out + vector

    def _vector(self, n: int, dtype, device) -> torch.Tensor:
        """(n,) multiplier (scale) or addend (add), cached per (n, dtype, device)."""
        cache = self.__dict__.setdefault("_cache", {})
        key = (n, dtype, device)
        if key not in cache:
            fill = 1.0 if self.op == "scale" else 0.0
            vector = torch.full((n,), fill, dtype=torch.float32)
            vector[self.neurons] = torch.as_tensor(self.value, dtype=torch.float32)
            cache[key] = vector.to(dtype=dtype, device=device)
        return cache[key]


def _tap(site: Site) -> tuple[nn.Module, str]:
    """Where a site is hooked: (module, "output") or, for act, (output projection, "input")."""
    return site.module, site.port


class Record:
    """What a trace kept of one site in the latest forward (and backward) pass.

    Attributes:
        site: the Site. output: its output (..., n_neurons) after edits (for act: the output
        projection's input), still attached to the autograd graph, or None; with ``keep``
        naming units, only those, (..., len(units)) in the given order. grad: the gradient
        of the loss with respect to it, or None.
    """

    def __init__(self, site: Site, trace: Trace):
        # The trace's stores, not the trace: ``Trace -> Record -> Trace`` would be a cycle that
        # only the garbage collector frees, keeping a pass's outputs and the autograd graph
        # under them alive long after the trace is gone (integrated gradients opens one trace
        # per site and chunk of path points).
        self.site = site
        self._outputs, self._grads, self._units = trace._outputs, trace._grads, trace._units

    @property
    def output(self) -> torch.Tensor | None:
        if self.site.name in self._units:
            return self._units[self.site.name]
        out = self._outputs.get(_tap(self.site))
        return None if out is None else self.site.output_slice(out)

    @property
    def grad(self) -> torch.Tensor | None:
        grad = self._grads.get(_tap(self.site))
        return None if grad is None else self.site.output_slice(grad)

    def __repr__(self) -> str:
        shape = None if self.output is None else tuple(self.output.shape)
        return f"Record({self.site.name!r}, output={shape}, grad={self.grad is not None})"


class Trace(dict):
    """{site name: Record} for the traced sites; filled by forward (and backward) passes."""

    def __init__(self, sites: list[Site]):
        # Keyed by tap, (module, port): a down projection holds the down site (its output) and
        # the act site (its input).
        self._outputs: dict[tuple[nn.Module, str], torch.Tensor | None] = {}
        self._grads: dict[tuple[nn.Module, str], torch.Tensor | None] = {}
        self._units: dict[str, torch.Tensor] = {}  # trace(keep={site: units}): those only
        super().__init__({site.name: Record(site, self) for site in sites})

    def backward(self, loss: torch.Tensor) -> None:
        """Gradients of ``loss`` (a scalar) with respect to the kept outputs, and nothing else.

        ``torch.autograd.grad`` stops at the earliest traced site, and no parameter gradients
        are made; that is the cheap path attribution relies on.
        """
        taps = [t for t, out in self._outputs.items() if out is not None and out.requires_grad]
        if not taps:
            raise RuntimeError(
                "no kept output requires grad: trace with grad=True and run a forward pass"
            )
        grads = torch.autograd.grad(loss, [self._outputs[t] for t in taps])
        self._grads.update(zip(taps, grads))

    def clear(self) -> None:
        """Drop kept outputs and gradients (frees their memory between batches)."""
        self._outputs.clear()
        self._grads.clear()
        self._units.clear()


def resolve_sites(model: nn.Module, sites: Iterable[str | Site] | str | Site | None) -> list[Site]:
    """Site objects for site names (or Sites) of any kind, act included, in model order;
    ``None`` means every site of the default layout (the linear sites)."""
    if sites is None:
        return list(layout_of(model).sites)
    layout = layout_of(model, "all")
    if isinstance(sites, (str, Site)):
        sites = [sites]
    names = {s.name if isinstance(s, Site) else s for s in sites}
    for name in names:
        layout.site(name)  # raises with the nearest valid names
    return [site for site in layout.sites if site.name in names]


@contextlib.contextmanager
def trace(
    model: nn.Module,
    sites: Iterable[str | Site] | str | None = None,
    *,
    keep: bool | Mapping[str, torch.Tensor | Sequence[int]] = True,
    grad: bool = False,
    edit: dict[str, Edit] | None = None,
) -> Iterator[Trace]:
    """Hooks on named FFN sites for the duration of the block; always removed on exit.

    Args:
        model: a causal LM whose family ``tn.ffn_sites`` knows.
        sites: site names such as ``"layers.3.mlp.up"`` or ``"layers.3.mlp.act"`` (or Sites) to
            keep; ``None``: every linear site, ``tn.ffn_sites(model)`` (with ``edit`` and no
            ``sites``, only the edited sites are traced).
        keep: keep each traced site's output of the latest forward pass in ``tr[name].output``;
            or {site name: 1-D long unit indices}: trace those sites and keep only those units
            of each (``tr[name].output`` is (..., len(units))), so a site's whole output is
            freed as soon as the model is done with it (``top_examples`` over thousands of
            units). Not with ``grad``.
        grad: make kept outputs carry gradients even when every parameter is frozen (the input
            embeddings' output is made to require grad), and store gradients in
            ``tr[name].grad`` when ``loss.backward()`` or ``tr.backward(loss)`` runs.
        edit: {site name: Edit} applied to those sites' outputs (an act site's: to what the
            output projection reads) in every forward pass (``model.generate`` included).
            Edited sites are traced too.

    Yields:
        Trace: {site name: Record(output, grad)}.
    """
    edit = dict(edit or {})
    units = None
    if isinstance(keep, Mapping):
        if grad:
            raise ValueError("trace(keep={site: units}) keeps no gradients; use keep=True")
        if sites is not None:
            raise ValueError("pass the sites in keep={site: units} or in sites, not both")
        units = {name: torch.as_tensor(index, dtype=torch.long) for name, index in keep.items()}
        sites, keep = list(units), True
    if sites is None and edit and not grad:
        sites = list(edit)
    chosen = resolve_sites(model, sites)
    if units is not None:
        # Checked once, and shifted once to the module's output columns (a fused module holds
        # several sites), so a forward pass only selects.
        units = {site.name: _module_columns(site, units[site.name]) for site in chosen}
    edited = resolve_sites(model, list(edit)) if edit else []
    by_name = {s.name: s for s in chosen + edited}
    tr = Trace([by_name[name] for name in by_name if name in {s.name for s in chosen}])
    taps: dict[tuple[nn.Module, str], list[Site]] = {}
    for site in by_name.values():
        taps.setdefault(_tap(site), []).append(site)
    kept = {_tap(s) for s in chosen}
    grads = tr._grads

    def store(tap, values: torch.Tensor) -> None:
        if units is not None:
            for site in taps[tap]:
                if site.name in units:
                    columns = units[site.name].to(values.device)
                    tr._units[site.name] = values.index_select(-1, columns)
            return
        if keep and tap in kept:
            tr._outputs[tap] = values
            if grad and values.requires_grad:
                # The hook holds the gradients' dict, never ``tr``: a tensor's hooks live in
                # C++, out of the garbage collector's sight, so ``tr -> values -> hook -> tr``
                # would keep every trace, and the graph under its outputs, alive for good.
                values.register_hook(functools.partial(grads.__setitem__, tap))

    def after(module, args, output):
        _check_tensor(module, output, "returned")
        for site in taps[(module, "output")]:
            if site.name in edit:
                output = _edit_site(output, site, edit[site.name], args[0])
        store((module, "output"), output)
        return output

    def before(module, args):
        # An act site: edit and keep what the output projection reads.
        x = args[0]
        _check_tensor(module, x, "was called with")
        for site in taps[(module, "input")]:
            if site.name in edit:
                x = edit[site.name].apply(x, args[0], site.n_neurons, in_place=False)
        store((module, "input"), x)
        return (x, *args[1:])

    handles = [
        module.register_forward_hook(after)
        if port == "output"
        else module.register_forward_pre_hook(before)
        for module, port in taps
    ]
    if grad:
        handles.append(model.get_input_embeddings().register_forward_hook(_require_grad))
    try:
        yield tr
    finally:
        for handle in handles:
            handle.remove()


def _module_columns(site: Site, index: torch.Tensor) -> torch.Tensor:
    """``trace(keep={site: units})``'s units of ``site`` as columns of its module's output."""
    if index.dim() != 1 or (
        len(index) and not 0 <= int(index.min()) <= int(index.max()) < site.n_neurons
    ):
        raise IndexError(
            f"keep: {site.name} has units 0..{site.n_neurons - 1}; got "
            f"{index.tolist() if index.numel() <= 8 else 'indices outside that range'}"
        )
    return index + site.offset


def _check_tensor(module: nn.Module, value, verb: str) -> None:
    if not isinstance(value, torch.Tensor):
        raise TypeError(
            f"{type(module).__name__} {verb} {type(value).__name__}; sites must be "
            "linear layers that take and return a tensor"
        )


def _edit_site(output: torch.Tensor, site: Site, change: Edit, x: torch.Tensor) -> torch.Tensor:
    """``output`` with ``change`` applied to this site's units."""
    if site.offset == 0 and site.n_neurons == output.shape[-1]:
        return change.apply(output, x, site.n_neurons)
    # A fused module: edit this site's slice, keep the other units as they are.
    lo, hi = site.offset, site.offset + site.n_neurons
    edited = change.apply(output[..., lo:hi].clone(), x, site.n_neurons)
    return torch.cat([output[..., :lo], edited, output[..., hi:]], dim=-1)


def _require_grad(module, args, output):
    """With frozen parameters nothing requires grad; making the embeddings' output a leaf that
    does lets gradients reach every site output. Left alone when it already requires grad."""
    return output if output.requires_grad else output.detach().requires_grad_(True)
