"""The attribution methods beside gradient x activation, each against a computation by hand."""

import hashlib
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import taskneuron_utils as tn
from taskneuron_utils.scoring.loss import answer_losses
from taskneuron_utils.tasks import collate, encode
from test_attribution import exact_ablation
from tiny_models import tiny_llama_model, tiny_model

# The last commit whose attribution.py computed the default relevance before methods existed.
BEFORE = "7550c480f96932b4bd9a953b0507200b64c088aa"
# Where the modules BEFORE's attribution.py imports live now (layers as folders).
MOVED = {
    "architectures": "core.layout",
    "hooks": "hooks.tracing",
    "loss": "scoring.loss",
    "neurons": "neurons.neuron_set",
    "parallel": "core.parallel",
    "placement": "core.placement",
    "storage": "io.storage",
}
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def tok(default_tok):
    return default_tok


def tiny(family, tok, dtype=torch.float32):
    return tiny_model(family, seed=1, vocab_size=len(tok)).to(dtype)


def attribute(model, tok, data, **options):
    return tn.attribute(model, tok, data, batch_size=4, progress=False, **options)


def attribution_before():
    """``attribute`` as committed in BEFORE, imported inside the package (its relative imports
    resolve to today's hooks, loss and storage, which the methods only added to; the modules it
    names moved into the layer folders, ``MOVED``)."""
    try:
        source = subprocess.run(
            ["git", "show", f"{BEFORE}:taskneuron_utils/attribution.py"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip(f"git history with commit {BEFORE[:7]} is not available here")
    for old, new in MOVED.items():
        source = source.replace(f"from .{old} import", f"from .{new} import")
    name = "taskneuron_utils._attribution_before"
    spec = importlib.util.spec_from_loader(name, loader=None)
    module = importlib.util.module_from_spec(spec)
    module.__package__ = "taskneuron_utils"
    sys.modules[name] = module
    exec(compile(source, "attribution_before.py", "exec"), module.__dict__)
    return module.attribute


@pytest.mark.parametrize("family, kinds", [("llama", None), ("gpt2", None), ("llama", "act")])
def test_default_method_is_bit_identical_to_the_code_before_methods(family, kinds, tok, toy_task):
    before = attribution_before()
    model = tiny(family, tok)
    old = before(model, tok, toy_task.train[:10], kinds=kinds, batch_size=4, progress=False)
    new = attribute(model, tok, toy_task.train[:10], kinds=kinds)
    assert list(new.sum_abs) == list(old.sum_abs) and new.n_tokens == old.n_tokens
    for site in old.sum_abs:
        assert torch.equal(new.sum_abs[site], old.sum_abs[site]), site
        assert torch.equal(new.sum_signed[site], old.sum_signed[site]), site
    assert new.provenance["method"] == "grad_x_act"


def test_attribution_patching_with_zero_baseline_is_grad_x_act(tok, toy_task):
    model = tiny("llama", tok)
    default = attribute(model, tok, toy_task.train[:8], kinds="all")
    patched = attribute(model, tok, toy_task.train[:8], kinds="all", method="attribution_patching")
    for site in default.sum_abs:
        assert torch.equal(patched.sum_abs[site], default.sum_abs[site]), site
        assert torch.equal(patched.sum_signed[site], default.sum_signed[site]), site


def test_attribution_patching_against_a_paired_baseline_by_hand(tok, toy_task):
    model = tiny("llama", tok)
    data, corrupt = toy_task.train[:2], toy_task.train[3:5]
    rel = attribute(model, tok, data, method="attribution_patching", baseline=corrupt)
    site = "layers.1.mlp.up"
    clean = collate(encode(tok, data), tok.pad_token_id)
    other = collate(encode(tok, corrupt), tok.pad_token_id)
    with torch.no_grad(), tn.trace(model, [site]) as tr:
        model(input_ids=other["input_ids"], attention_mask=other["attention_mask"])
        a_corrupt = tr[site].output.clone()
    with tn.trace(model, [site], grad=True) as tr:
        losses, _ = answer_losses(model, clean)
        tr.backward(losses.sum())
        grad, a = tr[site].grad, tr[site].output.detach()
    expected = -(grad.double() * (a - a_corrupt).double()).sum(1)  # (B, n)
    torch.testing.assert_close(rel.sum_signed[site], expected.sum(0), rtol=1e-5, atol=1e-9)
    torch.testing.assert_close(rel.sum_abs[site], expected.abs().sum(0), rtol=1e-5, atol=1e-9)


def hand_integrated_gradients(model, tok, data, site, steps):
    """IG_j per example (B, n) and L(a) - L(0) (B,) with plain hooks: the site's output
    multiplied by s/m, one point at a time (right Riemann sum), its gradient taken each time."""
    module = tn.core.site_map(model)[site].module
    batch = collate(encode(tok, data), tok.pad_token_id)
    kept = {}

    def at(alpha):
        def hook(mod, args, output):
            kept["out"] = output * alpha
            return kept["out"]

        return hook

    grads, losses = [], {}
    for s in range(steps + 1):
        handle = module.register_forward_hook(at(s / steps))
        try:
            embeds = model.get_input_embeddings()(batch["input_ids"]).detach().requires_grad_()
            loss = answer_losses_from_embeds(model, batch, embeds)
            losses[s] = loss.detach().double()
            if s > 0:
                grads.append(torch.autograd.grad(loss.sum(), kept["out"])[0].double())
            if s == steps:
                activation = kept["out"].detach().double()
        finally:
            handle.remove()
    ig = (activation * torch.stack(grads).mean(0)).sum(1)
    return ig, losses[steps] - losses[0]


def answer_losses_from_embeds(model, batch, embeds):
    """``answer_losses`` with the input embeddings given (so that gradients reach the site)."""
    handle = model.get_input_embeddings().register_forward_hook(lambda m, a, o: embeds)
    try:
        return answer_losses(model, batch)[0]
    finally:
        handle.remove()


def test_integrated_gradients_equal_a_riemann_sum_by_hand_and_report_completeness(tok, toy_task):
    model = tiny("llama", tok)
    data, site = toy_task.train[:3], "layers.0.mlp.up"
    rel = attribute(model, tok, data, method="integrated_gradients", steps=5)
    ig, delta = hand_integrated_gradients(model, tok, data, site, 5)
    torch.testing.assert_close(rel.sum_signed[site], -ig.sum(0), rtol=1e-4, atol=1e-8)
    torch.testing.assert_close(rel.sum_abs[site], ig.abs().sum(0), rtol=1e-4, atol=1e-8)
    residual, mean_delta = rel.provenance["completeness"]["per_site"][site]
    assert residual == pytest.approx(float((ig.sum(1) - delta).abs().mean()), rel=1e-3, abs=1e-7)
    assert mean_delta == pytest.approx(float(delta.abs().mean()), rel=1e-4)
    assert rel.provenance["settings"] == {"baseline": "zero", "steps": 5}


def test_completeness_residual_shrinks_with_steps_and_one_step_is_patching(tok, toy_task):
    model = tiny("llama", tok)
    data = toy_task.train[:4]
    stats = tn.activation_stats(model, tok, toy_task.train, progress=False)
    one_site = {"neurons": {"layers.0.mlp.gate": [0]}}  # IG computes that site only
    coarse = attribute(model, tok, data, method="integrated_gradients", steps=2, **one_site)
    fine = attribute(model, tok, data, method="integrated_gradients", steps=32, **one_site)
    assert (
        fine.provenance["completeness"]["mean_abs_residual"]
        < 0.25 * coarse.provenance["completeness"]["mean_abs_residual"]
    )
    for baseline in ("zero", stats):  # the one point of a 1-step path is the real activation
        one = attribute(model, tok, data, method="integrated_gradients", steps=1, baseline=baseline)
        patched = attribute(model, tok, data, method="attribution_patching", baseline=baseline)
        for site in patched.sum_signed:
            torch.testing.assert_close(
                one.sum_signed[site], patched.sum_signed[site], rtol=1e-5, atol=1e-10
            )


def test_integrated_gradients_equal_grad_x_act_where_the_loss_is_linear_in_the_site(tok, toy_task):
    """Last layer's down output scaled by 1e-6 (float64): the loss is linear in it to 1e-6, so
    every point of the path has the same gradient and IG equals grad x act; at full scale the
    two differ."""
    data, site = toy_task.train[:4], "layers.1.mlp.down"
    differences = {}
    for factor in (1.0, 1e-6):
        model = tiny("llama", tok, torch.float64)
        with torch.no_grad():
            tn.core.site_map(model)[site].module.weight.mul_(factor)
        ig = attribute(
            model, tok, data, method="integrated_gradients", steps=8, neurons={site: [0]}
        ).sum_signed[site]
        gxa = attribute(model, tok, data).sum_signed[site]
        differences[factor] = float((ig - gxa).abs().max() / gxa.abs().max())
    assert differences[1e-6] < 1e-5 < differences[1.0]


def test_mean_baseline_is_the_mean_over_the_data(tok, toy_task):
    model = tiny("llama", tok)
    data = toy_task.train[:8]
    stats = tn.activation_stats(model, tok, data, progress=False)
    inline = attribute(model, tok, data, method="attribution_patching", baseline="mean")
    given = attribute(model, tok, data, method="attribution_patching", baseline=stats)
    for site in inline.sum_abs:
        torch.testing.assert_close(inline.sum_abs[site], given.sum_abs[site], rtol=1e-6, atol=0)
    assert inline.provenance["settings"] == {"baseline": "mean over the data's positions"}


def test_activation_statistics_by_hand(tok, toy_task):
    model = tiny("llama", tok)
    data, site = toy_task.train[:5], "layers.1.mlp.act"
    mean_abs = attribute(model, tok, data, kinds="act", method="activation")
    firing = attribute(model, tok, data, kinds="act", method="activation", statistic="firing_rate")
    rows_abs, rows_fire = [], []
    for example in encode(tok, data):  # one example at a time: no padding
        batch = collate([example], tok.pad_token_id)
        with torch.no_grad(), tn.trace(model, [site]) as tr:
            model(input_ids=batch["input_ids"])
            a = tr[site].output[0].double()  # (T, n)
        rows_abs.append(a.abs().mean(0))
        rows_fire.append((a > 0).double().mean(0))
    torch.testing.assert_close(
        mean_abs.sum_signed[site], torch.stack(rows_abs).sum(0), rtol=1e-5, atol=1e-7
    )
    torch.testing.assert_close(firing.scores[site], torch.stack(rows_fire).mean(0).float())


@pytest.mark.parametrize("kinds, site", [(None, "layers.1.mlp.gate"), ("act", "layers.0.mlp.act")])
def test_exact_ablation_equals_hand_written_hooks(kinds, site, tok, toy_task):
    model = tiny("llama", tok)
    data = toy_task.train[:6]
    units = [0, 3, 7, 11, 20]
    rel = attribute(model, tok, data, kinds=kinds, method="ablation", neurons={site: units})
    batch = collate(encode(tok, data), tok.pad_token_id)
    with torch.no_grad():
        base, _ = answer_losses(model, batch)
    the_site = tn.core.site_map(model, "all")[site]
    expected = torch.stack([exact_ablation(model, batch, base, the_site, j) for j in units], 1)
    torch.testing.assert_close(rel.sum_signed[site][units], expected.sum(0), rtol=1e-4, atol=1e-6)
    assert rel.sum_abs[site].isnan().sum() == the_site.n_neurons - len(units)
    with pytest.raises(ValueError, match="measured on some units only"):
        rel.top_k(0.1)


def test_edit_mean_equals_a_hand_written_hook_and_mean_ablation_follows(tok, toy_task):
    model = tiny("llama", tok)
    stats = tn.activation_stats(model, tok, toy_task.train, progress=False)
    site, units = "layers.0.mlp.up", [1, 4, 9]
    batch = collate(encode(tok, toy_task.train[:4]), tok.pad_token_id)
    means = stats.mean[site]

    def by_hand(module, args, output):
        output = output.clone()
        output[..., units] = means[units]
        return output

    handle = tn.core.site_map(model)[site].module.register_forward_hook(by_hand)
    with torch.no_grad():
        expected = model(**{k: batch[k] for k in ("input_ids", "attention_mask")}).logits
        hand_losses, _ = answer_losses(model, batch)
    handle.remove()
    ns = tn.NeuronSet({site: units}, tn.layout_of(model))
    with torch.no_grad(), tn.trace(model, edit={site: tn.Edit.mean(units, means[units])}):
        edited = model(**{k: batch[k] for k in ("input_ids", "attention_mask")}).logits
    with torch.no_grad(), tn.deactivate(model, ns, mode=tn.Ablation.mean(stats)):
        deactivated = model(**{k: batch[k] for k in ("input_ids", "attention_mask")}).logits
    assert torch.equal(edited, expected) and torch.equal(deactivated, expected)
    rel = attribute(
        model, tok, toy_task.train[:4], method="ablation", baseline=stats, neurons={site: [4]}
    )
    with torch.no_grad():
        base, _ = answer_losses(model, batch)
    # One unit at a time by the method; the hand hook moved three, so compare unit 4 alone.
    handle = tn.core.site_map(model)[site].module.register_forward_hook(
        lambda m, a, o: o.index_fill(-1, torch.tensor([4]), float(means[4]))
    )
    with torch.no_grad():
        alone, _ = answer_losses(model, batch)
    handle.remove()
    assert float(rel.sum_signed[site][4]) == pytest.approx(float((alone - base).sum()), rel=1e-4)
    assert not torch.equal(hand_losses, base)


def test_noise_ablation_draws_the_reference_moments_reproducibly(tok, toy_task):
    model = tiny("llama", tok)
    stats = tn.activation_stats(model, tok, toy_task.train, progress=False)
    site, units = "layers.1.mlp.up", [2, 5]
    batch = collate(encode(tok, toy_task.train[:8]), tok.pad_token_id)
    ns = tn.NeuronSet({site: units}, tn.layout_of(model))
    runs = []
    for _ in range(2):
        with (
            torch.no_grad(),
            tn.deactivate(model, ns, mode=tn.Ablation.noise(stats, seed=3)),
            tn.trace(model, [site]) as tr,
        ):
            model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
            runs.append(tr[site].output.clone())
    assert torch.equal(runs[0], runs[1])
    drawn = runs[0][..., units].reshape(-1, 2)  # 8 x 44 positions
    spread = float(stats.std[site][units].max()) / drawn.shape[0] ** 0.5  # std of a mean
    assert torch.allclose(drawn.mean(0), stats.mean[site][units], atol=4 * spread)
    assert torch.allclose(drawn.std(0), stats.std[site][units], rtol=0.2)
    with torch.no_grad(), tn.trace(model, [site]) as tr:
        model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
    others = [j for j in range(runs[0].shape[-1]) if j not in units]
    assert torch.equal(runs[0][..., others], tr[site].output[..., others])


def test_every_method_saves_loads_and_resumes(tok, toy_task, tmp_path):
    model = tiny("llama", tok)
    data = toy_task.train[:12]
    options = {
        "integrated_gradients": {"steps": 3, "neurons": {"layers.1.mlp.up": [0]}},
        "attribution_patching": {"baseline": "mean"},
        "activation": {"statistic": "firing_rate"},
        "ablation": {"neurons": {"layers.0.mlp.down": [1, 2]}},
    }
    for method, settings in options.items():
        whole = attribute(model, tok, data, method=method, **settings)
        whole.save(tmp_path / f"{method}.safetensors")
        loaded = tn.Relevance.load(tmp_path / f"{method}.safetensors", model=model)
        assert loaded.provenance == whole.provenance and loaded.provenance["method"] == method
        checkpoint = tmp_path / f"{method}.ckpt.safetensors"
        calls = {"n": 0, "stop": None}

        def count_or_stop(module, args, calls=calls):
            calls["n"] += 1
            if calls["n"] == calls["stop"]:
                raise KeyboardInterrupt

        handle = model.get_input_embeddings().register_forward_pre_hook(count_or_stop)
        attribute(model, tok, data, method=method, **settings)
        calls.update(stop=calls["n"] // 2 + 1, n=0)  # in the second of the three batches
        with pytest.raises(KeyboardInterrupt):
            attribute(
                model,
                tok,
                data,
                method=method,
                checkpoint=checkpoint,
                checkpoint_every=1,
                **settings,
            )
        handle.remove()
        resumed = attribute(model, tok, data, method=method, checkpoint=checkpoint, **settings)
        for site in whole.sum_abs:
            assert torch.equal(
                resumed.sum_abs[site].nan_to_num(-1), whole.sum_abs[site].nan_to_num(-1)
            ), (method, site)
        assert resumed.provenance == whole.provenance, method
        with pytest.raises(tn.errors.AttributionError, match="another run"):
            attribute(model, tok, data, method="grad_x_act", checkpoint=checkpoint)


def test_bad_options_are_one_line_errors_before_any_forward_pass(tok, toy_task):
    model = tiny("llama", tok)
    stats = tn.activation_stats(model, tok, toy_task.train[:4], kinds="act", progress=False)
    calls = []
    handle = model.get_input_embeddings().register_forward_pre_hook(lambda m, a: calls.append(1))
    data = toy_task.train[:2]
    cases = [
        ({"method": "gradient"}, "method must be one of"),
        ({"method": "integrated_gradients", "steps": 0}, "steps must be an integer >= 1"),
        (
            {"method": "attribution_patching", "baseline": toy_task.train[3:6]},
            "paired baseline has 3 examples but the data has 2",
        ),
        (
            {"method": "attribution_patching", "baseline": toy_task.train[2:4]},
            "paired baseline example 0 has 43 tokens but data example 0 has 44",
        ),
        (
            {"method": "integrated_gradients", "baseline": stats},
            "baseline statistics have no site layers.0.mlp.gate",
        ),
        ({"method": "attribution_patching", "baseline": "average"}, "baseline must be 'zero'"),
        ({"method": "grad_x_act", "baseline": "mean"}, "baseline applies to"),
        ({"method": "ablation"}, "ablation needs neurons="),
        ({"method": "ablation", "neurons": {"layers.0.mlp.up": [10_000]}}, "names unit 10000"),
        ({"method": "activation", "statistic": "median"}, "statistic must be one of"),
    ]
    for options, message in cases:
        with pytest.raises(ValueError, match=message) as error:
            tn.attribute(model, tok, data, progress=False, **options)
        assert "\n" not in str(error.value)
    wrong = tn.hooks.ActivationStats({"layers.0.mlp.act": torch.zeros(3)}, {}, {}, {}, 1)
    with pytest.raises(ValueError, match=r"shape \(3,\) at layers.0.mlp.act, whose 64 units"):
        tn.attribute(
            model,
            tok,
            data,
            kinds="act",
            method="integrated_gradients",
            baseline=wrong,
            progress=False,
        )
    with pytest.raises(ValueError, match="tn.Ablation.mean"):
        with tn.deactivate(
            model, tn.NeuronSet({"layers.0.mlp.up": [0]}, tn.layout_of(model)), mode="mean"
        ):
            pass
    handle.remove()
    assert calls == []


# --- methods as objects, and the relevance of every method as it was before the layers -------

DIGESTS = json.loads((Path(__file__).parent / "reference" / "relevance_digests.json").read_text())


def relevance_digest(rel) -> str:
    """The digest tests/reference/relevance_digests.json holds (its "about" says how)."""
    parts = []
    for site in rel.sum_abs:
        parts += [site.encode(), rel.sum_abs[site].double().cpu().numpy().tobytes()]
        parts.append(rel.sum_signed[site].double().cpu().numpy().tobytes())
    parts.append(f"{rel.n_examples},{rel.n_tokens}".encode())
    return hashlib.sha256(b"".join(parts)).hexdigest()[:16]


def digest_model(tok):
    """The tiny Llama the digests were recorded on (seed 0, the default tokenizer's vocabulary)."""
    return tiny_llama_model(tok)


@pytest.mark.usefixtures("recorded_threads")
def test_every_method_is_bit_identical_to_the_package_before_the_layers(default_tok):
    model = digest_model(default_tok)
    data = tn.load_tasks()["addition"].train[:6]
    sites = [s.name for s in tn.ffn_sites(model)]
    runs = {
        "grad_x_act": {},
        "attribution_patching/mean": {"method": "attribution_patching", "baseline": "mean"},
        "attribution_patching/zero": {"method": "attribution_patching"},
        "integrated_gradients": {
            "method": tn.attribution.IntegratedGradients(
                steps=3, neurons={sites[2]: list(range(32))}
            )
        },
        "activation/firing_rate": {"method": "activation", "statistic": "firing_rate"},
        "activation/mean_abs": {"method": "activation", "kinds": "act"},
        "ablation/mean": {
            "method": "ablation",
            "neurons": {sites[1]: [0, 3, 5], sites[4]: [2, 7]},
            "baseline": "mean",
        },
    }
    found = {}
    for name, options in runs.items():
        rel = attribute(model, default_tok, data, **options)
        found[name] = relevance_digest(rel)
        if name == "integrated_gradients":
            found[name + "/completeness"] = rel.provenance["completeness"]["mean_abs_residual"]
    assert found == DIGESTS["tiny"]


def test_a_method_object_equals_its_name_and_options(tok, toy_task):
    model = tiny("llama", tok)
    data, site = toy_task.train[:4], "layers.1.mlp.up"
    method = tn.attribution.IntegratedGradients(steps=2, neurons={site: [1, 2]})
    by_object = attribute(model, tok, data, method=method)
    by_name = attribute(
        model, tok, data, method="integrated_gradients", steps=2, neurons={site: [1, 2]}
    )
    assert by_object.provenance == by_name.provenance
    for name in by_name.sum_abs:
        torch.testing.assert_close(
            by_object.sum_abs[name], by_name.sum_abs[name], rtol=0, atol=0, equal_nan=True
        )
    # attribute binds a copy: the caller's object holds no run's state afterwards.
    assert method.settings == {} and method.mean is None and not hasattr(method, "sites")


def test_a_setting_goes_to_its_method_and_nowhere_else(tok, toy_task):
    model = tiny("llama", tok)
    data = toy_task.train[:2]
    with pytest.raises(ValueError, match="steps applies to integrated_gradients; 'activation'"):
        attribute(model, tok, data, method="activation", steps=4)
    with pytest.raises(ValueError, match="unknown option 'stpes' for method"):
        attribute(model, tok, data, method="integrated_gradients", stpes=4)
    with pytest.raises(ValueError, match=r"to the method object \(Activation\(...\)\)"):
        attribute(model, tok, data, method=tn.attribution.Activation(), statistic="firing_rate")
    # The old shared signature's defaults still pass (they change nothing).
    plain = attribute(model, tok, data)
    same = attribute(model, tok, data, steps=16, baseline="zero", statistic="mean_abs")
    assert all(torch.equal(plain.sum_abs[s], same.sum_abs[s]) for s in plain.sum_abs)


def test_a_new_method_is_one_small_class(tok, toy_task):
    """The interface is enough for a method of one's own: |a| at the last prompt position."""

    class LastPromptToken(tn.attribution.Method):
        name = "last_prompt_token"
        description = "|a| at the last prompt token"
        traced = False

        def step(self, model, batch, start, tr, sums, batch_index):
            last = (batch["labels"] != -100).int().argmax(1) - 1  # (B,): before the answer
            with torch.no_grad(), tn.trace(model, self.sites) as kept:
                model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
                for name, record in kept.items():
                    a = record.output[torch.arange(len(last)), last].float()  # (B, n)
                    sums.add(name, a.abs(), batch_index)
            sums.count(len(last), 0)

    model = tiny("llama", tok)
    data = toy_task.train[:3]
    rel = attribute(model, tok, data, method=LastPromptToken(), kinds="act")
    assert rel.provenance["method"] == "last_prompt_token"
    example = collate(encode(tok, data[:1]), tok.pad_token_id)
    last = int((example["labels"][0] != -100).int().argmax()) - 1
    with torch.no_grad(), tn.trace(model, ["layers.0.mlp.act"]) as tr:
        model(input_ids=example["input_ids"])
        first = tr["layers.0.mlp.act"].output[0, last].abs()
    one = attribute(model, tok, data[:1], method=LastPromptToken(), kinds="act")
    assert torch.allclose(one.sum_abs["layers.0.mlp.act"].float(), first)
