"""Data parallelism over ``torch.distributed``: what ``attribute`` and ``finetune`` need to
split their batches over processes and add their sums, and nothing when no process group is
initialised.

Launch one process per GPU (``torchrun --nproc_per_node N script.py`` or ``accelerate launch``)
and call the package as in one process; with a group initialised, ``tn.attribute`` gives batch
``i`` to rank ``i % world_size`` and every rank returns the same total, and ``tn.finetune``
splits each step's batch over the ranks and sums their gradients (``train_loop``). Collective
tensors live on the GPU for nccl and on the CPU otherwise (gloo).
"""

from __future__ import annotations

import glob
import os
from pathlib import Path

import torch
from .identity import content_hash


def rank_and_world() -> tuple[int, int]:
    """(rank, world size) of an initialised ``torch.distributed`` group; (0, 1) otherwise."""
    distributed = torch.distributed
    if distributed.is_available() and distributed.is_initialized():
        return distributed.get_rank(), distributed.get_world_size()
    return 0, 1


def init_from_environment() -> tuple[int, int]:
    """Make the process group a launcher asks for, if there is none yet; return (rank, world).

    ``torchrun`` and ``accelerate launch`` start each process with ``WORLD_SIZE``, ``RANK``,
    ``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT`` in its environment; with
    ``WORLD_SIZE`` > 1 the group is made from them: nccl when CUDA is available (this process
    then uses GPU ``LOCAL_RANK``), gloo otherwise. Without a launcher, or with a group already
    made, nothing changes ((0, 1) in one process).
    """
    distributed = torch.distributed
    if (
        int(os.environ.get("WORLD_SIZE", "1")) > 1
        and distributed.is_available()
        and not distributed.is_initialized()
    ):
        if torch.cuda.is_available():
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        distributed.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    return rank_and_world()


def _comm_device(device: torch.device) -> torch.device:
    if torch.distributed.get_backend() == "nccl":
        return (
            device if device.type == "cuda" else torch.device("cuda", torch.cuda.current_device())
        )
    return torch.device("cpu")


def ranks_disagree(fields: dict, device: torch.device) -> list[str]:
    """The names of ``fields`` (ints or strings, hashed) whose values differ between ranks;
    computed by every rank (two all-reduces, MIN and MAX), so that all ranks raise together
    instead of hanging in a later collective."""

    def as_int(value) -> int:
        if isinstance(value, int):
            return value
        return int(content_hash([str(value)])[:15], 16)

    mine = torch.tensor(
        [as_int(v) for v in fields.values()], dtype=torch.int64, device=_comm_device(device)
    )
    low, high = mine.clone(), mine.clone()
    torch.distributed.all_reduce(low, op=torch.distributed.ReduceOp.MIN)
    torch.distributed.all_reduce(high, op=torch.distributed.ReduceOp.MAX)
    return [name for name, lo, hi in zip(fields, low.tolist(), high.tolist()) if lo != hi]


def gather_sum(tensors: list[torch.Tensor], counts: list[int], device: torch.device):
    """The sum over ranks of each tensor (in float64, then back to its dtype and ``device``)
    and of each count. Gathered and added in rank order on every rank, not all-reduced: every
    rank holds the identical result, whatever the backend's reduction order.

    Returns (list of tensors shaped like ``tensors``, list of ints)."""
    distributed = torch.distributed
    world, comm = distributed.get_world_size(), _comm_device(device)
    flat = torch.cat([t.reshape(-1).to(comm, torch.float64) for t in tensors])
    numbers = torch.tensor(counts, dtype=torch.int64, device=comm)
    flats = [torch.empty_like(flat) for _ in range(world)]
    all_numbers = [torch.empty_like(numbers) for _ in range(world)]
    distributed.all_gather(flats, flat)
    distributed.all_gather(all_numbers, numbers)
    total, total_numbers = flats[0].clone(), all_numbers[0].clone()
    for other, other_numbers in zip(flats[1:], all_numbers[1:]):
        total += other
        total_numbers += other_numbers
    pieces = torch.split(total, [t.numel() for t in tensors])
    return (
        [piece.reshape(t.shape).to(device, t.dtype) for piece, t in zip(pieces, tensors)],
        [int(v) for v in total_numbers.tolist()],
    )


def sum_gradients(params: list[torch.Tensor]) -> None:
    """Replace each tensor's ``.grad`` by its sum over ranks, in place (all-reduce, SUM), so
    that every rank holds the identical gradient. A tensor that got no gradient on some ranks
    (none of their examples reached it) counts zeros there; one that got none on every rank
    keeps none, as in one process (where AdamW then leaves it alone)."""
    distributed = torch.distributed
    comm = _comm_device(params[0].device)
    anywhere = torch.tensor([p.grad is not None for p in params], dtype=torch.int64, device=comm)
    distributed.all_reduce(anywhere, op=distributed.ReduceOp.MAX)
    for param, present in zip(params, anywhere.tolist()):
        if not present:
            continue
        if param.grad is None:
            param.grad = torch.zeros_like(param)
        grad = param.grad.to(comm)  # the gradient itself, unless gloo meets a GPU tensor
        distributed.all_reduce(grad)
        if grad is not param.grad:
            param.grad.copy_(grad)


def sum_over_ranks(value: float, device: torch.device) -> float:
    """``value`` summed over ranks (in float64), the same on every rank."""
    total = torch.tensor([value], dtype=torch.float64, device=_comm_device(device))
    torch.distributed.all_reduce(total)
    return float(total)


def rank_file(path, rank: int, world: int) -> tuple[Path, list[str]]:
    """(this rank's file for ``path``: ``stem.rank{r}-of-{w}.suffix``, or ``path`` itself in
    one process; the names of files beside it written by runs with another number of
    processes, which the caller should refuse to mix with this run)."""
    path = Path(path)
    own = path if world == 1 else path.with_name(f"{path.stem}.rank{rank}-of-{world}{path.suffix}")
    if own.exists():
        return own, []
    pattern = f"{glob.escape(path.stem)}.rank*-of-*{path.suffix}"
    others = sorted(
        p.name
        for p in path.parent.glob(pattern)
        if not p.name.endswith(f"-of-{world}{path.suffix}")
    )
    if world > 1 and path.exists():
        others.insert(0, path.name)
    return own, others
