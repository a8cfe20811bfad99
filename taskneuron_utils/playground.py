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
import math
from collections.abc import Mapping, Sequence

import ipywidgets as widgets
import pandas as pd
import torch

from .architectures import layout_for, layout_of
from .attribution import Relevance, attribute
from .evaluation import evaluate, generate_answers, option_log_likelihoods
from .interventions import deactivate
from .loss import answer_losses
from .neurons import NeuronSet
from .tasks import Example, Split, Task, answer_ids, collate, encode, prompt_ids

__all__ = ["CONDITIONS", "RelevanceCache", "condition_sets", "compare_conditions",
           "condition_scores", "layer_counts", "plot_conditions", "plot_condition_scores",
           "plot_layer_counts", "Playground", "neuron_playground"]

CONDITIONS = ("all on", "task off", "random off")


# ----------------------------------------------------------------------------------------------
# Plain functions: relevance cache, the three conditions, answers, scores, layer counts
# ----------------------------------------------------------------------------------------------


class RelevanceCache:
    """The relevance of each task on one model, computed at most once per task.

    ``cache(task)`` runs ``tn.attribute`` on the first ``n_examples`` of ``task.train`` the
    first time a task is asked for, and returns the stored Relevance afterwards. ``computed``
    lists the tasks this cache attributed, in order (relevances passed in are not listed).

    Args:
        relevances: {task name: Relevance} computed elsewhere (``tn.attribute``,
            ``Relevance.load``), checked against the model's layout and used as they are.
    """

    def __init__(self, model, tok, *, n_examples: int = 32, batch_size: int = 8,
                 max_length: int = 512, relevances: Mapping[str, Relevance] | None = None):
        if n_examples < 1:
            raise ValueError(f"n_examples must be at least 1, got {n_examples}")
        self.model, self.tok = model, tok
        self.n_examples, self.batch_size, self.max_length = n_examples, batch_size, max_length
        self.computed: list[str] = []
        self._relevances: dict[str, Relevance] = {}
        for name, relevance in (relevances or {}).items():
            layout_for(model, relevance.sizes).check(
                relevance.sizes, made_for=relevance.provenance.get("model"),
                what=f"relevance of {name!r}")
            self._relevances[name] = relevance

    def __call__(self, task: Task) -> Relevance:
        if task.name not in self._relevances:
            self._relevances[task.name] = attribute(
                self.model, self.tok, task.train[:self.n_examples], batch_size=self.batch_size,
                max_length=self.max_length, progress=False)
            self.computed.append(task.name)
        return self._relevances[task.name]

    def __contains__(self, name: str) -> bool:
        return name in self._relevances

    def __getitem__(self, name: str) -> Relevance:
        return self._relevances[name]

    def __len__(self) -> int:
        return len(self._relevances)

    def __repr__(self) -> str:
        return (f"RelevanceCache({sorted(self._relevances)}, n_examples={self.n_examples}, "
                f"computed here: {self.computed})")


def condition_sets(relevance: Relevance, k: float, *, per: str = "site",
                   seed: int = 0) -> dict[str, NeuronSet]:
    """The three conditions as NeuronSets to switch off: {"all on": empty, "task off": the top
    ``k`` (``relevance.top_k(k, per=per)``), "random off": as many random neurons per site
    (``NeuronSet.random_like(task, seed)``)}.

    ``k`` is a fraction in [0, 1]; ``k = 0`` (or a k that rounds to no neuron in any site)
    gives empty sets, so all three conditions are the unchanged model.
    """
    if not 0 <= k <= 1:
        raise ValueError(f"k is a fraction in [0, 1] (0.01 = the top 1%), got {k}")
    if k == 0:
        task = NeuronSet({}, relevance.sizes,
                         {"model": relevance.provenance.get("model"),
                          "task": relevance.provenance.get("task"), "k": 0.0, "per": per})
    else:
        task = relevance.top_k(k, per=per)
    empty = NeuronSet({}, relevance.sizes, {"model": relevance.provenance.get("model"),
                                            "name": "none"})
    return {"all on": empty, "task off": task, "random off": NeuronSet.random_like(task, seed)}


def _device(model) -> torch.device:
    return next(model.parameters()).device


def _match_label(expected: str | None, labels: Sequence[str]) -> str | None:
    """The label ``expected`` names (exact, else case- and space-insensitive), or None."""
    if expected is None:
        return None
    if expected in labels:
        return expected
    folded = {label.strip().lower(): label for label in labels}
    return folded.get(expected.strip().lower())


def _answer_log_probability(model, tok, task: Task, text: str, answer: str) -> float:
    """log P(answer tokens + end marker | prompt), nats, teacher-forced."""
    encoded = encode(tok, [Example(text, answer)], instruction=task.instruction)
    batch = {key: value.to(_device(model))
             for key, value in collate(encoded, tok.pad_token_id).items()}
    with torch.inference_mode():
        per_token, n_tokens = answer_losses(model, batch)
    return -float(per_token[0]) * n_tokens


