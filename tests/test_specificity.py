"""Specificity scores (experiments.specificity) and selection methods (selection) on hand-built
matrices, deactivation rows and relevance tables whose answers are worked out by hand."""

from functools import reduce

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib.collections import QuadMesh  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402

import taskneuron_utils as tn  # noqa: E402
from taskneuron_utils import experiments, plots
from taskneuron_utils.neurons import selection  # noqa: E402
from taskneuron_utils.experiments import deactivation_matrix, specificity_scores  # noqa: E402
from taskneuron_utils.tasks import collate, encode  # noqa: E402

from scripts import ROOT, load_script  # noqa: E402
from tiny_models import tiny_model  # noqa: E402

TASKS = ["a", "b", "c"]


def matrix(values, rows=TASKS, cols=TASKS):
    return pd.DataFrame(
        values, index=pd.Index(rows, name="set"), columns=pd.Index(cols, name="task"), dtype=float
    )


def heatmap_values(ax) -> np.ndarray:
    """The 2-D array a seaborn heatmap colours (rows top to bottom, as the table)."""
    (mesh,) = [c for c in ax.collections if isinstance(c, QuadMesh)]
    rows, cols = len(ax.get_yticklabels()), len(ax.get_xticklabels())
    return np.ma.filled(mesh.get_array().astype(float), np.nan).reshape(rows, cols)


def task_rows(scores):
    return scores[scores.task != "mean"].set_index("task")


def mean_row(scores):
    return scores[scores.task == "mean"].iloc[0]


# -- specificity scores -------------------------------------------------------------------------


def test_diagonal_matrix_scores_one():
    scores = specificity_scores(matrix(np.diag([0.5, 2.0, 1.0])))
    rows = task_rows(scores)
    assert rows.dominance.tolist() == [1.0, 1.0, 1.0]
    assert rows.selectivity.tolist() == [1.0, 1.0, 1.0]
    mean = mean_row(scores)
    assert mean.dominance == 1.0 and mean.selectivity == 1.0
    # All tasks agree: the bootstrap interval has no width.
    assert mean.dominance_low == mean.dominance_high == 1.0
    assert set(scores.value) == {"effect"}


def test_constant_matrix_scores_zero():
    scores = specificity_scores(matrix(np.full((3, 3), 0.7)))
    assert task_rows(scores).dominance.tolist() == [0.0, 0.0, 0.0]
    assert task_rows(scores).selectivity.tolist() == [0.0, 0.0, 0.0]
    assert mean_row(scores)[["dominance", "selectivity"]].tolist() == [0.0, 0.0]


def test_dominance_and_selectivity_by_hand():
    # rows = switched-off set, columns = evaluated task
    E = matrix([[4.0, 1.0, 0.0], [2.0, 3.0, 1.0], [0.0, 1.0, 1.0]])
    rows = task_rows(specificity_scores(E))
    # a: own 4, others on a: mean(2, 0) = 1, a on others: mean(1, 0) = 0.5
    assert rows.loc["a", ["own", "others", "off_target"]].tolist() == [4.0, 1.0, 0.5]
    assert rows.loc["a", "dominance"] == pytest.approx((4 - 1) / (4 + 1))
    assert rows.loc["a", "selectivity"] == pytest.approx((4 - 0.5) / (4 + 0.5))
    # b: own 3, others on b: mean(1, 1) = 1, b on others: mean(2, 1) = 1.5
    assert rows.loc["b", "dominance"] == pytest.approx(2 / 4)
    assert rows.loc["b", "selectivity"] == pytest.approx(1.5 / 4.5)
    # c: own 1, others on c: mean(0, 1) = 0.5, c on others: mean(0, 1) = 0.5
    assert rows.loc["c", "dominance"] == pytest.approx(0.5 / 1.5)
    # A set that hurts the other tasks more than its own has a negative selectivity.
    flipped = task_rows(
        specificity_scores(matrix([[1.0, 3.0], [0.0, 2.0]], ["a", "b"], ["a", "b"]))
    )
    assert flipped.loc["a", "selectivity"] == pytest.approx((1 - 3) / (1 + 3))
    assert flipped.loc["a", "dominance"] == pytest.approx(1.0)


