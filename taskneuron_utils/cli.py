"""taskneurons: find the task-specific neurons of a language model, from the command line.

    taskneurons main --out runs/main                   the README's main job (detection + figures)
    taskneurons detect --task NAME --k 0.1 --out DIR   one task's neurons (k: fraction, 0.1 = 10%)
    taskneurons sites [--model ID]                     list a model's FFN neuron sites
    taskneurons tasks                                  list the shipped tasks
    taskneurons replicate --preset smoke --out DIR     the paper's sections, planned and resumable
    taskneurons notebooks [DIR]                        copy the course (the notebooks) into DIR

Every argument is checked before a model is loaded. A mistake in the arguments prints one or two
lines and exits with status 2; ``--debug`` shows the full traceback instead. Options are written
in full: an abbreviation or a misspelling (``--batch``, ``--bacth-size``) is refused, naming the
nearest option, never read as another one.

``detect`` also runs data parallel, one process per GPU (gloo processes on a CPU), under
``torchrun``: ``torchrun --nproc_per_node 2 -m taskneuron_utils.cli detect --task NAME
--examples 128 --out DIR`` (``--examples`` is ``--n``, which torchrun would take for one of its
own options). The ranks split the batches (``tn.attribute``), every rank holds the same
relevance, and rank 0 alone writes the output files and prints.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import sys
from pathlib import Path
from .errors import NeuronSetMismatchError, SiteKindError, UnsupportedArchitectureError
from .errors import ModelNotAvailableError
from .errors import ArtefactFileError
from .errors import TaskDataError, UnknownTaskError
from .core.layout import resolve_kinds
from .tasks import load_tasks
from .experiments import PROFILES
from .experiments import main_job
from .tasks import Task
from .errors import did_you_mean
from . import plots
from .neurons.analysis import layer_profile
from .neurons.neuron_set import check_fraction
from .experiments import detect
from .core.models import load_model
from .core.parallel import init_from_environment
from .core.layout import ffn_sites
from .experiments.replicate import PlanRefused
from .experiments.replicate import command as replicate_command
from .io.course_files import copy_course, course_files, course_seconds


# Where `taskneurons notebooks` copies the course when no folder is given.
COURSE_DIR = "taskneuron-course"


class UsageError(ValueError):
    """A command-line argument that cannot work; reported in a line or two, exit status 2."""


# The weights' dtype. bfloat16 runs about 1.5x faster on CPUs with bf16 units (lscpu: amx_bf16,
# avx512_bf16; benchmarks/results/bf16.json) but picks a slightly different top 10%
# (benchmarks/results/bf16_sets.json), so float32 stays the default. Relevance sums are float64
# either way. Autocast over float32 weights is tn.attribute(..., autocast=) in Python.
DTYPES = ["float32", "bfloat16", "auto"]
DTYPE_HELP = (
    "the model's weights and compute: float32, bfloat16 (faster on CPUs with bf16 "
    "units, amx_bf16 / avx512_bf16 in lscpu; the top-10%% sets differ slightly from "
    "float32's, see docs/scale.md) or auto (bfloat16 on a GPU that has it, else "
    "float32); relevance is summed in float64 either way"
)


class Parser(argparse.ArgumentParser):
    """argparse without abbreviations (``--exam`` is not taken for ``--examples``: a misspelt or
    shortened option is refused, never silently read as another) whose error for an unknown
    option names it and the nearest option of its command."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **{**kwargs, "allow_abbrev": False})

    def parse_known_args(self, args=None, namespace=None):
        namespace, extra = super().parse_known_args(args, namespace)
        unknown = [a.split("=")[0] for a in extra if a.startswith("--") and a != "--"]
        if unknown:
            options = [option for action in self._actions for option in action.option_strings]
            self.error(
                f"unrecognized option{'s' if len(unknown) > 1 else ''} {' '.join(unknown)}"
                f"{did_you_mean(unknown, options)}"
            )
        return namespace, extra


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="taskneurons",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=__doc__.split("\n\n")[0] + "\n\n" + "\n".join(__doc__.split("\n\n")[1:3]),
    )
    parser.add_argument("--debug", action="store_true", help="show full tracebacks of errors")
    commands = parser.add_subparsers(
        dest="command", required=True, metavar="COMMAND", parser_class=Parser
    )

    job = commands.add_parser(
        "main",
        help="detect several tasks' neurons; overlap and layer figures",
        description="Detect the task-specific neurons of several tasks and "
        "write overlap.csv/png, layers.csv/png, summary.txt and the neuron "
        "sets to --out.",
    )
    job.add_argument("--out", default="runs/main", help="output folder (default: runs/main)")
    job.add_argument(
        "--profile",
        default="quick",
        choices=["quick", "paper"],
        help="quick: embedded model, shipped tasks (default); paper: Llama-2-7b, hub tasks",
    )
    job.add_argument(
        "--tasks", nargs="+", metavar="TASK", help="task names (default: the profile's)"
    )
    job.add_argument("--model", help="hub id or local folder (default: the profile's model)")
    job.add_argument(
        "--n",
        type=int,
        help="training examples per task used for detection (default: the profile's; 0 = all)",
    )
    job.add_argument(
        "--dtype",
        choices=DTYPES,
        help=DTYPE_HELP + " (default: the profile's: float32 for quick, auto for paper)",
    )
    job.add_argument(
        "--overwrite",
        action="store_true",
        help="replace another run's files in --out instead of refusing",
    )

    detect = commands.add_parser(
        "detect",
        help="detect one task's neurons",
        description="Detect one task's neurons; write its neuron set, "
        "relevance and layer figure to --out. Under torchrun, the "
        "processes share the batches (one GPU each, or gloo on CPUs) "
        "and rank 0 writes the files.",
    )
    detect.add_argument("--task", required=True, help="a shipped task name, or a .jsonl/.csv file")
    detect.add_argument("--model", help="hub id or local folder (default: the embedded model)")
    detect.add_argument(
        "--k",
        type=float,
        default=0.1,
        help="fraction of neurons kept, in (0, 1] (default 0.1: the top 10%%)",
    )
    detect.add_argument(
        "--per",
        default="site",
        choices=["site", "global"],
        help="keep the top k of every site (default) or of all neurons together",
    )
    detect.add_argument(
        "--kinds",
        nargs="+",
        metavar="KIND",
        help="site kinds to score: gate, up, down, fc_in, fc_out (the linear "
        "sites, the default), act (the FFN's intermediate activation), or all",
    )
    # --examples: torchrun reads a bare --n as an abbreviation of its own --nnodes/--nproc...
    detect.add_argument(
        "--n",
        "--examples",
        type=int,
        default=128,
        dest="n",
        help="training examples (default 128; 0 = all)",
    )
    detect.add_argument("--batch-size", type=int, default=8, help="examples per pass (default 8)")
    detect.add_argument(
        "--dtype", choices=DTYPES, default="float32", help=DTYPE_HELP + " (default float32)"
    )
    detect.add_argument("--out", required=True, help="output folder")

    sites = commands.add_parser(
        "sites",
        help="list a model's FFN neuron sites",
        description="List every FFN neuron site: name, layer, kind, size.",
    )
    sites.add_argument("--model", help="hub id or local folder (default: the embedded model)")
    commands.add_parser(
        "tasks",
        help="list the shipped tasks",
        description="List the shipped task suite with its splits.",
    )
    notebooks = commands.add_parser(
        "notebooks",
        help="copy the course (the numbered notebooks) into a folder",
        description="Copy the notebooks shipped with the package into DIR. A copy you edited "
        "(or executed and saved) is kept, never overwritten; untouched copies are refreshed.",
    )
    notebooks.add_argument(
        "dir", nargs="?", default=COURSE_DIR, metavar="DIR", help=f"default: {COURSE_DIR}"
    )
    replicate_command.add_parser(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    user_errors = (
        UsageError,
        UnknownTaskError,
        TaskDataError,
        ModelNotAvailableError,
        NeuronSetMismatchError,
        UnsupportedArchitectureError,
        ArtefactFileError,
        SiteKindError,
        FileNotFoundError,
        replicate_command.ReplicateUsageError,
        PlanRefused,
    )
    run = {
        "main": _main_job,
        "detect": _detect,
        "sites": _sites,
        "tasks": _tasks,
        "notebooks": _notebooks,
        "replicate": replicate_command.run,
    }[args.command]
    try:
        return run(args)
    except BrokenPipeError:
        # `taskneurons sites | head`: the reader left; stop quietly (and keep Python from
        # complaining while flushing stdout at exit).
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except user_errors as err:
        if args.debug:
            raise
        message = str(err).strip('"') if isinstance(err, KeyError) else str(err)
        print(f"taskneurons {args.command}: error: {message}", file=sys.stderr)
        return 2


# --- checks, before anything is loaded --------------------------------------------------------


def _check_model(model: str | None) -> None:
    """A local path that does not exist is reported as such, not as an unknown hub id. A hub id
    is ``name`` or ``namespace/name``; anything else that looks like a path is a path."""
    if model is None:
        return
    looks_local = (
        model.startswith(("/", "./", "../", "~"))
        or model.count("/") > 1
        or os.sep != "/"
        and os.sep in model
    )
    if looks_local and not Path(model).expanduser().exists():
        raise UsageError(f"--model {model}: no such file or folder")


def _check_out(out: str) -> Path:
    path = Path(out)
    if path.exists() and not path.is_dir():
        raise UsageError(f"--out {out} is an existing file; give a folder")
    return path


def _check_count(name: str, value: int | None, minimum: int) -> None:
    if value is not None and value < minimum:
        raise UsageError(f"{name} must be at least {minimum}, got {value}")


def _check_kinds(kinds: list[str] | None) -> tuple[str, ...] | str | None:
    """``--kinds`` as ``tn.attribute`` takes it (None: the default; "all"), once every name is
    a known kind; whether the model has them is checked once it is loaded."""

    if kinds is None:
        return None
    if kinds == ["all"]:
        return "all"
    try:
        return resolve_kinds(kinds)
    except SiteKindError as err:
        raise UsageError(f"--kinds: {err}") from None


def _check_tasks(names) -> None:
    load_tasks(list(names))  # raises UnknownTaskError listing the known names


# --- commands ------------------------------------------------------------------------------------


def _main_job(args) -> int:
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        raise UsageError(
            "main runs in one process; under torchrun, run `taskneurons detect` for each task"
        )
    _check_count("--n", args.n, 0)
    config = PROFILES[args.profile].detection
    config = config.replace(
        tasks=tuple(args.tasks) if args.tasks else config.tasks,
        model=args.model or config.model,
        dtype=None if (args.dtype or config.dtype) == "float32" else args.dtype or config.dtype,
        n_attribution=config.n_attribution if args.n is None else (args.n or None),
    )
    _check_model(config.model)
    out = _check_out(args.out)
    if args.profile == "quick":
        _check_tasks(config.tasks)
    _check_previous_run(out, config, args.overwrite, PROFILES[args.profile].detection.dtype)

    import matplotlib

    matplotlib.use("Agg")

    main_job(out, config)
    print((out / "summary.txt").read_text(), end="")
    print(f"figures: {out / 'overlap.png'}, {out / 'layers.png'}")
    return 0


def _check_previous_run(out: Path, config, overwrite: bool, default_dtype=None) -> None:
    """Refuse, before any work, to mix this run's files with another run's in ``out``: the
    settings of the last run are in ``out/run.json``. With ``overwrite``, its files go."""
    settings = {
        key: getattr(config, key)
        for key in ("model", "k", "per", "n_attribution", "batch_size", "max_length", "seed")
    }
    if config.dtype != default_dtype:  # absent for the profile's, so older run.json files match
        settings["dtype"] = config.dtype
    record = out / "run.json"
    previous = json.loads(record.read_text()) if record.exists() else None
    leftovers = (out / "relevance").exists() or (out / "neurons").exists()
    if previous is not None and previous != settings or previous is None and leftovers:
        _refuse_or_clear(out, settings, previous, overwrite)
    out.mkdir(parents=True, exist_ok=True)
    record.write_text(json.dumps(settings, indent=1) + "\n")


def _refuse_or_clear(out: Path, settings: dict, previous: dict | None, overwrite: bool) -> None:
    if not overwrite:
        differs = sorted(
            k
            for k in {**(previous or {}), **settings}
            if (previous or {}).get(k) != settings.get(k)
        )
        what = f"different {', '.join(differs)}" if previous else "unknown settings"
        raise UsageError(
            f"--out {out} holds another run's checkpoints ({what}); pass "
            "--overwrite to replace them, or choose another --out"
        )
    for folder in ("relevance", "neurons"):
        shutil.rmtree(out / folder, ignore_errors=True)


def _detect(args) -> int:
    try:
        check_fraction(args.k)
    except ValueError:
        raise UsageError(
            f"--k is a fraction of neurons in (0, 1], got {args.k:g}; use --k 0.1 for the top 10%"
        ) from None
    _check_count("--n", args.n, 0)
    _check_count("--batch-size", args.batch_size, 1)
    kinds = _check_kinds(args.kinds)
    _check_model(args.model)
    out = _check_out(args.out)

    if Path(args.task).suffix in (".jsonl", ".csv"):
        if not Path(args.task).exists():
            raise UsageError(f"--task {args.task}: no such file")
        loader = Task.from_jsonl if args.task.endswith(".jsonl") else Task.from_csv
        task = loader(args.task)
    else:
        task = load_tasks([args.task])[args.task]

    import matplotlib

    matplotlib.use("Agg")
    import torch

    config = PROFILES["quick"].detection.replace(
        model=args.model,
        k=args.k,
        per=args.per,
        kinds=kinds,
        n_attribution=args.n or None,
        batch_size=args.batch_size,
        out_dir=str(out),
    )
    # Under torchrun: the group, and this process's GPU (init_from_environment selected it).
    rank, world = init_from_environment()
    on_gpu = world > 1 and torch.cuda.is_available()
    try:
        model, tok = load_model(
            args.model,
            dtype=args.dtype,
            device=f"cuda:{torch.cuda.current_device()}" if on_gpu else "cpu",
        )
        # Every rank returns the same relevance; each keeps its own checkpoint in --out.
        relevance = detect(model, tok, {task.name: task}, config)[task.name]
    finally:
        if world > 1:
            torch.distributed.destroy_process_group()
    if rank != 0:
        return 0
    relevance.save(out / f"{task.name}.relevance.safetensors")
    neurons = relevance.top_k(config.k, per=config.per)
    neurons.save(out / f"{task.name}.neurons.safetensors")
    profile = layer_profile({task.name: relevance}, config.k)
    plots.plot_layer_profile(profile).figure.savefig(out / f"{task.name}.layers.png", dpi=120)
    print(f"{neurons} -> {out / f'{task.name}.neurons.safetensors'}")
    print(
        f"relevance -> {out / f'{task.name}.relevance.safetensors'}; "
        f"figure -> {out / f'{task.name}.layers.png'}"
    )
    return 0


def _sites(args) -> int:
    _check_model(args.model)

    model, _ = load_model(args.model)
    print(f"{'site':28s} {'layer':>5s}  {'kind':6s} {'neurons':>7s}")
    for site in ffn_sites(model):
        print(f"{site.name:28s} {site.layer:5d}  {site.kind:6s} {site.n_neurons:7d}")
    return 0


def _tasks(args) -> int:
    tasks = list(load_tasks().values())
    width = max(len("task"), *(len(t.name) for t in tasks))
    print(
        f"{'task':{width}s}  {'category':14s}  {'family':12s}  {'metric':11s}  "
        f"{'train':>5s}  {'dev':>4s}  {'test':>4s}"
    )
    for t in tasks:
        print(
            f"{t.name:{width}s}  {t.category:14s}  {t.family:12s}  {t.metric:11s}  "
            f"{len(t.train):5d}  {len(t.dev):4d}  {len(t.test):4d}"
        )
    return 0


def _notebooks(args) -> int:
    try:
        report = copy_course(args.dir)
    except (OSError, ValueError) as err:  # a file named DIR, an unwritable folder: one line
        raise UsageError(str(err)) from None
    print("\n".join(report.lines()))
    timings = course_seconds()
    names = [p.name for p in course_files() if p.suffix == ".ipynb"]
    measured = [timings[n] for n in names if n in timings]
    if measured:
        minutes = sum(t["seconds"] for t in measured) / 60
        cores = "/".join(sorted({str(t.get("cores", "?")) for t in measured}))
        which = f"{len(names)}" if len(measured) == len(names) else f"{len(measured)} of them"
        print(
            f"{len(names)} notebooks; {which} measured: {minutes:.1f} minutes on {cores} CPU cores"
        )
    print(f"open it with:  jupyter lab {shlex.quote(args.dir)}   (start with {names[0]})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
