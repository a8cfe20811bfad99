"""The ``taskneurons replicate`` subcommand: its options (``add_parser``) and ``run``, which
checks every argument before any data or model is loaded (an unknown part, a missing data
folder, a model whose family is not supported: one line, exit status 2 through the CLI)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from huggingface_hub import try_to_load_from_cache

from ...attribution.budget import parse_memory
from ...core.families import FAMILIES
from ...core.parallel import init_from_environment
from ...memory.estimate import ALIASES, KNOWN_CONFIGS
from ...tasks.hub import HUB_DATA_ENV
from .runner import check_parts, replicate
from .settings import PARTS, PRESETS, PROFILE_NAMES, settings_for


class ReplicateUsageError(ValueError):
    """A ``replicate`` argument that cannot work; one line, exit status 2."""


def add_parser(commands) -> None:
    """Add ``replicate`` to the CLI's subcommands (an argparse subparsers object)."""
    rep = commands.add_parser(
        "replicate",
        help="replicate the paper: plan, run every part resumably, write the report",
        description="Run the paper's sections (parts) unit by unit into --out, resumably, and "
        "write --out/report.md and report.html beside the paper's numbers. The plan (memory "
        "per part and device, time) is printed first; --plan prints it and stops.",
    )
    rep.add_argument("--profile", default="quick", choices=PROFILE_NAMES, help="quick (CPU, "
                     "embedded model, shipped tasks; default) or paper (Llama-2-7b, hub data)")  # fmt: skip
    rep.add_argument("--preset", choices=PRESETS, help="smoke: every part at toy sizes")
    rep.add_argument("--model", help="hub id or local folder (default: the profile's model)")
    rep.add_argument("--tasks", nargs="+", metavar="TASK", help="the tasks of Tables 1 and 2")
    rep.add_argument("--parts", nargs="+", metavar="PART", help=f"parts to run: {', '.join(PARTS)}")
    rep.add_argument("--data", help="folder of local copies of the hub data sets (paper profile; "
                     f"one sub-folder per task; default ${HUB_DATA_ENV} or the hub)")  # fmt: skip
    rep.add_argument("--batch-size", type=int, help="cap every batch at this many examples")
    rep.add_argument("--dtype", choices=["float32", "bfloat16", "auto"], help="model dtype")
    rep.add_argument("--devices", help="memory of each device, e.g. 80GB or 80GB,80GB (two GPUs; "
                     "default: the GPUs there are, else this machine's RAM)")  # fmt: skip
    rep.add_argument("--plan", action="store_true", help="print the plan and stop")
    rep.add_argument("--out", help="the run's folder (required unless --plan)")


def check_model_family(model: str | None) -> None:
    """Refuse, from its config alone, a model whose ``model_type`` no registered family has
    (a known config, a local folder's config.json, or a config in the local hub cache)."""
    if model is None:
        return
    key = ALIASES.get(model.lower(), model)
    config = KNOWN_CONFIGS.get(key)
    path = Path(model).expanduser()
    looks_local = model.startswith(("/", "./", "../", "~")) or model.count("/") > 1
    if config is None and looks_local and not path.exists():
        raise ReplicateUsageError(f"--model {model}: no such file or folder")
    if config is None and (path / "config.json").exists():
        config = json.loads((path / "config.json").read_text())
    if config is None:
        cached = _cached_config(model)
        config = json.loads(Path(cached).read_text()) if cached else None
    if config is None:
        return  # a hub id not cached here: its family is checked once it is downloaded
    model_type = config.get("model_type")
    known = {t for f in FAMILIES.values() for t in f.model_types}
    if model_type not in known:
        raise ReplicateUsageError(
            f"--model {model}: model_type {model_type!r} is not a supported family "
            f"(supported: {', '.join(sorted(known))}; tn.register_family adds one)"
        )


def _cached_config(model: str) -> str | None:
    """The path of ``model``'s config.json in the local hub cache, or None (no network)."""
    try:
        found = try_to_load_from_cache(model, "config.json")
    except ValueError:  # not a valid repo id
        return None
    return found if isinstance(found, str) else None


def run(args) -> int:
    """``taskneurons replicate``: checks, then ``replicate``."""
    try:
        parts = check_parts(args.parts)
    except ValueError as err:
        raise ReplicateUsageError(f"--parts: {err}") from None
    if args.out is None and not args.plan:
        raise ReplicateUsageError("--out is required (the run's folder), unless --plan")
    if args.out is not None and Path(args.out).exists() and not Path(args.out).is_dir():
        raise ReplicateUsageError(f"--out {args.out} is an existing file; give a folder")
    if args.batch_size is not None and args.batch_size < 1:
        raise ReplicateUsageError(f"--batch-size must be at least 1, got {args.batch_size}")
    if args.data is not None and not Path(args.data).is_dir():
        raise ReplicateUsageError(f"--data {args.data}: no such folder")
    if args.data is not None and args.profile != "paper":
        raise ReplicateUsageError("--data holds the hub data sets: it needs --profile paper")
    if args.devices is not None:
        try:
            [parse_memory(item) for item in args.devices.split(",")]
        except ValueError:
            raise ReplicateUsageError(
                f"--devices {args.devices!r}: give each device's memory, e.g. 80GB,80GB"
            ) from None
    check_model_family(args.model)
    settings = settings_for(
        args.profile,
        preset=args.preset,
        model=args.model,
        tasks=tuple(args.tasks) if args.tasks else None,
        data_dir=args.data,
        batch_size=args.batch_size,
        dtype=args.dtype,
    )
    offline_plan = (
        args.plan
        and settings.source == "paper"
        and not (settings.data_dir or os.environ.get(HUB_DATA_ENV))
    )
    rank, world = init_from_environment()  # under torchrun: one process per GPU (or CPU)
    try:
        replicate(
            args.out,
            settings,
            parts,
            devices=args.devices,
            plan_only=args.plan,
            load_data=not offline_plan,
            echo=print if rank == 0 else lambda text: None,
        )
    finally:
        if world > 1:
            torch.distributed.destroy_process_group()
    return 0
