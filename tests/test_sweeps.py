"""Table 1 with intervals, the k sweep, the budget sweep, held-out detection examples and the
main job's reference output (issue 12), on tiny random models and tiny task subsets."""

import importlib
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
import pytest

import taskneuron_utils as tn
from taskneuron_utils import experiments, plots
from taskneuron_utils.neurons.analysis import bootstrap_interval
from taskneuron_utils.experiments.common import sample

from tiny_models import tiny_model

matplotlib.use("Agg")

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
TASKS = ("product_sentiment", "addition", "last_word")  # accuracy, exact match, ROUGE-L
DETECT = experiments.DetectionConfig(n_attribution=4, batch_size=4, max_length=128, progress=False)
DEACT = experiments.DeactivationConfig(
    n_eval=6, random_seeds=tuple(range(10)), batch_size=4, progress=False
)


@pytest.fixture(scope="module")
def suite():
    return tn.load_tasks(list(TASKS))


@pytest.fixture
def tiny(default_tok):
    return tiny_model("llama", seed=0, vocab_size=len(default_tok))


def _benchmark(name, monkeypatch):
    monkeypatch.syspath_prepend(str(BENCHMARKS))  # the scripts import their siblings
    return importlib.import_module(name)


# --- the bootstrap ---------------------------------------------------------------------------


def test_bootstrap_interval_covers_a_known_mean_at_the_nominal_rate():
    rng = np.random.default_rng(12)
    covered = 0
    for repetition in range(200):
        x = rng.exponential(2.0, size=60)  # skewed; the true mean is 2.0

        def mean(idx, x=x):
            return x[idx].mean(-1)

        low, high = bootstrap_interval(mean, (len(x),), n_resamples=1000, seed=repetition)
        assert low <= x.mean() <= high
        covered += low <= 2.0 <= high
    assert 0.90 <= covered / 200 <= 0.99


def test_bootstrap_interval_resamples_each_dimension_and_fixes_single_units():
    values = np.arange(12.0).reshape(3, 4)  # 3 seeds x 4 examples

    def grand_mean(ex, seeds):
        per_seed = np.moveaxis(values[:, ex].mean(-1), 0, -1)  # (..., 3)
        return np.take_along_axis(per_seed, seeds, -1).mean(-1)

    low, high = bootstrap_interval(grand_mean, (4, 3), n_resamples=500)
    assert low < values.mean() < high
    # Examples alone vary when a single seed is kept: a narrower interval around seed 0's mean.
    low1, high1 = bootstrap_interval(grand_mean, (4, 1), n_resamples=500)
    assert low1 < values[0].mean() < high1 and high1 - low1 < high - low
    assert bootstrap_interval(grand_mean, (1, 1)) == (values[0, 0], values[0, 0])


# --- per-example values and intervals --------------------------------------------------------


