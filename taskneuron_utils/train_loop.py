"""The training loop behind ``tn.finetune``, run on an ``accelerate.Accelerator``.

``training.finetune`` decides what is trained (every parameter, neuron rows, LoRA adapters) and
hands this loop the trainable tensors ``params``; the loop runs the optimizer steps. The
accelerator supplies mixed precision (``accelerator.autocast()`` around the forward pass; for
fp16 also the loss scaler, through ``accelerator.backward``, ``accelerator.clip_grad_norm_`` and
the prepared optimizer), each process's device, and the process group when the script was
started by ``accelerate launch`` or ``torchrun``.

Data parallelism. With a ``torch.distributed`` group of W > 1 processes, every rank draws the
same global batch of ``batch_size * grad_accum`` example indices (the same seeded stream), takes
its contiguous 1/W share, runs it in forward passes of at most ``batch_size`` examples and
backpropagates the sum of its examples' losses divided by the global example count. Summed over
ranks (``parallel.sum_gradients``, an all-reduce) those gradients are the gradient of the
global batch's mean loss, the one a single process computes from the whole batch, up to float
rounding; every rank then clips and steps on identical gradients. The reduction runs over
``params`` rather than through DDP because neuron-only training's row matrices are not
parameters of the model, which is what DDP wraps.
"""

from __future__ import annotations

import contextlib
import math
import time

import pandas as pd
import torch
from tqdm.auto import tqdm

from .architectures import weight_fingerprint
from .attribution import _hash_encoded
from .loss import answer_nll
from .parallel import rank_and_world, ranks_disagree, sum_gradients, sum_over_ranks
from .tasks import collate

# Our schedule names -> transformers' (its "constant" ignores warmup; ours honours it).
SCHEDULES = {"linear": "linear", "cosine": "cosine", "constant": "constant_with_warmup"}
MIXED_PRECISION = ("no", "bf16", "fp16")


def check_accelerate_options(model, mixed_precision: str, gradient_checkpointing: bool) -> None:
    """Raise before any work on options this model or device cannot train with."""
    if mixed_precision not in MIXED_PRECISION:
        raise ValueError(
            f"mixed_precision must be one of {MIXED_PRECISION}, got {mixed_precision!r}")
    if mixed_precision == "fp16" and next(model.parameters()).device.type == "cpu":
        # accelerate would not raise: on the CPU it silently trains without autocast.
        raise ValueError(
            "mixed_precision='fp16' needs a GPU (accelerate autocasts to float16 and scales the "
            "loss on CUDA and similar devices only); on the CPU use mixed_precision='bf16'")
    if gradient_checkpointing and not getattr(model, "supports_gradient_checkpointing", False):
        raise ValueError(f"{type(model).__name__} does not support gradient checkpointing; "
                         "pass gradient_checkpointing=False")


def check_ranks_agree(model, encoded, neurons, device, **options) -> None:
    """Raise on every rank, before any work, if the ranks' models, data or options differ
    (they would otherwise hang in a collective or train apart)."""
    fields = {"weights": weight_fingerprint(model), "data_hash": _hash_encoded(encoded),
              "n_examples": len(encoded),
              "neurons": str(neurons and [(n, idx.tolist()) for n, idx in neurons.indices.items()]),
              **options}
    differs = ranks_disagree(fields, device)  # ints compared as they are, the rest hashed
    if differs:
        raise RuntimeError(
            f"data-parallel finetune: the {rank_and_world()[1]} processes disagree on "
            f"{', '.join(differs)}; every rank must pass the same model, data and options")


@contextlib.contextmanager
def accelerator_for(device: torch.device, mixed_precision: str):
    """An ``accelerate.Accelerator`` for a model on ``device`` (on the CPU when the model is),
    with ``mixed_precision`` ("no", "bf16", "fp16").

    accelerate keeps its state in process-wide singletons (``PartialState``,
    ``AcceleratorState``, ``GradientState``) and refuses a second Accelerator with another
    ``mixed_precision`` in the same process. So the state is set aside, this call's accelerator
    made, and the state put back on exit: ``finetune`` can run any number of times with any
    options, and a caller's own Accelerator keeps its settings. A multi-process
    ``PartialState`` stays (it holds the process group's facts); a one-process one is rebuilt,
    so that its device follows the model's.
    """
    from accelerate import Accelerator
    from accelerate.state import AcceleratorState, GradientState, PartialState

    shared = [PartialState._shared_state, AcceleratorState._shared_state,
              GradientState._shared_state]  # the singletons' dicts, changed in place only
    saved = [dict(state) for state in shared]
    keep_partial = shared[0].get("num_processes", 1) > 1
    for state in shared[keep_partial:]:
        state.clear()
    try:
        yield Accelerator(mixed_precision=mixed_precision, cpu=device.type == "cpu")
    finally:
        for state, old in zip(shared, saved):
            state.clear()
            state.update(old)


@contextlib.contextmanager
def activation_checkpointing(model, on: bool):
    """transformers' gradient checkpointing (non-reentrant) while the block runs, when ``on``
    and the model does not checkpoint already: each decoder layer keeps only its input and
    recomputes the rest in the backward pass (about one more forward pass of compute, a
    fraction of the activation memory). Switched off again on exit."""
    if not on or any(getattr(m, "gradient_checkpointing", False) for m in model.modules()):
        yield
        return
    hooked = _input_grad_hooks(model)
    kwargs = {"use_reentrant": False}  # reentrant checkpointing needs inputs that require grad
    if hasattr(model, "activation_checkpointing_enable"):  # transformers >= 5
        model.activation_checkpointing_enable(activation_checkpointing_kwargs=kwargs)
        disable = model.activation_checkpointing_disable
    else:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)
        disable = model.gradient_checkpointing_disable
    try:
        yield
    finally:
        disable()
        # transformers 5 also hooks the input embeddings (their output requires grad) and leaves
        # the hook there; take it off unless it was there before.
        if not hooked and _input_grad_hooks(model):
            model.disable_input_require_grads()


