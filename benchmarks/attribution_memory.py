"""Peak memory of every attribution method on the default model, against grad x act's peak
measured in the same run, beside ``tn.estimate_memory``'s estimate of each.

    python benchmarks/attribution_memory.py [--out benchmarks/results/attribution_memory.json]
        [--task addition] [--examples 8] [--steps 16] [--threads N] [--only KEY ...]

Each configuration runs in a fresh child process (``harness.measuring_env``: glibc maps large
blocks on their own, so RSS follows the memory in use): the model is loaded, the method warmed
up on one example, then one ``tn.attribute`` call is measured, its peak resident memory sampled
every 5 ms (``harness.peak_rss``), and its wall time. Both neuron definitions (``linear``: the
gate, up and down outputs; ``act``: the input of down_proj); every method at the package's
defaults (integrated gradients at --steps, zero baseline; attribution patching and RelP
against the data's mean; activation mean |a|; ablation of a subset): on N = --examples and
10 N examples of the task's training split (batches of 8), and for integrated gradients and ablation on one site
vs all sites (``force=True`` where the work budget would refuse). Integrated gradients over all
90 linear sites at 16 steps on 8 examples is the slow one (~1,500 forward and backward passes;
most of an hour on 2 cores).

Resumable: each measurement is written to --out as it finishes, and a rerun skips those there
(delete a key to redo it). The summary (ratios, targets) is recomputed from what is there, and
written as a markdown table beside the JSON (``--out`` with ``.md``; docs/scale.md includes
it); ``--table-only`` rewrites that table from the JSON without measuring.

Targets (the issue): 10 N examples <= 1.1 x N's peak; all sites <= 1.2 x one site; integrated
gradients at 16 steps over all sites within 1.5 x grad x act's peak; the estimate within 10%
of the measured increase. Peaks are reported whole (``peak_rss_bytes``, what the machine must
hold) and as the increase above the loaded model just before the call (``increase_bytes``);
ratios of both.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time
from pathlib import Path

import torch

import taskneuron_utils as tn
from harness import (
    add_threads_option,
    apply_threads,
    measuring_env,
    peak_rss,
    write_json,
    write_text,
)
from taskneuron_utils.attribution.run import method_for
from taskneuron_utils.core.layout import layout_of
from taskneuron_utils.memory.estimate import estimate_memory
from taskneuron_utils.tasks import encode

DEFINITIONS = {"linear": None, "act": "act"}
ONE_SITE = {"linear": "layers.15.mlp.up", "act": "layers.15.mlp.act"}
BATCH = 8
ABLATED = 64  # units of the one site ablated; "all sites": the first unit of every site


def configurations(examples: int, steps: int) -> dict[str, dict]:
    """{key: what the child runs}, in the order of what matters most if a run is cut short."""
    found: dict[str, dict] = {}
    ten = 10 * examples
    for n in (examples, ten):
        for definition in DEFINITIONS:
            base = {"definition": definition, "examples": n}
            found[f"grad_x_act/{definition}/n{n}"] = {**base, "method": "grad_x_act"}
            found[f"integrated_gradients/{definition}/one_site/n{n}"] = {
                **base,
                "method": "integrated_gradients",
                "steps": steps,
                "sites": "one",
            }
            found[f"activation/{definition}/n{n}"] = {**base, "method": "activation"}
            found[f"attribution_patching/{definition}/n{n}"] = {
                **base,
                "method": "attribution_patching",
                "baseline": "mean",
            }
            found[f"relp/{definition}/n{n}"] = {**base, "method": "relp", "baseline": "mean"}
            for sites in ("one", "all"):
                found[f"ablation/{definition}/{sites}_site{'s' if sites == 'all' else ''}/n{n}"] = {
                    **base,
                    "method": "ablation",
                    "sites": sites,
                }
        if n == examples:  # the slow ones, after every quick one of N
            for definition in ("act", "linear"):
                found[f"integrated_gradients/{definition}/all_sites/n{n}"] = {
                    "definition": definition,
                    "examples": n,
                    "method": "integrated_gradients",
                    "steps": steps,
                    "sites": "all",
                }
    return found


def call_options(model, config: dict) -> dict:
    """``tn.attribute``'s options for one configuration."""
    definition, method = config["definition"], config["method"]
    sites = list(layout_of(model, DEFINITIONS[definition]).sites)
    options = {"method": method, "kinds": DEFINITIONS[definition]}
    if method == "integrated_gradients":
        options["steps"] = config["steps"]
        if config["sites"] == "one":
            options["neurons"] = {ONE_SITE[definition]: [0]}
        else:
            options["force"] = True  # beyond the work budget: that is the point here
    if method == "ablation":
        if config["sites"] == "one":
            options["neurons"] = {ONE_SITE[definition]: list(range(ABLATED))}
        else:
            options["neurons"] = {site.name: [0] for site in sites}
    if method in ("attribution_patching", "relp"):
        options["baseline"] = config["baseline"]
    return options


