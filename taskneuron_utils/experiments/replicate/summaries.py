"""What the report shows of Tables 1 and 2 and of specificity, derived from the units' files:
interval tables, scores and figures, written beside the units' files (the committed record's
derived files: ``*_intervals.csv``, ``budget_contrasts.csv``, ``specific_*.csv``, the PNGs).
Each function reads whatever unit files exist in ``out`` and skips the rest."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd

from ... import plots
from ..deactivation import deactivation_summary, table1
from ..finetuning import table2
from ..intervals import table1_intervals
from ..specificity import deactivation_matrix, specificity_scores
from ..sweeps import budget_contrasts, budget_table
from .parts_deactivation import UNITS_SPECIFIC
from .sources import write_csv

DEACT_UNITS = ("deact_mt_k10", "deact_mt_k02", "deact_base_k10", "deact_mt_kinds", "deact_mt_excl")
SWEEP_UNITS = ("table1_seeds_linear", "table1_seeds_act", "k_sweep_linear", "k_sweep_act")


def stale(path: Path, sources) -> bool:
    """Whether the derived file ``path`` is missing or older than one of its ``sources``: a
    committed record's figures are redrawn only when a unit behind them changed."""
    path = Path(path)
    if not path.exists():
        return True
    newest = max((Path(s).stat().st_mtime for s in sources if Path(s).exists()), default=0)
    return path.stat().st_mtime < newest


def derived(path: Path, sources, compute) -> pd.DataFrame:
    """The derived table at ``path``: read back when it is newer than its ``sources``, else
    ``compute()``d and written (a committed record's tables stay byte for byte as they are)."""
    if not stale(path, sources):
        return pd.read_csv(path)
    frame = compute()
    write_csv(frame, path)
    return frame


def save_figure(draw, path: Path, sources, dpi: int = 110, tight: bool = True) -> None:
    """``draw()`` (an Axes or a Figure) saved to ``path`` as PNG when ``path`` is stale."""
    if not stale(path, sources):
        return
    figure = draw()
    figure = getattr(figure, "figure", figure)
    figure.savefig(path, dpi=dpi, bbox_inches="tight" if tight else None)
    plt.close(figure)


def summarize_table1(out: Path, finetune_seed: int = 0) -> dict:
    """Table 1 of the three-seed units, their NLL heatmaps; Table 2 of the fine-tuning units."""
    out = Path(out)
    tables = {}
    deact = {u: pd.read_csv(out / f"{u}.csv") for u in DEACT_UNITS if (out / f"{u}.csv").exists()}
    if deact:
        tables["table1"] = table1(pd.concat(deact.values()))
    for unit in ("deact_mt_k10", "deact_mt_k02", "deact_mt_excl"):
        if unit in deact:
            save_figure(
                lambda frame=deact[unit]: plots.plot_deactivation_heatmap(frame, value="nll"),
                out / f"{unit}_nll.png",
                [out / f"{unit}.csv"],
            )
    if (out / "finetune.csv").exists():
        tuned = pd.read_csv(out / "finetune.csv").assign(seed=finetune_seed)
        if (out / "finetune_seeds.csv").exists():
            tuned = pd.concat([tuned, pd.read_csv(out / "finetune_seeds.csv")])
        tables["table2"] = table2(tuned)
        tables["finetune"] = tuned
        save_figure(
            lambda: plots.plot_finetuning(tuned, value="nll"),
            out / "finetune_nll.png",
            [out / "finetune.csv", out / "finetune_seeds.csv"],
        )
    return tables


def summarize_sweeps(out: Path) -> dict:
    """The interval tables of the per-example units (``<unit>_intervals.csv``), the budget
    table and contrasts; the k-sweep and budget figures."""
    out = Path(out)
    tables = {}
    for unit in SWEEP_UNITS:
        path = out / f"{unit}.csv"
        if not path.exists():
            continue
        intervals = derived(
            out / f"{unit}_intervals.csv",
            [path],
            lambda path=path: table1_intervals(pd.read_csv(path)),
        )
        tables[unit] = intervals
        if unit.startswith("k_sweep_"):
            save_figure(
                lambda frame=intervals: plots.plot_k_sweep(frame, value="nll"),
                out / f"{unit}_nll.png",
                [path],
            )
    if (out / "budget.csv").exists():
        budget = pd.read_csv(out / "budget.csv")
        tables["budget"] = budget_table(budget)
        tables["budget_contrasts"] = derived(
            out / "budget_contrasts.csv", [out / "budget.csv"], lambda: budget_contrasts(budget)
        )
        for value, name in (("nll", "budget_nll"), ("dev_auc_mean", "budget_dev_auc")):
            save_figure(
                lambda value=value: plots.plot_budget(budget, value=value),
                out / f"{name}.png",
                [out / "budget.csv"],
            )
    return tables


