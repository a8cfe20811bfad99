"""The verdict helpers read frames built by hand: each rule gives the verdict its docstring
states, on both sides of the line and on it, and the sentence quotes the frame's numbers."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from taskneuron_utils import experiments as ex


def intervals_frame(low, high, beyond=(True, False, True)):
    """table1_intervals-shaped rows: three tasks and the all-tasks row, measure nll."""
    rows = [
        {
            "category": "classification",
            "task": f"t{i}",
            "measure": "nll",
            "own_vs_random": 0.1,
            "own_vs_random_low": 0.05 if b else -0.1,
            "own_vs_random_high": 0.2,
            "beyond_random": b,
            "beyond_other": False,
        }
        for i, b in enumerate(beyond)
    ]
    rows.append(
        {
            "category": "classification",
            "task": "all",
            "measure": "nll",
            "own_vs_random": (low + high) / 2,
            "own_vs_random_low": low,
            "own_vs_random_high": high,
            "beyond_random": low > 0,
            "beyond_other": False,
        }
    )
    return pd.DataFrame(rows)


@pytest.mark.parametrize(
    ("low", "high", "holds"), [(0.1, 0.5, True), (-0.5, -0.1, False), (-0.1, 0.3, None)]
)
def test_table1_verdict_reads_the_side_of_the_all_tasks_interval(low, high, holds):
    verdict = ex.table1_verdict(intervals_frame(low, high))
    assert verdict.holds is holds
    assert "on 2 of 3 tasks" in verdict.sentence
    assert f"{(low + high) / 2:+.2f} [{low:+.2f}, {high:+.2f}]" in verdict.sentence
    assert verdict.data["beyond_random"] == 2 and verdict.paper.startswith("Table 1")


def test_table1_verdict_on_the_score_measure_reads_the_other_side():
    frame = intervals_frame(-0.5, -0.1).assign(measure="score")
    assert ex.table1_verdict(frame, measure="score").holds is True  # lower score: own hurts
    with pytest.raises(ValueError, match="no rows of measure .nll."):
        ex.table1_verdict(frame)


def specificity_frame(dominance, low, high, per_task=(0.2, -0.1, 0.3, -0.2)):
    rows = [{"task": f"t{i}", "value": "nll", "dominance": d} for i, d in enumerate(per_task)]
    rows.append(
        {
            "task": "mean",
            "value": "nll",
            "dominance": dominance,
            "dominance_low": low,
            "dominance_high": high,
        }
    )
    return pd.DataFrame(rows)


def test_specificity_verdict_states_diagonal_dominance_and_its_reading():
    verdict = ex.specificity_verdict(specificity_frame(-0.10, -0.2, 0.0))
    assert verdict.holds is None
    assert "diagonal dominance -0.10 [-0.20, +0.00] (nll)" in verdict.sentence
    assert "on 2 of 4 tasks: undecided" in verdict.sentence
    assert ex.specificity_verdict(specificity_frame(-0.3, -0.5, -0.1)).holds is False
    assert "not task-specific" in str(ex.specificity_verdict(specificity_frame(-0.3, -0.5, -0.1)))
    assert ex.specificity_verdict(specificity_frame(0.3, 0.1, 0.5)).holds is True


def test_table2_verdict_bootstraps_the_per_task_difference():
    rows = []
    for i, (own, rand) in enumerate([(0.9, 0.5), (0.8, 0.6), (0.7, 0.4), (0.95, 0.7)]):
        rows += [
            {"task": f"t{i}", "method": "neurons", "score": own},
            {"task": f"t{i}", "method": "random", "score": rand},
            {"task": f"t{i}", "method": "none", "score": 0.3},
        ]
    verdict = ex.table2_verdict(pd.DataFrame(rows))
    diff = np.array([40, 20, 30, 25], dtype=float)
    assert verdict.holds is True
    assert verdict.data["difference"][0] == pytest.approx(diff.mean())
    low, high = verdict.data["difference"][1:]
    assert diff.min() <= low < diff.mean() < high <= diff.max()
    assert "better on 4 of 4 tasks (untrained 30.0)" in verdict.sentence
    # Identical training gives no difference: undecided, never "supported".
    same = pd.DataFrame(rows).assign(score=0.5)
    assert ex.table2_verdict(same).holds is None


def test_generalization_verdict_reads_the_correlation_interval():
    frame = pd.DataFrame(
        [
            {
                "condition": "all",
                "x": "overlap",
                "y": "gain",
                "n": 12,
                "pearson": 0.4,
                "pearson_low": -0.2,
                "pearson_high": 0.8,
            },
            {
                "condition": "task",
                "x": "overlap",
                "y": "gain",
                "n": 6,
                "pearson": 0.9,
                "pearson_low": 0.5,
                "pearson_high": 0.99,
            },
        ]
    )
    with pytest.raises(ValueError, match=r"2 rows are correlation rows: .*\['condition'"):
        ex.generalization_verdict(frame)
    verdict = ex.generalization_verdict(frame, condition="all")
    assert verdict.holds is None and "over 12 points" in verdict.sentence
    assert ex.generalization_verdict(frame, condition="task").holds is True
    assert "+0.40 [-0.20, +0.80]" in verdict.sentence


def test_continual_verdict_over_orders_and_for_one_order():
    rows = [
        {"method": m, "order": o, "CL": cl}
        for o, (seq, ncft) in {"o1": (40, 70), "o2": (45, 68), "o3": (38, 72)}.items()
        for m, cl in (("seqft", seq), ("ncft", ncft))
    ]
    verdict = ex.continual_verdict(pd.DataFrame(rows))
    assert verdict.holds is True and "+29.0 points" in verdict.sentence
    one = {"seqft": {"method": "seqft", "CL": 50.0}, "ncft": {"method": "ncft", "CL": 52.0}}
    assert ex.continual_verdict(one).holds is None  # 2 points on one order: cannot decide
    with pytest.raises(ValueError, match="lack 'wncft'"):
        ex.continual_verdict(one, method="wncft")


def test_agreement_verdict_names_the_best_method():
    units = np.arange(10.0)
    frame = pd.concat(
        [
            pd.DataFrame({"method": "grad_x_act", "score": units, "exact": units}),
            pd.DataFrame({"method": "integrated_gradients", "score": units[::-1], "exact": units}),
        ]
    )
    verdict = ex.agreement_verdict(frame)
    assert verdict.holds is True and verdict.data["best"] == "grad_x_act"
    assert "grad_x_act 1.00, integrated_gradients -1.00" in verdict.sentence
    assert verdict._repr_markdown_().startswith("**What we found** (supported)")


RECORD = Path(__file__).resolve().parents[1] / "benchmarks" / "results" / "replication"


def test_the_verdicts_on_the_committed_record():
    """Read off the replication record (docs/replication.md's frames), the verdicts state what
    the record says in words: no shared-core specificity at k = 10%, no link between overlap and
    gain, NCFT ahead of sequential fine-tuning."""
    scores = pd.read_csv(RECORD / "specific_scores.csv")
    top = ex.specificity_verdict(scores, family="top_k", k=0.1, model="multitask linear k=0.1")
    assert top.holds is not True, top
    correlations = pd.read_csv(RECORD / "gen_sweep_correlations_gain.csv")
    overlap = ex.generalization_verdict(correlations, x="overlap", subset="task+random")
    assert overlap.holds is None and "+0.00 [-0.19, +0.19] over 96 points" in overlap.sentence
    runs = pd.read_csv(RECORD / "continual.csv")
    continual = ex.continual_verdict(runs, tasks=4)
    assert continual.data["orders"] == 3
    finetune = pd.read_csv(RECORD / "finetune.csv")
    assert ex.table2_verdict(finetune).data["tasks"] == finetune["task"].nunique()
    intervals = pd.read_csv(RECORD / "table1_seeds_linear_intervals.csv")
    assert ex.table1_verdict(intervals, model=intervals["model"].iloc[0]).data["tasks"] == 6


DOCS = Path(__file__).resolve().parents[1]


def _plain(text: str) -> str:
    """Markdown to the words a reader sees: emphasis and code marks kept out, spaces collapsed."""
    return " ".join(text.replace("**", "").replace("*", "").split())


@pytest.mark.parametrize("key", sorted(ex.verdicts.RECORDS))
def test_each_record_quote_is_in_its_document_under_its_section(key):
    page, section, quote = ex.verdicts.RECORDS[key]
    text = (DOCS / page).read_text()
    headings = [
        line.lstrip("#").strip().replace("`", "")
        for line in text.splitlines()
        if line.startswith("#")
    ]
    assert section in headings, f"{page} has no section {section!r}"
    assert _plain(quote) in _plain(text), f"{key}: the quote is not in {page}"


def test_anchor_is_the_documentation_sites_slug():
    assert ex.verdicts.anchor("What holds, what does not") == "what-holds-what-does-not"
    assert ex.verdicts.anchor("Results (default model, 2026-11-28)") == (
        "results-default-model-2026-11-28"
    )


def test_an_undecided_verdict_quotes_the_record_and_a_decided_one_does_not():
    undecided = ex.specificity_verdict(specificity_frame(-0.10, -0.2, 0.0))
    assert "This sample is too small to decide; the record (docs/replication.md" in str(undecided)
    assert "The top-k sets are task-specific (others hurt less): no" in str(undecided)
    assert "(../docs/replication.md#what-holds-what-does-not)" in undecided._repr_markdown_()
    decided = ex.specificity_verdict(specificity_frame(0.3, 0.1, 0.5))
    assert "the record" not in str(decided)
    with pytest.raises(ValueError, match="record must be one of"):
        ex.generalization_verdict(pd.DataFrame(), record="nope")


def test_conditions_verdict_states_the_numbers_and_never_decides():
    scores = pd.DataFrame(
        [
            {"condition": "all on", "neurons_off": 0, "score": 0.94, "nll": 0.2, "n": 32},
            {"condition": "task off", "neurons_off": 1080, "score": 0.5, "nll": 6.0, "n": 32},
            {"condition": "random off", "neurons_off": 1080, "score": 0.91, "nll": 0.4, "n": 32},
        ]
    )
    verdict = ex.verdicts.conditions_verdict(scores)
    assert verdict.holds is None and verdict.record == "table1"
    assert "task off costs +41 points and +5.60 nats more than random off" in verdict.sentence
    with pytest.raises(ValueError, match=r"lack \['random off'\]"):
        ex.verdicts.conditions_verdict(scores.iloc[:2])


def deactivation_rows(own_nll, random_nll=(5.0, 6.0, 7.0)):
    rows = []
    for task, own in zip(("t0", "t1"), own_nll):
        base = {"model": "m", "task": task, "category": "classification", "metric": "accuracy"}
        rows.append(
            {**base, "condition": "none", "seed": -1, "n_neurons": 0, "score": 0.9, "nll": 0.1}
        )
        rows.append(
            {**base, "condition": "own", "seed": -1, "n_neurons": 10, "score": 0.5, "nll": own}
        )
        rows += [
            {**base, "condition": "random", "seed": s, "n_neurons": 10, "score": 0.8, "nll": nll}
            for s, nll in enumerate(random_nll)
        ]
    return pd.DataFrame(rows)


def test_deactivation_verdict_counts_tasks_beyond_random():
    # random mean 6, std 1: beyond random means an own NLL above 8
    verdict = ex.verdicts.deactivation_verdict(deactivation_rows((9.0, 12.0)))
    assert verdict.holds is True and "on the answer NLL on 2 of 2 tasks" in verdict.sentence
    assert "on the score on 2 of 2" in verdict.sentence and "t0 +3.0, t1 +6.0" in verdict.sentence
    assert ex.verdicts.deactivation_verdict(deactivation_rows((9.0, 7.0))).holds is None
    assert ex.verdicts.deactivation_verdict(deactivation_rows((2.0, 3.0))).holds is False


def test_overlap_verdict_separates_same_and_cross_family_pairs():
    tasks = ["a1", "a2", "b"]
    families = {"a1": "a", "a2": "a", "b": "b"}
    matrix = pd.DataFrame([[1, 0.4, 0.2], [0.4, 1, 0.3], [0.2, 0.3, 1]], index=tasks, columns=tasks)
    verdict = ex.verdicts.overlap_verdict(matrix, families, k=0.1)
    assert verdict.holds is True
    assert "same-family pairs 0.400 (1 pairs), of cross-family pairs 0.250 (2 pairs)" in (
        verdict.sentence
    )
    assert "two random sets: 0.053" in verdict.sentence
    matrix.loc["a1", "a2"] = matrix.loc["a2", "a1"] = 0.25
    assert ex.verdicts.overlap_verdict(matrix, families).holds is None
    with pytest.raises(ValueError, match=r"no family for \['b'\]"):
        ex.verdicts.overlap_verdict(matrix, {"a1": "a", "a2": "a"})


def test_table2_verdict_on_one_task_has_no_interval():
    rows = [
        {"task": "t", "method": "neurons", "score": 0.96},
        {"task": "t", "method": "random", "score": 0.92},
    ]
    verdict = ex.table2_verdict(pd.DataFrame(rows))
    assert verdict.holds is None and "+4.0 (one task: no interval) points" in verdict.sentence
    assert "the record" in str(verdict) and "nan" not in str(verdict)
