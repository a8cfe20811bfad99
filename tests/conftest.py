"""Shared fixtures: the embedded default model (loaded once per session) and a tiny random Llama."""

import pytest
import torch
import transformers

import taskneuron_utils as tn


@pytest.fixture(scope="session")
def default_model():
    """(model, tokenizer) of the embedded default model (SmolLM2-135M-Instruct), eval mode."""
    return tn.load_model()


@pytest.fixture(scope="session")
def default_tok(default_model):
    return default_model[1]


@pytest.fixture(scope="session")
def toy_task():
    """A small generation task, "a b" -> "b a", split 24 / 6 / 6 (tiny_models.swap_task)."""
    from tiny_models import swap_task

    return swap_task()


@pytest.fixture
def tiny_llama(default_tok):
    """A randomly initialised 2-layer Llama (d=32, d_ff=64) sharing the default tokenizer's
    vocabulary, seeded, float32, eval mode. Function-scoped: tests may modify it."""
    config = transformers.LlamaConfig(
        vocab_size=len(default_tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
        pad_token_id=default_tok.pad_token_id, eos_token_id=default_tok.eos_token_id,
        bos_token_id=default_tok.bos_token_id,
        # Larger than the default 0.02 so attention is far from uniform: position or padding
        # mistakes then change the outputs measurably.
        initializer_range=0.2)
    torch.manual_seed(0)
    return transformers.LlamaForCausalLM(config).eval()
