"""What one pass of an attribution method costs, worked out before it runs: its memory (the
bytes autograd saves, block by block, plus the model-level terms) and its work, relative to
gradient x activation on the same data. ``attribute`` sizes the passes of integrated gradients
and exact ablation with it and refuses runs beyond its budgets (``attribution.budget``);
``tn.estimate_memory`` counts with the same functions (``memory.formulas`` adds the training
methods' terms and documents the per-layer formula term by term).

Memory of one pass of ``R`` rows of ``T`` tokens (``N`` answer tokens; ``s`` bytes of the model
dtype; ``L`` blocks; ``V`` vocabulary; ``w`` a site's width; ``W`` the attributed sites' widths
in one block), above the weights:

- ``grad_pass`` (grad x act, attribution patching): every block's saved tensors (the
  ``"attribution"`` formula of ``layer_activation_bytes``, with the kept outputs the graph
  would not save: ``down`` / ``fc_out`` and ``act``) + the model-level terms + the LM head's
  backward moments; or, at the end of backward, every site's output and gradient ``2 L W R T
  s`` + one float32 product; the larger of the two.
- ``path_pass`` (integrated gradients, ``R = points x B``): the same graph with one site kept
  (``R T w s``, where the graph does not save it anyway), the float64 gradient sum
  ``8 B T w`` kept across passes, and the Edit's copy of the site's output, ``R T w s``.
- ``forward_pass`` (exact ablation, no graph): the larger of one block's forward temporaries
  (``forward_block_bytes`` per token) and the head's (the answer logits, their float32 copy
  and log-softmax: ``8 N V`` in float32), beside the hidden states.
- ``statistic_pass`` (activation): a no-graph forward of ``B`` rows with every site's output
  kept (``L W R T s``) and the per-site float32 statistics.

Work: grad x act is one forward and one backward (gradients of the site outputs only) per
batch; a forward alone counts ``FORWARD_SHARE`` of that (floating-point operations: the
backward to the activations multiplies by each weight once, as the forward does).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..core.layout import family_of, ffn_sites

# Families whose attention always materialises the score matrix (no SDPA path).
EAGER_ONLY = {"bloom"}
# A forward pass's share of grad x act's forward + backward (the backward makes gradients of
# activations only: one product with each weight, as the forward).
FORWARD_SHARE = 0.5
# Kinds whose kept output the graph does not save anyway: the last linear's output (the
# residual add saves nothing) and the act values (the frozen output projection saves no input).
UNSAVED = ("down", "fc_out", "act")


@dataclass(frozen=True)
class Shapes:
    """The sizes the formulas need, read from a model (a meta-device one is enough)."""

    d: int
    d_kv: int
    d_ff: int
    heads: int
    kv_heads: int
    layers: int
    vocab: int
    gated: bool
    eager: bool
    family: str
    block_params: int  # parameters of the blocks' matrices (what a token multiplies by)


def shapes_of(model) -> Shapes:
    """The model's ``Shapes``."""
    family = family_of(model)
    config = model.config
    sites = ffn_sites(model)
    first = [s for s in sites if s.layer == 0]
    gated = any(s.kind == "gate" for s in first)
    d_ff = next(s.n_neurons for s in first if s.kind in ("up", "fc_in"))
    d = model.get_input_embeddings().weight.shape[1]
    heads = getattr(config, "num_attention_heads", None) or config.n_head
    kv_heads = getattr(config, "num_key_value_heads", None) or heads
    head_dim = getattr(config, "head_dim", None) or d // heads
    impl = getattr(config, "_attn_implementation", None) or "eager"
    eager = family.name in EAGER_ONLY or impl == "eager"
    embeddings = {id(model.get_input_embeddings().weight), id(model.get_output_embeddings().weight)}
    matrices = sum(
        p.numel() for p in model.parameters() if p.dim() == 2 and id(p) not in embeddings
    )
    return Shapes(
        d=d,
        d_kv=kv_heads * head_dim,
        d_ff=d_ff,
        heads=heads,
        kv_heads=kv_heads,
        layers=len({s.layer for s in sites}),
        vocab=model.get_output_embeddings().weight.shape[0],
        gated=gated,
        eager=eager,
        family=family.name,
        block_params=matrices,
    )


