"""Continual learning (the paper's Table 5): a sequence of tasks trained one after another with a
method (``cl_methods.CL_METHODS``: seqft, seqlora, olora, ewc, replay, random_neurons, ncft,
wncft), every task of the sequence scored after each stage.

    from taskneuron_utils import experiments as ex
    config = ex.ContinualConfig(examples=64, steps=8)
    run = ex.continual(lambda: tn.load_model()[0], tok, [suite[n] for n in order], "ncft", config,
                       checkpoint="runs/ncft_order1")
    run.scores            # A[i, j]: score of task j after stage i (DataFrame, stages x tasks)
    ex.cl_metrics(run.scores.values)    # CL, FG, BWT, forgetting

Every stage trains on the same seeded sample (``config.examples`` training examples) for the same
``config.steps`` steps of ``config.batch_size``, seed ``config.seed + stage``, for every method.
With ``checkpoint=`` a folder is written after each stage (model weights, the method's state,
the rows of A so far), atomically; a rerun with the same arguments resumes from the latest stage
and gives the identical result (nothing random is drawn outside the seeded pieces).

Several processes (``torchrun --nproc_per_node N script.py``, one per GPU): every rank calls
``continual`` with the same arguments; each stage's training is data parallel (``tn.finetune``'s
loop: the batch split over the ranks, gradients summed, a penalty added once), NCFT's detection
too (``tn.attribute``), and every rank evaluates and returns the same result (the one-process
result up to float rounding). Only rank 0 writes the checkpoint folder.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from tqdm.auto import tqdm
import torch

from ...core.parallel import init_from_environment
from ...tasks import Task
from .methods import EWC, OLoRA, CLMethod, Replay, SeqFT, SeqLoRA
from .neuron_methods import NCFT, WNCFT, RandomNeurons
from ..common import ConfigMixin, data_hash, eval_split, fresh, sample, settings_key, write_folder
from ...core.layout import layout_of
from ...neurons.neuron_set import NeuronSet
from ...training.config import TrainConfig

if TYPE_CHECKING:
    from collections.abc import Sequence

    from transformers import PreTrainedTokenizerBase

    from ..common import ModelLoader


# Every method by name; a user passes a CLMethod subclass or instance to add one.
CL_METHODS = {
    cls.name: cls for cls in (SeqFT, SeqLoRA, OLoRA, EWC, Replay, RandomNeurons, NCFT, WNCFT)
}

# Offline sequences of distinct classification tasks from the shipped suite, with analogs of the
# paper's benchmarks: news_topic ~ AG News, product_sentiment ~ Amazon, entity_type ~ DBpedia,
# question_topic ~ Yahoo; nli ~ MNLI, paraphrase ~ QQP, rte ~ RTE, film_sentiment ~ SST-2.
QUICK_SEQUENCE_4 = ("news_topic", "product_sentiment", "entity_type", "question_topic")
QUICK_SEQUENCE_8 = QUICK_SEQUENCE_4 + ("nli", "paraphrase", "rte", "film_sentiment")
# The paper's orders for the hub benchmarks (``tasks.hub``). Orders 1-3 are O-LoRA's (Wang et al.
# 2023, after Qin & Joty 2022). The paper does not list its 8-task orders 4-6 in what we have:
# these three are ours (the 4 standard tasks and MNLI/QQP/RTE/SST-2 interleaved differently).
PAPER_ORDERS = {
    1: ("dbpedia", "amazon", "yahoo", "ag_news"),
    2: ("dbpedia", "amazon", "ag_news", "yahoo"),
    3: ("yahoo", "amazon", "ag_news", "dbpedia"),
    4: ("mnli", "qqp", "rte", "sst2", "dbpedia", "amazon", "yahoo", "ag_news"),
    5: ("dbpedia", "sst2", "amazon", "mnli", "yahoo", "qqp", "ag_news", "rte"),
    6: ("yahoo", "rte", "ag_news", "qqp", "amazon", "mnli", "dbpedia", "sst2"),
}
# The same three permutations applied to the quick 4-task sequence (ag, amazon, dbpedia, yahoo).
_ANALOG = dict(
    zip(("ag_news", "amazon", "dbpedia", "yahoo", "mnli", "qqp", "rte", "sst2"), QUICK_SEQUENCE_8)
)
QUICK_ORDERS = {i: tuple(_ANALOG[t] for t in order) for i, order in PAPER_ORDERS.items()}
# The paper's Table 5 (Llama-2-7b), CL average x100: (4-task orders 1-3, 8-task orders 4-6).
PAPER_TABLE5 = {
    "seqft": (47.1, 34.6),
    "seqlora": (53.8, 47.7),
    "epi": (48.4, 42.6),
    "olora": (76.1, 71.6),
    "ncft": (71.3, 70.0),
    "wncft": (73.3, 72.0),
    "per_task": (77.2, 84.5),
}


@dataclass(frozen=True)
class ContinualConfig(ConfigMixin):
    """Settings of ``continual``.

    Attributes:
        examples: training examples per task (a seeded sample), the same for every method.
        steps: optimiser steps per task; batch_size: examples per step.
        lr: learning rate of every method; ``method_lrs`` ((method, lr), ...) overrides it per
            method (``choose_lrs`` picks them on dev data).
        n_eval: test examples per task (seeded sample; None = all); n_dev: dev examples for
            ``choose_lrs``.
        k: fraction of every site's neurons NCFT / W-NCFT / random_neurons train.
        n_attribution: training examples NCFT's detection uses (the first ones of the split).
        lora_r, lora_alpha, lora_target: the LoRA methods' adapters (None = ``lora_targets``).
        olora_lambda: weight of O-LoRA's orthogonality penalty.
        ewc_lambda, ewc_samples: EWC's penalty weight and the examples its Fisher uses.
        replay_per_task: examples of each earlier task kept in the replay buffer.
        wncft_samples: examples per task vector (the paper: up to 1,000).
        wncft_temperature: softmax temperature on the cosine similarities (cosines of mean
            hidden states are close to each other; 1.0 gives nearly uniform weights).
        eval_upcoming: also score, after stage i, the tasks not trained yet (j > i, the upper
            triangle of A). CL, FG, BWT and forgetting never read it; False leaves it NaN and
            saves (N - 1) / 2N of the evaluations.
        mixed_precision, gradient_checkpointing: ``tn.finetune``'s options, for every method's
            training ("no" | "bf16" | "fp16" on a GPU; recompute decoder layers' activations in
            the backward pass).
    """

    examples: int = 200
    steps: int = 20
    batch_size: int = 8
    lr: float = 1e-4
    method_lrs: tuple[tuple[str, float], ...] = ()
    n_eval: int | None = 100
    n_dev: int = 32
    k: float = 0.1
    n_attribution: int | None = 64
    lora_r: int = 8
    lora_alpha: int = 16
    lora_target: tuple[str, ...] | None = None
    olora_lambda: float = 0.5
    ewc_lambda: float = 1e4
    ewc_samples: int = 32
    replay_per_task: int = 20
    wncft_samples: int = 1000
    wncft_temperature: float = 0.05
    max_length: int = 256
    seed: int = 0
    eval_batch_size: int = 16
    eval_upcoming: bool = True
    mixed_precision: str = "no"
    gradient_checkpointing: bool = False
    progress: bool = True

    def train_config(self, *, lr: float, seed: int, steps: int | None = None) -> TrainConfig:
        """The ``TrainConfig`` of one training run of a method: ``steps`` (default
        ``self.steps``) steps of ``batch_size`` examples at ``lr``, seed ``seed``, with this
        config's ``max_length``, ``mixed_precision`` and ``gradient_checkpointing``, the loop's
        defaults otherwise (AdamW, linear decay after 10% warmup, clipping at norm 1), and no
        progress bar (``progress`` is the stages' own)."""
        return TrainConfig(
            steps=self.steps if steps is None else steps,
            lr=lr,
            batch_size=self.batch_size,
            seed=seed,
            max_length=self.max_length,
            mixed_precision=self.mixed_precision,
            gradient_checkpointing=self.gradient_checkpointing,
            progress=False,
        )


@dataclass
class ContinualResult:
    """One run: ``scores`` / ``nll`` (stages x tasks DataFrames; row i = after training task i),
    the method's ``trainable_parameters`` and ``optimizer_state_bytes`` (last stage),
    ``train_seconds`` per stage, and ``sets`` ({task: NeuronSet} trained, for the neuron-level
    methods; empty otherwise)."""

    method: str
    order: list[str]
    scores: pd.DataFrame
    nll: pd.DataFrame
    trainable_parameters: int = 0
    optimizer_state_bytes: int = 0
    train_seconds: list[float] = field(default_factory=list)
    sets: dict = field(default_factory=dict)

    @property
    def metrics(self) -> dict:
        return cl_metrics(self.scores.values)

    def summary(self) -> dict:
        """One flat row: method, order, CL / FG / BWT / forgetting (x100 where a score), sizes."""
        m = self.metrics
        return {
            "method": self.method,
            "order": " > ".join(self.order),
            "CL": 100 * m["CL"],
            "FG": m["FG"],
            "BWT": 100 * m["BWT"],
            "forgetting": 100 * m["forgetting"],
            "trainable_parameters": self.trainable_parameters,
            "optimizer_state_bytes": self.optimizer_state_bytes,
            "train_seconds": round(sum(self.train_seconds), 1),
        }

    def to_frame(self) -> pd.DataFrame:
        """Long form: method, stage, trained (task), task, score, nll."""
        rows = []
        for i, trained in enumerate(self.order[: len(self.scores)]):
            for task in self.order:
                rows.append(
                    {
                        "method": self.method,
                        "stage": i,
                        "trained": trained,
                        "task": task,
                        "score": self.scores.iloc[i][task],
                        "nll": self.nll.iloc[i][task],
                    }
                )
        return pd.DataFrame(rows)


def cl_metrics(A: np.ndarray | Sequence[Sequence[float]]) -> dict:
    """Continual-learning metrics of an accuracy matrix ``A`` (N x N, A[i, j] = score on task j
    after training task i, in [0, 1]):

    - ``CL``: mean of the last row (the paper's "CL", final average score);
    - ``FG``: mean over j of A[N-1, j] / A[j, j] x 100 (the paper's retention, in %; tasks with
      A[j, j] = 0 are skipped);
    - ``BWT``: mean over j < N-1 of A[N-1, j] - A[j, j] (backward transfer; negative = forgetting);
    - ``forgetting``: mean over j < N-1 of max_{j <= i < N-1} A[i, j] - A[N-1, j].
    """
    A = np.asarray(A, dtype=float)
    n = A.shape[0]
    if A.ndim != 2 or A.shape[1] != n:
        raise ValueError(f"A must be square (stages x tasks), got shape {A.shape}")
    last = A[-1]
    diag = np.diag(A)
    kept = diag != 0
    fg = float(np.mean(last[kept] / diag[kept]) * 100) if kept.any() else float("nan")
    if n > 1:
        bwt = float(np.mean(last[:-1] - diag[:-1]))
        forgetting = float(np.mean([A[j : n - 1, j].max() - last[j] for j in range(n - 1)]))
    else:
        bwt = forgetting = 0.0
    return {"CL": float(last.mean()), "FG": fg, "BWT": bwt, "forgetting": forgetting}


def make_method(method: str | CLMethod | type, config: ContinualConfig) -> CLMethod:
    """A method object from a name of ``CL_METHODS``, a CLMethod subclass, or an instance."""
    if isinstance(method, CLMethod):
        return method
    if isinstance(method, type) and issubclass(method, CLMethod):
        return method(config)
    if method not in CL_METHODS:
        raise ValueError(
            f"unknown method {method!r}; choose from {tuple(CL_METHODS)} or pass a CLMethod"
        )
    return CL_METHODS[method](config)


def continual(
    model_loader: ModelLoader,
    tok: PreTrainedTokenizerBase,
    sequence: list[Task],
    method: str | CLMethod,
    config: ContinualConfig = ContinualConfig(),
    *,
    checkpoint: str | Path | None = None,
) -> ContinualResult:
    """Train ``sequence`` in order with ``method``; score every task after every stage.

    Args:
        model_loader: a model (deep-copied) or a function returning one (or (model, tok)).
        sequence: the tasks, in training order (distinct names).
        method: a name of ``CL_METHODS``, a ``CLMethod`` subclass or instance.
        checkpoint: a folder; after each stage ``stage_<i>/`` holds the model's state dict, the
            method's state and the rows of A so far. A rerun resumes after the latest stage (the
            folder must come from the same method, tasks and config).
    """
    names = [t.name for t in sequence]
    if len(set(names)) != len(names):
        raise ValueError(f"the sequence names a task twice: {names}")
    # Under torchrun, the group exists from the start: detection and checkpoints need it too.
    rank, world = init_from_environment()
    method = make_method(method, config)
    model = fresh(model_loader)
    trains = [sample(t.train, config.examples, config.seed) for t in sequence]
    tests = [eval_split(t, config.n_eval, config.seed) for t in sequence]
    # Options added later enter the key only when set, so older checkpoints still resume.
    later = ("mixed_precision", "gradient_checkpointing")
    key = settings_key(
        {
            "method": method.name,
            "tasks": names,
            "data": [data_hash(s) for s in trains],
            "config": {
                k: v
                for k, v in config.__dict__.items()
                if k != "progress" and not (k in later and v == getattr(ContinualConfig, k))
            },
        }
    )
    rows, nll_rows, seconds, start = [], [], [], 0
    folder = Path(checkpoint) if checkpoint is not None else None
    if folder is not None:
        done = sorted(int(p.name.split("_")[1]) for p in folder.glob("stage_*") if p.is_dir())
        if done:
            last = folder / f"stage_{done[-1]}"
            meta = json.loads((last / "meta.json").read_text())
            if meta["key"] != key:
                raise ValueError(f"{folder} holds a run with other settings; use another folder")
            model.load_state_dict(torch.load(last / "model.pt", weights_only=True))
            method.load_state_dict(torch.load(last / "method.pt", weights_only=False))
            rows, nll_rows, seconds = meta["scores"], meta["nll"], meta["seconds"]
            method.trainable_parameters = meta["trainable_parameters"]
            method.optimizer_state_bytes = meta["optimizer_state_bytes"]
            start = done[-1] + 1
    for stage in range(start, len(sequence)):
        task = sequence[stage]
        started = time.perf_counter()
        method.before_task(model, tok, task, stage)
        method.train(model, tok, task, trains[stage], stage)
        method.after_task(model, tok, task, trains[stage], stage)
        seconds.append(round(time.perf_counter() - started, 2))
        unscored = {"score": float("nan"), "nll": float("nan")}
        results = [
            method.evaluate(model, tok, test) if j <= stage or config.eval_upcoming else unscored
            for j, test in enumerate(tests)
        ]
        rows.append([r["score"] for r in results])
        nll_rows.append([r["nll"] for r in results])
        if config.progress:
            cells = " ".join(f"{n}={r['score']:.2f}" for n, r in zip(names, results))
            tqdm.write(f"{method.name:<15} stage {stage} ({task.name}): {cells}")
        if folder is not None:
            meta = {
                "key": key,
                "scores": rows,
                "nll": nll_rows,
                "seconds": seconds,
                "trainable_parameters": method.trainable_parameters,
                "optimizer_state_bytes": method.optimizer_state_bytes,
            }

            def write(tmp, meta=meta):
                torch.save(model.state_dict(), tmp / "model.pt")
                torch.save(method.state_dict(), tmp / "method.pt")
                (tmp / "meta.json").write_text(json.dumps(meta))

            if rank == 0:  # one writer: every rank holds the same weights and state
                write_folder(folder / f"stage_{stage}", write)
                for old in folder.glob("stage_*"):  # keep the latest only
                    if old.is_dir() and old.name != f"stage_{stage}":
                        shutil.rmtree(old, ignore_errors=True)
            if world > 1:  # a rank that resumes later reads what rank 0 has written
                torch.distributed.barrier()
    index = pd.Index(names[: len(rows)], name="after")
    sets = {}
    if getattr(method, "sets", None):
        layout = layout_of(model)
        sets = {
            name: NeuronSet(chosen, layout, {"model": layout.model, "method": method.name})
            for name, chosen in zip(names, method.sets)
        }
    return ContinualResult(
        method.name,
        names,
        pd.DataFrame(rows, index=index, columns=names),
        pd.DataFrame(nll_rows, index=index, columns=names),
        method.trainable_parameters,
        method.optimizer_state_bytes,
        seconds,
        sets,
    )


def forgetting_overlap(result: ContinualResult, sets: dict | None = None) -> pd.DataFrame:
    """What training task i does to every earlier task j, beside the overlap of their neurons.

    One row per pair j < i of the sequence: ``trained`` (task i), ``task`` (task j), ``stage``
    (i), ``forgetting`` = A[i-1, j] - A[i, j] (the score task j loses at stage i; score units,
    negative = it gained) and ``overlap`` = Jaccard(sets[i], sets[j]) over (site, unit) pairs.
    ``sets`` ({task: NeuronSet}) default to ``result.sets`` (the sets NCFT / W-NCFT trained);
    pass sets detected on the starting model to ask the question of any method. Correlate with
    ``ex.correlations(df, "overlap", "forgetting")``.
    """
    sets = result.sets if sets is None else sets
    A, order = result.scores.to_numpy(), result.order
    missing = [name for name in order[: len(A)] if name not in sets]
    if missing:
        raise ValueError(
            f"no neuron set for {missing}: pass sets={{task: NeuronSet}} (the run "
            f"of {result.method!r} trained no neuron sets)"
        )
    return pd.DataFrame(
        [
            {
                "method": result.method,
                "trained": order[i],
                "task": order[j],
                "stage": i,
                "forgetting": A[i - 1, j] - A[i, j],
                "overlap": sets[order[i]].jaccard(sets[order[j]]),
            }
            for i in range(1, len(A))
            for j in range(i)
        ],
        columns=["method", "trained", "task", "stage", "forgetting", "overlap"],
    )
