"""Which neurons? Every attribution method of ``tn.attribute`` beside exact ablation, on the
default model and the six tasks of the quick profile's mixture, under both neuron definitions
(``linear``: the gate, up and down outputs; ``act``: the input of down_proj). Issue 25, part 3.

    python benchmarks/attribution_methods.py [--out benchmarks/results/attribution_methods]
        [--parts ...] [--threads N] [--detect-examples 4] [--agree-examples 1] [--neurons 12]
        [--eval-examples 2] [--seeds 2] [--steps 16] [--ig-sites middle|all]

Parts (each writes its files under --out as it finishes and is skipped when they exist, so an
interrupted run resumes at the part it was in; the sizes are kept in settings.json and a rerun
with other sizes is refused; two processes may run disjoint --parts into one --out, the parts
after relevance once it is done):

    relevance           every method's relevance of every unit (kinds "all": both definitions
                        in one pass) per task, on --detect-examples training examples (seed 0):
                        grad_x_act, attribution_patching against the reference mean
                        (atp_mean), activation (mean |a|) and firing_rate (LAPE's share of
                        positions with a > 0); relevance/<method>/<task>.safetensors
    overlap             Jaccard of the top-k sets of every pair of methods, per task, k = 2%, 10%
    agreement_<def>     per-neuron agreement with exact ablation: --neurons units drawn (seed 0)
                        at each of three sites (an early, a middle and a late layer), exact
                        zero- and mean-ablation of each one at a time (``method="ablation"``),
                        and every method, integrated gradients (zero baseline, --steps) on the
                        middle site (--ig-sites all: the three), all on the same --agree-examples examples per task (the
                        mixture's prompts, seed 1); each call timed: the cost ratios to
                        grad_x_act come from one run on the same examples
    table1_<def>_k<pct>_<mode>
                        each method's top-k sets (k = 2% or 10% per site) switched off on every
                        task, zero (``mode="activation"``) or mean ablation
                        (``tn.Ablation.mean``), beside --seeds random sets of the same count per
                        site and the intact model: the answer NLL of --eval-examples test
                        examples per task (seed 0) per condition

The reference mean (for atp_mean and mean ablation, both) is ``tn.activation_stats`` over 4
training examples per task (the mixture's prompts, seed 2). The loss everywhere is the mean
answer-token NLL of an example (nats). Only the NLL is scored (no generation): on 2 shared cores
generating the three generation tasks' answers would cost more than the rest together.
Integrated gradients and exact ablation score the sampled sites only (their cost per site and
per unit, below, rules out the whole model here), so they are in (a) and the cost ratios, not
in the sets of (b) and (c).

The summary (every run) writes summary.json and spearman.csv (Spearman of each method's score
with each exact ablation over the sampled units, pooled and per site, percentile bootstrap over
units), overlap_summary.csv, table1.csv (``ex.table1_intervals``: own vs random, own vs other,
bootstrap over examples and seeds), specificity.csv (``ex.specificity_scores`` on the NLL:
diagonal dominance and selectivity, bootstrap over tasks), costs and IG's completeness residual.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from scipy.stats import bootstrap, spearmanr
from tqdm.auto import tqdm

import taskneuron_utils as tn
from harness import add_threads_option, apply_threads, write_csv, write_json
from taskneuron_utils import experiments as ex
from taskneuron_utils.neurons.analysis import expected_random_jaccard
from taskneuron_utils.experiments.common import eval_split
from taskneuron_utils.scoring.loss import answer_losses
from taskneuron_utils.tasks import collate, encode

TASKS = ex.PROFILES["quick"].multitask.tasks  # the six tasks of the mixture
DEFINITIONS = {"linear": None, "act": "act"}
SITES = {
    "linear": ("layers.3.mlp.gate", "layers.15.mlp.up", "layers.27.mlp.down"),
    "act": ("layers.3.mlp.act", "layers.15.mlp.act", "layers.27.mlp.act"),
}
KS = {"k02": 0.02, "k10": 0.10}
MODES = ("zero", "mean")
SET_METHODS = ("grad_x_act", "atp_mean", "activation")  # the families of (c)
ALL_METHODS = (*SET_METHODS, "firing_rate")  # (b) also compares LAPE's firing rate
# In the order of what matters most if a run is cut short.
PARTS = (
    "relevance",
    "overlap",
    "table1_linear_k10_zero",
    "table1_act_k10_zero",
    "agreement_act",
    "agreement_linear",
    "table1_linear_k10_mean",
    "table1_act_k10_mean",
    "table1_linear_k02_zero",
    "table1_act_k02_zero",
    "table1_linear_k02_mean",
    "table1_act_k02_mean",
)
BATCH = 8


def options(method: str, stats) -> dict:
    """``tn.attribute``'s keyword arguments for one method name of this record."""
    return {
        "grad_x_act": {},
        "atp_mean": dict(method="attribution_patching", baseline=stats),
        "activation": dict(method="activation"),
        "firing_rate": dict(method="activation", statistic="firing_rate"),
    }[method]