def test_per_example_values_aggregate_to_the_score_and_nll(tiny, default_tok, suite):
    df = experiments.deactivation(tiny, default_tok, suite, DEACT, detection=DETECT)
    examples = experiments.deactivation(
        tiny, default_tok, suite, DEACT, detection=DETECT, per_example=True
    )
    assert len(examples) == len(df) * 6  # 6 test examples a condition
    # 10 random seeds: one row per seed and task, each a different set of the same size.
    assert sorted(df[(df.task == "addition") & (df.condition == "random")].seed) == list(range(10))
    assert (examples.n_tokens > 0).all() and examples.score.between(0, 1).all()
    back = experiments.aggregate_examples(examples)
    keys = ["model", "task", "condition", "seed"]
    merged = df.merge(back, on=keys, suffixes=("", "_back"), validate="one_to_one")
    assert len(merged) == len(df)
    np.testing.assert_allclose(merged.score_back, merged.score, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(merged.nll_back, merged.nll, rtol=1e-12)
    assert (merged.n_back == merged.n).all()
    # evaluate's own per-example values, for a ROUGE-L task (not 0/1 per example).
    split = suite["last_word"].test.sample(6, seed=0)
    result = tn.evaluate(tiny, default_tok, split, progress=False, per_example=True)
    values = result["examples"]
    assert result["score"] == pytest.approx(values["score"].mean(), rel=1e-12)
    assert result["nll"] == pytest.approx(
        values["nll_sum"].sum() / values["n_tokens"].sum(), rel=1e-12
    )
    assert "examples" not in tn.evaluate(tiny, default_tok, split, progress=False)


def test_table1_intervals_points_and_bounds(tiny, default_tok, suite):
    examples = experiments.deactivation(
        tiny, default_tok, suite, DEACT, detection=DETECT, per_example=True
    )
    summary = experiments.deactivation_summary(experiments.aggregate_examples(examples))
    table = experiments.table1_intervals(examples, n_resamples=300)
    # Rows: 3 tasks, 2 categories, all tasks; 3 measures each (score, score_per_token, nll).
    assert len(table) == (3 + 2 + 1) * 3
    by_measure = table.set_index(["task", "measure"])
    # Generation has nothing to length-normalise: score_per_token is its score.
    assert by_measure.loc[("last_word", "score_per_token"), "own_off"] == pytest.approx(
        by_measure.loc[("last_word", "score"), "own_off"]
    )
    assert experiments.aggregate_examples(examples)["score_per_token"].between(0, 1).all()
    one = table[(table.task == "addition") & (table.measure == "nll")].iloc[0]
    by_group = summary[summary.task == "addition"].set_index("group")
    assert one.original == pytest.approx(by_group.loc["none", "nll"])
    assert one.own_off == pytest.approx(by_group.loc["own", "nll"])
    assert one.random_off == pytest.approx(by_group.loc["random", "nll"])  # mean over 10 seeds
    assert one.other_off == pytest.approx(by_group.loc["other", "nll"])
    assert (one.seeds, one.others, one.examples) == (10, 2, 6)
    for name in experiments.intervals.QUANTITIES:
        ok = table[f"{name}_low"] <= table[name] + 1e-12
        assert (ok & (table[name] <= table[f"{name}_high"] + 1e-12)).all(), name
    # The category row is the mean of its tasks.
    generation = table[(table.category == "generation") & (table.measure == "score")]
    assert generation[generation.task == "all"].own_off.item() == pytest.approx(
        generation[generation.task != "all"].own_off.mean()
    )


def _synthetic(own_shift: float) -> pd.DataFrame:
    """Per-example NLL of one task: none 1.0, random seeds around 2.0, own 2.0 + own_shift,
    with example noise; one token per example."""
    rng = np.random.default_rng(0)
    rows = []
    conditions = [("none", "none", -1, 1.0), ("own", "t", -1, 2.0 + own_shift)]
    conditions += [("random", "random", s, 2.0 + rng.normal(0, 0.05)) for s in range(10)]
    for condition, deactivated, seed, level in conditions:
        for i in range(40):
            nll = level + rng.normal(0, 0.3)
            rows.append(
                {
                    "model": "m",
                    "task": "t",
                    "category": "generation",
                    "metric": "exact_match",
                    "condition": condition,
                    "deactivated": deactivated,
                    "seed": seed,
                    "n_neurons": 5,
                    "example": i,
                    "score": 0.0,
                    "nll_sum": nll,
                    "n_tokens": 1,
                    "nll": nll,
                }
            )
    return pd.DataFrame(rows)


def test_beyond_random_is_read_off_the_difference_interval():
    clear = experiments.table1_intervals(_synthetic(1.0), n_resamples=500)
    clear = clear[clear.measure == "nll"].iloc[0]
    assert clear.own_vs_random_low > 0 and clear.beyond_random
    same = experiments.table1_intervals(_synthetic(0.0), n_resamples=500)
    same = same[same.measure == "nll"].iloc[0]
    assert same.own_vs_random_low < 0 < same.own_vs_random_high and not same.beyond_random
    assert np.isnan(same.other_effect) and not same.beyond_other  # no other sets: no verdict


# --- the k sweep -----------------------------------------------------------------------------


def test_k_sweep_at_a_k_equals_a_direct_deactivation(tiny, default_tok, suite):
    tasks = {name: suite[name] for name in ("product_sentiment", "addition")}
    config = DEACT.replace(random_seeds=(0, 1), n_eval=4)
    sweep = experiments.k_sweep(tiny, default_tok, tasks, (0.1, 0.25), config, detection=DETECT)
    assert sorted(sweep.k.unique()) == [0.1, 0.25]
    sets = experiments.neuron_sets(
        experiments.detect(tiny, default_tok, tasks, DETECT), DETECT.replace(k=0.25)
    )
    direct = experiments.deactivation(tiny, default_tok, tasks, config, sets=sets, per_example=True)
    at = sweep[sweep.k == 0.25].drop(columns="k").reset_index(drop=True)
    pd.testing.assert_frame_equal(at, direct)
    # Larger k, larger sets; the intact model is the same at every k.
    own = sweep[sweep.condition == "own"].groupby("k").n_neurons.first()
    assert own[0.1] < own[0.25]
    none = sweep[sweep.condition == "none"]
    assert (none[none.k == 0.1].nll.values == none[none.k == 0.25].nll.values).all()
    ax = plots.plot_k_sweep(experiments.table1_intervals(sweep, n_resamples=200), value="nll")
    assert ax.get_xscale() == "log" and len(ax.lines) >= 3 and ax.collections
    matplotlib.pyplot.close(ax.figure)


def test_k_sweep_with_act_units(tiny, default_tok, suite):
    tasks = {"addition": suite["addition"]}
    sweep = experiments.k_sweep(
        tiny,
        default_tok,
        tasks,
        (0.25,),
        DEACT.replace(random_seeds=(0,), n_eval=2, others=False),
        detection=DETECT,
        kinds=("act",),
    )
    own = sweep[sweep.condition == "own"]
    assert own.n_neurons.iloc[0] == 2 * round(0.25 * 64)  # 2 layers x 64 act units


# --- the budget sweep ------------------------------------------------------------------------


BUDGET = experiments.BudgetConfig(
    examples=8,
    batch_size=2,
    lr=1e-3,
    full_lr=1e-4,
    seeds=(0, 1),
    n_dev=4,
    n_eval=3,
    dev_every=1,
    max_length=128,
    eval_batch_size=4,
    progress=False,
)


def test_budget_sweep_auc_is_the_trapezoid_of_its_own_curve(tiny, default_tok, suite):
    tasks = {name: suite[name] for name in ("product_sentiment", "addition")}
    df = experiments.budget_sweep(tiny, default_tok, tasks, (2, 3), BUDGET, detection=DETECT)
    runs = df.groupby(["task", "method", "seed"])
    assert len(runs) == 2 * 3 * 2
    for _, run in runs:
        run = run.sort_values("step")
        assert run.step.tolist() == [0, 1, 2, 3]
        assert run.is_budget.tolist() == [True, False, True, True]
        x, y = run.step.to_numpy(float), run.dev_nll.to_numpy()
        for budget in (2, 3):
            upto = x <= budget
            by_hand = sum(
                (y[i] + y[i + 1]) / 2 * (x[i + 1] - x[i]) for i in range(int(upto.sum()) - 1)
            )
            row = run[run.step == budget].iloc[0]
            assert row.dev_auc == pytest.approx(by_hand, rel=1e-12)
            assert row.dev_auc_mean == pytest.approx(by_hand / budget, rel=1e-12)
        assert run.train_seconds.is_monotonic_increasing
    # Step 0 is the untrained model for every run of a task.
    start = df[df.step == 0].groupby("task")[["dev_nll", "nll"]].nunique()
    assert (start == 1).all().all()
    # Every method of a seed moved away from it; task and random sets have the same size.
    at3 = df[df.step == 3].set_index(["task", "method", "seed"])
    assert (at3.dev_nll != df[df.step == 0].dev_nll.iloc[0]).any()
    assert (
        at3.xs("neurons", level="method").n_neurons == at3.xs("random", level="method").n_neurons
    ).all()
    table = experiments.budget_table(df)
    assert set(table.step) == {0, 2, 3}
    assert {"score", "score_per_token", "nll", "dev_auc_mean"} <= set(table.columns)
    # Generation (addition) has no options to normalise: score_per_token is its score.
    generated = df[(df.task == "addition") & df.is_budget]
    assert (generated.score_per_token == generated.score).all()
    ax = plots.plot_budget(df, value="nll")
    assert ax.get_xscale() == "log" and len(ax.lines) == 4  # 3 methods + untrained
    matplotlib.pyplot.close(ax.figure)


def test_a_budget_checkpoint_is_a_run_of_that_budget(tiny, default_tok, suite):
    """The constant schedule makes step b of the longest run the same as a run of b steps."""
    tasks = {"addition": suite["addition"]}
    config = BUDGET.replace(seeds=(1,), dev_every=None, methods=("neurons", "full"))
    sets = experiments.neuron_sets(experiments.detect(tiny, default_tok, tasks, DETECT), DETECT)
    df = experiments.budget_sweep(tiny, default_tok, tasks, (2, 4), config, sets=sets)
    test = experiments.common.eval_split(suite["addition"], config.n_eval, config.seed)
    train = sample(suite["addition"].train, config.examples, 1)
    for method, lr in (("neurons", config.lr), ("full", config.full_lr)):
        model = tiny_model("llama", seed=0, vocab_size=len(default_tok))
        tn.finetune(
            model,
            default_tok,
            train,
            neurons=sets["addition"] if method == "neurons" else None,
            method=method,
            steps=2,
            lr=lr,
            batch_size=config.batch_size,
            warmup=0.0,
            schedule="constant",
            seed=1,
            max_length=128,
            progress=False,
        )
        alone = tn.evaluate(model, default_tok, test, batch_size=4, max_length=128, progress=False)
        row = df[(df.method == method) & (df.step == 2)].iloc[0]
        assert row.nll == pytest.approx(alone["nll"], rel=1e-5)
        assert row.score == alone["score"]
        later = df[(df.method == method) & (df.step == 4)].iloc[0]
        assert later.nll != pytest.approx(alone["nll"], rel=1e-5)  # steps 3-4 changed it


# --- held-out detection examples -------------------------------------------------------------


def test_replication_detects_on_examples_the_multitask_model_did_not_train_on(monkeypatch):
    sweeps = _benchmark("replication_sweeps", monkeypatch)
    config, detection = sweeps.MULTITASK, sweeps.DETECTION
    tasks = tn.load_tasks(list(config.tasks))
    held = sweeps.detection_tasks(tasks)
    for name, task in tasks.items():
        position = {ex: i for i, ex in enumerate(task.train)}  # examples are unique
        trained = set(experiments.mixture_indices(task, config.examples, config.seed))
        detected = {
            position[ex] for ex in sample(held[name].train, detection.n_attribution, detection.seed)
        }
        assert len(trained) == config.examples and len(detected) == detection.n_attribution
        assert not trained & detected, name
        # Without held_out the same draw would sit inside the trained examples.
        before = {
            position[ex] for ex in sample(task.train, detection.n_attribution, detection.seed)
        }
        assert before <= trained
        assert held[name].test is not task.test and list(held[name].test) == list(task.test)
    # The mixture is made of exactly the trained examples (instruction prefixed).
    mixture = experiments.multitask_mixture(tasks, config.examples, config.seed)
    name, task = next(iter(tasks.items()))
    first = [task.train[i] for i in experiments.mixture_indices(task, config.examples, config.seed)]
    assert [ex.output for ex in mixture][: config.examples] == [ex.output for ex in first]
    assert mixture[0].input == f"{task.instruction}\n\n{first[0].input}"


# --- the main job's reference output ---------------------------------------------------------


def test_main_job_reference_writes_the_cited_files(tmp_path, default_tok, monkeypatch):
    folder = tmp_path / "tiny_model"
    tiny_model("llama", seed=0, vocab_size=len(default_tok)).save_pretrained(folder)
    default_tok.save_pretrained(folder)
    script = _benchmark("main_job_reference", monkeypatch)
    out = tmp_path / "reference"
    script.main(["--out", str(out), "--model", str(folder), "--n", "2"])
    assert sorted(p.name for p in out.iterdir()) == sorted(script.FILES)
    overlap = pd.read_csv(out / "overlap.csv", index_col=0)
    names = list(experiments.PROFILES["quick"].detection.tasks)
    assert list(overlap.index) == names and list(overlap.columns) == names
    assert np.allclose(np.diag(overlap.values), 1.0)
    assert ((overlap.values >= 0) & (overlap.values <= 1)).all()
    layers = pd.read_csv(out / "layers.csv")
    assert set(layers.task) == set(names) and set(layers.layer) == {0, 1}
    assert "random baseline 0.053" in (out / "summary.txt").read_text()


def test_budget_contrasts_pair_runs_by_task_and_seed():
    """Hand-made budget frame: at step 4 the neuron runs' NLL is the random runs' minus 0.5 in
    every run (a constant difference: the interval is that point), and their score differs by
    amounts whose mean is computed by hand."""
    rows = []
    score_gap = {("a", 0): 0.1, ("a", 1): 0.3, ("b", 0): -0.2, ("b", 1): 0.0}
    for (task, seed), gap in score_gap.items():
        for method in ("neurons", "random", "full"):
            nll = 1.0 + seed - (0.5 if method == "neurons" else 0.0)
            score = 0.5 + (gap if method == "neurons" else 0.0)
            for step in (0, 4):
                rows.append(
                    {
                        "task": task,
                        "category": "classification" if task == "a" else "generation",
                        "method": method,
                        "seed": seed,
                        "step": step,
                        "is_budget": True,
                        "score": score,
                        "nll": nll,
                        "dev_auc_mean": np.nan if step == 0 else nll,
                    }
                )
    table = experiments.budget_contrasts(pd.DataFrame(rows), n_resamples=200)
    assert set(table.step) == {4}  # step 0 is the untrained model, the same for every method
    one = table.set_index(["category", "against", "value"])
    nll = one.loc[("all", "random", "nll")]
    assert (nll["diff"], nll["low"], nll["high"], nll["runs"]) == pytest.approx(
        (-0.5, -0.5, -0.5, 4)
    )
    score = one.loc[("all", "random", "score")]
    assert score["diff"] == pytest.approx(100 * np.mean(list(score_gap.values())))
    assert score["low"] < score["diff"] < score["high"]
    assert one.loc[("classification", "full", "score"), "diff"] == pytest.approx(20.0)
    assert one.loc[("classification", "full", "score"), "runs"] == 2
