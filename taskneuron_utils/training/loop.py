"""The training loop behind ``tn.finetune`` and the continual-learning methods, run on an
``accelerate.Accelerator``.

``fit`` is what they share: ``training.finetune`` hands it what is trained (every parameter,
neuron rows, LoRA adapters), ``experiments.cl_methods`` the tensors of its method and, for EWC
and O-LoRA, a penalty added to the loss; both hand it their ``TrainConfig`` (the options and the
loss function, ``config.loss``). ``fit`` sets up the accelerator, the seeded random state,
activation checkpointing and AdamW, and ``train`` runs the optimizer steps. The accelerator
supplies mixed precision (``accelerator.autocast()`` around the forward pass; for
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
parameters of the model, which is what DDP wraps. A penalty (a function of the trained tensors,
not of the examples) is added once per step, by the last rank, whose share is never empty: the
summed gradients then hold it once, as in one process.
"""

from __future__ import annotations

import contextlib
import math
import time

import pandas as pd
import torch
from tqdm.auto import tqdm

from ..core.layout import weight_fingerprint
from ..attribution.state import hash_encoded
from ..scoring.loss import answer_nll
from ..core.parallel import rank_and_world, ranks_disagree, sum_gradients, sum_over_ranks
from ..core.placement import check_in_memory, input_device, only_trainable
from ..tasks import collate, to_device
from .config import SCHEDULES, TrainConfig


def fit(
    model,
    tok,
    encoded,
    trainable,
    config: TrainConfig,
    *,
    penalty=None,
    dev_encoded=None,
    agree: dict | None = None,
    desc: str = "train",
    callback=None,
) -> pd.DataFrame:
    """Train the tensors ``trainable`` yields for ``config.steps_for(len(encoded))`` AdamW steps
    on ``encoded``, as ``config`` says.

    Args:
        encoded: training examples (``tasks.encode``).
        trainable: a context manager, not yet entered, that yields the list of tensors to train
            (setting ``requires_grad`` as it needs) and undoes its own setup on exit
            (``training``'s methods, ``cl_methods``'s tensors). It is entered with the random
            state seeded, so a LoRA initialisation inside it is reproducible.
        config: the loop's options (``TrainConfig``; ``max_length`` is the encoder's business,
            already done), the loss ``config.loss`` included.
        penalty: None, or a function () -> scalar tensor, in the loss's units, added to the
            objective once per step (EWC's and O-LoRA's regularisers); its gradient reaches
            every tensor it reads.
        dev_encoded: None, or encoded examples whose answer NLL is measured before training,
            every ``config.eval_every`` steps and at the end.
        agree: more settings that every rank of a data-parallel run must share (e.g. the
            method), checked with the model's weights, the data and the loop's options.
        desc: the progress bar's label.
        callback: None, or ``callback(step)`` called after every optimizer step (1-based).

    Around ``train``: the options are checked against the model before any work (offloaded
    weights are refused: a ``device_map`` that offloads modules keeps no weights to update);
    the accelerator; with several processes, the model moved to this process's device and the
    ranks' agreement checked; the random state forked and seeded with ``config.seed`` (the
    caller's is left alone); ``trainable`` entered; activation checkpointing; AdamW.
    Afterwards every ``requires_grad`` flag of the model is restored, gradients dropped, the
    model in eval mode, also when training stops early (the updates made so far are kept).

    Returns:
        ``train``'s history; its ``attrs``: ``steps``, ``examples_per_step`` (the global
        batch), ``seed``, ``mixed_precision``, ``processes``, ``trainable_parameters``,
        ``optimizer_state_numel`` and ``optimizer_state_bytes`` (AdamW's moments and steps).
    """
    check_options(model, config)
    config = config.replace(steps=config.steps_for(len(encoded)))
    device = input_device(model)
    with accelerator_for(device, config.mixed_precision) as accelerator:
        if accelerator.num_processes > 1 and device != accelerator.device:
            model.to(accelerator.device)
            device = accelerator.device
        rank, world = rank_and_world()
        if world > 1:
            check_ranks_agree(
                model,
                encoded,
                device,
                steps=config.steps,
                batch_size=config.batch_size,
                grad_accum=config.grad_accum,
                lr=config.lr,
                seed=config.seed,
                mixed_precision=config.mixed_precision,
                **(agree or {}),
            )
        rng_devices = []
        if device.type == "cuda":  # fork the GPU generator too: dropout draws from it there
            rng_devices = [torch.cuda.current_device() if device.index is None else device.index]
        try:
            # Dropout and LoRA's initialisation draw from torch's global generator: fork it, so
            # that the run is reproducible and the caller's random state is left alone.
            # Every flag restored and every gradient dropped on exit, error or not.
            with torch.random.fork_rng(devices=rng_devices), only_trainable(model):
                torch.manual_seed(config.seed)
                with (
                    trainable as params,
                    activation_checkpointing(model, config.gradient_checkpointing),
                ):
                    optimizer = torch.optim.AdamW(
                        params, lr=config.lr, weight_decay=config.weight_decay
                    )
                    history = train(
                        model,
                        tok,
                        encoded,
                        dev_encoded,
                        params,
                        optimizer,
                        accelerator,
                        config,
                        rank=rank,
                        world=world,
                        penalty=penalty,
                        desc=desc,
                        callback=callback,
                    )
                    state = [
                        t
                        for s in optimizer.state.values()
                        for t in s.values()
                        if isinstance(t, torch.Tensor)
                    ]
                    history.attrs.update(
                        steps=config.steps,
                        examples_per_step=config.examples_per_step,
                        seed=config.seed,
                        mixed_precision=config.mixed_precision,
                        processes=world,
                        trainable_parameters=sum(p.numel() for p in params),
                        optimizer_state_numel=sum(t.numel() for t in state),
                        optimizer_state_bytes=sum(t.numel() * t.element_size() for t in state),
                    )
                    optimizer.zero_grad(set_to_none=True)
                    del optimizer, state
        finally:
            model.eval()
    return history


