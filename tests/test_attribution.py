"""Attribution against ground truth: independent gradient x activation and exact ablation."""

import pytest
import torch
from scipy.stats import spearmanr

import taskneuron_utils as tn
from taskneuron_utils.attribution.run import AttributionError, attribute, per_example_relevance
from taskneuron_utils.scoring.loss import AnswerMaskError, answer_losses
from taskneuron_utils.tasks import collate, encode
from tiny_models import tiny_model


@pytest.fixture(scope="module")
def tok(default_tok):
    return default_tok


def tiny(family, tok, dtype=torch.float32):
    return tiny_model(family, seed=1, vocab_size=len(tok)).to(dtype)


def independent_relevance(model, tok, split):
    """r_j = -sum_t dL/da[t,j] a[t,j] per example, via HF's own loss and full logits."""
    sites = tn.ffn_sites(model)
    rows = {s.name: [] for s in sites}
    for example in encode(tok, split):
        batch = collate([example], tok.pad_token_id)
        captured = {}
        hooks = [
            s.module.register_forward_hook(
                lambda m, i, o, captured=captured: captured.__setitem__(m, o)
            )
            for s in {s.module: s for s in sites}.values()
        ]
        loss = model(input_ids=batch["input_ids"], labels=batch["labels"]).loss
        for h in hooks:
            h.remove()
        outs = list(captured.values())
        grads = torch.autograd.grad(loss, outs)
        grad_of = dict(zip(captured.keys(), grads))
        for s in sites:
            a = s.output_slice(captured[s.module]).double()
            g = s.output_slice(grad_of[s.module]).double()
            rows[s.name].append(-(g * a).reshape(-1, s.n_neurons).sum(0).detach())
    return {name: torch.stack(v) for name, v in rows.items()}


@pytest.mark.parametrize("family", ["llama", "gpt2", "opt", "phi3", "bloom"])
def test_relevance_equals_independent_grad_times_activation(family, tok, toy_task):
    model = tiny(family, tok)
    data = toy_task.train[:10]
    expected = independent_relevance(model, tok, data)
    rel = attribute(model, tok, data, batch_size=4, progress=False)
    per_example = per_example_relevance(model, tok, data)
    assert rel.n_examples == 10
    for site, values in expected.items():
        torch.testing.assert_close(per_example[site], values, rtol=1e-4, atol=1e-7)
        torch.testing.assert_close(rel.sum_abs[site], values.abs().sum(0), rtol=1e-4, atol=1e-7)
        torch.testing.assert_close(rel.sum_signed[site], values.sum(0), rtol=1e-4, atol=1e-7)
        torch.testing.assert_close(
            rel.scores[site], (values.abs().mean(0)).float(), rtol=1e-4, atol=1e-7
        )


def exact_ablation(model, batch, base, site, neuron):
    """Per-example loss with the unit zeroed at every position, minus ``base``, through a plain
    hook: on the site's output, or for an ``act`` site on the output projection's input."""
    if site.kind == "act":

        def zero_input(module, args):
            x = args[0].clone()
            x[..., neuron] = 0
            return (x,)

        handle = output_projection(model, site.layer).register_forward_pre_hook(zero_input)
    else:

        def zero_output(module, args, output):
            output = output.clone()
            output[..., site.offset + neuron] = 0
            return output

        handle = site.module.register_forward_hook(zero_output)
    try:
        with torch.no_grad():
            ablated, _ = answer_losses(model, batch)
    finally:
        handle.remove()
    return (ablated - base).double()


@pytest.mark.parametrize("kinds, sampled", [(None, 8), ("act", 24)], ids=["linear", "act"])
@pytest.mark.parametrize("family", ["llama", "gpt2", "gpt_neox"])
def test_taylor_estimate_tracks_exact_ablation(family, kinds, sampled, tok, toy_task):
    model = tiny(family, tok)
    data = toy_task.train[:4]
    estimate = per_example_relevance(model, tok, data, kinds=kinds)
    batch = collate(encode(tok, data), tok.pad_token_id)
    with torch.no_grad():
        base, _ = answer_losses(model, batch)
    generator = torch.Generator().manual_seed(0)
    exact, taylor = [], []
    for site in tn.ffn_sites(model, kinds):
        for neuron in torch.randperm(site.n_neurons, generator=generator)[:sampled].tolist():
            exact.append(exact_ablation(model, batch, base, site, neuron))
            taylor.append(estimate[site.name][:, neuron])
    exact, taylor = torch.cat(exact), torch.cat(taylor)
    assert spearmanr(exact.numpy(), taylor.numpy()).statistic > 0.9
    scale = exact.abs().max()
    assert ((exact - taylor).abs() < 0.1 * scale).float().mean() > 0.95


