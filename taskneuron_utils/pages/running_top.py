"""Running top-k and moments per neuron over streamed batches (``pages.scan.scan``'s state).

The state is a dict of tensors (``fresh_state``), so a checkpoint is a plain tensor file. Per
neuron (M rows of (M, k) tensors): the k largest values and their position keys (``example << 20 |
position``, -1: none), the k largest of the negated values (the bottom k), and count, sum, m2
(sum of squared deviations from the mean), positive count, per-task sums and counts.

Exact: the kept values are the k most extreme of every position folded in so far, ties to the
smaller key (the earlier position), whatever the batch sizes (tests/test_neuron_pages.py
checks it against brute force). Cost per batch: two ``topk`` over the batch's (M, n) values
and a merge of 2k candidates per neuron (``benchmarks/top_examples.py``).
"""

from __future__ import annotations

import torch

POSITION_BITS = 20  # a position key is example << 20 | position (max_length < 2**20)
SUM_NAMES = ("sum", "m2", "positive", "task_sum", "task_count", "count")


def fresh_state(k: int, m: int, n_tasks: int) -> dict:
    """The state before any position: k kept of m neurons, per-task sums over n_tasks."""
    state: dict[str, torch.Tensor | int] = {
        f"{name}_{part}": torch.full((m, k), fill, dtype=dtype)
        for name in ("top", "bottom")
        for part, fill, dtype in (
            ("values", float("-inf"), torch.float32),
            ("keys", -1, torch.long),
        )
    }
    state.update(
        {
            "sum": torch.zeros(m, dtype=torch.float64),
            "m2": torch.zeros(m, dtype=torch.float64),
            "positive": torch.zeros(m, dtype=torch.long),
            "task_sum": torch.zeros(n_tasks, m, dtype=torch.float64),
            "task_count": torch.zeros(n_tasks, dtype=torch.long),
            "count": torch.zeros((), dtype=torch.long),
            "batches_done": 0,
        }
    )
    return state


def update(
    state: dict, acts: torch.Tensor, counted: torch.Tensor, first: int, task_rows: list[int], k: int
) -> None:
    """Fold one batch into the running state. acts: float32 (M, n), one row a neuron, its
    values at the batch's counted positions (``counted``: bool (B, T), True n times; taken
    row-major: example, then position); first: the data index of the batch's first example;
    task_rows: each example's task row (-1: none)."""
    batch, width = counted.shape
    if not counted.any():
        return
    flat = counted.reshape(-1).nonzero()[:, 0]
    keys = ((first + flat // width) << POSITION_BITS) | (flat % width)  # (n,), ascending
    sums = acts.sum(1)  # float32 (M,); torch sums pairwise, so ~1e-7 relative
    if not torch.isfinite(sums).all():
        raise ValueError(
            "non-finite activations in the batch starting at example "
            f"{first}; the model may overflow in this dtype"
        )
    state["positive"] += (acts > 0).sum(1, dtype=torch.int32)  # int32: 2x faster than int64
    for name, largest in (("top", True), ("bottom", False)):
        best, columns = batch_top(acts, k, largest)  # (M, k), columns ascending (key order)
        found = keys[columns].masked_fill_(columns < 0, -1)
        state[f"{name}_values"], state[f"{name}_keys"] = merge(
            state[f"{name}_values"], state[f"{name}_keys"], best if largest else -best, found, k
        )
    # Mean and spread: Chan et al.'s pairwise update of (count, sum, m2 = sum of squared
    # deviations), float32 within the batch, float64 across; no E[x^2] - mean^2 cancellation.
    n_new, n_old = acts.shape[1], int(state["count"])
    delta = sums.double() / n_new - state["sum"] / max(n_old, 1)
    # Two passes (the batch mean, then squared deviations): ~6x faster than Tensor.var here.
    batch_m2 = (acts - (sums / n_new)[:, None]).square_().sum(1)
    state["m2"] += batch_m2.double() + delta.square() * (n_old * n_new / (n_old + n_new))
    state["sum"] += sums.double()
    state["count"] += n_new
    position_task = torch.tensor(task_rows).repeat_interleave(counted.sum(1))  # (n,)
    if len(state["task_count"]):
        tasked = position_task >= 0
        one_hot = torch.nn.functional.one_hot(position_task[tasked], len(state["task_count"]))
        state["task_sum"] += (acts[:, tasked] @ one_hot.float()).T.double()
        state["task_count"] += one_hot.sum(0)
    if "kept" in state:  # scan(keep_values=True): every counted value, for a page's histogram
        state["kept"].append((position_task, acts.T))


def batch_top(values: torch.Tensor, k: int, largest: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """The k largest (or smallest) of each row of ``values`` (M, n), ties to the smaller
    column: (values, columns), both (M, k), columns ascending; -1 where n < k (value: -inf
    largest, +inf smallest). ``topk`` alone picks among ties arbitrarily; its (k + 1)-th value
    shows where the k-th ties with a left-out one, and only those rows are redone exactly (a
    cumulative count of the ties, as ``merge``): rare with continuous activations, common
    with ReLU zeros.
    """
    sign = 1.0 if largest else -1.0
    n = values.shape[1]
    if n <= k:  # pad (never chosen over a real position): topk needs k + 1 columns
        pad = values.new_full((len(values), k + 1 - n), -sign * float("inf"))
        best, columns = batch_top(torch.cat([values, pad], 1), k, largest)
        return best, columns.masked_fill_(columns >= n, -1)
    top = values.topk(k + 1, dim=1, largest=largest)
    kth, columns = top.values[:, k - 1 : k], top.indices[:, :k]
    crowded = (top.values[:, k] == top.values[:, k - 1]).nonzero()[:, 0]
    if len(crowded):
        part, edge = sign * values[crowded], sign * kth[crowded]
        above, tied = part > edge, part == edge
        chosen = above | (tied & (tied.cumsum(1) <= k - above.sum(1, keepdim=True)))
        columns[crowded] = chosen.nonzero()[:, 1].view(-1, k)
    columns = columns.sort(1).values
    return values.gather(1, columns), columns


def merge(run_values, run_keys, values, keys, k: int):
    """The k largest of the running (M, k) and new (M, R) values per row, ties to the smaller
    key; returns (values, keys) (M, k) sorted by value (descending), then key.

    The running columns hold earlier examples (smaller keys) in that order and the new columns
    are in key order, so among equal values the concatenation is in key order: ties are
    taken in column order (a cumulative count), and a stable sort keeps that order.
    """
    values, keys = torch.cat([run_values, values], 1), torch.cat([run_keys, keys], 1)
    kth = values.topk(k, dim=1).values[:, -1:]  # (M, 1)
    above, tied = values > kth, values == kth
    chosen = above | (tied & (tied.cumsum(1) <= k - above.sum(1, keepdim=True)))
    columns = chosen.nonzero()[:, 1].view(-1, k)  # (M, k): each row has exactly k
    values, keys = values.gather(1, columns), keys.gather(1, columns)
    order = torch.sort(values, dim=1, descending=True, stable=True).indices
    return values.gather(1, order), keys.gather(1, order)
