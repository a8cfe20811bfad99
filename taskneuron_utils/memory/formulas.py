"""How ``memory.estimate_memory`` counts: ``MemoryEstimate`` and the per-layer formula of the
bytes autograd saves, for what each method of this package differentiates.

Backward frees a block's saved tensors as it makes that block's gradients, so the memory in
between lies on the straight line between those ends. Saved bytes per token and block (s =
bytes of the model dtype; d = hidden size, d_kv = key/value width, d_ff = FFN width, a = heads,
T = sequence length)::

    Llama family (RMSNorm computed in float32, rotary, gated FFN, SDPA):
      attribution  8d (both norms' float32 inputs) + s(2d + 2 d_kv) (SDPA's q, k, v, output)
                   + 3s d_ff (gate, SiLU, up) + s d (the kept down output)
                   padded batches: + s T (SDPA's float bias), and d_kv -> d with grouped
                   key/value heads (transformers repeats them when there is a mask)
      full         same, no kept output, + 4s d (each norm's normalised input, for its weight,
                   and output, the next linears' input) + s d_ff (SiLU x up, down's input)
      neurons      same, no kept output, + the float32 inputs of the trained rows:
                   4 d_ff + 4d (8d below float32: gate and up each cast their own copy)
                   + k s (2 d_ff + d) (the recomputed units, which index_copy keeps)
      lora         same, no kept output, + 4 x the input widths of the adapted modules
                   (one float32 copy per module below float32, shared in float32)
      eager        s(d + 2 d_kv) (q, k, v; d_kv -> d with grouped heads) + a T (4 + s below
                   float32) (the float32 softmax and its cast) instead of SDPA's terms;
                   full: + s d (the merged heads, o_proj's input)
    Bloom (LayerNorm, ALiBi, always eager attention, GELU saving its input):
      attribution  2s d (LayerNorm inputs) + 3s d (q, k, v copies) + a T (4 + s below float32)
                   + s d_ff (fc_in output) + s d (the kept fc_out output)
      full         same, no kept output, + 2s d (LayerNorm outputs) + s d (merged heads)
                   + s d_ff (GELU output)

Other families use the nearest recipe (gated FFN: Llama's; two-matrix: Bloom's, with SDPA
where the family has it); ``details["validated_family"]`` says whether it was measured.
In neuron and LoRA training nothing upstream of block 0's first trained module is saved.
Model-level terms (N = batch x answer tokens, V = vocabulary): the saved float32 log-softmax of
the answer logits (4NV); the attention mask (B T^2: bool for SDPA with padding, dtype for
eager); the final norm's input; and "head", the largest of three moments early in backward:
the NLL's dense gradient and the log-softmax's input gradient (8NV); the logits' gradient cast
to the model dtype plus the LM head's weight gradient (full); that weight gradient plus the top
block's FFN backward temporaries (3s d_ff per token; 5s d_ff for Bloom's GELU gradient, written
in Python ops; attribution: + that block's kept site gradients), after the log-softmax's output
is freed.

This is Korthikanti et al. (2022, "Reducing Activation Recomputation in Large Transformer
Models", Sec. 4.1: 34 s b h + 5 a s^2 b bytes a GPT-3 layer in fp16, no recomputation) redone
for these blocks and for what each method differentiates. ``tests/test_memory.py`` checks it
against measured peaks: within 2% on random Llama and Bloom models (float32 and bfloat16, SDPA
and eager, grouped-query heads, padded batches, all four methods) and on the default model; the
CUDA path (kernel choices, the foreach step) is what ``benchmarks/gpu_check.py`` reports.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd
import torch
from ..attribution.budget import default_budget, largest_fitting
from ..attribution.cost import (
    forward_pass,
    grad_pass,
    layer_activation_bytes,
    path_pass,
    relp_surrogate_bytes,
    shapes_of,
    site_widths,
    statistic_pass,
)
from ..core.layout import ffn_sites
from ..training.finetuning import lora_targets

# "attribution" is grad x act, as ``tn.attribute`` runs it by default; the other attribution
# methods by their ``tn.attribute`` names; then the training methods of ``tn.finetune``.
ATTRIBUTION_METHODS = (
    "attribution",
    "grad_x_act",
    "attribution_patching",
    "relp",
    "activation",
    "integrated_gradients",
    "ablation",
)
METHODS = (*ATTRIBUTION_METHODS, "full", "neurons", "lora")
TRAINING_METHODS = ("full", "neurons", "lora")
GiB = 1024**3

# LoRA target module name -> which tensor of the block it reads.
_LORA_INPUT = {
    "q_proj": "y1",
    "k_proj": "y1",
    "v_proj": "y1",
    "qkv_proj": "y1",
    "query_key_value": "y1",
    "c_attn": "y1",
    "o_proj": "ctx",
    "dense": "ctx",
    "gate_proj": "y2",
    "up_proj": "y2",
    "gate_up_proj": "y2",
    "c_fc": "y2",
    "dense_h_to_4h": "y2",
    "fc1": "y2",
    "down_proj": "act",
    "dense_4h_to_h": "act",
    "fc2": "act",
}


@dataclass
class MemoryEstimate:
    """Bytes one step needs, by component; ``peak`` is what a run should see at its maximum.

    Attributes:
        parameters: the model's weights and buffers, plus float32 trained copies (neuron rows,
            LoRA adapters).
        gradients: parameter gradients at the end of backward (attribution: none).
        optimizer: AdamW's two moments and step counters.
        activations: tensors saved for backward at its start, plus (attribution) the kept site
            outputs, plus the saved log-softmax of the answer logits.
        transient: the larger phase's short-lived extra: at the start of backward, the logits'
            gradients (and the LM head's weight gradient, full); at the end, the kept site
            gradients (attribution) or the optimizer-step temporaries (training).
        peak: see the module docstring; ``details`` holds each phase and the per-layer figures.
    """

    model: str
    method: str
    dtype: str
    batch_size: int
    seq_len: int
    answer_len: int
    device: str
    n_params: int
    n_trainable: int
    parameters: int
    gradients: int
    optimizer: int
    activations: int
    transient: int
    peak: int
    details: dict = field(default_factory=dict, repr=False)

    COMPONENTS = ("parameters", "gradients", "optimizer", "activations", "transient", "peak")

    def to_frame(self) -> pd.DataFrame:
        """One row a component: bytes and GiB."""
        rows = [
            {"component": c, "bytes": getattr(self, c), "GiB": getattr(self, c) / GiB}
            for c in self.COMPONENTS
        ]
        return pd.DataFrame(rows).set_index("component")

    def as_row(self) -> dict:
        """The estimate as one flat row (GiB), for tables of several models or methods."""
        row = {
            "model": self.model,
            "method": self.method,
            "dtype": self.dtype,
            "batch": self.batch_size,
            "seq": self.seq_len,
            "answer": self.answer_len,
            "params (B)": self.n_params / 1e9,
            "trainable (M)": self.n_trainable / 1e6,
        }
        row.update({f"{c} GiB": getattr(self, c) / GiB for c in self.COMPONENTS})
        return row

    def __repr__(self) -> str:
        head = (
            f"MemoryEstimate({self.model}, {self.method}, {self.dtype}, batch {self.batch_size}"
            f" x {self.seq_len} tokens ({self.answer_len} answer), {self.device}; "
            f"{self.n_params / 1e6:,.1f}M params, {self.n_trainable / 1e6:,.2f}M trained)"
        )
        lines = [head] + [f"  {c:<12}{getattr(self, c) / GiB:>9.3f} GiB" for c in self.COMPONENTS]
        if self.details.get("peak_formula"):
            lines.append(f"  peak = {self.details['peak_formula']}")
        return "\n".join(lines)


# --- the estimate -----------------------------------------------------------------------------


def estimate_components(
    model,
    name,
    method,
    dtype,
    batch_size,
    seq_len,
    answer_len,
    k,
    lora_r,
    lora_target,
    padding,
    device,
    attribution: dict | None = None,
) -> MemoryEstimate:
    """The estimate for a meta-device ``model`` (``memory.meta_model``); arguments as in
    ``memory.estimate_memory``, already checked there (``attribution``: ``kinds``, ``steps``,
    ``units``, ``max_memory`` of the attribution methods)."""
    if method in ATTRIBUTION_METHODS:
        return attribution_estimate(
            model,
            name,
            method,
            dtype,
            batch_size,
            seq_len,
            answer_len,
            padding,
            device,
            **(attribution or {}),
        )
    s = torch.empty((), dtype=dtype).element_size()
    sh = shapes_of(model)
    B, T, L, V, d = batch_size, seq_len, sh.layers, sh.vocab, sh.d
    tokens = B * T
    N = B * answer_len
    params = list(model.parameters())
    n_params = sum(p.numel() for p in params)
    param_bytes = sum(p.numel() * p.element_size() for p in params)
    param_bytes += sum(b.numel() * b.element_size() for b in model.buffers())
    largest = max(p.numel() for p in params)

    lora_inputs: tuple[str, ...] = ()
    if method == "full":
        trained, state_size, copies = n_params, s, 0
        tensors = len(params)
    elif method == "neurons":
        sites = ffn_sites(model)
        rows = [(round(k * site.n_neurons), site.n_params) for site in sites]
        trained = sum(n * width for n, width in rows)
        state_size, copies, tensors = 4, trained * 4, sum(1 for n, _ in rows if n)
        largest = max(n * width for n, width in rows)
    else:  # lora
        targets = list(lora_target or lora_targets(model))
        adapted = [
            m
            for n, m in model.named_modules()
            if n.split(".")[-1] in targets and hasattr(m, "weight") and m.weight.dim() == 2
        ]
        trained = sum(lora_r * (m.weight.shape[0] + m.weight.shape[1]) for m in adapted)
        state_size, copies, tensors = 4, trained * 4, 2 * len(adapted)
        largest = max(lora_r * max(m.weight.shape) for m in adapted) if adapted else 0
        lora_inputs = tuple(_LORA_INPUT[t] for t in targets if t in _LORA_INPUT)
    per_token = layer_activation_bytes(sh, method, s, T, lora_inputs, padding=padding, k=k)
    per_layer = sum(per_token.values()) * tokens
    first = sum(
        layer_activation_bytes(
            sh, method, s, T, lora_inputs, first_layer=True, padding=padding, k=k
        ).values()
    )
    layers = per_layer * (L - 1) + first * tokens
    # Model-level terms: the final norm's input (fp32 in Llama's RMSNorm), the embeddings'
    # LayerNorm (Bloom), the attention mask, the LM head's input (full), the saved log-softmax.
    model_level = {
        "final norm input": tokens * d * (4 if sh.gated else s),
        "embedding LayerNorm input": 0 if sh.gated else tokens * d * s,
        "attention mask": B * T * T * (s if sh.eager else 1 if padding else 0),
        "LM head input (answer positions)": N * d * s if method == "full" else 0,
        "log-softmax of the answer logits (fp32)": 4 * N * V,
    }
    activations = layers + sum(model_level.values())
    # Three moments early in backward, on top of the activations: the NLL's dense gradient and
    # the log-softmax's input gradient (8NV); then the logits' gradient in the model dtype and
    # the LM head's weight gradient (full only); then, with the log-softmax's output freed, the
    # top block's FFN backward temporaries (SiLU x up: 3 d_ff; Bloom's GELU gradient, written
    # out in Python ops: about 5 d_ff) next to that weight gradient.
    head_grad = V * d * s if method == "full" else 0
    ffn_backward = (3 if sh.gated else 5) * tokens * sh.d_ff * s
    head = max(
        8 * N * V, (s if s != 4 else 0) * N * V + head_grad, head_grad - 4 * N * V + ffn_backward
    )

    gradients = trained * state_size
    optimizer = 2 * trained * state_size + 4 * tensors
    step_temp = trained * state_size if device.startswith("cuda") else 2 * largest * state_size
    start = activations + head
    end = gradients + step_temp
    static = param_bytes + copies + optimizer
    transient = head if start >= end else step_temp
    phase = "backward start" if start >= end else "optimizer step"
    peak = static + max(start, end)
    details = {
        "family": sh.family,
        "attention": "eager" if sh.eager else "sdpa",
        # Measured against: the Llama and Bloom blocks. Other families use the nearest recipe.
        "validated_family": sh.family in ("llama", "bloom"),
        "shapes": {
            "d": d,
            "d_kv": sh.d_kv,
            "d_ff": sh.d_ff,
            "heads": sh.heads,
            "layers": L,
            "vocab": V,
        },
        "per_token_layer_bytes": per_token,
        "layer_bytes": per_layer,
        "layers_bytes": layers,
        "model_level_bytes": model_level,
        "backward_start_bytes": start,
        "backward_end_bytes": end,
        "phase": phase,
        "peak_formula": _FORMULAS[phase],
        "trained_copies_bytes": copies,
    }
    return MemoryEstimate(
        model=name,
        method=method,
        dtype=str(dtype).replace("torch.", ""),
        batch_size=B,
        seq_len=T,
        answer_len=answer_len,
        device=device,
        n_params=n_params,
        n_trainable=trained,
        parameters=param_bytes + copies,
        gradients=gradients,
        optimizer=optimizer,
        activations=int(activations),
        transient=int(transient),
        peak=int(peak),
        details=details,
    )


_FORMULAS = {
    "backward start": "parameters + optimizer + activations + transient (start of backward)",
    "optimizer step": "parameters + optimizer + gradients + transient (optimizer step)",
}


def attribution_estimate(
    model,
    name,
    method,
    dtype,
    batch_size,
    seq_len,
    answer_len,
    padding,
    device,
    kinds=None,
    steps: int = 16,
    units: int | None = None,
    max_memory: int | None = None,
) -> MemoryEstimate:
    """One pass of an attribution method (``tn.attribute``'s, ``attribution.cost``), with
    the stacked copies of integrated gradients and ablation as ``tn.attribute`` sizes them:
    within ``max_memory``, or by default grad x act's pass (at least ``MEMORY_FLOOR``; the
    cap at a share of the free memory is left out, as it depends on the machine at run time)."""
    s = torch.empty((), dtype=dtype).element_size()
    sh = shapes_of(model)
    widths = site_widths(model, kinds)
    B, T = batch_size, seq_len
    N = B * answer_len
    param_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
    param_bytes += sum(b.numel() * b.element_size() for b in model.buffers())
    n_params = sum(p.numel() for p in model.parameters())
    gxa = grad_pass(sh, s, B, T, N, padding, widths)
    budget = max_memory if max_memory is not None else default_budget(gxa["peak"], None)
    copies = 1
    if method in ("attribution", "grad_x_act", "attribution_patching"):
        part, formula = gxa, "parameters + grad x act's pass (every site kept with its gradient)"
    elif method == "relp":
        # attribution patching's pass with what the rules' surrogates change in the saved
        # tensors (norm inputs no longer saved; act(x) / x and the halved up on top)
        change = sh.layers * B * T * relp_surrogate_bytes(sh, s, widths)
        start = gxa["start"] + change
        part = {
            **gxa,
            "activations": gxa["activations"] + change,
            "start": start,
            "peak": max(start, gxa["end"]),
            "phase": "backward start" if start >= gxa["end"] else "backward end",
        }
        formula = "parameters + grad x act's pass + RelP's surrogates (relp_surrogate_bytes)"
    elif method == "activation":
        part = statistic_pass(sh, s, B, T, padding, widths)
        formula = "parameters + one forward, every site's output kept"
    elif method == "integrated_gradients":
        parts = []
        for kind, width in widths.items():
            points = largest_fitting(
                steps + 1,
                lambda k, kind=kind, width=width: path_pass(
                    sh, s, k, B, T, N, padding, kind, width
                )["peak"],
                budget,
            )
            parts.append((path_pass(sh, s, points, B, T, N, padding, kind, width), points))
        part, copies = max(parts, key=lambda pair: pair[0]["peak"])
        formula = f"parameters + one site's pass of {copies} path points x {B} rows"
    else:  # ablation
        most = units if units is not None else max(widths.values())
        copies = largest_fitting(
            most, lambda k: forward_pass(sh, s, k * B, T, k * N, padding, k)["peak"], budget
        )
        part = forward_pass(sh, s, copies * B, T, copies * N, padding, copies)
        formula = f"parameters + one forward of {copies} ablated units x {B} rows (no graph)"
    details = {
        "family": sh.family,
        "attention": "eager" if sh.eager else "sdpa",
        "validated_family": sh.family in ("llama", "bloom"),
        "shapes": {
            "d": sh.d,
            "d_kv": sh.d_kv,
            "d_ff": sh.d_ff,
            "heads": sh.heads,
            "layers": sh.layers,
            "vocab": sh.vocab,
        },
        "sites": widths,
        "phase": part["phase"],
        "peak_formula": formula,
        "backward_start_bytes": part["start"],
        "backward_end_bytes": part["end"],
        "copies_per_pass": copies,
        "rows_per_pass": copies * B,
        "budget_bytes": budget if method in ("integrated_gradients", "ablation") else None,
    }
    for key in ("per_token_layer_bytes", "model_level_bytes", "site_bytes"):
        if key in part:
            details[key] = part[key]
    return MemoryEstimate(
        model=name,
        method=method,
        dtype=str(dtype).replace("torch.", ""),
        batch_size=B,
        seq_len=T,
        answer_len=answer_len,
        device=device,
        n_params=n_params,
        n_trainable=0,
        parameters=param_bytes,
        gradients=0,
        optimizer=0,
        activations=int(part["activations"]),
        transient=int(part["peak"] - part["activations"]),
        peak=int(param_bytes + part["peak"]),
        details=details,
    )
