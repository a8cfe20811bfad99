"""The ``taskneurons`` command.

    taskneurons main --out runs/main                   the README's main job (detection + figures)
    taskneurons detect --task NAME --k 0.1 --out DIR   one task's neurons (k: fraction, 0.1 = 10%)
    taskneurons sites [--model ID]                     list a model's FFN neuron sites
    taskneurons tasks                                  list the shipped tasks
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="taskneurons", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)

    job = commands.add_parser("main", help="detect neurons for several tasks; overlap and layer figures")
    job.add_argument("--out", default="runs/main", help="output folder (default: runs/main)")
    job.add_argument("--profile", default="quick", choices=["quick", "paper"])
    job.add_argument("--tasks", nargs="+", help="task names (default: the profile's)")
    job.add_argument("--model", help="hub id or local path (default: the profile's)")
    job.add_argument("--n", type=int, help="training examples per task used for detection")

    detect = commands.add_parser("detect", help="detect one task's neurons")
    detect.add_argument("--task", required=True, help="a shipped task name, or a .jsonl/.csv file")
    detect.add_argument("--model", help="hub id or local path (default: the embedded model)")
    detect.add_argument("--k", type=float, default=0.1,
                        help="fraction of neurons kept, in (0, 1] (default 0.1: the top 10%%)")
    detect.add_argument("--per", default="site", choices=["site", "global"])
    detect.add_argument("--n", type=int, default=128, help="training examples (default 128; 0 = all)")
    detect.add_argument("--batch-size", type=int, default=8)
    detect.add_argument("--out", required=True, help="output folder")

    sites = commands.add_parser("sites", help="list a model's FFN neuron sites")
    sites.add_argument("--model", help="hub id or local path (default: the embedded model)")
    commands.add_parser("tasks", help="list the shipped tasks")

    args = parser.parse_args(argv)
    return {"main": _main_job, "detect": _detect, "sites": _sites, "tasks": _tasks}[args.command](args)


def _main_job(args) -> int:
    import matplotlib

    matplotlib.use("Agg")
    from .experiments import PROFILES, main_job

    config = PROFILES[args.profile].detection
    changes = {"tasks": tuple(args.tasks) if args.tasks else None, "model": args.model,
               "n_attribution": args.n}
    config = config.replace(**{k: v for k, v in changes.items() if v is not None})
    main_job(args.out, config)
    print((Path(args.out) / "summary.txt").read_text(), end="")
    print(f"figures: {Path(args.out) / 'overlap.png'}, {Path(args.out) / 'layers.png'}")
    return 0


def _detect(args) -> int:
    if not 0 < args.k <= 1:  # before anything is loaded
        print(f"taskneurons detect: error: --k is a fraction of neurons in (0, 1], "
              f"got {args.k:g}; use --k 0.1 for the top 10%", file=sys.stderr)
        return 2
    import matplotlib

    matplotlib.use("Agg")
    from . import plots
    from .analysis import layer_profile
    from .experiments import PROFILES, detect
    from .models import load_model
    from .tasks import Task, load_tasks

    config = PROFILES["quick"].detection.replace(
        model=args.model, k=args.k, per=args.per, n_attribution=args.n or None,
        batch_size=args.batch_size, out_dir=args.out)
    if Path(args.task).suffix in (".jsonl", ".csv"):
        loader = Task.from_jsonl if args.task.endswith(".jsonl") else Task.from_csv
        task = loader(args.task)
    else:
        task = load_tasks([args.task])[args.task]
    model, tok = load_model(args.model)
    relevance = detect(model, tok, {task.name: task}, config)[task.name]
    out = Path(args.out)
    relevance.save(out / f"{task.name}.relevance.safetensors")
    neurons = relevance.top_k(config.k, per=config.per)
    neurons.save(out / f"{task.name}.neurons.safetensors")
    profile = layer_profile({task.name: relevance}, config.k)
    plots.plot_layer_profile(profile).figure.savefig(out / f"{task.name}.layers.png", dpi=120)
    print(f"{neurons} -> {out / f'{task.name}.neurons.safetensors'}")
    print(f"relevance -> {out / f'{task.name}.relevance.safetensors'}; "
          f"figure -> {out / f'{task.name}.layers.png'}")
    return 0


def _sites(args) -> int:
    from .architectures import ffn_sites
    from .models import load_model

    model, _ = load_model(args.model)
    for site in ffn_sites(model):
        print(f"{site.name:28s} layer {site.layer:3d}  {site.kind:6s} {site.n_neurons:6d} neurons")
    return 0


def _tasks(args) -> int:
    from .tasks import load_tasks

    for task in load_tasks().values():
        print(f"{task.name:28s} {task.category:15s} {task.family:12s} {task.metric:12s} "
              f"{len(task.train)}/{len(task.dev)}/{len(task.test)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
