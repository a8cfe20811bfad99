"""What the report shows of Section 4 and Table 5, derived from the units' files: correlation
tables (``gen_*_correlations*.csv``), Table 5 beside the paper (``continual_table5.csv``), the
paper's orderings, forgetting vs overlap, and the figures. Each function reads whatever unit
files exist in ``out`` and skips the rest; figures are redrawn only when stale."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd

from ... import plots
from ..continual.sequence import CL_METHODS, PAPER_TABLE5
from ..generalization.stats import correlations, layer_correlations, sweep_correlations
from .parts_training import continual_summary
from .summaries import save_figure, derived

GEN_SWEEPS = ("gen_sweep_cls", "gen_sweep_gen")


def summarize_generalization(out: Path, selections=("contrastive", "entropy")) -> dict:
    """Overlap vs gain in the sweeps and pairwise runs, per-layer similarity vs gain."""
    out = Path(out)
    tables = {}
    paths = [out / f"{u}.csv" for u in GEN_SWEEPS if (out / f"{u}.csv").exists()]
    if paths:
        sweep = pd.concat([pd.read_csv(p) for p in paths], ignore_index=True)
        for y in ("gain", "nll_gain"):
            tables[f"gen_sweep_correlations_{y}"] = derived(
                out / f"gen_sweep_correlations_{y}.csv",
                paths,
                lambda y=y: sweep_correlations(sweep, y=y),
            )
        for group, part in sweep.groupby("group"):
            save_figure(
                lambda part=part: plots.plot_overlap_gain(part, y="nll_gain"),
                out / f"gen_overlap_nll_gain_{group}.png",
                paths,
            )
            save_figure(
                lambda part=part: plots.plot_gain_vs_p(part, value="nll_gain"),
                out / f"gen_gain_vs_p_{group}.png",
                paths,
            )
    pairwise = out / "gen_pairwise.csv"
    if pairwise.exists():
        tables["gen_pairwise_correlations"] = derived(
            out / "gen_pairwise_correlations.csv", [pairwise], lambda: _pairwise(pairwise)
        )
    specific = out / "gen_pairwise_specific.csv"
    if specific.exists():
        tables["gen_pairwise_specific_correlations"] = derived(
            out / "gen_pairwise_specific_correlations.csv",
            [specific],
            lambda: _pairwise_specific(specific, selections),
        )
    if (out / "gen_similarity.csv").exists():
        source = out / "gen_similarity.csv"
        sim = pd.read_csv(source)
        for y in ("gain", "nll_gain"):
            tables[f"gen_layer_correlations_{y}"] = layers = derived(
                out / f"gen_layer_correlations_{y}.csv",
                [source],
                lambda y=y: layer_correlations(sim, y=y),
            )
            save_figure(
                lambda layers=layers: plots.plot_layer_correlation(layers),
                out / f"gen_layer_correlation_{y}.png",
                [source],
            )
        save_figure(
            lambda: plots.plot_similarity_heatmap(sim), out / "gen_similarity_update.png", [source]
        )
    return tables


def _pairwise(path: Path) -> pd.DataFrame:
    pair = pd.read_csv(path)
    return pd.concat(
        [correlations(pair, "overlap", y).assign(subset="all") for y in ("gain", "nll_gain")]
        + [correlations(pair, "overlap", y, by="same_family") for y in ("gain", "nll_gain")],
        ignore_index=True,
    )


def _pairwise_specific(path: Path, selections) -> pd.DataFrame:
    pair = pd.read_csv(path)
    return pd.concat(
        [
            correlations(pair, x, y).assign(subset="all")
            for x in ["overlap"] + [f"overlap_{m}" for m in selections]
            for y in ("gain", "nll_gain")
        ],
        ignore_index=True,
    )


def reference_cl(folder: Path) -> pd.DataFrame:
    """The references' CL (x100): one row per (reference, sequence length) with the mean score
    over that sequence's tasks, from ``references_<n>.csv``; columns ``method`` (per_task,
    multitask), ``tasks``, ``CL``."""
    refs = [pd.read_csv(p) for p in sorted(Path(folder).glob("references_*.csv"))]
    if not refs:
        return pd.DataFrame(columns=["method", "tasks", "CL"])
    cl = pd.concat(refs).groupby(["reference", "tasks"]).score.mean().mul(100).reset_index()
    return cl.rename(columns={"reference": "method", "score": "CL"})


def _lengths(summary: pd.DataFrame) -> tuple[int, int]:
    """The short and the long sequence's number of tasks (4 and 8 in the paper)."""
    lengths = sorted(int(n) for n in summary.tasks.dropna().unique())
    return (lengths[0], lengths[-1]) if lengths else (4, 8)


def table5(folder: Path) -> pd.DataFrame:
    """CL (x100) per method: mean and std over the short-sequence orders, the long sequence's,
    beside the paper's Table 5; FG and forgetting likewise (short-sequence mean). Columns are
    named by the sequences' lengths (``CL_4``, ``CL_8`` for the paper's)."""
    summary = continual_summary(folder)
    n, m = _lengths(summary)
    summary = pd.concat([summary, reference_cl(folder)], ignore_index=True)
    rows = []
    for method, part in summary.groupby("method", sort=False):
        short, long = part[part.tasks == n], part[part.tasks == m]
        paper = PAPER_TABLE5.get(method, (float("nan"), float("nan")))
        rows.append(
            {
                "method": method,
                f"CL_{n}": short.CL.mean(),
                f"CL_{n}_std": short.CL.std(),
                f"orders_{n}": len(short),
                **({f"CL_{m}": long.CL.mean()} if m != n else {}),
                "paper_CL_4": paper[0],
                "paper_CL_8": paper[1],
                f"FG_{n}": short.FG.mean(),
                f"forgetting_{n}": short.forgetting.mean(),
            }
        )
    return pd.DataFrame(rows)


