"""Models that other libraries wrap around a transformers model: nnsight's ``LanguageModel`` and
TransformerLens 4's ``TransformerBridge``.

Both keep the transformers model they were given and run its own modules, so a hook that tn
puts on a site module fires inside their forward passes as well. ``unwrap`` returns that inner
model; ``layout`` (``layout_of``, ``family_of``, ``model_name``, ``weight_fingerprint``)
and ``tn.evaluate`` call it, so ``tn.ffn_sites(lm)``, ``tn.deactivate(lm, ns)``,
``tn.scale``, ``tn.trace`` (outputs) and ``tn.evaluate(lm, ...)`` accept the wrapper, and a
``with tn.deactivate(lm, ns): with lm.trace(...)`` block runs nnsight's trace with the set off.

Site names map onto TransformerLens's hook names as ``layers.i.mlp.act`` <->
``blocks.i.mlp.hook_post``, ``layers.i.mlp.gate`` / ``up`` <-> ``blocks.i.mlp.hook_pre`` /
``hook_pre_linear``, ``layers.i.mlp.down`` / ``fc_out`` <-> ``blocks.i.hook_mlp_out`` (the
bias-free case), ``layers.i.mlp.fc_in`` <-> ``blocks.i.mlp.hook_pre``; nnsight names modules as
transformers does (``model.layers.i.mlp.up_proj``), the Family table's paths.

A wrapper's library is never imported here: an entry applies only once its module is loaded.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Wrapper:
    """``module``.``cls`` wraps a transformers model that ``inner(wrapper)`` returns. Libraries
    that also swap the model's own submodules for theirs (TransformerLens 4 puts a
    ``LinearBridge`` where ``mlp.up_proj`` was) name that class (``part_module``.``part_cls``)
    and the attribute that holds the original module inside it (``part_attr``)."""

    name: str
    module: str
    cls: str
    inner: Callable
    part_module: str | None = None
    part_cls: str | None = None
    part_attr: str | None = None


WRAPPERS: dict[str, Wrapper] = {}


def register_wrapper(wrapper: Wrapper) -> Wrapper:
    WRAPPERS[wrapper.name] = wrapper
    return wrapper


register_wrapper(Wrapper("nnsight", "nnsight", "NNsight", lambda m: m._module))
register_wrapper(
    Wrapper(
        "transformer_lens",
        "transformer_lens.model_bridge",
        "TransformerBridge",
        lambda m: m.original_model,
        "transformer_lens.model_bridge.generalized_components.base",
        "GeneralizedComponent",
        "_original_component",
    )
)


def _loaded_class(module: str, cls: str):
    """``module``.``cls`` if its library is already imported (never imports one), else None."""
    if module.split(".")[0] not in sys.modules:
        return None
    return getattr(importlib.import_module(module), cls, None)


def unwrap(model):
    """The transformers model inside ``model`` (``model`` itself when it is not a wrapper)."""
    for wrapper in WRAPPERS.values():
        cls = _loaded_class(wrapper.module, wrapper.cls)
        if cls is not None and isinstance(model, cls):
            return unwrap(wrapper.inner(model))
    return model


def unwrap_part(module):
    """The transformers submodule a wrapper library put its own module around (``module``
    itself otherwise): the ``nn.Linear`` whose weights and forward hooks a site uses."""
    for wrapper in WRAPPERS.values():
        if wrapper.part_module is None or wrapper.part_cls is None or wrapper.part_attr is None:
            continue
        cls = _loaded_class(wrapper.part_module, wrapper.part_cls)
        if cls is not None and isinstance(module, cls):
            return unwrap_part(getattr(module, wrapper.part_attr))
    return module


def plain_name(name: str) -> str:
    """A parameter's name as the transformers model had it before a wrapper library put its
    modules around the original ones (``...up_proj._original_component.weight`` ->
    ``...up_proj.weight``), so the weight fingerprint does not depend on the wrapper."""
    for wrapper in WRAPPERS.values():
        if wrapper.part_attr is not None:
            name = name.replace(f".{wrapper.part_attr}", "")
    return name