def check_options(model, config: TrainConfig) -> None:
    """Raise before any work on weights (offloaded ones) or options this model or device cannot
    train with (``TrainConfig`` has checked the values themselves)."""
    check_in_memory(model.parameters(), "training")
    if config.mixed_precision == "fp16" and input_device(model).type == "cpu":
        # accelerate would not raise: on the CPU it silently trains without autocast.
        raise ValueError(
            "mixed_precision='fp16' needs a GPU (accelerate autocasts to float16 and scales the "
            "loss on CUDA and similar devices only); on the CPU use mixed_precision='bf16'"
        )
    if config.gradient_checkpointing and not getattr(
        model, "supports_gradient_checkpointing", False
    ):
        raise ValueError(
            f"{type(model).__name__} does not support gradient checkpointing; "
            "pass gradient_checkpointing=False"
        )


def check_ranks_agree(model, encoded, device, **options) -> None:
    """Raise on every rank, before any work, if the ranks' models, data or ``options`` (ints, or
    anything ``str`` describes) differ: they would otherwise hang in a collective or train
    apart."""
    fields = {
        "weights": weight_fingerprint(model),
        "data_hash": hash_encoded(encoded),
        "n_examples": len(encoded),
        **options,
    }
    differs = ranks_disagree(fields, device)  # ints compared as they are, the rest hashed
    if differs:
        raise RuntimeError(
            f"data-parallel finetune: the {rank_and_world()[1]} processes disagree on "
            f"{', '.join(differs)}; every rank must pass the same model, data and options"
        )


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

    shared = [
        PartialState._shared_state,
        AcceleratorState._shared_state,
        GradientState._shared_state,
    ]  # the singletons' dicts, changed in place only
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
    return getattr(model, "_require_grads_hooks", None) or getattr(
        model, "_require_grads_hook", None
    )


