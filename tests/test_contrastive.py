"""The contrastive recipe (issue 34 part 2): the logit difference of minimal pairs, attribution of
``-LD`` with the alternatives' activations as the baseline, signed aggregation; each against a
computation written out here on a tiny Llama (the default tokenizer's vocabulary, the shipped
``addition`` pairs).
"""

from __future__ import annotations

import pytest
import torch

import taskneuron_utils as tn
from taskneuron_utils.scoring import logit_differences
from taskneuron_utils.tasks import Example, Split, TaskDataError, encode, load_tasks
from tiny_models import tiny_llama_model

ADDITION = load_tasks()["addition"]


@pytest.fixture(scope="module")
def tok(default_tok):
    return default_tok


@pytest.fixture
def model(tok):
    """A 2-layer Llama with weights drawn wide (attention far from uniform), float64 so that
    hand computations agree to ~1e-10."""
    return tiny_llama_model(tok, initializer_range=0.2).double()


def hand_ld(model, tok, data, alt) -> torch.Tensor:
    """LD per pair, one example at a time (no padding): the full model's logits after the last
    prompt token, logit(A_1) - logit(B_1)."""
    values = []
    for e, f in zip(encode(tok, data), encode(tok, alt)):
        with torch.no_grad():
            logits = model(input_ids=torch.tensor([e.input_ids[: e.answer_start]])).logits
        last = logits[0, -1]
        values.append(last[e.input_ids[e.answer_start]] - last[f.input_ids[f.answer_start]])
    return torch.stack(values).double()


def test_logit_differences_equal_a_hand_computation_and_follow_an_intervention(model, tok):
    data = ADDITION.train[:7]
    alt = data.pairs()
    ld = logit_differences(model, tok, data, alt, batch_size=3)  # padded batches
    assert ld.dtype == torch.float64 and ld.shape == (7,)
    torch.testing.assert_close(ld, hand_ld(model, tok, data, alt), rtol=1e-9, atol=1e-9)
    # Under an intervention it measures the model as it stands: the ablated model by hand.
    ns = tn.NeuronSet({"layers.1.mlp.up": list(range(0, 64, 2))}, tn.layout_of(model))
    with tn.deactivate(model, ns):
        ablated = logit_differences(model, tok, data, alt, batch_size=4)
        by_hand = hand_ld(model, tok, data, alt)
    torch.testing.assert_close(ablated, by_hand, rtol=1e-9, atol=1e-9)
    assert (ablated - ld).abs().max() > 1e-3


def test_logit_differences_refuse_bad_pairs_in_one_line_naming_the_example(model, tok):
    data = ADDITION.train[:4]
    alt = data.pairs()
    cases = [
        (data, alt[:3], r"addition/train\[3\] has no partner"),
        (data, Split([alt[0], data[1], alt[2], alt[3]], ADDITION, "x"), r"train\[1\]: the alt"),
    ]
    same_first = Split(
        [alt[0], Example(alt[1].input, data[1].output + "0"), alt[2], alt[3]], ADDITION, "y"
    )
    cases.append((data, same_first, r"addition/train\[1\]: the answer .* same token"))
    for originals, alternatives, message in cases:
        with pytest.raises(TaskDataError, match=message) as error:
            logit_differences(model, tok, originals, alternatives)
        assert "\n" not in str(error.value)


def hand_contrastive(model, tok, data, alt, site, paired: bool) -> torch.Tensor:
    """Per example (n, units): ``-sum_t dL/da * (a - a')`` over the prompt positions, with
    ``L = -LD`` by torch.autograd, each example alone on its prompt tokens only; ``a'`` the
    alternative's prompt activations (``paired``) or 0."""
    module = tn.core.site_map(model, "all")[site]
    kept: dict[str, torch.Tensor] = {}
    if module.port == "input":  # an act site: what the output projection reads
        handle = module.module.register_forward_pre_hook(
            lambda m, args: kept.__setitem__("a", args[0])
        )
    else:
        handle = module.module.register_forward_hook(
            lambda m, args, out: kept.__setitem__("a", out)
        )
    rows = []
    try:
        for e, f in zip(encode(tok, data), encode(tok, alt)):
            start = e.answer_start
            with torch.no_grad():
                model(input_ids=torch.tensor([f.input_ids[:start]]))
            a_alt = kept["a"][0]
            embeds = model.get_input_embeddings()(torch.tensor([e.input_ids[:start]]))
            logits = model(inputs_embeds=embeds.detach().requires_grad_()).logits[0, -1]
            loss = -(logits[e.input_ids[start]] - logits[f.input_ids[f.answer_start]])
            (grad,) = torch.autograd.grad(loss, kept["a"])
            a = kept["a"].detach()[0]
            rows.append(-(grad[0] * (a - a_alt if paired else a)).sum(0))
    finally:
        handle.remove()
    return torch.stack(rows).double()