def compare_conditions(model, tok, task: Task, text: str, sets: Mapping[str, NeuronSet], *,
                       expected: str | None = None,
                       max_new_tokens: int | None = None) -> pd.DataFrame:
    """What the model answers to one input under each condition of ``sets``.

    Args:
        task: gives the instruction (the prompt is ``format_prompt(tok, task.instruction,
            text)``) and, for classification, the label options.
        text: the input, as a user would type it.
        sets: {condition: NeuronSet switched off}, e.g. ``condition_sets(...)``.
        expected: the answer you expect (for a classification task, one of its labels; case
            is ignored). Optional.
        max_new_tokens: generation length; default: the expected answer's (or longest
            label's) token count + 6, or 16.

    Returns:
        One row a condition, in ``sets`` order: ``condition``, ``neurons_off``, ``answer`` (the
        greedy generated answer), ``p_expected`` and, for classification, ``prediction`` (the
        best-scoring label, as ``tn.evaluate`` picks it) and one ``p(<label>)`` column a label.
        ``p_expected`` is, for classification, the expected label's probability among the
        labels (softmax of their summed log-likelihoods); for generation, the probability of
        the whole expected answer (its tokens and the end marker). NaN without ``expected``.
        ``frame.attrs`` holds task, input, expected and measure (what ``p_expected`` is).
    """
    if not text or not text.strip():
        raise ValueError("type an input first: the text is empty")
    classification = task.category == "classification" and bool(task.labels)
    labels = list(task.labels) if classification else []
    if classification:
        target = _match_label(expected, labels)
        measure = "P(label | labels)"
        split = Split([Example(text, labels[0])], task, "playground")
        lengths = [len(answer_ids(tok, label)) for label in labels]
    else:
        target = expected if expected and expected.strip() else None
        measure = "P(answer)"
        lengths = [len(answer_ids(tok, target))] if target else []
    if max_new_tokens is None:
        max_new_tokens = max(lengths) + 6 if lengths else 16
    prompt = prompt_ids(tok, task.instruction, text)

    rows = []
    for condition, neurons in sets.items():
        row = {"condition": condition, "neurons_off": len(neurons)}
        with deactivate(model, neurons):
            row["answer"] = generate_answers(model, tok, [prompt],
                                             max_new_tokens=max_new_tokens)[0]
            if classification:
                log_lik = option_log_likelihoods(model, tok, split)["log_likelihoods"][0]
                probs = torch.softmax(log_lik, dim=0)
                row["prediction"] = labels[int(log_lik.argmax())]
                row["p_expected"] = float(probs[labels.index(target)]) if target else math.nan
                row.update({f"p({label})": float(p) for label, p in zip(labels, probs)})
            else:
                row["p_expected"] = (math.exp(_answer_log_probability(model, tok, task, text,
                                                                      target))
                                     if target else math.nan)
        rows.append(row)
    frame = pd.DataFrame(rows)
    frame.attrs.update(task=task.name, input=text, expected=target, measure=measure)
    return frame


def condition_scores(model, tok, split: Split, sets: Mapping[str, NeuronSet], *,
                     batch_size: int = 16) -> pd.DataFrame:
    """``tn.evaluate`` on ``split`` under each condition: one row a condition with condition,
    neurons_off, task, metric, score (in [0, 1]), nll (nats per answer token), n."""
    rows = []
    for condition, neurons in sets.items():
        with deactivate(model, neurons):
            result = evaluate(model, tok, split, batch_size=batch_size, progress=False)
        rows.append({"condition": condition, "neurons_off": len(neurons),
                     **{key: result[key] for key in ("task", "metric", "score", "nll", "n")}})
    return pd.DataFrame(rows)


def layer_counts(neurons: NeuronSet, layers: tuple[int, int] | None = None) -> pd.DataFrame:
    """Selected neurons per layer and site kind, for layers ``lo..hi`` (inclusive; default all):
    one row a (layer, kind) with layer, kind, selected, neurons, fraction."""
    counts = neurons.counts()
    if layers is not None:
        lo, hi = layers
        counts = counts[(counts["layer"] >= lo) & (counts["layer"] <= hi)]
    return counts[["layer", "kind", "selected", "neurons", "fraction"]].reset_index(drop=True)


# ----------------------------------------------------------------------------------------------
# Figures (each takes ax= and returns the Axes it drew on)
# ----------------------------------------------------------------------------------------------


def _new_axes(ax, size):
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=size, layout="constrained")
    return ax


_COLOURS = {"all on": "tab:green", "task off": "tab:red", "random off": "tab:gray"}


def _shorten(text: str, n: int = 34) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= n else text[:n - 1] + "…"


