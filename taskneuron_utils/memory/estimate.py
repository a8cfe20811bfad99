"""How much memory a run needs, before the run: ``tn.estimate_memory``, and ``measure_peak``.

    tn.estimate_memory("meta-llama/Llama-2-7b-hf", batch_size=4, seq_len=512,
                       method="attribution", dtype=torch.bfloat16)
    tn.estimate_table(["llama-2-7b", "bloom-7b1"], batch_size=4, seq_len=512)  # a DataFrame

The model is built on the meta device (no weights are allocated or downloaded) from a
transformers config: a config object, a dict, a hub id or local folder (its ``config.json``),
or one of ``KNOWN_CONFIGS`` (Llama-2-7b, Bloom-7b1 and the embedded default model), which need
no network. Parameters, LoRA adapters and neuron rows are counted on that model; activations
come from a per-layer formula (below) that lists the tensors autograd saves in the transformers
implementation of the family, for exactly what this package runs:

- ``"attribution"``: ``tn.attribute``: every parameter frozen, gradients of the FFN site
  outputs only (``hooks.Trace.backward``), LM head on answer positions only
  (``loss.answer_losses``), site outputs and their gradients kept until the batch is reduced.
- ``"full"``: ``tn.finetune(method="full")``: torch AdamW over every parameter, in the
  parameters' dtype (two moments and the gradient in that dtype: a bf16 model trains in pure
  bf16; the package keeps no float32 master copy).
- ``"neurons"``: ``tn.finetune(neurons=ns)`` with ``k`` of every site's neurons: every weight
  frozen; the selected rows are float32 copies (``Site.read``) that alone get gradients and
  AdamW state, so those scale with ``k``; activations do not (the backward pass still runs
  through every layer).
- ``"lora"``: ``tn.finetune(method="lora")``: peft adapters of rank ``lora_r`` on
  ``training.lora_targets(model)`` (FFN linears plus q/v), kept in float32 by peft.

The peak is that of one steady-state step (``measure_peak`` on CPU, or
``torch.cuda.max_memory_allocated`` on a GPU, counts the same thing)::

    attribution  params + max(activations + head,            (start of backward)
                              every site's output and gradient)  (end of backward)
    training     params + trained copies + optimizer
                 + max(activations + head,                    (start of backward)
                       gradients + optimizer-step temporaries)   (AdamW: one moment-sized
                                                                 buffer with CUDA's foreach
                                                                 step, 2 x the largest
                                                                 tensor on the CPU)

The per-layer formula and its sources: ``memory.formulas``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import pandas as pd
import torch

from ..attribution.budget import parse_memory
from ..neurons.neuron_set import check_fraction
from .formulas import GiB, METHODS, MemoryEstimate, estimate_components

if TYPE_CHECKING:
    from transformers import PretrainedConfig

T = TypeVar("T")

__all__ = [
    "KNOWN_CONFIGS",
    "ALIASES",
    "METHODS",
    "GiB",
    "MemoryEstimate",
    "estimate_memory",
    "estimate_table",
    "meta_model",
    "measure_peak",
]

# Configs of the paper's models, copied from their config.json on the Hugging Face Hub
# (meta-llama/Llama-2-7b-hf and bigscience/bloom-7b1, read 2025), so that estimates need no
# network; the architecture fields only (what the parameter count and activations depend on).
KNOWN_CONFIGS: dict[str, dict] = {
    # https://huggingface.co/meta-llama/Llama-2-7b-hf/blob/main/config.json (6,738,415,616 params)
    "meta-llama/Llama-2-7b-hf": dict(
        model_type="llama",
        hidden_size=4096,
        intermediate_size=11008,
        num_hidden_layers=32,
        num_attention_heads=32,
        num_key_value_heads=32,
        vocab_size=32000,
        max_position_embeddings=4096,
        rms_norm_eps=1e-5,
        hidden_act="silu",
        tie_word_embeddings=False,
        bos_token_id=1,
        eos_token_id=2,
    ),
    # https://huggingface.co/bigscience/bloom-7b1/blob/main/config.json (7,069,016,064 params;
    # d_ff = 4 x hidden size, tied input and output embeddings)
    "bigscience/bloom-7b1": dict(
        model_type="bloom",
        hidden_size=4096,
        n_layer=30,
        n_head=32,
        vocab_size=250880,
        layer_norm_epsilon=1e-5,
        apply_residual_connection_post_layernorm=False,
        attention_dropout=0.0,
        hidden_dropout=0.0,
        tie_word_embeddings=True,
        bos_token_id=1,
        eos_token_id=2,
        pad_token_id=3,
    ),
    # The embedded default model (tn.load_model()): SmolLM2-135M-Instruct, as its GGUF converts
    # (https://huggingface.co/HuggingFaceTB/SmolLM2-135M-Instruct/blob/main/config.json).
    "HuggingFaceTB/SmolLM2-135M-Instruct": dict(
        model_type="llama",
        hidden_size=576,
        intermediate_size=1536,
        num_hidden_layers=30,
        num_attention_heads=9,
        num_key_value_heads=3,
        head_dim=64,
        vocab_size=49152,
        max_position_embeddings=8192,
        rms_norm_eps=1e-5,
        hidden_act="silu",
        tie_word_embeddings=True,
        bos_token_id=1,
        eos_token_id=2,
        pad_token_id=2,
    ),
}
ALIASES = {
    "llama-2-7b": "meta-llama/Llama-2-7b-hf",
    "bloom-7b1": "bigscience/bloom-7b1",
    "default": "HuggingFaceTB/SmolLM2-135M-Instruct",
    "smollm2-135m-instruct": "HuggingFaceTB/SmolLM2-135M-Instruct",
    "smollm2-135m-instruct-q4_1": "HuggingFaceTB/SmolLM2-135M-Instruct",
}


def estimate_memory(
    model: str | os.PathLike | PretrainedConfig | Mapping[str, Any] | torch.nn.Module | None,
    batch_size: int = 8,
    seq_len: int = 512,
    method: str = "attribution",
    *,
    dtype: torch.dtype | str | None = None,
    answer_len: int | None = None,
    k: float = 0.10,
    lora_r: int = 8,
    lora_target: list[str] | None = None,
    attn_implementation: str | None = None,
    padding: bool = True,
    device: str = "cuda",
    kinds: str | Sequence[str] | None = None,
    steps: int = 16,
    units: int | None = None,
    max_memory: int | str | None = None,
) -> MemoryEstimate:
    """Memory one attribution batch or one training step needs, without loading the model.

    Args:
        model: a hub id or local folder (its config is read; ``KNOWN_CONFIGS`` ids and the
            aliases ``"llama-2-7b"``, ``"bloom-7b1"``, ``"default"`` need no network), a
            transformers config, a config dict (with ``model_type``), or a loaded model.
            None: the embedded default model.
        batch_size: examples per batch (``tn.attribute`` / ``tn.finetune``'s ``batch_size``).
        seq_len: tokens per example after padding (prompt + answer).
        method: an attribution method of ``tn.attribute``: ``"attribution"`` (= its default,
            ``"grad_x_act"``), ``"attribution_patching"`` (a zero or mean baseline: the same
            pass), ``"relp"`` (attribution patching's pass plus the surrogates of RelP's
            rules), ``"activation"``, ``"integrated_gradients"``, ``"ablation"``; or a
            training method of ``tn.finetune``: ``"full"``, ``"neurons"`` or ``"lora"``.
        dtype: the model's dtype; default: a loaded model's own, else bfloat16 on ``"cuda"`` and
            float32 on ``"cpu"``.
        answer_len: answer tokens per example (the loss and LM head run on these only). None:
            ``seq_len``, the worst case; classification answers are 1-3 tokens.
        k: fraction of each site's neurons trained (``"neurons"``), as in ``rel.top_k(k)``.
        lora_r: the LoRA rank (``training.LoRAConfig``'s ``r``, default as there).
        lora_target: the LoRA target modules (``LoRAConfig``'s ``target``; None:
            ``lora_targets(model)``, as there).
        attn_implementation: ``"sdpa"`` or ``"eager"``; default: what transformers picks.
        padding: the batches are padded (examples of different lengths: the usual case). With
            SDPA, transformers then passes a mask, which repeats grouped key/value heads and
            keeps a float bias per layer; False for batches of equal lengths.
        device: ``"cuda"`` (AdamW's foreach step: one moment-sized temporary) or ``"cpu"``
            (per-tensor step: two temporaries of the largest parameter).
        kinds: the attributed sites (``tn.attribute``'s ``kinds``: None, the linear sites;
            ``"act"``; ...), for the attribution methods.
        steps: integrated gradients' ``steps`` (its path has ``steps + 1`` points).
        units: ablation: the units ablated at one site (None: as many as one pass holds).
        max_memory: integrated gradients' and ablation's ``max_memory`` (bytes or ``"2GB"``):
            the budget their stacked copies are sized by; None: ``tn.attribute``'s default
            (grad x act's pass on the same batch, at least ``attribution.budget.MEMORY_FLOOR``;
            its cap at a share of the free memory depends on the machine at run time and is
            left out). ``details["copies_per_pass"]`` says how many points or units one pass
            holds.

    Returns:
        MemoryEstimate (``print`` it, or ``.to_frame()``); sizes in bytes.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    if batch_size < 1 or seq_len < 2:
        raise ValueError(f"batch_size must be >= 1 and seq_len >= 2, got {batch_size}, {seq_len}")
    if method == "neurons":
        check_fraction(k)
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be an integer >= 1, got {steps!r}")
    if units is not None and units < 1:
        raise ValueError(f"units must be >= 1 (units ablated at one site), got {units!r}")
    answer_len = seq_len if answer_len is None else answer_len
    if not 1 <= answer_len <= seq_len:
        raise ValueError(f"answer_len must be in [1, seq_len], got {answer_len}")
    config, name, loaded_dtype = _resolve_config(model)
    if dtype is None:
        dtype = loaded_dtype or (torch.bfloat16 if device.startswith("cuda") else torch.float32)
    dtype = getattr(torch, dtype) if isinstance(dtype, str) else dtype
    meta = meta_model(config, dtype, attn_implementation)
    return estimate_components(
        meta,
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
        attribution={
            "kinds": kinds,
            "steps": steps,
            "units": units,
            "max_memory": parse_memory(max_memory),
        },
    )


def estimate_table(
    models: Sequence[str | PretrainedConfig | Mapping[str, Any]],
    batch_size: int = 4,
    seq_len: int = 512,
    methods: Sequence[str] = ("attribution", "full", "neurons", "lora"),
    **options: Any,
) -> pd.DataFrame:
    """``estimate_memory`` for every model and method: one row each, sizes in GiB."""
    models = [models] if isinstance(models, (str, dict)) or models is None else list(models)
    rows = [
        estimate_memory(m, batch_size, seq_len, method, **options).as_row()
        for m in models
        for method in methods
    ]
    return pd.DataFrame(rows)


def meta_model(config, dtype: torch.dtype = torch.float32, attn_implementation: str | None = None):
    """The causal LM of ``config`` on the meta device: shapes only, no memory, no download."""
    from transformers import AutoModelForCausalLM

    kwargs = {"dtype": dtype}
    if attn_implementation is not None:
        kwargs["attn_implementation"] = attn_implementation
    with torch.device("meta"):
        return AutoModelForCausalLM.from_config(config, **kwargs)


def measure_peak(fn: Callable[[], T], device: str | torch.device = "cpu") -> tuple[T, int]:
    """Run ``fn()``; return ``(its result, peak bytes allocated above those allocated at the
    start)``.

    On a GPU: ``torch.cuda.max_memory_allocated``. On a CPU, where torch keeps no allocator
    statistics, the allocations and frees torch's profiler records (``profile_memory=True``)
    are replayed in time order; it sees every tensor torch allocates (not Python objects or
    libraries' own buffers), like the CUDA counter. Add the bytes alive before the call (the
    model's) to compare with ``MemoryEstimate.peak``.
    """
    device = torch.device(device)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        start = torch.cuda.memory_allocated(device)
        result = fn()
        torch.cuda.synchronize(device)
        return result, torch.cuda.max_memory_allocated(device) - start
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        result = fn()
    events = sorted(
        (e.start_ns(), e.nbytes())
        for e in prof.profiler.kineto_results.events()
        if e.name() == "[memory]" and e.device_type() == torch.autograd.DeviceType.CPU
    )
    current = peak = 0
    for _, nbytes in events:
        current += nbytes
        peak = max(peak, current)
    return result, peak


# --- configs ----------------------------------------------------------------------------------


def _resolve_config(model):
    """(config, display name, dtype of a loaded model or None)."""
    from transformers import AutoConfig, PretrainedConfig

    if isinstance(model, torch.nn.Module):
        config = model.config
        dtype = next(model.parameters()).dtype
        return config, getattr(config, "_name_or_path", None) or type(model).__name__, dtype
    if isinstance(model, PretrainedConfig):
        return model, getattr(model, "_name_or_path", None) or model.model_type, None
    if isinstance(model, dict):
        values = dict(model)
        if "model_type" not in values:
            raise ValueError("a config dict needs a 'model_type' (e.g. 'llama')")
        return AutoConfig.for_model(**values), values["model_type"], None
    key = "default" if model is None else str(model)
    key = ALIASES.get(key.lower(), key)
    if key in KNOWN_CONFIGS:
        values = dict(KNOWN_CONFIGS[key])
        return AutoConfig.for_model(**values), key, None
    try:
        return AutoConfig.from_pretrained(key), key, None
    except OSError as err:
        raise OSError(
            f"cannot read the config of {key!r} ({str(err).splitlines()[0]}); pass a "
            f"local folder, a transformers config or a dict, or one of "
            f"{sorted(KNOWN_CONFIGS)} / {sorted(ALIASES)}"
        ) from err
