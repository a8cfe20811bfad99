"""One function per experiment of the paper. Each takes a model, a tokenizer, tasks and a
``Config``, and returns what a plot function in ``plots`` accepts.

Two profiles: ``quick`` (CPU, the embedded default model, a few shipped tasks, a sample of each
training split; what the notebooks, the main job and CI run) and ``paper`` (Llama-2-7b and the
paper's data at full size, k = 10%; what a GPU user runs).
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from .analysis import expected_random_jaccard, layer_profile, overlap_matrix
from .attribution import Relevance, attribute
from .tasks import Split, Task, encode


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
    # Multi-task fine-tuning (experiments.multitask_finetune): the paper's "original" model.
    mt_tasks: tuple[str, ...] = ("product_sentiment", "news_topic", "country_continent",
                                 "addition", "country_capital", "last_word")
    mt_examples: int = 48
    mt_steps: int = 36
    mt_lr: float = 1e-4
    mt_batch_size: int = 8
    # Deactivation and neuron fine-tuning (Tables 1 and 2).
    n_eval: int | None = 100
    random_seeds: tuple[int, ...] = (0, 1, 2)
    ft_examples: int = 200
    ft_steps: int = 20
    ft_batch_size: int = 8
    ft_lrs: tuple[float, ...] = (1e-4, 1e-3)
    n_dev: int = 32

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


# ----------------------------------------------------------------------------------------------
# The multi-task fine-tuned model (the paper's "original" model of Table 1)
# ----------------------------------------------------------------------------------------------


def multitask_mixture(tasks: dict[str, Task], examples: int, seed: int = 0) -> Split:
    """One training Split mixing ``examples`` training examples of each task.

    The shipped tasks differ in their instruction, but ``tasks.encode`` reads one instruction
    per split. So each example carries its own instruction in its input (``instruction + "\\n\\n"
    + input``) and the mixture task has an empty instruction. With a chat template (the default
    model) the prompt is then token-for-token the one ``format_prompt`` builds for the task
    itself, so the model is trained on exactly the prompts it is evaluated on. (With the plain
    template of a base model the prompt reads "Input: <instruction>\\n\\n<input>" instead, a
    small difference.) The order is shuffled by ``finetune``'s batch stream.
    """
    records = []
    for name, task in tasks.items():
        n = min(examples, len(task.train))
        for ex in task.train.sample(n, seed=seed):
            text = f"{task.instruction}\n\n{ex.input}" if task.instruction else ex.input
            records.append({"input": text, "output": ex.output})
    mixture = Task.from_records("multitask", {"train": records}, instruction="",
                                category="generation",
                                description="mixture of " + ", ".join(tasks))
    return mixture.train


def _data_hash(split: Split) -> str:
    digest = hashlib.sha256()
    for ex in split:
        digest.update(json.dumps([ex.input, ex.output]).encode())
    return digest.hexdigest()[:16]


def multitask_finetune(config: Config = PROFILES["quick"], *, tasks: dict[str, Task] | None = None,
                       base=None, rebuild: bool = False, progress: bool | None = None):
    """Full fine-tuning of the base model on the mixture of ``config.mt_tasks``' training data.

    ``config.mt_examples`` training examples per task (``multitask_mixture``), ``config.mt_steps``
    AdamW steps of ``config.mt_batch_size`` examples at peak lr ``config.mt_lr`` (linear schedule,
    10% warmup), seed ``config.seed``. The quick profile (36 steps over 6 x 48 examples, one pass)
    takes about 2 minutes on 2 CPU cores.

    The result is cached in ``cache_dir()/finetuned/<key>/`` (``save_pretrained`` + tokenizer +
    ``provenance.json``), written to a temporary folder and renamed into place; ``<key>`` hashes
    the base model's weight fingerprint, the data and every training setting, so a second call
    with the same settings loads the cache in about a second.

    Args:
        config: the settings (``config.model`` is the base model; None = the default model).
        tasks: {name: Task} to mix (default: ``load_tasks(config.mt_tasks)``).
        base: optional (model, tok) to start from instead of ``load_model(config.model)`` (tests
            use a tiny model). It is not modified: training runs on a deep copy.
        rebuild: retrain even if a cache exists.

    Returns:
        (model, tok, info): the fine-tuned model (eval mode), its tokenizer, and the provenance
        dict plus ``cached`` (bool, True when loaded from the cache) and ``path``.
    """
    from .models import cache_dir, load_model, model_name, weight_fingerprint
    from .tasks import load_tasks
    from .training import finetune

    progress = config.progress if progress is None else progress
    tasks = load_tasks(list(config.mt_tasks)) if tasks is None else tasks
    base_model, tok = load_model(config.model) if base is None else base
    mixture = multitask_mixture(tasks, config.mt_examples, config.seed)
    settings = {
        "base_model": model_name(base_model), "base_fingerprint": weight_fingerprint(base_model),
        "tasks": list(tasks), "examples_per_task": config.mt_examples,
        "n_examples": len(mixture), "data_hash": _data_hash(mixture), "steps": config.mt_steps,
        "lr": config.mt_lr, "batch_size": config.mt_batch_size, "seed": config.seed,
        "schedule": "linear", "warmup": 0.1, "method": "full",
    }
    key = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]
    folder = cache_dir() / "finetuned" / key
    if folder.is_dir() and (folder / "provenance.json").exists() and not rebuild:
        started = time.perf_counter()
        model, tok = load_model(str(folder))
        info = json.loads((folder / "provenance.json").read_text())
        info.update(cached=True, path=str(folder), load_seconds=time.perf_counter() - started)
        return model, tok, info

    model = copy.deepcopy(base_model)
    started = time.perf_counter()
    history = finetune(model, tok, mixture, method="full", steps=config.mt_steps,
                       lr=config.mt_lr, batch_size=config.mt_batch_size, seed=config.seed,
                       max_length=config.max_length, progress=progress)
    wall = time.perf_counter() - started
    losses = history["loss"].dropna()
    tail = max(1, len(losses) // 10)
    info = {**settings, "key": key,
            "first_loss": float(losses.iloc[:tail].mean()),
            "final_loss": float(losses.iloc[-tail:].mean()),
            "wall_seconds": round(wall, 1),
            "weight_fingerprint": weight_fingerprint(model),
            "created": time.strftime("%Y-%m-%dT%H:%M:%S")}
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{key}.", dir=folder.parent))
    try:
        model.save_pretrained(tmp)
        tok.save_pretrained(tmp)
        history.to_csv(tmp / "history.csv", index=False)
        (tmp / "provenance.json").write_text(json.dumps(info, indent=2))
        if folder.exists():  # rebuild=True, or a folder without provenance
            shutil.rmtree(folder)
        os.replace(tmp, folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    model.name_or_path = str(folder)
    model.config._name_or_path = str(folder)
    info.update(cached=False, path=str(folder))
    return model, tok, info


# ----------------------------------------------------------------------------------------------
# Deactivation (Table 1)
# ----------------------------------------------------------------------------------------------


def _eval_split(task: Task, n: int | None, seed: int) -> Split:
    test = task.test
    return test if n is None or n >= len(test) else test.sample(n, seed=seed)


def deactivation(model, tok, tasks: dict[str, Task], config: Config = PROFILES["quick"], *,
                 label: str = "multitask", sets: dict | None = None, mode: str = "activation",
                 others: bool = True, batch_size: int = 16) -> pd.DataFrame:
    """Each task's test score and answer NLL with neuron sets deactivated (the paper's Table 1).

    For every task in ``tasks``: nothing deactivated (``none``), its own top ``config.k``
    (``own``), as many random neurons per site (``random``, one row per seed of
    ``config.random_seeds``), and every other task's set (``other:<task>``, when ``others``).
    Neuron sets are detected on ``model`` itself (``detect`` on ``config.n_attribution``
    training examples, top ``config.k`` per ``config.per``) unless ``sets`` gives them. Each
    task is evaluated on ``config.n_eval`` test examples (a seeded sample; None = all).

    Returns:
        long DataFrame, one row per (task, condition[, seed]): ``model`` (= ``label``), ``task``,
        ``category``, ``metric``, ``condition`` (none / own / random / other:<task>),
        ``deactivated`` (the set's task, "random" or "none"), ``seed`` (random rows; else -1),
        ``n_neurons``, ``score`` (metric, in [0, 1]), ``nll`` (nats per answer token), ``n``.
    """
    from .evaluation import evaluate
    from .interventions import deactivate
    from .neurons import NeuronSet

    if sets is None:
        sets = neuron_sets(detect(model, tok, tasks, config), config)
    rows = []
    for name, task in tasks.items():
        split = _eval_split(task, config.n_eval, config.seed)
        own = sets[name]
        conditions = [("none", "none", -1, NeuronSet({}, own.sizes))]
        conditions.append(("own", name, -1, own))
        for seed in config.random_seeds:
            conditions.append(("random", "random", seed, NeuronSet.random_like(own, seed=seed)))
        if others:
            conditions += [(f"other:{o}", o, -1, s) for o, s in sets.items() if o != name]
        for condition, deactivated, seed, neurons in conditions:
            started = time.perf_counter()
            with deactivate(model, neurons, mode=mode):
                result = evaluate(model, tok, split, batch_size=batch_size, progress=False)
            rows.append({"model": label, "task": name, "category": task.category,
                         "metric": task.metric, "condition": condition,
                         "deactivated": deactivated, "seed": seed, "n_neurons": len(neurons),
                         "score": result["score"], "nll": result["nll"], "n": result["n"],
                         "seconds": round(time.perf_counter() - started, 2)})
            if config.progress:
                print(f"[{label}] {name:<20} {condition:<28} score {result['score']:.3f} "
                      f"nll {result['nll']:.3f}", flush=True)
    return pd.DataFrame(rows)


def _group(condition: str) -> str:
    return "other" if condition.startswith("other:") else condition


def deactivation_summary(df: pd.DataFrame) -> pd.DataFrame:
    """One row per (model, task, condition group): mean and std of score and NLL.

    Groups: ``none``, ``own``, ``random`` (over seeds) and ``other`` (mean over the other tasks'
    sets). Adds ``d_score`` / ``d_nll`` (change against ``none``) and, for ``own``:
    ``score_beyond_random`` (own's score is below the random mean by more than 2 random stds, or
    by 0.01 when the seeds agree exactly), ``nll_beyond_random`` (own's NLL is above the random
    mean by the same rule) and ``beyond_random`` (both).
    """
    frame = df.assign(group=df["condition"].map(_group))
    keys = ["model", "task", "category", "metric", "group"]
    out = frame.groupby(keys, sort=False).agg(
        score=("score", "mean"), score_std=("score", "std"), nll=("nll", "mean"),
        nll_std=("nll", "std"), runs=("score", "size"), n_neurons=("n_neurons", "first"),
    ).reset_index()
    none = out[out.group == "none"].set_index(["model", "task"])
    ref = out.set_index(["model", "task"]).index
    out["d_score"] = out["score"].values - none.loc[ref, "score"].values
    out["d_nll"] = out["nll"].values - none.loc[ref, "nll"].values
    rand = out[out.group == "random"].set_index(["model", "task"])
    by_score, by_nll = [], []
    for _, row in out.iterrows():
        if row.group != "own" or (row.model, row.task) not in rand.index:
            by_score.append(None)
            by_nll.append(None)
            continue
        r = rand.loc[(row.model, row.task)]
        tol_s = max(2 * (r.score_std if pd.notna(r.score_std) else 0), 0.01)
        tol_n = max(2 * (r.nll_std if pd.notna(r.nll_std) else 0), 0.01)
        by_score.append(bool(row.score < r.score - tol_s))
        by_nll.append(bool(row.nll > r.nll + tol_n))
    out["score_beyond_random"] = pd.Series(by_score, index=out.index, dtype=object)
    out["nll_beyond_random"] = pd.Series(by_nll, index=out.index, dtype=object)
    out["beyond_random"] = [None if s is None else bool(s and n) for s, n in zip(by_score, by_nll)]
    return out


def table1(df: pd.DataFrame) -> pd.DataFrame:
    """The Table 1 analog: per model and category, the mean metric (x100) with nothing, random
    neurons (mean over seeds, then tasks; ± the mean over tasks of the std over seeds) and
    the task's own neurons deactivated, and the mean answer NLL of each; ``own_*beyond_random``
    count the tasks where own neurons hurt more than random ones beyond the seeds' spread
    (``deactivation_summary``)."""
    summary = deactivation_summary(df)
    rows = []
    for (model, category), part in summary.groupby(["model", "category"], sort=False):
        by = part.set_index(["task", "group"])
        tasks = part["task"].unique()
        row = {"model": model, "category": category, "tasks": len(tasks)}
        for group, label in (("none", "original"), ("random", "random_off"), ("own", "task_off")):
            vals = by.xs(group, level="group")
            row[label] = 100 * vals["score"].mean()
            row[f"{label}_nll"] = vals["nll"].mean()
            if group == "random":
                row["random_off_std"] = 100 * vals["score_std"].mean()
                row["random_off_nll_std"] = vals["nll_std"].mean()
        own = part[part.group == "own"]
        for column in ("beyond_random", "score_beyond_random", "nll_beyond_random"):
            row[f"own_{column}"] = int(own[column].sum())
        rows.append(row)
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------------------------
# Neuron-level fine-tuning (Table 2)
# ----------------------------------------------------------------------------------------------

FT_METHODS = ("none", "neurons", "random", "full")


def _fresh(model_loader):
    import torch

    if isinstance(model_loader, torch.nn.Module):
        return copy.deepcopy(model_loader)
    if callable(model_loader):
        fresh = model_loader()
        return fresh[0] if isinstance(fresh, tuple) else fresh
    return copy.deepcopy(model_loader)


def neuron_finetuning(model_loader, tok, tasks: dict[str, Task], config: Config = PROFILES["quick"],
                      *, methods: tuple[str, ...] = FT_METHODS, sets: dict | None = None,
                      lrs: dict[str, tuple[float, ...]] | None = None,
                      batch_size: int = 16) -> pd.DataFrame:
    """Per task: no training vs its own neurons vs as many random neurons vs full fine-tuning
    (the paper's Table 2), from the same starting model.

    Every trained method gets the same budget: ``config.ft_steps`` steps of
    ``config.ft_batch_size`` examples drawn from ``config.ft_examples`` training examples, for
    each learning rate of its search grid (``lrs[method]``, default ``config.ft_lrs`` for every
    method); the lr with the lowest answer NLL on ``config.n_dev`` dev examples is kept and that
    run is evaluated on ``config.n_eval`` test examples. Each run starts from a fresh model:
    ``model_loader()`` (a function returning a model or (model, tok)) or a deep copy of
    ``model_loader`` when it is a model. Task neurons are detected on the starting model
    (``detect``; or given by ``sets``); random neurons use seed ``config.seed``.

    Returns:
        DataFrame, one row per (task, method): ``task``, ``category``, ``metric``, ``method``,
        ``lr`` (chosen; NaN for none), ``dev_nll`` (of the chosen run), ``lr_search``
        (dict lr -> dev NLL, as a string), ``n_neurons``, ``trainable_parameters``, ``score``,
        ``nll``, ``n``, ``train_seconds``, ``first_loss`` / ``final_loss`` (chosen run).
    """
    from .evaluation import answer_nll, evaluate
    from .neurons import NeuronSet
    from .training import finetune

    if sets is None:
        start = _fresh(model_loader)
        sets = neuron_sets(detect(start, tok, tasks, config), config)
        del start
    rows = []
    for name, task in tasks.items():
        train = task.train.sample(min(config.ft_examples, len(task.train)), seed=config.seed)
        dev = task.dev.sample(min(config.n_dev, len(task.dev)), seed=config.seed)
        dev_encoded = encode(tok, dev, max_length=config.max_length)
        test = _eval_split(task, config.n_eval, config.seed)
        own = sets[name]
        random_set = NeuronSet.random_like(own, seed=config.seed)
        for method in methods:
            row = {"task": name, "category": task.category, "metric": task.metric,
                   "method": method, "lr": float("nan"), "lr_search": "",
                   "n_neurons": 0, "trainable_parameters": 0, "train_seconds": 0.0,
                   "first_loss": float("nan"), "final_loss": float("nan")}
            if method == "none":
                best = _fresh(model_loader)
                best_dev = answer_nll(best, tok, dev_encoded, batch_size=batch_size)
            else:
                neurons = {"neurons": own, "random": random_set}.get(method)
                search, best, best_dev = {}, None, float("inf")
                for lr in (lrs or {}).get(method, config.ft_lrs):
                    model = _fresh(model_loader)
                    started = time.perf_counter()
                    history = finetune(model, tok, train, neurons=neurons,
                                       method="neurons" if neurons is not None else "full",
                                       steps=config.ft_steps, lr=lr,
                                       batch_size=config.ft_batch_size, seed=config.seed,
                                       max_length=config.max_length, progress=False)
                    seconds = time.perf_counter() - started
                    dev_nll = answer_nll(model, tok, dev_encoded, batch_size=batch_size)
                    search[lr] = round(dev_nll, 4)
                    if dev_nll < best_dev:
                        losses = history["loss"].dropna()
                        tail = max(1, len(losses) // 5)
                        best, best_dev = model, dev_nll
                        row.update(lr=lr, train_seconds=round(seconds, 1),
                                   trainable_parameters=history.attrs["trainable_parameters"],
                                   first_loss=float(losses.iloc[:tail].mean()),
                                   final_loss=float(losses.iloc[-tail:].mean()))
                    else:
                        del model
                row["lr_search"] = json.dumps({f"{k:g}": v for k, v in search.items()})
                row["n_neurons"] = len(neurons) if neurons is not None else 0
            result = evaluate(best, tok, test, batch_size=batch_size, progress=False)
            row.update(dev_nll=best_dev, score=result["score"], nll=result["nll"], n=result["n"])
            rows.append(row)
            del best
            if config.progress:
                print(f"{name:<20} {method:<8} lr {row['lr']:<8g} dev_nll {best_dev:.3f} "
                      f"score {row['score']:.3f} nll {row['nll']:.3f}", flush=True)
    return pd.DataFrame(rows)


def table2(df: pd.DataFrame) -> pd.DataFrame:
    """The Table 2 analog: mean metric (x100) and NLL per category and method."""
    scores = df.pivot_table(index="category", columns="method", values="score", aggfunc="mean",
                            sort=False) * 100
    nll = df.pivot_table(index="category", columns="method", values="nll", aggfunc="mean",
                         sort=False)
    order = [m for m in FT_METHODS if m in scores.columns]
    return scores[order].join(nll[order].add_suffix("_nll")).reset_index()