def summarize_specific(out: Path) -> dict:
    """The score, interval, core and matrix tables of the finished ``specific_*`` units
    (``specific_scores.csv``, ``specific_table1.csv``, ``specific_core.csv``,
    ``specific_matrices.csv``); the matrix and dominance figures."""
    out = Path(out)
    parts = [p for p in UNITS_SPECIFIC if (out / f"{p}.csv").exists()]
    if not parts:
        return {}
    sources = [out / f"{p}.csv" for p in parts]
    rows = pd.concat([pd.read_csv(path) for path in sources], ignore_index=True)
    families = rows[rows.family != "shared core"]
    scores = derived(out / "specific_scores.csv", sources, lambda: _scores(families))
    mean = scores[scores.task == "mean"]
    examples = [out / f"{p}_examples.csv.gz" for p in parts]
    table = derived(out / "specific_table1.csv", examples, lambda: _intervals(examples))
    core = derived(out / "specific_core.csv", sources, lambda: _core(rows))
    matrices = derived(out / "specific_matrices.csv", sources, lambda: _matrix_rows(families))
    for k in sorted(matrices.k.unique()):
        chosen = matrices[(matrices.k == k) & (matrices.value == "nll")]
        path = out / f"specific_matrices_k{round(100 * k):02d}.png"
        save_figure(
            lambda chosen=chosen, k=k: _matrices(chosen, k), path, sources, dpi=80, tight=False
        )
    save_figure(lambda: _dominance(mean), out / "specific_dominance.png", sources)
    return {"specific_scores": scores, "specific_table1": table, "specific_core": core}


def _scores(families: pd.DataFrame) -> pd.DataFrame:
    return pd.concat(
        [
            specificity_scores(part).assign(definition=d, k=k)
            for (d, k), part in families.groupby(["definition", "k"], sort=False)
        ]
    )


def _intervals(paths) -> pd.DataFrame:
    """Own vs random and own vs other per family, bootstrap over examples and seeds."""
    intervals = []
    for path in paths:
        examples = pd.read_csv(path)
        examples = examples[examples.family != "shared core"]
        for family, part in examples.groupby("family", sort=False):
            intervals.append(
                table1_intervals(part.drop(columns="family")).assign(
                    family=family, definition=part.definition.iloc[0]
                )
            )
    return pd.concat(intervals, ignore_index=True)


def _core(rows: pd.DataFrame) -> pd.DataFrame:
    core = deactivation_summary(rows[rows.family == "shared core"])
    return core.merge(rows[["model", "definition", "k"]].drop_duplicates(), on="model")


def _matrix_rows(families: pd.DataFrame) -> pd.DataFrame:
    """Every set x task effect matrix beyond the random baseline, long form."""
    matrices = []
    for (d, k, family), part in families.groupby(["definition", "k", "family"], sort=False):
        for value in ("nll", "score"):
            matrix = deactivation_matrix(part, value)
            matrices.append(
                matrix.rename_axis(index="set", columns="task")
                .stack()
                .rename("effect")
                .reset_index()
                .assign(definition=d, k=k, family=family, value=value)
            )
    return pd.concat(matrices, ignore_index=True)


def _matrices(chosen: pd.DataFrame, k: float):
    panels = list(chosen.groupby(["definition", "family"], sort=False))
    fig, axes = plt.subplots(2, 4, figsize=(20, 7.5), squeeze=False, layout="constrained")
    for ax, ((definition, family), part) in zip(axes.flat, panels):
        matrix = part.pivot(index="set", columns="task", values="effect")
        order = list(dict.fromkeys(part.task))
        plots.plot_specificity(
            matrix.loc[order, order], ax=ax, title=f"{definition}, {family}, k = {100 * k:g}%"
        )
        ax.tick_params(axis="x", rotation=90)
    for ax in list(axes.flat)[len(panels) :]:
        ax.set_visible(False)
    return fig


def _dominance(mean: pd.DataFrame):
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8), sharey=True, squeeze=False)
    for ax, (definition, part) in zip(axes.flat, mean[mean.value == "nll"].groupby("definition")):
        plots.plot_dominance_vs_k(part, ax=ax, title=f"{definition} units: diagonal dominance")
    return fig
