"""The playground's plain functions: the three conditions of one task's neurons (all on, task off,
random off), what the model answers under each, and how it scores a split under each.

    cache = RelevanceCache(model, tok)                  # one attribution per task, kept
    sets = condition_sets(cache(task), k=0.01)          # {"all on": None, "task off": ..., ...}
    compare_conditions(model, tok, task, "I loved it", sets)   # one input -> a DataFrame
    condition_scores(model, tok, task.test[:32], sets)          # a split -> metric and NLL

``ui.playground.neuron_playground`` puts controls and figures over these; scripts and tests call
them directly.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import pandas as pd
import torch

from ..core.layout import layout_for
from ..attribution.run import attribute
from ..neurons.relevance import Relevance
from ..scoring.evaluation import evaluate, generate_answers, option_log_likelihoods
from ..hooks.interventions import deactivate
from ..scoring.loss import answer_losses
from ..neurons.neuron_set import NeuronSet, check_fraction
from ..core.placement import input_device
from ..tasks import Example, Split, Task, answer_ids, collate, encode, prompt_ids

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

    def __init__(
        self,
        model,
        tok,
        *,
        n_examples: int = 32,
        batch_size: int = 8,
        max_length: int = 512,
        relevances: Mapping[str, Relevance] | None = None,
    ):
        if n_examples < 1:
            raise ValueError(f"n_examples must be at least 1, got {n_examples}")
        self.model, self.tok = model, tok
        self.n_examples, self.batch_size, self.max_length = n_examples, batch_size, max_length
        self.computed: list[str] = []
        self._relevances: dict[str, Relevance] = {}
        for name, relevance in (relevances or {}).items():
            layout_for(model, relevance.sizes).check(
                relevance.sizes,
                made_for=relevance.provenance.get("model"),
                what=f"relevance of {name!r}",
            )
            self._relevances[name] = relevance

    def __call__(self, task: Task) -> Relevance:
        if task.name not in self._relevances:
            self._relevances[task.name] = attribute(
                self.model,
                self.tok,
                task.train[: self.n_examples],
                batch_size=self.batch_size,
                max_length=self.max_length,
                progress=False,
            )
            self.computed.append(task.name)
        return self._relevances[task.name]

    def __contains__(self, name: str) -> bool:
        return name in self._relevances

    def __getitem__(self, name: str) -> Relevance:
        return self._relevances[name]

    def __len__(self) -> int:
        return len(self._relevances)

    def __repr__(self) -> str:
        return (
            f"RelevanceCache({sorted(self._relevances)}, n_examples={self.n_examples}, "
            f"computed here: {self.computed})"
        )


def condition_sets(
    relevance: Relevance, k: float, *, per: str = "site", seed: int = 0
) -> dict[str, NeuronSet]:
    """The three conditions as NeuronSets to switch off: {"all on": empty, "task off": the top
    ``k`` (``relevance.top_k(k, per=per)``), "random off": as many random neurons per site
    (``NeuronSet.random_like(task, seed)``)}.

    ``k`` is a fraction in [0, 1]; ``k = 0`` (or a k that rounds to no neuron in any site)
    gives empty sets, so all three conditions are the unchanged model.
    """
    if k != 0:
        check_fraction(k)
    if k == 0:
        task = NeuronSet(
            {},
            relevance.sizes,
            {
                "model": relevance.provenance.get("model"),
                "task": relevance.provenance.get("task"),
                "k": 0.0,
                "per": per,
            },
        )
    else:
        task = relevance.top_k(k, per=per)
    empty = NeuronSet(
        {}, relevance.sizes, {"model": relevance.provenance.get("model"), "name": "none"}
    )
    return {"all on": empty, "task off": task, "random off": NeuronSet.random_like(task, seed)}


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
    batch = {
        key: value.to(input_device(model))
        for key, value in collate(encoded, tok.pad_token_id).items()
    }
    with torch.inference_mode():
        per_token, n_tokens = answer_losses(model, batch)
    return -float(per_token[0]) * n_tokens


def compare_conditions(
    model,
    tok,
    task: Task,
    text: str,
    sets: Mapping[str, NeuronSet],
    *,
    expected: str | None = None,
    max_new_tokens: int | None = None,
) -> pd.DataFrame:
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
            row["answer"] = generate_answers(model, tok, [prompt], max_new_tokens=max_new_tokens)[0]
            if classification:
                log_lik = option_log_likelihoods(model, tok, split)["log_likelihoods"][0]
                probs = torch.softmax(log_lik, dim=0)
                row["prediction"] = labels[int(log_lik.argmax())]
                row["p_expected"] = float(probs[labels.index(target)]) if target else math.nan
                row.update({f"p({label})": float(p) for label, p in zip(labels, probs)})
            else:
                row["p_expected"] = (
                    math.exp(_answer_log_probability(model, tok, task, text, target))
                    if target
                    else math.nan
                )
        rows.append(row)
    frame = pd.DataFrame(rows)
    frame.attrs.update(task=task.name, input=text, expected=target, measure=measure)
    return frame


def condition_scores(
    model, tok, split: Split, sets: Mapping[str, NeuronSet], *, batch_size: int = 16
) -> pd.DataFrame:
    """``tn.evaluate`` on ``split`` under each condition: one row a condition with condition,
    neurons_off, task, metric, score (in [0, 1]), nll (nats per answer token), n."""
    rows = []
    for condition, neurons in sets.items():
        with deactivate(model, neurons):
            result = evaluate(model, tok, split, batch_size=batch_size, progress=False)
        rows.append(
            {
                "condition": condition,
                "neurons_off": len(neurons),
                **{key: result[key] for key in ("task", "metric", "score", "nll", "n")},
            }
        )
    return pd.DataFrame(rows)


def layer_counts(neurons: NeuronSet, layers: tuple[int, int] | None = None) -> pd.DataFrame:
    """Selected neurons per layer and site kind, for layers ``lo..hi`` (inclusive; default all):
    one row a (layer, kind) with layer, kind, selected, neurons, fraction."""
    counts = neurons.counts()
    if layers is not None:
        lo, hi = layers
        counts = counts[(counts["layer"] >= lo) & (counts["layer"] <= hi)]
    return counts[["layer", "kind", "selected", "neurons", "fraction"]].reset_index(drop=True)
