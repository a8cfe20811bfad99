"""Tiny random models, one per supported family, built from configs (never downloaded)."""

import torch
import transformers

from taskneuron_utils.tasks import Task

# d_model 32, d_ff 64 (GPT-2/Bloom/NeoX use 4 x d_model = 128), 2 layers.
TINY_CONFIGS = {
    "llama": (transformers.LlamaConfig, dict(intermediate_size=64)),
    "mistral": (transformers.MistralConfig, dict(intermediate_size=64)),
    "qwen2": (transformers.Qwen2Config, dict(intermediate_size=64)),
    "gemma": (transformers.GemmaConfig, dict(intermediate_size=64, head_dim=8)),
    "gemma2": (transformers.Gemma2Config, dict(intermediate_size=64, head_dim=8)),
    "phi3": (transformers.Phi3Config, dict(intermediate_size=64, pad_token_id=0)),
    "gpt2": (transformers.GPT2Config, dict(n_embd=32, n_layer=2, n_head=4, n_positions=128)),
    "bloom": (transformers.BloomConfig, dict(n_layer=2, n_head=4)),
    "gpt_neox": (transformers.GPTNeoXConfig, dict(intermediate_size=64)),
    "opt": (transformers.OPTConfig, dict(ffn_dim=64, word_embed_proj_dim=32)),
}

# Expected (kinds, neurons per kind) of one layer.
EXPECTED_SITES = {
    "gated": (("gate", "up", "down"), (64, 64, 32)),
    "two_matrix": (("fc_in", "fc_out"), (None, 32)),
}
GATED = {"llama", "mistral", "qwen2", "gemma", "gemma2", "phi3"}


def tiny_model(family: str, seed: int = 0, vocab_size: int = 128):
    """A randomly initialised causal LM of ``family`` in eval mode, float32."""
    config_cls, extra = TINY_CONFIGS[family]
    common = dict(
        vocab_size=vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=128,
    )
    config = config_cls(**{**common, **extra})
    torch.manual_seed(seed)
    model = transformers.AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    # Random init leaves biases at zero; non-zero biases make the bias half of each test real.
    with torch.no_grad():
        for name, param in model.named_parameters():
            if name.endswith("bias"):
                param.normal_(0, 0.1)
    return model.eval()


def ffn_width(model) -> int:
    """Neurons of the first FFN projection (the intermediate size)."""
    config = model.config
    for key in ("intermediate_size", "ffn_dim", "n_inner"):
        if getattr(config, key, None):
            return getattr(config, key)
    return 4 * config.hidden_size


WORDS = [
    "apple",
    "river",
    "stone",
    "cloud",
    "tiger",
    "piano",
    "lemon",
    "candle",
    "forest",
    "mirror",
    "rocket",
    "garden",
    "window",
    "dragon",
    "pencil",
    "silver",
]


def swap_task() -> Task:
    """A small generation task, "a b" -> "b a", split 24 / 6 / 6."""
    records = [{"input": f"{a} {b}", "output": f"{b} {a}"} for a in WORDS[:6] for b in WORDS[6:12]]
    return Task.from_records(
        "swap",
        instruction="Swap the two words.",
        splits={"train": records[:24], "dev": records[24:30], "test": records[30:]},
    )


def label_task(name: str, words: list[str], labels: list[str]) -> Task:
    """A small classification task: "word i" -> labels[i % len(labels)], 16 records split
    8 / 4 / 4."""
    records = [
        {"input": f"{w} {i}", "output": labels[i % len(labels)]}
        for i in range(16)
        for w in words[i % len(words) :][:1]
    ]
    return Task.from_records(
        name,
        records,
        instruction=f"Label ({name}).",
        category="classification",
        metric="accuracy",
        splits=(0.5, 0.25, 0.25),
    )


def label_sequence() -> list[Task]:
    """Two small classification tasks, for continual learning."""
    return [
        label_task("colour", ["red", "blue"], ["yes", "no"]),
        label_task("animal", ["cat", "dog", "cow"], ["one", "two"]),
    ]


def tiny_llama_model(tok, **overrides):
    """A 2-layer Llama (d=32, d_ff=64) over ``tok``'s vocabulary, seed 0, float32, eval mode;
    ``overrides``: more LlamaConfig settings (the ``tiny_llama`` fixture's, in conftest.py)."""
    config = transformers.LlamaConfig(
        vocab_size=len(tok),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        pad_token_id=tok.pad_token_id,
        **overrides,
    )
    torch.manual_seed(0)
    return transformers.LlamaForCausalLM(config).eval()


def fixture_llama(tok):
    """The ``tiny_llama`` fixture's model: special tokens set, and weights drawn wider than the
    default 0.02 so that attention is far from uniform (position or padding mistakes then
    change the outputs measurably)."""
    return tiny_llama_model(
        tok, eos_token_id=tok.eos_token_id, bos_token_id=tok.bos_token_id, initializer_range=0.2
    )


# Additions with minimal pairs (another first operand, another answer) for the contrastive tests.
ADDING_RECORDS = [
    {
        "input": f"{a} + 4",
        "output": str(a + 4),
        "alt_input": f"{a + 30} + 4",
        "alt_output": str(a + 34),
    }
    for a in range(10, 70, 2)
]


def adding_task(name: str, seed: int, family: str | None = None) -> Task:
    """A small addition task with minimal pairs, split 60/20/20 by ``seed``."""
    options = {} if family is None else {"family": family}
    return Task.from_records(
        name, ADDING_RECORDS, "Add.", splits=(0.6, 0.2, 0.2), seed=seed, **options
    )
