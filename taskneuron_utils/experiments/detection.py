"""Detection (the paper's Section 3): the relevance of every FFN neuron for each task, its
task-specific neurons (the top fraction ``k``), the neurons no other task shares, and the
README's main job (overlap and layer figures of a few tasks)."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from ..neurons.analysis import expected_random_jaccard, layer_profile, overlap_matrix
from ..core.layout import resolve_kinds
from ..attribution.run import attribute
from ..io.storage import atomic_write_all
from ..neurons.relevance import Relevance
from ..tasks import Task
from ..neurons.neuron_set import check_fraction
from .common import ConfigMixin, sample, starting_model
from .. import plots
from ..core.models import load_model, model_name
from ..tasks import load_tasks

if TYPE_CHECKING:
    from torch import nn
    from transformers import PreTrainedTokenizerBase

    from ..neurons.neuron_set import NeuronSet


@dataclass(frozen=True)
class DetectionConfig(ConfigMixin):
    """Settings of ``detect``, ``neuron_sets`` and ``main_job``.

    Attributes:
        model: the model ``main_job`` loads: None = the embedded default model, else a hub id
            or local path (``detect`` is given its model).
        tasks: task names ``main_job`` runs (shipped suite in quick, hub tasks in paper).
        source: where ``main_job`` loads ``tasks`` from: "quick" (the shipped suite) or "paper"
            (the hub, or ``$TASKNEURON_HUB_DATA``; ``tasks.load_tasks``'s ``profile``).
        dtype, device_map: how ``main_job`` loads ``model`` (``tn.load_model``'s arguments;
            None, None = float32 on the CPU; "auto", "auto" = bfloat16 where supported, spread
            over the GPUs there are).
        k: fraction of neurons kept as task-specific, in (0, 1] (0.10 = the paper's top 10%).
        per: "site" (the same fraction of every site) or "global".
        kinds: the site kinds scored (``tn.attribute``'s ``kinds``): None = the linear sites
            (gate, up, down / fc_in, fc_out); ("act",) = the intermediate activation; "all".
        n_attribution: training examples per task used for detection, a seeded sample
            (None = the whole training split).
        batch_size: attribution batch size, in examples.
        autocast: None, or "bfloat16": attribution's passes under autocast over the weights as
            they are (``tn.attribute``'s ``autocast``).
        max_length: token budget per example (prompt + answer), in tokens.
        seed: seeds the sample of training examples.
        out_dir: where relevance checkpoints (and the main job's files) are written
            (None = nothing written).
        progress: print a progress bar per task.
    """

    model: str | None = None
    tasks: tuple[str, ...] = ("product_sentiment", "film_sentiment", "news_topic", "addition")
    source: str = "quick"
    dtype: str | None = None
    device_map: str | None = None
    k: float = 0.10
    per: str = "site"
    kinds: tuple[str, ...] | str | None = None
    n_attribution: int | None = 128
    batch_size: int = 8
    autocast: str | None = None
    max_length: int = 256
    seed: int = 0
    out_dir: str | None = None
    progress: bool = True

    def __post_init__(self):
        check_fraction(self.k)
        if self.per not in ("site", "global"):
            raise ValueError(f"per must be 'site' or 'global', got {self.per!r}")
        if self.kinds not in (None, "all"):
            resolve_kinds(self.kinds)  # an unknown kind fails here, before any model is loaded


def detect(
    model: nn.Module,
    tok: PreTrainedTokenizerBase,
    tasks: dict[str, Task],
    config: DetectionConfig = DetectionConfig(),
) -> dict[str, Relevance]:
    """Relevance of every FFN neuron for each task, on ``config.n_attribution`` training examples.

    With ``config.out_dir``, each task's run is checkpointed to
    ``out_dir/relevance/<task>.checkpoint.safetensors``; a finished or interrupted run is picked
    up from there (same model weights and data), so calling ``detect`` twice costs one run.

    Returns:
        {task name: Relevance}; ``neuron_sets`` (``rel.top_k(config.k, per=config.per)``) gives
        the neuron sets.
    """
    relevances = {}
    for name, task in tasks.items():
        data = sample(task.train, config.n_attribution, config.seed)
        checkpoint = None
        if config.out_dir is not None:
            checkpoint = Path(config.out_dir) / "relevance" / f"{name}.checkpoint.safetensors"
        relevances[name] = attribute(
            model,
            tok,
            data,
            kinds=config.kinds,
            batch_size=config.batch_size,
            max_length=config.max_length,
            checkpoint=checkpoint,
            progress=config.progress,
            autocast=config.autocast,
        )
    return relevances


def neuron_sets(
    relevances: dict[str, Relevance], config: DetectionConfig = DetectionConfig()
) -> dict[str, NeuronSet]:
    """{task: NeuronSet}: each task's top ``config.k`` neurons, selected ``config.per``."""
    return {name: rel.top_k(config.k, per=config.per) for name, rel in relevances.items()}


def detected_sets(
    model_loader, tok, tasks: dict[str, Task], detection: DetectionConfig | None = None
) -> dict:
    """{task: NeuronSet} detected with ``detection`` (default ``DetectionConfig()``) on the
    starting model: ``model_loader`` itself when it is a model (attribution leaves its weights
    as they are), else the model it returns (``common.starting_model``)."""
    detection = DetectionConfig() if detection is None else detection
    return neuron_sets(detect(starting_model(model_loader), tok, tasks, detection), detection)


def exclusive_sets(sets: dict) -> dict:
    """{task: its neurons that no other task's set contains} (own minus the union of the others).

    Top-k sets of different tasks share a core of generally important neurons; deactivating
    that core hurts every task. The exclusive part is what is left to be task-specific.
    """
    exclusive = {}
    for name, own in sets.items():
        for other, neurons in sets.items():
            if other != name:
                own = own.difference(neurons)
        exclusive[name] = own
    return exclusive


def main_job(
    out_dir: str | os.PathLike, config: DetectionConfig = DetectionConfig()
) -> pd.DataFrame:
    """The README's main job: detect neurons for ``config.tasks`` on ``config.model``, then write
    to ``out_dir``

    - ``relevance/<task>.safetensors`` (``tn.Relevance.load``), the resumable
      ``relevance/<task>.checkpoint.safetensors``, and ``neurons/<task>.safetensors``
    - ``overlap.csv`` / ``overlap.png``: Jaccard overlap of the task-specific neuron sets
    - ``layers.csv`` / ``layers.png``: where each task's most relevant neurons sit
    - ``summary.txt``: what was run, how long it took (seconds), and the main numbers

    ``config.out_dir`` is replaced by ``out_dir``. Returns the overlap matrix (task x task).
    """

    started = time.perf_counter()
    out = Path(out_dir)
    config = config.replace(out_dir=str(out))
    model, tok = load_model(config.model, dtype=config.dtype, device_map=config.device_map)
    tasks = load_tasks(list(config.tasks), profile=config.source)
    relevances = detect(model, tok, tasks, config)
    sets = neuron_sets(relevances, config)
    for name, neurons in sets.items():
        relevances[name].save(out / "relevance" / f"{name}.safetensors")
        neurons.save(out / "neurons" / f"{name}.safetensors")
    overlap = overlap_matrix(sets)
    profile = layer_profile(relevances, config.k)
    baseline = expected_random_jaccard(config.k)
    overlap_figure = plots.plot_overlap(overlap, baseline=baseline).figure
    layers_figure = plots.plot_layer_profile(profile).figure
    summary = main_job_summary(
        model_name(model), config, sets, overlap, profile, baseline, time.perf_counter() - started
    )
    # The job's results together, each atomically: a kill leaves the old ones or the new ones.
    atomic_write_all(
        {
            out / "overlap.csv": lambda tmp: overlap.to_csv(tmp, float_format="%.4f"),
            out / "layers.csv": lambda tmp: profile.to_csv(tmp, index=False, float_format="%.6g"),
            out / "overlap.png": lambda tmp: overlap_figure.savefig(tmp, dpi=120, format="png"),
            out / "layers.png": lambda tmp: layers_figure.savefig(tmp, dpi=120, format="png"),
            out / "summary.txt": lambda tmp: Path(tmp).write_text(summary),
        }
    )
    return overlap


def main_job_summary(
    model: str,
    config: DetectionConfig,
    sets: dict,
    overlap: pd.DataFrame,
    profile: pd.DataFrame,
    baseline: float,
    elapsed: float,
) -> str:
    """The text of the main job's ``summary.txt``: model, tasks and settings, set sizes, every
    pair's overlap (largest first) against the random baseline, the layers holding most of the
    global top-k neurons, and the wall time ``elapsed`` (seconds)."""
    names = list(overlap.index)
    pairs = [(overlap.loc[a, b], a, b) for i, a in enumerate(names) for b in names[i + 1 :]]
    pairs.sort(reverse=True)
    shares = profile.assign(selected=profile.global_share * profile.neurons)
    by_layer = shares.groupby("layer")["selected"].sum() / shares.groupby("layer")["neurons"].sum()
    first = next(iter(sets.values()))
    lines = [
        f"taskneuron_utils main job: model {model}",
        f"tasks: {', '.join(names)}; {config.n_attribution or 'all'} training examples each; "
        f"top {config.k:.0%} per {config.per}",
        f"neurons per task: {len(first)} of {sum(first.sizes.values())}",
        f"overlap (Jaccard), random baseline {baseline:.3f}:",
        *[f"  {a} ~ {b}: {value:.3f}" for value, a, b in pairs],
        f"layers holding most of the global top-{config.k:.0%} neurons (in brackets: the share "
        f"of that layer's own neurons that are in the global top {config.k:.0%}, averaged over "
        "tasks): "
        + ", ".join(f"{layer} ({share:.0%})" for layer, share in by_layer.nlargest(3).items()),
        f"wall time: {elapsed:.0f} s",
    ]
    return "\n".join(lines) + "\n"
