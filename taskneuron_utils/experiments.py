"""One function per experiment of the paper. Each takes a model, a tokenizer, tasks and a
``Config``, and returns what a plot function in ``plots`` accepts.

Two profiles: ``quick`` (CPU, the embedded default model, a few shipped tasks, a sample of each
training split; what the notebooks, the main job and CI run) and ``paper`` (Llama-2-7b and the
paper's data at full size, k = 10%; what a GPU user runs).
"""

from __future__ import annotations

import dataclasses
import os
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from .analysis import expected_random_jaccard, layer_profile, overlap_matrix
from .attribution import Relevance, attribute
from .tasks import Task


@dataclass(frozen=True)
class Config:
    """Settings shared by the experiments.

    Attributes:
        profile: "quick" or "paper" (informative; the fields below are what counts).
        model: None for the embedded default model, else a hub id or local path.
        tasks: task names to run (shipped suite in quick, hub tasks in paper).
        k: fraction of neurons kept as task-specific (0.10 = the paper's top 10%).
        per: "site" (same fraction in every site) or "global".
        n_attribution: training examples per task used for detection (None = all).
        batch_size, max_length: attribution batch size and token budget per example.
        seed: seeds every sample and random baseline.
        out_dir: where artefacts are cached and written (None = nothing written).
    """

    profile: str = "quick"
    model: str | None = None
    tasks: tuple[str, ...] = ("product_sentiment", "film_sentiment", "news_topic", "addition")
    k: float = 0.10
    per: str = "site"
    n_attribution: int | None = 128
    batch_size: int = 8
    max_length: int = 256
    seed: int = 0
    out_dir: str | None = None
    progress: bool = True

    def replace(self, **changes) -> Config:
        return dataclasses.replace(self, **changes)


PROFILES = {
    "quick": Config(),
    "paper": Config(
        profile="paper", model="meta-llama/Llama-2-7b-hf",
        tasks=("amazon_food", "sst2", "qqp", "paws", "mnli", "gpt_nli",
               "sciqa", "tweetqa", "e2e", "commongen", "cnn_dailymail", "xsum"),
        n_attribution=None, batch_size=8, max_length=512),
}


def detect(model, tok, tasks: dict[str, Task], config: Config = PROFILES["quick"]) -> dict[str, Relevance]:
    """Relevance of every FFN neuron for each task, on ``config.n_attribution`` training examples.

    With ``config.out_dir``, each task's run is checkpointed to
    ``out_dir/relevance/<task>.checkpoint.safetensors``; a finished or interrupted run is picked
    up from there (same model weights and data), so calling ``detect`` twice costs one run.

    Returns:
        {task name: Relevance}; ``rel.top_k(config.k, per=config.per)`` gives the neuron set.
    """
    relevances = {}
    for name, task in tasks.items():
        data = task.train if config.n_attribution is None else task.train.sample(
            min(config.n_attribution, len(task.train)), seed=config.seed)
        checkpoint = None
        if config.out_dir is not None:
            checkpoint = Path(config.out_dir) / "relevance" / f"{name}.checkpoint.safetensors"
        relevances[name] = attribute(model, tok, data, batch_size=config.batch_size,
                                     max_length=config.max_length, checkpoint=checkpoint,
                                     progress=config.progress)
    return relevances


def neuron_sets(relevances: dict[str, Relevance], config: Config = PROFILES["quick"]):
    """{task: NeuronSet}: each task's top ``config.k`` neurons, selected ``config.per``."""
    return {name: rel.top_k(config.k, per=config.per) for name, rel in relevances.items()}


def main_job(out_dir: str | os.PathLike, config: Config = PROFILES["quick"]) -> pd.DataFrame:
    """The README's main job: detect neurons for the config's tasks on its model, then write

    - ``relevance/<task>.checkpoint.safetensors`` and ``neurons/<task>.safetensors``
    - ``overlap.csv`` / ``overlap.png``: Jaccard overlap of the task-specific neuron sets
    - ``layers.csv`` / ``layers.png``: where each task's most relevant neurons sit
    - ``summary.txt``: what was run, how long it took, and the main numbers

    Returns the overlap matrix.
    """
    from . import plots
    from .models import load_model, model_name
    from .tasks import load_tasks

    started = time.perf_counter()
    out = Path(out_dir)
    config = config.replace(out_dir=str(out))
    model, tok = load_model(config.model)
    tasks = load_tasks(list(config.tasks))
    relevances = detect(model, tok, tasks, config)
    sets = neuron_sets(relevances, config)
    for name, neurons in sets.items():
        neurons.save(out / "neurons" / f"{name}.safetensors")
    overlap = overlap_matrix(sets)
    profile = layer_profile(relevances, config.k)
    overlap.to_csv(out / "overlap.csv", float_format="%.4f")
    profile.to_csv(out / "layers.csv", index=False, float_format="%.6g")
    baseline = expected_random_jaccard(config.k)
    plots.plot_overlap(overlap, baseline=baseline).savefig(out / "overlap.png", dpi=120)
    plots.plot_layer_profile(profile).savefig(out / "layers.png", dpi=120)
    elapsed = time.perf_counter() - started
    (out / "summary.txt").write_text(_summary(model_name(model), config, sets, overlap, profile,
                                              baseline, elapsed))
    return overlap


def _summary(model, config, sets, overlap, profile, baseline, elapsed) -> str:
    names = list(overlap.index)
    pairs = [(overlap.loc[a, b], a, b) for i, a in enumerate(names) for b in names[i + 1:]]
    pairs.sort(reverse=True)
    shares = profile.assign(selected=profile.global_share * profile.neurons)
    by_layer = shares.groupby("layer")["selected"].sum() / shares.groupby("layer")["neurons"].sum()
    lines = [
        f"taskneuron_utils main job: {config.profile} profile, model {model}",
        f"tasks: {', '.join(names)}; {config.n_attribution or 'all'} training examples each; "
        f"top {config.k:.0%} per {config.per}",
        f"neurons per task: {len(next(iter(sets.values())))} of {sum(next(iter(sets.values())).sizes.values())}",
        f"overlap (Jaccard), random baseline {baseline:.3f}:",
        *[f"  {a} ~ {b}: {value:.3f}" for value, a, b in pairs],
        f"layers holding most of the global top-{config.k:.0%} neurons: "
        + ", ".join(f"{layer} ({share:.0%})" for layer, share in by_layer.nlargest(3).items()),
        f"wall time: {elapsed:.0f} s",
    ]
    return "\n".join(lines) + "\n"
