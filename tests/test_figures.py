"""Every figure the notebooks and the replication record draw is legible at the real sizes of
the data (30 layers, the six mixture tasks, the four- and eight-task sequences): no tick labels
on top of each other, no text cut at the figure's edge, no heatmap annotation larger than its
cell, no red/green pair. The frames are the committed record's (benchmarks/results/); the check
is ``plots.figure.legibility_problems``, itself tested on figures drawn to break each rule."""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
import seaborn as sns  # noqa: E402

from taskneuron_utils import plots  # noqa: E402
from taskneuron_utils.plots import conditions, neuron_page  # noqa: E402
from taskneuron_utils.plots.figure import legibility_problems  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RECORD = ROOT / "benchmarks" / "results" / "replication"
REFERENCE = ROOT / "tests" / "reference"


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def read(name: str) -> pd.DataFrame:
    return pd.read_csv(RECORD / name)


def cl_matrix(order: int) -> pd.DataFrame:
    runs = read(f"continual/ncft_order{order}.csv")
    matrix = runs.pivot(index="stage", columns="task", values="score")
    tasks = list(dict.fromkeys(runs["trained"]))
    matrix = matrix[tasks]
    matrix.index = tasks
    return matrix


def agreement() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    exact = rng.normal(size=24)
    return pd.concat(
        pd.DataFrame(
            {
                "site": "layers.15.mlp.act",
                "unit": np.arange(24),
                "method": method,
                "score": np.abs(exact + noise * rng.normal(size=24)),
                "signed": exact + noise * rng.normal(size=24),
                "exact": np.abs(exact),
                "exact_signed": exact,
            }
        )
        for method, noise in (("grad_x_act", 0.1), ("integrated_gradients", 0.5))
    )


def faithfulness_curves(condition: str) -> pd.DataFrame:
    """The record's shape (benchmarks/model_or_recipe.py): 7 recipes x 5 ks."""
    rng = np.random.default_rng(0)
    rows = []
    for recipe in (
        "paper",
        "contrastive",
        "relp_nll",
        "relp_ld",
        "activation",
        "low_activation",
        "random",
    ):
        for k in (0.0005, 0.001, 0.01, 0.1, 0.2):
            f = min(1.2, rng.uniform(0, 1) * k * 10)
            rows.append(
                {
                    "recipe": recipe,
                    "task": "all",
                    "measure": "ld",
                    "condition": condition,
                    "k": k,
                    "value": 3 - f,
                    "value_low": 2.8 - f,
                    "value_high": 3.2 - f,
                    "f": f,
                    "f_low": f - 0.1,
                    "f_high": f + 0.1,
                    "full": 3.0,
                }
            )
    return pd.DataFrame(rows)


def specificity_matrix() -> pd.DataFrame:
    part = read("specific_matrices.csv").query(
        "definition == 'linear' and k == 0.1 and family == 'top_k' and value == 'nll'"
    )
    return part.pivot(index="set", columns="task", values="effect")


def sim(**where) -> pd.DataFrame:
    frame = read("gen_similarity.csv")
    for column, value in where.items():
        frame = frame[frame[column] == value]
    return frame


MIXTURE = [
    "product_sentiment",
    "news_topic",
    "addition",
    "country_capital",
    "last_word",
    "entity_type",
]