# The paper's ordering of CL (Table 5, both sequences) as adjacent pairs, each method below the
# per-task reference, and NCFT against its random-neuron control (ours).
PAPER_PAIRS = (
    [("olora", "wncft"), ("wncft", "ncft"), ("ncft", "seqlora"), ("seqlora", "seqft")]
    + [("per_task", m) for m in ("olora", "wncft", "ncft", "seqlora", "seqft")]
    + [("ncft", "random_neurons")]
)


def orderings(folder: Path) -> pd.DataFrame:
    """For every pair (a, b) of ``PAPER_PAIRS``: CL(a) - CL(b) (x100) in each short-sequence
    order (paired: the same order for both; the per-task reference is the same in every order),
    its mean, min and max, and whether a > b in every order; the long sequence's beside it."""
    summary = continual_summary(folder)
    n, m = _lengths(summary)
    orders = summary[["order_number", "tasks"]].drop_duplicates()
    summary = pd.concat(
        [summary, reference_cl(folder).merge(orders, on="tasks")], ignore_index=True
    )  # each reference's CL repeated in every order
    cl = summary.pivot_table(index="order_number", columns="method", values="CL")
    tasks = summary.groupby("order_number").tasks.first()
    rows = []
    for a, b in PAPER_PAIRS:
        if a not in cl or b not in cl:
            continue
        diff = (cl[a] - cl[b]).dropna()
        short, long = diff[tasks[diff.index] == n], diff[tasks[diff.index] == m]
        rows.append(
            {
                "a": a,
                "b": b,
                f"orders_{n}": len(short),
                f"diff_{n}": short.mean(),
                f"min_{n}": short.min(),
                f"max_{n}": short.max(),
                "a_above_b_every_order": bool(len(short) and (short > 0).all()),
                **({f"diff_{m}": long.mean() if len(long) else float("nan")} if m != n else {}),
            }
        )
    return pd.DataFrame(rows)


def forgetting_correlations(folder: Path) -> pd.DataFrame:
    """Overlap vs forgetting across (order, trained task, earlier task) pairs, per method and
    kind of set (Pearson / Spearman, p-values, bootstrap intervals)."""
    frames = [pd.read_csv(p) for p in sorted(Path(folder).glob("forgetting_*_order*.csv"))]
    if not frames:
        return pd.DataFrame()
    pairs = pd.concat(frames, ignore_index=True)
    return correlations(pairs, "overlap", "forgetting", by=["method", "sets"])


def summarize_continual(out: Path) -> dict:
    """Table 5, the orderings and the forgetting correlations; the record's figures."""
    out = Path(out)
    folder = out / "continual"
    summary = continual_summary(folder) if folder.exists() else pd.DataFrame()
    if summary.empty:
        return {}
    sources = sorted(folder.glob("*.csv"))
    tables = {
        name: derived(out / f"{name}.csv", sources, lambda compute=compute: compute(folder))
        for name, compute in (
            ("continual_table5", table5),
            ("continual_forgetting_overlap", forgetting_correlations),
            ("continual_orderings", orderings),
        )
    }
    tables["continual_summary"] = summary
    n, _ = _lengths(summary)
    short = summary[summary.tasks == n]
    reference = tables["continual_table5"].set_index("method")[f"CL_{n}"].get("per_task")
    save_figure(
        lambda: plots.plot_cl_summary(short, reference=reference), out / "continual_cl.png", sources
    )
    for number in sorted(summary.order_number.unique()):
        for name, draw in (
            ("matrices", plots.plot_cl_matrix),
            ("trajectories", plots.plot_cl_trajectories),
        ):
            save_figure(
                lambda number=number, draw=draw: _order_figure(folder, int(number), draw),
                out / f"continual_{name}_order{int(number)}.png",
                sources,
                dpi=70,
                tight=False,
            )
    return tables


def _order_figure(folder: Path, number: int, draw):
    """Every method's accuracy matrix (or trajectories) of one order, one panel each."""
    runs = {
        method: pd.read_csv(folder / f"{method}_order{number}.csv")
        for method in CL_METHODS
        if (folder / f"{method}_order{number}.csv").exists()
    }
    size = 4.2 if number < 4 else 6.5
    fig, axes = plt.subplots(
        2, 4, figsize=(4 * size, 2 * size * 0.8), squeeze=False, layout="constrained"
    )
    for ax, (method, frame) in zip(axes.flat, runs.items()):
        order = list(dict.fromkeys(frame.trained))
        scores = frame.pivot(index="trained", columns="task", values="score").loc[order, order]
        draw(scores, ax=ax, title=f"{method}, order {number}")
    for ax in list(axes.flat)[len(runs) :]:
        ax.set_visible(False)
    return fig
