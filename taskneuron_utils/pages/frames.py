"""What a pass of ``pages.scan.scan`` returns: per neuron, the running top and bottom k and
the sums, and the tables made from them (``top_examples``' long frame, ``neuron_stats``, the
values a page's histogram draws).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from .running_top import POSITION_BITS, SUM_NAMES


class Scan:
    """The result of one pass of ``scan``: running top/bottom k and sums, per neuron.

    Attributes:
        neurons: [(Site, index)], in column order. items: the scanned sequences. k: kept.
        top_values / bottom_values: float32 (k, M) activations, rank order (bottom: most
        negative first); top_keys / bottom_keys: long (k, M) position keys
        (``example << 20 | position``; -1 where fewer than k positions exist).
        sums: {"sum", "m2" (sum of squared deviations from the mean): float64 (M,),
        "positive": long (M,), "task_sum": float64 (n_tasks, M), "task_count": long
        (n_tasks,), "count": long ()}. The extremes are the first top / bottom values.
        tasks: task names in ``task_sum`` row order.
        kept: with ``keep_values``, [(task row (n,) long, -1 for strings; values (n, M))] of
        every counted position, batch by batch; else None.
    """

    def __init__(self, neurons, items, k, tasks, state):
        self.neurons, self.items, self.k, self.tasks = neurons, items, k, tasks
        self.kept = state.get("kept")
        # (M, k) in the state (one neuron's kept values contiguous), (k, M) here
        self.top_values, self.top_keys = state["top_values"].T, state["top_keys"].T
        self.bottom_values, self.bottom_keys = -state["bottom_values"].T, state["bottom_keys"].T
        self.sums = {name: state[name] for name in SUM_NAMES}

    def stats(self) -> pd.DataFrame:
        """One row a neuron: site, neuron, mean, std, firing_rate (share of counted positions
        > 0), min, max, positions, and ``mean_<task>`` per task (activation units)."""
        s, n = self.sums, int(self.sums["count"])
        mean = s["sum"] / max(n, 1)
        frame = pd.DataFrame(
            {
                "site": [site.name for site, _ in self.neurons],
                "neuron": [index for _, index in self.neurons],
                "mean": mean.numpy(),
                "std": (s["m2"] / max(n, 1)).sqrt().numpy(),
                "firing_rate": (s["positive"].double() / max(n, 1)).numpy(),
                "min": self.bottom_values[0].double().numpy(),
                "max": self.top_values[0].double().numpy(),
                "positions": n,
            }
        )
        for row, task in enumerate(self.tasks):
            count = max(int(s["task_count"][row]), 1)
            frame[f"mean_{task}"] = (s["task_sum"][row] / count).numpy()
        return frame

    def values(self, column: int = 0) -> pd.DataFrame:
        """Every counted activation of neuron ``column`` (needs ``keep_values``): task,
        activation."""
        if self.kept is None:
            raise ValueError("this scan kept no values; run scan(..., keep_values=True)")
        rows = torch.cat([rows for rows, _ in self.kept])
        values = torch.cat([values[:, column] for _, values in self.kept])
        names = [*self.tasks, None]  # row -1: plain strings
        return pd.DataFrame(
            {"task": [names[r] for r in rows.tolist()], "activation": values.numpy()}
        )

    def examples(self, tok, window: int = 8) -> pd.DataFrame:
        """The long frame ``top_examples`` returns (see there). Built column by column: one
        Python row per (neuron, rank) cost more than the scan itself at thousands of neurons."""
        sites = np.array([site.name for site, _ in self.neurons], dtype=object)
        indices = np.array([index for _, index in self.neurons], dtype=np.int64)
        parts = []
        for sign, values, keys in (
            ("top", self.top_values, self.top_keys),
            ("bottom", self.bottom_values, self.bottom_keys),
        ):
            values, keys = values.T.double().numpy(), keys.T.numpy()  # (M, k): neuron, rank
            # Fewer counted positions than k leave key -1 (value -inf) at the end of a row.
            column, rank = np.nonzero((keys >= 0) & np.isfinite(values))  # row-major order
            parts.append((sign, column, rank, values[column, rank], keys[column, rank]))
        keys = np.concatenate([part[4] for part in parts])
        # Each distinct position is decoded once, whatever the number of neurons it tops.
        distinct, which = np.unique(keys, return_inverse=True)
        data_index, position = distinct >> POSITION_BITS, distinct & ((1 << POSITION_BITS) - 1)
        items = [self.items[i] for i in data_index.tolist()]
        token_ids = [item.ids[p] for item, p in zip(items, position.tolist())]
        texts = [
            (tok.decode([token]), _context(tok, item.ids, p, window))
            for item, p, token in zip(items, position.tolist(), token_ids)
        ]

        def per_position(values) -> np.ndarray:
            return np.array(values, dtype=object)[which]

        column = np.concatenate([part[1] for part in parts])
        return pd.DataFrame(
            {
                "site": sites[column],
                "neuron": indices[column],
                "sign": np.concatenate([np.full(len(part[1]), part[0]) for part in parts]),
                "rank": np.concatenate([part[2] for part in parts]) + 1,
                "activation": np.concatenate([part[3] for part in parts]),
                "task": per_position([item.task for item in items]),
                "example": np.array([item.example for item in items], dtype=np.int64)[which],
                "data_index": data_index[which],
                "position": position[which],
                "token_id": np.array(token_ids, dtype=np.int64)[which],
                "token": per_position([token for token, _ in texts]),
                "context": per_position([context for _, context in texts]),
            },
            columns=EXAMPLE_COLUMNS,
        )


EXAMPLE_COLUMNS = [
    "site",
    "neuron",
    "sign",
    "rank",
    "activation",
    "task",
    "example",
    "data_index",
    "position",
    "token_id",
    "token",
    "context",
]


def _context(tok, ids: list[int], position: int, window: int) -> str:
    """Text of ``window`` tokens either side, the token itself in ⟦ ⟧."""
    before = tok.decode(ids[max(position - window, 0) : position])
    after = tok.decode(ids[position + 1 : position + 1 + window])
    return f"{before}⟦{tok.decode([ids[position]])}⟧{after}"
