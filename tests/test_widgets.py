"""The notebook explorers recompute with the package's own functions when a control moves, and
the figure they show is drawn from that recomputed frame."""

import matplotlib
import numpy as np
import pandas as pd
import pytest
from matplotlib.collections import QuadMesh

import taskneuron_utils as tn
from taskneuron_utils import experiments
from taskneuron_utils.ui import widgets
from taskneuron_utils.neurons.analysis import overlap_matrix

from tiny_models import tiny_model

matplotlib.use("Agg")


def heatmap_values(fig) -> np.ndarray:
    """The matrix coloured by the figure's (single) heatmap, rows top to bottom."""
    ax = fig.axes[0]
    (mesh,) = [c for c in ax.collections if isinstance(c, QuadMesh)]
    values = np.ma.filled(mesh.get_array().astype(float), np.nan)
    return values.reshape(len(ax.get_yticklabels()), len(ax.get_xticklabels()))


@pytest.fixture(scope="module")
def relevances(default_tok):
    model = tiny_model("llama", seed=0, vocab_size=len(default_tok))
    suite = tn.load_tasks(["product_sentiment", "news_topic", "addition"])
    config = experiments.DetectionConfig(
        n_attribution=4, batch_size=4, max_length=128, progress=False
    )
    return experiments.detect(model, default_tok, suite, config)


def test_overlap_explorer_follows_its_controls(relevances):
    panel = widgets.overlap_explorer(relevances, k=0.10)
    expected = overlap_matrix({n: r.top_k(0.10) for n, r in relevances.items()})
    pd.testing.assert_frame_equal(panel.frame, expected)
    np.testing.assert_allclose(heatmap_values(panel.figure), expected.to_numpy())
    title = panel.figure.axes[0].get_title().replace("\n", " ")
    assert title.startswith("Jaccard overlap, top 10.0% per site")
    assert f"random sets of the same size: {0.10 / 1.90:.3f}" in title
    first = panel.figure

    panel.k.value = 0.02
    k = panel.k.value
    expected = overlap_matrix({n: r.top_k(k) for n, r in relevances.items()})
    pd.testing.assert_frame_equal(panel.frame, expected)
    assert panel.figure is not first  # redrawn
    np.testing.assert_allclose(heatmap_values(panel.figure), expected.to_numpy())
    assert f"top {100 * k:.1f}% per site" in panel.figure.axes[0].get_title().replace("\n", " ")

    panel.per.value = "global"
    expected = overlap_matrix({n: r.top_k(k, per="global") for n, r in relevances.items()})
    pd.testing.assert_frame_equal(panel.frame, expected)
    np.testing.assert_allclose(heatmap_values(panel.figure), expected.to_numpy())
    assert "per global" in panel.figure.axes[0].get_title().replace("\n", " ")
    assert list(panel.frame.index) == list(relevances)
    labels = [t.get_text() for t in panel.figure.axes[0].get_yticklabels()]
    assert labels == list(relevances)


def test_overlap_explorer_needs_two_tasks(relevances):
    one = dict(list(relevances.items())[:1])
    with pytest.raises(ValueError, match="at least two"):
        widgets.overlap_explorer(one)


def test_deactivation_explorer_switches_model_and_measure():
    # NLL with nothing off: 0.1; deltas (own, random, other) = (1.9, 0.4, 0.9) x factor.
    rows = [
        {
            "model": m,
            "task": t,
            "category": "classification",
            "metric": "accuracy",
            "condition": c,
            "deactivated": d,
            "seed": -1,
            "n_neurons": 1,
            "score": 0.9 - factor * drop,
            "nll": 0.1 + factor * rise,
            "n": 4,
        }
        for m, factor in (("multitask", 1.0), ("untuned", 2.0))
        for t, other in (("a", "b"), ("b", "a"))
        for c, d, drop, rise in (
            ("none", "none", 0.0, 0.0),
            ("own", t, 0.4, 1.9),
            ("random", "random", 0.1, 0.4),
            (f"other:{other}", other, 0.2, 0.9),
        )
    ]
    df = pd.DataFrame(rows)
    panel = widgets.deactivation_explorer(df)
    assert set(panel.frame["model"]) == {"multitask"}
    ax = panel.figure.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["a", "b", "random"]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["a", "b"]
    np.testing.assert_allclose(heatmap_values(panel.figure), [[1.9, 0.9], [0.9, 1.9], [0.4, 0.4]])
    assert ax.get_title().replace("\n", " ") == "Deactivation on the multitask model"

    panel.model.value = "untuned"
    assert set(panel.frame["model"]) == {"untuned"}
    assert len(panel.frame) == 8
    np.testing.assert_allclose(heatmap_values(panel.figure), [[3.8, 1.8], [1.8, 3.8], [0.8, 0.8]])
    assert (
        panel.figure.axes[0].get_title().replace("\n", " ") == "Deactivation on the untuned model"
    )

    panel.value.value = "score"  # metric change, in points
    np.testing.assert_allclose(heatmap_values(panel.figure), [[-80, -40], [-40, -80], [-20, -20]])


def test_continual_explorer_switches_method_and_view():
    def run(method, A):
        scores = pd.DataFrame(A, index=["a", "b"], columns=["a", "b"])
        return experiments.ContinualResult(method, ["a", "b"], scores, scores)

    runs = {
        "seqft": run("seqft", [[0.9, 0.2], [0.3, 0.8]]),
        "ncft": run("ncft", [[0.7, 0.1], [0.6, 0.75]]),
    }
    panel = widgets.continual_explorer(runs)
    assert panel.frame is runs["seqft"].scores
    np.testing.assert_allclose(heatmap_values(panel.figure), [[90, 20], [30, 80]])
    assert panel.figure.axes[0].get_title().replace("\n", " ") == "seqft: matrix"

    panel.method.value = "ncft"
    assert panel.frame is runs["ncft"].scores
    np.testing.assert_allclose(heatmap_values(panel.figure), [[70, 10], [60, 75]])

    panel.view.value = "trajectories"
    ax = panel.figure.axes[0]
    assert ax.get_title().replace("\n", " ") == "ncft: trajectories"
    solid = [line for line in ax.get_lines() if line.get_linestyle() == "-"]
    np.testing.assert_allclose(solid[0].get_ydata(), [70, 60])  # task a from stage 0 on
    np.testing.assert_allclose(solid[1].get_ydata(), [75])  # task b from stage 1
