"""Section 4 (experiments.generalization) on a tiny random Llama and four tiny tasks."""

import matplotlib
import pandas as pd
import pytest
import torch
import transformers

import taskneuron_utils as tn
from taskneuron_utils import experiments as ex, plots
from taskneuron_utils.experiments.generalization import sweep as gen
from taskneuron_utils.experiments.generalization import runs as transfer_runs
from taskneuron_utils.neurons.neuron_set import NeuronSet

from tiny_models import WORDS

matplotlib.use("Agg")


def _split(records):
    return {"train": records[:12], "dev": records[12:16], "test": records[16:20]}


def make_tasks():
    pairs = [(a, b) for a in WORDS[:5] for b in WORDS[5:9]]  # 20
    sentiment = lambda w: "positive" if WORDS.index(w) % 2 else "negative"  # noqa: E731
    tasks = {
        "sent_a": tn.Task.from_records(
            "sent_a",
            _split([{"input": f"I liked the {a}", "output": sentiment(a)} for a, _ in pairs]),
            instruction="Positive or negative?",
            category="classification",
            family="sentiment",
        ),
        "sent_b": tn.Task.from_records(
            "sent_b",
            _split([{"input": f"The {b} was here", "output": sentiment(b)} for _, b in pairs]),
            instruction="Positive or negative?",
            category="classification",
            family="sentiment",
        ),
        "swap": tn.Task.from_records(
            "swap",
            _split([{"input": f"{a} {b}", "output": f"{b} {a}"} for a, b in pairs]),
            instruction="Swap the two words.",
            family="strings",
        ),
        "upper": tn.Task.from_records(
            "upper",
            _split([{"input": a, "output": a.upper()} for a, _ in pairs]),
            instruction="Uppercase the word.",
            family="strings",
        ),
    }
    return tasks


GROUPS = (("mixed", ("sent_a", "swap"), ("sent_b", "upper")),)


def make_config(tmp_path, **changes):
    config = ex.GeneralizationConfig(
        groups=GROUPS,
        proportions=(0.25, 1.0),
        random_seeds=(0, 1, 2),
        n_attribution=4,
        examples=8,
        steps=2,
        batch_size=2,
        lrs=(1e-3,),
        full_lrs=None,
        n_dev=4,
        n_eval=2,
        pairwise_p=0.25,
        max_length=64,
        eval_batch_size=8,
        out_dir=str(tmp_path),
        progress=False,
    )
    return config.replace(**changes)


@pytest.fixture(scope="module")
def tiny(default_tok):
    config = transformers.LlamaConfig(
        vocab_size=len(default_tok),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        pad_token_id=default_tok.pad_token_id,
        eos_token_id=default_tok.eos_token_id,
        bos_token_id=default_tok.bos_token_id,
        initializer_range=0.2,
    )
    torch.manual_seed(0)
    return transformers.LlamaForCausalLM(config).eval()


@pytest.fixture(scope="module")
def tasks():
    return make_tasks()


@pytest.fixture(scope="module")
def sweep_run(tiny, default_tok, tasks, tmp_path_factory):
    """The sweep once, recording every ``finetune`` call's neurons and trainable count."""
    out = tmp_path_factory.mktemp("gen")
    config = make_config(out)
    calls = []
    original = transfer_runs.finetune

    def recording(model, tok, data, config=None, **kwargs):
        history = original(model, tok, data, config, **kwargs)
        calls.append(
            {
                "neurons": kwargs.get("neurons"),
                "method": kwargs.get("method"),
                "trainable": history.attrs["trainable_parameters"],
            }
        )
        return history

    transfer_runs.finetune = recording
    try:
        frame = ex.proportion_sweep(tiny, default_tok, tasks, config)
    finally:
        transfer_runs.finetune = original
    return frame, config, calls