def test_same_inputs_give_identical_neuron_sets(tok, toy_task):
    model = tiny("llama", tok)
    a = attribute(model, tok, toy_task.train, batch_size=8, progress=False).top_k(0.1)
    b = attribute(model, tok, toy_task.train, batch_size=8, progress=False).top_k(0.1)
    assert a == b and a.meta == b.meta


def test_shards_add_up(tok, toy_task):
    model = tiny("gpt2", tok)
    whole = attribute(model, tok, toy_task.train, batch_size=4, progress=False)
    parts = attribute(model, tok, toy_task.train[:12], batch_size=4, progress=False) + attribute(
        model, tok, toy_task.train[12:], batch_size=4, progress=False
    )
    assert parts.n_examples == whole.n_examples and parts.n_tokens == whole.n_tokens
    for site in whole.sum_abs:
        torch.testing.assert_close(parts.sum_abs[site], whole.sum_abs[site], rtol=1e-12, atol=1e-15)


def test_interrupted_run_resumes_to_the_same_result(tok, toy_task, tmp_path):
    model = tiny("llama", tok)
    reference = attribute(model, tok, toy_task.train, batch_size=4, progress=False)
    checkpoint = tmp_path / "ckpt.safetensors"
    calls = {"n": 0}

    def interrupt_on_fourth_batch(module, args):
        calls["n"] += 1
        if calls["n"] == 4:
            raise KeyboardInterrupt

    def run():  # the same call twice: interrupted, then resumed
        return attribute(
            model,
            tok,
            toy_task.train,
            batch_size=4,
            checkpoint=checkpoint,
            checkpoint_every=1,
            progress=False,
        )

    handle = model.get_input_embeddings().register_forward_pre_hook(interrupt_on_fourth_batch)
    with pytest.raises(KeyboardInterrupt):
        run()
    handle.remove()
    assert checkpoint.exists()
    resumed = run()
    for site in reference.sum_abs:
        assert torch.equal(resumed.sum_abs[site], reference.sum_abs[site])
        assert torch.equal(resumed.sum_signed[site], reference.sum_signed[site])
    assert resumed.n_tokens == reference.n_tokens


def test_checkpoint_of_another_run_is_refused_and_kept(tok, toy_task, tmp_path):
    model = tiny("llama", tok)
    checkpoint = tmp_path / "ckpt.safetensors"
    attribute(model, tok, toy_task.train[:8], batch_size=4, checkpoint=checkpoint, progress=False)
    before = checkpoint.read_bytes()
    with pytest.raises(AttributionError, match="another run .*data_hash"):
        attribute(
            model, tok, toy_task.train[8:], batch_size=4, checkpoint=checkpoint, progress=False
        )
    assert checkpoint.read_bytes() == before


def test_empty_data_is_a_clear_error(tok, toy_task):
    with pytest.raises(AttributionError, match="empty"):
        attribute(tiny("llama", tok), tok, toy_task.train[:0], progress=False)


def test_fully_masked_answers_are_a_clear_error(tok, toy_task):
    batch = collate(encode(tok, toy_task.train[:2]), tok.pad_token_id)
    batch["labels"][1] = -100
    with pytest.raises(AnswerMaskError, match="no answer tokens"):
        answer_losses(tiny("llama", tok), batch)


def test_nan_gradients_are_a_clear_error(tok, toy_task):
    model = tiny("llama", tok)
    with torch.no_grad():
        tn.ffn_sites(model)[4].module.weight[0, 0] = float("nan")
    with pytest.raises(
        AttributionError, match=r"non-finite gradients at layers\.0\.mlp\.gate in batch 0"
    ):
        attribute(model, tok, toy_task.train[:4], progress=False)


def test_parameters_and_training_flag_are_restored(tok, toy_task):
    model = tiny("llama", tok).train()
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    attribute(model, tok, toy_task.train[:4], progress=False)
    assert model.training and all(p.requires_grad for p in model.parameters())
    assert all(p.grad is None for p in model.parameters())
    assert all(torch.equal(before[n], p) for n, p in model.named_parameters())


