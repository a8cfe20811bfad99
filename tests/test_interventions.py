"""deactivate / scale: exact effect on the selected units, exact restoration, generation."""

import pytest
import torch

import taskneuron_utils as tn
from taskneuron_utils.hooks.interventions import deactivate, scale
from taskneuron_utils.neurons.neuron_set import NeuronSet, NeuronSetMismatchError, layout_of
from tiny_models import GATED, TINY_CONFIGS, tiny_model

FAMILIES = sorted(TINY_CONFIGS)


def random_set(model, fraction: float, seed: int = 0, kinds=None) -> NeuronSet:
    """round(fraction * n) random neurons of every site of ``kinds``."""
    layout = layout_of(model, kinds)
    template = NeuronSet({s: torch.arange(round(fraction * n)) for s, n in layout.items()}, layout)
    return NeuronSet.random_like(template, seed=seed)


def inputs(seed: int = 0, batch: int = 2, length: int = 7, vocab: int = 128):
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(0, vocab, (batch, length), generator=generator)


@torch.no_grad()
def logits(model, ids):
    return model(input_ids=ids).logits


def snapshot(model):
    return {name: p.detach().clone() for name, p in model.named_parameters()}


def assert_restored(model, before):
    for name, param in model.named_parameters():
        assert torch.equal(param, before[name]), name
    for module in model.modules():
        assert not module._forward_hooks, f"leftover hook on {type(module).__name__}"


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("mode", ["activation", "weight"])
def test_restores_exactly_also_after_an_exception(family, mode):
    model = tiny_model(family)
    ids = inputs()
    ns = random_set(model, 0.3)
    before, reference = snapshot(model), logits(model, ids)

    with deactivate(model, ns, mode=mode):
        changed = logits(model, ids)
    assert not torch.equal(changed, reference)
    assert_restored(model, before)

    with pytest.raises(RuntimeError, match="boom"):
        with deactivate(model, ns, mode=mode):
            logits(model, ids)
            raise RuntimeError("boom")
    assert_restored(model, before)
    assert torch.equal(logits(model, ids), reference)


@pytest.mark.parametrize("family", FAMILIES)
def test_activation_mode_zeroes_exactly_the_selected_units(family):
    model = tiny_model(family)
    ns = random_set(model, 0.25, seed=3)
    sites = tn.ffn_sites(model)
    modules = {site.module for site in sites}
    raw, masked = {}, {}
    # Registered before deactivate's hook, this one sees the unmasked output (cloned, since the
    # mask may be applied in place); registered after, the other sees what the model uses.
    early = [
        m.register_forward_hook(lambda mod, a, out: raw.__setitem__(mod, out.clone()))
        for m in modules
    ]
    with deactivate(model, ns):
        late = [
            m.register_forward_hook(lambda mod, a, out: masked.__setitem__(mod, out))
            for m in modules
        ]
        logits(model, inputs())
    for handle in early + late:
        handle.remove()
    for site in sites:
        selected = torch.zeros(site.n_neurons, dtype=torch.bool)
        selected[ns.indices[site.name]] = True
        got = site.output_slice(masked[site.module])
        assert (got[..., selected] == 0).all(), site.name
        assert torch.equal(got[..., ~selected], site.output_slice(raw[site.module])[..., ~selected])
        assert (site.output_slice(raw[site.module])[..., selected] != 0).any()  # not trivially 0


@pytest.mark.parametrize("family", ["llama", "gpt2", "opt", "phi3", "bloom"])
def test_weight_and_activation_modes_agree(family):
    # A unit whose whole weight row and bias are zero outputs exactly 0, so the two are the same.
    model = tiny_model(family, seed=2)
    ids = inputs(seed=1)
    for kinds in ({"fc_in", "up", "gate"}, None):  # first projections only, then every site
        layout = layout_of(model)
        ns = random_set(model, 0.2, seed=5)
        if kinds is not None:
            ns = NeuronSet(
                {s: idx for s, idx in ns.indices.items() if s.split(".")[-1] in kinds}, layout
            )
        with deactivate(model, ns, mode="activation"):
            by_activation = logits(model, ids)
        with deactivate(model, ns, mode="weight"):
            by_weight = logits(model, ids)
        assert torch.allclose(by_activation, by_weight, atol=1e-6, rtol=1e-5)
        assert not torch.allclose(by_activation, logits(model, ids), atol=1e-4)