def test_sweep_columns_and_rows(sweep_run):
    frame, config, calls = sweep_run
    assert list(frame.columns) == gen.SWEEP_COLUMNS
    # p < 1: task + 3 random; p = 1: full; 4 tasks each
    assert len(frame) == (4 + 1) * 4
    assert set(frame.condition) == {"task", "random", "full"}
    assert set(frame[frame.domain == "in"].task) == {"sent_a", "swap"}
    assert set(frame[frame.domain == "out"].task) == {"sent_b", "upper"}
    assert (frame.gain == frame.score - frame.score_before).all()
    assert (frame.nll_gain == frame.nll_before - frame.nll).all()
    assert len(calls) == 5  # the lr search (one lr) is the sweep's own runs, not extra ones


def _pairs(ns):
    return {(site, int(i)) for site, idx in ns.indices.items() for i in idx}


def test_overlap_is_the_jaccard_of_the_unions(sweep_run, tiny, default_tok, tasks):
    frame, config, _ = sweep_run
    detection = ex.DetectionConfig(n_attribution=4, max_length=64, seed=0, progress=False)
    rel = ex.detect(tiny, default_tok, tasks, detection)
    for p in (0.25,):
        train = _pairs(rel["sent_a"].top_k(p)) | _pairs(rel["swap"].top_k(p))
        test = _pairs(rel["sent_b"].top_k(p)) | _pairs(rel["upper"].top_k(p))
        row = frame[(frame.condition == "task") & (frame.p == p)]
        assert row.overlap.nunique() == 1
        assert row.overlap.iloc[0] == pytest.approx(len(train & test) / len(train | test))
        upper = row[row.task == "upper"].task_overlap.iloc[0]
        own = _pairs(rel["upper"].top_k(p))
        assert upper == pytest.approx(len(train & own) / len(train | own))
        assert (row.n_trained == len(train)).all()


def test_full_finetuning_trains_every_parameter(sweep_run, tiny):
    frame, _, calls = sweep_run
    full = frame[frame.condition == "full"]
    total = sum(p.numel() for p in tiny.parameters())
    assert (full.trainable_parameters == total).all()
    assert [c["method"] for c in calls].count("full") == 1
    assert (full.p == 1.0).all() and (full.seed == 0).all()


def test_random_control_has_the_same_per_site_counts(sweep_run):
    _, _, calls = sweep_run
    neuron_calls = [c["neurons"] for c in calls if c["method"] == "neurons"]
    by_size = {}
    for ns in neuron_calls:
        by_size.setdefault(len(ns), []).append(ns)
    assert len(by_size) == 1  # one proportion below 1
    for sets in by_size.values():
        assert len(sets) == 4  # task + 3 seeds
        counts = [{s: len(i) for s, i in ns.indices.items()} for ns in sets]
        assert all(c == counts[0] for c in counts)
        assert len({tuple(_pairs(ns)) for ns in sets}) == 4  # all different neurons


def test_cached_rerun_is_identical_without_training(
    sweep_run, tiny, default_tok, tasks, monkeypatch
):
    frame, config, _ = sweep_run

    def refuse(*args, **kwargs):
        raise AssertionError("trained on a cached rerun")

    monkeypatch.setattr(transfer_runs, "finetune", refuse)
    again = ex.proportion_sweep(tiny, default_tok, tasks, config)
    pd.testing.assert_frame_equal(frame, again)


