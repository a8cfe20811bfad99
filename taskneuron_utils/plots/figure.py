"""What every figure shares: a new Axes when none is given, and the legibility check the
figure tests run on every plot function (``legibility_problems``)."""

from __future__ import annotations

import textwrap

import matplotlib.pyplot as plt
import numpy as np
import seaborn as sns
from matplotlib.axes import Axes
from matplotlib.collections import QuadMesh
from matplotlib.colors import rgb_to_hsv, to_rgba
from matplotlib.figure import Figure
from matplotlib.transforms import Bbox


# Colour-blind safe (seaborn's "colorblind", after Wong 2011): no red / green pair.
PALETTE = sns.color_palette("colorblind")


def new_axes(ax, size=(6, 4)) -> Axes:
    """``ax``, or the Axes of a new constrained-layout figure of ``size`` inches; either way
    drawing in the colour-blind safe ``PALETTE``."""
    if ax is None:
        _, ax = plt.subplots(figsize=size, layout="constrained")
    ax.set_prop_cycle(color=PALETTE)
    return ax


def set_title(ax: Axes, title: str, **options) -> None:
    """``ax``'s title; a line wider than the figure is wrapped (measured on the renderer), so
    that no title is cut. ``options`` go to ``Axes.set_title`` (``fontsize=``, ...)."""
    text = ax.set_title(title, **options)
    figure = ax.figure
    figure.canvas.draw()  # the layout (constrained: colour bars move the axes) decides the room
    renderer = figure.canvas.get_renderer()  # type: ignore[attr-defined]
    box = ax.get_window_extent(renderer)
    centre = (box.x0 + box.x1) / 2  # a title is centred over its axes
    width = 2 * min(centre - figure.bbox.x0, figure.bbox.x1 - centre) * 0.95
    lines = title.split("\n")
    wrapped = []
    for line in lines:
        text.set_text(line)
        measured = text.get_window_extent(renderer).width
        chars = len(line) if measured <= width else max(12, int(len(line) * width / measured))
        wrapped.append(textwrap.fill(line, chars))
    text.set_text("\n".join(wrapped))


def label_step(n: int, length_inches: float, per_label_inches: float = 0.2) -> int:
    """Label every n-th of ``n`` ticks along ``length_inches`` so that labels stay
    ``per_label_inches`` apart (1: every tick)."""
    return max(1, int(np.ceil(n * per_label_inches / max(length_inches, 1e-9))))