@pytest.mark.parametrize("paired", [True, False])
def test_logit_difference_attribution_equals_the_hand_gradient(paired, model, tok):
    """(a - a') * dL/da with L = -LD (paired baseline: the contrastive recipe), and grad x act
    of -LD (zero baseline, pairs= for B_1): padded batches, whole answers in the pass, against
    one example at a time on its prompt alone."""
    data = ADDITION.train[:5]
    alt = data.pairs()
    options = (
        {"method": "attribution_patching", "baseline": alt}
        if paired
        else {"method": "grad_x_act", "pairs": alt}
    )
    rel = tn.attribute(
        model, tok, data, kinds="all", metric="logit_diff", batch_size=2, progress=False, **options
    )
    for site in ("layers.0.mlp.gate", "layers.1.mlp.up", "layers.0.mlp.act", "layers.1.mlp.down"):
        expected = hand_contrastive(model, tok, data, alt, site, paired)
        # Llama's RMSNorm computes in float32 even in a float64 model: agreement to ~1e-7.
        scale = float(expected.abs().max())
        torch.testing.assert_close(
            rel.sum_signed[site], expected.sum(0), rtol=1e-5, atol=1e-6 * scale
        )
        torch.testing.assert_close(
            rel.sum_abs[site], expected.abs().sum(0), rtol=1e-5, atol=1e-6 * scale
        )
    assert rel.n_tokens == 5  # one scored position an example
    assert rel.provenance["settings"]["metric"] == "logit_diff"
    assert "NLL" not in rel.provenance["relevance"] and "logit(A_1)" in rel.provenance["relevance"]


def test_exact_ablation_and_integrated_gradients_under_the_logit_difference(model, tok):
    """Exact ablation of -LD equals the logit differences measured under tn.deactivate; one-step
    integrated gradients equal patching (both with the paired baseline)."""
    data = ADDITION.train[:4]
    alt = data.pairs()
    site, units = "layers.1.mlp.up", [3, 17]
    rel = tn.attribute(
        model,
        tok,
        data,
        method="ablation",
        neurons={site: units},
        metric="logit_diff",
        pairs=alt,
        progress=False,
    )
    clean = logit_differences(model, tok, data, alt)
    for j in units:
        with tn.deactivate(model, tn.NeuronSet({site: [j]}, tn.layout_of(model))):
            ablated = logit_differences(model, tok, data, alt)
        # r = L(ablated) - L = -(LD_ablated - LD)
        assert float(rel.sum_signed[site][j]) == pytest.approx(
            float((clean - ablated).sum()), rel=1e-8
        )
    common = {"baseline": alt, "metric": "logit_diff", "progress": False}
    one = tn.attribute(model, tok, data, method="integrated_gradients", steps=1, **common)
    patched = tn.attribute(model, tok, data, method="attribution_patching", **common)
    for name in patched.sum_signed:  # stacked points: other float32 reductions in the norms
        scale = float(patched.sum_abs[name].max())
        torch.testing.assert_close(
            one.sum_signed[name], patched.sum_signed[name], rtol=1e-5, atol=1e-6 * scale
        )


def test_default_metric_is_nll_and_bad_contrastive_input_is_refused_before_any_pass(model, tok):
    data = ADDITION.train[:4]
    alt = data.pairs()
    default = tn.attribute(model, tok, data, progress=False)
    explicit = tn.attribute(model, tok, data, metric="nll", progress=False)
    for site in default.sum_signed:
        assert torch.equal(default.sum_signed[site], explicit.sum_signed[site])
    assert default.provenance == explicit.provenance
    assert "metric" not in default.provenance["settings"]
    calls = []
    model.get_input_embeddings().register_forward_pre_hook(lambda m, a: calls.append(1))
    longer = Split([alt[0], Example(alt[1].input + " + 1", alt[1].output), *alt[2:]], ADDITION, "z")
    same_first = Split(
        [*alt[:2], Example(alt[2].input, data[2].output + "5"), alt[3]], ADDITION, "y"
    )
    patching = {"method": "attribution_patching", "metric": "logit_diff"}
    cases = [
        ({**patching, "baseline": alt[:3]}, TaskDataError, r"addition/train\[3\] has no partner"),
        ({**patching, "baseline": longer}, TaskDataError, r"train\[1\]: the prompt is \d+ tokens"),
        ({**patching, "baseline": same_first}, TaskDataError, r"train\[2\]: the answer .* same"),
        (patching, ValueError, r"needs the minimal-pair alternatives .* baseline=task.pairs"),
        ({"metric": "logit_diff"}, ValueError, r"pairs=task.pairs\(split\), or use method='attr"),
        ({**patching, "baseline": alt, "pairs": alt}, ValueError, "pass the minimal-pair alter"),
        ({"method": "activation", "metric": "nll"}, ValueError, "metric applies to grad_x_act"),
        ({"metric": "nll", "pairs": alt}, ValueError, "metric='nll' takes none"),
        ({"metric": "logits"}, ValueError, "metric must be one of"),
        (
            {
                "method": "ablation",
                "neurons": {"layers.0.mlp.up": [1]},
                "metric": "logit_diff",
                "baseline": alt,
            },
            ValueError,
            "ablation takes baseline 'zero'",
        ),
    ]
    for options, error, message in cases:
        with pytest.raises(error, match=message) as caught:
            tn.attribute(model, tok, data, progress=False, **options)
        assert "\n" not in str(caught.value), options
    assert not calls