def test_mean_row_and_bootstrap_interval():
    E = matrix([[4.0, 1.0, 0.0], [2.0, 3.0, 1.0], [0.0, 1.0, 1.0]])
    scores = specificity_scores(E, value="nll", n_boot=500, seed=1)
    rows, mean = task_rows(scores), mean_row(scores)
    assert mean.dominance == pytest.approx(rows.dominance.mean())
    assert mean.own == pytest.approx(8 / 3)
    assert mean.dominance_low < mean.dominance < mean.dominance_high
    assert (
        rows.dominance.min() <= mean.dominance_low and mean.dominance_high <= rows.dominance.max()
    )
    assert rows.dominance_low.isna().all()  # intervals only on the mean row
    again = specificity_scores(E, value="nll", n_boot=500, seed=1)
    pd.testing.assert_frame_equal(scores, again)
    assert set(scores.value) == {"nll"}


def test_extra_rows_are_not_scored():
    E = matrix([[1.0, 0.0], [0.0, 1.0], [5.0, 5.0]], ["a", "b", "shared core"], ["a", "b"])
    assert task_rows(specificity_scores(E)).dominance.tolist() == [1.0, 1.0]


def test_matrix_needs_two_task_sets():
    with pytest.raises(ValueError, match="at least two"):
        specificity_scores(matrix([[1.0, 2.0]], ["a"], ["a", "b"]))
    with pytest.raises(ValueError, match="single label"):
        specificity_scores(matrix(np.eye(2), ["a", "b"], ["a", "b"]), value=("nll", "score"))


def deactivation_rows(model="m", family=None):
    """Rows in ``experiments.deactivation``'s format for tasks a, b with known numbers."""
    rows = []
    # none, own, random (2 seeds), other, as (nll, score) per task.
    table = {
        "a": {
            "none": (1.0, 0.9),
            "own": (3.0, 0.3),
            "random": [(1.2, 0.8), (1.4, 0.8)],
            "other:b": (1.5, 0.7),
        },
        "b": {
            "none": (2.0, 0.6),
            "own": (2.5, 0.4),
            "random": [(2.1, 0.6), (2.1, 0.5)],
            "other:a": (4.0, 0.1),
        },
    }
    for task, conditions in table.items():
        for condition, values in conditions.items():
            for seed, (nll, score) in enumerate(values if condition == "random" else [values]):
                rows.append(
                    {
                        "model": model,
                        "task": task,
                        "condition": condition,
                        "seed": seed if condition == "random" else -1,
                        "n_neurons": 0 if condition == "none" else 10,
                        "nll": nll,
                        "score": score,
                    }
                )
    frame = pd.DataFrame(rows)
    return frame if family is None else frame.assign(family=family)


def test_deactivation_matrix_subtracts_the_random_baseline():
    df = deactivation_rows()
    nll = deactivation_matrix(df, "nll")  # random means: a 1.3, b 2.1
    assert list(nll.index) == ["a", "b"] and list(nll.columns) == ["a", "b"]
    np.testing.assert_allclose(nll.to_numpy(), [[3.0 - 1.3, 4.0 - 2.1], [1.5 - 1.3, 2.5 - 2.1]])
    score = deactivation_matrix(df, "score")  # a drop is harm: random means a 0.8, b 0.55
    np.testing.assert_allclose(score.to_numpy(), [[0.8 - 0.3, 0.55 - 0.1], [0.8 - 0.7, 0.55 - 0.4]])
    plain = deactivation_matrix(df, "nll", baseline="none")
    assert list(plain.index) == ["a", "b", "random"]
    np.testing.assert_allclose(plain.to_numpy(), [[2.0, 2.0], [0.5, 0.5], [0.3, 0.1]])
    # Without random rows, the automatic baseline is nothing off; asking for random fails.
    no_random = df[df.condition != "random"]
    pd.testing.assert_frame_equal(deactivation_matrix(no_random), plain.loc[["a", "b"]])
    with pytest.raises(ValueError, match="no 'random' rows"):
        deactivation_matrix(no_random, baseline="random")
    with pytest.raises(ValueError, match="value must be"):
        deactivation_matrix(df, "accuracy")
    with pytest.raises(ValueError, match="several model"):
        deactivation_matrix(pd.concat([df, deactivation_rows(model="m2")]))


