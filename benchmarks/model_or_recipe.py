"""Model or recipe? The localisation recipes of ``experiments.recipes`` side by side on the default
model: faithfulness over k, Han et al.'s overlap ratio and ablation selectivity, and the methods'
agreement with exact ablation. Issue 34, parts 4 and 5; read by docs/model-or-recipe.md.

    python benchmarks/model_or_recipe.py --out benchmarks/results/model_or_recipe/
        [--quick] [--threads N] [--stop-at HH:MM] [--parts ...] [--summary-only]

Parts, in the order of what matters most if a run is cut short; each writes one file under
--out atomically and is skipped when it exists, so a rerun resumes where the last one stopped
(the sizes are kept in settings.json; a rerun with other sizes is refused):

    sets_<task>               every recipe's relevance (kinds "all": both neuron definitions in
                              one pass) on --attr-examples training examples, the sets at every
                              k of the grid, both definitions: sets/<task>.npz
    faithfulness_<def>_<task> ``ex.faithfulness``: every recipe's set at every k kept alone
                              (the rest mean-ablated) and zero-ablated, on --eval-examples test
                              examples: LD and answer NLL per example
    selectivity_<def>_<k>_<recipe>  each task's set zero-ablated on every task
    agreement_<def>           ``tn.method_agreement`` at layer 15 (--units units, zero and mean
                              baselines) on a few examples: single-unit and set-level agreement

After every part the summary is rewritten from whatever parts exist (summary/*.csv: curves,
areas, overlap ratios, selectivity, agreement; verdict.json: ``recipe_verdict`` per definition),
so a cut-short run still has a consistent summary of what it finished.

Sizes (default run): three families of two tasks each, sentiment (product_sentiment,
film_sentiment), arithmetic (addition, subtraction) and world_facts (country_capital,
country_continent): four of the six mixture tasks and a family-mate each (news_topic and
last_word, alone in their families in the mixture, only add cross-family pairs and were left out
for time); 4 attribution and 6 test examples per task; k in {0.05%, 0.1%, 1%, 10%, 20%} per
site; conditions keep and ablate_zero (ablate_mean is in the library, left out here for time);
selectivity at 0.1% (Han et al.'s k) for every gradient recipe and random, at 10% (the paper's)
for paper and contrastive. Only LD and NLL are scored (no generation: the task metric of the
generation tasks would cost more than the rest together). Planned at about 90 minutes on 2 free
cores; on a shared machine it takes longer: --stop-at ends it cleanly between parts, and a
rerun resumes.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

import taskneuron_utils as tn
from harness import add_threads_option, apply_threads
from taskneuron_utils import experiments as ex
from taskneuron_utils.experiments.faithfulness import FaithfulnessConfig, faithfulness
from taskneuron_utils.experiments.faithfulness_summary import (
    faithfulness_areas,
    faithfulness_curves,
)
from taskneuron_utils.experiments.recipes import (
    RECIPES,
    RecipeConfig,
    overlap_ratios,
    recipe_relevance,
    recipe_sets,
    recipe_verdict,
    selectivity,
    selectivity_scores,
)
from taskneuron_utils.io.storage import atomic_write

DEFINITIONS = {"linear": None, "act": "act"}
FULL = dict(
    tasks=[
        "product_sentiment",
        "film_sentiment",
        "addition",
        "subtraction",
        "country_capital",
        "country_continent",
    ],
    recipes=list(RECIPES),
    attr_examples=4,
    eval_examples=6,
    ks=[0.0005, 0.001, 0.01, 0.1, 0.2],
    conditions=["keep", "ablate_zero"],
    selectivity={
        "0.001": ["contrastive", "paper", "relp_ld", "relp_nll", "random"],
        "0.1": ["paper", "contrastive"],
    },
    definitions=["linear", "act"],
    units=12,
    agree_examples=1,
    # a lighter faithfulness run that fits a shared machine: three recipes, three ks, keep only
    core=dict(
        recipes=["paper", "contrastive", "random"], ks=[0.001, 0.01, 0.1], conditions=["keep"]
    ),
)
QUICK = dict(
    FULL,
    tasks=["product_sentiment", "film_sentiment", "addition"],
    recipes=["paper", "contrastive", "random", "low_activation"],
    attr_examples=2,
    eval_examples=3,
    ks=[0.001, 0.1],
    selectivity={"0.1": ["contrastive"]},
    definitions=["linear"],
    units=4,
    agree_examples=1,
    core=dict(recipes=["paper", "contrastive"], ks=[0.001, 0.1], conditions=["keep"]),
)
BATCH = 8


def write_csv(frame: pd.DataFrame, path: Path) -> None:
    """Atomically, folders created; gzip when ``path`` ends in .gz."""
    atomic_write(
        path,
        lambda tmp: frame.to_csv(
            tmp, index=False, compression="gzip" if str(path).endswith(".gz") else None
        ),
    )


def write_json(path: Path, value) -> None:
    atomic_write(path, lambda tmp: Path(tmp).write_text(json.dumps(value, indent=2) + "\n"))


def parts_of(s: dict) -> list[str]:
    """Every part, the most telling first: the sets (overlap comes free with them), then per
    definition Han et al.'s k's selectivity of the two recipes the question is about, the
    faithfulness curves, the agreement table and the other selectivity parts."""
    parts = [f"sets_{t}" for t in s["tasks"]]
    parts += [f"faithcore_{d}_{t}" for d in s["definitions"][:1] for t in s["tasks"]]
    for d in s["definitions"]:
        first, *rest = s["selectivity"]
        parts += [f"selectivity_{d}_{first}_{r}" for r in s["selectivity"][first][:2]]
        parts += [f"faithfulness_{d}_{t}" for t in s["tasks"]]
        parts.append(f"agreement_{d}")
        parts += [f"selectivity_{d}_{first}_{r}" for r in s["selectivity"][first][2:]]
        parts += [f"selectivity_{d}_{k}_{r}" for k in rest for r in s["selectivity"][k]]
    return parts


def path_of(out: Path, part: str) -> Path:
    kind, _, rest = part.partition("_")
    return out / kind / (f"{rest}.npz" if kind == "sets" else f"{rest}.csv.gz")


def save_sets(sets_by_def: dict, path: Path) -> None:
    arrays = {
        f"{d}|{recipe}|{k!r}|{site}": idx.numpy().astype(np.int16)
        for d, sets in sets_by_def.items()
        for recipe, by_task in sets.items()
        for by_k in by_task.values()
        for k, ns in by_k.items()
        for site, idx in ns.indices.items()
    }
    atomic_write(path, lambda tmp: np.savez_compressed(open(tmp, "wb"), **arrays))


def load_sets(out: Path, tasks, definition: str, layout: dict) -> dict:
    """{recipe: {task: {k: NeuronSet}}} of one definition from sets/<task>.npz."""
    sets: dict = {}
    for task in tasks:
        with np.load(path_of(out, f"sets_{task}")) as data:
            grouped: dict = {}
            for key in data.files:
                d, recipe, k, site = key.split("|")
                if d == definition:
                    grouped.setdefault((recipe, float(k)), {})[site] = data[key].astype(np.int64)
        for (recipe, k), indices in grouped.items():
            sets.setdefault(recipe, {}).setdefault(task, {})[k] = tn.NeuronSet(
                indices, layout, {"task": task, "recipe": recipe, "k": k}
            )
    return sets


def run_part(part, model, tok, tasks, s, out) -> None:
    kind, _, rest = part.partition("_")
    if kind == "sets":
        config = RecipeConfig(
            recipes=tuple(s["recipes"]),
            ks=tuple(s["ks"]),
            n_attribution=s["attr_examples"],
            batch_size=BATCH,
        )
        artefacts = recipe_relevance(model, tok, {rest: tasks[rest]}, config)
        save_sets(
            {d: recipe_sets(artefacts, DEFINITIONS[d], config) for d in DEFINITIONS},
            path_of(out, part),
        )
        return
    definition, _, rest = rest.partition("_")
    layout = dict(tn.layout_of(model, DEFINITIONS[definition]))
    if kind in ("faithfulness", "faithcore"):
        sets = load_sets(out, [rest], definition, layout)
        conditions = s["conditions"]
        if kind == "faithcore":  # the lighter run: its recipes and ks only
            core = s["core"]
            sets = {
                r: {t: {k: by_k[k] for k in core["ks"]} for t, by_k in sets[r].items()}
                for r in core["recipes"]
            }
            conditions = core["conditions"]
        config = FaithfulnessConfig(
            n_eval=s["eval_examples"],
            n_reference=s["attr_examples"],
            conditions=tuple(conditions),
            batch_size=BATCH,
        )
        frame = faithfulness(model, tok, {rest: tasks[rest]}, config, sets=sets)
    elif kind == "selectivity":
        k, _, recipe = rest.partition("_")
        sets = load_sets(out, s["tasks"], definition, layout)
        frame = selectivity(
            model,
            tok,
            tasks,
            {recipe: sets[recipe]},
            ks=(float(k),),
            n_eval=s["eval_examples"],
            batch_size=BATCH,
        )
    else:
        site = f"layers.15.mlp.{'act' if definition == 'act' else 'up'}"
        data = ex.multitask_mixture(tasks, s["agree_examples"], seed=1)
        frames = []
        for baseline, methods in (
            ("zero", ("grad_x_act", "relp")),
            ("mean", ("attribution_patching", "relp")),
        ):
            frames.append(
                tn.method_agreement(
                    model,
                    tok,
                    data,
                    site,
                    methods=methods,
                    n_units=s["units"],
                    baseline=baseline,
                    batch_size=BATCH,
                    force=True,
                ).assign(baseline=baseline)
            )
        frame = pd.concat(frames, ignore_index=True)
    write_csv(frame, path_of(out, part))


def agreement_table(frame: pd.DataFrame) -> pd.DataFrame:
    """Per (site, baseline, method): Spearman and Pearson of the signed estimate with the exact
    loss change over the units (single-unit agreement) and the Jaccard of the top quarter of the
    units by |estimate| and by |exact change| (set-level agreement)."""
    rows = []
    for (site, baseline, method), part in frame.groupby(["site", "baseline", "method"]):
        m = max(1, len(part) // 4)
        top = set(part.nlargest(m, "score")["unit"])
        exact = set(part.nlargest(m, "exact")["unit"])
        rows.append(
            {
                "site": site,
                "baseline": baseline,
                "method": method,
                "units": len(part),
                "spearman": part["signed"].corr(part["exact_signed"], method="spearman"),
                "pearson": part["signed"].corr(part["exact_signed"]),
                "top_quarter_jaccard": len(top & exact) / len(top | exact),
            }
        )
    return pd.DataFrame(rows)


def summarise(out: Path, model, tasks, s) -> None:
    """Rewrite summary/ and verdict.json from every finished part."""
    summary, verdicts = out / "summary", {}
    for definition in s["definitions"]:
        layout = dict(tn.layout_of(model, DEFINITIONS[definition]))
        done = [t for t in s["tasks"] if path_of(out, f"sets_{t}").exists()]
        curves = None
        for label, kind in (("core_", "faithcore"), ("", "faithfulness")):
            files = [path_of(out, f"{kind}_{definition}_{t}") for t in done]
            files = [p for p in files if p.exists()]
            if files:
                examples = pd.concat(map(pd.read_csv, files), ignore_index=True)
                found = faithfulness_curves(examples)
                write_csv(found, summary / f"curves_{label}{definition}.csv")
                areas = faithfulness_areas(examples)
                write_csv(areas, summary / f"areas_{label}{definition}.csv")
                if len(files) >= 2:  # the full run's curves when it has them, else the core's
                    curves, faith = found, files
        if len(done) == len(s["tasks"]):
            sets = load_sets(out, done, definition, layout)
            overlap = overlap_ratios(sets, {t: tasks[t] for t in done})
            write_csv(overlap, summary / f"overlap_{definition}.csv")
        chosen = sorted((out / "selectivity").glob(f"{definition}_*.csv.gz"))
        if chosen:
            frame = pd.concat(map(pd.read_csv, chosen), ignore_index=True)
            # every part carries the same nothing-ablated rows: keep one copy
            frame = frame.drop_duplicates(["recipe", "k", "set", "task", "example"])
            scores = selectivity_scores(frame)
            write_csv(scores, summary / f"selectivity_{definition}.csv")
            if curves is not None and len(done) == len(s["tasks"]):
                verdicts[definition] = {}
                for measure in ("ld", "nll"):
                    verdict = recipe_verdict(curves, overlap, scores, measure=measure)
                    verdicts[definition][measure] = {
                        "holds": verdict.holds,
                        "label": verdict.label,
                        "sentence": verdict.sentence,
                        "data": verdict.data,
                        "faithfulness_tasks": [p.name.split(".")[0] for p in faith],
                    }
        agreement = path_of(out, f"agreement_{definition}")
        if agreement.exists():
            write_csv(
                agreement_table(pd.read_csv(agreement)), summary / f"agreement_{definition}.csv"
            )
    write_json(out / "verdict.json", verdicts)
    atomic_write(summary / "report.md", lambda tmp: Path(tmp).write_text(report(out, s)))


def _ci(value, low, high, digits=2) -> str:
    return f"{value:.{digits}f} [{low:.{digits}f}, {high:.{digits}f}]"


def report(out: Path, s: dict) -> str:
    """The record's tables in Markdown (docs/model-or-recipe.md includes this file), from the
    summary files that exist: nothing here is typed by hand."""
    summary, lines = out / "summary", []
    times = json.loads((out / "times.json").read_text()) if (out / "times.json").exists() else {}
    done = [p for p in parts_of(s) if path_of(out, p).exists()]
    lines += [
        f"Parts finished: {len(done)} of {len(parts_of(s))} "
        f"({sum(times.get(p, 0) for p in done) / 60:.0f} min of compute on a shared 2-core "
        f"machine). Tasks: {', '.join(s['tasks'])}; {s['attr_examples']} attribution and "
        f"{s['eval_examples']} test examples per task; k per site: "
        f"{', '.join(f'{100 * k:g}%' for k in s['ks'])}.",
        "",
    ]
    verdicts = json.loads((out / "verdict.json").read_text())
    for definition in s["definitions"]:
        lines += [f"### Neuron definition: {definition}", ""]
        for measure, v in verdicts.get(definition, {}).items():
            lines += [f"**Verdict on {measure}** ({v['label']}): {v['sentence']}.", ""]
        path = summary / f"overlap_{definition}.csv"
        if path.exists():
            table = pd.read_csv(path)
            lines += ["Overlap within / across families (Jaccard; Han et al.: ratio 4.3):", ""]
            lines += [
                "| recipe | k | within | across | ratio | random sets |",
                "|---|---|---|---|---|---|",
            ]
            lines += [
                f"| {r.recipe} | {100 * r.k:g}% | {r.within:.3f} | {r.across:.3f} | "
                f"{r.ratio:.2f} | {r.random_jaccard:.4f} |"
                for r in table.itertuples()
            ]
            lines.append("")
        path = summary / f"selectivity_{definition}.csv"
        if path.exists():
            table = pd.read_csv(path)
            lines += [
                "Own-task / other-task drop when each task's set is zeroed (Han et al.: "
                "10.3); interval: bootstrap over test examples:",
                "",
            ]
            lines += [
                "| recipe | k | measure | own drop | other drop | own / other | dominance |",
                "|---|---|---|---|---|---|---|",
            ]
            lines += [
                f"| {r.recipe} | {100 * r.k:g}% | {r.measure} | "
                f"{_ci(r.own, r.own_low, r.own_high)} | {r.other:.2f} | "
                f"{_ci(r.ratio, r.ratio_low, r.ratio_high)} | {r.dominance:.2f} |"
                for r in table.itertuples()
            ]
            lines.append("")
        for label in ("core_", ""):
            path = summary / f"curves_{label}{definition}.csv"
            if not path.exists():
                continue
            curves = pd.read_csv(path)
            areas = pd.read_csv(summary / f"areas_{label}{definition}.csv")
            keep = curves[(curves.condition == "keep") & (curves.measure == "ld")]
            scope = "all" if (keep.task == "all").any() else keep.task.iloc[0]
            keep = keep[keep.task == scope]
            ks = sorted(keep.k.unique())
            lines += [
                f"Faithfulness f of the logit difference{' (core run)' if label else ''}, the set "
                f"kept alone (task "
                f"{scope}; {keep.recipe.nunique()} recipes), and its areas over log10 k:",
                "",
            ]
            lines += [
                "| recipe | " + " | ".join(f"f at {100 * k:g}%" for k in ks) + " | CPR | CMD |",
                "|---" * (len(ks) + 3) + "|",
            ]
            for recipe, part in keep.groupby("recipe", sort=False):
                part = part.set_index("k")
                a = areas[
                    (areas.recipe == recipe) & (areas.task == scope) & (areas.measure == "ld")
                ].iloc[0]
                lines.append(
                    f"| {recipe} | "
                    + " | ".join(
                        _ci(part.loc[k, "f"], part.loc[k, "f_low"], part.loc[k, "f_high"])
                        for k in ks
                    )
                    + f" | {_ci(a.cpr, a.cpr_low, a.cpr_high)} | "
                    f"{_ci(a.cmd, a.cmd_low, a.cmd_high)} |"
                )
            zero = curves[
                (curves.condition == "ablate_zero")
                & (curves.measure == "ld")
                & (curves.task == scope)
            ]
            if zero.empty:
                lines.append("")
                continue
            lines += [
                "",
                f"Logit difference with the set zeroed (task {scope}; full model "
                f"{zero.full.iloc[0]:.2f}):",
                "",
            ]
            lines += [
                "| recipe | " + " | ".join(f"{100 * k:g}%" for k in ks) + " |",
                "|---" * (len(ks) + 1) + "|",
            ]
            for recipe, part in zero.groupby("recipe", sort=False):
                part = part.set_index("k")
                lines.append(
                    f"| {recipe} | "
                    + " | ".join(
                        _ci(
                            part.loc[k, "value"],
                            part.loc[k, "value_low"],
                            part.loc[k, "value_high"],
                        )
                        for k in ks
                    )
                    + " |"
                )
            lines.append("")
        path = summary / f"agreement_{definition}.csv"
        if path.exists():
            table = pd.read_csv(path)
            lines += ["Agreement with exact ablation of one unit at a time (answer NLL):", ""]
            lines += [
                "| site | baseline | method | units | Spearman | Pearson | top-quarter Jaccard |",
                "|---|---|---|---|---|---|---|",
            ]
            lines += [
                f"| {r.site} | {r.baseline} | {r.method} | {r.units} | {r.spearman:.2f} | "
                f"{r.pearson:.2f} | {r.top_quarter_jaccard:.2f} |"
                for r in table.itertuples()
            ]
            lines.append("")
    return "\n".join(lines) + "\n"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/model_or_recipe"))
    parser.add_argument("--quick", action="store_true", help="a few minutes: the test's sizes")
    parser.add_argument("--parts", nargs="*", help="only these parts (default: all, in order)")
    parser.add_argument("--stop-at", help="HH:MM UTC: start no part after this time")
    parser.add_argument(
        "--summary-only", action="store_true", help="rewrite summary/ from the finished parts"
    )
    add_threads_option(parser)
    args = parser.parse_args(argv)
    apply_threads(args)
    s = QUICK if args.quick else FULL
    settings = args.out / "settings.json"
    if settings.exists() and json.loads(settings.read_text()) != s:
        sys.exit(f"{settings} holds other sizes; use another --out or remove it")
    write_json(settings, s)
    model, tok = tn.load_model()
    tasks = tn.load_tasks(s["tasks"])
    parts = parts_of(s)
    unknown = [p for p in args.parts or [] if p not in parts]
    if unknown:
        sys.exit(f"unknown parts {unknown}; the parts are {parts}")
    times_path = args.out / "times.json"
    times = json.loads(times_path.read_text()) if times_path.exists() else {}
    for part in [] if args.summary_only else args.parts or parts:
        if path_of(args.out, part).exists():
            continue
        if args.stop_at and dt.datetime.now(dt.timezone.utc).strftime("%H:%M") >= args.stop_at:
            print(f"stopping before {part}: it is past {args.stop_at} UTC", flush=True)
            break
        started = time.perf_counter()
        print(f"part {part}", flush=True)
        run_part(part, model, tok, tasks, s, args.out)
        times[part] = round(time.perf_counter() - started, 1)
        write_json(times_path, times)
        summarise(args.out, model, tasks, s)
    summarise(args.out, model, tasks, s)
    print(json.dumps(json.loads((args.out / "verdict.json").read_text()), indent=2))


if __name__ == "__main__":
    main()
