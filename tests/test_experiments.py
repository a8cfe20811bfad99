"""Experiments of the paper's Tables 1 and 2, on tiny random models and tiny task subsets."""

import dataclasses
import json

import matplotlib
import pandas as pd
import pytest
import torch

import taskneuron_utils as tn
from taskneuron_utils import experiments, plots
from taskneuron_utils.tasks import encode

from tiny_models import tiny_model

matplotlib.use("Agg")

TASKS = ("product_sentiment", "addition", "news_topic")
DETECT = experiments.DetectionConfig(n_attribution=4, batch_size=4, max_length=128, progress=False)
DEACT = experiments.DeactivationConfig(n_eval=4, random_seeds=(0, 1, 2), progress=False)
FINETUNE = experiments.FinetuningConfig(
    examples=8,
    steps=2,
    batch_size=2,
    lrs=(1e-3, 1e-2),
    n_dev=4,
    n_eval=4,
    max_length=128,
    progress=False,
)
MULTITASK = experiments.MultitaskConfig(
    tasks=TASKS[:2], examples=4, steps=2, batch_size=2, lr=1e-3, max_length=128, progress=False
)


@pytest.fixture(scope="module")
def suite():
    return tn.load_tasks(list(TASKS))


@pytest.fixture
def tiny(default_tok):
    return tiny_model("llama", seed=0, vocab_size=len(default_tok))


def expected_size(neurons):
    return sum(round(0.1 * n) for n in neurons.sizes.values())


def test_deactivation_frame(tiny, default_tok, suite):
    df = experiments.deactivation(
        tiny, default_tok, suite, DEACT, label="untuned", detection=DETECT
    )
    assert {
        "model",
        "task",
        "category",
        "metric",
        "condition",
        "deactivated",
        "seed",
        "n_neurons",
        "score",
        "nll",
        "n",
    } <= set(df.columns)
    assert set(df["model"]) == {"untuned"} and list(dict.fromkeys(df["task"])) == list(suite)
    for task in TASKS:
        part = df[df.task == task]
        others = {f"other:{o}" for o in TASKS if o != task}
        assert set(part.condition) == {"none", "own", "random"} | others
        assert sorted(part[part.condition == "random"].seed) == [0, 1, 2]
        assert (part.n == 4).all()
        assert part[part.condition == "none"].n_neurons.item() == 0
    own = df[df.condition == "own"]
    total = 2 * 3 * 64 + 2 * 32  # 2 layers x (gate, up: 64; down: 32)
    assert (own.n_neurons == sum(round(0.1 * n) for n in [64, 64, 32] * 2)).all()
    assert own.n_neurons.iloc[0] < total
    # Random and other sets have the same size as the own set (same k, per site).
    assert (df[df.condition != "none"].n_neurons == own.n_neurons.iloc[0]).all()
    assert df.score.between(0, 1).all() and (df.nll > 0).all()
    # Deactivating nothing is the plain model.
    plain = tn.evaluate(tiny, default_tok, suite["addition"].test.sample(4, seed=0), progress=False)
    assert df[(df.task == "addition") & (df.condition == "none")].nll.item() == pytest.approx(
        plain["nll"]
    )

    summary = experiments.deactivation_summary(df)
    assert set(summary.group) == {"none", "own", "random", "other"}
    assert (summary[summary.group == "random"].runs == 3).all()
    assert (summary[summary.group == "none"].d_nll == 0).all()
    table = experiments.table1(df)
    assert set(table.category) == {"classification", "generation"}
    assert {"original", "random_off", "random_off_std", "task_off", "task_off_nll"} <= set(
        table.columns
    )
    for ax in (
        plots.plot_deactivation_heatmap(df),
        plots.plot_deactivation_heatmap(df, value="score"),
        plots.plot_deactivation_bars(df),
        plots.plot_deactivation_bars(df, value="nll"),
    ):
        assert ax.has_data() or ax.collections or ax.images
        matplotlib.pyplot.close(ax.figure)


def test_exclusive_sets():
    sizes = {"layers.0.mlp.up": 6, "layers.0.mlp.down": 4}
    a = tn.NeuronSet(
        {"layers.0.mlp.up": torch.tensor([0, 1, 2]), "layers.0.mlp.down": torch.tensor([0])}, sizes
    )
    b = tn.NeuronSet(
        {"layers.0.mlp.up": torch.tensor([2, 3]), "layers.0.mlp.down": torch.tensor([0, 1])}, sizes
    )
    c = tn.NeuronSet(
        {"layers.0.mlp.up": torch.tensor([1, 5]), "layers.0.mlp.down": torch.tensor([3])}, sizes
    )
    only = experiments.exclusive_sets({"a": a, "b": b, "c": c})
    assert only["a"].indices["layers.0.mlp.up"].tolist() == [0]
    assert only["a"].indices["layers.0.mlp.down"].tolist() == []
    assert only["b"].indices["layers.0.mlp.up"].tolist() == [3]
    assert only["b"].indices["layers.0.mlp.down"].tolist() == [1]
    assert len(only["c"]) == 2
    for name, own in only.items():  # disjoint from every other task's full set
        for other, full in {"a": a, "b": b, "c": c}.items():
            if other != name:
                assert len(own & full) == 0