def site_widths(model, kinds=None) -> dict[str, int]:
    """{kind: units} of one block's sites of ``kinds`` (as ``tn.ffn_sites``)."""
    return {s.kind: s.n_neurons for s in ffn_sites(model, kinds) if s.layer == 0}


def layer_activation_bytes(
    sh: Shapes,
    method: str,
    s: int,
    seq_len: int,
    lora_inputs: tuple[str, ...] = (),
    first_layer: bool = False,
    padding: bool = True,
    k: float = 0.10,
) -> dict:
    """{saved tensor: bytes per token} of one block for ``method`` (the formula of
    ``memory.formulas``' docstring, term by term). ``s``: bytes of the model dtype.
    ``first_layer``: in neuron and LoRA training nothing before the first trained module
    requires grad, so the block's first tensors are not saved. ``"path"``: attribution's graph
    without any kept site output."""
    d, d_kv, d_ff, a, T = sh.d, sh.d_kv, sh.d_ff, sh.heads, seq_len
    low = s != 4  # a float32 copy is a new tensor only below float32
    weights = method == "full"
    terms: dict[str, float] = {}
    if sh.gated:  # Llama-like: RMSNorm computed in float32, rotary, gate/up/down
        terms["norm inputs (fp32)"] = 2 * d * 4 + 2 * 4
        # Grouped key/value heads are repeated to every head (repeat_kv copies) in eager
        # attention, and in SDPA whenever there is a padding mask (transformers' use_gqa_in_sdpa).
        kv = d if sh.kv_heads < sh.heads and (sh.eager or padding) else d_kv
        if sh.eager:
            terms["q, k, v"] = (d + 2 * kv) * s
            terms["softmax (fp32, + cast)"] = a * T * (4 + (s if low else 0))
        else:
            terms["q, k, v, attention output"] = (2 * d + 2 * kv) * s + a * 4
            if padding:  # SDPA turns the boolean mask into a float bias and keeps it
                terms["attention bias (per layer)"] = T * s
        terms["gate, SiLU, up"] = 3 * d_ff * s
        if weights:
            terms["norm outputs (x weight, inputs of q/k/v and gate/up)"] = 4 * d * s
            terms["SiLU x up (input of down)"] = d_ff * s
            if sh.eager:
                terms["merged heads (input of o_proj)"] = d * s
    else:  # Bloom-like: LayerNorm, two-matrix FFN; attention from the fused qkv
        terms["LayerNorm inputs"] = 2 * d * s + 4 * 4
        if sh.eager:
            terms["q, k, v copies"] = 3 * d * s
            terms["softmax (fp32, + cast)"] = a * T * (4 + (s if low else 0))
        else:
            terms["q, k, v, attention output"] = 4 * d * s + a * 4
        terms["fc_in output (GELU input)"] = d_ff * s
        if weights:
            terms["LayerNorm outputs (inputs of qkv and fc_in)"] = 2 * d * s
            terms["GELU output (input of fc_out)"] = d_ff * s
            terms["merged heads (input of dense)"] = d * s
    if method == "attribution":
        terms["kept output of the FFN's last linear"] = d * s
    if method == "neurons":  # F.linear(x.to(float32), rows) saves each trained site's input
        terms["inputs of the trained rows (fp32)"] = (
            2 if sh.gated and low else 1
        ) * d * 4 + d_ff * 4
        # Edit.replace's index_copy keeps its source: the recomputed units, in the model dtype.
        widths = 2 * d_ff + d if sh.gated else d_ff + d
        terms["recomputed units of the trained rows"] = k * widths * s
    if method == "lora":  # peft casts each adapted module's input to the adapter's float32
        inputs = {"y1": d, "ctx": d, "y2": d, "act": d_ff}
        used = [inputs[w] for w in lora_inputs] if low else [inputs[w] for w in set(lora_inputs)]
        terms["inputs of the adapted modules (fp32)"] = 4 * sum(used)
    if first_layer and method in ("neurons", "lora"):
        # Nothing upstream of the first trained module is saved: for neuron rows, the whole
        # attention half of block 0; for LoRA on q/v, block 0's first norm.
        drop = (
            [
                "norm inputs (fp32)",
                "LayerNorm inputs",
                "q, k, v",
                "q, k, v copies",
                "softmax (fp32, + cast)",
                "q, k, v, attention output",
                "attention bias (per layer)",
            ]
            if method == "neurons" or "y1" not in lora_inputs
            else []
        )
        for key in drop:
            terms.pop(key, None)
        if method == "lora" and "y1" in lora_inputs:
            key = "norm inputs (fp32)" if sh.gated else "LayerNorm inputs"
            terms[key] = terms[key] / 2
    return terms