def neuron_frames() -> dict[str, pd.DataFrame]:
    """A neuron page's frames at the notebooks' sizes (06: six tasks, twelve neurons, ten tokens
    each way) and the playground's (00: three conditions, long answers)."""
    rng = np.random.default_rng(0)
    values = pd.DataFrame(
        {"task": np.repeat(MIXTURE, 200), "activation": rng.normal(0, 1, 1200) ** 3}
    )
    stats = pd.DataFrame(
        {"site": [f"layers.{i}.mlp.act" for i in rng.integers(0, 30, 12)], "neuron": np.arange(12)}
    )
    for task in MIXTURE:
        stats[f"mean_{task}"] = rng.normal(size=12)
    tokens = [" capital", "Ġthe", "\n", " Paris", "...", " 1234", "ing", " négatif"] * 3
    vocab = pd.DataFrame(
        {
            "direction": ["promotes"] * 12 + ["suppresses"] * 12,
            "token": tokens,
            "logit": np.r_[
                np.sort(rng.uniform(0.5, 3, 12))[::-1], -np.sort(rng.uniform(0.5, 3, 12))[::-1]
            ],
        }
    )
    vocab.attrs.update(site="layers.17.mlp.act", neuron=1234)
    effect = pd.DataFrame(
        {"task": MIXTURE, "nll_change": rng.normal(0.1, 0.2, 6), "ci95": rng.uniform(0, 0.1, 6)}
    )
    conditions = pd.DataFrame(
        {
            "condition": ["all on", "task off", "random off"],
            "p_expected": [0.93, 0.12, 0.9],
            "neurons_off": [0, 25_920, 25_920],
            "answer": ["Paris", "The capital of France is a city in the north", "Paris"],
        }
    )
    conditions.attrs.update(task="country_capital", expected="Paris")
    scores = pd.DataFrame(
        {
            "condition": ["all on", "task off", "random off"],
            "score": [0.97, 0.31, 0.94],
            "nll": [0.21, 2.9, 0.25],
            "neurons_off": [0, 25_920, 25_920],
            "metric": "accuracy",
            "task": "product_sentiment",
            "n": 32,
        }
    )
    return dict(
        values=values, stats=stats, vocab=vocab, effect=effect, conditions=conditions, scores=scores
    )


FIGURES = {
    "activation_histogram (6 tasks)": lambda: neuron_page.plot_activation_histogram(
        neuron_frames()["values"], title="layers.17.mlp.act #1234: activations per task"
    ),
    "task_means (12 neurons x 6 tasks)": lambda: neuron_page.plot_task_means(
        neuron_frames()["stats"]
    ),
    "vocab_projection (10 each way)": lambda: neuron_page.plot_vocab_projection(
        neuron_frames()["vocab"]
    ),
    "deactivation_effect (6 tasks)": lambda: neuron_page.plot_deactivation_effect(
        neuron_frames()["effect"], title="layers.17.mlp.act #1234 switched off"
    ),
    "conditions (3 conditions)": lambda: conditions.plot_conditions(neuron_frames()["conditions"]),
    "condition_scores (3 conditions)": lambda: conditions.plot_condition_scores(
        neuron_frames()["scores"]
    ),
    "overlap (3 tasks)": lambda: plots.plot_overlap(
        pd.read_csv(REFERENCE / "main_overlap.csv", index_col=0)
    ),
    "layer_profile (30 layers)": lambda: plots.plot_layer_profile(
        pd.read_csv(REFERENCE / "main_layers.csv")
    ),
    "kind_profile": lambda: plots.plot_kind_profile(pd.read_csv(REFERENCE / "main_layers.csv")),
    "deactivation_heatmap (6 tasks)": lambda: plots.plot_deactivation_heatmap(
        read("deact_mt_k10.csv"), value="nll"
    ),
    "deactivation_bars (6 tasks)": lambda: plots.plot_deactivation_bars(
        read("deact_mt_k10.csv"), value="nll"
    ),
    "specificity (6 x 6)": lambda: plots.plot_specificity(specificity_matrix()),
    "dominance_vs_k": lambda: plots.plot_dominance_vs_k(
        read("specific_scores.csv").query("value == 'nll' and definition == 'linear'")
    ),
    "k_sweep": lambda: plots.plot_k_sweep(read("k_sweep_linear_intervals.csv"), value="nll"),
    "finetuning (6 tasks)": lambda: plots.plot_finetuning(read("finetune.csv")),
    "budget": lambda: plots.plot_budget(read("budget.csv"), value="nll"),
    "overlap_gain": lambda: plots.plot_overlap_gain(read("gen_sweep_cls.csv")),
    "gain_vs_p": lambda: plots.plot_gain_vs_p(read("gen_sweep_cls.csv")),
    "similarity_heatmap (30 layers x 3, notebook 04)": lambda: plots.plot_similarity_heatmap(
        sim(source="product_sentiment")
    ),
    "similarity_heatmap (30 layers x 6)": lambda: plots.plot_similarity_heatmap(
        sim(group="classification")
    ),
    "layer_correlation (30 layers)": lambda: plots.plot_layer_correlation(
        read("gen_layer_correlations_gain.csv")
    ),
    "cl_summary": lambda: plots.plot_cl_summary(read("continual.csv").query("tasks == 4")),
    "cl_matrix (4 tasks)": lambda: plots.plot_cl_matrix(cl_matrix(1)),
    "cl_matrix (8 tasks)": lambda: plots.plot_cl_matrix(cl_matrix(4)),
    "cl_trajectories (4 tasks)": lambda: plots.plot_cl_trajectories(cl_matrix(1)),
    "cl_trajectories (8 tasks)": lambda: plots.plot_cl_trajectories(cl_matrix(4)),
    "method_agreement": lambda: plots.plot_method_agreement(agreement()),
    "faithfulness (7 recipes)": lambda: plots.plot_faithfulness(faithfulness_curves("keep")),
    "faithfulness (ablated)": lambda: plots.plot_faithfulness(
        faithfulness_curves("ablate_zero"), condition="ablate_zero"
    ),
    "training_curves (4 methods)": lambda: plots.plot_training_curves(
        {
            name: pd.DataFrame({"step": np.arange(1, 51), "loss": 3 * np.exp(-np.arange(50) / t)})
            for name, t in (("none", 1e9), ("neurons", 20), ("random", 60), ("full", 8))
        }
    ),
}


