"""One neuron's page, and pages of many neurons exported in Neuronpedia's layout.

    page = tn.neuron_page(model, tok, [suite["addition"], suite["nli"]], "layers.20.mlp.act",
                          811, relevances={"addition": rel_add, "nli": rel_nli})
    page                                 # in a notebook: the HTML page
    page.save("neuron.html")             # the same page as a file
    tn.export_neuron_pages(model, tok, data, ns, "pages/")   # jsonl.gz, Neuronpedia's fields

A page holds: the neuron's relevance rank per task (from ``tn.attribute`` results), its
statistics and per-task activation histogram (``pages.scan.scan``), its top and bottom
examples with every token coloured by activation, its vocabulary projection
(``tn.vocab_projection``) and the effect of switching it off on each task: the change of the
answer NLL (``loss.answer_nlls``, the ``nll`` that ``tn.evaluate`` reports, teacher-forced, so
no generation is run) under ``tn.deactivate`` of the one-neuron set, on a few test examples
per task, with a 95% interval over examples.
"""

from __future__ import annotations

import gzip
import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from ..core.layout import layout_of, model_name
from ..io.storage import atomic_write, atomic_write_all
from ..hooks.interventions import deactivate
from ..scoring.loss import answer_nlls
from .scan import ScanData, Units, resolve_neurons, scan, token_values
from ..neurons.neuron_set import NeuronSet
from ..tasks import Split, Task, encode
from .vocab import vocab_projection
from ..plots.neuron_page import render_page

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

    from ..neurons.relevance import Relevance

SNIPPET = (20, 10)  # tokens shown before and after the example's token on a page


def relevance_ranks(relevances, site: str, neuron: int) -> pd.DataFrame:
    """Per task ({task: Relevance}): the neuron's relevance score (nats per example), its rank
    among its site's neurons (1 = most relevant), the site's size and the percentile."""
    rows = []
    for task, relevance in relevances.items():
        scores = relevance.scores.get(site)
        if scores is None:
            rows.append(
                {
                    "task": task,
                    "score": float("nan"),
                    "rank": None,
                    "of": None,
                    "percentile": float("nan"),
                }
            )
            continue
        score = float(scores[neuron])
        rank = 1 + int((scores > score).sum())
        rows.append(
            {
                "task": task,
                "score": score,
                "rank": rank,
                "of": len(scores),
                "percentile": 100 * (1 - (rank - 1) / len(scores)),
            }
        )
    return pd.DataFrame(rows)


def _splits(data) -> list[Split]:
    """The task splits among ``data`` (a Task: its test split); strings have no task."""
    if isinstance(data, dict):
        data = list(data.values())
    if isinstance(data, (Split, Task)):
        data = [data]
    return [
        part.test if isinstance(part, Task) else part
        for part in data
        if isinstance(part, (Split, Task))
    ]


def deactivation_effect(
    model, tok, data, site: str, neuron: int, *, n_examples: int = 8
) -> pd.DataFrame:
    """Per task of ``data``: the answer NLL (nats per answer token) of its first
    ``n_examples`` examples with everything on, with the neuron switched off, the change and
    a 95% normal interval of the mean per-example change (per token)."""
    ((found, index),) = resolve_neurons(model, [(site, neuron)])
    sizes = layout_of(model, found.kind)
    alone = NeuronSet({found.name: [index]}, sizes, {"model": sizes.model})
    rows = []
    for split in _splits(data):
        encoded = encode(tok, split[:n_examples])
        on, counts = answer_nlls(model, tok, encoded)
        with deactivate(model, alone):
            off, _ = answer_nlls(model, tok, encoded)
        per_example = (off - on) / counts
        spread = float(per_example.std()) if len(per_example) > 1 else float("nan")
        rows.append(
            {
                "task": split.task.name,
                "n": len(encoded),
                "nll": float(on.sum() / counts.sum()),
                "nll_off": float(off.sum() / counts.sum()),
                "nll_change": float((off - on).sum() / counts.sum()),
                "ci95": 1.96 * spread / len(per_example) ** 0.5,
            }
        )
    return pd.DataFrame(rows)


