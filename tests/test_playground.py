"""The neuron playground, without a browser, on a tiny random Llama: the plain functions give the
three conditions their meaning, and moving a control changes what the panel shows."""

import math

import matplotlib
import numpy as np
import pytest
import torch
from matplotlib.axes import Axes

import taskneuron_utils as tn
from taskneuron_utils.ui import conditions
from taskneuron_utils.ui import playground
from taskneuron_utils.ui.playground import (
    RelevanceCache,
    compare_conditions,
    condition_scores,
    condition_sets,
    layer_counts,
    neuron_playground,
    plot_condition_scores,
    plot_conditions,
    plot_layer_counts,
)

matplotlib.use("Agg")


@pytest.fixture(scope="module")
def sentiment():
    return tn.load_tasks(["product_sentiment"])["product_sentiment"]


@pytest.fixture
def relevance(tiny_llama, default_tok, sentiment):
    return tn.attribute(tiny_llama, default_tok, sentiment.train[:4], progress=False)


def bar_widths(ax) -> list[float]:
    return [patch.get_width() for patch in ax.patches]


def test_is_exported():
    assert tn.ui.playground.neuron_playground is neuron_playground


def test_condition_sets(relevance):
    sets = condition_sets(relevance, 0.25, seed=3)
    assert list(sets) == list(playground.CONDITIONS)
    task, rnd = sets["task off"], sets["random off"]
    assert len(sets["all on"]) == 0
    assert task == relevance.top_k(0.25)
    assert rnd == tn.NeuronSet.random_like(task, seed=3)
    assert all(len(rnd.indices[s]) == len(task.indices[s]) for s in task.sizes)
    assert rnd != task
    glob = condition_sets(relevance, 0.25, per="global")["task off"]
    assert glob == relevance.top_k(0.25, per="global")
    for k in (0, 0.001):  # nothing, or a k that rounds to no neuron in any site
        assert all(len(ns) == 0 for ns in condition_sets(relevance, k).values())
    with pytest.raises(ValueError, match="fraction"):
        condition_sets(relevance, 10)


def test_relevance_cache_attributes_each_task_once(
    tiny_llama, default_tok, sentiment, toy_task, monkeypatch
):
    calls = []
    real = conditions.attribute

    def counting(model, tok, data, **kwargs):
        calls.append((data.task.name, len(data)))
        return real(model, tok, data, **kwargs)

    monkeypatch.setattr(conditions, "attribute", counting)
    cache = RelevanceCache(tiny_llama, default_tok, n_examples=3)
    first = cache(sentiment)
    assert cache(sentiment) is first
    cache(toy_task)
    cache(sentiment)
    assert calls == [("product_sentiment", 3), ("swap", 3)]
    assert cache.computed == ["product_sentiment", "swap"]
    # Relevances computed elsewhere are used as they are, after a layout check.
    given = RelevanceCache(tiny_llama, default_tok, relevances={"product_sentiment": first})
    assert given(sentiment) is first and given.computed == []
    other = tn.attribute(tiny_llama, default_tok, toy_task.train[:2], progress=False)
    other.sum_abs = {s: v[:-1] for s, v in other.sum_abs.items()}  # a smaller layout
    with pytest.raises(tn.errors.NeuronSetMismatchError):
        RelevanceCache(tiny_llama, default_tok, relevances={"swap": other})


