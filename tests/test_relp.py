"""RelP (issue 34 part 3) against ground truth: a tiny Llama written out by hand with each of
RelP's rules as its own autograd function (so the check does not share the method's detach
trick), RelP equal to attribution patching where no rule has anything to act on, the forward
pass and the weights untouched, refusals in one line.
"""

from __future__ import annotations

import pytest
import torch
import transformers
from torch import nn
from transformers.models.llama.modeling_llama import apply_rotary_pos_emb

import taskneuron_utils as tn
from taskneuron_utils.attribution.relp import relp_rules
from taskneuron_utils.scoring.loss import answer_losses
from taskneuron_utils.tasks import collate, encode
from tiny_models import TINY_CONFIGS, tiny_llama_model, tiny_model

RULES = ("norm", "identity", "half", "pattern")


@pytest.fixture(scope="module")
def tok(default_tok):
    return default_tok


@pytest.fixture
def llama(tok):
    return tiny_llama_model(tok, initializer_range=0.2).double()


class IdentityRule(torch.autograd.Function):
    """SiLU forward; backward ``silu(x) / x`` (the identity rule)."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return nn.functional.silu(x)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * torch.sigmoid(x)  # silu(x) / x = sigmoid(x)


class HalfRule(torch.autograd.Function):
    """``a * u`` forward; backward: each factor gets half its gradient."""

    @staticmethod
    def forward(ctx, a, u):
        ctx.save_for_backward(a, u)
        return a * u

    @staticmethod
    def backward(ctx, grad):
        a, u = ctx.saved_tensors
        return 0.5 * grad * u, 0.5 * grad * a


def hand_llama(model, input_ids, rules, kept):
    """The Llama forward (one example, no padding) written out, with the RelP rules named in
    ``rules`` applied in the backward; ``kept[site]`` gets each site's output (1, T, n)."""
    config, inner = model.config, model.model
    heads, kv, dim = config.num_attention_heads, config.num_key_value_heads, config.head_dim

    def norm(x, module):  # in float32, as LlamaRMSNorm computes it whatever the model's dtype
        h = x.float()
        scale = torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + module.variance_epsilon)
        return module.weight * (h * (scale.detach() if "norm" in rules else scale)).to(x.dtype)

    x = inner.embed_tokens(input_ids)
    T = input_ids.shape[1]
    cos, sin = inner.rotary_emb(x, torch.arange(T).unsqueeze(0))
    causal = torch.full((T, T), float("-inf"), dtype=x.dtype).triu(1)
    for i, layer in enumerate(inner.layers):
        attention, mlp = layer.self_attn, layer.mlp
        h = norm(x, layer.input_layernorm)
        q = attention.q_proj(h).view(1, T, heads, dim).transpose(1, 2)
        k = attention.k_proj(h).view(1, T, kv, dim).transpose(1, 2)
        v = attention.v_proj(h).view(1, T, kv, dim).transpose(1, 2)
        q, k = apply_rotary_pos_emb(q, k, cos, sin)
        k, v = (t.repeat_interleave(heads // kv, dim=1) for t in (k, v))
        pattern = torch.softmax(q @ k.transpose(-1, -2) * dim**-0.5 + causal, dim=-1)
        if "pattern" in rules:
            pattern = pattern.detach()
        x = x + attention.o_proj((pattern @ v).transpose(1, 2).reshape(1, T, -1))
        h = norm(x, layer.post_attention_layernorm)
        gate, up = mlp.gate_proj(h), mlp.up_proj(h)
        kept[f"layers.{i}.mlp.gate"], kept[f"layers.{i}.mlp.up"] = gate, up
        act = IdentityRule.apply(gate) if "identity" in rules else nn.functional.silu(gate)
        product = HalfRule.apply(act, up) if "half" in rules else act * up
        kept[f"layers.{i}.mlp.act"] = product
        down = mlp.down_proj(product)
        kept[f"layers.{i}.mlp.down"] = down
        x = x + down
    return model.lm_head(norm(x, inner.norm))


def hand_relp(model, tok, data, rules=RULES) -> dict[str, torch.Tensor]:
    """Summed signed scores {site: (n,)}: ``-sum_t g * a`` per example (zero baseline), ``g``
    the gradient of the mean answer NLL through ``hand_llama`` with ``rules``."""
    totals: dict[str, torch.Tensor] = {}
    for example in encode(tok, data):
        ids = torch.tensor([example.input_ids])
        kept: dict[str, torch.Tensor] = {}
        logits = hand_llama(model, ids, rules, kept)[0]
        start = example.answer_start
        loss = nn.functional.cross_entropy(logits[start - 1 : -1], ids[0, start:])
        names = list(kept)
        grads = torch.autograd.grad(loss, [kept[n] for n in names])
        for name, grad in zip(names, grads):
            r = -(grad * kept[name]).detach()[0].sum(0)
            totals[name] = totals.get(name, 0) + r
    return totals


def test_relp_equals_a_hand_written_rule_by_rule_backward_and_each_rule_matters(
    llama, tok, toy_task
):
    data = toy_task.train[:3]
    rel = tn.attribute(llama, tok, data, kinds="all", method="relp", batch_size=2, progress=False)
    with torch.no_grad():  # the hand forward is the model's forward
        ids = torch.tensor([encode(tok, data)[0].input_ids])
        torch.testing.assert_close(hand_llama(llama, ids, RULES, {}), llama(ids).logits)
    expected = hand_relp(llama, tok, data)
    assert set(expected) == set(rel.sum_signed)

    def distance(a, b):  # worst difference over the sites, relative to each site's scale
        return max(float((a[s] - b[s]).abs().max() / b[s].abs().max()) for s in b)

    # The norms compute in float32 (as LlamaRMSNorm does), hence ~1e-6, not float64's 1e-12.
    assert distance(rel.sum_signed, expected) < 1e-5
    gap = {}
    for rule in RULES:  # without any one rule, the hand backward is far from RelP's
        other = hand_relp(llama, tok, data, tuple(r for r in RULES if r != rule))
        gap[rule] = distance(other, expected)
    assert min(gap.values()) > 1e-2, gap


def linear_opt(tok, *, plain: bool):
    """A tiny OPT in float64; unless ``plain``: identity activation, every LayerNorm replaced
    by Identity and the query projection zeroed (the pattern no longer depends on the input),
    so that none of RelP's rules has anything to change."""
    model = tiny_model("opt", seed=2, vocab_size=len(tok)).double()
    if plain:
        return model
    for layer in model.model.decoder.layers:
        layer.activation_fn = transformers.activations.ACT2FN["linear"]
        layer.self_attn_layer_norm = nn.Identity()
        layer.final_layer_norm = nn.Identity()
        with torch.no_grad():
            layer.self_attn.q_proj.weight.zero_()
            layer.self_attn.q_proj.bias.zero_()
    model.model.decoder.final_layer_norm = nn.Identity()
    return model


def test_relp_equals_grad_x_act_without_norms_nonlinearity_or_input_dependent_pattern(
    tok, toy_task
):
    data = toy_task.train[:4]
    for plain in (False, True):
        model = linear_opt(tok, plain=plain)
        relp = tn.attribute(model, tok, data, kinds="all", method="relp", progress=False)
        gxa = tn.attribute(model, tok, data, kinds="all", progress=False)
        worst = max(
            float((relp.sum_signed[s] - gxa.sum_signed[s]).abs().max() / gxa.sum_abs[s].max())
            for s in gxa.sum_signed
        )
        if plain:
            assert worst > 1e-2  # the rules change a normal network's scores
        else:
            assert worst < 1e-10


def test_relp_differs_from_grad_x_act_on_a_normal_llama(llama, tok, toy_task):
    data = toy_task.train[:4]
    relp = tn.attribute(llama, tok, data, method="relp", progress=False)
    gxa = tn.attribute(llama, tok, data, progress=False)
    site = "layers.0.mlp.up"
    relative = (relp.sum_signed[site] - gxa.sum_signed[site]).abs().max() / gxa.sum_abs[site].max()
    assert relative > 0.05
    assert relp.provenance["method"] == "relp" and "RelP" in relp.provenance["relevance"]


def test_forward_and_weights_are_untouched_and_hooks_go_even_on_error(llama, tok, toy_task):
    batch = collate(encode(tok, toy_task.train[:4]), tok.pad_token_id)
    inputs = {k: batch[k] for k in ("input_ids", "attention_mask")}
    weights = {k: v.clone() for k, v in llama.state_dict().items()}
    with torch.no_grad():
        plain = llama(**inputs).logits
    with relp_rules(llama):
        ruled = llama(**inputs).logits
        losses, _ = answer_losses(llama, batch)
    assert torch.equal(plain, ruled.detach())
    tn.attribute(llama, tok, toy_task.train[:4], method="relp", progress=False)
    assert all(torch.equal(weights[k], v) for k, v in llama.state_dict().items())
    with pytest.raises(KeyError), relp_rules(llama):
        raise KeyError("inside")
    assert not any(m._forward_hooks for m in llama.modules())


# Where query and key sit in each fused attention projection, read from transformers' modeling
# code (5.x): GPT-2 splits c_attn's output in thirds; Bloom views query_key_value's as
# (heads, 3, head_dim), GPT-NeoX as (heads, 3 * head_dim) chunked in 3; Phi-3 slices qkv_proj's
# as [heads * head_dim | kv_heads * head_dim | kv_heads * head_dim].
FUSED = {
    "gpt2": ("transformer.h.0.attn.c_attn", lambda c: torch.arange(96) < 64),
    "bloom": (
        "transformer.h.0.self_attention.query_key_value",
        lambda c: (torch.arange(96) % 24) < 16,
    ),
    "gpt_neox": (
        "gpt_neox.layers.0.attention.query_key_value",
        lambda c: (torch.arange(96) % 24) < 16,
    ),
    "phi3": ("model.layers.0.self_attn.qkv_proj", lambda c: torch.arange(64) < 48),
}


@pytest.mark.parametrize("family", list(TINY_CONFIGS))
def test_every_family_keeps_its_forward_and_stops_query_and_key_gradients_only(
    family, tok, toy_task
):
    """Under the rules, the forward is unchanged; the gradient reaching the query and key
    projections (or a fused q/k/v projection's query and key columns) is exactly 0 and the
    values' is not; RelP's scores differ from attribution patching's."""
    model = tiny_model(family, vocab_size=len(tok)).double()
    watched: dict[str, bool | torch.Tensor]  # True: query or key columns, all or a mask
    if family in FUSED:
        path, is_query_or_key = FUSED[family]
        watched = {path: is_query_or_key(model.config)}
    else:
        prefix = "model.decoder.layers.0" if family == "opt" else "model.layers.0"
        watched = {f"{prefix}.self_attn.{name}_proj": name != "v" for name in "qkv"}
    batch = collate(encode(tok, toy_task.train[:3]), tok.pad_token_id)
    grads: dict[str, torch.Tensor] = {}

    def keep_gradient(name):  # registered before the rules: sees the raw output
        def hook(module, args, output):
            if output.requires_grad:
                output.register_hook(lambda grad: grads.__setitem__(name, grad))

        return hook

    handles = [model.get_submodule(p).register_forward_hook(keep_gradient(p)) for p in watched]
    embeds = model.get_input_embeddings()(batch["input_ids"]).detach().requires_grad_()
    inputs = {"inputs_embeds": embeds, "attention_mask": batch["attention_mask"]}
    with torch.no_grad():
        plain = model(**inputs).logits
    with relp_rules(model):
        ruled = model(**inputs).logits
        ruled[:, -1].sum().backward()
    for handle in handles:
        handle.remove()
    assert torch.equal(plain, ruled.detach())
    for name, mask in watched.items():
        if name not in grads:  # no gradient reached it at all: a stopped projection's
            assert mask is True, name
            continue
        columns = grads[name].abs().flatten(0, -2).amax(0)  # (n,) largest |gradient| per column
        mask = torch.full_like(columns, mask, dtype=torch.bool) if isinstance(mask, bool) else mask
        assert (columns[mask] == 0).all() and (columns[~mask] > 0).all(), name
    relp = tn.attribute(model, tok, toy_task.train[:4], method="relp", progress=False)
    patching = tn.attribute(
        model, tok, toy_task.train[:4], method="attribution_patching", progress=False
    )
    site = next(iter(relp.sum_signed))
    difference = (relp.sum_signed[site] - patching.sum_signed[site]).abs().max()
    assert difference > 1e-3 * patching.sum_abs[site].max()


def test_a_family_without_rules_is_refused_in_one_line_before_any_pass(tok, toy_task):
    model = tiny_llama_model(tok)
    model.config.model_type = "my_llama"
    tn.core.register_family(
        tn.core.Family(
            "my_llama",
            ("my_llama",),
            "model.layers",
            {"gate": "mlp.gate_proj", "up": "mlp.up_proj", "down": "mlp.down_proj"},
        )
    )
    calls = []
    model.get_input_embeddings().register_forward_pre_hook(lambda m, a: calls.append(1))
    try:
        with pytest.raises(ValueError, match="has no rules for the 'my_llama' family") as error:
            tn.attribute(model, tok, toy_task.train[:2], method="relp", progress=False)
    finally:
        tn.core.families.FAMILIES.pop("my_llama")
    assert "\n" not in str(error.value) and not calls