def test_beyond_random_rule():
    """Own vs random, checked by hand: a is beyond the spread on both measures, b on NLL only."""
    rows = []
    for task, own_score, own_nll in (("a", 0.2, 9.0), ("b", 0.5, 9.0)):
        rows.append(
            {
                "model": "m",
                "task": task,
                "category": "classification",
                "metric": "accuracy",
                "condition": "none",
                "score": 0.9,
                "nll": 0.1,
            }
        )
        rows.append(
            {
                "model": "m",
                "task": task,
                "category": "classification",
                "metric": "accuracy",
                "condition": "own",
                "score": own_score,
                "nll": own_nll,
            }
        )
        for seed, (score, nll) in enumerate(((0.6, 2.0), (0.5, 3.0), (0.4, 4.0))):
            rows.append(
                {
                    "model": "m",
                    "task": task,
                    "category": "classification",
                    "metric": "accuracy",
                    "condition": "random",
                    "seed": seed,
                    "score": score,
                    "nll": nll,
                }
            )
    df = pd.DataFrame(rows).assign(n_neurons=10)
    own = experiments.deactivation_summary(df).query("group == 'own'").set_index("task")
    # random: score 0.5 ± 0.1, nll 3.0 ± 1.0 (sample std): beyond means < 0.3 and > 5.0
    assert own.loc["a", ["score_beyond_random", "nll_beyond_random", "beyond_random"]].tolist() == [
        True,
        True,
        True,
    ]
    assert own.loc["b", ["score_beyond_random", "nll_beyond_random", "beyond_random"]].tolist() == [
        False,
        True,
        False,
    ]
    table = experiments.table1(df)
    assert table[
        ["own_beyond_random", "own_score_beyond_random", "own_nll_beyond_random"]
    ].values.tolist() == [[1, 1, 2]]


def test_deactivation_with_given_sets_and_no_others(tiny, default_tok, suite):
    tasks = {"addition": suite["addition"]}
    rel = experiments.detect(tiny, default_tok, tasks, DETECT)
    sets = experiments.neuron_sets(rel, DETECT.replace(k=0.2))
    config = DEACT.replace(random_seeds=(5, 6, 7, 8), others=False, mode="weight")
    df = experiments.deactivation(tiny, default_tok, tasks, config, sets=sets)
    assert list(df.condition) == ["none", "own"] + ["random"] * 4
    assert (
        df[df.condition == "own"].n_neurons.item()
        == len(sets["addition"])
        == sum(round(0.2 * n) for n in sets["addition"].sizes.values())
    )


def test_neuron_finetuning_frame(tiny, default_tok, suite):
    tasks = {name: suite[name] for name in ("product_sentiment", "addition")}
    before = {k: v.clone() for k, v in tiny.state_dict().items()}
    df = experiments.neuron_finetuning(tiny, default_tok, tasks, FINETUNE, detection=DETECT)
    # The starting model is copied for each run, never trained itself.
    assert all(torch.equal(before[k], v) for k, v in tiny.state_dict().items())
    assert len(df) == 2 * 4
    assert list(df[df.task == "addition"].method) == ["none", "neurons", "random", "full"]
    trained = df[df.method != "none"]
    assert trained.lr.isin([1e-3, 1e-2]).all()
    assert all(len(json.loads(s)) == 2 for s in trained.lr_search)
    assert df[df.method == "none"].lr.isna().all()
    neurons = df[df.method == "neurons"].set_index("task")
    random = df[df.method == "random"].set_index("task")
    assert (neurons.n_neurons == random.n_neurons).all()
    assert (neurons.trainable_parameters == random.trainable_parameters).all()
    full = df[df.method == "full"]
    assert (full.trainable_parameters > neurons.trainable_parameters.max()).all()
    # The chosen lr is the one with the lowest dev NLL of the search.
    for _, row in trained.iterrows():
        search = json.loads(row.lr_search)
        assert float(min(search, key=search.get)) == row.lr
    table = experiments.table2(df)
    assert {"none", "neurons", "random", "full"} <= set(table.columns)
    ax = plots.plot_finetuning(df)
    assert ax.has_data()
    matplotlib.pyplot.close(ax.figure)


def test_multitask_mixture_keeps_each_tasks_prompt(default_tok, suite):
    tasks = {name: suite[name] for name in TASKS}
    mixture = experiments.multitask_mixture(tasks, examples=5, seed=0)
    assert len(mixture) == 15 and mixture.task.instruction == ""
    first = tasks[TASKS[2]].train.sample(5, seed=0)
    mixed = [e for e in encode(default_tok, mixture)]
    own = encode(default_tok, first)
    assert mixed[10:] == own  # identical tokens: the chat template sees the same user turn


