"""FFN sites of every supported family, on tiny random models."""

import pytest
import torch
from torch import nn

import taskneuron_utils as tn
from tiny_models import GATED, TINY_CONFIGS, ffn_width, tiny_model

FAMILIES = sorted(TINY_CONFIGS)


@pytest.mark.parametrize("family", FAMILIES)
def test_site_names_and_counts(family):
    model = tiny_model(family)
    sites = tn.ffn_sites(model)
    d_ff, d_model = ffn_width(model), model.config.hidden_size
    if family in GATED:
        kinds, counts = ("gate", "up", "down"), (d_ff, d_ff, d_model)
    else:
        kinds, counts = ("fc_in", "fc_out"), (d_ff, d_model)
    expected = [
        (f"layers.{layer}.mlp.{kind}", layer, kind, n)
        for layer in range(2)
        for kind, n in zip(kinds, counts)
    ]
    assert [(s.name, s.layer, s.kind, s.n_neurons) for s in sites] == expected


def _site_output(site, x):
    return site.output_slice(site.module(x))


@pytest.mark.parametrize("family", FAMILIES)
def test_zeroing_one_neuron_changes_exactly_that_output(family):
    model = tiny_model(family)
    for site in tn.ffn_sites(model):
        x = torch.randn(3, 5, site.in_features)
        before = _site_output(site, x).detach().clone()
        j = site.n_neurons // 2 + 1
        saved = site.read(j)
        site.write(j, torch.zeros_like(saved))
        after = _site_output(site, x).detach()
        changed = (after != before).any(dim=(0, 1)).nonzero().flatten().tolist()
        assert changed == [j], site.name
        assert torch.all(after[..., j] == 0), site.name
        site.write(j, saved)
        assert torch.equal(_site_output(site, x).detach(), before), site.name


@pytest.mark.parametrize("family", ["llama", "phi3", "gpt2", "opt"])
def test_read_layout_is_row_then_bias(family):
    model = tiny_model(family)
    site = tn.ffn_sites(model)[0]
    params = site.read([0, 2])
    weight = site.module.weight
    rows = weight[:, [0 + site.offset, 2 + site.offset]].T if site.transposed else weight[
        [0 + site.offset, 2 + site.offset]
    ]
    assert torch.equal(params[:, : site.in_features], rows)
    bias = getattr(site.module, "bias", None)
    if bias is not None:
        assert params.shape[1] == site.in_features + 1
        assert torch.equal(params[:, -1], bias[[site.offset, 2 + site.offset]])


def test_phi3_fused_gate_up_halves():
    model = tiny_model("phi3")
    gate, up = tn.ffn_sites(model)[:2]
    assert gate.module is up.module and (gate.offset, up.offset) == (0, 64)
    x = torch.randn(2, 3, gate.in_features)
    full = gate.module(x)
    assert torch.equal(torch.cat([gate.output_slice(full), up.output_slice(full)], -1), full)


def test_out_of_range_neuron_names_the_site():
    site = tn.ffn_sites(tiny_model("llama"))[1]
    with pytest.raises(IndexError, match="layers.0.mlp.up has neurons 0..63"):
        site.read(64)


def test_unknown_architecture_names_families_and_registration():
    class Toy(nn.Module):
        class config:
            model_type = "toy"

    with pytest.raises(tn.UnsupportedArchitectureError) as err:
        tn.ffn_sites(Toy())
    message = str(err.value)
    assert "'toy'" in message and "register_family" in message
    for family in ("llama", "mistral", "qwen2", "gemma", "phi3", "gpt2", "bloom", "gpt_neox", "opt"):
        assert family in message


def test_register_a_new_family():
    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.w_in, self.w_out = nn.Linear(4, 8), nn.Linear(8, 4)

    class Toy(nn.Module):
        class config:
            model_type = "toy_registered"

        def __init__(self):
            super().__init__()
            self.blocks = nn.ModuleList([Block(), Block(), Block()])

    try:
        tn.register_family(
            tn.Family("toy", ("toy_registered",), "blocks", {"fc_in": "w_in", "fc_out": "w_out"})
        )
        names = [(s.name, s.n_neurons) for s in tn.ffn_sites(Toy())]
        assert names[:2] == [("layers.0.mlp.fc_in", 8), ("layers.0.mlp.fc_out", 4)]
        assert len(names) == 6
        with pytest.raises(ValueError, match="already belongs"):
            tn.register_family(tn.Family("toy2", ("toy_registered",), "blocks", {}))
    finally:
        tn.FAMILIES.pop("toy", None)
