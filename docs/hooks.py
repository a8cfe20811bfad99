"""MkDocs hooks (mkdocs.yml ``hooks:``): the site is built from the repository as it is.

- The README stays the one copy of what it says: a page line ``<!-- readme: Heading -->`` is
  replaced by the README section under ``## Heading`` (up to the next ``## ``), its links made
  relative to the page.
- Pages link to repository files the way GitHub shows them (``../benchmarks/x.png``,
  ``../notebooks/00_tour.ipynb``). Every such file that exists is added to the site at its
  repository path, and the link rewritten to reach it; a link to a missing file stays as written,
  so ``mkdocs build --strict`` fails on it.
- The notebooks are added before mkdocs-jupyter looks for them, which renders them with their
  committed outputs (never executed).
"""

from __future__ import annotations

import posixpath
import re
from pathlib import Path

from mkdocs.plugins import event_priority
from mkdocs.structure.files import File, Files

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
# A markdown link or image target: ](target) or ](target#anchor), no spaces, no scheme.
LINK = re.compile(r"\]\((?!https?:|mailto:|#)([^)\s#]+)(#[^)\s]*)?\)")
README_SECTION = re.compile(r"^<!-- readme: (.+?) -->$", re.M)
# Repository Markdown files that the site shows as one of its pages.
PAGE_OF = {"README.md": "index.md", "CHANGELOG.md": "changelog.md"}


def _readme_section(heading: str) -> str:
    text = (ROOT / "README.md").read_text()
    match = re.search(rf"^## {re.escape(heading)}\n(.*?)(?=^## |\Z)", text, re.M | re.S)
    if match is None:
        raise ValueError(f"README.md has no section '## {heading}' (asked for by a docs page)")
    return match.group(1).strip() + "\n"


def _rewrite(markdown: str, page_dir: str, base: str) -> str:
    """Links written relative to ``base`` (a folder of the repository, "" for the root) become
    relative to the page's folder in the site."""

    def fix(match: re.Match) -> str:
        link, anchor = match.group(1), match.group(2) or ""
        target = posixpath.normpath(posixpath.join(base, link))
        if target.startswith("docs/"):  # a docs page, from the README: relative to the page
            site_path = target[len("docs/") :]
        elif target in PAGE_OF:
            site_path = PAGE_OF[target]
        elif not target.startswith("..") and (ROOT / target).is_file():
            site_path = target  # a repository file, added to the site at its repository path
        else:
            return match.group(0)
        return f"]({posixpath.relpath(site_path, page_dir or '.')}{anchor})"

    return LINK.sub(fix, markdown)


def _linked_repo_files() -> set[str]:
    """Every repository file outside docs/ that a page (or a README section it takes) links."""
    found = set()
    for page in DOCS.rglob("*.md"):
        folder = page.parent.relative_to(DOCS).as_posix()
        text = page.read_text()
        chunks = [(text, "docs" if folder == "." else f"docs/{folder}")]
        chunks += [(_readme_section(h), "") for h in README_SECTION.findall(text)]
        for chunk, base in chunks:
            for match in LINK.finditer(chunk):
                target = posixpath.normpath(posixpath.join(base, match.group(1)))
                if (
                    not target.startswith(("docs/", ".."))
                    and target not in PAGE_OF
                    and (ROOT / target).is_file()
                ):
                    found.add(target)
    return found


@event_priority(100)  # before mkdocs-jupyter's on_files, so that it renders the notebooks
def on_files(files: Files, config) -> Files:
    wanted = _linked_repo_files() | {
        p.relative_to(ROOT).as_posix() for p in (ROOT / "notebooks").glob("*.ipynb")
    }
    for path in sorted(wanted):
        files.append(
            File(
                path,
                src_dir=str(ROOT),
                dest_dir=config["site_dir"],
                use_directory_urls=config["use_directory_urls"],
            )
        )
    return files


def on_page_markdown(markdown: str, page, config, files) -> str:
    if page.file.abs_src_path is None or not Path(page.file.abs_src_path).is_relative_to(DOCS):
        return markdown  # a notebook or another repository file
    page_dir = posixpath.dirname(page.file.src_uri)
    markdown = README_SECTION.sub(
        lambda m: _rewrite(_readme_section(m.group(1)), page_dir, ""), markdown
    )
    return _rewrite(markdown, page_dir, posixpath.join("docs", page_dir) if page_dir else "docs")