def plot_conditions(frame: pd.DataFrame, *, ax=None):
    """Horizontal bars of ``p_expected`` per condition (``compare_conditions``), each labelled
    with the model's answer under that condition."""
    ax = _new_axes(ax, (6.5, 1.3 + 0.5 * len(frame)))
    conditions = list(frame["condition"])
    values = frame["p_expected"].fillna(0.0).to_numpy()
    colours = [_COLOURS.get(c, "tab:blue") for c in conditions]
    ax.barh(range(len(frame)), values, color=colours)
    ax.set_yticks(range(len(frame)), [f"{c}\n({n:,} off)" for c, n in
                                      zip(conditions, frame["neurons_off"])])
    ax.invert_yaxis()
    ax.set_xlim(0, 1.6)
    ax.set_xticks([0, 0.25, 0.5, 0.75, 1.0])
    for i, (value, answer) in enumerate(zip(values, frame["answer"])):
        ax.text(value + 0.02, i, f"{value:.2f}  “{_shorten(answer)}”", va="center", fontsize=8)
    expected = frame.attrs.get("expected")
    measure = frame.attrs.get("measure", "P(expected)")
    ax.set_xlabel(f"{measure} of the expected answer" + (f" “{expected}”" if expected else ""))
    ax.set_title(f"{frame.attrs.get('task', '')}: the model's answers".strip(": "))
    ax.spines[["top", "right"]].set_visible(False)
    return ax


def plot_condition_scores(scores: pd.DataFrame, *, ax=None):
    """Bars of the task metric per condition (``condition_scores``), NLL written on each bar."""
    ax = _new_axes(ax, (5, 3.2))
    conditions = list(scores["condition"])
    bars = ax.bar(conditions, scores["score"], color=[_COLOURS.get(c, "tab:blue")
                                                      for c in conditions])
    for bar, nll, n_off in zip(bars, scores["nll"], scores["neurons_off"]):
        ax.annotate(f"NLL {nll:.2f}\n{n_off:,} off", (bar.get_x() + bar.get_width() / 2,
                                                       bar.get_height()),
                    ha="center", va="bottom", fontsize=8)
    ax.set_ylim(0, 1.25)
    metric = scores["metric"].iloc[0] if len(scores) else "score"
    ax.set_ylabel(metric)
    task = scores["task"].iloc[0] if len(scores) else ""
    ax.set_title(f"{task}: {metric} on {int(scores['n'].iloc[0]) if len(scores) else 0} "
                 f"test examples")
    ax.spines[["top", "right"]].set_visible(False)
    return ax


def plot_layer_counts(counts: pd.DataFrame, *, ax=None, title: str | None = None):
    """Stacked bars: selected neurons per layer, one colour a site kind (``layer_counts``)."""
    ax = _new_axes(ax, (6.5, 2.8))
    table = counts.pivot_table(index="layer", columns="kind", values="selected",
                               aggfunc="sum", fill_value=0, sort=False)
    bottom = None
    for kind in table.columns:
        ax.bar(table.index, table[kind], bottom=bottom, label=kind, width=0.8)
        bottom = table[kind] if bottom is None else bottom + table[kind]
    ax.set_xlabel("layer")
    ax.set_ylabel("neurons switched off")
    if len(table):
        ax.set_xticks(list(table.index))
        ax.legend(title="site", fontsize=8, ncols=len(table.columns), loc="upper left",
                  bbox_to_anchor=(0, 1.0), frameon=False)
        ax.set_ylim(0, max(1, float(bottom.max())) * 1.3)
    ax.set_title(title or "Where the switched-off task neurons sit")
    ax.spines[["top", "right"]].set_visible(False)
    return ax


# ----------------------------------------------------------------------------------------------
# The widget
# ----------------------------------------------------------------------------------------------


def _frame_html(frame: pd.DataFrame) -> str:
    shown = frame.copy()
    for column in shown.columns:
        if column == "p_expected" or column.startswith("p("):
            shown[column] = shown[column].map(lambda v: "–" if pd.isna(v) else f"{v:.3f}")
    return shown.to_html(index=False, classes="tn-playground-table", border=0, escape=True,
                         justify="left")


