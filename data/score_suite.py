"""Score the default model on every shipped task with `tn.evaluate`; writes data/scores.json.

    python data/score_suite.py [--n 300] [--tasks NAME ...] [--force]
    python data/build_suite.py          # then rebuild the card, which reads scores.json

Scores are zero-shot, on the first --n examples of each test split, greedy and deterministic.
Classification tasks get both rankings of their labels: `score` (summed log-likelihood, the
default) and `accuracy_per_token` (mean per answer token). Tasks already in scores.json with the same n
and metric (and, for classification, both rankings) are kept, so an interrupted run can be resumed.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import taskneuron_utils as tn

SCORES = Path(__file__).resolve().parent / "scores.json"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=300, help="test examples per task")
    parser.add_argument("--tasks", nargs="+", help="task names (default: all)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--force", action="store_true", help="rescore tasks already in scores.json")
    args = parser.parse_args()
    model, tok = tn.load_model()
    suite = tn.load_tasks(args.tasks)
    scores = json.loads(SCORES.read_text()) if SCORES.exists() else {}
    for name, task in suite.items():
        done = scores.get(name, {})
        if (
            not args.force
            and done.get("n") == min(args.n, len(task.test))
            and done.get("metric") == task.metric
            and (task.category != "classification" or "accuracy_per_token" in done)
        ):
            continue
        started = time.perf_counter()
        result = tn.evaluate(model, tok, task.test[: args.n], batch_size=args.batch_size)
        scores[name] = {
            "metric": result["metric"],
            "score": round(result["score"], 4),
            "nll": round(result["nll"], 4),
            "n": result["n"],
            "seconds": round(time.perf_counter() - started, 1),
        }
        if task.category == "generation":
            scores[name]["rouge_l"] = round(result["rouge_l"], 4)
        else:  # labels ranked by mean log-likelihood per token as well (the card shows both)
            scores[name]["accuracy_per_token"] = round(result["accuracy_per_token"], 4)
        print(name, scores[name], flush=True)
        fd, tmp = tempfile.mkstemp(dir=SCORES.parent, suffix=".tmp")
        with os.fdopen(fd, "w") as f:
            json.dump(dict(sorted(scores.items())), f, indent=2)
            f.write("\n")
        os.replace(tmp, SCORES)


if __name__ == "__main__":
    main()