def test_a_logit_difference_run_neither_resumes_nor_adds_to_an_nll_one(model, tok, tmp_path):
    data = ADDITION.train[:4]
    checkpoint = tmp_path / "ckpt.safetensors"
    nll = tn.attribute(model, tok, data, checkpoint=checkpoint, progress=False)
    ld = tn.attribute(model, tok, data, metric="logit_diff", pairs=data.pairs(), progress=False)
    with pytest.raises(tn.errors.NeuronSetMismatchError, match="different losses"):
        nll + ld
    with pytest.raises(tn.errors.AttributionError, match="another run"):
        tn.attribute(
            model,
            tok,
            data,
            metric="logit_diff",
            pairs=data.pairs(),
            checkpoint=checkpoint,
            progress=False,
        )


def hand_relevance(signed: list[list[float]], absolute: list[list[float]]) -> tn.Relevance:
    """A Relevance of one site over 2 examples whose sums are given (per unit)."""
    provenance = {"model": "hand", "task": "hand", "weights": "w", "sites": 1}
    return tn.Relevance(
        {"layers.0.mlp.up": torch.tensor(absolute[0], dtype=torch.float64)},
        {"layers.0.mlp.up": torch.tensor(signed[0], dtype=torch.float64)},
        2,
        2,
        provenance,
    )


def test_signed_aggregation_ranks_supporters_first():
    # units: 0 supports strongly, 1 works against strongly, 2 supports weakly, 3 is mixed
    # (large |r| each example, opposite signs), 4 nothing.
    signed = [[4.0, -6.0, 1.0, 0.0, 0.0]]
    absolute = [[4.0, 6.0, 1.0, 8.0, 0.0]]
    rel = hand_relevance(signed, absolute)
    site = "layers.0.mlp.up"
    top = {
        agg: rel.top_k(0.4, aggregation=agg).indices[site].tolist()
        for agg in ("mean_abs", "abs_mean", "signed")
    }
    assert top == {"mean_abs": [1, 3], "abs_mean": [0, 1], "signed": [0, 2]}  # sorted indices
    assert rel.aggregation == "mean_abs"  # top_k(aggregation=) leaves the object as it was
    signed_rel = rel.with_aggregation("signed")
    assert signed_rel.scores[site].tolist() == [2.0, -3.0, 0.5, 0.0, 0.0]
    assert signed_rel.top_k(0.2).indices[site].tolist() == [0]
    assert signed_rel.top_k(0.2).meta["aggregation"] == "signed"
    assert rel.top_k(0.2, per="global", aggregation="signed").indices[site].tolist() == [0]
    with pytest.raises(ValueError, match="aggregation must be one of"):
        rel.top_k(0.2, aggregation="sign")


def test_method_agreement_under_the_logit_difference_scores_both_sides_with_it(model, tok):
    """``tn.method_agreement(metric="logit_diff", pairs=...)``: the exact column is the change of
    -LD measured under tn.deactivate, unit by unit; each method's estimate equals its own
    ``tn.attribute`` run with that metric; an NLL table differs; activation is refused."""
    data = ADDITION.train[:4]
    alt = data.pairs()
    site = "layers.1.mlp.up"
    table = tn.method_agreement(
        model,
        tok,
        data,
        site,
        methods=("grad_x_act", "attribution_patching"),
        n_units=3,
        metric="logit_diff",
        pairs=alt,
    )
    clean = logit_differences(model, tok, data, alt)
    direct = tn.attribute(
        model, tok, data, metric="logit_diff", pairs=alt, kinds=("up",), progress=False
    )
    rows = table[table.method == "grad_x_act"].set_index("unit")
    for j in rows.index:
        with tn.deactivate(model, tn.NeuronSet({site: [j]}, tn.layout_of(model))):
            ablated = logit_differences(model, tok, data, alt)
        # r = L(ablated) - L = -(LD_ablated - LD), the mean over the 4 pairs
        assert rows.loc[j, "exact_signed"] == pytest.approx(
            float((clean - ablated).mean()), rel=1e-8
        )
        expected = float(direct.sum_signed[site][j]) / direct.n_examples
        assert rows.loc[j, "signed"] == pytest.approx(expected, rel=1e-9)
    nll = tn.method_agreement(model, tok, data, site, methods=("grad_x_act",), n_units=3)
    assert not torch.allclose(
        torch.tensor(nll["exact"].to_numpy()), torch.tensor(rows["exact"].to_numpy())
    )
    with pytest.raises(ValueError, match="activation method has no metric"):
        tn.method_agreement(model, tok, data, site, methods=("activation",), metric="logit_diff")
