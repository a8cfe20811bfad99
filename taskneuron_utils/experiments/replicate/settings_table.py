"""The report's settings table: what the paper states beside what this run chose, one row per
setting. The paper's column quotes the paper (or says it is silent); ours is read off the
run's ``Settings``, so the table cannot drift from what ran."""

from __future__ import annotations

import pandas as pd

from .settings import Settings

SILENT = "not stated"


def _n(value) -> str:
    return "all" if value is None else f"{value:,}"


def settings_table(s: Settings) -> pd.DataFrame:
    """Columns ``setting``, ``paper states``, ``we chose``."""
    d, m, f, g, c = s.detection, s.multitask, s.finetuning, s.generalization, s.continual
    kinds = "gate, up, down outputs (linear sites); also `act` (down_proj's input)"
    rows = [
        ("model", "Llama-2-7b, Bloom-7b1", s.model or "SmolLM2-135M-Instruct (embedded)"),
        ("dtype / placement", SILENT, f"{s.dtype or 'float32'} / {s.device_map or 'one device'}"),
        ("tasks (Tables 1, 2)", "6 classification + 6 generation hub data sets", ", ".join(s.tasks)),
        ("neuron", "FFN neurons of W1 or W2 (which of gate / up unstated)", kinds),
        ("relevance", "|dL/dw . w| (first-order Taylor)", "|dL/dw . w| per neuron, answer tokens"),
        ("aggregation over tokens / examples", SILENT, "sum over positions, mean of |.| over examples"),
        ("top-k", "k = 10%", f"k = {d.k:g} {d.per}"),
        ("detection examples per task", SILENT, f"{_n(d.n_attribution)} (held out from the mixture)"),
        ("original model", "multi-task fine-tuned (recipe unstated)",
         f"full FT, {m.examples} examples/task, {m.steps} steps x {m.batch_size}, lr {m.lr:g}"),
        ("deactivation", "neurons switched off", f"outputs zeroed ({s.deactivation.mode} mode)"),
        ("random baseline", "random neurons, same count",
         f"same count per site, seeds {list(s.deactivation.random_seeds)}"),
        ("test examples per task", "full test sets", f"{_n(s.deactivation.n_eval)}; intervals {_n(s.table1.n_eval)}"),
        ("neuron fine-tuning (Table 2)", SILENT,
         f"{f.steps} steps x {f.batch_size}, lr grid {list(f.lrs)} chosen on {f.n_dev} dev examples"),
        ("budgets (Table 2)", "one budget", f"{list(s.budgets)} steps x {s.budget.batch_size}"),
        ("generalization proportions", "10/30/50/70/100%", ", ".join(f"{100 * p:g}%" for p in g.proportions)),
        ("generalization training", SILENT, f"{g.steps} steps x {g.batch_size}, lrs {list(g.lrs)}"),
        ("continual sequences", "AG News, Amazon, DBpedia, Yahoo (orders 1-3); + MNLI, QQP, RTE, SST-2",
         "; ".join(f"{i}: {', '.join(o)}" for i, o in s.orders)),
        ("continual training", "1,000 examples a task, 1 epoch, LoRA r 8 (baselines)",
         f"{c.examples} examples, {c.steps} steps x {c.batch_size}, LoRA r {c.lora_r}"),
        ("continual methods", "SeqFT, SeqLoRA, EPI, O-LoRA, NCFT, W-NCFT, per-task FT", ", ".join(s.cl_methods)),
        ("max tokens per example", SILENT, f"{d.max_length} (detection), {f.max_length} (training)"),
    ]  # fmt: skip
    return pd.DataFrame(rows, columns=["setting", "paper states", "we chose"])
