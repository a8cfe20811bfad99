"""The embedded default model: offline loading, its cache, and errors for missing models."""

import os
import shutil
import subprocess
import sys

import pytest
import torch

import taskneuron_utils as tn
from taskneuron_utils.core import models


def test_default_model_is_smollm2_llama(default_model):
    model, tok = default_model
    config = model.config
    assert config.model_type == "llama"
    assert (config.num_hidden_layers, config.hidden_size, config.intermediate_size) == (
        30,
        576,
        1536,
    )
    sites = tn.ffn_sites(model)
    assert len(sites) == 90 and sites[1].name == "layers.0.mlp.up" and sites[1].n_neurons == 1536
    assert tn.core.model_name(model) == models.DEFAULT_MODEL
    assert tok.pad_token is not None


def test_default_model_answers_a_chat_prompt(default_model):
    model, tok = default_model
    messages = [{"role": "user", "content": "What is the capital of France?"}]
    prompt = tok.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    ids = tok(prompt, return_tensors="pt", add_special_tokens=False).input_ids
    out = model.generate(ids, max_new_tokens=12, do_sample=False, pad_token_id=tok.pad_token_id)
    assert "Paris" in tok.decode(out[0, ids.shape[1] :])


def test_loads_offline_in_a_fresh_process():
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    code = (
        "import taskneuron_utils as tn; m, t = tn.load_model(); "
        "print(m.config.model_type, len(tn.ffn_sites(m)))"
    )
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split() == ["llama", "90"]


@pytest.fixture(scope="module")
def cache_copy(tmp_path_factory, default_model):
    source = models.default_model_path()
    copy = tmp_path_factory.mktemp("cache") / "model"
    shutil.copytree(source, copy)  # copy2 keeps modification times, as in a real cache
    return copy


def test_intact_cache_is_valid(cache_copy):
    assert models._cache_is_valid(cache_copy)


@pytest.mark.parametrize("damage", ["flip_byte", "truncate", "no_manifest", "missing_file"])
def test_damaged_cache_is_detected(cache_copy, tmp_path, damage):
    folder = tmp_path / "model"
    shutil.copytree(cache_copy, folder)
    weights = folder / "model.safetensors"
    if damage == "flip_byte":
        with open(weights, "r+b") as f:
            f.seek(1_000_000)
            byte = f.read(1)
            f.seek(1_000_000)
            f.write(bytes([byte[0] ^ 0xFF]))
    elif damage == "truncate":
        with open(weights, "r+b") as f:
            f.truncate(weights.stat().st_size // 2)
    elif damage == "no_manifest":
        (folder / models.MANIFEST).unlink()
    else:
        (folder / "tokenizer.json").unlink()
    assert not models._cache_is_valid(folder)


def test_corrupt_cache_is_rebuilt_not_loaded(tmp_path, monkeypatch, default_model):
    real_cache = models.default_model_path()
    monkeypatch.setenv("TASKNEURON_CACHE", str(tmp_path))
    target = tmp_path / "models" / models.DEFAULT_MODEL
    shutil.copytree(real_cache, target)
    with open(target / "model.safetensors", "r+b") as f:
        f.truncate(1000)
    path = models.default_model_path()
    assert path == target and models._cache_is_valid(target)
    model, _ = tn.load_model()
    reference, _ = default_model
    assert all(
        torch.equal(a, b)
        for a, b in zip(model.state_dict().values(), reference.state_dict().values())
    )


def test_missing_hub_model_offline_says_what_to_do():
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    code = "import taskneuron_utils as tn; tn.load_model('no-such-org/no-such-model-xyz')"
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert result.returncode != 0
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("taskneuron_utils.errors.ModelNotAvailableError")
    assert "HF_HUB_OFFLINE=1" in last and "huggingface-cli download" in last


def test_weight_fingerprint_changes_with_one_weight(default_model):
    model, _ = default_model
    before = tn.core.weight_fingerprint(model)
    site = tn.ffn_sites(model)[40]
    saved = site.read(3)
    try:
        site.write(3, saved + 1e-3)
        assert tn.core.weight_fingerprint(model) != before
    finally:
        site.write(3, saved)
    assert tn.core.weight_fingerprint(model) == before


def test_weight_fingerprint_does_not_depend_on_the_thread_count(default_model):
    """A cache key must not change with torch's threads (a float32 sum of 135M values does)."""
    model, _ = default_model
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = tn.core.weight_fingerprint(model)
        torch.set_num_threads(2)
        two = tn.core.weight_fingerprint(model)
    finally:
        torch.set_num_threads(threads)
    assert one == two