def test_classification_conditions(tiny_llama, default_tok, sentiment, relevance):
    text = "The kettle broke after two days. Never again."
    everything = condition_sets(relevance, 1.0)  # task off = random off = every neuron off
    frame = compare_conditions(
        tiny_llama, default_tok, sentiment, text, everything, expected="Negative"
    )
    assert list(frame["condition"]) == ["all on", "task off", "random off"]
    total = sum(relevance.sizes.values())
    assert list(frame["neurons_off"]) == [0, total, total]
    assert frame.attrs["expected"] == "negative" and frame.attrs["input"] == text
    probs = frame[["p(positive)", "p(negative)"]].to_numpy()
    np.testing.assert_allclose(probs.sum(1), 1.0, rtol=1e-6)
    np.testing.assert_allclose(frame["p_expected"], frame["p(negative)"])
    on, off = frame["p_expected"].iloc[0], frame["p_expected"].iloc[1]
    assert abs(on - off) > 1e-4  # switching every neuron off changes the answer probability
    assert frame["p_expected"].iloc[2] == pytest.approx(off)
    assert all(p in sentiment.labels for p in frame["prediction"])
    # "all on" is the unchanged model: the same prediction and probabilities as tn.evaluate's.
    scores = tn.scoring.evaluation.option_log_likelihoods(
        tiny_llama, default_tok, tn.Split([tn.Example(text, "negative")], sentiment)
    )
    expected = torch.softmax(scores["log_likelihoods"][0], 0)
    np.testing.assert_allclose(probs[0], expected.numpy(), rtol=1e-6)

    # A k that selects no neuron: all three conditions are the unchanged model.
    nothing = compare_conditions(
        tiny_llama,
        default_tok,
        sentiment,
        text,
        condition_sets(relevance, 0.0),
        expected="negative",
    )
    assert list(nothing["neurons_off"]) == [0, 0, 0]
    assert nothing["p_expected"].nunique() == 1 and nothing["answer"].nunique() == 1
    assert nothing["p_expected"].iloc[0] == pytest.approx(on, rel=1e-6)
    assert nothing["answer"].iloc[0] == frame["answer"].iloc[0]

    # No expected answer (or one that is not a label): no probability to show, answers still.
    loose = compare_conditions(
        tiny_llama, default_tok, sentiment, text, condition_sets(relevance, 0.0), expected="maybe"
    )
    assert loose["p_expected"].isna().all() and loose.attrs["expected"] is None
    with pytest.raises(ValueError, match="empty"):
        compare_conditions(tiny_llama, default_tok, sentiment, "  ", everything)


def test_generation_probability_matches_evaluate(tiny_llama, default_tok, toy_task):
    example = toy_task.test[0]
    relevance = tn.attribute(tiny_llama, default_tok, toy_task.train[:4], progress=False)
    sets = condition_sets(relevance, 0.5)
    frame = compare_conditions(
        tiny_llama,
        default_tok,
        toy_task,
        example.input,
        sets,
        expected=example.output,
        max_new_tokens=5,
    )
    assert frame.attrs["measure"] == "P(answer)" and "prediction" not in frame
    # P(answer) = exp(-NLL per token x answer tokens), NLL as tn.evaluate reports it.
    n_tokens = len(tn.tasks.answer_ids(default_tok, example.output))
    split = toy_task.test[:1]
    for row, neurons in zip(frame.itertuples(), sets.values()):
        with tn.deactivate(tiny_llama, neurons):
            nll = tn.evaluate(tiny_llama, default_tok, split, progress=False, max_new_tokens=5)[
                "nll"
            ]
        assert math.log(row.p_expected) == pytest.approx(-nll * n_tokens, rel=1e-5)
    # (log: a random model gives a whole answer a tiny probability)
    on, off = np.log(frame["p_expected"].iloc[:2])
    assert abs(on - off) > 1e-3


def test_condition_scores_and_figures(tiny_llama, default_tok, sentiment, relevance):
    sets = condition_sets(relevance, 1.0)
    scores = condition_scores(tiny_llama, default_tok, sentiment.test[:6], sets, batch_size=3)
    assert list(scores["condition"]) == list(sets)
    for row, neurons in zip(scores.itertuples(), sets.values()):
        with tn.deactivate(tiny_llama, neurons):
            result = tn.evaluate(tiny_llama, default_tok, sentiment.test[:6], progress=False)
        assert (row.score, row.nll, row.n) == pytest.approx((result["score"], result["nll"], 6))
    ax = plot_condition_scores(scores)
    assert isinstance(ax, Axes)
    assert [p.get_height() for p in ax.patches] == pytest.approx(list(scores["score"]))
    assert [t.get_text() for t in ax.get_xticklabels()] == list(sets)

    frame = compare_conditions(
        tiny_llama,
        default_tok,
        sentiment,
        "Great value.",
        sets,
        expected="positive",
        max_new_tokens=3,
    )
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2)
    assert plot_conditions(frame, ax=axes[0]) is axes[0]
    assert bar_widths(axes[0]) == pytest.approx(list(frame["p_expected"]))
    assert "positive" in axes[0].get_xlabel()

    counts = layer_counts(relevance.top_k(0.25, per="global"), layers=(1, 1))
    assert set(counts["layer"]) == {1} and set(counts["kind"]) == {"gate", "up", "down"}
    assert plot_layer_counts(counts, ax=axes[1]) is axes[1]
    assert sum(p.get_height() for p in axes[1].patches) == counts["selected"].sum()
    plt.close(fig)


