"""TransformerLens (the ``transformer-lens`` package, optional): TransformerLens 4's
``TransformerBridge`` around a tiny random Llama (built offline from a config, booted with
``hf_model=``) is accepted where the transformers model is. The bridge swaps the model's own
linear layers for its ``LinearBridge`` modules, so the reference is a copy of the same weights
that no bridge touched: same sites and fingerprint, the documented map between our site names
and TransformerLens's hook names, the same relevance, deactivation effect, NLL and neuron-only
fine-tuning. TransformerLens forces eager attention and the copy runs sdpa, so outputs agree to
float32 rounding (measured ~2e-6), not bit for bit."""

import copy
import warnings

import pytest
import torch

import taskneuron_utils as tn
from taskneuron_utils.core.wrappers import plain_name

pytest.importorskip("transformer_lens")
from transformer_lens.model_bridge import TransformerBridge  # noqa: E402

SITE_TO_HOOK = {
    "layers.{i}.mlp.act": "blocks.{i}.mlp.hook_post",
    "layers.{i}.mlp.gate": "blocks.{i}.mlp.hook_pre",
    "layers.{i}.mlp.up": "blocks.{i}.mlp.hook_pre_linear",
    "layers.{i}.mlp.down": "blocks.{i}.hook_mlp_out",
}


@pytest.fixture
def bridge(tiny_llama, default_tok, tmp_path):
    return boot(copy.deepcopy(tiny_llama), default_tok, tmp_path)


def boot(model, tok, folder):
    """TransformerBridge around ``model`` (the bridge reads the config from a folder)."""
    model.config.save_pretrained(folder)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return TransformerBridge.boot_transformers(str(folder), hf_model=model, tokenizer=tok)


def test_same_sites_and_fingerprint(tiny_llama, bridge):
    assert dict(tn.layout_of(bridge, "all")) == dict(tn.layout_of(tiny_llama, "all"))
    assert tn.core.weight_fingerprint(bridge) == tn.core.weight_fingerprint(tiny_llama)
    tn.NeuronSet.empty(tiny_llama).check_fits(bridge)


def test_site_names_map_onto_transformer_lens_hooks(tiny_llama, bridge, default_tok):
    ids = torch.tensor([default_tok("The cat sat on the mat").input_ids])
    sites = [site.format(i=i) for i in range(2) for site in SITE_TO_HOOK]
    with torch.no_grad(), tn.trace(tiny_llama, sites) as ours:
        tiny_llama(ids)
        _, cache = bridge.run_with_cache(ids)
    for i in range(2):
        for site, hook in SITE_TO_HOOK.items():
            torch.testing.assert_close(
                cache[hook.format(i=i)], ours[site.format(i=i)].output, rtol=1e-5, atol=1e-5
            )


def test_deactivation_acts_inside_the_bridge(tiny_llama, bridge, default_tok):
    ids = torch.tensor([default_tok("The cat sat on the mat").input_ids])
    empty = tn.NeuronSet.empty(tiny_llama, kinds="act")
    neurons = tn.NeuronSet({"layers.0.mlp.act": torch.arange(0, 64, 2)}, empty.sizes)
    with torch.no_grad():
        intact = tiny_llama(ids).logits
        with tn.deactivate(tiny_llama, neurons):
            expected = tiny_llama(ids).logits
        with tn.deactivate(bridge, neurons):
            logits = bridge(ids, return_type="logits")
        after = bridge(ids, return_type="logits")  # the hooks are gone again
    torch.testing.assert_close(logits, expected, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(after, intact, rtol=1e-5, atol=1e-5)
    assert (expected - intact).abs().max() > 1e-2  # the set changes the output


def test_same_relevance_and_nll(tiny_llama, bridge, default_tok, toy_task):
    plain = tn.attribute(tiny_llama, default_tok, toy_task.train, progress=False)
    ours = tn.attribute(bridge, default_tok, toy_task.train, progress=False)
    assert ours.sizes == plain.sizes
    for site, score in plain.scores.items():
        torch.testing.assert_close(ours.scores[site], score, rtol=1e-4, atol=1e-7)
    assert ours.provenance["weights"] == plain.provenance["weights"]
    nll = tn.evaluate(bridge, default_tok, toy_task.test, progress=False)["nll"]
    assert nll == pytest.approx(
        tn.evaluate(tiny_llama, default_tok, toy_task.test, progress=False)["nll"], rel=1e-6
    )


def test_neuron_only_finetuning_through_the_bridge(tiny_llama, bridge, default_tok, toy_task):
    neurons = tn.NeuronSet(
        {"layers.1.mlp.up": torch.arange(0, 64, 4)}, tn.NeuronSet.empty(tiny_llama).sizes
    )
    before = {name: p.detach().clone() for name, p in tiny_llama.named_parameters()}
    options = dict(neurons=neurons, steps=2, lr=1e-3, batch_size=8, progress=False)
    tn.finetune(tiny_llama, default_tok, toy_task.train, **options)
    tn.finetune(bridge, default_tok, toy_task.train, **options)
    inner = {plain_name(name): p for name, p in bridge.original_model.named_parameters()}
    assert inner.keys() == before.keys()
    for name, param in tiny_llama.named_parameters():
        theirs = inner[name]
        torch.testing.assert_close(theirs, param, rtol=1e-4, atol=1e-6)
        if "layers.1.mlp.up_proj" not in name:
            assert torch.equal(theirs, before[name])  # untouched parameters bit-identical


def test_a_bridge_over_an_unsupported_architecture_is_refused_before_any_work(
    default_tok, tmp_path
):
    import transformers

    config = transformers.GPTJConfig(
        vocab_size=len(default_tok), n_embd=32, n_layer=2, n_head=4, rotary_dim=4, n_positions=64
    )
    bridge = boot(transformers.GPTJForCausalLM(config).eval(), default_tok, tmp_path)
    with pytest.raises(
        tn.errors.UnsupportedArchitectureError,
        match=r"model_type='gptj' \(GPTJForCausalLM inside TransformerBridge\)",
    ):
        tn.attribute(bridge, default_tok, ["a b"], progress=False)
