"""A neuron's page: its figures (each takes ``ax=`` and returns it) and the HTML that shows
them with its top and bottom examples, tokens coloured by activation as Neuronpedia and
circuitsvis do (orange: positive, blue: negative, opacity: |activation| / the page's largest).
"""

from __future__ import annotations

import base64
import html
import io

import numpy as np
import pandas as pd
from matplotlib.axes import Axes

from .figure import new_axes, set_title


def plot_activation_histogram(
    values: pd.DataFrame, *, ax=None, title: str | None = None, bins: int = 40
) -> Axes:
    """Per-task histograms (shared bins, share of the task's positions) of one neuron's
    activations (``Scan.values``: task, activation)."""
    ax = new_axes(ax, (5.5, 3))
    edges = np.histogram_bin_edges(values["activation"], bins=bins)
    for task, part in values.groupby(values["task"].fillna("text"), sort=False):
        weights = np.full(len(part), 1 / len(part))
        ax.hist(
            part["activation"], bins=edges, weights=weights, histtype="step", lw=1.5, label=task
        )
    ax.axvline(0, color="k", lw=0.6)
    ax.set_xlabel("activation")
    ax.set_ylabel("share of positions")
    ax.legend(fontsize=8, frameon=False)
    set_title(ax, title or "Activations per task")
    ax.spines[["top", "right"]].set_visible(False)
    return ax


def plot_task_means(stats: pd.DataFrame, *, ax=None, title: str | None = None) -> Axes:
    """Heatmap: neurons (rows) x tasks (columns) of the mean activation (``neuron_stats``'s
    ``mean_<task>`` columns), each row divided by its largest |mean| so rows compare."""
    columns = [c for c in stats.columns if c.startswith("mean_")]
    table = stats[columns].to_numpy()
    table = table / np.maximum(np.abs(table).max(axis=1, keepdims=True), 1e-12)
    ax = new_axes(ax, (1.5 + 0.9 * len(columns), 1.2 + 0.28 * len(stats)))
    image = ax.imshow(table, cmap="coolwarm", vmin=-1, vmax=1, aspect="auto")
    ax.set_xticks(range(len(columns)), [c[5:] for c in columns], rotation=30, ha="right")
    ax.set_yticks(
        range(len(stats)),
        [
            f"{s.replace('layers.', 'L').replace('.mlp.', ' ')} #{n}"
            for s, n in zip(stats["site"], stats["neuron"])
        ],
        fontsize=8,
    )
    ax.figure.colorbar(image, ax=ax, label="mean / row's max |mean|")
    set_title(ax, title or "Which tasks move each neuron")
    return ax


def plot_vocab_projection(frame: pd.DataFrame, *, ax=None, n: int = 10) -> Axes:
    """Bars of the ``n`` most promoted and suppressed tokens (``vocab_projection``)."""
    shown = pd.concat(
        [
            frame[frame.direction == "promotes"].head(n),
            frame[frame.direction == "suppresses"].head(n).iloc[::-1],
        ]
    )
    ax = new_axes(ax, (4.5, 0.8 + 0.22 * len(shown)))
    colours = ["tab:orange" if d == "promotes" else "tab:blue" for d in shown.direction]
    ax.barh(range(len(shown)), shown["logit"], color=colours)
    ax.set_yticks(range(len(shown)), [repr(t) for t in shown["token"]], fontsize=8)
    ax.invert_yaxis()
    ax.axvline(0, color="k", lw=0.6)
    ax.set_xlabel("direct logit per unit of activation")
    set_title(
        ax,
        f"{frame.attrs.get('site', '')} #{frame.attrs.get('neuron', '')}: "
        "tokens it promotes / suppresses",
        fontsize=10,
    )
    ax.spines[["top", "right"]].set_visible(False)
    return ax


def plot_deactivation_effect(effect: pd.DataFrame, *, ax=None, title: str | None = None) -> Axes:
    """Answer-NLL change per task when the neuron is switched off, with 95% intervals over
    examples (``pages.report.deactivation_effect``)."""
    ax = new_axes(ax, (5, 0.9 + 0.35 * len(effect)))
    ax.barh(
        range(len(effect)), effect["nll_change"], xerr=effect["ci95"], color="tab:red", alpha=0.8
    )
    ax.set_yticks(range(len(effect)), effect["task"])
    ax.invert_yaxis()
    ax.axvline(0, color="k", lw=0.6)
    ax.set_xlabel("NLL change when off (nats/token)")
    set_title(ax, title or "Effect of switching it off", fontsize=10)
    ax.spines[["top", "right"]].set_visible(False)
    return ax


