"""Interactive explorers for notebooks (ipywidgets).

Each explorer is a thin panel over ``analysis`` and ``plots``: moving a control recomputes a
DataFrame with the same functions a script would call and redraws the same figure. The current
DataFrame is kept on the returned panel (``panel.frame``) and the figure drawn from it on
``panel.figure``, so what the figure shows can be read, saved or tested.
"""

from __future__ import annotations

import ipywidgets as widgets
import matplotlib.pyplot as plt
import pandas as pd
from IPython.display import display
from matplotlib.figure import Figure

from ..neurons.analysis import expected_random_jaccard, overlap_matrix
from ..neurons.relevance import Relevance
from ..pages.report import neuron_page
from ..neurons.neuron_set import NeuronSet
from ..plots import plot_deactivation_heatmap, plot_overlap
from ..experiments.generalization.stats import sweep_view
from ..plots import plot_sweep_bars
from ..plots import plot_cl_matrix, plot_cl_trajectories


class Explorer(widgets.VBox):
    """Controls above a figure. ``frame`` is the DataFrame behind the figure now shown, and
    ``figure`` that figure (``compute()`` makes the frame, ``draw(frame)`` the plot: a
    ``plots`` function's Axes, or a Figure)."""

    def __init__(self, controls: list[widgets.Widget], compute, draw):
        self.output = widgets.Output()
        super().__init__([widgets.HBox(controls), self.output])
        self._compute, self._draw = compute, draw
        self.frame: pd.DataFrame | None = None
        self.figure: Figure | None = None
        for control in controls:
            control.observe(lambda _change: self.refresh(), names="value")
        self.refresh()

    def refresh(self) -> None:
        self.frame = self._compute()
        with self.output:
            self.output.clear_output(wait=True)
            drawn = self._draw(self.frame)
            fig = drawn if isinstance(drawn, Figure) else drawn.figure
            display(fig)
            plt.close(fig)  # shown once, in the panel, not again by the inline backend
        self.figure = fig


def overlap_explorer(
    relevances: dict[str, Relevance], k: float = 0.10, per: str = "site"
) -> Explorer:
    """How the overlap of task-specific neuron sets depends on how many neurons you keep.

    A slider over k (the fraction kept, 0.5% to 50%) and a per-site / global toggle; the panel
    shows the task x task Jaccard matrix (``analysis.overlap_matrix`` of
    ``rel.top_k(k, per=per)``) with the random-set baseline ``k / (2 - k)`` in its title.

    Args:
        relevances: {task: Relevance} from ``tn.attribute`` or ``experiments.detect``.
    """
    if len(relevances) < 2:
        raise ValueError(f"overlap needs at least two tasks' relevances, got {len(relevances)}")
    k_slider = widgets.FloatLogSlider(
        value=k,
        base=10,
        min=-2.3,
        max=-0.3,
        step=0.05,
        description="k",
        readout_format=".3f",
        continuous_update=False,
    )
    per_toggle = widgets.ToggleButtons(
        options=["site", "global"], value=per, description="top-k per"
    )

    def compute() -> pd.DataFrame:
        sets = {
            name: rel.top_k(k_slider.value, per=per_toggle.value)
            for name, rel in relevances.items()
        }
        return overlap_matrix(sets)

    def draw(matrix: pd.DataFrame):
        return plot_overlap(
            matrix,
            baseline=expected_random_jaccard(k_slider.value),
            title=f"Jaccard overlap, top {100 * k_slider.value:.1f}% per {per_toggle.value}",
        )

    panel = Explorer([k_slider, per_toggle], compute, draw)
    panel.k, panel.per = k_slider, per_toggle
    return panel


