"""Where a model's tensors are, for models split over devices or offloaded by ``device_map``.

``tn.load_model(path, dtype="bfloat16", device_map=...)`` hands the map to transformers, which
dispatches the model with accelerate: every module runs on its map entry's device, and
accelerate's hooks move each module's inputs there. Modules mapped to ``"disk"`` (and to
``"cpu"`` when a GPU is in the map) are *offloaded*: between forward passes their parameters
are meta tensors (shape and dtype, no data), loaded for the forward pass only. Hence three
rules for code that handles a model outside its own forward pass:

- a batch goes where the input embeddings run (``input_device``), not to the device of
  ``next(model.parameters())``, which may be another GPU or ``meta``;
- weights are read through ``named_parameter_values`` / ``loaded``, which load offloaded ones
  for the moment they are read (one module at a time);
- weights are never written in place while offloaded (``check_in_memory``): a write to a meta
  tensor is lost, and accelerate reloads the stored values at the next forward pass.

Tensors that the package computes from outputs (relevance sums, losses) are moved to one
device explicitly, since consecutive modules may run on different devices.
"""

from __future__ import annotations

import contextlib
from typing import Iterable, Iterator

import torch
from torch import nn
from ..errors import OffloadedWeightsError


def input_device(model: nn.Module) -> torch.device:
    """The device a batch of ``input_ids`` goes to: where the input embeddings run (their
    accelerate hook's execution device under a ``device_map``, else their weight's device)."""
    embeddings = model.get_input_embeddings()
    device = getattr(getattr(embeddings, "_hf_hook", None), "execution_device", None)
    if device is None:
        return embeddings.weight.device
    # accelerate stores a GPU as its index.
    return torch.device("cuda", device) if isinstance(device, int) else torch.device(device)


def is_offloaded(module: nn.Module) -> bool:
    """True when accelerate keeps ``module``'s own parameters offloaded between forward passes."""
    return bool(getattr(getattr(module, "_hf_hook", None), "offload", False))


@contextlib.contextmanager
def loaded(modules: Iterable[nn.Module]):
    """Inside the block, the offloaded parameters of ``modules`` hold their values (on each
    module's execution device), as in a forward pass; offloaded again on exit. Modules that are
    not offloaded are left alone. Read parameters inside the block, after entering it: accelerate
    replaces the parameter objects."""
    with contextlib.ExitStack() as stack:
        for module in dict.fromkeys(modules):  # unique, in order
            if is_offloaded(module):
                hook = module._hf_hook
                hook.pre_forward(module)
                stack.callback(hook.post_forward, module, None)
        yield


def named_parameter_values(model: nn.Module) -> Iterator[tuple[str, torch.Tensor]]:
    """``model.named_parameters()`` with every offloaded parameter's values loaded: the
    (name, tensor) pairs in the same order, each valid until the next pair is drawn. Costs
    nothing extra when nothing is offloaded."""
    modules = dict(model.named_modules())
    for name, param in model.named_parameters():
        if not param.is_meta:
            yield name, param
            continue
        owner = _offloading_module(modules, name)
        if owner is None:
            raise OffloadedWeightsError(
                f"parameter {name} is on the meta device and no accelerate offload hook holds "
                "its values; load the model with tn.load_model (device_map=...) or move it to a "
                "device"
            )
        with loaded([owner]):
            yield name, model.get_parameter(name)


def check_in_memory(params: Iterable[torch.Tensor], what: str) -> None:
    """Raise ``OffloadedWeightsError`` before ``what`` (which writes ``params`` in place) when
    any of them is offloaded."""
    if any(param.is_meta for param in params):
        raise OffloadedWeightsError(
            f"{what} writes weights in place, but some of them are offloaded by the model's "
            "device_map (meta tensors between forward passes; a write to them is lost). Load "
            "the model without 'disk' or 'cpu' offload (a device_map over GPUs only), or, to "
            "switch neurons off, use mode='activation'"
        )


def _offloading_module(modules: dict[str, nn.Module], param_name: str) -> nn.Module | None:
    """The module whose offload hook loads parameter ``param_name``: its owner, or the nearest
    ancestor with such a hook."""
    path = param_name.rsplit(".", 1)[0] if "." in param_name else ""
    while True:
        module = modules.get(path)
        if module is not None and is_offloaded(module):
            return module
        if not path:
            return None
        path = path.rsplit(".", 1)[0] if "." in path else ""


@contextlib.contextmanager
def only_trainable(model: nn.Module, params: Iterable[torch.Tensor] = (), drop_grads: bool = True):
    """Inside the block only ``params`` require grad (none given: the whole model is frozen).
    On exit, error or not, every parameter's flag is restored and, with ``drop_grads``, the
    gradients the block left on the model's parameters are dropped. Yields ``params`` (a list)."""
    params = list(params)
    flags = [(param, param.requires_grad) for param in model.parameters()]
    for param, _ in flags:
        param.requires_grad_(False)
    for trained in params:
        trained.requires_grad_(True)
    try:
        yield params
    finally:
        for param, flag in flags:
            param.requires_grad_(flag)
            if drop_grads:
                param.grad = None