# --- HTML -------------------------------------------------------------------------------------


def figure_html(ax) -> str:
    """An <img> holding the Axes' figure as an inline PNG (the figure is closed)."""
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    ax.figure.savefig(buffer, format="png", dpi=72)
    plt.close(ax.figure)
    data = base64.b64encode(buffer.getvalue()).decode()
    return f'<img src="data:image/png;base64,{data}" style="max-width: 100%">'


def token_spans(tokens: list[str], values: list[float], mark: int, scale: float) -> str:
    """Tokens as <span>s coloured by activation; the token at ``mark`` outlined."""
    spans = []
    for i, (token, value) in enumerate(zip(tokens, values)):
        alpha = min(abs(value) / scale, 1.0) if scale > 0 else 0.0
        colour = (255, 140, 0) if value > 0 else (30, 110, 255)
        style = f"background: rgba({colour[0]},{colour[1]},{colour[2]},{alpha:.2f})"
        if i == mark:
            style += "; outline: 2px solid #222"
        text = html.escape(token).replace("\n", "↵")
        spans.append(f'<span class="tn-tok" style="{style}" title="{value:.3f}">{text}</span>')
    return "".join(spans)


def _table(frame: pd.DataFrame | None, empty: str) -> str:
    if frame is None or not len(frame):
        return f"<p><i>{html.escape(empty)}</i></p>"
    return frame.to_html(
        index=False, border=0, float_format=lambda v: f"{v:.3g}", classes="tn-table"
    )


def render_page(page) -> str:
    """The HTML of a ``NeuronPage`` (``pages.report``), self-contained (figures inline)."""
    stats = page.stats.iloc[0]
    head = (
        f'<div class="tn-neuron-page" data-site="{html.escape(page.site)}" '
        f'data-neuron="{page.neuron}" style="font-family: sans-serif; font-size: 13px">'
        f"<h3>{html.escape(page.site)} · neuron {page.neuron}</h3>"
        f"<p>{int(stats['positions']):,} positions · mean {stats['mean']:.3g} · std "
        f"{stats['std']:.3g} · firing rate {100 * stats['firing_rate']:.1f}% · max "
        f"{stats['max']:.3g} · min {stats['min']:.3g}</p>"
    )
    parts = [head, "<h4>Relevance rank per task</h4>", _table(page.ranks, "no relevances given")]
    parts += [
        "<h4>Activations per task</h4>",
        figure_html(plot_activation_histogram(page.values, title=" ")),
    ]
    scale = float(page.examples["activation"].abs().max()) if len(page.examples) else 1.0
    for sign, label in (("top", "Top examples"), ("bottom", "Bottom examples (most negative)")):
        rows = page.examples[page.examples.sign == sign]
        parts.append(f'<h4>{label}</h4><table class="tn-examples tn-{sign}">')
        for row in rows.itertuples():
            tokens, values, mark = page.snippet(row)
            parts.append(
                f"<tr><td><b>{row.activation:.3f}</b></td><td>{html.escape(str(row.task))}"
                f"</td><td>{token_spans(tokens, values, mark, scale)}</td></tr>"
            )
        parts.append("</table>")
    parts.append("<h4>Vocabulary projection</h4>")
    if page.vocab is None:
        parts.append(f"<p><i>{html.escape(page.vocab_note)}</i></p>")
    else:
        parts.append(f"<p>{html.escape(page.vocab.attrs['meaning'])}</p>")
        for direction in ("promotes", "suppresses"):
            tokens = page.vocab[page.vocab.direction == direction]
            listed = ", ".join(
                f"<code>{html.escape(repr(t))}</code> {v:+.2f}"
                for t, v in zip(tokens.token, tokens.logit)
            )
            parts.append(f"<p><b>{direction}</b>: {listed}</p>")
    parts += [
        "<h4>Switched off: answer NLL change per task</h4>",
        _table(page.effect, "not measured (effect_examples=0)"),
        "</div>",
    ]
    return "".join(parts)