def train(
    model,
    tok,
    encoded,
    dev_encoded,
    params,
    optimizer,
    accelerator,
    config: TrainConfig,
    *,
    rank,
    world,
    penalty,
    desc,
    callback=None,
) -> pd.DataFrame:
    """Run ``config.steps`` optimizer steps on ``params`` (the history ``finetune`` returns).

    ``encoded``: the training examples (``tasks.encode``); ``config``: the loop's options, its
    ``steps`` set (``fit`` resolves ``epochs``), ``config.loss(model, batch)`` giving each
    example's mean answer NLL (B,) in nats; ``optimizer`` is a torch optimizer over ``params``,
    prepared here; (``rank``, ``world``): this process and the process count (module
    docstring); ``penalty``: None or () -> scalar tensor, added to the objective once per step
    (``fit``), its value logged in a ``penalty`` column; ``callback(step)``, if given, runs
    after every step. The model is left in eval mode.
    """
    from transformers import get_scheduler

    steps, batch_size, seed = config.steps_for(len(encoded)), config.batch_size, config.seed
    device = input_device(model)
    scheduler = get_scheduler(
        SCHEDULES[config.schedule],
        optimizer,
        num_warmup_steps=round(config.warmup * steps),
        num_training_steps=steps,
    )
    # No device placement: AdamW makes its state on the parameters' devices.
    optimizer = accelerator.prepare_optimizer(optimizer, device_placement=False)
    per_step = config.examples_per_step
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
        rows.append(
            {"step": 0, "dev_nll": answer_nll(model, tok, dev_encoded, batch_size=batch_size)}
        )
    bar = tqdm(total=steps, desc=desc, disable=not config.progress or rank != 0)
    for step in range(1, steps + 1):
        started = time.perf_counter()
        model.train()
        mine = next(batches)[share]
        loss_sum = penalty_value = 0.0
        for start in range(0, len(mine), batch_size):
            chunk = mine[start : start + batch_size]
            batch = to_device(collate([encoded[i] for i in chunk], tok.pad_token_id), device)
            with accelerator.autocast():
                losses, _ = config.loss(model, batch)  # (b,) mean answer NLL per example, float32
            # Divided by the global batch's example count, so that the gradients (summed over
            # micro-batches and ranks) are those of the mean over all of the step's examples.
            objective = losses.sum() / per_step
            if penalty is not None and rank == world - 1 and start == 0:
                # Once per step, in the same backward pass as the first micro-batch.
                extra = penalty()
                objective = objective + extra
                penalty_value = float(extra.detach())
            accelerator.backward(objective)
            loss_sum += losses.detach().sum().item()
        if world > 1:
            sum_gradients(params)
            loss_sum = sum_over_ranks(loss_sum, device)
            if penalty is not None:
                penalty_value = sum_over_ranks(penalty_value, device)
        loss = loss_sum / per_step
        if not math.isfinite(loss + penalty_value):
            raise FloatingPointError(
                f"the training loss is {loss} at step {step}; lower lr, or train in float32 / "
                "bfloat16 rather than float16"
            )
        if config.max_grad_norm:
            accelerator.clip_grad_norm_(params, config.max_grad_norm)
        lr_now = scheduler.get_last_lr()[0]
        optimizer.step()
        if not accelerator.optimizer_step_was_skipped:  # fp16: the scaler skips inf gradients
            scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        rows.append(
            {"step": step, "loss": loss, "lr": lr_now, "seconds": time.perf_counter() - started}
        )
        if penalty is not None:
            rows[-1]["penalty"] = penalty_value
        bar.update(1)
        bar.set_postfix(loss=f"{loss:.4f}")
        if dev_encoded is not None and (
            (config.eval_every and step % config.eval_every == 0) or step == steps
        ):
            # Every rank measures all of dev: the weights are identical, so are the values.
            rows.append(
                {
                    "step": step,
                    "dev_nll": answer_nll(model, tok, dev_encoded, batch_size=batch_size),
                }
            )
            bar.set_postfix(loss=f"{loss:.4f}", dev_nll=f"{rows[-1]['dev_nll']:.4f}")
        if callback is not None:
            callback(step)
    bar.close()
    model.eval()
    columns = (
        ["step", "loss", "lr", "seconds"]
        + (["penalty"] if penalty is not None else [])
        + (["dev_nll"] if dev_encoded is not None else [])
    )
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
