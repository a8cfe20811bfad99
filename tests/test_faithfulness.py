"""Faithfulness over k (experiments.faithfulness) on a tiny Llama over the default tokenizer:
f(all units) = 1 and f(empty) = 0 exactly, zeroing the full set is the all-zeroed reference,
the one-pass metrics equal scoring.contrast's logit differences and scoring.loss's NLLs, and
the areas (CPR, CMD) equal a trapezoid computed by hand on a frame built by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from taskneuron_utils import NeuronSet, layout_of
from taskneuron_utils.experiments.faithfulness import (
    FaithfulnessConfig,
    faithfulness,
    pair_metrics,
)
from taskneuron_utils.experiments.faithfulness_summary import (
    curve_area,
    faithfulness_areas,
    faithfulness_curves,
)
from taskneuron_utils.scoring.contrast import logit_differences
from taskneuron_utils.scoring.loss import answer_nlls
from taskneuron_utils.tasks import Task, encode
from tiny_models import adding_task


@pytest.fixture
def adding():
    return adding_task("adding", seed=1)


def test_pair_metrics_equal_the_reference_implementations(tiny_llama, default_tok, adding):
    data = adding.test
    got = pair_metrics(tiny_llama, default_tok, data, data.pairs(), batch_size=4)
    ld = logit_differences(tiny_llama, default_tok, data, data.pairs(), batch_size=3)
    nll_sum, n_tokens = answer_nlls(
        tiny_llama, default_tok, encode(default_tok, data), batch_size=5
    )
    np.testing.assert_allclose(got["ld"], ld.numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(got["nll_sum"], nll_sum.numpy(), rtol=1e-5)
    np.testing.assert_array_equal(got["n_tokens"], n_tokens.numpy())
    assert np.ptp(got["ld"]) > 0  # the examples differ: a real test of the alignment


def test_full_set_is_faithful_empty_set_is_not_and_zeroing_all_is_the_reference(
    tiny_llama, default_tok, adding
):
    sizes = layout_of(tiny_llama, None)
    everything = NeuronSet({s: torch.arange(n) for s, n in sizes.items()}, sizes)
    half = NeuronSet({s: torch.arange(n // 2) for s, n in sizes.items()}, sizes)
    sets = {"by_hand": {"adding": {0.0: NeuronSet({}, sizes), 0.5: half, 1.0: everything}}}
    config = FaithfulnessConfig(n_eval=5, n_reference=6, progress=False, batch_size=4)
    examples = faithfulness(tiny_llama, default_tok, {"adding": adding}, config, sets=sets)
    refs = examples[examples.recipe == "reference"].set_index(["condition", "example"])
    rows = examples[examples.recipe == "by_hand"].set_index(["k", "condition", "example"])
    for measure in ("ld", "nll"):
        # zeroing every analysed unit = the all_zero reference, bit for bit
        np.testing.assert_array_equal(
            rows.loc[(1.0, "ablate_zero"), measure].to_numpy(),
            refs.loc["all_zero", measure].to_numpy(),
        )
        # the whole model does differ from the ablated one (else f is undefined)
        assert not np.allclose(refs.loc["full", measure], refs.loc["empty", measure])
    curves = faithfulness_curves(examples, n_boot=200)
    keep = curves[(curves.condition == "keep") & (curves.task == "adding")].set_index(
        ["measure", "k"]
    )
    for measure in ("ld", "nll"):
        assert keep.loc[(measure, 1.0), "f"] == 1.0
        assert keep.loc[(measure, 0.0), "f"] == 0.0
        assert keep.loc[(measure, 1.0), "f_low"] == keep.loc[(measure, 1.0), "f_high"] == 1.0
        assert np.isfinite(keep.loc[(measure, 0.5), "f"])
        # the half set's interval is a real interval around its point
        low, high = keep.loc[(measure, 0.5), ["f_low", "f_high"]]
        assert low <= keep.loc[(measure, 0.5), "f"] <= high and low < high
    zero = curves[(curves.condition == "ablate_zero") & (curves.measure == "nll")].set_index("k")
    assert zero.loc[0.0, "value"] == pytest.approx(keep.loc[("nll", 1.0), "value"])


def _hand_frame(f_keep: list[float], ks: list[float], n: int = 4) -> pd.DataFrame:
    """A per-example frame with m(N) = 1, m(0) = 0 on every example and keep = f_keep[k]."""
    rows = []
    for example in range(n):
        rows += [
            {
                "recipe": "reference",
                "task": "t",
                "k": np.nan,
                "condition": c,
                "example": example,
                "ld": v,
            }
            for c, v in (("full", 1.0), ("empty", 0.0), ("all_zero", -1.0))
        ]
        rows += [
            {"recipe": "r", "task": "t", "k": k, "condition": "keep", "example": example, "ld": f}
            for k, f in zip(ks, f_keep)
        ]
    return pd.DataFrame(rows)


def test_areas_equal_the_trapezoid_by_hand():
    ks = [0.001, 0.01, 0.1]  # equally spaced in log10 k: t = 0, 0.5, 1
    f = [0.2, 0.6, 1.2]
    areas = faithfulness_areas(_hand_frame(f, ks), measures=("ld",), n_boot=100).iloc[0]
    cpr = 0.5 * (0.2 + 0.6) / 2 + 0.5 * (0.6 + 1.2) / 2  # = 0.65
    cmd = 0.5 * (0.8 + 0.4) / 2 + 0.5 * (0.4 + 0.2) / 2  # = 0.45
    assert areas["cpr"] == pytest.approx(cpr) and areas["cmd"] == pytest.approx(cmd)
    assert areas["cpr_low"] == pytest.approx(cpr)  # identical examples: a zero-width interval
    assert (areas["k_min"], areas["k_max"]) == (0.001, 0.1)
    assert curve_area([0.1, 0.001, 0.01], [1.2, 0.2, 0.6]) == pytest.approx(cpr)  # any order
    # unequal spacing: 0.001 -> 0.002 is log10(2)/2 of the way to 0.1
    t = np.log10(2) / 2
    assert curve_area([0.001, 0.002, 0.1], [0.0, 1.0, 1.0]) == pytest.approx(t / 2 + (1 - t))
    with pytest.raises(ValueError, match="two k > 0"):
        curve_area([0.0, 0.1], [0, 1])


def test_bad_input_is_refused_before_any_work(tiny_llama, default_tok, adding):
    sizes = layout_of(tiny_llama, None)
    plain = Task.from_records("plain", [{"input": str(i), "output": "x"} for i in range(10)])
    sets = {"r": {"plain": {0.1: NeuronSet({}, sizes)}}}
    with pytest.raises(ValueError, match="minimal pairs"):
        faithfulness(tiny_llama, default_tok, {"plain": plain}, sets=sets)
    with pytest.raises(KeyError, match="no sets for the tasks"):
        faithfulness(tiny_llama, default_tok, {"adding": adding}, sets=sets)
    with pytest.raises(TypeError, match="n_evl"):
        FaithfulnessConfig().replace(n_evl=3)


def test_all_tasks_f_is_pooled_over_task_means():
    """Task b's full model barely differs from its ablated one (m(N) - m(0) = 0.01): its own f is
    100, but the all-tasks f pools the means, (mean m(C) - mean m(0)) / (mean m(N) - mean m(0))."""
    a = _hand_frame([0.5, 0.5], [0.01, 0.1])
    b = _hand_frame([1.0, 1.0], [0.01, 0.1]).assign(task="b")
    b.loc[(b.recipe == "reference") & (b.condition == "full"), "ld"] = 0.01
    curves = faithfulness_curves(pd.concat([a, b]), measures=("ld",), n_boot=100)
    keep = curves[(curves.condition == "keep") & (curves.k == 0.01)].set_index("task")["f"]
    assert keep["t"] == pytest.approx(0.5) and keep["b"] == pytest.approx(100.0)
    assert keep["all"] == pytest.approx(0.75 / 0.505)
