"""nnsight (the ``nnsight`` package, optional): a LanguageModel around a tiny random Llama is
accepted where the transformers model is, with the same sites, the same deactivation effect
inside nnsight's own trace, the same trace values and the same NLL."""

import pytest
import torch

import taskneuron_utils as tn

nnsight = pytest.importorskip("nnsight")


@pytest.fixture
def wrapped(tiny_llama, default_tok):
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # LanguageModel's deprecation notice in nnsight 0.8
        return nnsight.LanguageModel(tiny_llama, tokenizer=default_tok)


def test_same_sites_and_fingerprint(tiny_llama, wrapped):
    assert dict(tn.layout_of(wrapped, "all")) == dict(tn.layout_of(tiny_llama, "all"))
    assert tn.core.weight_fingerprint(wrapped) == tn.core.weight_fingerprint(tiny_llama)
    neurons = tn.NeuronSet.empty(tiny_llama)
    neurons.check_fits(wrapped)


def test_deactivation_acts_inside_nnsight_trace(tiny_llama, wrapped, default_tok):
    ids = torch.tensor([default_tok("The cat sat on the mat").input_ids])
    empty = tn.NeuronSet.empty(tiny_llama, kinds="act")
    neurons = tn.NeuronSet({"layers.0.mlp.act": torch.arange(0, 64, 2)}, empty.sizes)
    with torch.no_grad():
        intact = tiny_llama(ids).logits
        with tn.deactivate(tiny_llama, neurons):
            expected = tiny_llama(ids).logits
        with tn.deactivate(wrapped, neurons):
            with wrapped.trace(ids):
                logits = wrapped.output.logits.save()
    torch.testing.assert_close(logits, expected, rtol=0, atol=0)
    assert (logits - intact).abs().max() > 1e-3  # the set changes the output


def test_trace_and_evaluate_through_the_wrapper(tiny_llama, wrapped, default_tok, toy_task):
    ids = torch.tensor([default_tok("two words").input_ids])
    with torch.no_grad(), tn.trace(wrapped, ["layers.1.mlp.act"]) as tr:
        with wrapped.trace(ids):
            pass
    with torch.no_grad(), tn.trace(tiny_llama, ["layers.1.mlp.act"]) as ref:
        tiny_llama(ids)
    torch.testing.assert_close(tr["layers.1.mlp.act"].output, ref["layers.1.mlp.act"].output)
    ours = tn.evaluate(wrapped, default_tok, toy_task.test, progress=False)
    plain = tn.evaluate(tiny_llama, default_tok, toy_task.test, progress=False)
    assert ours["nll"] == pytest.approx(plain["nll"], rel=1e-6)


def test_same_relevance_and_neuron_only_finetuning(tiny_llama, default_tok, toy_task):
    import copy
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        wrapped = nnsight.LanguageModel(copy.deepcopy(tiny_llama), tokenizer=default_tok)
    plain = tn.attribute(tiny_llama, default_tok, toy_task.train, progress=False)
    ours = tn.attribute(wrapped, default_tok, toy_task.train, progress=False)
    assert all(torch.equal(ours.sum_abs[site], plain.sum_abs[site]) for site in plain.sum_abs)
    neurons = tn.NeuronSet(
        {"layers.1.mlp.up": torch.arange(0, 64, 4)}, tn.NeuronSet.empty(tiny_llama).sizes
    )
    options = dict(neurons=neurons, steps=2, lr=1e-3, batch_size=8, progress=False)
    tn.finetune(tiny_llama, default_tok, toy_task.train, **options)
    tn.finetune(wrapped, default_tok, toy_task.train, **options)
    assert tn.core.weight_fingerprint(wrapped) == tn.core.weight_fingerprint(tiny_llama)
    assert tn.core.weight_fingerprint(wrapped) != ours.provenance["weights"]  # it did train
