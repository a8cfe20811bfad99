"""tn.method_agreement and its scatter against hand-written ablations, and the record's script
(benchmarks/attribution_methods.py) end to end on a tiny model."""

import json

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib.collections import PathCollection  # noqa: E402
from scipy.stats import spearmanr  # noqa: E402

import taskneuron_utils as tn  # noqa: E402
from taskneuron_utils import plots  # noqa: E402
from taskneuron_utils.scoring.loss import answer_losses  # noqa: E402
from taskneuron_utils.tasks import collate, encode  # noqa: E402
from test_attribution import exact_ablation  # noqa: E402
from tiny_models import tiny_model  # noqa: E402


@pytest.fixture
def model(default_tok):
    return tiny_model("llama", seed=1, vocab_size=len(default_tok))


def test_method_agreement_against_hand_written_ablation_and_attribute(model, default_tok, toy_task):
    tok, data, site = default_tok, toy_task.train[:5], "layers.1.mlp.act"
    frame = tn.method_agreement(
        model,
        tok,
        data,
        site,
        n_units=10,
        seed=3,
        steps=4,
        methods=("grad_x_act", "integrated_gradients", "activation"),
    )
    assert list(frame.method.unique()) == ["grad_x_act", "integrated_gradients", "activation"]
    units = frame[frame.method == "grad_x_act"].unit.to_numpy()
    assert len(set(units)) == 10 and list(units) == sorted(units)
    batch = collate(encode(tok, data), tok.pad_token_id)
    with torch.no_grad():
        base, _ = answer_losses(model, batch)
    the_site = tn.core.site_map(model, "all")[site]
    exact = torch.stack([exact_ablation(model, batch, base, the_site, int(j)) for j in units], 1)
    for method in ("grad_x_act", "integrated_gradients"):
        rows = frame[frame.method == method]
        torch.testing.assert_close(
            torch.tensor(rows.exact_signed.to_numpy()), exact.mean(0), rtol=1e-4, atol=1e-7
        )
        torch.testing.assert_close(
            torch.tensor(rows.exact.to_numpy()), exact.abs().mean(0).float(), rtol=1e-4, atol=1e-7
        )
    options = {"grad_x_act": {}, "integrated_gradients": {"steps": 4, "neurons": {site: [0]}}}
    for method, extra in options.items():
        rel = tn.attribute(model, tok, data, kinds="act", method=method, progress=False, **extra)
        rows = frame[frame.method == method]
        torch.testing.assert_close(
            torch.tensor(rows.score.to_numpy().copy()), rel.scores[site][units]
        )
    assert frame[frame.method == "activation"].signed.isna().all()


def test_method_agreement_bad_input_is_a_one_line_error(model, default_tok, toy_task):
    data = toy_task.train[:2]
    cases = [
        ({"site": "layers.9.mlp.act"}, "no site 'layers.9.mlp.act'"),
        ({"site": "layers.0.mlp.up", "n_units": 0}, "n_units must be in 1..64"),
        ({"site": "layers.0.mlp.up", "methods": ("ablation",)}, "leave 'ablation' out"),
    ]
    for options, message in cases:
        with pytest.raises(ValueError, match=message) as error:
            tn.method_agreement(model, default_tok, data, **options)
        assert "\n" not in str(error.value)


def test_plot_method_agreement_draws_each_method_with_its_spearman(model, default_tok, toy_task):
    frame = tn.method_agreement(
        model,
        default_tok,
        toy_task.train[:4],
        "layers.0.mlp.up",
        n_units=12,
        steps=2,
        methods=("grad_x_act", "attribution_patching", "activation"),
    )
    fig, ax = plt.subplots()
    assert plots.plot_method_agreement(frame, ax=ax) is ax
    points = [c for c in ax.collections if isinstance(c, PathCollection)]
    assert len(points) == 2  # activation has no sign: left out of the signed scatter
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    gxa = frame[frame.method == "grad_x_act"]
    assert labels[0] == (
        f"grad_x_act (Spearman {spearmanr(gxa.signed, gxa.exact_signed).statistic:.2f})"
    )
    magnitude = plots.plot_method_agreement(frame, value="score")
    assert len([c for c in magnitude.collections if isinstance(c, PathCollection)]) == 3
    with pytest.raises(ValueError, match="value must be 'signed' or 'score'"):
        plots.plot_method_agreement(frame, value="rank")
    plt.close("all")


def test_the_record_script_end_to_end_on_a_tiny_model(model, default_tok, tmp_path, monkeypatch):
    """Every part of benchmarks/attribution_methods.py on a tiny model and 2 examples: the
    files, the table-1 conditions and the summary's sections."""
    from pathlib import Path

    from scripts import load_script

    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[1] / "benchmarks"))
    bench = load_script("benchmarks/attribution_methods.py")
    monkeypatch.setattr(
        bench,
        "SITES",
        {
            "linear": ("layers.0.mlp.gate", "layers.1.mlp.up", "layers.1.mlp.down"),
            "act": ("layers.0.mlp.act", "layers.1.mlp.act", "layers.1.mlp.act"),
        },
    )
    tok, tasks = default_tok, tn.load_tasks(list(bench.TASKS))
    sizes = {
        "detect_examples": 2,
        "agree_examples": 1,
        "neurons": 6,
        "eval_examples": 2,
        "seeds": 2,
        "steps": 2,
        "ig_sites": "middle",
    }
    stats = bench.reference_stats(model, tok, tasks)
    bench.run_relevance(model, tok, tasks, stats, sizes, tmp_path)
    bench.write_csv(bench.run_overlap(model, tmp_path), tmp_path / "overlap.csv")
    frame, info = bench.run_agreement(model, tok, tasks, stats, sizes, "linear")
    bench.write_json(tmp_path / "agreement_linear.json", info)
    bench.write_csv(frame, tmp_path / "agreement_linear.csv")
    rows = bench.run_table1(model, tok, tasks, stats, sizes, "table1_act_k10_mean", tmp_path)
    bench.write_csv(rows, tmp_path / "table1_act_k10_mean.csv.gz")
    assert set(info["seconds"]) == {
        "grad_x_act",
        "atp_mean",
        "activation",
        "firing_rate",
        "exact_zero",
        "exact_mean",
        "ig:layers.1.mlp.up",
    }
    assert set(frame[frame.site == "layers.1.mlp.up"].method) > {"integrated_gradients"}
    own = rows[(rows.family == "grad_x_act") & (rows.condition == "own")]
    assert sorted(own.task.unique()) == sorted(bench.TASKS) and (own.deactivated == own.task).all()
    per_task = rows[rows.family == "atp_mean"].groupby("task").condition.value_counts()
    assert per_task.xs("random", level="condition").eq(2 * 2).all()  # 2 seeds x 2 examples
    others = per_task.xs("other:addition", level="condition")
    assert "addition" not in others.index and len(others) == 5 and others.eq(2).all()
    bench.summarize(tmp_path, sizes)
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert {
        "spearman_pooled_magnitude",
        "costs",
        "ig_completeness",
        "table1_all_tasks_nll",
        "specificity_mean_nll",
    } <= set(summary)
    assert {row["family"] for row in summary["specificity_mean_nll"]} == set(bench.SET_METHODS)
    assert summary["costs"]["linear"]["examples"] == len(bench.TASKS)