def warm_up_options(options: dict, model) -> dict:
    """The same method at its smallest (one site, one step, one unit), on one example."""
    warm = dict(options)
    site = next(iter(layout_of(model, options["kinds"]).sites)).name
    if options["method"] == "integrated_gradients":
        warm.update(steps=1, neurons={site: [0]})
        warm.pop("force", None)
    if options["method"] == "ablation":
        warm["neurons"] = {site: [0]}
    return warm


def estimate(model, tok, data, options: dict) -> dict:
    """``tn.estimate_memory`` of the call: the largest over its batches (bytes above the
    weights), and the work the method's budget check estimates (x grad x act)."""
    encoded = encode(tok, data)
    method, kinds = options["method"], options["kinds"]
    extra = {}
    if method == "integrated_gradients":
        extra["steps"] = options["steps"]
        if "neurons" in options:  # one site: its kind only
            (name,) = options["neurons"]
            kinds = [name.rsplit(".", 1)[1]]
    if method == "ablation":
        extra["units"] = max(len(units) for units in options["neurons"].values())
    worst = None
    for start in range(0, len(encoded), BATCH):
        batch = encoded[start : start + BATCH]
        seq_len = max(len(e.input_ids) for e in batch)
        answer_len = sum(e.n_answer for e in batch) / len(batch)
        found = estimate_memory(
            model, len(batch), seq_len, method, answer_len=answer_len, device="cpu",
            kinds=kinds, padding=len({len(e.input_ids) for e in batch}) > 1, **extra,
        )  # fmt: skip
        if worst is None or found.peak > worst.peak:
            worst = found
    bound = method_for(method, **{k: v for k, v in options.items() if k not in ("method", "kinds")})
    sites = list(layout_of(model, options["kinds"]).sites)
    bound.bind(model, tok, data, encoded, sites, 512, BATCH)
    return {
        "estimate_increase_bytes": worst.peak - worst.parameters,
        "estimate_peak_bytes": worst.peak,
        "estimate_copies_per_pass": worst.details.get("copies_per_pass"),
        "estimated_x_grad_x_act": round(bound.cost["x_grad_x_act"], 2),
    }


def child(key: str, config: dict, task: str) -> None:
    """In a fresh process: load, warm up, measure one call; print JSON."""
    model, tok = tn.load_model()
    data = tn.load_tasks([task])[task].train
    options = call_options(model, config)
    tn.attribute(
        model, tok, data[:1], batch_size=BATCH, progress=False, **warm_up_options(options, model)
    )
    run_data = data[: config["examples"]]
    started = time.perf_counter()
    before, peak = peak_rss(
        lambda: tn.attribute(model, tok, run_data, batch_size=BATCH, progress=False, **options)
    )
    wall = time.perf_counter() - started
    result = {
        "key": key,
        **config,
        "rss_before_bytes": before,
        "peak_rss_bytes": peak,
        "increase_bytes": peak - before,
        "wall_s": round(wall, 2),
        **estimate(model, tok, run_data, options),
    }
    print(json.dumps(result))