def reference_stats(model, tok, tasks):
    """The reference mean of atp_mean and mean ablation: 4 training examples a task."""
    return tn.activation_stats(model, tok, ex.multitask_mixture(tasks, 4, seed=2), progress=False)


def restrict(rel: tn.Relevance, definition: str) -> tn.Relevance:
    """The sites of one definition of a relevance computed on every site (kinds "all")."""
    keep = [s for s in rel.sum_abs if (s.endswith(".act")) == (definition == "act")]
    return tn.Relevance(
        {s: rel.sum_abs[s] for s in keep},
        {s: rel.sum_signed[s] for s in keep},
        rel.n_examples,
        rel.n_tokens,
        rel.provenance,
        rel.aggregation,
    )


def relevance_path(out: Path, method: str, task: str) -> Path:
    return out / "relevance" / method / f"{task}.safetensors"


def run_relevance(model, tok, tasks, stats, sizes, out: Path) -> None:
    for method in ALL_METHODS:
        for name, task in tqdm(tasks.items(), desc=f"relevance {method}"):
            path = relevance_path(out, method, name)
            if path.exists():
                continue
            path.parent.mkdir(parents=True, exist_ok=True)
            rel = tn.attribute(
                model,
                tok,
                task.train.sample(sizes["detect_examples"], seed=0),
                kinds="all",
                batch_size=BATCH,
                progress=False,
                **options(method, stats),
            )
            rel.save(path)


def load_sets(model, out: Path, definition: str, k: float, methods=SET_METHODS) -> dict:
    """{method: {task: NeuronSet}}, the top k per site of one definition."""
    return {
        m: {
            t: restrict(tn.Relevance.load(relevance_path(out, m, t), model), definition).top_k(k)
            for t in TASKS
        }
        for m in methods
    }


def run_overlap(model, out: Path) -> pd.DataFrame:
    rows = []
    for definition in DEFINITIONS:
        for k in KS.values():
            sets = load_sets(model, out, definition, k, ALL_METHODS)
            for i, a in enumerate(ALL_METHODS):
                for b in ALL_METHODS[i + 1 :]:
                    for task in TASKS:
                        rows.append(
                            {
                                "definition": definition,
                                "k": k,
                                "a": a,
                                "b": b,
                                "task": task,
                                "jaccard": sets[a][task].jaccard(sets[b][task]),
                                "chance": expected_random_jaccard(k),
                            }
                        )
    return pd.DataFrame(rows)


