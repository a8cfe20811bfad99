"""Markdown tables from frames, and the report's Markdown as one self-contained HTML page
(figures embedded as base64 PNG). The Markdown the report writes is a small subset: headings,
paragraphs, bullet lists, pipe tables, images and inline code / bold, which this renders."""

from __future__ import annotations

import base64
import html
import re
from pathlib import Path

import numpy as np
import pandas as pd


def cell(value, digits: int = 2) -> str:
    """One table cell: floats rounded, NaN as an empty cell, the rest as text."""
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, (float, np.floating)):
        return "" if not np.isfinite(value) else f"{value:.{digits}f}"
    return str(value).replace("|", "\\|")


def md_table(frame: pd.DataFrame, digits: int = 2) -> str:
    """``frame`` as a Markdown pipe table (index dropped)."""
    if frame is None or frame.empty:
        return "(no rows)"
    head = "| " + " | ".join(map(str, frame.columns)) + " |"
    rule = "|" + "|".join("---" for _ in frame.columns) + "|"
    rows = [
        "| " + " | ".join(cell(v, digits) for v in row) + " |"
        for row in frame.itertuples(index=False)
    ]
    return "\n".join([head, rule, *rows])


def interval(value, low, high, digits: int = 2) -> str:
    """``value [low, high]``; the value alone where the interval is undefined."""
    text = cell(value, digits)
    if all(isinstance(v, (float, int, np.floating)) and np.isfinite(v) for v in (low, high)):
        text += f" [{low:.{digits}f}, {high:.{digits}f}]"
    return text


def _inline(text: str) -> str:
    text = html.escape(text, quote=False)
    text = re.sub(r"`([^`]+)`", r"<code>\1</code>", text)
    text = re.sub(r"\*\*([^*]+)\*\*", r"<strong>\1</strong>", text)
    text = re.sub(r"\*([^*]+)\*", r"<em>\1</em>", text)
    return re.sub(r"\[([^\]]+)\]\(([^)]+)\)", r'<a href="\2">\1</a>', text)


def _image(alt: str, src: str, folder: Path) -> str:
    path = folder / src
    if not path.exists():
        return f"<p><em>missing figure {html.escape(src)}</em></p>"
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<figure><img alt="{html.escape(alt)}" src="data:image/png;base64,{data}"></figure>'


def markdown_to_html(text: str, folder: Path, title: str) -> str:
    """The report's Markdown as a standalone HTML page; images read from ``folder``."""
    body, lines, i = [], text.splitlines(), 0
    while i < len(lines):
        line = lines[i]
        if line.strip().startswith("```"):
            block = []
            i += 1
            while i < len(lines) and not lines[i].strip().startswith("```"):
                block.append(lines[i])
                i += 1
            body.append("<pre><code>" + html.escape("\n".join(block)) + "</code></pre>")
        elif line.startswith("#"):
            level = len(line) - len(line.lstrip("#"))
            body.append(f"<h{level}>{_inline(line[level:].strip())}</h{level}>")
        elif line.startswith("|"):
            rows = []
            while i < len(lines) and lines[i].startswith("|"):
                inner = lines[i].strip()[1:-1]
                rows.append([c.strip().replace("\\|", "|") for c in re.split(r"(?<!\\)\|", inner)])
                i += 1
            head, rest = rows[0], [r for r in rows[1:] if not set("".join(r)) <= set("-: ")]
            body.append("<table><thead><tr>" + "".join(f"<th>{_inline(c)}</th>" for c in head))
            body.append("</tr></thead><tbody>")
            body += ["<tr>" + "".join(f"<td>{_inline(c)}</td>" for c in r) + "</tr>" for r in rest]
            body.append("</tbody></table>")
            continue
        elif match := re.fullmatch(r"!\[([^\]]*)\]\(([^)]+)\)", line.strip()):
            body.append(_image(match.group(1), Path(match.group(2)).name, folder))
        elif line.startswith("- "):
            items = []
            while i < len(lines) and lines[i].startswith(("- ", "  ")):
                if lines[i].startswith("- "):
                    items.append(lines[i][2:])
                else:
                    items[-1] += " " + lines[i].strip()
                i += 1
            body.append("<ul>" + "".join(f"<li>{_inline(t)}</li>" for t in items) + "</ul>")
            continue
        elif line.strip():
            paragraph = [line.strip()]
            while i + 1 < len(lines) and lines[i + 1].strip() and not _starts_block(lines[i + 1]):
                i += 1
                paragraph.append(lines[i].strip())
            body.append(f"<p>{_inline(' '.join(paragraph))}</p>")
        i += 1
    style = (
        "body{font-family:sans-serif;max-width:1100px;margin:2em auto;line-height:1.45}"
        "table{border-collapse:collapse;margin:1em 0;font-size:90%}"
        "td,th{border:1px solid #bbb;padding:3px 7px;text-align:left}"
        "img{max-width:100%}code{background:#f3f3f3}"
    )
    return (
        f"<!DOCTYPE html>\n<html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{style}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n"
    )


def _starts_block(line: str) -> bool:
    return line.startswith(("#", "|", "- ", "![", "```"))