def test_scores_from_rows_per_family_and_value():
    df = pd.concat([deactivation_rows(family="top"), deactivation_rows(family="exclusive")])
    scores = specificity_scores(df)
    assert list(scores.columns[:4]) == ["model", "family", "value", "task"]
    assert len(scores) == 2 * 2 * 3  # families x values x (a, b, mean)
    top = scores[(scores.family == "top") & (scores.value == "nll")].set_index("task")
    # nll matrix [[1.7, 1.9], [0.2, 0.4]]: a own 1.7 vs b's set on a 0.2, vs a on b 1.9
    assert top.loc["a", "dominance"] == pytest.approx(1.5 / 1.9)
    assert top.loc["a", "selectivity"] == pytest.approx(-0.2 / 3.6)
    assert top.loc["a", "n_neurons"] == 10


def test_plot_specificity_cells_and_outlined_diagonal():
    E = matrix([[4.0, 1.0], [2.0, 3.0], [0.5, 0.5]], ["a", "b", "core"], ["a", "b"])
    ax = plots.plot_specificity(E, value="score")
    np.testing.assert_allclose(heatmap_values(ax), E.to_numpy() * 100)
    outlined = [
        (p.get_x(), p.get_y()) for p in ax.patches if isinstance(p, Rectangle) and not p.get_fill()
    ]
    assert outlined == [(0, 0), (1, 1)]
    plt.close("all")


def test_specificity_experiment_on_a_tiny_model(default_tok):
    suite = tn.load_tasks(["addition", "product_sentiment"])
    model = tiny_model("llama", seed=0, vocab_size=len(default_tok))
    detection = experiments.DetectionConfig(
        n_attribution=2, batch_size=2, max_length=96, progress=False
    )
    relevances = experiments.detect(model, default_tok, suite, detection)
    top = selection.select(relevances, "top_k", 0.1)
    core = selection.shared_core(relevances, 0.1)
    config = experiments.DeactivationConfig(
        n_eval=2, random_seeds=(0,), others=False, progress=False
    )
    df = experiments.specificity(
        model,
        default_tok,
        suite,
        {"top": {**top, "core": core}, "contrastive": selection.select(relevances, "contrastive")},
        config,
    )
    assert set(df.family) == {"top", "contrastive"}
    # others=False is overridden: every set is off on every task.
    top_rows = df[df.family == "top"]
    assert set(top_rows[top_rows.task == "addition"].condition) == {
        "none",
        "own",
        "random",
        "other:product_sentiment",
        "other:core",
    }
    assert list(deactivation_matrix(top_rows).index) == [*suite, "core"]
    scores = specificity_scores(df)
    assert len(scores) == 2 * 2 * 3
    nll = scores[scores.value == "nll"]
    assert nll[["own", "others", "off_target"]].notna().all().all()
    assert scores.dominance.dropna().between(-1, 1).all()
    # The families' sets have equal sizes, so they share one random baseline, and it is the
    # one a separate deactivation of that family computes.
    alone = experiments.deactivation(
        model,
        default_tok,
        suite,
        config,
        label="model",
        sets=selection.select(relevances, "contrastive"),
    )
    key = ["task", "condition", "seed"]
    for family in ("top", "contrastive"):
        part = df[(df.family == family) & df.condition.isin(["none", "random"])]
        expected = alone[alone.condition.isin(["none", "random"])]
        pd.testing.assert_frame_equal(
            part.sort_values(key)[[*key, "score", "nll"]].reset_index(drop=True),
            expected.sort_values(key)[[*key, "score", "nll"]].reset_index(drop=True),
        )
    examples = experiments.specificity(
        model, default_tok, suite, {"top": {**top, "core": core}}, config, per_example=True
    )
    pd.testing.assert_frame_equal(
        experiments.aggregate_examples(examples.drop(columns="family")),
        df[df.family == "top"].drop(columns=["family", "seconds"]).reset_index(drop=True),
        check_exact=False,
        rtol=1e-6,
    )
    with pytest.raises(KeyError, match="no set for the tasks"):
        experiments.specificity(
            model, default_tok, suite, {"x": {"addition": top["addition"]}}, config
        )


# -- selection ----------------------------------------------------------------------------------


def relevance(task, scores, n_examples=2):
    """A Relevance whose scores are ``scores`` ({site: list}); sums = scores x n_examples."""
    sums = {
        site: torch.tensor(values, dtype=torch.float64) * n_examples
        for site, values in scores.items()
    }
    return tn.Relevance(
        sums,
        {s: v.clone() for s, v in sums.items()},
        n_examples,
        10 * n_examples,
        {"model": "toy", "task": task},
    )


UP, DOWN = "layers.0.mlp.up", "layers.1.mlp.down"