def run_child(key: str, config: dict, args) -> dict:
    command = [sys.executable, __file__, "--child", key, "--task", args.task]
    command += ["--examples", str(args.examples), "--steps", str(args.steps)]
    if args.threads:
        command += ["--threads", str(args.threads)]
    out = subprocess.run(
        command, check=True, capture_output=True, text=True, env=measuring_env()
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


def summary(runs: dict, examples: int) -> dict:
    """Ratios against grad x act (same definition, same examples) and the targets."""

    def ratio(a, b, field):
        if a in runs and b in runs:
            return round(runs[a][field] / runs[b][field], 4)
        return None

    ten, found = 10 * examples, {}
    for key, run in runs.items():
        definition = run["definition"]
        gxa = f"grad_x_act/{definition}/n{run['examples']}"
        row = {
            "peak_over_grad_x_act": ratio(key, gxa, "peak_rss_bytes"),
            "increase_over_grad_x_act": ratio(key, gxa, "increase_bytes"),
            "estimate_over_measured_increase": round(
                run["estimate_increase_bytes"] / run["increase_bytes"], 4
            ),
            "wall_s": run["wall_s"],
            "wall_over_grad_x_act": ratio(key, gxa, "wall_s"),
            "estimated_x_grad_x_act": run["estimated_x_grad_x_act"],
        }
        if run["examples"] == examples:
            tenfold = key.replace(f"/n{examples}", f"/n{ten}")
            row["peak_10n_over_n"] = ratio(tenfold, key, "peak_rss_bytes")
            row["increase_10n_over_n"] = ratio(tenfold, key, "increase_bytes")
            if "one_site" in key:
                every = key.replace("one_site", "all_sites")
                row["peak_all_sites_over_one"] = ratio(every, key, "peak_rss_bytes")
                row["increase_all_sites_over_one"] = ratio(every, key, "increase_bytes")
        found[key] = row
    ig = {d: found.get(f"integrated_gradients/{d}/all_sites/n{examples}", {}) for d in DEFINITIONS}
    return {
        "per_configuration": found,
        "done_when": {
            d: {
                "integrated_gradients_all_sites_peak_over_grad_x_act": ig[d].get(
                    "peak_over_grad_x_act"
                ),
                "increase_over_grad_x_act": ig[d].get("increase_over_grad_x_act"),
                "wall_s": ig[d].get("wall_s"),
            }
            for d in DEFINITIONS
        },
    }


def _mb(n: float) -> str:
    return f"{n / 2**20:,.0f}"


def _x(value) -> str:
    return "" if value is None else f"{value:.2f}x"


def markdown_table(record: dict) -> str:
    """The record as the docs show it: one row per measured call, then the issue's targets."""
    runs, summary_ = record["runs"], record["summary"]["per_configuration"]
    lines = [
        "| method | units | sites | examples | peak RSS (MB) | increase (MB) | peak / grad x act "
        "| increase / grad x act | estimate / measured increase | wall (s) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for key, run in sorted(runs.items(), key=lambda kv: (kv[1]["examples"], kv[0])):
        row = summary_[key]
        sites = "one" if "one_site" in key else "all"
        lines.append(
            f"| {run['method']} | {run['definition']} | {sites} | {run['examples']} "
            f"| {_mb(run['peak_rss_bytes'])} | {_mb(run['increase_bytes'])} "
            f"| {_x(row['peak_over_grad_x_act'])} | {_x(row['increase_over_grad_x_act'])} "
            f"| {row['estimate_over_measured_increase']:.2f} | {run['wall_s']:,.1f} |"
        )
    targets = [
        ("10 N examples over N, peak (target <= 1.1x)", "peak_10n_over_n"),
        ("10 N examples over N, increase", "increase_10n_over_n"),
        ("all sites over one site, peak (target <= 1.2x)", "peak_all_sites_over_one"),
        ("all sites over one site, increase", "increase_all_sites_over_one"),
    ]
    shown = [k for k in summary_ if any(summary_[k].get(f) is not None for _, f in targets)]
    lines += ["", "| ratio | " + " | ".join(f"`{k}`" for k in shown) + " |"]
    lines.append("|---|" + "---|" * len(shown))
    for label, field in targets:
        lines.append(f"| {label} | " + " | ".join(_x(summary_[k].get(field)) for k in shown) + " |")
    return "\n".join(lines) + "\n"


def write_table(out: Path, record: dict) -> None:
    """``markdown_table`` of ``record`` into ``out`` with the suffix .md, atomically."""
    write_text(out.with_suffix(".md"), markdown_table(record))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="benchmarks/results/attribution_memory.json")
    parser.add_argument("--task", default="addition")
    parser.add_argument("--examples", type=int, default=8, help="N (and 10 N) examples")
    parser.add_argument("--steps", type=int, default=16, help="integrated gradients' steps")
    parser.add_argument("--only", nargs="*", help="measure only these keys (prefixes)")
    parser.add_argument("--table-only", action="store_true", help="rewrite the .md table")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    add_threads_option(parser)
    args = parser.parse_args()
    apply_threads(args)
    configs = configurations(args.examples, args.steps)
    if args.child:
        return child(args.child, configs[args.child], args.task)
    out = Path(args.out)
    record = json.loads(out.read_text()) if out.exists() else {}
    settings = {"task": args.task, "examples": args.examples, "steps": args.steps}
    if record.get("settings", settings) != settings:
        raise SystemExit(f"{out} holds a run with {record['settings']}; pass another --out")
    runs = record.get("runs", {})
    if args.table_only:
        return write_table(out, _record(runs, settings, args))
    for key, config in configs.items():
        if key in runs or (args.only and not any(key.startswith(p) for p in args.only)):
            continue
        print(f"measuring {key} ...", file=sys.stderr, flush=True)
        runs[key] = run_child(key, config, args)
        print(json.dumps(runs[key]), file=sys.stderr, flush=True)
        write_json(out, _record(runs, settings, args))
        write_table(out, _record(runs, settings, args))
    write_json(out, _record(runs, settings, args))
    write_table(out, _record(runs, settings, args))
    print(json.dumps(_record(runs, settings, args)["summary"], indent=2))


def _record(runs: dict, settings: dict, args) -> dict:
    return {
        "settings": settings,
        "batch_size": BATCH,
        "one_site": ONE_SITE,
        "ablated_units_one_site": ABLATED,
        "model": "SmolLM2-135M-Instruct (tn.load_model())",
        "torch_threads": torch.get_num_threads(),
        "machine": platform.processor() or platform.machine(),
        "targets": "increase and peak: 10 N <= 1.1 x N; all sites <= 1.2 x one site; "
        "integrated gradients (all sites, 16 steps) <= 1.5 x grad x act; "
        "estimate / measured increase within 0.9-1.1",
        "summary": summary(runs, settings["examples"]),
        "runs": runs,
    }


if __name__ == "__main__":
    main()
