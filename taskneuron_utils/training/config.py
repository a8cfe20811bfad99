"""The settings of one training run, carried once: ``TrainConfig`` (the loop's options, the loss
included) through ``finetune``, the loop and every continual-learning method, and
``LoRAConfig`` (LoRA's adapters, read only by ``finetune(method="lora")``).

    config = tn.TrainConfig(steps=20, lr=1e-3)
    tn.finetune(model, tok, task.train, config, neurons=ns)
    tn.finetune(model, tok, task.train, neurons=ns, steps=20, lr=1e-3)     # the same run
    tn.finetune(model, tok, task.train, config.replace(seed=1), neurons=ns)

Both are frozen and check their values when made, so a bad setting is refused before any work;
what needs the model (fp16 on a CPU, gradient checkpointing support) is checked by the loop.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from ..errors import did_you_mean
from ..scoring.loss import answer_losses

# Our schedule names -> transformers' (its "constant" ignores warmup; ours honours it).
SCHEDULES = {"linear": "linear", "cosine": "cosine", "constant": "constant_with_warmup"}
MIXED_PRECISION = ("no", "bf16", "fp16")


def _positive_int(name: str, value) -> None:
    if isinstance(value, bool) or int(value) != value or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")


@dataclass(frozen=True)
class TrainConfig:
    """How to train: every option of ``tn.finetune``'s loop, in one frozen value.

    Attributes:
        steps: optimizer steps; None: as many as ``epochs`` passes over the data take.
        epochs: passes over the data (fractions allowed) when ``steps`` is None; one step uses
            ``batch_size * grad_accum`` examples. Batches are drawn from a stream of shuffled
            epochs, so every batch is full.
        lr: peak learning rate.
        batch_size: examples of one forward pass; with W processes each process runs its 1/W
            share of a step's examples, in forward passes of at most ``batch_size``. Also the
            batch size of the dev evaluations.
        grad_accum: forward passes of ``batch_size`` per step (one step's examples are
            ``batch_size * grad_accum``).
        weight_decay: AdamW's decoupled weight decay (on every trained number, biases included).
        warmup: fraction of the steps spent warming up linearly, in [0, 1).
        schedule: ``"linear"``, ``"cosine"`` or ``"constant"`` decay after warmup.
        max_grad_norm: clip the global gradient norm to this (None or 0: no clipping).
        mixed_precision: ``"no"``, ``"bf16"`` or ``"fp16"``: the forward pass runs under
            ``accelerate``'s autocast (fp16 with its loss scaler, on a GPU only); the trained
            tensors, gradients and optimizer state keep their dtype (float32 neuron rows).
        gradient_checkpointing: recompute each decoder layer's activations in the backward
            pass (transformers' gradient checkpointing, switched off again afterwards): less
            activation memory for about one more forward pass of compute.
        seed: shuffling, dropout and LoRA initialisation; the same seed gives identical weights.
        eval_every: with a dev split, also measure its NLL every this many steps (None: only
            before training and at the end).
        max_length: prompt + answer tokens per example (``tasks.encode`` truncates).
        progress: show a tqdm progress bar.
        loss: the training loss, ``loss(model, batch) -> (losses, n_tokens)``: ``batch`` a
            collated dict (``input_ids``, ``attention_mask``, ``labels``), ``losses`` a float
            (B,) tensor of each example's mean answer-token NLL in nats, ``n_tokens`` the
            batch's answer-token count (int). The loop minimises the mean of ``losses`` over a
            step's examples and logs it as ``loss``. Default ``scoring.loss.answer_losses``.
    """

    steps: int | None = None
    epochs: float = 1.0
    lr: float = 1e-4
    batch_size: int = 8
    grad_accum: int = 1
    weight_decay: float = 0.0
    warmup: float = 0.1
    schedule: str = "linear"
    max_grad_norm: float | None = 1.0
    mixed_precision: str = "no"
    gradient_checkpointing: bool = False
    seed: int = 0
    eval_every: int | None = None
    max_length: int = 512
    progress: bool = True
    loss: Callable[[torch.nn.Module, dict], tuple[torch.Tensor, int]] = answer_losses

    def __post_init__(self):
        if self.steps is not None:
            _positive_int("steps", self.steps)
        if not self.epochs > 0:
            raise ValueError(f"epochs must be positive, got {self.epochs}")
        for name in ("batch_size", "grad_accum", "max_length"):
            _positive_int(name, getattr(self, name))
        if not 0 <= self.warmup < 1:
            raise ValueError(f"warmup is a fraction of the steps in [0, 1), got {self.warmup}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {tuple(SCHEDULES)}, got {self.schedule!r}")
        if self.mixed_precision not in MIXED_PRECISION:
            raise ValueError(
                f"mixed_precision must be one of {MIXED_PRECISION}, got {self.mixed_precision!r}"
            )
        if self.eval_every is not None and self.eval_every < 1:
            raise ValueError(
                f"eval_every must be a positive number of steps, got {self.eval_every}"
            )
        if not callable(self.loss):
            raise TypeError("loss must be a function (model, batch) -> (losses, n_tokens)")

    def replace(self, **changes) -> TrainConfig:
        """A copy with ``changes`` (checked like a new config); an unknown name is a TypeError."""
        _refuse_unknown(self, changes)
        return dataclasses.replace(self, **changes)

    @property
    def examples_per_step(self) -> int:
        """One optimizer step's examples, over every process: ``batch_size * grad_accum``."""
        return self.batch_size * self.grad_accum

    def steps_for(self, n_examples: int) -> int:
        """The optimizer steps of a run on ``n_examples``: ``steps``, or enough steps for
        ``epochs`` passes (at least one)."""
        if self.steps is not None:
            return self.steps
        return max(1, math.ceil(self.epochs * n_examples / self.examples_per_step))


@dataclass(frozen=True)
class LoRAConfig:
    """LoRA's adapters for ``finetune(method="lora")`` (peft; merged into the weights at the end).

    Attributes:
        r: the adapters' rank.
        alpha: peft's ``lora_alpha``: the update is scaled by ``alpha / r``.
        target: the names of the modules that get adapters (the last component of a module's
            path, e.g. ``("q_proj", "v_proj")``); None: ``lora_targets(model)``.
        dropout: dropout on the adapters' input, in [0, 1).
    """

    r: int = 8
    alpha: int = 16
    target: Sequence[str] | None = None
    dropout: float = 0.0

    def __post_init__(self):
        _positive_int("r", self.r)
        if not self.alpha > 0:
            raise ValueError(f"alpha must be positive, got {self.alpha}")
        if not 0 <= self.dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        if isinstance(self.target, str):
            raise TypeError(f"target is a list of module names, e.g. [{self.target!r}]")
        if self.target is not None:
            object.__setattr__(self, "target", tuple(self.target))

    def replace(self, **changes) -> LoRAConfig:
        """A copy with ``changes`` (checked like a new config); an unknown name is a TypeError."""
        _refuse_unknown(self, changes)
        return dataclasses.replace(self, **changes)


def _refuse_unknown(config, changes: dict) -> None:
    """A one-line TypeError naming the keys of ``changes`` that are no field of ``config``."""
    valid = [f.name for f in dataclasses.fields(config)]
    unknown = [key for key in changes if key not in valid]
    if unknown:
        raise TypeError(
            f"{type(config).__name__} has no setting {', '.join(map(repr, unknown))}"
            f"{did_you_mean(unknown, valid)}; "
            f"the settings are {', '.join(valid)}"
        )