def contrast_table():
    """10 neurons at each site: 0-1 shared and large for every task; 2-3 a's, 4-5 b's, 6-7 c's
    (moderate for the owner, small elsewhere); 8-9 small for everyone."""

    def scores(owner):
        values = [9.0, 9.0] + [1.0] * 8
        start = {"a": 2, "b": 4, "c": 6}[owner]
        values[start] = values[start + 1] = 5.0
        return values

    return {t: relevance(t, {UP: scores(t), DOWN: scores(t)}) for t in ("a", "b", "c")}


@pytest.mark.parametrize("contrast", ["difference", "zscore"])
def test_contrastive_picks_the_units_that_differ(contrast):
    rels = contrast_table()
    plain = selection.select(rels, "top_k", 0.2)
    sets = selection.select(rels, "contrastive", 0.2, contrast=contrast)
    for site in (UP, DOWN):
        assert plain["a"].indices[site].tolist() == [0, 1]  # top-k: the shared neurons
        assert sets["a"].indices[site].tolist() == [2, 3]
        assert sets["b"].indices[site].tolist() == [4, 5]
        assert sets["c"].indices[site].tolist() == [6, 7]
    assert sets["a"].meta["selection"] == "contrastive" and sets["a"].meta["contrast"] == contrast


def test_contrastive_is_not_fooled_by_a_task_with_larger_relevance():
    rels = contrast_table()
    loud = {site: (v * 100).tolist() for site, v in rels["b"].scores.items()}  # b x 100
    rels["b"] = relevance("b", loud)
    sets = selection.select(rels, "contrastive", 0.2)
    assert sets["a"].indices[UP].tolist() == [2, 3]
    assert sets["b"].indices[UP].tolist() == [4, 5]


def test_entropy_prefers_one_hot_units_over_uniform_ones():
    # 8 neurons (equal totals, so the per-site normalisation changes nothing): 0-2 large and
    # equal for both tasks, 3 one-hot for a, 4 one-hot for b, 5 mostly a's (5 vs 1), 6 mostly
    # b's, 7 zero everywhere (uniform shares, nobody's candidate).
    a = [8.0, 8.0, 8.0, 6.0, 0.0, 5.0, 1.0, 0.0]
    b = [8.0, 8.0, 8.0, 0.0, 6.0, 1.0, 5.0, 0.0]
    rels = {"a": relevance("a", {UP: a}), "b": relevance("b", {UP: b})}
    assert rels["a"].top_k(0.125).indices[UP].tolist() == [0]  # top-k takes a uniform one
    sets = selection.select(rels, "entropy", 0.125)
    assert sets["a"].indices[UP].tolist() == [3] and sets["b"].indices[UP].tolist() == [4]
    # Without the floor, a's candidates are 3 (entropy 0) then 5 (entropy of (5/6, 1/6)).
    sets = selection.select(rels, "entropy", 0.25, floor=0.0)
    assert sets["a"].indices[UP].tolist() == [3, 5] and sets["b"].indices[UP].tolist() == [4, 6]
    assert sets["a"].meta["filled"] == 0
    # The default floor (a's median score, 5.5) drops candidate 5; it comes back as the
    # non-candidate with the largest share of a (5/6), so it counts as filled.
    sets = selection.select(rels, "entropy", 0.25)
    assert sets["a"].indices[UP].tolist() == [3, 5] and sets["a"].meta["filled"] == 1
    # Four wanted, two candidates: the rest by share (0.5 for 0, 1, 2, 7; lowest index first).
    sets = selection.select(rels, "entropy", 0.5, floor=0.0)
    assert sets["a"].indices[UP].tolist() == [0, 1, 3, 5] and sets["a"].meta["filled"] == 2


def test_exclusive_tops_up_the_exclusive_sets():
    rels = contrast_table()
    sets = selection.select(rels, "exclusive", 0.3)  # 3 of 10 per site
    tops = selection.select(rels, "top_k", 0.3)
    # top-k(0.3) of a: 0, 1, 2 (ties broken by index); b and c take 0, 1 and 4 / 6.
    legacy = experiments.exclusive_sets(tops)
    for task in ("a", "b", "c"):
        assert len(legacy[task] - sets[task]) == 0  # the exclusive sets come first
        assert len(sets[task] & tops[task]) == len(legacy[task] & tops[task])
        for other in ("a", "b", "c"):
            if other != task:
                assert len(sets[task] & tops[other]) == 0
    assert sets["a"].indices[UP].tolist() == [2, 3, 5]  # 2 (own top), then 3, then 5 by index
    assert sets["a"].meta["filled"] == 0
    # k = 0.5: tops of b, c are {0, 1, 2, 4, 5} and {0, 1, 2, 6, 7}; a has 3 free neurons
    # (3, 8, 9), then takes the best of the others' (0, 1): 2 filled per site.
    crowded = selection.select(rels, "exclusive", 0.5)
    assert crowded["a"].indices[UP].tolist() == [0, 1, 3, 8, 9]
    assert crowded["a"].meta["filled"] == 2 * 2