class NeuronPage:
    """What ``neuron_page`` shows, as data; its HTML is ``html`` (``_repr_html_`` in Jupyter).

    Attributes:
        site, neuron, model. stats: one row of ``neuron_stats``. values: every counted
        activation (task, activation). examples: ``top_examples``' rows for this neuron.
        sequences: {data_index: (token strings, activations)} of the examples shown. vocab:
        ``vocab_projection`` or None (then ``vocab_note`` says why). effect:
        ``deactivation_effect`` or None. ranks: ``relevance_ranks`` or None.
    """

    def __init__(self, **fields):
        self.__dict__.update(fields)

    def snippet(self, row) -> tuple[list[str], list[float], int]:
        """(tokens, activations, index of the example's token) around one example row."""
        tokens, values = self.sequences[row.data_index]
        lo = max(row.position - SNIPPET[0], 0)
        hi = row.position + 1 + SNIPPET[1]
        return tokens[lo:hi], values[lo:hi], row.position - lo

    @property
    def html(self) -> str:
        return render_page(self)

    def _repr_html_(self) -> str:
        return self.html

    def save(self, path: str | os.PathLike) -> Path:
        """Write the page as a self-contained HTML file, atomically."""
        path = Path(path)
        atomic_write(path, lambda tmp: Path(tmp).write_text(self.html, encoding="utf-8"))
        return path


def neuron_page(
    model: PreTrainedModel,
    tok: PreTrainedTokenizerBase,
    data: ScanData,
    site: str,
    neuron: int,
    *,
    k: int = 10,
    relevances: Mapping[str, Relevance] | None = None,
    effect_examples: int = 8,
    vocab_k: int = 10,
    batch_size: int = 16,
    progress: bool = False,
) -> NeuronPage:
    """One neuron's page over ``data`` (as ``tn.top_examples`` takes it): one pass that keeps
    its top and bottom ``k`` positions, statistics and every activation (for the histogram),
    a forward over the shown examples to colour their tokens, the vocabulary projection, and
    (``effect_examples`` > 0) the answer-NLL change on each task when it is switched off.
    Bad input fails before any forward pass (``pages.scan.resolve_neurons``)."""
    ((found, index),) = resolve_neurons(model, [(site, neuron)])
    result = scan(
        model,
        tok,
        data,
        [(found.name, index)],
        k=k,
        batch_size=batch_size,
        keep_values=True,
        progress=progress,
    )
    examples = result.examples(tok)
    shown = sorted(set(examples["data_index"]))
    values = token_values(model, tok, [result.items[i].ids for i in shown], found.name, index)
    sequences = {
        i: ([tok.decode([t]) for t in result.items[i].ids], v) for i, v in zip(shown, values)
    }
    try:
        vocab, note = vocab_projection(model, tok, found.name, index, k=vocab_k), ""
    except ValueError as err:
        vocab, note = None, str(err)
    effect = (
        deactivation_effect(model, tok, data, found.name, index, n_examples=effect_examples)
        if effect_examples and _splits(data)
        else None
    )
    return NeuronPage(
        site=found.name,
        neuron=index,
        model=model_name(model),
        stats=result.stats(),
        values=result.values(0),
        examples=examples,
        sequences=sequences,
        vocab=vocab,
        vocab_note=note,
        effect=effect,
        ranks=None if relevances is None else relevance_ranks(relevances, found.name, index),
    )


def check_folder(folder: Path, what: str) -> None:
    """``folder`` is a folder or can be made one, and is writable: else a one-line
    NotADirectoryError (it, or a folder above it, is a file) or PermissionError naming it."""
    for above in (folder, *folder.parents):
        if not above.exists():
            continue
        if above == folder and not above.is_dir():
            raise NotADirectoryError(f"{what} {folder} is an existing file; give a folder")
        if not above.is_dir():
            raise NotADirectoryError(f"{what} {folder}: {above} is a file, not a folder")
        if not os.access(above, os.W_OK | os.X_OK):
            raise PermissionError(f"{what} {folder}: {above} is not writable")
        return


