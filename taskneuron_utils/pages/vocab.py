"""Vocabulary projection: which tokens a neuron's write into the residual stream promotes.

The direct effect of a unit on the logits, ignoring the final norm's dependence on its input
(the 1 / rms or 1 / std factor, one positive number per position, which scales but never
reorders the tokens):

    act unit j (layers.i.mlp.act):  w = W_out[:, j]        (the output projection's column j;
                                                            row j of GPT-2's Conv1D (in, out))
    down / fc_out unit i:           w = e_i                (a residual dimension; its
                                                            projection is column i of the
                                                            unembedding after the norm weight)
    logits = W_U (g * c(w))         W_U: (V, d) unembedding (``get_output_embeddings``; the
                                    input embedding when tied), g: the final norm's weight
                                    (1 + weight for Gemma's RMSNorm), c: centring
                                    (w - mean(w)) for a LayerNorm, identity for an RMSNorm.

The norm's bias and the unembedding's bias add the same vector whatever the unit does, so they
are left out. A final logit soft-cap (Gemma 2, ``Family.logit_softcap``) is monotone, so ranks
are the uncapped ones; ``logit_capped`` is ``cap * tanh(logit / cap)``, what the capped head
would output for this direction alone. ``gate`` / ``up`` / ``fc_in`` units reach the residual
stream only through act unit j, so they have no projection of their own: asking for one is an
error that names the act unit to project instead.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd
import torch
from torch import nn

from ..core.layout import layout_of
from ..core.sites import parse_site_name
from ..scoring.loss import logit_softcap
from ..core.placement import loaded

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

# Where the final norm sits under ``model.base_model``, per family (Llama, Mistral, Qwen2,
# Gemma, Phi-3: norm; GPT-2, Bloom: ln_f; GPT-NeoX: final_layer_norm; OPT: decoder.*).
_FINAL_NORMS = ("norm", "ln_f", "final_layer_norm", "decoder.final_layer_norm")


def final_norm(model) -> nn.Module:
    """The norm applied to the last residual stream before the unembedding."""
    base = model.base_model
    for path in _FINAL_NORMS:
        try:
            return base.get_submodule(path)
        except AttributeError:
            continue
    raise ValueError(
        f"cannot find the final norm of {type(model).__name__} (looked for "
        f"{', '.join(_FINAL_NORMS)} under model.base_model)"
    )


def _norm_map(norm: nn.Module, direction: torch.Tensor) -> torch.Tensor:
    """The final norm's linear part applied to ``direction`` (..., d), float32."""
    weight = norm.weight.detach().float()
    scale = 1.0 + weight if "Gemma" in type(norm).__name__ else weight
    if isinstance(norm, nn.LayerNorm):
        direction = direction - direction.mean(-1, keepdim=True)
    return direction * scale


def write_direction(model, site: str, neuron: int) -> torch.Tensor:
    """What unit ``neuron`` of ``site`` writes into the residual stream per unit of its
    activation: float32 (d_model,). See the module docstring for which kinds have one."""
    layout = layout_of(model, "all")
    try:
        found = layout.site(site)
    except KeyError as err:
        raise ValueError(err.args[0]) from None
    if not 0 <= neuron < found.n_neurons:
        raise IndexError(f"{site} has neurons 0..{found.n_neurons - 1}; got {neuron}")
    if found.kind in ("gate", "up", "fc_in"):
        raise ValueError(
            f"{site} units reach the residual stream only through the FFN's activation; "
            f"project layers.{found.layer}.mlp.act unit {neuron} instead"
        )
    if found.kind == "act":
        with loaded([found.module]):
            weight = found.module.weight.detach().float()
            return (weight[neuron] if found.transposed else weight[:, neuron]).clone()
    d_model = model.get_output_embeddings().weight.shape[1]
    return torch.nn.functional.one_hot(torch.tensor(neuron + found.offset), d_model).float()


def vocab_projection(
    model: PreTrainedModel, tok: PreTrainedTokenizerBase, site: str, neuron: int, *, k: int = 20
) -> pd.DataFrame:
    """The ``k`` tokens unit ``neuron`` of ``site`` promotes most and the ``k`` it suppresses
    most through its direct path to the logits (formula: module docstring).

    Returns:
        2k rows: direction ("promotes": largest logit first; "suppresses": most negative
        first), rank (1..k), token_id, token (decoded), logit (nats of logit per unit of
        activation, before any soft-cap) and, for soft-capped families, logit_capped.
        ``attrs``: site, neuron, meaning (what the projection is, in words).
    """
    direction = write_direction(model, site, neuron)
    head = model.get_output_embeddings()
    with loaded([head]):
        unembed = head.weight.detach().float()  # (V, d)
        logits = unembed @ _norm_map(final_norm(model), direction.to(unembed.device))
    logits = logits.cpu()[: len(tok)]  # rows past the tokenizer's vocabulary are padding
    cap = logit_softcap(model)
    rows = []
    for label, descending in (("promotes", True), ("suppresses", False)):
        order = torch.sort(logits, descending=descending, stable=True).indices[:k]
        for rank, token_id in enumerate(order.tolist()):
            row = {
                "direction": label,
                "rank": rank + 1,
                "token_id": token_id,
                "token": tok.decode([token_id]),
                "logit": float(logits[token_id]),
            }
            if cap:
                row["logit_capped"] = cap * float(torch.tanh(logits[token_id] / cap))
            rows.append(row)
    frame = pd.DataFrame(rows)
    _, kind = parse_site_name(site)
    frame.attrs.update(
        site=site,
        neuron=neuron,
        meaning=(
            f"residual dimension {neuron}: the logits that dimension of the final residual stream "
            "adds, after the norm weight (shared by every unit of the layer that writes to it)"
            if kind in ("down", "fc_out")
            else "the unit's write vector (its output-projection column) through the final norm's "
            "weight and the unembedding"
        ),
    )
    return frame
