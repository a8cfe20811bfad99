"""``taskneurons notebooks DIR``: the course copied into a learner's folder, never over their
edits; untouched copies refreshed; a bad DIR refused in one line. Fast: files only, no model.
(tests/test_wheel.py copies the course from an installed wheel and executes notebook 00.)"""

from __future__ import annotations

import json

import nbformat
import pytest

from taskneuron_utils import cli
from taskneuron_utils.io.course_files import (
    MANIFEST,
    TABLE_END,
    TABLE_START,
    copy_course,
    course_dir,
    course_files,
    course_table,
    with_course_table,
)


def run(capsys, *args) -> tuple[int, str, str]:
    code = cli.main(["notebooks", *args])
    out, err = capsys.readouterr()
    return code, out, err


def notebook(path, title: str, text: str = "") -> None:
    cells = [nbformat.v4.new_markdown_cell(f"# {title}"), nbformat.v4.new_code_cell(text)]
    nbformat.write(nbformat.v4.new_notebook(cells=cells), path)


@pytest.fixture
def course(tmp_path):
    """A small course of our own: three notebooks, timings for two of them."""
    folder = tmp_path / "shipped"
    folder.mkdir()
    notebook(folder / "00_tour.ipynb", "00 · A tour", "x = 1")
    notebook(folder / "01_detecting_task_neurons.ipynb", "01 · Detecting", "y = 2")
    notebook(folder / "07_model_or_recipe.ipynb", "07 · Your model, or your recipe", "z = 3")
    timings = {
        "00_tour.ipynb": {"seconds": 90.0, "cores": 2, "date": "2026-12-07"},
        "01_detecting_task_neurons.ipynb": {"seconds": 60.0, "cores": 2, "date": "2026-12-07"},
    }
    (folder / "timings.json").write_text(json.dumps(timings))
    return folder


def test_the_command_copies_the_shipped_course_and_says_how_to_open_it(capsys, tmp_path):
    dest = tmp_path / "my course"
    code, out, err = run(capsys, str(dest))
    assert code == 0, err
    shipped = course_files()
    assert sorted(p.name for p in dest.iterdir() if p.name != MANIFEST) == sorted(
        p.name for p in shipped
    )
    for path in shipped:
        assert (dest / path.name).read_bytes() == path.read_bytes()
    assert f"copied {len(shipped)} files" in out
    assert f"jupyter lab '{dest}'" in out  # quoted: the folder's name has a space
    assert "skipped" not in out


def test_an_edited_copy_is_kept_and_reported_in_one_line(capsys, tmp_path):
    dest = tmp_path / "course"
    assert run(capsys, str(dest))[0] == 0
    first = sorted(dest.glob("*.ipynb"))[0]
    edited = first.read_text() + "\n"  # as a learner's save would change it
    first.write_text(edited)
    code, out, _ = run(capsys, str(dest))
    assert code == 0
    assert first.read_text() == edited
    skipped = [line for line in out.splitlines() if line.startswith("skipped")]
    assert skipped == [
        f"skipped {first.name}: changed since it was copied; kept (rename it to get the shipped one)"
    ]


def test_untouched_copies_are_refreshed_and_foreign_files_kept(course, tmp_path):
    dest = tmp_path / "course"
    report = copy_course(dest, source=course)
    assert report.copied == (
        "00_tour.ipynb",
        "01_detecting_task_neurons.ipynb",
        "07_model_or_recipe.ipynb",
        "timings.json",
    )
    # The learner edits 01; a new version of the package changes 00 and 01.
    (dest / "01_detecting_task_neurons.ipynb").write_text("my notes")
    notebook(course / "00_tour.ipynb", "00 · A tour", "x = 10")
    notebook(course / "01_detecting_task_neurons.ipynb", "01 · Detecting", "y = 20")
    (dest / "07_model_or_recipe.ipynb").unlink()  # deleted: copied again
    report = copy_course(dest, source=course)
    assert report.refreshed == ("00_tour.ipynb",)
    assert report.copied == ("07_model_or_recipe.ipynb",)
    assert report.current == ("timings.json",)
    assert [name for name, _ in report.skipped] == ["01_detecting_task_neurons.ipynb"]
    assert (dest / "00_tour.ipynb").read_bytes() == (course / "00_tour.ipynb").read_bytes()
    assert (dest / "01_detecting_task_neurons.ipynb").read_text() == "my notes"
    # Still the learner's on the next run, and a file this command never wrote is kept too.
    other = tmp_path / "other"
    other.mkdir()
    (other / "00_tour.ipynb").write_text("someone else's")
    report = copy_course(other, source=course)
    assert report.skipped == (
        (
            "00_tour.ipynb",
            "differs from the shipped file and was not copied by this command; kept "
            "(rename it to get the shipped one)",
        ),
    )
    assert (other / "00_tour.ipynb").read_text() == "someone else's"
    again = copy_course(dest, source=course)
    assert [name for name, _ in again.skipped] == ["01_detecting_task_neurons.ipynb"]
    assert again.refreshed == again.copied == ()


@pytest.mark.parametrize("where", ["a file", "below a file", "the course itself"])
def test_a_bad_dir_is_refused_in_one_line_before_anything_is_written(capsys, tmp_path, where):
    a_file = tmp_path / "notes.txt"
    a_file.write_text("mine")
    target = {
        "a file": a_file,
        "below a file": a_file / "course",
        "the course itself": course_dir(),
    }[where]
    code, out, err = run(capsys, str(target))
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and err.startswith("taskneurons notebooks: error:")
    assert str(target) in err
    assert a_file.read_text() == "mine"
    assert not (course_dir() / MANIFEST).exists()  # nothing written into the course itself


def test_the_table_lists_the_notebooks_that_exist_with_their_measured_minutes(course):
    table = course_table(course)
    rows = [line for line in table.splitlines() if line.startswith("| [")]
    assert [row.split("]")[0][3:] for row in rows] == [
        "00_tour",
        "01_detecting_task_neurons",
        "07_model_or_recipe",
    ]
    assert rows[0].endswith("| 1.5 |") and rows[1].endswith("| 1.0 |")
    # No description known for 07: its own title, and no time until run_all.py measured it.
    assert rows[2].endswith("| Your model, or your recipe | not measured |")
    assert "(notebooks/00_tour.ipynb)" in rows[0]
    assert "In all 2.5 minutes for 2 of 3 notebooks" in table


def test_the_table_goes_between_the_markers_and_nowhere_else():
    text = f"# Title\n\n{TABLE_START}\nold table\n{TABLE_END}\n\nafter\n"
    new = with_course_table(text, "| new |\n")
    assert new == f"# Title\n\n{TABLE_START}\n| new |\n{TABLE_END}\n\nafter\n"
    assert with_course_table(new, "| new |\n") == new
    with pytest.raises(ValueError, match="markers"):
        with_course_table("# no markers\n", "| new |\n")