def export_neuron_pages(
    model: PreTrainedModel,
    tok: PreTrainedTokenizerBase,
    data: ScanData,
    neurons: Units,
    path: str | os.PathLike,
    *,
    k: int = 20,
    vocab_k: int = 10,
    model_id: str | None = None,
    batch_size: int = 16,
    progress: bool = True,
) -> list[Path]:
    """Write the pages of ``neurons`` as Neuronpedia export files (gzipped JSONL, one record a
    line) under ``path/<model_id>/<source>/``, ``features/batch-0.jsonl.gz`` and
    ``activations/batch-0.jsonl.gz``, one source a site (``<layer>-mlp-<kind>``, our naming;
    ``layer`` in the records holds it, as Neuronpedia's source id does).

    Fields mapped. features: ``modelId``, ``layer`` (source), ``index`` (unit),
    ``maxActApprox`` (largest activation seen), ``frac_nonzero`` (firing rate: share of
    counted positions > 0), ``pos_str`` / ``pos_values`` and ``neg_str`` / ``neg_values``
    (vocabulary projection; empty for units without one), ``freq_hist_data_bar_heights`` /
    ``freq_hist_data_bar_values`` left empty (no histogram is kept when streaming).
    activations (one record per distinct top example): ``id``, ``modelId``, ``layer``,
    ``index``, ``tokens`` and ``values`` (the example's counted tokens and the unit's
    activation at each), ``maxValue``, ``maxValueTokenIndex``, ``minValue``, ``dataIndex``
    (the example's index in the scanned data), ``dataSource`` (its task). Bottom examples and
    per-task means are not in Neuronpedia's layout and are not exported.

    Returns: the files written (each atomically).
    """
    model_id = (
        model_id or re.sub(r"[^A-Za-z0-9_.-]+", "-", model_name(model).rsplit("/", 1)[-1]).lower()
    )
    # Where the files go, checked before the scan.
    check_folder(Path(path), "export_neuron_pages: path")
    check_folder(Path(path) / model_id, "export_neuron_pages: the model's folder")
    result = scan(model, tok, data, neurons, k=k, batch_size=batch_size, progress=progress)
    stats, examples = result.stats(), result.examples(tok)
    features: dict[str, list[dict]] = {}
    activations: dict[str, list[dict]] = {}
    for column, (site, index) in enumerate(result.neurons):
        source = f"{site.layer}-mlp-{site.kind}"
        base = {"modelId": model_id, "layer": source, "index": str(index)}
        try:
            vocab = vocab_projection(model, tok, site.name, index, k=vocab_k)
        except ValueError:
            vocab = pd.DataFrame(columns=["direction", "token", "logit"])
        promotes, suppresses = (vocab[vocab.direction == d] for d in ("promotes", "suppresses"))
        features.setdefault(source, []).append(
            {
                **base,
                "maxActApprox": float(stats["max"][column]),
                "frac_nonzero": float(stats["firing_rate"][column]),
                "pos_str": list(promotes.token),
                "pos_values": [float(v) for v in promotes.logit],
                "neg_str": list(suppresses.token),
                "neg_values": [float(v) for v in suppresses.logit],
                "freq_hist_data_bar_heights": [],
                "freq_hist_data_bar_values": [],
            }
        )
        rows = examples[
            (examples.site == site.name) & (examples.neuron == index) & (examples.sign == "top")
        ].drop_duplicates("data_index")
        items = [result.items[i] for i in rows.data_index]
        sequences = token_values(model, tok, [item.ids for item in items], site.name, index)
        for item, data_index, values in zip(items, rows.data_index, sequences):
            counted = values[item.start :]
            best = max(range(len(counted)), key=counted.__getitem__)
            activations.setdefault(source, []).append(
                {
                    **base,
                    "id": f"{source}:{index}:{data_index}",
                    "tokens": [tok.decode([t]) for t in item.ids[item.start :]],
                    "values": counted,
                    "maxValue": counted[best],
                    "maxValueTokenIndex": best,
                    "minValue": min(counted),
                    "dataIndex": str(data_index),
                    "dataSource": item.task,
                }
            )
    writes = {}  # every file or none: a features file without its activations is no page
    for folder, records in (("features", features), ("activations", activations)):
        for source, lines in records.items():
            target = Path(path) / model_id / source / folder / "batch-0.jsonl.gz"
            text = "".join(json.dumps(line) + "\n" for line in lines).encode()
            payload = gzip.compress(text, mtime=0)
            writes[target] = lambda tmp, payload=payload: Path(tmp).write_bytes(payload)
    return atomic_write_all(writes)