def run_agreement(model, tok, tasks, stats, sizes, definition: str) -> tuple[pd.DataFrame, dict]:
    """One row per sampled unit: every method's score and both exact ablations, on the same
    examples; and each call's wall time, IG's completeness."""
    kinds = DEFINITIONS[definition]
    data = ex.multitask_mixture(tasks, sizes["agree_examples"], seed=1)
    n_units = {site.name: site.n_neurons for site in tn.ffn_sites(model, kinds)}
    generator = torch.Generator().manual_seed(0)
    neurons = {
        site: torch.randperm(n_units[site], generator=generator)[: sizes["neurons"]].sort().values
        for site in SITES[definition]
    }
    run = dict(kinds=kinds, batch_size=len(data), progress=False)
    calls = {m: options(m, stats) for m in ALL_METHODS}
    calls["exact_zero"] = dict(method="ablation", neurons=neurons)
    calls["exact_mean"] = dict(method="ablation", neurons=neurons, baseline=stats)
    ig_sites = SITES[definition] if sizes["ig_sites"] == "all" else SITES[definition][1:2]
    for site in ig_sites:
        calls[f"ig:{site}"] = dict(
            method="integrated_gradients", steps=sizes["steps"], neurons={site: [0]}
        )
    tn.attribute(model, tok, data, **run)  # warm-up (first-call costs), not timed
    results, seconds = {}, {}
    for name, call in tqdm(calls.items(), desc=f"agreement {definition}"):
        started = time.perf_counter()
        results[name] = tn.attribute(model, tok, data, **run, **call)
        seconds[name] = time.perf_counter() - started
    rows = []
    for site, idx in neurons.items():
        ig = [("integrated_gradients", results[f"ig:{site}"])] if site in ig_sites else []
        for name, rel in [*results.items(), *ig]:
            if name.startswith("ig:"):
                continue
            scores = rel.scores[site][idx].numpy()
            signed = (rel.sum_signed[site][idx] / rel.n_examples).numpy()
            rows += [
                {
                    "definition": definition,
                    "site": site,
                    "unit": int(u),
                    "method": name,
                    "score": float(s),
                    "signed": float(v),
                }
                for u, s, v in zip(idx, scores, signed)
            ]
    completeness = {
        site: results[f"ig:{site}"].provenance["completeness"]["per_site"][site]
        for site in ig_sites
    }
    info = {
        "definition": definition,
        "examples": len(data),
        "sites": list(SITES[definition]),
        "units_per_site": sizes["neurons"],
        "n_sites_of_definition": len(n_units),
        "n_units_of_definition": sum(n_units.values()),
        "seconds": {k: round(v, 2) for k, v in seconds.items()},
        "ig_completeness": {
            site: {"mean_abs_residual": r, "mean_abs_delta": d}
            for site, (r, d) in completeness.items()
        },
    }
    return pd.DataFrame(rows), info


def score_nll(model, tok, encoded, neurons, mode) -> tuple[np.ndarray, np.ndarray]:
    """Per-example summed answer NLL (nats) and answer tokens with ``neurons`` off."""
    sums, counts = [], []
    with torch.no_grad(), tn.deactivate(model, neurons, mode=mode):
        for start in range(0, len(encoded), 2 * BATCH):
            batch = collate(encoded[start : start + 2 * BATCH], tok.pad_token_id)
            losses, _ = answer_losses(model, batch)
            n = (batch["labels"][:, 1:] != -100).sum(1)
            sums.append((losses.double() * n).numpy())
            counts.append(n.numpy())
    return np.concatenate(sums), np.concatenate(counts)


