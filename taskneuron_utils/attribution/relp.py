"""Relevance patching (RelP; Jafari, Eberle, Khakzar & Nanda 2025, arXiv 2508.21258).

``RelP`` (``"relp"``) is attribution patching with the local gradient replaced by layer-wise
relevance propagation's rules: the same two forwards (the real input; the paired baseline's, if
any) and one backward, ``r_j = -sum_t g~[t,j] * (a[t,j] - a'[t,j])``, where ``g~ = dL/da``
computed by a backward pass with these rules on the analysed model:

- normalisation (RMSNorm, LayerNorm): the scale ``1 / sqrt(mean(x^2) + eps)`` (or
  ``1 / sqrt(var(x) + eps)``) held constant, a stop-gradient through it; LayerNorm's centring
  ``x - mean(x)``, which is linear, keeps its gradient;
- the activation function ``y = act(x)``: the identity rule, gradient ``act(x) / x`` instead of
  ``act'(x)`` (0 where ``x`` is exactly 0: no relevance passes through a zero input);
- the gated product ``act(gate) * up``: the half rule, each factor's gradient halved;
- attention: the pattern held constant, a stop-gradient through the query and key projections
  (they reach the output only through the softmax, so this is exactly a stop-gradient through
  the pattern); the values keep their gradient.

On a network without these components (no normalisation, a linear activation, no gated
product, a pattern that does not depend on the input) RelP equals attribution patching.

How. ``relp_rules(model)`` registers forward hooks for the duration of a ``with`` block (always
removed on exit, also on error). Each replaces a module's output ``y`` by
``y.detach() + (z - z.detach())``, where ``z`` is a surrogate whose gradient is the rule's: the
value passed on is ``y`` itself (``z - z.detach()`` is exactly zero), so the forward pass is
bit for bit the model's own and only the backward differs; the weights are never touched. The
hook on a gated product's ``up`` output must run after a trace's hook on the same module (the
trace keeps ``up`` before the half rule), which holds when the trace is opened first, as
``attribute`` does.

Families (``core.families``); every family applies all four rules where it has the component:

    llama, mistral, qwen2   RMSNorm (weight * x / rms), SiLU identity rule, half rule on
                            act(gate) * up, q_proj / k_proj stop-gradient
    gemma (gemma, gemma2)   the same with Gemma's RMSNorm ((1 + weight) * x / rms) and its GELU
    phi3                    the same rules; query and key are the first columns of the fused
                            qkv_proj, up the second half of the fused gate_up_proj
    opt                     LayerNorm, the configured activation (ReLU), q_proj / k_proj; no
                            gated product
    gpt2                    LayerNorm, GELU, the q and k thirds of the fused c_attn
    bloom, gpt_neox         LayerNorm, GELU, the q and k parts of each head in the fused
                            query_key_value ([q | k | v] per head)

A family added with ``tn.register_family`` has no rules here (where its norms, activation and
attention projections are is unknown) and is refused in one line.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Callable, Iterator

import torch
from torch import nn

from ..core.families import family_of
from .cost import relp_surrogate_bytes
from .methods import AttributionPatching


def _gpt2_qk(config, n: int) -> torch.Tensor:
    """GPT-2's ``c_attn`` output is [q | k | v], ``d`` columns each."""
    return torch.arange(n) < 2 * (n // 3)


def _per_head_qk(config, n: int) -> torch.Tensor:
    """Bloom's and GPT-NeoX's ``query_key_value`` output is, per head, [q | k | v] of
    ``head_dim`` columns each (``view(..., heads, 3, head_dim)`` / ``chunk(3)`` per head)."""
    head = n // 3 // config.num_attention_heads
    return torch.arange(n) % (3 * head) < 2 * head


def _phi3_qk(config, n: int) -> torch.Tensor:
    """Phi-3's ``qkv_proj`` output is [q (heads) | k (kv heads) | v (kv heads)]."""
    heads, kv = config.num_attention_heads, config.num_key_value_heads
    return torch.arange(n) < (heads + kv) * (n // (heads + 2 * kv))


def _second_half(config, n: int) -> torch.Tensor:
    """Phi-3's ``gate_up_proj`` output is [gate | up]: the up half."""
    return torch.arange(n) >= n // 2


@dataclass(frozen=True)
class Rules:
    """Where RelP's rules apply in one block of a family (dotted paths inside the block).

    ``pattern``: the query and key projections (stop-gradient), each with None (the whole
    output) or a function ``(config, n) -> bool (n,)`` of the output columns that hold query
    and key, where one projection computes query, key and value; ``activation``: the
    activation module (identity rule); ``up``: the module computing the gated product's second
    factor, with its columns the same way (half rule), None where the FFN has no gated product;
    ``unit_offset``: the RMSNorm weight is ``1 + weight`` (Gemma)."""

    pattern: tuple[tuple[str, Callable | None], ...]
    activation: str
    up: tuple[str, Callable | None] | None
    unit_offset: bool = False


_QK = (("self_attn.q_proj", None), ("self_attn.k_proj", None))
_GATED = Rules(_QK, "mlp.act_fn", ("mlp.up_proj", None))
RULES: dict[str, Rules] = {
    "llama": _GATED,
    "mistral": _GATED,
    "qwen2": _GATED,
    "gemma": Rules(_QK, "mlp.act_fn", ("mlp.up_proj", None), unit_offset=True),
    "phi3": Rules(
        (("self_attn.qkv_proj", _phi3_qk),),
        "mlp.activation_fn",
        ("mlp.gate_up_proj", _second_half),
    ),
    "opt": Rules(_QK, "activation_fn", None),
    "gpt2": Rules((("attn.c_attn", _gpt2_qk),), "mlp.act", None),
    "bloom": Rules((("self_attention.query_key_value", _per_head_qk),), "mlp.gelu_impl", None),
    "gpt_neox": Rules((("attention.query_key_value", _per_head_qk),), "mlp.act", None),
}


def check_family(model) -> Rules:
    """The family's rules; a one-line ValueError naming a family without RelP rules here (a
    family registered with ``tn.register_family``: where its norms, activation, gated product
    and attention projections are is not known)."""
    family = family_of(model).name
    if family in RULES:
        return RULES[family]
    raise ValueError(
        f"method 'relp' has no rules for the {family!r} family (attribution.relp.RULES "
        f"says where its norms, activation and attention projections are; supported: "
        f"{', '.join(RULES)}); use method='attribution_patching' for it"
    )


def _rule_output(y: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """``y``'s value with ``z``'s gradient: ``y.detach() + (z - z.detach())``."""
    return y.detach() + (z - z.detach())


def _norm_rule(unit_offset: bool):
    """A forward hook: the norm's output, its scale held constant in the backward."""

    def hook(module, args, y):
        x = args[0]
        if isinstance(module, nn.LayerNorm):
            centred = x - x.mean(-1, keepdim=True)  # linear: keeps its gradient
            scale = torch.rsqrt(x.var(-1, unbiased=False, keepdim=True) + module.eps).detach()
            z = centred * scale
            if module.weight is not None:
                z = z * module.weight
            if module.bias is not None:
                z = z + module.bias
            return _rule_output(y, z)
        h = x.float()
        eps = getattr(module, "variance_epsilon", getattr(module, "eps", 1e-6))
        scale = torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + eps).detach()
        if unit_offset:  # Gemma: (x * scale * (1 + w)) in float32, then cast
            z = (h * scale * (1.0 + module.weight.float())).to(x.dtype)
        else:  # Llama: w * (x * scale) cast
            z = module.weight * (h * scale).to(x.dtype)
        return _rule_output(y, z)

    return hook


def _identity_rule(factor: float):
    """A forward hook on an activation function: gradient ``factor * act(x) / x``."""

    def hook(module, args, y):
        x = args[0]
        nonzero = x != 0
        ratio = torch.where(nonzero, y / torch.where(nonzero, x, torch.ones_like(x)), 0.0)
        return _rule_output(y, x * (factor * ratio).detach())

    return hook


def _half_rule(config, columns):
    """A forward hook on the gated product's ``up`` factor: its gradient halved (on the
    ``columns`` of a fused output only)."""

    def hook(module, args, y):
        if columns is None:
            return _rule_output(y, 0.5 * y)
        up = columns(config, y.shape[-1]).to(y.device)
        return _rule_output(y, y * torch.where(up, 0.5, 1.0).to(y.dtype))

    return hook


def _stop_gradient(config, columns):
    """A forward hook on a query or key projection (or the query and key ``columns`` of a
    fused one): the pattern's inputs are constants."""

    def hook(module, args, y):
        if columns is None:
            return y.detach()
        return torch.where(columns(config, y.shape[-1]).to(y.device), y.detach(), y)

    return hook


@contextlib.contextmanager
def relp_rules(model: nn.Module) -> Iterator[nn.Module]:
    """Within the block, ``model``'s backward follows RelP's rules (module docstring); its
    forward outputs and weights are unchanged. Every hook is removed on exit, even on error.

    Raises:
        ValueError: a family RelP does not cover (``check_family``), before any hook.
    """
    rules = check_family(model)
    handles = []
    try:
        for module in model.modules():
            if isinstance(module, nn.LayerNorm) or type(module).__name__.endswith("RMSNorm"):
                handles.append(module.register_forward_hook(_norm_rule(rules.unit_offset)))
        config = model.config
        factor = 0.5 if rules.up else 1.0  # act(gate) is one factor of the gated product
        blocks: nn.ModuleList = model.get_submodule(family_of(model).blocks)  # type: ignore[assignment]
        for block in blocks:
            for path, columns in rules.pattern:
                hook = _stop_gradient(config, columns)
                handles.append(block.get_submodule(path).register_forward_hook(hook))
            activation = block.get_submodule(rules.activation)
            handles.append(activation.register_forward_hook(_identity_rule(factor)))
            if rules.up:
                path, columns = rules.up
                hook = _half_rule(config, columns)
                handles.append(block.get_submodule(path).register_forward_hook(hook))
        yield model
    finally:
        for handle in handles:
            handle.remove()


class RelP(AttributionPatching):
    """Attribution patching whose backward follows RelP's rules: ``|sum_t g~ * (a - a')|`` per
    example (``g~``: the gradient under the rules, at the real activation)."""

    name = "relp"
    description = "|sum_t g * (a - a')| per example, g the gradient by RelP's propagation rules"

    def bind(self, model, tok, data, encoded, sites, max_length, batch_size=8) -> None:
        check_family(model)  # refused before anything else
        super().bind(model, tok, data, encoded, sites, max_length, batch_size)

    def pass_bytes(self, rows, T, N, padding) -> float:
        """Attribution patching's pass with what the rules' surrogates change in the saved
        tensors (``attribution.cost.relp_surrogate_bytes``)."""
        sh = self.shapes
        change = relp_surrogate_bytes(sh, self.dtype_bytes, self.widths)
        return super().pass_bytes(rows, T, N, padding) + sh.layers * rows * T * change

    def step(self, model, batch, start, tr, sums, batch_index) -> None:
        """Attribution patching's step with the rules' hooks on (registered after the trace's,
        so the trace keeps each site's output before any rule acts on it)."""
        with relp_rules(model):
            super().step(model, batch, start, tr, sums, batch_index)