def _input_grad_hooks(model):
    """transformers' input-embedding hooks of ``enable_input_require_grads`` (its attribute is
    ``_require_grads_hooks`` in version 5, ``_require_grads_hook`` before)."""
    return (getattr(model, "_require_grads_hooks", None)
            or getattr(model, "_require_grads_hook", None))


def train(model, tok, encoded, dev_encoded, params, optimizer, accelerator, *, loss_fn, steps,
          batch_size, grad_accum, warmup, schedule, max_grad_norm, seed, eval_every, rank, world,
          desc, progress, callback=None) -> pd.DataFrame:
    """Run ``steps`` optimizer steps on ``params`` (the history ``finetune`` returns).

    ``encoded``: the training examples (``tasks.encode``); ``loss_fn(model, batch)`` gives each
    example's mean answer NLL (B,) in nats (``loss.answer_losses``); ``optimizer`` is a torch
    optimizer over ``params``, prepared here; (``rank``, ``world``): this process and the
    process count (module docstring); ``callback(step)``, if given, runs after every step.
    The model is left in eval mode.
    """
    from transformers import get_scheduler

    device = next(model.parameters()).device
    scheduler = get_scheduler(SCHEDULES[schedule], optimizer,
                              num_warmup_steps=round(warmup * steps), num_training_steps=steps)
    # No device placement: AdamW makes its state on the parameters' devices.
    optimizer = accelerator.prepare_optimizer(optimizer, device_placement=False)
    per_step = batch_size * grad_accum
    # Consecutive chunks of one stream: the indices one process's grad_accum micro-batches of
    # batch_size drew before, in the same order.
    batches = _shuffled_batches(len(encoded), per_step, seed)
    share = slice(rank * per_step // world, (rank + 1) * per_step // world)
    if world > 1:
        # Set up alike on every rank (LoRA's initialisation), but dropout masks should differ
        # between ranks as their examples do: accelerate's device-specific seed, seed + rank.
        torch.manual_seed(seed + rank)
    rows = []
    if dev_encoded is not None:
        rows.append({"step": 0,
                     "dev_nll": answer_nll(model, tok, dev_encoded, batch_size=batch_size)})
    bar = tqdm(total=steps, desc=desc, disable=not progress or rank != 0)
    for step in range(1, steps + 1):
        started = time.perf_counter()
        model.train()
        mine = next(batches)[share]
        loss_sum = 0.0
        for start in range(0, len(mine), batch_size):
            chunk = mine[start:start + batch_size]
            batch = _to(collate([encoded[i] for i in chunk], tok.pad_token_id), device)
            with accelerator.autocast():
                losses, _ = loss_fn(model, batch)  # (b,) mean answer NLL per example, float32
            # Divided by the global batch's example count, so that the gradients (summed over
            # micro-batches and ranks) are those of the mean over all of the step's examples.
            accelerator.backward(losses.sum() / per_step)
            loss_sum += losses.detach().sum().item()
        if world > 1:
            sum_gradients(params)
            loss_sum = sum_over_ranks(loss_sum, device)
        loss = loss_sum / per_step
        if not math.isfinite(loss):
            raise FloatingPointError(
                f"the training loss is {loss} at step {step}; lower lr, or train in float32 / "
                "bfloat16 rather than float16")
        if max_grad_norm:
            accelerator.clip_grad_norm_(params, max_grad_norm)
        lr_now = scheduler.get_last_lr()[0]
        optimizer.step()
        if not accelerator.optimizer_step_was_skipped:  # fp16: the scaler skips inf gradients
            scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        rows.append({"step": step, "loss": loss, "lr": lr_now,
                     "seconds": time.perf_counter() - started})
        bar.update(1)
        bar.set_postfix(loss=f"{loss:.4f}")
        if dev_encoded is not None and ((eval_every and step % eval_every == 0) or step == steps):
            # Every rank measures all of dev: the weights are identical, so are the values.
            rows.append({"step": step,
                         "dev_nll": answer_nll(model, tok, dev_encoded, batch_size=batch_size)})
            bar.set_postfix(loss=f"{loss:.4f}", dev_nll=f"{rows[-1]['dev_nll']:.4f}")
        if callback is not None:
            callback(step)
    bar.close()
    model.eval()
    columns = ["step", "loss", "lr", "seconds"] + (["dev_nll"] if dev_encoded is not None else [])
    return pd.DataFrame(rows, columns=columns)


def _shuffled_batches(n: int, batch_size: int, seed: int):
    """Endless lists of example indices: consecutive chunks of a stream of shuffled epochs."""
    generator = torch.Generator().manual_seed(seed)
    pending: list[int] = []
    while True:
        while len(pending) < batch_size:
            pending.extend(torch.randperm(n, generator=generator).tolist())
        yield pending[:batch_size]
        pending = pending[batch_size:]


def _to(batch: dict, device) -> dict:
    return {key: value.to(device) for key, value in batch.items()}