def run_table1(model, tok, tasks, stats, sizes, part: str, out: Path) -> pd.DataFrame:
    """Per-example NLL rows in ``ex.deactivation(per_example=True)``'s layout (no score)."""
    _, definition, k_name, mode = part.split("_")
    families = load_sets(model, out, definition, KS[k_name])
    splits = {t: eval_split(tasks[t], sizes["eval_examples"], 0) for t in TASKS}
    encoded = [e for t in TASKS for e in encode(tok, splits[t])]
    owner = np.repeat(list(TASKS), [len(splits[t]) for t in TASKS])
    ablation = "activation" if mode == "zero" else tn.Ablation.mean(stats)
    template = families[SET_METHODS[0]][TASKS[0]]
    evaluated = {("none", "none", -1): tn.NeuronSet({}, template.sizes)}
    evaluated.update(
        {
            ("random", "random", s): tn.NeuronSet.random_like(template, seed=s)
            for s in range(sizes["seeds"])
        }
    )
    evaluated.update({(m, t, -1): families[m][t] for m in SET_METHODS for t in TASKS})
    values = {
        key: score_nll(model, tok, encoded, neurons, ablation)
        for key, neurons in tqdm(evaluated.items(), desc=part)
    }
    label = f"{definition} k={KS[k_name]:g} {mode}"
    frames = []
    for family in SET_METHODS:
        for (who, deactivated, seed), (nll_sum, n_tokens) in values.items():
            if who not in ("none", "random", family):
                continue
            for task in TASKS:
                chosen = owner == task
                condition = (
                    who
                    if who in ("none", "random")
                    else "own"
                    if deactivated == task
                    else f"other:{deactivated}"
                )
                frames.append(
                    pd.DataFrame(
                        {
                            "model": label,
                            "family": family,
                            "definition": definition,
                            "k": KS[k_name],
                            "mode": mode,
                            "task": task,
                            "category": tasks[task].category,
                            "metric": tasks[task].metric,
                            "condition": condition,
                            "deactivated": deactivated,
                            "seed": seed,
                            "n_neurons": len(evaluated[(who, deactivated, seed)]),
                            "example": np.arange(chosen.sum()),
                            "nll_sum": nll_sum[chosen],
                            "n_tokens": n_tokens[chosen],
                            "nll": nll_sum[chosen] / n_tokens[chosen],
                        }
                    )
                )
    return pd.concat(frames, ignore_index=True)


def interval(x, y, statistic, seed=0) -> tuple[float, float]:
    """Percentile bootstrap over units (pairs resampled together), 2000 resamples."""
    result = bootstrap(
        (np.asarray(x), np.asarray(y)),
        statistic,
        paired=True,
        vectorized=False,
        n_resamples=2000,
        method="percentile",
        rng=np.random.default_rng(seed),
    )
    return float(result.confidence_interval.low), float(result.confidence_interval.high)


def spearman_table(agreement: pd.DataFrame) -> pd.DataFrame:
    def rho(a, b):
        return spearmanr(a, b).statistic

    rows = []
    wide = agreement.pivot_table(
        index=["definition", "site", "unit"], columns="method", values=["score", "signed"]
    )
    methods = [m for m in wide["score"].columns if not m.startswith("exact")]
    for definition, part in wide.groupby(level="definition", sort=False):
        scopes = [("pooled", part)] + list(part.groupby(level="site", sort=False))
        for scope, chosen in scopes:
            for reference in ("exact_zero", "exact_mean"):
                for method in methods:
                    for kind in ("score", "signed"):
                        if kind == "signed" and method in ("activation", "firing_rate"):
                            continue  # no sign: a statistic, not a loss change
                        x, y = chosen[kind][method], chosen[kind][reference]
                        measured = x.notna() & y.notna()  # IG: its sites only
                        x, y = x[measured], y[measured]
                        if len(x) < 3:
                            continue
                        low, high = interval(x, y, rho)
                        rows.append(
                            {
                                "definition": definition,
                                "scope": scope,
                                "reference": reference,
                                "method": method,
                                "value": "magnitude" if kind == "score" else "signed",
                                "units": len(x),
                                "spearman": rho(x, y),
                                "low": low,
                                "high": high,
                            }
                        )
    return pd.DataFrame(rows)