@pytest.mark.parametrize("name", FIGURES)
def test_every_figure_is_legible_at_the_real_sizes(name):
    ax = FIGURES[name]()
    assert legibility_problems(ax.figure) == []


def test_every_plot_function_the_notebooks_call_is_checked():
    called = set()
    for notebook in (ROOT / "notebooks").glob("*.ipynb"):  # plots.plot_x(...) or plot_x(...)
        called |= set(pd.Series(notebook.read_text()).str.findall(r"\b(plot_\w+)\(").iloc[0])
    assert len(called) >= 20
    drawn = {name.split(" ")[0] for name in FIGURES}
    assert {name.removeprefix("plot_") for name in called} - drawn == set()


# The check itself, on figures drawn to break each rule (the first one is notebook 04's
# similarity heatmap as it was drawn before the check: 30 layer labels run together).


def test_the_check_catches_labels_on_top_of_each_other():
    """Notebook 04's similarity heatmap as drawn before the check (the code of that version,
    on the record's frame): its 30 layer labels ran together ("1413121") and its title was cut."""
    frame = sim(source="product_sentiment")
    table = frame.pivot_table(index="layer", columns="task", values="similarity_update")
    _, ax = plt.subplots(
        figsize=(1.5 + 1.0 * table.shape[1], 1.0 + 0.18 * table.shape[0]), layout="constrained"
    )
    sns.heatmap(table, cmap="viridis", ax=ax, cbar_kws={"label": "cosine (update)"})
    ax.set_title("Parameter similarity with the trained task's neurons")
    problems = legibility_problems(ax.figure)
    assert any("y tick labels '10' and '11' overlap" in p for p in problems), problems
    assert any("is cut at the figure edge" in p for p in problems), problems
    ax = plots.plot_similarity_heatmap(frame)  # today's: every other layer, title wrapped
    assert legibility_problems(ax.figure) == []


def test_the_check_catches_cut_text_big_annotations_and_red_green():
    _, ax = plt.subplots(figsize=(3, 2))
    ax.set_title("a title much too long for a figure three inches wide, surely cut")
    ax.plot([0, 1], color="red")
    ax.plot([1, 0], color="green")
    problems = legibility_problems(ax.figure)
    assert any("is cut at the figure edge" in p for p in problems)
    assert any("red and green" in p for p in problems)
    _, ax = plt.subplots(figsize=(2, 2), layout="constrained")
    sns.heatmap(pd.DataFrame(np.ones((8, 8)) * 123.456), annot=True, fmt=".3f", ax=ax, cbar=False)
    assert any("larger than its cell" in p for p in legibility_problems(ax.figure))


def test_a_plain_figure_passes_and_rotated_labels_are_judged_by_their_glyphs():
    _, ax = plt.subplots(figsize=(6, 4), layout="constrained")
    ax.bar(range(6), range(6))
    ax.set_xticks(range(6), [f"country_{i}" for i in range(6)], rotation=30, ha="right")
    ax.set_title("Six bars")
    assert legibility_problems(ax.figure) == []
