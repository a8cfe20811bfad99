"""tn.trace: keep outputs, keep gradients, edit outputs by site name; always cleaned up."""

import pytest
import torch

import taskneuron_utils as tn
from taskneuron_utils.scoring.loss import answer_losses
from taskneuron_utils.tasks import collate, encode
from tiny_models import tiny_model


def ids(seed=0, batch=2, length=6, vocab=128):
    return torch.randint(0, vocab, (batch, length), generator=torch.Generator().manual_seed(seed))


def plain_capture(module, run):
    """The module's output, captured with a bare torch hook (the ground truth)."""
    seen = {}
    handle = module.register_forward_hook(
        lambda m, a, out: seen.setdefault("out", out.detach().clone())
    )
    try:
        run()
    finally:
        handle.remove()
    return seen["out"]


def no_hooks_left(model):
    return all(not m._forward_hooks for m in model.modules())


@pytest.mark.parametrize("family", ["llama", "gpt2", "phi3"])
def test_keep_returns_each_sites_own_units(family):
    model = tiny_model(family)
    x = ids()
    name = "layers.1.mlp." + ("fc_in" if family == "gpt2" else "up")
    site = tn.core.site_map(model)[name]
    expected = site.output_slice(plain_capture(site.module, lambda: model(input_ids=x)))
    with torch.no_grad(), tn.trace(model, [name]) as tr:
        model(input_ids=x)
    assert list(tr) == [name]
    assert tr[name].output.shape == (2, 6, site.n_neurons)
    assert torch.equal(tr[name].output, expected)
    assert no_hooks_left(model)


def test_keep_named_units_returns_those_units_and_refuses_bad_ones():
    # phi3: gate and up share one module, so each site's units start at its own offset.
    model = tiny_model("phi3")
    x = ids()
    gate, up = (
        tn.core.site_map(model)["layers.0.mlp.gate"],
        tn.core.site_map(model)["layers.0.mlp.up"],
    )
    act = "layers.1.mlp.act"
    with torch.no_grad(), tn.trace(model, [gate.name, up.name, act]) as full:
        model(input_ids=x)
    units = {gate.name: torch.tensor([3, 0]), up.name: torch.tensor([5]), act: [1, 2]}
    with torch.no_grad(), tn.trace(model, keep=units) as tr:
        model(input_ids=x)
    assert list(tr) == [gate.name, up.name, act]
    for name, index in units.items():
        assert torch.equal(tr[name].output, full[name].output[..., list(index)])
    tr.clear()
    assert tr[up.name].output is None
    assert no_hooks_left(model) and all(not m._forward_pre_hooks for m in model.modules())
    with pytest.raises(IndexError, match="layers.0.mlp.up has units 0..63"):
        with tn.trace(model, keep={up.name: torch.tensor([64])}):
            pass
    with pytest.raises(ValueError, match="keeps no gradients"):
        with tn.trace(model, keep={up.name: [0]}, grad=True):
            pass


@pytest.mark.parametrize("op", ["zero", "scale", "add", "replace"])
def test_edit_changes_exactly_the_chosen_units(op):
    model = tiny_model("llama")
    x = ids()
    name = "layers.0.mlp.gate"
    site = tn.core.site_map(model)[name]
    chosen = torch.tensor([3, 17, 40])
    before = plain_capture(site.module, lambda: model(input_ids=x))
    edit = {
        "zero": tn.Edit.zero(chosen),
        "scale": tn.Edit.scale(chosen, 2.5),
        "add": tn.Edit.add(chosen, torch.tensor([1.0, -2.0, 0.5])),
        "replace": tn.Edit.replace(chosen, torch.tensor([7.0, 8.0, 9.0])),
    }[op]
    with torch.no_grad(), tn.trace(model, [name], edit={name: edit}) as tr:
        model(input_ids=x)
    after = tr[name].output
    others = torch.ones(site.n_neurons, dtype=torch.bool)
    others[chosen] = False
    assert torch.equal(after[..., others], before[..., others])
    expected = {
        "zero": torch.zeros_like(before[..., chosen]),
        "scale": 2.5 * before[..., chosen],
        "add": before[..., chosen] + torch.tensor([1.0, -2.0, 0.5]),
        "replace": torch.tensor([7.0, 8.0, 9.0]).expand(2, 6, 3),
    }[op]
    torch.testing.assert_close(after[..., chosen], expected, rtol=0, atol=1e-6)
    # The edit reaches the model's output; outside the block the model is untouched again.
    with torch.no_grad():
        plain = model(input_ids=x).logits
        with tn.trace(model, edit={name: edit}):
            edited = model(input_ids=x).logits
        assert not torch.equal(plain, edited)
        assert torch.equal(model(input_ids=x).logits, plain)
    assert no_hooks_left(model)


