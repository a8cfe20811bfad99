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
    rows = (
        weight[:, [0 + site.offset, 2 + site.offset]].T
        if site.transposed
        else weight[[0 + site.offset, 2 + site.offset]]
    )
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

    with pytest.raises(tn.errors.UnsupportedArchitectureError) as err:
        tn.ffn_sites(Toy())
    message = str(err.value)
    assert "'toy'" in message and "register_family" in message
    for family in (
        "llama",
        "mistral",
        "qwen2",
        "gemma",
        "phi3",
        "gpt2",
        "bloom",
        "gpt_neox",
        "opt",
    ):
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
        tn.core.register_family(
            tn.core.Family(
                "toy", ("toy_registered",), "blocks", {"fc_in": "w_in", "fc_out": "w_out"}
            )
        )
        names = [(s.name, s.n_neurons) for s in tn.ffn_sites(Toy())]
        assert names[:2] == [("layers.0.mlp.fc_in", 8), ("layers.0.mlp.fc_out", 4)]
        assert len(names) == 6
        with pytest.raises(ValueError, match="already belongs"):
            tn.core.register_family(tn.core.Family("toy2", ("toy_registered",), "blocks", {}))
    finally:
        tn.core.FAMILIES.pop("toy", None)


@pytest.mark.parametrize("family", FAMILIES)
def test_act_sites_sit_between_the_projections(family):
    """The act site of a layer is the input of its output projection, d_ff units, listed in
    data-flow order; the default layout (the linear sites) does not include it."""
    model = tiny_model(family)
    linear = tn.core.site_map(model)
    every = tn.ffn_sites(model, "all")
    d_ff = ffn_width(model)
    inputs, output = (("gate", "up"), "down") if family in GATED else (("fc_in",), "fc_out")
    expected = [
        f"layers.{layer}.mlp.{kind}" for layer in range(2) for kind in (*inputs, "act", output)
    ]
    assert [s.name for s in every] == expected
    assert [s.name for s in tn.ffn_sites(model)] == [n for n in expected if not n.endswith("act")]
    for act in tn.ffn_sites(model, "act"):
        down = linear[f"layers.{act.layer}.mlp.{output}"]
        assert (act.kind, act.n_neurons, act.port) == ("act", d_ff, "input")
        assert act.module is down.module and act.in_features == model.config.hidden_size
        assert [p.name for p in act.parts] == [
            f"layers.{act.layer}.mlp.{k}" for k in (*inputs, output)
        ]


def test_kinds_choose_sites_in_data_flow_order_and_unknown_kinds_are_refused():
    model = tiny_model("llama")
    assert [s.kind for s in tn.ffn_sites(model, ("up", "gate"))] == ["gate", "up"] * 2
    assert tn.layout_of(model, ["down", "up", "gate"]) is tn.layout_of(model)
    assert tn.layout_of(model, "act").kinds == ("act",)
    assert tn.layout_of(model, "all").kinds == ("gate", "up", "act", "down")
    with pytest.raises(
        tn.errors.SiteKindError,
        match=r"'fc_out' is not a site kind of model "
        r"'LlamaForCausalLM'; choose from gate, up, act, down, or 'all'",
    ):
        tn.ffn_sites(model, ["act", "fc_out"])
    with pytest.raises(tn.errors.SiteKindError, match="no site kind given"):
        tn.ffn_sites(model, ())


def test_layout_for_is_the_layout_of_the_kinds_a_set_names():
    model = tiny_model("gpt2")
    act = dict(tn.layout_of(model, "act"))
    assert tn.core.layout_for(model, act) is tn.layout_of(model, "act")
    assert tn.core.layout_for(model, dict(tn.layout_of(model))) is tn.layout_of(model)
    # Kinds the model lacks are left out, so that check names the difference.
    foreign = dict(tn.layout_of(tiny_model("llama"), "all"))
    with pytest.raises(tn.errors.NeuronSetMismatchError, match="sites only in the neuron set"):
        tn.core.layout_for(model, foreign).check(foreign)


@pytest.mark.parametrize("family", ["llama", "phi3", "gpt2", "bloom"])
def test_act_unit_reads_and_writes_its_rows_and_column(family):
    """read: [input projection rows (and biases)..., output projection column], by hand."""
    model = tiny_model(family)
    act = tn.core.site_map(model, "all")["layers.1.mlp.act"]
    got = act.read([2, 5])
    expected = [part.read([2, 5]) for part in act.parts[:-1]]  # rows (+ bias) of gate, up / fc_in
    weight = act.parts[-1].module.weight
    expected.append(weight[[2, 5]] if act.transposed else weight[:, [2, 5]].T)
    assert torch.equal(got, torch.cat(expected, dim=1))
    assert got.shape == (2, act.n_params)
    act.write([2, 5], torch.zeros_like(got))
    assert (act.read([2, 5]) == 0).all() and (act.read([3]) != 0).any()
    act.write([2, 5], got)
    assert torch.equal(act.read([2, 5]), got)
