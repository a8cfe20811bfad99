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