def test_bad_input_errors_before_training(tiny, default_tok, tasks, tmp_path, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("trained before checking the input")

    monkeypatch.setattr(transfer_runs, "finetune", refuse)
    monkeypatch.setattr(transfer_runs, "detect", refuse)
    bad = make_config(tmp_path, groups=(("g", ("sent_a", "nope"), ("sent_b",)),))
    with pytest.raises(KeyError, match="nope"):
        ex.proportion_sweep(tiny, default_tok, tasks, bad)
    for p in (0.0, 1.5, -0.1):
        with pytest.raises(ValueError, match="proportions"):
            make_config(tmp_path, proportions=(0.1, p))
    with pytest.raises(ValueError, match="empty"):
        make_config(tmp_path, groups=())
    with pytest.raises(ValueError, match="none of them empty"):
        make_config(tmp_path, groups=(("g", ("sent_a",), ()),))


def test_pairwise_similarity_and_correlations(tiny, default_tok, tasks, sweep_run):
    _, config, _ = sweep_run
    pair = ex.pairwise_transfer(tiny, default_tok, tasks, config)
    assert len(pair) == 4 * 3
    assert set(pair.columns) >= {"source", "task", "same_family", "overlap", "gain", "nll_gain"}
    assert pair.set_index(["source", "task"]).loc[("sent_a", "sent_b"), "same_family"]
    # Specific sets' overlap beside it: the same cached runs, the same gains.
    specific = ex.pairwise_transfer(tiny, default_tok, tasks, config, selections=("contrastive",))
    assert specific[pair.columns].equals(pair)
    assert specific.overlap_contrastive.between(0, 1).all()
    assert (specific.overlap_contrastive != pair.overlap).any()
    sim = ex.similarity_vs_gain(tiny, default_tok, tasks, config)
    assert set(sim.source) == {"sent_a", "swap"} and set(sim.task) == {"sent_b", "upper"}
    assert set(sim.layer) == {0, 1}
    assert sim.similarity_update.between(-1, 1).all()
    layers = ex.layer_correlations(sim)
    assert set(layers.vectorisation) == {"weights", "update"} and len(layers) == 4
    by_family = ex.correlations(pair, "overlap", "nll_gain", by="same_family")
    assert set(by_family.same_family) == {True, False}
    assert {"pearson", "spearman_low", "n"} <= set(by_family.columns)


def test_plots_and_explorer(sweep_run):
    frame, _, _ = sweep_run
    assert isinstance(plots.plot_overlap_gain(frame, y="nll_gain"), matplotlib.axes.Axes)
    assert isinstance(plots.plot_gain_vs_p(frame), matplotlib.axes.Axes)
    corr = ex.sweep_correlations(frame, y="nll_gain")
    assert set(corr.subset) == {"task+random", "task+random+full", "task", "random"}
    sim = pd.DataFrame(
        {
            "layer": [0, 0, 1, 1],
            "task": ["a", "b", "a", "b"],
            "similarity_update": [0.1, 0.2, 0.3, 0.4],
            "gain": [0.0, 0.1, 0.0, 0.1],
            "similarity_weights": [0.5, 0.6, 0.4, 0.9],
        }
    )
    assert isinstance(plots.plot_similarity_heatmap(sim), matplotlib.axes.Axes)
    sim = pd.concat([sim.assign(source=s, gain=sim.gain * i) for i, s in enumerate("xyz")])
    ax = plots.plot_layer_correlation(ex.layer_correlations(sim))
    assert isinstance(ax, matplotlib.axes.Axes)
    from taskneuron_utils.ui.widgets import generalization_explorer

    panel = generalization_explorer(frame)
    assert set(panel.frame.condition) == {"task", "random", "full"}
    panel.value.value = "nll_gain"
    assert set(panel.frame.p) == {0.25, 1.0}


def test_profiles_carry_a_generalization_config():
    from taskneuron_utils.experiments.profiles import PAPER_TASKS

    quick, paper = ex.PROFILES["quick"], ex.PROFILES["paper"]
    assert quick.generalization.groups == ex.GROUPS
    assert quick.generalization.proportions == (0.1, 0.3, 0.5, 0.7, 1.0)
    assert len(quick.generalization.random_seeds) >= 3
    assert set(paper.generalization.group_tasks()) == set(PAPER_TASKS)
    assert paper.generalization.max_length == 512


def test_resumed_relevance_keeps_the_model_site_order(tiny, default_tok, tasks, tmp_path):
    """A relevance read back from its checkpoint lists sites in model order, so random sets
    drawn from its top-k are the same as from a fresh run (the sweep's cache keys rely on it)."""
    path = tmp_path / "rel.checkpoint.safetensors"
    runs = [
        tn.attribute(
            tiny, default_tok, tasks["sent_a"].train, checkpoint=path, max_length=64, progress=False
        )
        for _ in range(2)
    ]
    order = [site.name for site in tn.ffn_sites(tiny)]
    assert list(runs[0].scores) == list(runs[1].scores) == order
    drawn = [NeuronSet.random_like(r.top_k(0.25), seed=0) for r in runs]
    assert drawn[0] == drawn[1]