def test_multitask_cache_round_trip(tiny, default_tok, suite, tmp_path, monkeypatch):
    monkeypatch.setenv("TASKNEURON_CACHE", str(tmp_path))
    tasks = {name: suite[name] for name in MULTITASK.tasks}
    before = {k: v.clone() for k, v in tiny.state_dict().items()}
    model, tok, info = experiments.multitask_finetune(
        MULTITASK, tasks=tasks, base=(tiny, default_tok)
    )
    assert info["cached"] is False and info["steps"] == 2 and info["tasks"] == list(MULTITASK.tasks)
    assert all(torch.equal(before[k], v) for k, v in tiny.state_dict().items())  # base untouched
    assert any(not torch.equal(before[k], v) for k, v in model.state_dict().items())
    folder = tmp_path / "finetuned" / info["key"]
    provenance = json.loads((folder / "provenance.json").read_text())
    for key in (
        "base_fingerprint",
        "data_hash",
        "lr",
        "seed",
        "final_loss",
        "wall_seconds",
        "examples_per_task",
        "weight_fingerprint",
    ):
        assert key in provenance
    assert provenance["weight_fingerprint"] == tn.core.weight_fingerprint(model)
    assert [p.name for p in (tmp_path / "finetuned").iterdir()] == [info["key"]]  # no temp dirs

    again, tok2, info2 = experiments.multitask_finetune(
        MULTITASK, tasks=tasks, base=(tiny, default_tok)
    )
    assert info2["cached"] is True and info2["key"] == info["key"]
    state = again.state_dict()
    assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items())
    assert len(tok2) == len(tok)
    # Another setting is another cache entry.
    _, _, info3 = experiments.multitask_finetune(
        MULTITASK.replace(steps=1), tasks=tasks, base=(tiny, default_tok)
    )
    assert info3["cached"] is False and info3["key"] != info["key"]
    # The token budget is part of the key; the default 256 is left out so that caches written
    # before it was recorded keep their keys.
    assert info["max_length"] == 128
    _, _, info4 = experiments.multitask_finetune(
        MULTITASK.replace(max_length=256), tasks=tasks, base=(tiny, default_tok)
    )
    assert "max_length" not in info4 and info4["key"] not in (info["key"], info3["key"])


def test_profiles_bundle_one_config_per_experiment():
    quick, paper = experiments.PROFILES["quick"], experiments.PROFILES["paper"]
    assert quick.detection == experiments.DetectionConfig()
    assert quick.detection.k == paper.detection.k == 0.10
    assert quick.detection.tasks == (
        "product_sentiment",
        "film_sentiment",
        "news_topic",
        "addition",
    )
    assert (
        quick.detection.n_attribution,
        quick.detection.batch_size,
        quick.detection.max_length,
        quick.detection.per,
    ) == (128, 8, 256, "site")
    assert (
        quick.multitask.examples,
        quick.multitask.steps,
        quick.multitask.lr,
        quick.multitask.batch_size,
        len(quick.multitask.tasks),
    ) == (48, 36, 1e-4, 8, 6)
    assert (quick.deactivation.n_eval, quick.deactivation.random_seeds) == (100, (0, 1, 2))
    assert (
        quick.finetuning.examples,
        quick.finetuning.steps,
        quick.finetuning.batch_size,
        quick.finetuning.lrs,
        quick.finetuning.n_dev,
    ) == (200, 20, 8, (1e-4, 1e-3), 32)
    assert paper.detection.model == paper.multitask.model == "meta-llama/Llama-2-7b-hf"
    assert paper.detection.n_attribution is None and len(paper.detection.tasks) == 12
    assert paper.detection.max_length == paper.finetuning.max_length == 512
    # Frozen: a change is a copy.
    with pytest.raises(dataclasses.FrozenInstanceError):
        quick.detection.k = 0.2
    assert quick.detection.replace(k=0.2).k == 0.2 and quick.detection.k == 0.10
    assert quick.replace(detection=DETECT).detection is DETECT


@pytest.mark.parametrize("k", [10, 0, -0.1, 1.5])
def test_k_is_a_fraction(k):
    with pytest.raises(ValueError, match="fraction"):
        experiments.DetectionConfig(k=k)
    with pytest.raises(ValueError, match="fraction"):
        DETECT.replace(k=k)


def test_configs_refuse_unknown_choices():
    with pytest.raises(ValueError, match="per"):
        experiments.DetectionConfig(per="layer")
    with pytest.raises(ValueError, match="methods"):
        experiments.FinetuningConfig(methods=("none", "lora"))
    with pytest.raises(TypeError):
        experiments.DetectionConfig().replace(mt_steps=3)  # the old prefixed names are gone