def legibility_problems(fig: Figure) -> list[str]:
    """What makes a drawn figure hard to read, one line each (empty: none found): tick labels of
    one axis that overlap each other, text cut at the figure's edge, a heatmap annotation wider
    or taller than its cell, and red/green pairs (unreadable for the most common colour-vision
    deficiency). Measured on the rendered figure, in display pixels."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()  # type: ignore[attr-defined]
    edge = fig.bbox.padded(1.0)
    problems = []
    for number, ax in enumerate(fig.axes):
        name = ax.get_title() or f"axes {number}"
        shown = {"x": _drawn_labels(ax.xaxis), "y": _drawn_labels(ax.yaxis)}
        for axis, labels in shown.items():
            boxes = [(t.get_text(), t.get_window_extent(renderer)) for t in labels]
            for (a, box_a), (b, box_b) in zip(boxes, boxes[1:]):
                if _labels_overlap(labels_of(shown[axis], a), box_a, box_b, axis, fig.dpi):
                    problems.append(f"{name}: {axis} tick labels {a!r} and {b!r} overlap")
                    break
        texts = [ax.title, ax.xaxis.label, ax.yaxis.label, *shown["x"], *shown["y"], *ax.texts]
        legend = ax.get_legend()
        if legend is not None:
            texts += list(legend.get_texts())
        for text in texts:
            if text.get_visible() and text.get_text().strip():
                box = text.get_window_extent(renderer)
                if not _inside(box, edge):
                    problems.append(f"{name}: text {text.get_text()!r} is cut at the figure edge")
        problems += _annotation_problems(ax, name, renderer)
        problems += _red_green(ax, name)
    for text in fig.texts:
        if text.get_visible() and not _inside(text.get_window_extent(renderer), edge):
            problems.append(f"figure text {text.get_text()!r} is cut at the figure edge")
    return problems


def _drawn_labels(axis) -> list:
    """The tick labels matplotlib draws: visible, not empty, at a tick inside the view limits
    (``get_ticklabels`` also returns the labels of ticks just outside them)."""
    low, high = sorted(axis.get_view_interval())
    span = (high - low) * 1e-9
    return [
        label
        for location, label in zip(axis.get_ticklocs(), axis.get_ticklabels())
        if low - span <= location <= high + span
        and label.get_visible()
        and label.get_text().strip()
    ]


def labels_of(labels: list, text: str):
    """The label of ``labels`` whose text is ``text``."""
    return next(label for label in labels if label.get_text() == text)


def _labels_overlap(label, a: Bbox, b: Bbox, axis: str, dpi: float) -> bool:
    """Neighbouring tick labels overlap. Upright: their boxes intersect. Rotated by r: the
    glyphs run in parallel strips, apart by the anchors' distance times sin(r), which must
    exceed the font's height (the boxes of rotated labels overlap long before the glyphs do)."""
    rotation = abs(label.get_rotation()) % 180
    if rotation in (0, 180) or axis == "y":
        return a.overlaps(b) and _overlap_area(a, b) > 2.0
    gap = abs((b.x1 + b.x0) - (a.x1 + a.x0)) / 2 * abs(np.sin(np.radians(rotation)))
    return gap < 0.9 * label.get_fontsize() * dpi / 72


def _overlap_area(a: Bbox, b: Bbox) -> float:
    width = min(a.x1, b.x1) - max(a.x0, b.x0)
    height = min(a.y1, b.y1) - max(a.y0, b.y0)
    return max(width, 0.0) * max(height, 0.0)


def _inside(box: Bbox, edge: Bbox) -> bool:
    return box.x0 >= edge.x0 and box.x1 <= edge.x1 and box.y0 >= edge.y0 and box.y1 <= edge.y1


def _annotation_problems(ax: Axes, name: str, renderer) -> list[str]:
    """Annotations of a heatmap (seaborn writes one text per cell, centred on it) that do not
    fit their cell."""
    meshes = [c for c in ax.collections if isinstance(c, QuadMesh)]
    if not meshes or not ax.texts:
        return []
    rows, cols = len(ax.get_yticks()), len(ax.get_xticks())
    box = ax.get_window_extent(renderer)
    if rows == 0 or cols == 0:
        return []
    cell_w, cell_h = box.width / cols, box.height / rows
    for text in ax.texts:
        extent = text.get_window_extent(renderer)
        if extent.width > cell_w + 1 or extent.height > cell_h + 1:
            return [
                f"{name}: annotation {text.get_text()!r} ({extent.width:.0f} x "
                f"{extent.height:.0f} px) is larger than its cell ({cell_w:.0f} x {cell_h:.0f} px)"
            ]
    return []


def _red_green(ax: Axes, name: str) -> list[str]:
    """A saturated red and a saturated green drawn in the same axes (lines, bars, markers)."""
    colours: list = [line.get_color() for line in ax.lines]
    colours += [patch.get_facecolor() for patch in ax.patches]
    colours += [c for coll in ax.collections for c in coll.get_facecolor()[:50]]
    hues = set()
    for colour in colours:
        r, g, b, alpha = to_rgba(colour)
        h, s, v = rgb_to_hsv((r, g, b))
        if alpha > 0.3 and s > 0.5 and v > 0.35:
            hues.add("red" if h < 0.04 or h > 0.96 else "green" if 0.22 < h < 0.45 else "other")
    return [f"{name}: red and green drawn together"] if {"red", "green"} <= hues else []
