"""What each figure shows: bar heights, heatmap cells and line data equal the numbers of small
hand-made DataFrames (in the formats ``analysis`` and ``experiments`` return), worked out here
by hand rather than by the plotting code's own grouping."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.colors as mcolors  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.collections import QuadMesh  # noqa: E402
from matplotlib.container import BarContainer  # noqa: E402

from taskneuron_utils import plots  # noqa: E402


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


# -- helpers that read a figure back ---------------------------------------------------------


def heatmap_values(ax) -> np.ndarray:
    """The 2-D array a seaborn heatmap colours (rows top to bottom, as the table)."""
    (mesh,) = [c for c in ax.collections if isinstance(c, QuadMesh)]
    values = np.ma.filled(mesh.get_array().astype(float), np.nan)
    rows, cols = len(ax.get_yticklabels()), len(ax.get_xticklabels())
    return values.reshape(rows, cols)


def tick_labels(labels) -> list[str]:
    return [label.get_text() for label in labels]


def lines_by_legend(ax) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """{legend label: (x, y)} of the data lines, matched to the legend entries by colour."""
    legend = ax.get_legend()
    data = [line for line in ax.lines if len(line.get_ydata())]
    found = {}
    for text, handle in zip(legend.texts, legend.legend_handles):
        color = mcolors.to_rgba(handle.get_color())
        (line,) = [ln for ln in data if mcolors.to_rgba(ln.get_color()) == color]
        found[text.get_text()] = (
            np.asarray(line.get_xdata(), float),
            np.asarray(line.get_ydata(), float),
        )
    return found


def bars_by_legend(ax) -> dict[str, BarContainer]:
    """{legend label: its BarContainer}, in drawing order."""
    bars = [c for c in ax.containers if isinstance(c, BarContainer)]
    return dict(zip(tick_labels(ax.get_legend().texts), bars))


def heights(container) -> list[float]:
    return [patch.get_height() for patch in container.patches]


# -- overlap ---------------------------------------------------------------------------------


def overlap():
    names = pd.Index(["sentiment", "reviews", "math"], name="task")
    values = [[1.0, 0.54, 0.21], [0.54, 1.0, 0.18], [0.21, 0.18, 1.0]]
    return pd.DataFrame(values, index=names, columns=pd.Index(list(names), name="other"))


def test_overlap_heatmap_cells_labels_and_baseline():
    matrix = overlap()
    ax = plots.plot_overlap(matrix, baseline=0.0526)
    assert isinstance(ax, Axes)
    np.testing.assert_allclose(heatmap_values(ax), matrix.to_numpy())
    assert heatmap_values(ax)[0, 1] == pytest.approx(0.54)
    assert tick_labels(ax.get_yticklabels()) == list(matrix.index)
    assert tick_labels(ax.get_xticklabels()) == list(matrix.columns)
    assert "0.54" in [t.get_text() for t in ax.texts]  # the cell annotations
    assert ax.get_title().startswith("Overlap of task-specific neurons (Jaccard)")
    assert "random sets of the same size: 0.053" in ax.get_title()


def test_a_plot_draws_into_the_given_axes_and_returns_it():
    fig, (left, right) = plt.subplots(1, 2)
    returned = plots.plot_overlap(overlap(), ax=right, title="mine")
    assert returned is right
    assert right.get_title() == "mine" and left.get_title() == ""
    np.testing.assert_allclose(heatmap_values(right), overlap().to_numpy())


def test_a_new_figure_can_be_saved_from_the_returned_axes(tmp_path):
    ax = plots.plot_overlap(overlap())
    ax.figure.savefig(tmp_path / "a.png")
    assert (tmp_path / "a.png").stat().st_size > 1000
    assert ax.figure.axes[0] is ax


# -- layer and kind profiles -----------------------------------------------------------------


def profile():
    """``analysis.layer_profile`` rows: 2 tasks x 2 layers x 2 kinds of unequal size."""
    rows = []
    for task, base in (("sentiment", 0.0), ("math", 1.0)):
        for layer in (0, 1):
            for kind, neurons, share in (("up", 60, 0.10 + 0.1 * layer), ("down", 20, 0.30)):
                rows.append(
                    {
                        "task": task,
                        "site": f"layers.{layer}.mlp.{kind}",
                        "layer": layer,
                        "kind": kind,
                        "neurons": neurons,
                        "mean_score": base + layer + (2.0 if kind == "down" else 0.0),
                        "global_share": share + 0.01 * base,
                    }
                )
    return pd.DataFrame(rows)


def test_layer_profile_global_share_weights_kinds_by_their_neurons():
    ax = plots.plot_layer_profile(profile())
    lines = lines_by_legend(ax)
    assert set(lines) == {"sentiment", "math"}
    x, y = lines["sentiment"]
    np.testing.assert_array_equal(x, [0, 1])
    # layer 0: (60 x 0.10 + 20 x 0.30) / 80 = 0.15; layer 1: (60 x 0.20 + 20 x 0.30) / 80
    np.testing.assert_allclose(y, [0.15, 0.225])
    np.testing.assert_allclose(lines["math"][1], [0.16, 0.235])
    assert ax.get_xlabel() == "layer"
    assert ax.get_ylabel() == "share of the layer's neurons in the global top-k"
    assert ax.get_title() == "Where the task-specific neurons sit"


def test_layer_profile_mean_score_averages_the_kinds():
    ax = plots.plot_layer_profile(profile(), value="mean_score")
    lines = lines_by_legend(ax)
    np.testing.assert_allclose(lines["sentiment"][1], [1.0, 2.0])  # (0 + 2) / 2, (1 + 3) / 2
    np.testing.assert_allclose(lines["math"][1], [2.0, 3.0])
    assert ax.get_ylabel() == "mean relevance (nats per example)"


def test_kind_profile_averages_the_tasks():
    ax = plots.plot_kind_profile(profile())
    lines = lines_by_legend(ax)
    assert set(lines) == {"up", "down"}
    np.testing.assert_allclose(lines["up"][1], [0.5, 1.5])  # tasks 0 + layer and 1 + layer
    np.testing.assert_allclose(lines["down"][1], [2.5, 3.5])
    assert ax.get_title() == "mean_score by layer and site kind (mean over tasks)"


# -- deactivation ----------------------------------------------------------------------------


def deactivation(models=("multitask",)):
    """``experiments.deactivation`` rows for tasks a and b: nothing, own, two random seeds and
    the other task's set deactivated. NLL with nothing off 0.1 (a) / 0.2 (b); deltas: own 1.9,
    random (0.4 + 0.6) / 2 = 0.5, other 0.9; scores 0.9 -> own 0.5, random 0.8 / 0.7, other
    0.6. A second model has every delta doubled."""
    rows = []
    for m, model in enumerate(models):
        factor = 1 + m
        for task, other, base in (("a", "b", 0.1), ("b", "a", 0.2)):
            for condition, deactivated, seed, d_nll, score in (
                ("none", "none", -1, 0.0, 0.9),
                ("own", task, -1, 1.9, 0.5),
                ("random", "random", 0, 0.4, 0.8),
                ("random", "random", 1, 0.6, 0.7),
                (f"other:{other}", other, -1, 0.9, 0.6),
            ):
                rows.append(
                    {
                        "model": model,
                        "task": task,
                        "category": "classification",
                        "metric": "accuracy",
                        "condition": condition,
                        "deactivated": deactivated,
                        "seed": seed,
                        "n_neurons": 10,
                        "score": 0.9 - factor * (0.9 - score),
                        "nll": base + factor * d_nll,
                        "n": 4,
                    }
                )
    return pd.DataFrame(rows)


def test_deactivation_heatmap_cells_are_changes_against_nothing_off():
    ax = plots.plot_deactivation_heatmap(deactivation())
    assert tick_labels(ax.get_xticklabels()) == ["a", "b"]
    assert tick_labels(ax.get_yticklabels()) == ["a", "b", "random"]
    # rows: deactivated set; columns: evaluated task. Diagonal: own; off-diagonal: other.
    np.testing.assert_allclose(heatmap_values(ax), [[1.9, 0.9], [0.9, 1.9], [0.5, 0.5]])
    assert ax.get_xlabel() == "evaluated task" and ax.get_ylabel() == "deactivated neurons of"
    assert ax.get_title().replace("\n", " ") == "Deactivation on the multitask model"


def test_deactivation_heatmap_of_the_metric_in_points_for_a_chosen_model():
    df = deactivation(models=("multitask", "untuned"))
    ax = plots.plot_deactivation_heatmap(df, value="score", model="untuned")
    # untuned: score drops doubled: own 2 x -0.4, random 2 x mean(-0.1, -0.2), other 2 x -0.3
    np.testing.assert_allclose(heatmap_values(ax), [[-80, -60], [-60, -80], [-30, -30]])
    assert ax.get_title().replace("\n", " ") == "Deactivation on the untuned model"


def test_deactivation_bars_show_means_and_seed_spread():
    ax = plots.plot_deactivation_bars(deactivation())
    bars = bars_by_legend(ax)
    assert list(bars) == ["nothing off", "random neurons off", "task neurons off"]
    np.testing.assert_allclose(heights(bars["nothing off"]), [90, 90])
    np.testing.assert_allclose(heights(bars["random neurons off"]), [75, 75])
    np.testing.assert_allclose(heights(bars["task neurons off"]), [50, 50])
    # Error bars of the random bars: the sample std over seeds, std(80, 70) = 7.07 points.
    segments = bars["random neurons off"].errorbar.lines[2][0].get_segments()
    half = [(seg[1][1] - seg[0][1]) / 2 for seg in segments]
    np.testing.assert_allclose(half, [np.std([80, 70], ddof=1)] * 2)
    assert tick_labels(ax.get_xticklabels()) == ["a", "b"]
    assert ax.get_ylabel() == "metric (x100)"


def test_deactivation_bars_of_the_nll():
    ax = plots.plot_deactivation_bars(deactivation(), value="nll")
    bars = bars_by_legend(ax)
    np.testing.assert_allclose(heights(bars["nothing off"]), [0.1, 0.2])
    np.testing.assert_allclose(heights(bars["task neurons off"]), [2.0, 2.1])
    assert ax.get_ylabel() == "answer NLL (nats)"


# -- fine-tuning -----------------------------------------------------------------------------


def finetuning():
    """``experiments.neuron_finetuning`` rows: two tasks, four methods."""
    scores = {
        "a": {"none": 0.25, "neurons": 0.75, "random": 0.5, "full": 1.0},
        "b": {"none": 0.0, "neurons": 0.5, "random": 0.25, "full": 0.75},
    }
    return pd.DataFrame(
        [
            {"task": t, "method": m, "score": s, "nll": 2.0 - s}
            for t, by_method in scores.items()
            for m, s in by_method.items()
        ]
    )


def test_finetuning_bars_per_method_and_task():
    ax = plots.plot_finetuning(finetuning())
    bars = bars_by_legend(ax)
    assert list(bars) == ["no training", "task neurons", "random neurons", "full fine-tuning"]
    np.testing.assert_allclose(heights(bars["no training"]), [25, 0])
    np.testing.assert_allclose(heights(bars["task neurons"]), [75, 50])
    np.testing.assert_allclose(heights(bars["random neurons"]), [50, 25])
    np.testing.assert_allclose(heights(bars["full fine-tuning"]), [100, 75])
    assert tick_labels(ax.get_xticklabels()) == ["a", "b"]
    assert ax.get_ylabel() == "metric (x100)"
    assert ax.get_title() == "Fine-tuning only the task-specific neurons"

    ax = plots.plot_finetuning(finetuning(), value="nll")
    np.testing.assert_allclose(heights(bars_by_legend(ax)["full fine-tuning"]), [1.0, 1.25])
    assert ax.get_ylabel() == "answer NLL (nats)"


def test_finetuning_bars_skip_methods_that_were_not_run():
    df = finetuning()
    ax = plots.plot_finetuning(df[df["method"] != "full"])
    assert list(bars_by_legend(ax)) == ["no training", "task neurons", "random neurons"]


# -- training curves -------------------------------------------------------------------------


def test_training_curves_are_smoothed_losses():
    history = pd.DataFrame(
        {
            "step": [1, 2, 3, 4, 4],
            "loss": [4.0, 2.0, 3.0, 1.0, np.nan],
            "dev_nll": [np.nan] * 4 + [2.5],
        }
    )  # a dev-only row: no loss
    other = pd.DataFrame({"step": [1, 2], "loss": [5.0, 3.0]})
    ax = plots.plot_training_curves({"task neurons": history, "full": other}, smooth=2)
    lines = lines_by_legend(ax)
    x, y = lines["task neurons"]
    np.testing.assert_array_equal(x, [1, 2, 3, 4])
    np.testing.assert_allclose(y, [4.0, 3.0, 2.5, 2.0])  # rolling mean over 2 (1 at the start)
    np.testing.assert_allclose(lines["full"][1], [5.0, 4.0])
    assert ax.get_xlabel() == "step" and ax.get_title() == "Training curves"


@pytest.mark.parametrize(
    "draw",
    [
        lambda ax: plots.plot_overlap(overlap(), ax=ax),
        lambda ax: plots.plot_layer_profile(profile(), ax=ax),
        lambda ax: plots.plot_kind_profile(profile(), ax=ax),
        lambda ax: plots.plot_deactivation_heatmap(deactivation(), ax=ax),
        lambda ax: plots.plot_deactivation_bars(deactivation(), ax=ax),
        lambda ax: plots.plot_finetuning(finetuning(), ax=ax),
        lambda ax: plots.plot_training_curves(
            {"x": pd.DataFrame({"step": [1], "loss": [1.0]})}, ax=ax
        ),
    ],
    ids=[
        "overlap",
        "layer_profile",
        "kind_profile",
        "deactivation_heatmap",
        "deactivation_bars",
        "finetuning",
        "training_curves",
    ],
)
def test_every_plot_returns_its_axes(draw):
    new = draw(None)
    assert isinstance(new, Axes) and new in new.figure.axes
    _, given = plt.subplots()
    assert draw(given) is given


def test_dominance_vs_k_one_line_per_family_at_the_ks_with_its_interval():
    scores = pd.DataFrame(
        {
            "family": ["top_k", "top_k", "contrastive", "contrastive", "top_k"],
            "task": ["mean", "mean", "mean", "mean", "news_topic"],  # a task row is not drawn
            "k": [0.02, 0.10, 0.02, 0.10, 0.02],
            "dominance": [0.1, -0.2, 0.5, 0.3, 0.9],
            "dominance_low": [0.0, -0.4, 0.2, 0.1, 0.9],
            "dominance_high": [0.3, 0.0, 0.7, 0.6, 0.9],
        }
    )
    ax = plots.plot_dominance_vs_k(scores)
    lines = {bars.get_label(): bars.lines[0] for bars in ax.containers}  # ErrorbarContainers
    assert set(lines) == {"top_k", "contrastive"}
    assert list(lines["top_k"].get_xdata()) == [2.0, 10.0]
    assert list(lines["contrastive"].get_ydata()) == [0.5, 0.3]
    # Error bars span [low, high]: one vertical segment per point.
    segments = [c for c in ax.collections if len(c.get_segments()) == 2]
    spans = sorted(sorted((s[0][1], s[1][1])) for c in segments for s in c.get_segments())
    assert [tuple(np.round(s, 6)) for s in spans] == [
        (-0.4, 0.0),
        (0.0, 0.3),
        (0.1, 0.6),
        (0.2, 0.7),
    ]
    plt.close("all")