def test_widget_callbacks_change_what_it_shows(
    tiny_llama, default_tok, sentiment, toy_task, monkeypatch
):
    calls = []
    real = conditions.attribute
    monkeypatch.setattr(
        conditions, "attribute", lambda *a, **kw: calls.append(a[2].task.name) or real(*a, **kw)
    )
    panel = neuron_playground(
        tiny_llama, default_tok, [sentiment, toy_task], k=0.1, n_examples=4, max_new_tokens=3
    )
    assert calls == ["product_sentiment"]
    relevance = panel.cache["product_sentiment"]
    first_test = sentiment.test[0]
    assert panel.text.value == first_test.input and panel.expected.value == first_test.output
    assert panel.frame.attrs["input"] == first_test.input
    n_off = len(relevance.top_k(0.1))
    assert list(panel.frame["neurons_off"]) == [0, n_off, n_off]
    assert "tn-answers" in panel.table._dom_classes
    table, figure, layer_figure = panel.table.value, panel.figure, panel.layer_figure
    assert f"{n_off:,}" in panel.status.value

    # k: new sets, new answers table and figures; no new attribution.
    assert panel.k.max == 0.5
    panel.k.value = 0.5
    half = len(relevance.top_k(0.5))
    assert list(panel.frame["neurons_off"]) == [0, half, half]
    assert panel.table.value != table and panel.figure is not figure
    assert panel.layer_figure is not layer_figure
    assert panel.frame["p_expected"].iloc[1] != pytest.approx(panel.frame["p_expected"].iloc[0])
    assert bar_widths(panel.figure.axes[0]) == pytest.approx(list(panel.frame["p_expected"]))
    assert panel.layer_frame["selected"].sum() == half

    # k = 0: every condition is the unchanged model.
    panel.k.value = 0.0
    assert list(panel.frame["neurons_off"]) == [0, 0, 0]
    assert panel.frame["p_expected"].nunique() == 1 and panel.frame["answer"].nunique() == 1
    on = panel.frame["p_expected"].iloc[0]

    # Typing another input recomputes the answers only.
    panel.k.value = 0.5
    before = panel.table.value
    panel.text.value = "Terrible. It broke on the first day."
    assert panel.frame.attrs["input"] == "Terrible. It broke on the first day."
    assert panel.table.value != before and "Terrible" not in before
    panel.expected.value = "Positive"
    assert panel.frame.attrs["expected"] == "positive"
    np.testing.assert_allclose(panel.frame["p_expected"], panel.frame["p(positive)"])

    # The layer range only changes the layer figure.
    panel.per.value = "global"
    assert panel.sets["task off"] == relevance.top_k(0.5, per="global")
    answers = panel.frame
    panel.layers.value = (1, 1)
    assert set(panel.layer_frame["layer"]) == {1} and panel.frame is answers
    assert panel.layer_frame["selected"].sum() == sum(
        len(idx)
        for site, idx in panel.sets["task off"].indices.items()
        if site.startswith("layers.1.")
    )
    assert "layers 1-1" in panel.layer_figure.axes[0].get_title()

    # Another task: attributed once, its first test example becomes the input.
    panel.task.value = "swap"
    assert calls == ["product_sentiment", "swap"]
    assert panel.text.value == toy_task.test[0].input
    assert panel.frame.attrs["task"] == "swap" and panel.frame.attrs["measure"] == "P(answer)"
    panel.task.value = "product_sentiment"
    assert calls == ["product_sentiment", "swap"]
    assert panel.frame.attrs["input"] == first_test.input
    assert on == pytest.approx(
        compare_conditions(
            tiny_llama,
            default_tok,
            sentiment,
            first_test.input,
            condition_sets(relevance, 0.0),
            expected=first_test.output,
        )["p_expected"].iloc[0]
    )

    # An empty input is reported, not raised.
    shown = panel.frame
    panel.text.value = ""
    assert "empty" in panel.status.value and panel.frame is shown


def test_playground_checks_its_arguments(tiny_llama, default_tok, sentiment):
    with pytest.raises(ValueError, match="at least one task"):
        neuron_playground(tiny_llama, default_tok, {})
    with pytest.raises(ValueError, match="not among"):
        neuron_playground(tiny_llama, default_tok, sentiment, task="addition")
