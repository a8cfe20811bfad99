"""Every notebook runs top to bottom on a real Jupyter kernel and draws its figures; the committed
notebooks carry the outputs of such a run (``python notebooks/run_all.py``) and stay small."""

import json

import pytest

from test_browser import find_chromium, run_all

NOTEBOOKS = run_all.numbered()


def _figures(notebook) -> int:
    return sum(
        "image/png" in out.get("data", {})
        for cell in notebook["cells"]
        if cell["cell_type"] == "code"
        for out in cell["outputs"]
    )


@pytest.mark.slow  # real model, real kernel: not in the fast loop (-m "not slow")
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs(path, tmp_path):
    if path.name == "00_tour.ipynb" and find_chromium():
        pytest.skip("tests/test_browser.py runs the tour in JupyterLab")
    notebook = run_all.execute(path, tmp_path)  # a clean copy: the committed outputs are cleared
    outputs = [out for cell in notebook.cells if cell.cell_type == "code" for out in cell.outputs]
    assert not [out for out in outputs if out.output_type == "error"]
    assert _figures(notebook) >= 3, f"{path.name} drew {_figures(notebook)} figures"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_committed_notebook_shows_its_outputs(path):
    """Readable without running: every code cell ran (in order, no error) and the figures are
    there, in at most 1.5 MB."""
    assert path.stat().st_size <= run_all.MAX_BYTES
    notebook = json.loads(path.read_text())
    code = [cell for cell in notebook["cells"] if cell["cell_type"] == "code"]
    counts = [cell["execution_count"] for cell in code]
    assert counts == list(range(1, len(code) + 1)), (
        f"{path.name}: run `python notebooks/run_all.py`"
    )
    assert not [out for cell in code for out in cell["outputs"] if out["output_type"] == "error"]
    assert _figures(notebook) >= 3


# Every numbered notebook is in the course format (a header with objectives and the recorded time).
COURSE = NOTEBOOKS


@pytest.mark.parametrize("path", COURSE, ids=[p.stem for p in COURSE])
def test_header_states_the_time_timings_json_recorded(path):
    """The header's time is the recorded run's (run_all writes both), so it cannot go stale."""
    entry = json.loads(run_all.TIMINGS.read_text())[path.name]
    header = "".join(json.loads(path.read_text())["cells"][0]["source"])
    assert run_all.time_line(entry["seconds"], entry["cores"], entry.get("load")) in header


def test_stamp_time_rewrites_the_time_line_only():
    import nbformat

    notebook = nbformat.v4.new_notebook(
        cells=[nbformat.v4.new_markdown_cell("# 09\n\n**Time:** stale.\n**Objectives:** x")]
    )
    run_all.stamp_time(notebook, 95.0, 2)
    assert notebook.cells[0].source == (f"# 09\n\n{run_all.time_line(95.0, 2)}\n**Objectives:** x")
    assert "about 2 min (95 s measured on 2 CPU cores" in run_all.time_line(95.0, 2)
    assert "95 s measured on 2 CPU cores at load average 7.5," in run_all.time_line(95.0, 2, 7.5)


def test_update_outline_rewrites_the_time_column_and_the_total(tmp_path, monkeypatch):
    outline = tmp_path / "notebooks.md"
    outline.write_text(
        "| [00](notebooks/00_a.ipynb) | x | 1 s |\n| [01](notebooks/01_b.ipynb) | y | 2 s |\n"
        "See [07](notebooks/07_c.ipynb); the course takes 0.1 minutes in all.\n"
    )
    monkeypatch.setattr(run_all, "OUTLINE", outline)
    run_all.update_outline(
        {"00_a.ipynb": {"seconds": 60.0, "load": 3.0}, "01_b.ipynb": {"seconds": 90.4}}
    )
    assert outline.read_text() == (
        "| [00](notebooks/00_a.ipynb) | x | 60 s (load 3.0) |\n"
        "| [01](notebooks/01_b.ipynb) | y | 90 s |\n"
        "See [07](notebooks/07_c.ipynb); the course takes 2.5 minutes in all.\n"
    )


def test_run_all_refuses_a_notebook_over_the_limit(tmp_path):
    import nbformat

    notebook = nbformat.v4.new_notebook(
        cells=[nbformat.v4.new_markdown_cell("x" * run_all.MAX_BYTES)]
    )
    target = tmp_path / "big.ipynb"
    target.write_text("kept")
    with pytest.raises(ValueError, match="over the 1.5 MB limit"):
        run_all.save(notebook, target)
    assert target.read_text() == "kept"
