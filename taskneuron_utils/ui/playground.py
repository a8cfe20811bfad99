"""The neuron playground: switch a task's neurons off and watch the model's answer change.

    import taskneuron_utils as tn
    tasks = tn.load_tasks(["product_sentiment", "news_topic"])
    panel = tn.playground.neuron_playground(model, tok, tasks, k=0.01)
    panel                                   # in a notebook: controls, answers, two figures

Pick a task and k (the fraction of each site's neurons that count as the task's neurons), type
your own input, and see, side by side, what the model answers and how likely it finds the
expected answer under three conditions:

    "all on"       nothing switched off
    "task off"     the task's top-k neurons switched off (``tn.deactivate``)
    "random off"   the same number of random neurons switched off, per site
                   (``NeuronSet.random_like``, a fixed seed)

A layer range selector shows where the switched-off neurons sit (selected neurons per layer and
site kind). The relevance of each task is computed once (``RelevanceCache``), so moving k, the
selection rule or the input never re-runs attribution.

Everything the panel shows comes from plain functions that scripts and tests call directly:
``condition_sets`` (the three NeuronSets), ``compare_conditions`` (one input -> a DataFrame),
``condition_scores`` (a split -> metric and NLL per condition), ``layer_counts`` and the figures
``plot_conditions``, ``plot_condition_scores``, ``plot_layer_counts`` (each takes ``ax=`` and
returns the Axes). The panel keeps what it shows: ``panel.frame`` (the answers table),
``panel.layer_frame``, ``panel.figure``, ``panel.layer_figure``.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence

import ipywidgets as widgets
import pandas as pd

from ..core.layout import layout_of
from ..neurons.relevance import Relevance
from .conditions import (
    CONDITIONS,
    RelevanceCache,
    compare_conditions,
    condition_scores,
    condition_sets,
    layer_counts,
)
from ..neurons.neuron_set import NeuronSet
from ..plots.conditions import plot_condition_scores, plot_conditions, plot_layer_counts
from ..tasks import Task

__all__ = [
    "CONDITIONS",
    "RelevanceCache",
    "condition_sets",
    "compare_conditions",
    "condition_scores",
    "layer_counts",
    "plot_conditions",
    "plot_condition_scores",
    "plot_layer_counts",
    "Playground",
    "neuron_playground",
]

# ----------------------------------------------------------------------------------------------
# The widget
# ----------------------------------------------------------------------------------------------


def _frame_html(frame: pd.DataFrame) -> str:
    shown = frame.copy()
    for column in shown.columns:
        if column == "p_expected" or column.startswith("p("):
            shown[column] = shown[column].map(lambda v: "–" if pd.isna(v) else f"{v:.3f}")
    return shown.to_html(
        index=False, classes="tn-playground-table", border=0, escape=True, justify="left"
    )


class Playground(widgets.VBox):
    """The panel ``neuron_playground`` returns. Controls: ``task``, ``k``, ``per``, ``text``,
    ``expected``, ``layers``; what they show: ``frame`` (``compare_conditions``), ``figure``
    (``plot_conditions``), ``layer_frame`` (``layer_counts``), ``layer_figure``
    (``plot_layer_counts``), ``sets`` (the three NeuronSets), ``table`` (the HTML table widget),
    ``status`` (an HTML line: what is computing, or what went wrong)."""

    def __init__(
        self,
        model,
        tok,
        tasks: dict[str, Task],
        cache: RelevanceCache,
        *,
        task: str,
        k: float,
        per: str,
        seed: int,
        text: str | None,
        expected: str | None,
        max_new_tokens: int | None,
    ):
        self.model, self.tok, self.tasks, self.cache = model, tok, tasks, cache
        self.seed, self.max_new_tokens = seed, max_new_tokens
        n_layers = 1 + max(layout_of(model).sites, key=lambda s: s.layer).layer
        style = {"description_width": "initial"}
        self.task = widgets.Dropdown(
            options=list(tasks), value=task, description="task", style=style
        )
        self.k = widgets.FloatSlider(
            value=k,
            min=0.0,
            max=max(0.5, k),
            step=0.005,
            description="k (fraction off)",
            readout_format=".1%",
            continuous_update=False,
            style=style,
            layout=widgets.Layout(width="420px"),
        )
        self.per = widgets.ToggleButtons(
            options=["site", "global"],
            value=per,
            description="top-k per",
            style={**style, "button_width": "64px"},
        )
        first = tasks[task].test[0] if len(tasks[task].test) else None
        self.text = widgets.Textarea(
            value=text if text is not None else (first.input if first else ""),
            description="your input",
            continuous_update=False,
            style=style,
            layout=widgets.Layout(width="95%", height="4em"),
        )
        self.expected = widgets.Text(
            value=expected if expected is not None else (first.output if first else ""),
            description="expected answer",
            continuous_update=False,
            style=style,
        )
        self.layers = widgets.IntRangeSlider(
            value=(0, n_layers - 1),
            min=0,
            max=n_layers - 1,
            description="layers",
            continuous_update=False,
            style=style,
            layout=widgets.Layout(width="420px"),
        )
        self.status = widgets.HTML()
        self.table = widgets.HTML()
        self.answers_out = widgets.Output()
        self.layers_out = widgets.Output()
        for control, name in (
            (self.k, "tn-k"),
            (self.layers, "tn-layers"),
            (self.text, "tn-text"),
            (self.task, "tn-task"),
            (self.table, "tn-answers"),
            (self.status, "tn-status"),
        ):
            control.add_class(name)
        super().__init__(
            [
                self.task,
                widgets.HBox([self.k, self.per]),
                self.text,
                self.expected,
                self.status,
                self.table,
                self.answers_out,
                widgets.HTML(
                    "<b>Where are they?</b> Selected neurons per layer and site kind "
                    "(the random set has the same count in every site)."
                ),
                self.layers,
                self.layers_out,
            ]
        )
        self.add_class("tn-playground")
        self.frame: pd.DataFrame | None = None
        self.figure = None
        self.layer_frame: pd.DataFrame | None = None
        self.layer_figure = None
        self.sets: dict[str, NeuronSet] = {}
        self._quiet = False

        self.task.observe(self._on_task, names="value")
        for control in (self.k, self.per):
            control.observe(lambda _change: self.refresh(), names="value")
        for control in (self.text, self.expected):
            control.observe(lambda _change: self._unless_quiet(self.refresh_answers), names="value")
        self.layers.observe(lambda _change: self.refresh_layers(), names="value")
        self.refresh()

    # --- callbacks ---------------------------------------------------------------------------

    def _unless_quiet(self, callback) -> None:
        if not self._quiet:
            callback()

    def _on_task(self, _change) -> None:
        """A new task: its first test example becomes the input, then everything refreshes."""
        task = self.tasks[self.task.value]
        self._quiet = True
        try:
            if len(task.test):
                self.text.value, self.expected.value = task.test[0].input, task.test[0].output
        finally:
            self._quiet = False
        self.refresh()

    def refresh(self) -> None:
        """Recompute the three neuron sets, then the layer figure and the answers (last: the
        status line then says that everything shown is up to date)."""
        task = self.tasks[self.task.value]
        if task.name not in self.cache:
            self._say(
                f"computing the relevance of every neuron on {self.cache.n_examples} "
                f"examples of <b>{html.escape(task.name)}</b> (once per task)…"
            )
        relevance = self.cache(task)
        self.sets = condition_sets(relevance, self.k.value, per=self.per.value, seed=self.seed)
        self.refresh_layers()
        self.refresh_answers()

    def refresh_answers(self) -> None:
        task = self.tasks[self.task.value]
        try:
            frame = compare_conditions(
                self.model,
                self.tok,
                task,
                self.text.value,
                self.sets,
                expected=self.expected.value or None,
                max_new_tokens=self.max_new_tokens,
            )
        except ValueError as err:
            self._say(f"⚠ {html.escape(str(err))}")
            return
        self.frame = frame
        # The status line goes last: when it shows the new k, the table and figure are new too.
        self.figure = self._show(self.answers_out, plot_conditions(frame))
        self.table.value = _frame_html(frame)
        note = ""
        if task.category == "classification" and frame.attrs["expected"] is None:
            note = f" (expected answer: one of {', '.join(task.labels)} to see its probability)"
        self._say(
            f"{len(self.sets['task off']):,} of {sum(self.sets['task off'].sizes.values()):,}"
            f" neurons off (top {100 * self.k.value:.1f}% per {self.per.value}){note}"
        )

    def refresh_layers(self) -> None:
        lo, hi = self.layers.value
        self.layer_frame = layer_counts(self.sets["task off"], (lo, hi))
        ax = plot_layer_counts(
            self.layer_frame,
            title=(
                f"{self.task.value}: top {100 * self.k.value:.1f}% per {self.per.value}, "
                f"layers {lo}-{hi}"
            ),
        )
        self.layer_figure = self._show(self.layers_out, ax)

    def _say(self, message: str) -> None:
        self.status.value = f"<span style='font-size: 90%'>{message}</span>"

    @staticmethod
    def _show(output: widgets.Output, ax):
        import matplotlib.pyplot as plt
        from IPython.display import display

        fig = ax.figure
        with output:
            output.clear_output(wait=True)
            display(fig)
        plt.close(fig)  # shown once, in the panel, not again by the inline backend
        return fig


def neuron_playground(
    model,
    tok,
    tasks: Mapping[str, Task] | Sequence[Task] | Task,
    *,
    task: str | None = None,
    k: float = 0.10,
    per: str = "site",
    n_examples: int = 32,
    relevances: Mapping[str, Relevance] | RelevanceCache | None = None,
    seed: int = 0,
    text: str | None = None,
    expected: str | None = None,
    batch_size: int = 8,
    max_new_tokens: int | None = None,
) -> Playground:
    """An interactive panel: switch a task's neurons off and watch the answer change.

    Args:
        tasks: the tasks to choose from: {name: Task} (e.g. ``tn.load_tasks()``), a list of
            Tasks, or one Task.
        task: the task shown first (default: the first).
        k: the fraction of neurons that count as the task's (per site, or of all neurons with
            ``per="global"``); the slider moves in steps of 0.5%. The paper's
            k is 0.10; a 135M model already breaks with 10% of random neurons off, so try 0.01.
            The slider goes up to 50% (or to ``k`` if that is larger).
        n_examples: training examples attributed per task (once per task).
        relevances: relevances computed already ({task name: Relevance}) or a RelevanceCache
            to share between panels; tasks not in it are attributed when first chosen.
        seed: the random baseline's seed.
        text: the first input (default: the task's first test example's).
        expected: its expected answer (default: that example's).

    Returns:
        A ``Playground`` (an ipywidgets VBox; display it, or end a cell with it).
    """
    if isinstance(tasks, Task):
        tasks = {tasks.name: tasks}
    elif not isinstance(tasks, Mapping):
        tasks = {t.name: t for t in tasks}
    tasks = dict(tasks)
    if not tasks:
        raise ValueError("the playground needs at least one task")
    task = task or next(iter(tasks))
    if task not in tasks:
        raise ValueError(f"task {task!r} is not among the playground's tasks {list(tasks)}")
    if isinstance(relevances, RelevanceCache):
        cache = relevances
    else:
        cache = RelevanceCache(
            model, tok, n_examples=n_examples, batch_size=batch_size, relevances=relevances
        )
    return Playground(
        model,
        tok,
        tasks,
        cache,
        task=task,
        k=k,
        per=per,
        seed=seed,
        text=text,
        expected=expected,
        max_new_tokens=max_new_tokens,
    )