def test_weight_mode_zeroes_rows_and_biases_and_fused_halves():
    model = tiny_model("phi3")
    sites = tn.core.site_map(model)
    up = sites["layers.0.mlp.up"]
    ns = NeuronSet({up.name: torch.tensor([0, 5])}, layout_of(model))
    with deactivate(model, ns, mode="weight"):
        assert (up.read([0, 5]) == 0).all()
        assert (sites["layers.0.mlp.gate"].read([0, 5]) != 0).any()  # the other half is intact
    gpt2 = tiny_model("gpt2")
    fc_in = tn.core.site_map(gpt2)["layers.1.mlp.fc_in"]
    with deactivate(
        gpt2, NeuronSet({fc_in.name: torch.tensor([3])}, layout_of(gpt2)), mode="weight"
    ):
        assert (fc_in.read([3]) == 0).all()  # Conv1D column and bias
        assert (fc_in.read([4]) != 0).all()


@pytest.mark.parametrize("mode", ["activation", "weight"])
def test_empty_set_changes_nothing(mode):
    model = tiny_model("llama")
    ids = inputs()
    reference = logits(model, ids)
    with deactivate(model, NeuronSet.empty(model), mode=mode):
        assert torch.equal(logits(model, ids), reference)
        assert all(not m._forward_hooks for m in model.modules())


@pytest.mark.parametrize("family", ["llama", "gpt2", "phi3"])
@pytest.mark.parametrize("mode", ["activation", "weight"])
def test_generation_under_deactivation(family, mode):
    model = tiny_model(family, seed=4)
    prompt = inputs(seed=2, batch=1, length=5)
    settings = dict(
        max_new_tokens=8,
        do_sample=False,
        pad_token_id=0,
        output_scores=True,
        return_dict_in_generate=True,
    )

    def generate(**extra):
        out = model.generate(prompt, **settings, **extra)
        return out.sequences, torch.stack(out.scores)  # scores: (new tokens, 1, vocab)

    plain_tokens, plain_scores = generate()
    ns = random_set(model, 0.6, seed=1)
    with deactivate(model, ns, mode=mode):
        tokens, scores = generate()
        uncached_tokens, uncached_scores = generate(use_cache=False)
    # Random tiny models often repeat one token greedily, so compare the step logits too.
    assert not torch.allclose(scores, plain_scores, atol=1e-4)
    # The intervention acts on cached decoding steps exactly as on full forwards.
    assert torch.equal(tokens, uncached_tokens)
    assert torch.allclose(scores, uncached_scores, atol=1e-5)
    after_tokens, after_scores = generate()
    assert torch.equal(after_tokens, plain_tokens) and torch.equal(after_scores, plain_scores)


def test_scale_by_one_is_identity_and_scale_multiplies_selected_units():
    model = tiny_model("gpt2")
    ids = inputs()
    reference = logits(model, ids)
    ns = random_set(model, 0.5)
    with scale(model, ns, 1.0):
        assert torch.equal(logits(model, ids), reference)

    site = tn.ffn_sites(model)[0]  # nothing upstream changes, so its raw output is the reference
    one = NeuronSet({site.name: torch.tensor([1, 7])}, layout_of(model))
    seen = []
    hook = site.module.register_forward_hook(lambda m, a, out: seen.append(out.clone()))
    logits(model, ids)
    with scale(model, one, 2.5):
        after = site.module.register_forward_hook(lambda m, a, out: seen.append(out.clone()))
        logits(model, ids)
    hook.remove(), after.remove()
    plain, _, scaled = seen  # the first hook ran twice, the second once
    factor = torch.ones(site.n_neurons)
    factor[[1, 7]] = 2.5
    assert torch.equal(scaled, plain * factor)
    with deactivate(model, one):
        zeroed = logits(model, ids)
    with scale(model, one, 0.0):
        assert torch.equal(logits(model, ids), zeroed)


def test_scale_keeps_gradients_flowing():
    model = tiny_model("llama")
    ns = random_set(model, 0.3)
    with scale(model, ns, 0.5):
        loss = model(input_ids=inputs(), labels=inputs()).loss
        loss.backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)