def deactivation_explorer(df: pd.DataFrame) -> Explorer:
    """Browse a deactivation DataFrame (``experiments.deactivation``, one or several models):
    pick the model and the measure (answer NLL or the task metric); the panel shows the
    deactivated-set x evaluated-task heatmap of the change against nothing deactivated.
    ``panel.frame`` is the part of ``df`` for the chosen model."""
    models = list(dict.fromkeys(df["model"]))
    model_menu = widgets.Dropdown(options=models, value=models[0], description="model")
    value_toggle = widgets.ToggleButtons(
        options=[("answer NLL", "nll"), ("metric", "score")], value="nll", description="measure"
    )

    def compute() -> pd.DataFrame:
        return df[df["model"] == model_menu.value]

    def draw(part: pd.DataFrame):
        return plot_deactivation_heatmap(part, value=value_toggle.value, model=model_menu.value)

    panel = Explorer([model_menu, value_toggle], compute, draw)
    panel.model, panel.value = model_menu, value_toggle
    return panel


def generalization_explorer(sweep: pd.DataFrame, value: str = "gain") -> Explorer:
    """Move the trained proportion p and the group over precomputed ``proportion_sweep`` rows:
    per task, the gain of task neurons, random neurons (mean over seeds) and full fine-tuning
    (``experiments.sweep_view`` drawn by ``plots.plot_sweep_bars``)."""

    groups = list(dict.fromkeys(sweep["group"]))
    ps = sorted(set(sweep["p"]) - {1.0}) or [1.0]
    group_menu = widgets.Dropdown(options=groups, value=groups[0], description="group")
    p_slider = widgets.SelectionSlider(options=ps, value=ps[0], description="p")
    value_toggle = widgets.ToggleButtons(options=["gain", "nll_gain"], value=value)

    def compute() -> pd.DataFrame:
        return sweep_view(sweep, group_menu.value, p_slider.value)

    def draw(view: pd.DataFrame):
        return plot_sweep_bars(view, value=value_toggle.value)

    panel = Explorer([group_menu, p_slider, value_toggle], compute, draw)
    panel.group, panel.p, panel.value = group_menu, p_slider, value_toggle
    return panel


def continual_explorer(runs: dict) -> Explorer:
    """Pick a continual-learning run ({method: ``ContinualResult``}) and a view: its accuracy
    matrix A[i, j] (``plots.plot_cl_matrix``) or each task's score along the sequence
    (``plots.plot_cl_trajectories``). ``panel.frame`` is the run's ``scores``."""

    methods = list(runs)
    method_menu = widgets.Dropdown(options=methods, value=methods[0], description="method")
    view_toggle = widgets.ToggleButtons(options=["matrix", "trajectories"], value="matrix")

    def compute() -> pd.DataFrame:
        return runs[method_menu.value].scores

    def draw(scores: pd.DataFrame):
        plot = plot_cl_matrix if view_toggle.value == "matrix" else plot_cl_trajectories
        return plot(scores, title=f"{method_menu.value}: {view_toggle.value}")

    panel = Explorer([method_menu, view_toggle], compute, draw)
    panel.method, panel.view = method_menu, view_toggle
    return panel