class Playground(widgets.VBox):
    """The panel ``neuron_playground`` returns. Controls: ``task``, ``k``, ``per``, ``text``,
    ``expected``, ``layers``; what they show: ``frame`` (``compare_conditions``), ``figure``
    (``plot_conditions``), ``layer_frame`` (``layer_counts``), ``layer_figure``
    (``plot_layer_counts``), ``sets`` (the three NeuronSets), ``table`` (the HTML table widget),
    ``status`` (an HTML line: what is computing, or what went wrong)."""

    def __init__(self, model, tok, tasks: dict[str, Task], cache: RelevanceCache, *,
                 task: str, k: float, per: str, seed: int, text: str | None,
                 expected: str | None, max_new_tokens: int | None):
        self.model, self.tok, self.tasks, self.cache = model, tok, tasks, cache
        self.seed, self.max_new_tokens = seed, max_new_tokens
        n_layers = 1 + max(layout_of(model).sites, key=lambda s: s.layer).layer
        style = {"description_width": "initial"}
        self.task = widgets.Dropdown(options=list(tasks), value=task, description="task",
                                     style=style)
        self.k = widgets.FloatSlider(value=k, min=0.0, max=max(0.5, k), step=0.005,
                                     description="k (fraction off)", readout_format=".1%",
                                     continuous_update=False, style=style,
                                     layout=widgets.Layout(width="420px"))
        self.per = widgets.ToggleButtons(options=["site", "global"], value=per,
                                         description="top-k per",
                                         style={**style, "button_width": "64px"})
        first = tasks[task].test[0] if len(tasks[task].test) else None
        self.text = widgets.Textarea(value=text if text is not None else (first.input if first else ""),
                                     description="your input", continuous_update=False,
                                     style=style, layout=widgets.Layout(width="95%", height="4em"))
        self.expected = widgets.Text(
            value=expected if expected is not None else (first.output if first else ""),
            description="expected answer", continuous_update=False, style=style)
        self.layers = widgets.IntRangeSlider(value=(0, n_layers - 1), min=0, max=n_layers - 1,
                                             description="layers", continuous_update=False,
                                             style=style, layout=widgets.Layout(width="420px"))
        self.status = widgets.HTML()
        self.table = widgets.HTML()
        self.answers_out = widgets.Output()
        self.layers_out = widgets.Output()
        for control, name in ((self.k, "tn-k"), (self.layers, "tn-layers"), (self.text, "tn-text"),
                              (self.task, "tn-task"), (self.table, "tn-answers"),
                              (self.status, "tn-status")):
            control.add_class(name)
        super().__init__([
            self.task, widgets.HBox([self.k, self.per]), self.text, self.expected, self.status,
            self.table, self.answers_out,
            widgets.HTML("<b>Where are they?</b> Selected neurons per layer and site kind "
                         "(the random set has the same count in every site)."),
            self.layers, self.layers_out,
        ])
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
            control.observe(lambda _change: self._unless_quiet(self.refresh_answers),
                            names="value")
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
            self._say(f"computing the relevance of every neuron on {self.cache.n_examples} "
                      f"examples of <b>{html.escape(task.name)}</b> (once per task)…")
        relevance = self.cache(task)
        self.sets = condition_sets(relevance, self.k.value, per=self.per.value, seed=self.seed)
        self.refresh_layers()
        self.refresh_answers()

    def refresh_answers(self) -> None:
        task = self.tasks[self.task.value]
        try:
            frame = compare_conditions(self.model, self.tok, task, self.text.value, self.sets,
                                       expected=self.expected.value or None,
                                       max_new_tokens=self.max_new_tokens)
        except ValueError as err:
            self._say(f"⚠ {html.escape(str(err))}")
            return
        self.frame = frame
        # The status line goes last: when it shows the new k, the table and figure are new too.
        self.figure = self._show(self.answers_out, plot_conditions(frame))
        self.table.value = _frame_html(frame)
        note = ""
        if task.category == "classification" and frame.attrs["expected"] is None:
            note = (f" (expected answer: one of {', '.join(task.labels)} to see its "
                    f"probability)")
        self._say(f"{len(self.sets['task off']):,} of {sum(self.sets['task off'].sizes.values()):,}"
                  f" neurons off (top {100 * self.k.value:.1f}% per {self.per.value}){note}")

    def refresh_layers(self) -> None:
        lo, hi = self.layers.value
        self.layer_frame = layer_counts(self.sets["task off"], (lo, hi))
        ax = plot_layer_counts(self.layer_frame, title=(
            f"{self.task.value}: top {100 * self.k.value:.1f}% per {self.per.value}, "
            f"layers {lo}-{hi}"))
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


def neuron_playground(model, tok, tasks: Mapping[str, Task] | Sequence[Task] | Task, *,
                      task: str | None = None, k: float = 0.10, per: str = "site",
                      n_examples: int = 32, relevances: Mapping[str, Relevance] | RelevanceCache
                      | None = None, seed: int = 0, text: str | None = None,
                      expected: str | None = None, batch_size: int = 8,
                      max_new_tokens: int | None = None) -> Playground:
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
        text, expected: the first input and its expected answer (default: the task's first
            test example).

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
        cache = RelevanceCache(model, tok, n_examples=n_examples, batch_size=batch_size,
                               relevances=relevances)
    return Playground(model, tok, tasks, cache, task=task, k=k, per=per, seed=seed, text=text,
                      expected=expected, max_new_tokens=max_new_tokens)
