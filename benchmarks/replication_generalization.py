"""The ``generalization`` parts of ``benchmarks/replication.py`` (the paper's Section 4).

    gen_sweep_cls    proportion sweep, classification group (data card's suggestion)
    gen_sweep_gen    proportion sweep, generation group
    gen_pairwise     each training task's top-10% neurons trained alone, gain on all 12 tasks
    gen_similarity   per-layer parameter similarity vs out-of-domain gain (same runs as pairwise)
    gen_pairwise_specific
                     the pairwise gains again (cached runs) beside the overlap of specific sets
                     of the same size (contrastive and entropy selection, ``tn.select``)

Every trained model's results are cached (``ex.GeneralizationConfig.out_dir``, default
``cache_dir()/generalization``), so an interrupted part resumes at the run it was in; each part's
CSV is written when it finishes. Learning rates: chosen on the training tasks' dev NLL by the
sweep (neuron training at p = 0.1, full fine-tuning separately); pairwise/similarity reuse the
sweep's neuron lr of the source's group. Sized for about 60 minutes on 2 idle cores.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

import taskneuron_utils as tn
from harness import write_csv
from taskneuron_utils import experiments as ex, plots

GEN_PARTS = (
    "gen_sweep_cls",
    "gen_sweep_gen",
    "gen_pairwise",
    "gen_similarity",
    "gen_pairwise_specific",
)
SELECTIONS = ("contrastive", "entropy")
SWEEP_PART = {"classification": "gen_sweep_cls", "generation": "gen_sweep_gen"}
CONFIG = ex.PROFILES["quick"].generalization.replace(
    proportions=(0.1, 0.3, 0.5, 0.7, 1.0),
    random_seeds=(0, 1, 2),
    n_attribution=32,
    examples=200,
    steps=12,
    batch_size=4,
    lrs=(1e-4, 1e-3),
    full_lrs=(1e-5, 1e-4),
    n_dev=24,
    n_eval=32,
    pairwise_p=0.1,
    progress=True,
)


def _neuron_lr(out: Path, group: str) -> float | None:
    path = out / f"{SWEEP_PART[group]}.csv"
    if not path.exists():
        return None  # chosen on the source's own dev NLL instead
    sweep = pd.read_csv(path)
    return float(sweep[sweep.condition == "task"]["lr"].iloc[0])


def run_generalization(part: str, out: Path) -> pd.DataFrame:
    model, tok = tn.load_model()
    tasks = tn.load_tasks(CONFIG.group_tasks())
    if part in ("gen_sweep_cls", "gen_sweep_gen"):
        group = [g for g in CONFIG.groups if SWEEP_PART[g[0]] == part]
        return ex.proportion_sweep(model, tok, tasks, CONFIG.replace(groups=tuple(group)))
    frames = []
    for name, train, _ in CONFIG.groups:
        lr = _neuron_lr(out, name)
        if part == "gen_pairwise":
            frames.append(ex.pairwise_transfer(model, tok, tasks, CONFIG, sources=train, lr=lr))
        elif part == "gen_pairwise_specific":
            frames.append(
                ex.pairwise_transfer(
                    model, tok, tasks, CONFIG, sources=train, lr=lr, selections=SELECTIONS
                )
            )
        elif part == "gen_similarity":
            frames.append(ex.similarity_vs_gain(model, tok, tasks, CONFIG, sources=train, lr=lr))
        else:
            raise ValueError(f"unknown part {part!r}; choose from {GEN_PARTS}")
    return pd.concat(frames, ignore_index=True)


def summarize_generalization(out: Path) -> None:
    """Print the correlations and draw the record's figures from whatever CSVs exist."""
    sweeps = [pd.read_csv(out / f"{p}.csv") for p in GEN_PARTS[:2] if (out / f"{p}.csv").exists()]
    if sweeps:
        sweep = pd.concat(sweeps, ignore_index=True)
        for y in ("gain", "nll_gain"):
            corr = ex.sweep_correlations(sweep, y=y)
            write_csv(corr, out / f"gen_sweep_correlations_{y}.csv")
            print(corr.round(3).to_string(index=False))
        for group, part in sweep.groupby("group"):
            plots.plot_overlap_gain(part, y="nll_gain").figure.savefig(
                out / f"gen_overlap_nll_gain_{group}.png", dpi=110, bbox_inches="tight"
            )
            plots.plot_gain_vs_p(part, value="nll_gain").figure.savefig(
                out / f"gen_gain_vs_p_{group}.png", dpi=110, bbox_inches="tight"
            )
    if (out / "gen_pairwise.csv").exists():
        pair = pd.read_csv(out / "gen_pairwise.csv")
        corr = pd.concat(
            [ex.correlations(pair, "overlap", y).assign(subset="all") for y in ("gain", "nll_gain")]
            + [ex.correlations(pair, "overlap", y, by="same_family") for y in ("gain", "nll_gain")],
            ignore_index=True,
        )
        write_csv(corr, out / "gen_pairwise_correlations.csv")
        print(corr.round(3).to_string(index=False))
    if (out / "gen_pairwise_specific.csv").exists():
        pair = pd.read_csv(out / "gen_pairwise_specific.csv")
        corr = pd.concat(
            [
                ex.correlations(pair, x, y).assign(subset="all")
                for x in ["overlap"] + [f"overlap_{m}" for m in SELECTIONS]
                for y in ("gain", "nll_gain")
            ],
            ignore_index=True,
        )
        write_csv(corr, out / "gen_pairwise_specific_correlations.csv")
        print(corr.round(3).to_string(index=False))
    if (out / "gen_similarity.csv").exists():
        sim = pd.read_csv(out / "gen_similarity.csv")
        for y in ("gain", "nll_gain"):
            layers = ex.layer_correlations(sim, y=y)
            write_csv(layers, out / f"gen_layer_correlations_{y}.csv")
            plots.plot_layer_correlation(layers).figure.savefig(
                out / f"gen_layer_correlation_{y}.png", dpi=110, bbox_inches="tight"
            )
        plots.plot_similarity_heatmap(sim).figure.savefig(
            out / "gen_similarity_update.png", dpi=110, bbox_inches="tight"
        )