def summarize(out: Path, sizes: dict) -> None:
    summary: dict = {
        "sizes": sizes,
        "tasks": list(TASKS),
        "sites": SITES,
        "times": json.loads((out / "times.json").read_text())
        if (out / "times.json").exists()
        else {},
    }
    agreements = [d for d in DEFINITIONS if (out / f"agreement_{d}.csv").exists()]
    if agreements:
        table = spearman_table(
            pd.concat([pd.read_csv(out / f"agreement_{d}.csv") for d in agreements])
        )
        write_csv(table, out / "spearman.csv")
        pooled = table[(table.scope == "pooled") & (table.value == "magnitude")]
        print(pooled.round(3).to_string(index=False))
        summary["spearman_pooled_magnitude"] = pooled.round(4).to_dict("records")
        summary["costs"], summary["ig_completeness"] = {}, {}
        for d in agreements:
            info = json.loads((out / f"agreement_{d}.json").read_text())
            s = info["seconds"]
            ig = [v for k, v in s.items() if k.startswith("ig:")]
            n_measured = len(info["sites"]) * info["units_per_site"]
            summary["costs"][d] = {
                "grad_x_act_seconds": s["grad_x_act"],
                "examples": info["examples"],
                **{
                    f"{m}_over_grad_x_act": round(s[m] / s["grad_x_act"], 3)
                    for m in ("atp_mean", "activation", "firing_rate")
                },
                "integrated_gradients_per_site_over_grad_x_act": {
                    k[3:]: round(v / s["grad_x_act"], 2)
                    for k, v in s.items()
                    if k.startswith("ig:")
                },
                "integrated_gradients_every_site_over_grad_x_act (extrapolated)": round(
                    np.mean(ig) * info["n_sites_of_definition"] / s["grad_x_act"], 1
                ),
                "exact_ablation_per_unit_over_grad_x_act": round(
                    s["exact_zero"] / n_measured / s["grad_x_act"], 4
                ),
                "exact_ablation_every_unit_over_grad_x_act (extrapolated)": round(
                    s["exact_zero"] / n_measured * info["n_units_of_definition"] / s["grad_x_act"],
                    0,
                ),
            }
            summary["ig_completeness"][d] = info["ig_completeness"]
    if (out / "overlap.csv").exists():
        overlap = pd.read_csv(out / "overlap.csv")
        mean = (
            overlap.groupby(["definition", "k", "a", "b"], sort=False)
            .agg(
                jaccard=("jaccard", "mean"),
                low=("jaccard", "min"),
                high=("jaccard", "max"),
                chance=("chance", "first"),
            )
            .reset_index()
        )
        write_csv(mean, out / "overlap_summary.csv")
        summary["overlap_mean_over_tasks (low/high: min/max over tasks)"] = mean.round(4).to_dict(
            "records"
        )
    parts = [p for p in PARTS if p.startswith("table1") and (out / f"{p}.csv.gz").exists()]
    if parts:
        examples = pd.concat([pd.read_csv(out / f"{p}.csv.gz") for p in parts])
        intervals, scores = [], []
        for (_, family), frame in examples.groupby(["model", "family"], sort=False):
            keys = frame[["definition", "k", "mode"]].iloc[0].to_dict()
            table = ex.table1_intervals(frame.drop(columns=["family", "definition", "k", "mode"]))
            intervals.append(table.assign(family=family, **keys))
            per_condition = (
                frame.groupby(
                    [
                        "model",
                        "family",
                        "task",
                        "category",
                        "condition",
                        "deactivated",
                        "seed",
                        "n_neurons",
                    ],
                    sort=False,
                )
                .agg(nll_sum=("nll_sum", "sum"), n_tokens=("n_tokens", "sum"))
                .reset_index()
            )
            per_condition["nll"] = per_condition.pop("nll_sum") / per_condition.pop("n_tokens")
            scores.append(ex.specificity_scores(per_condition, "nll").assign(**keys))
        intervals = pd.concat(intervals, ignore_index=True)
        scores = pd.concat(scores, ignore_index=True)
        write_csv(intervals, out / "table1.csv")
        write_csv(scores, out / "specificity.csv")
        overall = intervals[(intervals.task == "all") & (intervals.category == "all")]
        shown = overall.filter(
            regex=r"^(definition|k|mode|family|own_effect|random_effect|"
            r"own_vs_random.*|own_vs_other.*|beyond_.*)$"
        )
        print(shown.round(3).to_string(index=False))
        mean = scores[scores.task == "mean"][
            [
                "definition",
                "k",
                "mode",
                "family",
                "dominance",
                "dominance_low",
                "dominance_high",
                "selectivity",
                "selectivity_low",
                "selectivity_high",
            ]
        ]
        print(mean.round(3).to_string(index=False))
        summary["table1_all_tasks_nll"] = shown.round(4).to_dict("records")
        summary["specificity_mean_nll"] = mean.round(4).to_dict("records")
    write_json(out / "summary.json", summary)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--out", default=str(Path(__file__).parent / "results" / "attribution_methods")
    )
    parser.add_argument("--parts", nargs="+", default=list(PARTS), choices=PARTS)
    parser.add_argument("--detect-examples", type=int, default=4, help="per task")
    parser.add_argument("--agree-examples", type=int, default=1, help="per task")
    parser.add_argument("--neurons", type=int, default=12, help="sampled units per site")
    parser.add_argument("--eval-examples", type=int, default=2, help="test examples per task")
    parser.add_argument("--seeds", type=int, default=2, help="random sets per condition")
    parser.add_argument("--steps", type=int, default=16, help="integrated gradients' points")
    parser.add_argument(
        "--ig-sites",
        choices=("middle", "all"),
        default="middle",
        help="the sampled sites integrated gradients runs on (its cost: steps + "
        "1 forward and backward passes per site)",
    )
    add_threads_option(parser)
    args = parser.parse_args()
    apply_threads(args)
    sizes = {
        key: getattr(args, key)
        for key in (
            "detect_examples",
            "agree_examples",
            "neurons",
            "eval_examples",
            "seeds",
            "steps",
            "ig_sites",
        )
    }
    sizes["threads"] = torch.get_num_threads()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    settings = out / "settings.json"
    if settings.exists():
        recorded = {k: v for k, v in json.loads(settings.read_text()).items() if k != "threads"}
        if recorded != {k: v for k, v in sizes.items() if k != "threads"}:
            raise SystemExit(
                f"{out} holds results of other sizes ({recorded}); pass another "
                "--out or the same sizes"
            )
    write_json(settings, sizes)
    model, tok = tn.load_model()
    tasks = tn.load_tasks(list(TASKS))
    stats = reference_stats(model, tok, tasks)
    times_path = out / "times.json"
    for part in args.parts:
        started = time.perf_counter()
        if part == "relevance":
            if all(relevance_path(out, m, t).exists() for m in ALL_METHODS for t in TASKS):
                continue
            run_relevance(model, tok, tasks, stats, sizes, out)
        elif part == "overlap":
            if (out / "overlap.csv").exists():
                continue
            write_csv(run_overlap(model, out), out / "overlap.csv")
        elif part.startswith("agreement"):
            definition = part.split("_")[1]
            if (out / f"{part}.csv").exists():
                continue
            frame, info = run_agreement(model, tok, tasks, stats, sizes, definition)
            write_json(out / f"{part}.json", info)
            write_csv(frame, out / f"{part}.csv")
        else:
            if (out / f"{part}.csv.gz").exists():
                continue
            write_csv(
                run_table1(model, tok, tasks, stats, sizes, part, out), out / f"{part}.csv.gz"
            )
        # Read again before writing: another process may be running other parts into --out.
        times = json.loads(times_path.read_text()) if times_path.exists() else {}
        write_json(times_path, {**times, part: round(time.perf_counter() - started, 1)})
    summarize(out, sizes)


if __name__ == "__main__":
    main()
