"""The course: the numbered notebooks shipped with the package, found from a wheel or a clone,
copied into a learner's folder without overwriting what the learner changed.

A wheel installs the repository's ``notebooks/`` folder as ``taskneuron_utils/_notebooks``
(pyproject.toml's ``package-dir``, as ``data/`` becomes ``_data``): the numbered notebooks and
``timings.json``, the seconds each took in ``notebooks/run_all.py`` (cold kernel, model cached),
and ``glossary.md``, the documentation's glossary (docs/glossary.md) with its links to other
documentation pages reduced to their text, so that the notebooks' ``glossary.md#term`` links
resolve wherever the course is (``course_glossary``; a test keeps the copy in sync).
A clone, or an editable install (which maps ``_notebooks`` onto ``notebooks/`` without copying
it), has them in ``notebooks/`` beside the package.

``copy_course`` keeps a manifest (``.taskneurons-course.json``) in the folder it copies into:
the content hash of every file as it was copied. A copy whose hash is still the one recorded
was not touched and is refreshed from the shipped file; any other copy that differs from the
shipped file (edited, or executed and saved) is kept as it is and reported.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..core.identity import content_hash
from .storage import atomic_write_all

__all__ = [
    "CopyReport",
    "course_dir",
    "course_files",
    "course_glossary",
    "course_seconds",
    "course_table",
    "copy_course",
    "with_course_table",
    "write_course_table",
]

NOTEBOOKS = "[0-9][0-9]_*.ipynb"
TIMINGS = "timings.json"
GLOSSARY = "glossary.md"
MANIFEST = ".taskneurons-course.json"
TABLE_START = "<!-- course table: generated from notebooks/timings.json; do not edit -->"
TABLE_END = "<!-- end of course table -->"

# What each notebook teaches, for the course table. A notebook missing here is described by
# the title of its first heading, so a new notebook needs no edit here to be listed.
ABOUT = {
    "00_tour.ipynb": 'from nothing to "these neurons matter for this task": detect, switch '
    "off against random, overlap, the neuron playground",
    "01_detecting_task_neurons.ipynb": "the Taylor relevance, checked against exact ablation; "
    "detection, layer profiles, overlap",
    "02_deactivation.ipynb": "switching task neurons off against random neurons (the paper's "
    "Table 1); are they task-specific?",
    "03_finetuning_task_neurons.ipynb": "training only the task neurons against random neurons "
    "and full fine-tuning (Table 2)",
    "04_generalization.ipynb": "neuron overlap and parameter similarity against cross-task "
    "generalization (Section 4)",
    "05_continual_learning.ipynb": "forgetting; NCFT and W-NCFT beside LoRA, O-LoRA and replay "
    "(Table 5)",
    "06_what_a_neuron_does.ipynb": "what a neuron responds to: neuron pages, the browser, a "
    "Neuronpedia export",
}


def course_dir() -> Path:
    """Where the shipped course is: ``taskneuron_utils/_notebooks`` of an installed wheel, else
    the repository's ``notebooks/`` folder (a clone or an editable install).

    Raises:
        FileNotFoundError: neither holds a numbered notebook (one line).
    """
    package = Path(__file__).resolve().parents[1]
    for folder in (package / "_notebooks", package.parent / "notebooks"):
        if any(folder.glob(NOTEBOOKS)):
            return folder
    raise FileNotFoundError(
        f"the course notebooks are not installed: neither {package / '_notebooks'} nor "
        f"{package.parent / 'notebooks'} holds a numbered notebook"
    )


def _source(source: str | os.PathLike | None) -> Path:
    if source is None:
        return course_dir()
    folder = Path(source)
    if not any(folder.glob(NOTEBOOKS)):
        raise FileNotFoundError(f"{folder} holds no numbered notebook (NN_name.ipynb)")
    return folder


def course_files(source: str | os.PathLike | None = None) -> list[Path]:
    """The course's files: the numbered notebooks in order, then ``timings.json`` and
    ``glossary.md`` where present.

    Args:
        source: the folder to read (default: ``course_dir()``).
    """
    folder = _source(source)
    extra = [folder / name for name in (TIMINGS, GLOSSARY) if (folder / name).is_file()]
    return sorted(folder.glob(NOTEBOOKS)) + extra


# A markdown link whose target is not a web address: [text](page.md#anchor).
_LOCAL_LINK = re.compile(r"\[([^\]]+)\]\((?!https?://|#)[^)]*\)")


def course_glossary(docs_glossary: str) -> str:
    """The course's glossary from the documentation's (``docs/glossary.md``'s text): links to
    other documentation pages become their text (those pages are not in a copied course);
    web links and links within the glossary (``#term``) are kept."""
    note = (
        "<!-- generated from docs/glossary.md by taskneuron_utils.io.course_files."
        "course_glossary; do not edit -->\n\n"
    )
    return note + _LOCAL_LINK.sub(r"\1", docs_glossary)


def course_seconds(source: str | os.PathLike | None = None) -> dict[str, dict]:
    """``timings.json`` of the course: {notebook file name: {"seconds", "cores", "date"}}, one
    entry per notebook ``notebooks/run_all.py`` measured ({} before any run)."""
    path = _source(source) / TIMINGS
    return json.loads(path.read_text()) if path.is_file() else {}


def _title(path: Path) -> str:
    """The text of the notebook's first Markdown heading, without its number ("00 · ")."""
    for cell in json.loads(path.read_text(encoding="utf-8"))["cells"]:
        source = "".join(cell["source"]) if cell["cell_type"] == "markdown" else ""
        found = re.search(r"^#+\s*(?:\d\d\s*\W\s*)?(.+)$", source, re.M)
        if found:
            return found.group(1).strip()
    return path.stem


def course_table(source: str | os.PathLike | None = None, *, link: str = "notebooks/") -> str:
    """The course as a Markdown table (notebook with a link, what it teaches, measured
    minutes) and one line with the total, from the notebooks that exist and ``timings.json``.

    Args:
        source: the course folder (default: ``course_dir()``).
        link: what each notebook's link starts with (``notebooks/`` from the repository root).
    """
    folder = _source(source)
    timings = course_seconds(folder)
    notebooks = [p for p in course_files(folder) if p.suffix == ".ipynb"]
    rows = ["| notebook | what it teaches | minutes |", "|---|---|---|"]
    for path in notebooks:
        seconds = timings.get(path.name, {}).get("seconds")
        minutes = "not measured" if seconds is None else f"{seconds / 60:.1f}"
        about = ABOUT.get(path.name) or _title(path)
        rows.append(f"| [{path.stem}]({link}{path.name}) | {about} | {minutes} |")
    measured = [timings[p.name] for p in notebooks if p.name in timings]
    if measured:
        cores = sorted({str(t.get("cores", "?")) for t in measured})
        dates = sorted(str(t.get("date", "?")) for t in measured)
        span = dates[0] if dates[0] == dates[-1] else f"{dates[0]} to {dates[-1]}"
        rows.append("")
        rows.append(
            f"In all {sum(t['seconds'] for t in measured) / 60:.1f} minutes for "
            f"{len(measured)} of {len(notebooks)} notebooks, measured by "
            f"`notebooks/run_all.py` on {'/'.join(cores)} CPU cores ({span}; cold kernel, "
            "model cached)."
        )
    return "\n".join(rows) + "\n"


def with_course_table(text: str, table: str) -> str:
    """``text`` (a README) with ``table`` between its course-table markers.

    Raises:
        ValueError: the markers are missing or out of order.
    """
    start, end = text.find(TABLE_START), text.find(TABLE_END)
    if start < 0 or end < start:
        raise ValueError(f"no '{TABLE_START}' ... '{TABLE_END}' markers, in that order")
    return text[: start + len(TABLE_START)] + "\n" + table + text[end:]


def write_course_table(readme: str | os.PathLike, source: str | os.PathLike | None = None) -> Path:
    """Rewrite the course table between the markers of ``readme`` from the course at
    ``source`` (default: ``course_dir()``); atomic. Returns the path."""
    path = Path(readme)
    text = with_course_table(path.read_text(encoding="utf-8"), course_table(source))
    return atomic_write_all({path: lambda tmp: Path(tmp).write_text(text, encoding="utf-8")})[0]


@dataclass(frozen=True)
class CopyReport:
    """What ``copy_course`` did, file by file (file names)."""

    dest: Path
    copied: tuple[str, ...]  # new in ``dest``
    refreshed: tuple[str, ...]  # an untouched copy of an older version, replaced
    current: tuple[str, ...]  # already the shipped file
    skipped: tuple[tuple[str, str], ...]  # (name, why): kept as they are

    def lines(self) -> list[str]:
        """One line for what was written, then one line per skipped file."""
        done = [
            what.format(f"{len(names)} file{'s' if len(names) > 1 else ''}")
            for names, what in (
                (self.copied, "copied {}"),
                (self.refreshed, "refreshed {} (untouched since copied)"),
                (self.current, "{} already up to date"),
            )
            if names
        ]
        head = f"{self.dest}: {', '.join(done) or 'nothing copied'}"
        return [head] + [f"skipped {name}: {why}" for name, why in self.skipped]


def _hash(path: Path) -> str:
    return content_hash([path.read_bytes()])


def _copy_of(source: Path) -> Callable[[str], object]:
    """A writer for ``atomic_write_all``: ``source``'s bytes into the temporary file."""
    return lambda tmp: shutil.copyfile(source, tmp)


def copy_course(dest: str | os.PathLike, *, source: str | os.PathLike | None = None) -> CopyReport:
    """Copy the course (the numbered notebooks and ``timings.json``) into ``dest``, creating it.

    A file already in ``dest`` is replaced only when it is untouched: the file this function
    copied there before (its content hash is the one in ``dest``'s manifest). A file that
    differs from both the shipped one and the recorded copy (edited, executed and saved, or
    not copied by this function) is kept and listed in ``skipped`` with the reason. All files
    and the manifest are written together (``atomic_write_all``): a failure writes none.

    Args:
        dest: the learner's folder.
        source: the course to copy (default: ``course_dir()``, the shipped course).

    Raises:
        NotADirectoryError: ``dest`` is an existing file.
        ValueError: ``dest`` is the course folder itself.
        OSError: ``dest`` cannot be written (one line, from ``atomic_write_all``).
    """
    dest = Path(dest)
    if dest.exists() and not dest.is_dir():
        raise NotADirectoryError(f"{dest} is an existing file; give a folder to copy into")
    files = course_files(source)
    if dest.is_dir() and dest.resolve() == files[0].parent.resolve():
        raise ValueError(f"{dest} is the course folder itself; give another folder")
    manifest_path = dest / MANIFEST
    recorded = json.loads(manifest_path.read_text()) if manifest_path.is_file() else {}
    manifest = dict(recorded)
    writes: dict[str | os.PathLike, Callable[[str], object]] = {}
    copied, refreshed, current, skipped = [], [], [], []
    for path in files:
        target, shipped = dest / path.name, _hash(path)
        if not target.exists():
            copied.append(path.name)
        elif not target.is_file():
            skipped.append((path.name, "something that is not a file is in the way; kept"))
            continue
        elif _hash(target) == shipped:
            current.append(path.name)
        elif _hash(target) == recorded.get(path.name):
            refreshed.append(path.name)
        else:
            why = (
                "changed since it was copied"
                if path.name in recorded
                else "differs from the shipped file and was not copied by this command"
            )
            skipped.append((path.name, f"{why}; kept (rename it to get the shipped one)"))
            continue
        manifest[path.name] = shipped
        if path.name not in current:
            writes[target] = _copy_of(path)
    if manifest != recorded or not manifest_path.exists():
        text = json.dumps(manifest, indent=1, sort_keys=True) + "\n"
        writes[manifest_path] = lambda tmp: Path(tmp).write_text(text)
    if writes:
        atomic_write_all(writes)
    return CopyReport(dest, tuple(copied), tuple(refreshed), tuple(current), tuple(skipped))