def test_shared_core_is_the_intersection_and_has_matched_controls():
    rels = contrast_table()
    rels["c"] = relevance(
        "c", {UP: [9.0, 1.0, 1.0, 1.0, 1.0, 1.0, 5.0, 5.0, 1.0, 1.0], DOWN: [9.0] * 2 + [1.0] * 8}
    )
    core = tn.shared_core(rels, 0.2)
    tops = [rel.top_k(0.2) for rel in rels.values()]
    assert core == reduce(lambda x, y: x & y, tops)
    assert core.indices[UP].tolist() == [0] and core.indices[DOWN].tolist() == [0, 1]
    assert len(core) == 3 and core.counts().selected.tolist() == [1, 2]
    assert core.name == "shared core"
    matched = tn.neurons.matched_top(rels, core)
    assert matched["c"].indices[UP].tolist() == [0] and matched["c"].indices[DOWN].tolist() == [
        0,
        1,
    ]
    for neurons in matched.values():
        assert neurons.counts().selected.tolist() == [1, 2]
    random = tn.NeuronSet.random_like(core, seed=0)
    assert random.counts().selected.tolist() == [1, 2]


@pytest.mark.parametrize("k", [0.05, 0.25, 0.5, 1.0])
def test_every_method_keeps_the_top_k_count_of_every_site(k):
    generator = torch.Generator().manual_seed(0)
    sites = {"layers.0.mlp.gate": 7, "layers.0.mlp.up": 13, "layers.1.mlp.down": 10}
    rels = {
        t: relevance(t, {s: torch.rand(n, generator=generator).tolist() for s, n in sites.items()})
        for t in ("a", "b", "c")
    }
    expected = {s: len(v) for s, v in rels["a"].top_k(k, per="site").indices.items()}
    assert expected == {s: round(k * n) for s, n in sites.items()}
    for method in ("top_k", "contrastive", "entropy", "exclusive"):
        for task, neurons in selection.select(rels, method, k).items():
            assert {s: len(v) for s, v in neurons.indices.items()} == expected, (method, task)
            assert neurons.meta["task"] == task and neurons.meta["k"] == k


def test_bad_input_is_a_clear_error():
    rels = contrast_table()
    with pytest.raises(ValueError, match="unknown selection method 'lape'"):
        selection.select(rels, "lape")
    for k in (0, 10, -0.1, 1.5):
        with pytest.raises(ValueError, match=r"\(0, 1\]"):
            selection.select(rels, "contrastive", k)
    other = relevance("x", {UP: [1.0] * 12, DOWN: [1.0] * 10})
    with pytest.raises(tn.errors.NeuronSetMismatchError, match="different model layouts"):
        selection.select({**rels, "x": other}, "entropy")
    with pytest.raises(ValueError, match="at least 3"):
        selection.select({t: rels[t] for t in ("a", "b")}, "contrastive", contrast="zscore")
    with pytest.raises(ValueError, match="at least 2"):
        selection.select({"a": rels["a"]}, "exclusive")
    with pytest.raises(ValueError, match="contrast must be"):
        selection.select(rels, "contrastive", contrast="ratio")
    with pytest.raises(ValueError, match="floor"):
        selection.select(rels, "entropy", floor=1.0)
    with pytest.raises(TypeError, match="dict"):
        selection.select(list(rels.values()), "top_k")
    with pytest.raises(tn.errors.NeuronSetMismatchError):
        tn.neurons.matched_top(rels, other.top_k(0.1))


# -- where the core sits ------------------------------------------------------------------------