def test_edit_on_a_fused_site_leaves_the_other_half_alone():
    model = tiny_model("phi3")  # gate and up share gate_up_proj
    x = ids()
    gate, up = (
        tn.core.site_map(model)["layers.0.mlp.gate"],
        tn.core.site_map(model)["layers.0.mlp.up"],
    )
    before = plain_capture(up.module, lambda: model(input_ids=x))
    with (
        torch.no_grad(),
        tn.trace(model, [gate.name, up.name], edit={up.name: tn.Edit.zero([0, 5])}) as tr,
    ):
        model(input_ids=x)
    assert torch.equal(tr[gate.name].output, gate.output_slice(before))
    assert (tr[up.name].output[..., [0, 5]] == 0).all()
    assert torch.equal(tr[up.name].output[..., 6:], up.output_slice(before)[..., 6:])


def test_gradients_match_plain_autograd(tiny_llama, default_tok, toy_task):
    """tr.backward(loss) (no parameter gradients) and loss.backward() with grad=True both give
    the gradient that retain_grad on the raw module output gives."""
    batch = collate(encode(default_tok, toy_task.train[:3]), default_tok.pad_token_id)
    name = "layers.1.mlp.down"
    module = tn.core.site_map(tiny_llama)[name].module
    kept = {}

    def keep(module, args, out):
        out.retain_grad()
        kept["o"] = out

    handle = module.register_forward_hook(keep)
    answer_losses(tiny_llama, batch)[0].sum().backward()
    handle.remove()
    expected = kept["o"].grad.clone()
    tiny_llama.zero_grad(set_to_none=True)

    for p in tiny_llama.parameters():
        p.requires_grad_(False)
    with tn.trace(tiny_llama, [name], grad=True) as tr:
        tr.backward(answer_losses(tiny_llama, batch)[0].sum())
    torch.testing.assert_close(tr[name].grad, expected, rtol=1e-5, atol=1e-7)
    assert all(p.grad is None for p in tiny_llama.parameters())

    with tn.trace(tiny_llama, [name], grad=True) as tr:
        answer_losses(tiny_llama, batch)[0].sum().backward()
    torch.testing.assert_close(tr[name].grad, expected, rtol=1e-5, atol=1e-7)
    tr.clear()
    assert tr[name].output is None and tr[name].grad is None
    assert no_hooks_left(tiny_llama)


def test_hooks_are_removed_when_the_block_raises():
    model = tiny_model("gpt2")
    with pytest.raises(RuntimeError, match="boom"):
        with tn.trace(model, edit={"layers.0.mlp.fc_out": tn.Edit.zero([1])}, grad=True):
            model(input_ids=ids())
            raise RuntimeError("boom")
    assert no_hooks_left(model)


def test_unknown_site_names_are_refused_with_a_suggestion():
    model = tiny_model("llama")
    with pytest.raises(KeyError, match="did you mean layers.1.mlp.up"):
        with tn.trace(model, ["layers.1.mlp.upp"]):
            pass
    with pytest.raises(ValueError, match="op must be one of"):
        tn.Edit("multiply", [1], 2.0)
    assert no_hooks_left(model)