def test_bfloat16_model_with_float_accumulators(tok, toy_task):
    model32 = tiny("llama", tok)
    model16 = tiny("llama", tok, dtype=torch.bfloat16)
    rel32 = attribute(model32, tok, toy_task.train[:8], progress=False)
    rel16 = attribute(model16, tok, toy_task.train[:8], progress=False)
    a = torch.cat(list(rel32.scores.values()))
    b = torch.cat(list(rel16.scores.values()))
    assert rel16.sum_abs["layers.0.mlp.up"].dtype == torch.float64
    assert spearmanr(a.numpy(), b.numpy()).statistic > 0.9


# -- the act site: the intermediate activation, the input of the FFN's output projection -----


def output_projection(model, layer):
    """The FFN output projection (down_proj / fc_out) of ``layer``, found through the linear
    sites, so that these checks do not rely on the act site they test."""
    sites = tn.core.site_map(model)
    for kind in ("down", "fc_out"):
        if f"layers.{layer}.mlp.{kind}" in sites:
            return sites[f"layers.{layer}.mlp.{kind}"].module


def independent_act_relevance(model, tok, split):
    """r_j = -sum_t dL/da[t,j] a[t,j] per example for the act units, ``a`` the input of each
    output projection, captured with bare pre-hooks; HF's own loss and full logits."""
    layers = range(model.config.num_hidden_layers)
    rows = {f"layers.{layer}.mlp.act": [] for layer in layers}
    for example in encode(tok, split):
        batch = collate([example], tok.pad_token_id)
        captured = {}
        hooks = [
            output_projection(model, layer).register_forward_pre_hook(
                lambda m, args, layer=layer, captured=captured: captured.__setitem__(layer, args[0])
            )
            for layer in layers
        ]
        loss = model(input_ids=batch["input_ids"], labels=batch["labels"]).loss
        for h in hooks:
            h.remove()
        grads = torch.autograd.grad(loss, [captured[layer] for layer in layers])
        for layer, g in zip(layers, grads):
            a = captured[layer].double()
            r = -(g.double() * a).reshape(-1, a.shape[-1]).sum(0)
            rows[f"layers.{layer}.mlp.act"].append(r.detach())
    return {name: torch.stack(v) for name, v in rows.items()}


@pytest.mark.parametrize("family", ["llama", "gpt2", "opt", "phi3", "bloom"])
def test_act_relevance_equals_independent_grad_times_activation(family, tok, toy_task):
    model = tiny(family, tok)
    data = toy_task.train[:6]
    expected = independent_act_relevance(model, tok, data)
    rel = attribute(model, tok, data, kinds="act", batch_size=4, progress=False)
    per_example = per_example_relevance(model, tok, data, kinds="act")
    assert list(rel.sizes) == list(expected) and rel.provenance["kinds"] == ["act"]
    for site, values in expected.items():
        assert values.shape == (6, tn.ffn_sites(model)[0].n_neurons)  # d_ff units
        torch.testing.assert_close(per_example[site], values, rtol=1e-4, atol=1e-7)
        torch.testing.assert_close(rel.sum_abs[site], values.abs().sum(0), rtol=1e-4, atol=1e-7)
        torch.testing.assert_close(rel.sum_signed[site], values.sum(0), rtol=1e-4, atol=1e-7)


def test_scoring_act_too_leaves_the_linear_sites_sums_bit_identical(tok, toy_task):
    model = tiny("llama", tok)
    default = attribute(model, tok, toy_task.train[:8], batch_size=4, progress=False)
    every = attribute(model, tok, toy_task.train[:8], kinds="all", batch_size=4, progress=False)
    assert list(default.sizes) == [s.name for s in tn.ffn_sites(model)]
    assert default.provenance["kinds"] == ["gate", "up", "down"]
    assert [name for name in every.sizes if name not in default.sizes] == [
        "layers.0.mlp.act",
        "layers.1.mlp.act",
    ]
    for site in default.sum_abs:
        assert torch.equal(every.sum_abs[site], default.sum_abs[site]), site
        assert torch.equal(every.sum_signed[site], default.sum_signed[site]), site


