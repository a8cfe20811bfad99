"""Who is the shared core? On the untuned default model: the neurons in every task's top-k set
(``tn.shared_core``), where they sit and how large their activations are next to the other units
of their site (``ex.core_profile``), for the linear sites at k = 10% and the act units at k = 2%.

    python benchmarks/core_profile.py [--n-attribution 16] [--threads 2]

Prints JSON (and writes benchmarks/results/core_profile.json): per definition, the core's size,
its share by site kind, the activation ratio (core / other units) overall and by kind, and the
five sites where the ratio is largest.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import taskneuron_utils as tn
from harness import add_threads_option, apply_threads
from taskneuron_utils import experiments as ex

TASKS = ("product_sentiment", "news_topic", "addition", "last_word")


def summary(profile, core) -> dict:
    by_kind = (
        profile.groupby("kind")
        .apply(
            lambda p: {
                "n_set": int(p.n_set.sum()),
                "share": float(p.n_set.sum() / p.n_neurons.sum()),
                "ratio": float((p.set_act * p.n_set).sum() / p.n_set.sum() / p.other_act.mean())
                if p.n_set.sum()
                else None,
            },
            include_groups=False,
        )
        .to_dict()
    )
    top = profile.dropna(subset=["ratio"]).nlargest(5, "ratio")
    return {
        "n_core": len(core),
        "share": len(core) / int(profile.n_neurons.sum()),
        "mean_ratio_over_sites": float(profile.ratio.mean()),
        "median_ratio_over_sites": float(profile.ratio.median()),
        "by_kind": by_kind,
        "largest": top[["site", "n_set", "set_act", "other_act", "ratio"]]
        .round(4)
        .to_dict(orient="records"),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n-attribution", type=int, default=16)
    parser.add_argument(
        "--out", default=str(Path(__file__).parent / "results" / "core_profile.json")
    )
    add_threads_option(parser)
    args = parser.parse_args()
    apply_threads(args)
    model, tok = tn.load_model()
    tasks = tn.load_tasks(list(TASKS))
    result = {"tasks": list(TASKS), "n_attribution": args.n_attribution, "model": "default"}
    for label, kinds, k in (
        ("linear sites, k = 10%", None, 0.10),
        ("act units, k = 2%", "act", 0.02),
    ):
        detection = ex.DetectionConfig(
            n_attribution=args.n_attribution, kinds=kinds, progress=False
        )
        relevances = ex.detect(model, tok, tasks, detection)
        core = tn.shared_core(relevances, k)
        result[label] = summary(ex.core_profile(model, tok, tasks, core), core)
    text = json.dumps(result, indent=2)
    Path(args.out).write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
