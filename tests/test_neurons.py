"""NeuronSet: selection, random baselines, set algebra, files."""

import pytest
import torch

import taskneuron_utils as tn
from taskneuron_utils.attribution.run import Relevance
from taskneuron_utils.neurons.neuron_set import NeuronSet, NeuronSetMismatchError
from taskneuron_utils.io.storage import ArtefactFileError
from tiny_models import tiny_model


def fake_relevance(model, seed=0, kinds=None):
    """Relevance with random sums in the layout of ``model`` over ``kinds`` (selection logic
    only)."""
    generator = torch.Generator().manual_seed(seed)
    sums = {
        s.name: torch.rand(s.n_neurons, generator=generator, dtype=torch.float64)
        for s in tn.ffn_sites(model, kinds)
    }
    signed = {name: v - 0.5 for name, v in sums.items()}
    provenance = {
        "model": "tiny",
        "weights": "w",
        "data_hash": "d",
        "task": "toy",
        "sites": len(sums),
    }
    return Relevance(sums, signed, n_examples=4, n_tokens=10, provenance=provenance)


@pytest.fixture(scope="module")
def llama():
    return tiny_model("llama")


def test_top_k_per_site_keeps_the_highest_fraction(llama):
    rel = fake_relevance(llama)
    ns = rel.top_k(0.10)
    for site, scores in rel.scores.items():
        chosen = ns.indices[site]
        assert len(chosen) == round(0.10 * len(scores))
        rest = torch.ones(len(scores), dtype=torch.bool)
        rest[chosen] = False
        assert scores[chosen].min() >= scores[rest].max()
    assert len(ns) == sum(round(0.1 * n) for n in ns.sizes.values())


def test_top_k_global_keeps_the_highest_overall(llama):
    rel = fake_relevance(llama)
    ns = rel.top_k(0.25, per="global")
    flat = torch.cat(list(rel.scores.values()))
    assert len(ns) == round(0.25 * len(flat))
    threshold = torch.sort(flat, descending=True).values[len(ns) - 1]
    for site, scores in rel.scores.items():
        assert torch.equal(ns.indices[site], (scores >= threshold).nonzero().flatten())


def test_top_k_rejects_percentages(llama):
    with pytest.raises(ValueError, match="top 10% use k=0.1"):
        fake_relevance(llama).top_k(10)


def test_abs_mean_aggregation_uses_signed_sums(llama):
    rel = fake_relevance(llama).with_aggregation("abs_mean")
    site = next(iter(rel.sum_signed))
    assert torch.allclose(rel.scores[site], (rel.sum_signed[site] / 4).abs().float())


def test_random_like_matches_counts_and_is_reproducible(llama):
    ns = fake_relevance(llama).top_k(0.2)
    a, b, c = (NeuronSet.random_like(ns, seed) for seed in (1, 1, 2))
    assert a == b and a != c
    assert {s: len(i) for s, i in a.indices.items()} == {s: len(i) for s, i in ns.indices.items()}
    excluded = NeuronSet.random_like(ns, 3, exclude=ns)
    assert len(excluded & ns) == 0 and len(excluded) == len(ns)


def test_set_algebra_and_jaccard_match_python_sets(llama):
    a = fake_relevance(llama, 0).top_k(0.3)
    b = fake_relevance(llama, 1).top_k(0.3)
    as_set = lambda ns: {(s, int(i)) for s, idx in ns.indices.items() for i in idx}
    assert as_set(a | b) == as_set(a) | as_set(b)
    assert as_set(a & b) == as_set(a) & as_set(b)
    assert as_set(a - b) == as_set(a) - as_set(b)
    assert a.jaccard(b) == pytest.approx(len(as_set(a) & as_set(b)) / len(as_set(a) | as_set(b)))
    assert a.jaccard(a) == 1.0
    site, index = next(iter(as_set(a)))
    assert (site, index) in a


def test_counts_and_frames(llama):
    ns = fake_relevance(llama).top_k(0.5)
    counts = ns.counts()
    assert list(counts.columns) == ["site", "layer", "kind", "selected", "neurons", "fraction"]
    assert counts["selected"].sum() == len(ns)
    assert ns.per_layer()["selected"].sum() == len(ns)
    frame = ns.to_frame()
    assert len(frame) == len(ns) and set(frame["kind"]) == {"gate", "up", "down"}


def test_save_load_round_trip_is_exact(llama, tmp_path):
    ns = fake_relevance(llama).top_k(0.1)
    ns.save(tmp_path / "ns.safetensors")
    loaded = NeuronSet.load(tmp_path / "ns.safetensors", model=llama)
    assert loaded == ns and loaded.meta == ns.meta and loaded.sizes == ns.sizes


def test_relevance_save_load_round_trip_is_exact(llama, tmp_path):
    rel = fake_relevance(llama)
    rel.save(tmp_path / "rel.safetensors")
    loaded = Relevance.load(tmp_path / "rel.safetensors", model=llama)
    for site in rel.sum_abs:
        assert torch.equal(loaded.sum_abs[site], rel.sum_abs[site])
        assert torch.equal(loaded.sum_signed[site], rel.sum_signed[site])
    assert (loaded.n_examples, loaded.n_tokens, loaded.provenance) == (4, 10, rel.provenance)