def model_level_bytes(sh: Shapes, s: int, rows: int, T: int, N: int, padding: bool) -> dict:
    """Saved tensors outside the blocks: the final norm's input (fp32 in Llama's RMSNorm), the
    embeddings' LayerNorm (Bloom), the attention mask, the saved log-softmax of the answers."""
    tokens = rows * T
    return {
        "final norm input": tokens * sh.d * (4 if sh.gated else s),
        "embedding LayerNorm input": 0 if sh.gated else tokens * sh.d * s,
        "attention mask": rows * T * T * (s if sh.eager else 1 if padding else 0),
        "log-softmax of the answer logits (fp32)": 4 * N * sh.vocab,
    }


def head_bytes(sh: Shapes, s: int, tokens: int, N: int, top_site_grads: float) -> float:
    """The largest of three moments early in backward, on top of the activations: the NLL's
    dense gradient and the log-softmax's input gradient (8NV); the logits' gradient cast to
    the model dtype; then, with the log-softmax's output freed, the top block's FFN backward
    temporaries (SiLU x up: 3 d_ff; Bloom's GELU gradient, written out in Python ops: about 5
    d_ff) and the top block's kept site gradients."""
    V = sh.vocab
    ffn_backward = (3 if sh.gated else 5) * tokens * sh.d_ff * s + top_site_grads
    return max(8 * N * V, (s if s != 4 else 0) * N * V, ffn_backward - 4 * N * V)


def grad_pass(
    sh: Shapes, s: int, rows: int, T: int, N: int, padding: bool, widths: dict[str, int]
) -> dict:
    """Grad x act's pass over ``rows`` rows, every site of ``widths`` ({kind: units} of one
    block) kept with its gradient: {"activations", "start", "end", "peak", "phase", ...}
    (bytes above the weights; ``peak`` = max(start, end))."""
    tokens = rows * T
    width = sum(widths.values())
    per_token = layer_activation_bytes(sh, "attribution", s, T, padding=padding)
    per_token.pop("kept output of the FFN's last linear")
    unsaved = sum(n for kind, n in widths.items() if kind in UNSAVED)
    per_token["kept site outputs the graph does not save"] = unsaved * s
    model_level = model_level_bytes(sh, s, rows, T, N, padding)
    activations = sum(per_token.values()) * tokens * sh.layers + sum(model_level.values())
    start = activations + head_bytes(sh, s, tokens, N, tokens * s * width)
    kept = sh.layers * width * tokens * s  # outputs and gradients of every site, at the end
    product = tokens * max(widths.values()) * 4 * (3 if s != 4 else 1)  # grad.float() * act
    end = 2 * kept + product
    return {
        "activations": activations,
        "start": start,
        "end": end,
        "peak": max(start, end),
        "phase": "backward start" if start >= end else "backward end",
        "per_token_layer_bytes": per_token,
        "model_level_bytes": model_level,
    }


def relp_surrogate_bytes(sh: Shapes, s: int, widths: dict[str, int]) -> float:
    """What RelP's rules (``attribution.relp``) change in what one block saves for the backward,
    bytes per token, against attribution patching's graph over the same sites ``widths``:
    each norm's input is no longer saved (its scale is held constant: ``-2 d``, float32 in
    Llama's RMSNorm); where the activation's input is a kept site (gate, fc_in) its ratio
    ``act(x) / x`` comes on top, and where ``up`` is kept the half rule's new copy of it does
    (``d_ff`` each). Measured on tiny Llama and Bloom models (tests/test_memory.py), float32:
    within 0.3 d per token and block."""
    norms = 2 * sh.d * (4 if sh.gated else s)
    kept_input = any(kind in widths for kind in ("gate", "fc_in"))
    kept_up = sh.gated and "up" in widths
    return sh.d_ff * s * (int(kept_input) + int(kept_up)) - norms


