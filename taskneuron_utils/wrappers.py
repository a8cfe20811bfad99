"""Models that other libraries wrap around a transformers model: nnsight's ``LanguageModel`` and
TransformerLens 4's ``TransformerBridge``.

Both keep the transformers model they were given and run its own modules, so a hook that tn
puts on a site module fires inside their forward passes as well. ``unwrap`` returns that inner
model; ``architectures`` (``layout_of``, ``family_of``, ``model_name``, ``weight_fingerprint``)
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
    """``module``.``cls`` wraps a transformers model that ``inner(wrapper)`` returns."""

    name: str
    module: str
    cls: str
    inner: Callable


WRAPPERS: dict[str, Wrapper] = {}


def register_wrapper(wrapper: Wrapper) -> Wrapper:
    WRAPPERS[wrapper.name] = wrapper
    return wrapper


register_wrapper(Wrapper("nnsight", "nnsight", "NNsight", lambda m: m._module))
register_wrapper(Wrapper("transformer_lens", "transformer_lens.model_bridge", "TransformerBridge",
                         lambda m: m.original_model))


def unwrap(model):
    """The transformers model inside ``model`` (``model`` itself when it is not a wrapper)."""
    for wrapper in WRAPPERS.values():
        if wrapper.module.split(".")[0] not in sys.modules:
            continue
        cls = getattr(importlib.import_module(wrapper.module), wrapper.cls, None)
        if cls is not None and isinstance(model, cls):
            return unwrap(wrapper.inner(model))
    return model