def test_loading_into_another_model_names_the_mismatch(llama, tmp_path):
    ns = fake_relevance(llama).top_k(0.1)
    ns.save(tmp_path / "ns.safetensors")
    with pytest.raises(NeuronSetMismatchError, match=r"layers\.0\.mlp\.(gate|up|down)|sites only"):
        NeuronSet.load(tmp_path / "ns.safetensors", model=tiny_model("gpt2"))
    other = tiny_model("qwen2")
    assert NeuronSet.load(tmp_path / "ns.safetensors", model=other) == ns  # same layout loads


def test_loading_with_another_width_names_the_site(llama, tmp_path):
    ns = fake_relevance(llama).top_k(0.1)
    sizes = dict(ns.sizes)
    sizes["layers.1.mlp.up"] = 80
    other = NeuronSet({}, sizes)
    with pytest.raises(NeuronSetMismatchError, match=r"site layers\.1\.mlp\.up has 80 neurons"):
        other.check_fits(llama)


def test_corrupt_and_wrong_kind_files_are_refused(llama, tmp_path):
    ns = fake_relevance(llama).top_k(0.1)
    path = ns.save(tmp_path / "ns.safetensors")
    data = path.read_bytes()
    (tmp_path / "cut.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(ArtefactFileError, match="not a readable NeuronSet file"):
        NeuronSet.load(tmp_path / "cut.safetensors")
    fake_relevance(llama).save(tmp_path / "rel.safetensors")
    with pytest.raises(ArtefactFileError, match="holds a 'Relevance' artefact"):
        NeuronSet.load(tmp_path / "rel.safetensors")
    with pytest.raises(ArtefactFileError, match="does not exist"):
        NeuronSet.load(tmp_path / "missing.safetensors")


def test_out_of_range_index_is_refused(llama):
    from taskneuron_utils.neurons.neuron_set import layout_of

    with pytest.raises(IndexError, match="layers.0.mlp.down has neurons 0..31"):
        NeuronSet({"layers.0.mlp.down": [32]}, layout_of(llama))


def test_saved_files_get_the_mode_of_any_other_new_file(llama, tmp_path):
    # The atomic writer goes through a private temporary file; the result must not stay private.
    ns = fake_relevance(llama).top_k(0.1)
    path = ns.save(tmp_path / "ns.safetensors")
    plain = tmp_path / "plain.txt"
    plain.write_text("x")
    assert path.stat().st_mode & 0o777 == plain.stat().st_mode & 0o777


def test_act_sets_work_with_the_rest_of_the_api(llama, tmp_path):
    """A relevance and neuron sets over act sites only: selection, baselines, overlap, files,
    and layout checks against the model's act layout."""
    rel = fake_relevance(llama, kinds="act")
    ns = rel.top_k(0.1)
    assert list(ns.sizes) == ["layers.0.mlp.act", "layers.1.mlp.act"]
    assert len(ns) == 2 * round(0.1 * 64)
    assert set(ns.counts()["kind"]) == {"act"}
    baseline = NeuronSet.random_like(ns, seed=1)
    assert baseline.sizes == ns.sizes and 0 <= ns.jaccard(baseline) < 1
    assert ns.jaccard(rel.top_k(0.1, per="global")) > 0
    assert NeuronSet.empty(llama, kinds="act").sizes == ns.sizes
    ns.check_fits(llama)
    ns.save(tmp_path / "act.safetensors")
    assert NeuronSet.load(tmp_path / "act.safetensors", model=llama) == ns
    rel.save(tmp_path / "act_rel.safetensors")
    loaded = Relevance.load(tmp_path / "act_rel.safetensors", model=llama)
    assert loaded.top_k(0.1) == ns
    # Not a set of the linear sites, and not of another model's act sites.
    with pytest.raises(NeuronSetMismatchError, match="different model layouts"):
        ns.jaccard(fake_relevance(llama).top_k(0.1))
    with pytest.raises(
        NeuronSetMismatchError,
        match=r"site layers\.0\.mlp\.act has 64 neurons "
        r"in the neuron set but 128 in the model",
    ):
        ns.check_fits(tiny_model("gpt2"))
    with pytest.raises(NeuronSetMismatchError, match="computed on different sites"):
        rel + fake_relevance(llama, kinds="gate")


def test_sets_over_several_kinds_fit_the_layout_of_those_kinds(llama):
    rel = fake_relevance(llama, kinds="all")
    ns = rel.top_k(0.2)
    assert [name.split(".")[-1] for name in ns.sizes][:4] == ["gate", "up", "act", "down"]
    ns.check_fits(llama)
    partial = NeuronSet({}, {name: n for name, n in ns.sizes.items() if name != "layers.1.mlp.act"})
    with pytest.raises(
        NeuronSetMismatchError,
        match=r"sites only in the model \(first: "
        r"layers\.1\.mlp\.act\)",
    ):
        partial.check_fits(llama)
