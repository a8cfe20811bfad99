"""The notebook explorers recompute with the package's own functions when a control moves."""

import matplotlib
import pandas as pd
import pytest

import taskneuron_utils as tn
from taskneuron_utils import experiments, widgets
from taskneuron_utils.analysis import overlap_matrix

from tiny_models import tiny_model

matplotlib.use("Agg")


@pytest.fixture(scope="module")
def relevances(default_tok):
    model = tiny_model("llama", seed=0, vocab_size=len(default_tok))
    suite = tn.load_tasks(["product_sentiment", "news_topic", "addition"])
    config = experiments.Config(n_attribution=4, batch_size=4, max_length=128, progress=False)
    return experiments.detect(model, default_tok, suite, config)


def test_overlap_explorer_follows_its_controls(relevances):
    panel = widgets.overlap_explorer(relevances, k=0.10)
    expected = overlap_matrix({n: r.top_k(0.10) for n, r in relevances.items()})
    pd.testing.assert_frame_equal(panel.frame, expected)
    panel.k.value = 0.02
    expected = overlap_matrix({n: r.top_k(panel.k.value) for n, r in relevances.items()})
    pd.testing.assert_frame_equal(panel.frame, expected)
    panel.per.value = "global"
    expected = overlap_matrix({n: r.top_k(panel.k.value, per="global") for n, r in relevances.items()})
    pd.testing.assert_frame_equal(panel.frame, expected)
    assert list(panel.frame.index) == list(relevances)


def test_overlap_explorer_needs_two_tasks(relevances):
    one = dict(list(relevances.items())[:1])
    with pytest.raises(ValueError, match="at least two"):
        widgets.overlap_explorer(one)


def test_deactivation_explorer_switches_model():
    rows = [{"model": m, "task": t, "category": "classification", "metric": "accuracy",
             "condition": c, "deactivated": d, "seed": -1, "n_neurons": 1, "score": s, "nll": v, "n": 4}
            for m, shift in (("multitask", 0.0), ("untuned", 1.0))
            for t, other in (("a", "b"), ("b", "a"))
            for c, d, s, v in (("none", "none", 0.9, 0.1 + shift), ("own", t, 0.5, 2.0 + shift),
                               ("random", "random", 0.8, 0.5 + shift),
                               (f"other:{other}", other, 0.7, 1.0 + shift))]
    df = pd.DataFrame(rows)
    panel = widgets.deactivation_explorer(df)
    assert set(panel.frame["model"]) == {"multitask"}
    panel.model.value = "untuned"
    assert set(panel.frame["model"]) == {"untuned"}
    assert len(panel.frame) == 8
