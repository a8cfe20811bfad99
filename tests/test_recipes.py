"""The localisation recipes (experiments.recipes) on a tiny Llama: equal set sizes across
recipes, the activation controls ordered by mean |activation|, Han et al.'s overlap ratio and
the own/other drop ratio by hand, and the verdict on frames built by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from taskneuron_utils import NeuronSet, layout_of
from taskneuron_utils.experiments.recipes import (
    RecipeConfig,
    overlap_ratios,
    recipe_relevance,
    recipe_sets,
    recipe_verdict,
    selectivity,
    selectivity_scores,
)
from taskneuron_utils.tasks import Task
from tiny_models import adding_task


def adding(name: str, family: str) -> Task:
    """Each task its own 60/20/20 split, seeded by its name (the same in every process)."""
    return adding_task(name, sum(map(ord, name)) % 7, family)


@pytest.fixture
def tasks():
    return {"a1": adding("a1", "x"), "a2": adding("a2", "x"), "b1": adding("b1", "y")}


CONTROLS = ("paper", "activation", "low_activation", "random")


def test_sets_of_every_recipe_have_the_same_size_and_controls_are_ordered(
    tiny_llama, default_tok, tasks
):
    config = RecipeConfig(recipes=CONTROLS, ks=(0.1, 0.5), n_attribution=6, progress=False)
    artefacts = recipe_relevance(tiny_llama, default_tok, tasks, config)
    for kinds in (None, "act"):
        sets = recipe_sets(artefacts, kinds, config)
        sizes = layout_of(tiny_llama, kinds)
        for k in (0.1, 0.5):
            counts = {r: [len(i) for i in sets[r]["a1"][k].indices.values()] for r in CONTROLS}
            assert len({tuple(c) for c in counts.values()}) == 1, counts
            assert list(sets["paper"]["a1"][k].sizes) == list(sizes)
        mean_abs = artefacts["stats"]["a1"].mean_abs
        site = next(iter(sizes))
        high = mean_abs[site][sets["activation"]["a1"][0.5].indices[site]]
        low = mean_abs[site][sets["low_activation"]["a1"][0.5].indices[site]]
        assert high.min() >= low.max()
        # each task draws its own random units (one draw for all would overlap perfectly)
        assert sets["random"]["a1"][0.5] != sets["random"]["a2"][0.5]
        # the paper's recipe is the top of |grad x act|, as Relevance.top_k ranks it
        paper = artefacts["relevance"]["paper"]["a1"].top_k(0.1)
        assert torch.equal(
            sets["paper"]["a1"][0.1].indices[site], paper.indices[site].sort().values
        )


def _set(sizes, picks):
    return NeuronSet({s: torch.tensor(picks) for s in sizes}, sizes)


def test_overlap_ratio_by_hand(tasks):
    sizes = {"layers.0.mlp.up": 10}
    sets = {
        "r": {
            "a1": {0.3: _set(sizes, [0, 1, 2])},
            "a2": {0.3: _set(sizes, [0, 1, 3])},  # within: J = 2 / 4
            "b1": {0.3: _set(sizes, [2, 8, 9])},  # across: a1 1/5, a2 0/6
        }
    }
    row = overlap_ratios(sets, tasks).iloc[0]
    assert row["within"] == pytest.approx(0.5)
    assert row["across"] == pytest.approx(0.1)
    assert row["ratio"] == pytest.approx(5.0)
    assert (row["n_within"], row["n_across"]) == (1, 2)


def _drops_frame(own: float, other: float, n: int = 6) -> pd.DataFrame:
    """LD 3 with nothing off; a set off lowers its own task's LD by ``own``, the others' by
    ``other`` (plus noise per example); NLL rises by the same amounts."""
    rng = np.random.default_rng(0)
    rows = []
    names = ("a1", "a2", "b1")
    for t in names:
        rows += [
            {
                "recipe": "reference",
                "k": np.nan,
                "set": "none",
                "task": t,
                "example": e,
                "ld": 3.0,
                "nll": 1.0,
            }
            for e in range(n)
        ]
        for s in names:
            for e in range(n):
                drop = (own if s == t else other) + 0.01 * rng.normal()
                rows.append(
                    {
                        "recipe": "r",
                        "k": 0.1,
                        "set": s,
                        "task": t,
                        "example": e,
                        "ld": 3.0 - drop,
                        "nll": 1.0 + drop,
                    }
                )
    return pd.DataFrame(rows)


def test_selectivity_ratio_by_hand_and_the_verdict():
    scores = selectivity_scores(_drops_frame(own=2.0, other=0.5), n_boot=200)
    ld = scores[scores.measure == "ld"].iloc[0]
    assert ld["own"] == pytest.approx(2.0, abs=0.01) and ld["other"] == pytest.approx(0.5, abs=0.01)
    assert ld["ratio"] == pytest.approx(4.0, rel=0.02)
    assert ld["ratio_low"] < ld["ratio"] < ld["ratio_high"] and ld["ratio_low"] > 3.5
    assert ld["dominance"] > 0.5  # specificity_scores of the same matrix agrees
    nll = scores[scores.measure == "nll"].iloc[0]
    assert nll["ratio"] == pytest.approx(ld["ratio"], rel=1e-6)
    overlap = pd.DataFrame({"recipe": ["r"], "k": [0.1], "ratio": [1.2]})
    curves = pd.DataFrame(
        {"recipe": "r", "task": "all", "measure": "ld", "condition": "keep", "k": [0.1],
         "f": [0.7], "f_low": [0.6], "f_high": [0.8]}
    )  # fmt: skip
    verdict = recipe_verdict(curves, overlap, scores)
    assert verdict.holds is True and "r at k=10.00%" in verdict.sentence
    unfaithful = curves.assign(f=0.2, f_low=0.1, f_high=0.3)  # interval below f_min: ruled out
    verdict = recipe_verdict(unfaithful, overlap, scores)
    assert verdict.holds is False and "ruled out by its intervals" in verdict.sentence
    wide = curves.assign(f=0.7, f_low=-2.0, f_high=3.0)  # specific, f's interval spans f_min
    verdict = recipe_verdict(wide, overlap, scores)
    assert verdict.holds is None and "too wide" in verdict.sentence
    assert verdict.data["undecided"] == [["r", 0.1]]
    flat = selectivity_scores(_drops_frame(own=0.5, other=0.5), n_boot=200)
    assert recipe_verdict(curves, overlap, flat).holds is False  # ratio about 1: ruled out
    overshoot = pd.concat([curves.assign(recipe="a", f=3.0), curves.assign(recipe="b", f=0.9)])
    two = pd.concat([flat.assign(recipe="a"), flat.assign(recipe="b")])
    both_overlap = pd.DataFrame({"recipe": ["a", "b"], "k": [0.1, 0.1], "ratio": [1.0, 1.0]})
    closest = recipe_verdict(overshoot, both_overlap, two).sentence.split("f closest to 1: ")[1]
    assert closest.startswith("b at")  # f = 0.9 is closer to MIB's ideal 1 than f = 3


def test_selectivity_runs_every_set_on_every_task(tiny_llama, default_tok, tasks):
    sizes = layout_of(tiny_llama, None)
    sets = {"r": {t: {0.5: _set(sizes, list(range(8)))} for t in tasks}}
    frame = selectivity(tiny_llama, default_tok, tasks, sets, ks=(0.5,), n_eval=3, progress=False)
    assert len(frame) == 3 * 3 + 3 * 3 * 3  # references + sets x tasks, 3 examples each
    ablated = frame[frame.recipe == "r"]
    assert (
        ablated.groupby("task")["ld"].mean()
        != frame[frame.recipe == "reference"].groupby("task")["ld"].mean()
    ).all()


def test_unknown_recipe_and_setting_are_refused():
    with pytest.raises(ValueError, match="unknown recipes"):
        recipe_sets({"stats": {}}, None, RecipeConfig(recipes=("paperr",)))
    with pytest.raises(TypeError, match="n_atribution"):
        RecipeConfig().replace(n_atribution=3)


# -- the record's command (benchmarks/model_or_recipe.py): its pure parts ----------------------


def _benchmark():
    import sys

    from scripts import ROOT, load_script

    sys.path.insert(0, str(ROOT / "benchmarks"))  # the script imports its sibling harness.py
    return load_script("benchmarks/model_or_recipe.py")


def test_record_sets_round_trip_and_parts_are_ordered(tmp_path):
    mor = _benchmark()
    sizes = {"layers.0.mlp.up": 10, "layers.0.mlp.down": 4}
    sets = {"paper": {"t": {0.1: _set(sizes, [1, 3]), 0.5: _set(sizes, [0, 1, 2, 3])}}}
    mor.save_sets({"linear": sets}, mor.path_of(tmp_path, "sets_t"))
    back = mor.load_sets(tmp_path, ["t"], "linear", sizes)
    assert back["paper"]["t"][0.1] == sets["paper"]["t"][0.1]
    assert back["paper"]["t"][0.5] == sets["paper"]["t"][0.5]
    parts = mor.parts_of(mor.FULL)
    assert len(parts) == len(set(parts)) == len({mor.path_of(tmp_path, p) for p in parts})
    assert all(p.startswith("sets_") for p in parts[: len(mor.FULL["tasks"])])
    assert len(mor.parts_of(mor.QUICK)) < len(parts)


def test_record_agreement_table_by_hand():
    mor = _benchmark()
    exact = np.array([0.1, -0.5, 0.9, 0.3, -0.2, 0.7, 0.0, 0.4])
    frame = pd.concat(
        [
            pd.DataFrame(
                {
                    "site": "s",
                    "baseline": "zero",
                    "unit": np.arange(8),
                    "method": method,
                    "signed": signed,
                    "score": np.abs(signed),
                    "exact_signed": exact,
                    "exact": np.abs(exact),
                }
            )
            for method, signed in (("same", exact), ("reversed", -exact))
        ]
    )
    table = mor.agreement_table(frame).set_index("method")
    assert table.loc["same", "spearman"] == pytest.approx(1.0)
    assert table.loc["reversed", "spearman"] == pytest.approx(-1.0)
    # magnitudes agree either way: the top quarter by |estimate| is the top quarter by |exact|
    assert table.loc["reversed", "top_quarter_jaccard"] == 1.0
    assert (table["units"] == 8).all()


@pytest.mark.slow  # the default model, minutes on 2 cores
def test_record_quick_run_writes_every_part_and_resumes(tmp_path):
    mor = _benchmark()
    mor.main(["--quick", "--out", str(tmp_path)])
    for part in mor.parts_of(mor.QUICK):
        assert mor.path_of(tmp_path, part).exists(), part
    report = (tmp_path / "summary" / "report.md").read_text()
    assert "Faithfulness f of the logit difference" in report
    times = (tmp_path / "times.json").read_text()
    mor.main(["--quick", "--out", str(tmp_path)])  # every part done: nothing reruns
    assert (tmp_path / "times.json").read_text() == times
    with pytest.raises(SystemExit, match="other sizes"):
        mor.main(["--out", str(tmp_path)])
