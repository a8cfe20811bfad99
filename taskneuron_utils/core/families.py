"""The family table: for every supported model family, where its transformer blocks and FFN
layers are (``Family``), keyed by ``config.model_type``. ``layout`` turns an entry into
a model's named sites; ``register_family`` adds a family without touching any other code.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from torch import nn

from .wrappers import unwrap
from ..errors import UnsupportedArchitectureError


@dataclass(frozen=True)
class Family:
    """How to find the FFN sites of one model family.

    ``model_types`` are the ``config.model_type`` values of the family. ``blocks`` is the dotted
    path from the top-level model to the list of transformer blocks. ``sites`` maps a site kind
    to the dotted path of its linear layer inside a block. ``fused_halves`` maps a kind to
    (path, half) for projections that compute two sites at once, such as Phi-3's
    ``gate_up_proj`` (half 0 is the gate, half 1 the up projection).

    ``transposed``: the FFN layers store their weight (in, out), as GPT-2's ``Conv1D`` does, so
    neuron ``j`` owns column ``j``. ``attention_targets``: module names of the attention
    projections that LoRA adapts next to the FFN layers (as peft matches them).
    ``logit_softcap``: the config attribute holding a final logit soft-cap
    (``logits = cap * tanh(logits / cap)``, Gemma 2), or None.

    The ``act`` site needs no entry: it is derived from the input projections (``gate``,
    ``up``, ``fc_in``) and the output projection (``down``, ``fc_out``) of the table.
    """

    name: str
    model_types: tuple[str, ...]
    blocks: str
    sites: dict[str, str]
    fused_halves: dict[str, tuple[str, int]] = field(default_factory=dict)
    transposed: bool = False
    attention_targets: tuple[str, ...] = ()
    logit_softcap: str | None = None


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

_QV = ("q_proj", "v_proj")

for _family in (
    Family("llama", ("llama",), "model.layers", _GATED, attention_targets=_QV),
    Family("mistral", ("mistral",), "model.layers", _GATED, attention_targets=_QV),
    Family("qwen2", ("qwen2",), "model.layers", _GATED, attention_targets=_QV),
    Family(
        "gemma",
        ("gemma", "gemma2"),
        "model.layers",
        _GATED,
        attention_targets=_QV,
        logit_softcap="final_logit_softcapping",
    ),
    Family(
        "phi3",
        ("phi3",),
        "model.layers",
        {"down": "mlp.down_proj"},
        fused_halves={"gate": ("mlp.gate_up_proj", 0), "up": ("mlp.gate_up_proj", 1)},
        attention_targets=("qkv_proj",),
    ),
    # GPT-2's "c_proj" (its FFN output) also names its attention output projection.
    Family(
        "gpt2",
        ("gpt2",),
        "transformer.h",
        {"fc_in": "mlp.c_fc", "fc_out": "mlp.c_proj"},
        transposed=True,
        attention_targets=("c_attn",),
    ),
    Family(
        "bloom",
        ("bloom",),
        "transformer.h",
        {"fc_in": "mlp.dense_h_to_4h", "fc_out": "mlp.dense_4h_to_h"},
        attention_targets=("query_key_value",),
    ),
    Family(
        "gpt_neox",
        ("gpt_neox",),
        "gpt_neox.layers",
        {"fc_in": "mlp.dense_h_to_4h", "fc_out": "mlp.dense_4h_to_h"},
        attention_targets=("query_key_value",),
    ),
    Family(
        "opt",
        ("opt",),
        "model.decoder.layers",
        {"fc_in": "fc1", "fc_out": "fc2"},
        attention_targets=_QV,
    ),
):
    register_family(_family)


def family_of(model: nn.Module) -> Family:
    """The registered family of ``model`` (by ``model.config.model_type``; a wrapper such as
    nnsight's LanguageModel by its inner model's, ``wrappers.unwrap``)."""
    inner = unwrap(model)
    model_type = getattr(getattr(inner, "config", None), "model_type", None)
    for family in FAMILIES.values():
        if model_type in family.model_types:
            return family
    supported = ", ".join(f"{f.name} ({'/'.join(f.model_types)})" for f in FAMILIES.values())
    what = type(inner).__name__ + (f" inside {type(model).__name__}" if inner is not model else "")
    raise UnsupportedArchitectureError(
        f"Unsupported architecture: model_type={model_type!r} ({what}). "
        f"Supported families: {supported}. To add one, call "
        "tn.register_family(tn.Family(name=..., model_types=(...,), blocks='path.to.blocks', "
        "sites={'fc_in': 'mlp.in_proj', 'fc_out': 'mlp.out_proj'})); see "
        "help(tn.register_family)."
    )