def test_unknown_or_missing_kinds_are_clear_errors(tok, toy_task):
    model = tiny("llama", tok)
    with pytest.raises(
        tn.errors.SiteKindError,
        match=r"'fc_in' is not a site kind of model "
        r"'LlamaForCausalLM'; choose from gate, up, act, down, or 'all'",
    ):
        attribute(model, tok, toy_task.train[:2], kinds="fc_in", progress=False)
    with pytest.raises(tn.errors.SiteKindError, match="'actt' is not a site kind"):
        attribute(model, tok, toy_task.train[:2], kinds=("gate", "actt"), progress=False)
    with pytest.raises(tn.errors.SiteKindError, match="no site kind given"):
        attribute(model, tok, toy_task.train[:2], kinds=[], progress=False)


def test_checkpoint_of_other_site_kinds_is_refused(tok, toy_task, tmp_path):
    model = tiny("llama", tok)
    checkpoint = tmp_path / "ckpt.safetensors"
    attribute(model, tok, toy_task.train[:4], kinds="gate", checkpoint=checkpoint, progress=False)
    with pytest.raises(AttributionError, match=r"another run \(different site kinds\)"):
        attribute(model, tok, toy_task.train[:4], kinds="up", checkpoint=checkpoint, progress=False)
    resumed = attribute(
        model, tok, toy_task.train[:4], kinds="gate", checkpoint=checkpoint, progress=False
    )
    assert list(resumed.sizes) == ["layers.0.mlp.gate", "layers.1.mlp.gate"]


# -- compute dtype: autocast over float32 weights, sums in float64 -----------------------------


def test_autocast_is_torch_autocast_with_float64_sums_close_to_float32(tok, toy_task, tmp_path):
    """``autocast=torch.bfloat16`` computes exactly what the same call inside
    ``torch.autocast("cpu", torch.bfloat16)`` does, sums in float64, records how it was
    computed (also after save/load), and stays within 2% (relative L2 of the summed |r|) of
    float32: bfloat16 keeps 8 significant bits (rounding ~0.4% an operation; 0.3% measured)."""
    model = tiny("llama", tok)
    data = toy_task.train[:8]
    fp32 = attribute(model, tok, data, batch_size=4, progress=False)
    bf16 = attribute(model, tok, data, batch_size=4, progress=False, autocast=torch.bfloat16)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        outer = attribute(model, tok, data, batch_size=4, progress=False)
    assert fp32.provenance["compute"] == {"weights": "float32", "autocast": None}
    assert bf16.provenance["compute"] == {"weights": "float32", "autocast": "bfloat16"}
    for site in fp32.sum_abs:
        assert bf16.sum_abs[site].dtype == torch.float64
        assert torch.equal(bf16.sum_abs[site], outer.sum_abs[site]), site
        assert torch.equal(bf16.sum_signed[site], outer.sum_signed[site]), site
    a, b = (torch.cat(list(rel.sum_abs.values())) for rel in (fp32, bf16))
    assert not torch.equal(a, b)  # it did compute in bfloat16
    assert (a - b).norm() / a.norm() < 0.02
    bf16.save(tmp_path / "rel.safetensors")
    loaded = tn.Relevance.load(tmp_path / "rel.safetensors", model=model)
    assert loaded.provenance == bf16.provenance
    weights16 = attribute(tiny("llama", tok, dtype=torch.bfloat16), tok, data, progress=False)
    assert weights16.provenance["compute"] == {"weights": "bfloat16", "autocast": None}


def test_a_checkpoint_resumes_only_under_the_same_autocast(tok, toy_task, tmp_path):
    model = tiny("llama", tok)
    checkpoint = tmp_path / "ckpt.safetensors"
    attribute(
        model, tok, toy_task.train[:4], checkpoint=checkpoint, progress=False, autocast="bfloat16"
    )
    with pytest.raises(AttributionError, match=r"another run \(different autocast\)"):
        attribute(model, tok, toy_task.train[:4], checkpoint=checkpoint, progress=False)
    resumed = attribute(
        model,
        tok,
        toy_task.train[:4],
        checkpoint=checkpoint,
        progress=False,
        autocast=torch.bfloat16,
    )
    assert resumed.n_examples == 4


@pytest.mark.parametrize("value", [torch.float32, "float64", "bf16", 16])
def test_a_bad_autocast_dtype_fails_before_any_work(value, tok):
    """Checked first: not even the data is looked at (None stands in for it)."""
    with pytest.raises(ValueError, match=r"autocast must be None, torch.bfloat16 or torch.float16"):
        attribute(tiny("llama", tok), tok, None, autocast=value)
