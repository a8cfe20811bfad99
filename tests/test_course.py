"""The course's checks: each accepts the reference solution, rejects a wrong answer with one
line naming the difference (and the known mistake it matches); each reference agrees with the
package's own implementation of the same quantity; the notebooks show the references' sources."""

import inspect
import json
from pathlib import Path

import numpy as np
import pandas as pd
import torch

import taskneuron_utils as tn
from taskneuron_utils import course
from taskneuron_utils import experiments as ex
from taskneuron_utils.course import solutions

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


def test_each_check_accepts_the_reference():
    for check, reference in [
        (course.check_jaccard, solutions.jaccard),
        (course.check_relevance, solutions.relevance),
        (course.check_top_k, solutions.top_k),
        (course.check_dominance, solutions.dominance),
        (course.check_cl_metrics, solutions.cl_metrics),
    ]:
        result = check(reference)
        assert result.passed and result.message.startswith("✓"), result
        assert "\n" not in result.message


def test_jaccard_check_names_the_overlap_coefficient():
    result = course.check_jaccard(lambda a, b: len(a & b) / min(len(a), len(b)) if a and b else 0)
    assert not result
    assert "you return 0.4167, the reference 0.2273" in result.message
    assert "overlap coefficient" in result.message and "\n" not in result.message


def test_relevance_check_names_the_cancelling_signs():
    result = course.check_relevance(lambda a, g: (g * a).sum(1).mean(0).abs())
    assert not result and "|mean over examples|" in result.message
    assert "at neuron" in result.message
    shape = course.check_relevance(lambda a, g: (g * a).sum(1).abs())
    assert "your shape is (4, 5), the reference's (5,)" in shape.message


def test_top_k_check_names_flooring():
    def floored(scores, k):
        return {s: v.argsort(descending=True)[: int(k * len(v))] for s, v in scores.items()}

    result = course.check_top_k(floored)
    assert not result
    assert "at layers.0.mlp.up you keep 153 neurons, the reference 154" in result.message
    assert "int(k * n)" in result.message


def test_dominance_check_names_the_row_for_the_column():
    result = course.check_dominance(lambda harm: solutions.dominance(harm.T))
    assert not result and "selectivity" in result.message and "for " in result.message


def test_cl_metrics_check_names_the_diagonal_and_reports_a_crash():
    result = course.check_cl_metrics(
        lambda A: {**solutions.cl_metrics(A), "CL": float(np.diag(A).mean())}
    )
    assert not result and result.message.startswith("✗ cl_metrics differs on A of shape (4, 4): CL")
    assert "the last row" in result.message
    crashed = course.check_cl_metrics(lambda A: A["CL"])
    assert not crashed and "raised IndexError" in crashed.message
    assert not course.check_cl_metrics("not a function")


def test_the_references_agree_with_the_package():
    generator = torch.Generator().manual_seed(1)
    scores = {"a": torch.rand(1536, generator=generator), "b": torch.rand(576, generator=generator)}
    sums = {site: values.double() * 4 for site, values in scores.items()}
    package_set = tn.Relevance(sums, sums, n_examples=4, n_tokens=8, provenance={}).top_k(0.1)
    mine = solutions.top_k(scores, 0.1)
    assert {s: len(v) for s, v in mine.items()} == {"a": 154, "b": 58}  # round(k * n)
    assert all(torch.equal(mine[site], package_set.indices[site]) for site in scores)

    tasks = ["x", "y", "z"]
    harm = pd.DataFrame(np.random.default_rng(0).uniform(1, 9, (3, 3)), index=tasks, columns=tasks)
    package = ex.specificity_scores(harm).set_index("task")["dominance"]
    assert np.allclose(solutions.dominance(harm)[tasks], package[tasks])

    A = np.tril(np.random.default_rng(1).uniform(0.1, 1, (4, 4)))
    metrics = ex.cl_metrics(A)
    assert solutions.cl_metrics(A) == {key: metrics[key] for key in ("CL", "FG", "BWT")}

    a = {("layers.0.mlp.up", i) for i in range(10)}
    b = {("layers.0.mlp.up", i) for i in range(5, 20)}
    assert solutions.jaccard(a, b) == 5 / 20 and solutions.jaccard(set(), set()) == 0.0

    act, grad = torch.randn(3, 4, 6, generator=generator), torch.randn(3, 4, 6, generator=generator)
    r = torch.stack([-(grad[i] * act[i]).sum(0) for i in range(3)])  # the Taylor r_j per example
    assert torch.allclose(solutions.relevance(act, grad), r.abs().mean(0))


def test_the_notebooks_show_the_reference_sources():
    """A folded solution that names a reference shows its source word for word, so the text
    cannot drift from the function the solution cell runs."""
    text = "\n".join(
        "".join(cell["source"])
        for path in sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
        for cell in json.loads(path.read_text())["cells"]
    )
    for name in ("jaccard", "relevance", "top_k", "dominance", "cl_metrics"):
        assert f"course.check_{name}" in text, f"no notebook calls course.check_{name}"
        assert inspect.getsource(getattr(solutions, name)) in text, f"{name}'s source"


def test_the_course_outline_quotes_the_recorded_times():
    """docs/notebooks.md's time column is timings.json's (regenerate the table after a run)."""
    timings = json.loads((NOTEBOOKS / "timings.json").read_text())
    outline = (NOTEBOOKS.parent / "docs" / "notebooks.md").read_text()
    for path in sorted(NOTEBOOKS.glob("0[0-6]_*.ipynb")):  # 07 comes after the course
        row = next(line for line in outline.splitlines() if f"(notebooks/{path.name})" in line)
        assert f"| {timings[path.name]['seconds']:.0f} s" in row, row