def path_pass(
    sh: Shapes, s: int, points: int, B: int, T: int, N: int, padding: bool, kind: str, width: int
) -> dict:
    """Integrated gradients' pass at one site of ``kind`` (``width`` units): ``points`` copies
    of a batch of ``B`` rows (``N`` answer tokens), one site kept with its gradient; the
    float64 gradient sum of the site, kept across the passes of one site, on top."""
    rows, tokens = points * B, points * B * T
    per_token = layer_activation_bytes(sh, "attribution", s, T, padding=padding)
    per_token.pop("kept output of the FFN's last linear")
    model_level = model_level_bytes(sh, s, rows, T, points * N, padding)
    site = {
        "kept site output (unsaved kinds)": tokens * width * s if kind in UNSAVED else 0,
        "edit's copy of the site output": tokens * width * s,
        "float64 gradient sum": 8 * B * T * width,
    }
    activations = sum(per_token.values()) * tokens * sh.layers + sum(model_level.values())
    activations += sum(site.values())
    start = activations + head_bytes(sh, s, tokens, points * N, 0)
    return {
        "activations": activations,
        "start": start,
        "end": start,
        "peak": start,
        "phase": "backward start",
        "per_token_layer_bytes": per_token,
        "model_level_bytes": model_level,
        "site_bytes": site,
    }


def forward_block_bytes(sh: Shapes, s: int, kept: bool = False) -> float:
    """One block's forward temporaries per token without a graph: Llama's MLP holds SiLU(gate),
    up and their product (3 d_ff), Bloom's the fc_in output and the intermediate results of
    its GELU, written out in Python ops (about 6 d_ff, measured); one d_ff less beyond the kept
    outputs when a trace keeps the sites; beside them the residual stream and the norm's float32
    copies (about 4 d)."""
    ffn = (3 if sh.gated else 6) - (1 if kept else 0)
    return (ffn * sh.d_ff + 4 * sh.d) * s


def forward_pass(
    sh: Shapes, s: int, rows: int, T: int, N: int, padding: bool, edited: int = 0
) -> dict:
    """A forward pass without a graph over ``rows`` rows (``N`` answer tokens): exact
    ablation's, ``edited`` units of one site edited (the Edit's copies of them)."""
    tokens = rows * T
    hidden = 2 * tokens * sh.d * s  # the residual stream and the block's output
    block = tokens * forward_block_bytes(sh, s) + 3 * tokens * edited * s
    # The answer logits, their float32 copy (below float32) and float32 log-softmax.
    head = (s + (4 if s != 4 else 0) + 4) * N * sh.vocab
    mask = rows * T * T * (s if sh.eager else 1 if padding else 0)
    peak = hidden + mask + max(block, head)
    return {
        "activations": hidden + mask,
        "start": peak,
        "end": peak,
        "peak": peak,
        "phase": "forward (block)" if block >= head else "forward (LM head)",
    }


def statistic_pass(sh: Shapes, s: int, rows: int, T: int, padding: bool, widths) -> dict:
    """The activation method's forward over ``rows`` rows: no graph, every site's output of
    ``widths`` kept, then a float32 statistic of each."""
    tokens = rows * T
    kept = sh.layers * sum(widths.values()) * tokens * s
    mask = rows * T * T * (s if sh.eager else 1 if padding else 0)
    block = tokens * forward_block_bytes(sh, s, kept=True)
    statistic = 2 * tokens * max(widths.values()) * 4  # |a| (or a > 0) and its masked product
    peak = kept + mask + max(block, statistic)
    return {
        "activations": kept + mask,
        "start": peak,
        "end": peak,
        "peak": peak,
        "phase": "forward",
    }


def grad_x_act_flops(sh: Shapes, tokens: int) -> float:
    """Floating-point operations of grad x act over ``tokens`` tokens: a forward and a
    backward to the activations, each two per weight and token."""
    return 4.0 * sh.block_params * tokens
