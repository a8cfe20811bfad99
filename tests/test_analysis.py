"""analysis: correlations with intervals and per-layer parameter similarity, against hand values."""

import numpy as np
import pytest
import torch

import taskneuron_utils as tn
from taskneuron_utils.neurons.analysis import correlate, neuron_vectors, parameter_similarity
from tiny_models import tiny_model


def test_correlate_matches_hand_computed_values():
    x = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
    y = x**3  # monotone, not linear
    out = correlate(x, y, n_boot=200)
    assert out["n"] == 6
    assert out["spearman"] == pytest.approx(1.0)
    assert out["pearson"] == pytest.approx(np.corrcoef(x, y)[0, 1])
    assert out["pearson"] < 1
    assert out["pearson_low"] <= out["pearson"] <= out["pearson_high"]
    # NaN pairs are dropped; a constant input has no correlation to report.
    assert correlate([1, 2, np.nan, 4], [2, 4, 5, 8])["n"] == 3
    assert np.isnan(correlate([1, 2, 3, 4], [1, 1, 1, 1])["pearson"])
    with pytest.raises(ValueError, match="paired"):
        correlate([1, 2, 3], [1, 2])


def test_bootstrap_interval_covers_the_true_correlation_at_about_the_nominal_rate():
    rng = np.random.default_rng(0)
    rho, hits, trials = 0.5, 0, 200
    cov = [[1, rho], [rho, 1]]
    for trial in range(trials):
        x, y = rng.multivariate_normal([0, 0], cov, size=60).T
        out = correlate(x, y, n_boot=1000, seed=trial)
        hits += out["pearson_low"] <= rho <= out["pearson_high"]
    assert 0.88 <= hits / trials <= 0.99


def test_parameter_similarity_by_hand():
    model = tiny_model("llama", seed=0)
    base = tiny_model("llama", seed=0)
    layout = tn.layout_of(model)
    a = tn.NeuronSet({s: [0, 1] for s in layout}, layout, {"task": "a"})
    b = tn.NeuronSet({s: [2] for s in layout}, layout, {"task": "b"})
    with torch.no_grad():  # "fine-tune": move neuron 0 of every site of layer 1
        for site in tn.ffn_sites(model):
            if site.layer == 1:
                site.write([0], site.read([0]) + 1.0)
    sim = parameter_similarity(model, {"a": a, "b": b, "a2": a}, "a", base=base)
    assert set(sim.task) == {"b", "a2"} and sorted(sim.layer.unique()) == [0, 1]
    same = sim[sim.task == "a2"]
    assert np.allclose(same.similarity_weights, 1.0, atol=1e-6)
    # Layer 0 was not changed: b's update vector is zero there, and so is its cosine.
    row = sim[(sim.task == "b") & (sim.layer == 0)].iloc[0]
    assert row.similarity_update == pytest.approx(0.0, abs=1e-6)
    # Layer 1 by hand: concatenate per-site means of the rows, then the cosine.
    sites = [s for s in tn.ffn_sites(model) if s.layer == 1]
    va = torch.cat([s.read([0, 1]).mean(0) for s in sites])
    vb = torch.cat([s.read([2]).mean(0) for s in sites])
    expected = float(torch.dot(va, vb) / (va.norm() * vb.norm()))
    row = sim[(sim.task == "b") & (sim.layer == 1)].iloc[0]
    assert row.similarity_weights == pytest.approx(expected, rel=1e-5)
    assert neuron_vectors(model, a)[1].shape == va.shape