def test_other_layout_or_bad_arguments_raise():
    llama, gpt2 = tiny_model("llama"), tiny_model("gpt2")
    foreign = random_set(gpt2, 0.1)
    for mode in ("activation", "weight"):
        with pytest.raises(NeuronSetMismatchError):
            with deactivate(llama, foreign, mode=mode):
                pass
    with pytest.raises(NeuronSetMismatchError):
        with scale(llama, foreign, 2.0):
            pass
    with pytest.raises(ValueError, match="mode"):
        with deactivate(llama, random_set(llama, 0.1), mode="weights"):
            pass
    with pytest.raises(ValueError, match="finite"):
        with scale(llama, random_set(llama, 0.1), float("nan")):
            pass
    assert all(not m._forward_hooks for m in llama.modules())


# -- act units: the intermediate activation, switched off in the output projection's input ----


@pytest.mark.parametrize("family", FAMILIES)
def test_act_deactivation_equals_zeroing_the_output_projection_columns(family):
    """Switching act units off gives the logits of the model whose output projection has
    those input columns (Conv1D: rows) set to zero by hand: identical, not just close."""
    model = tiny_model(family)
    ids = inputs(seed=3)
    ns = random_set(model, 0.3, seed=2, kinds="act")
    before, reference = snapshot(model), logits(model, ids)
    with deactivate(model, ns):
        switched_off = logits(model, ids)
    assert_restored(model, before)
    assert all(not m._forward_pre_hooks for m in model.modules())

    output = "down" if family in GATED else "fc_out"
    with torch.no_grad():
        for layer in range(2):
            # The output projection, found through the linear sites.
            weight = tn.core.site_map(model)[f"layers.{layer}.mlp.{output}"].module.weight
            idx = ns.indices[f"layers.{layer}.mlp.act"]
            if family == "gpt2":  # Conv1D stores (in, out): input unit j is row j
                weight[idx] = 0
            else:
                weight[:, idx] = 0
        by_hand = logits(model, ids)
    assert torch.equal(switched_off, by_hand)
    assert not torch.allclose(switched_off, reference, atol=1e-4)


@pytest.mark.parametrize("family", ["llama", "phi3", "gpt2", "bloom"])
def test_act_weight_mode_zeroes_rows_and_column_and_agrees(family):
    model = tiny_model(family, seed=2)
    ids = inputs(seed=1)
    ns = random_set(model, 0.25, seed=4, kinds="act")
    before = snapshot(model)
    with deactivate(model, ns, mode="activation"):
        by_activation = logits(model, ids)
    with deactivate(model, ns, mode="weight"):
        by_weight = logits(model, ids)
        for site in tn.ffn_sites(model, "act"):
            idx = ns.indices[site.name]
            assert (site.read(idx) == 0).all()  # input-projection rows, biases, column
            for part in site.parts[:-1]:
                assert (part.read(idx) == 0).all()
    torch.testing.assert_close(by_activation, by_weight, rtol=1e-5, atol=1e-6)
    assert_restored(model, before)


def test_act_and_linear_units_together_restore_exactly():
    """An act unit and a linear unit of one layer share entries (the down column j and row i
    share W[i, j]); weight mode still puts every original value back."""
    model = tiny_model("llama")
    ids = inputs()
    layout = layout_of(model, "all")
    ns = NeuronSet(
        {"layers.0.mlp.act": [1, 2], "layers.0.mlp.down": [2, 5], "layers.0.mlp.gate": [1]}, layout
    )
    before, reference = snapshot(model), logits(model, ids)
    for mode in ("activation", "weight"):
        with deactivate(model, ns, mode=mode):
            assert not torch.equal(logits(model, ids), reference)
        assert_restored(model, before)
    assert torch.equal(logits(model, ids), reference)


def test_act_generation_under_deactivation():
    model = tiny_model("llama", seed=4)
    prompt = inputs(seed=2, batch=1, length=5)
    settings = dict(
        max_new_tokens=6,
        do_sample=False,
        pad_token_id=0,
        output_scores=True,
        return_dict_in_generate=True,
    )
    plain = torch.stack(model.generate(prompt, **settings).scores)
    with deactivate(model, random_set(model, 0.6, seed=1, kinds="act")):
        cached = torch.stack(model.generate(prompt, **settings).scores)
        uncached = torch.stack(model.generate(prompt, **settings, use_cache=False).scores)
    assert not torch.allclose(cached, plain, atol=1e-4)
    assert torch.allclose(cached, uncached, atol=1e-5)
    assert torch.equal(torch.stack(model.generate(prompt, **settings).scores), plain)