class NeuronBrowser(widgets.VBox):
    """The panel ``neuron_browser`` returns. Controls: ``task``, ``site``, ``neuron``, ``next``
    (the next neuron of the task's set); ``view`` (an HTML widget) shows ``page``, the
    ``NeuronPage`` of the chosen neuron; ``order`` is each task's neurons in browsing order."""

    def __init__(self, model, tok, data, sets, order, page_options):
        self.model, self.tok, self.data, self.sets, self.order = model, tok, data, sets, order
        self.page_options, self.pages, self.page = page_options, {}, None
        self.task = widgets.Dropdown(options=list(sets), description="task")
        self.site = widgets.Dropdown(description="site")
        self.neuron = widgets.Dropdown(description="neuron")
        self.next = widgets.Button(description="next in this task's set")
        self.status, self.view = widgets.HTML(), widgets.HTML()
        for control, name in (
            (self.task, "tn-task"),
            (self.site, "tn-site"),
            (self.neuron, "tn-neuron"),
            (self.next, "tn-next"),
            (self.view, "tn-page"),
            (self.status, "tn-status"),
        ):
            control.add_class(name)
        super().__init__(
            [widgets.HBox([self.task, self.site, self.neuron, self.next]), self.status, self.view]
        )
        self.add_class("tn-neuron-browser")
        self._quiet = False
        self.task.observe(lambda _change: self.show(*self.order[self.task.value][0]), names="value")
        self.site.observe(
            lambda _change: self._unless_quiet(
                lambda: self.show(self.site.value, self._indices(self.site.value)[0])
            ),
            names="value",
        )
        self.neuron.observe(
            lambda _change: self._unless_quiet(
                lambda: self.show(self.site.value, self.neuron.value)
            ),
            names="value",
        )
        self.next.on_click(lambda _button: self.show(*self._following()))
        self.show(*self.order[self.task.value][0])

    def _unless_quiet(self, callback) -> None:
        if not self._quiet:
            callback()

    def _indices(self, site: str) -> list[int]:
        return [index for name, index in self.order[self.task.value] if name == site]

    def _following(self) -> tuple[str, int]:
        order = self.order[self.task.value]
        here = order.index((self.site.value, self.neuron.value))
        return order[(here + 1) % len(order)]

    def show(self, site: str, neuron: int) -> None:
        """Set the controls to (site, neuron) and show its page (computed once per neuron)."""
        self._quiet = True
        try:
            sites = list(dict.fromkeys(name for name, _ in self.order[self.task.value]))
            self.site.options, self.site.value = sites, site
            self.neuron.options, self.neuron.value = self._indices(site), neuron
        finally:
            self._quiet = False
        if (site, neuron) not in self.pages:
            self.status.value = f"computing the page of {site} #{neuron}…"
            self.pages[(site, neuron)] = neuron_page(
                self.model, self.tok, self.data, site, neuron, **self.page_options
            )
        self.page = self.pages[(site, neuron)]
        self.view.value = self.page.html
        position = self.order[self.task.value].index((site, neuron))
        self.status.value = (
            f"{self.task.value}: neuron {position + 1} of "
            f"{len(self.order[self.task.value])} in its set"
        )


def neuron_browser(
    model,
    tok,
    tasks,
    sets,
    *,
    relevances=None,
    n_examples: int = 16,
    k: int = 10,
    effect_examples: int = 4,
) -> NeuronBrowser:
    """Browse the neurons of each task's set: pick the task, the site and the neuron (or
    "next in this task's set") and see its page (``tn.neuron_page``) over ``n_examples`` test
    examples of every task.

    Args:
        tasks: {name: Task} or a list of Tasks: the data every page is computed on.
        sets: {task name: NeuronSet} (a NeuronSet alone: one entry named by its ``name``).
        relevances: {task name: Relevance}: pages show the relevance ranks, and a task's
            neurons are browsed most relevant first (else in site order).
        n_examples: test examples of each task that every page is computed on.
        k: top and bottom examples a page shows (as ``tn.neuron_page``).
        effect_examples: examples a page's deactivation effect is measured on (as
            ``tn.neuron_page``).
    """
    if not isinstance(tasks, dict):
        tasks = {task.name: task for task in tasks}
    if isinstance(sets, NeuronSet):
        sets = {sets.name or "neurons": sets}
    data = [task.test[:n_examples] for task in tasks.values()]
    order = {}
    for name, neurons in sets.items():
        pairs = [(site, int(i)) for site, idx in neurons.indices.items() for i in idx]
        if not pairs:
            raise ValueError(f"the neuron set of {name!r} is empty")
        if relevances and name in relevances:
            scores = relevances[name].scores
            pairs.sort(key=lambda pair: -float(scores[pair[0]][pair[1]]))
        order[name] = pairs
    return NeuronBrowser(
        model,
        tok,
        data,
        sets,
        order,
        {"k": k, "relevances": relevances, "effect_examples": effect_examples},
    )