@pytest.mark.parametrize("kinds", [None, "act"])
def test_core_profile_matches_hooked_activations(default_tok, kinds):
    """Per site, the set's and the other units' mean |output| equal a plain forward hook's
    (on the up projection's output, or on what the down projection reads for ``act``)."""
    suite = tn.load_tasks(["addition", "product_sentiment"])
    model = tiny_model("llama", seed=0, vocab_size=len(default_tok))
    layout = tn.layout_of(model, kinds)
    site = [s for s in layout.sites if s.layer == 1 and s.kind == ("act" if kinds else "up")][0]
    chosen = {
        s.name: torch.tensor([0, 5, 7]) if s.name == site.name else torch.tensor([2])
        for s in layout.sites
    }
    core = tn.NeuronSet(chosen, dict(layout), {"name": "hand-made"})
    profile = experiments.core_profile(model, default_tok, suite, core, n_examples=3, max_length=96)

    mlp = model.model.layers[1].mlp
    seen, total, tokens = {}, torch.zeros(site.n_neurons, dtype=torch.float64), 0
    if kinds:
        handle = mlp.down_proj.register_forward_pre_hook(
            lambda module, args: seen.update(out=args[0])
        )
    else:
        handle = mlp.up_proj.register_forward_hook(lambda module, args, out: seen.update(out=out))
    for task in suite.values():
        batch = collate(
            encode(default_tok, task.train[:3], max_length=96), default_tok.pad_token_id
        )
        with torch.no_grad():
            model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
        mask = batch["attention_mask"].to(torch.float64)[..., None]
        total += (seen["out"].to(torch.float64).abs() * mask).sum((0, 1))
        tokens += int(batch["attention_mask"].sum())
    handle.remove()
    mean = total / tokens
    inside = torch.zeros(site.n_neurons, dtype=torch.bool)
    inside[[0, 5, 7]] = True
    row = profile.set_index("site").loc[site.name]
    assert row.n_set == 3 and row.share == pytest.approx(3 / site.n_neurons)
    assert row.set_act == pytest.approx(float(mean[inside].mean()), rel=1e-9)
    assert row.other_act == pytest.approx(float(mean[~inside].mean()), rel=1e-9)
    assert row.ratio == pytest.approx(row.set_act / row.other_act)
    assert (
        len(profile) == len(layout) and (profile.n_set == [len(v) for v in chosen.values()]).all()
    )


# -- the record (benchmarks/replication_specificity.py) -----------------------------------------


def test_specificity_record_parts_and_summary_on_a_tiny_model(tmp_path, default_tok, monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))  # the script imports its siblings
    record = load_script("benchmarks/replication_specificity.py")
    monkeypatch.setattr(
        record,
        "DETECTION",
        record.DETECTION.replace(n_attribution=2, batch_size=2, max_length=96, progress=False),
    )
    monkeypatch.setattr(
        record, "CONFIG", record.CONFIG.replace(n_eval=2, random_seeds=(0, 1), progress=False)
    )
    # Two tasks, so that the tiny model's shared core (the intersection) is not empty.
    monkeypatch.setattr(record, "TASKS", ("product_sentiment", "last_word"))
    model = tiny_model("llama", seed=0, vocab_size=len(default_tok))
    for part in ("specific_linear_k10", "specific_act_k10"):
        rows = record.run_specific(part, tmp_path, model, default_tok)
        rows.to_csv(tmp_path / f"{part}.csv", index=False)
        examples = pd.read_csv(tmp_path / f"{part}_examples.csv.gz")
        pd.testing.assert_frame_equal(
            experiments.aggregate_examples(examples), rows, check_exact=False, rtol=1e-9
        )
        assert set(rows.family) == {*record.METHODS, "shared core"}
        # Matched counts: every family's own set, and the random sets, have the top-k count.
        own = rows[(rows.condition == "own") & (rows.family != "shared core")]
        assert own.groupby("task").n_neurons.nunique().eq(1).all()
        core = rows[rows.family == "shared core"]
        assert (
            core[core.condition == "random"].n_neurons
            == core[core.condition == "own"].n_neurons.iloc[0]
        ).all()
    # The relevance is computed once per definition and reused from disk.
    assert len(list((tmp_path / "specific_relevance" / "act").glob("*.safetensors"))) == 2
    record.summarize_specific(tmp_path)
    scores = pd.read_csv(tmp_path / "specific_scores.csv")
    assert set(scores.definition) == {"linear", "act"} and set(scores.family) == set(record.METHODS)
    assert scores.dominance.dropna().between(-1, 1).all()
    table = pd.read_csv(tmp_path / "specific_table1.csv")
    assert set(table.family) == set(record.METHODS) and {"score", "nll"} <= set(table.measure)
    assert (tmp_path / "specific_dominance.png").stat().st_size > 0