def test_layout_is_computed_once_and_checks_fit():
    model = tiny_model("llama")
    layout = tn.layout_of(model)
    assert tn.layout_of(model) is layout
    assert dict(layout) == {s.name: s.n_neurons for s in tn.ffn_sites(model)}
    assert layout.fingerprint() == tn.core.weight_fingerprint(model)
    other = tiny_model("gpt2")
    with pytest.raises(tn.errors.NeuronSetMismatchError, match="sites only in"):
        tn.layout_of(other).check(layout, made_for=layout.model)


@pytest.mark.parametrize("family", ["llama", "phi3", "gpt2", "opt"])
def test_act_site_is_what_the_output_projection_reads(family):
    """act = act_fn(gate) * up (gated FFNs) or act_fn(fc_in), computed here with the block's
    own activation function from the traced linear sites."""
    model = tiny_model(family)
    names = {s.kind: s.name for s in tn.ffn_sites(model, "all") if s.layer == 1}
    with torch.no_grad(), tn.trace(model, list(names.values())) as tr:
        model(input_ids=ids())
    block = model.get_submodule(
        {
            "llama": "model.layers.1",
            "phi3": "model.layers.1",
            "gpt2": "transformer.h.1",
            "opt": "model.decoder.layers.1",
        }[family]
    )
    if family in ("llama", "phi3"):
        act_fn = block.mlp.act_fn if family == "llama" else block.mlp.activation_fn
        expected = act_fn(tr[names["gate"]].output) * tr[names["up"]].output
    elif family == "gpt2":
        expected = block.mlp.act(tr[names["fc_in"]].output)
    else:
        expected = block.activation_fn(tr[names["fc_in"]].output)
    torch.testing.assert_close(tr[names["act"]].output, expected, rtol=1e-6, atol=1e-6)
    assert tr[names["act"]].output.shape[-1] == (128 if family == "gpt2" else 64)  # d_ff
    assert all(not m._forward_pre_hooks for m in model.modules())


def test_act_edits_change_what_the_output_projection_reads():
    model = tiny_model("llama")
    x = ids()
    act, down = "layers.0.mlp.act", "layers.0.mlp.down"
    module = tn.core.site_map(model)[down].module
    chosen = torch.tensor([3, 17, 40])
    with torch.no_grad(), tn.trace(model, [act, down]) as tr:
        model(input_ids=x)
    before = tr[act].output.clone()
    with (
        torch.no_grad(),
        tn.trace(model, [act, down], edit={act: tn.Edit.scale(chosen, 0.5)}) as tr,
    ):
        model(input_ids=x)
    expected = before.clone()
    expected[..., chosen] *= 0.5
    assert torch.equal(tr[act].output, expected)
    torch.testing.assert_close(tr[down].output, module(expected), rtol=0, atol=1e-6)
    assert no_hooks_left(model) and all(not m._forward_pre_hooks for m in model.modules())


def test_act_gradients_match_plain_autograd(tiny_llama, default_tok, toy_task):
    batch = collate(encode(default_tok, toy_task.train[:3]), default_tok.pad_token_id)
    act, down = "layers.1.mlp.act", "layers.1.mlp.down"
    module = tn.core.site_map(tiny_llama)[down].module
    kept = {}

    def keep(module, args):
        args[0].retain_grad()
        kept["a"] = args[0]

    handle = module.register_forward_pre_hook(keep)
    answer_losses(tiny_llama, batch)[0].sum().backward()
    handle.remove()
    expected = kept["a"].grad.clone()
    tiny_llama.zero_grad(set_to_none=True)
    for p in tiny_llama.parameters():
        p.requires_grad_(False)
    # Both sites of one module (its input and its output) in one trace.
    with tn.trace(tiny_llama, [act, down], grad=True) as tr:
        tr.backward(answer_losses(tiny_llama, batch)[0].sum())
    torch.testing.assert_close(tr[act].grad, expected, rtol=1e-5, atol=1e-7)
    assert tr[down].grad.shape[-1] == 32 and tr[act].grad.shape[-1] == 64
