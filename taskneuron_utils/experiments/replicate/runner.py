"""``replicate``: the plan, then every part unit by unit, then the report.

    from taskneuron_utils.experiments.replicate import replicate, settings_for
    replicate("runs/smoke", settings_for("quick", preset="smoke"))

A unit whose file is in ``out`` is done, whoever wrote it: a rerun after a kill starts at the
unit that was cut off (and inside it at the relevance checkpoint or cached training run it
reached), and a folder that already holds a finished record in the same format (the committed
benchmarks/results/replication) is adopted as it is. ``out/settings.json`` records the run's
settings; a folder written with other settings is refused rather than mixed. ``out/times.json``
holds each unit's wall seconds, ``out/replicate.log`` a line per event.

Under ``torchrun`` / ``accelerate launch`` (``taskneurons replicate`` makes the process group
from the launcher's environment) every process runs every unit: attribution gives each rank its
share of the batches and training splits each step's batch over the ranks (``core.parallel``),
so every rank holds the same relevance and weights, and scores the same numbers. The unit files
are those one process writes (every rank writes the same content, atomically); rank 0 alone
prints, logs, and writes ``times.json``, the provenance and the report; the ranks meet after
every unit.
"""

from __future__ import annotations

import importlib.metadata
import json
import logging
import platform
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import torch
from huggingface_hub import try_to_load_from_cache
from tqdm.auto import tqdm

from ...core.layout import model_name, weight_fingerprint
from ...core.parallel import rank_and_world
from ...errors import did_you_mean
from .parts_deactivation import original, specificity_part, table1, unit_file
from .parts_training import attribution_part, continual_part, generalization, table2
from .plan import PlanRefused, add_times, calibrate, fits, format_plan, make_plan, parse_devices
from .report import write_report
from .settings import PARTS, Settings, settings_dict
from .sources import Models, load_run_tasks, read_json, write_json

# The parts, by name: each ``part(models, tok, tasks, settings, out, units)``.
PART_FUNCTIONS: dict[str, Callable] = {
    "original": original,
    "table1": table1,
    "specificity": specificity_part,
    "table2": table2,
    "generalization": generalization,
    "continual": continual_part,
    "attribution": attribution_part,
}


def check_parts(parts) -> tuple[str, ...]:
    """``parts`` (None: all) in run order; an unknown name is a one-line ValueError."""
    if parts is None:
        return PARTS
    unknown = [p for p in parts if p not in PARTS]
    if unknown:
        raise ValueError(
            f"unknown part {', '.join(map(repr, unknown))}{did_you_mean(unknown, PARTS)}; "
            f"the parts are {', '.join(PARTS)}"
        )
    return tuple(p for p in PARTS if p in parts)


def replicate(
    out,
    settings: Settings,
    parts=None,
    *,
    base=None,
    devices: str | None = None,
    plan_only: bool = False,
    load_data: bool = True,
    echo: Callable[[str], object] = print,
) -> dict:
    """Plan, run the missing units of ``parts`` (None: every part), write the report.

    Args:
        out: the run's folder (created; a finished record there is adopted).
        base: (model, tok) to start from instead of loading ``settings.model``.
        devices: memory per device, ``"80GB,80GB"`` (None: the GPUs there are, else the RAM).
        plan_only: print the plan and stop (nothing is written). The model is loaded for the
            calibration only when it is here (the default model, a local folder, the hub
            cache); else the plan has memory but no time ("no calibration: model not loaded").
        load_data: False: plan with assumed data sizes instead of loading the tasks (the
            paper's hub data sets on a machine without them).

    Returns:
        {"plan": [PartPlan], "ran": [units run], "adopted": [units found done]}.

    Raises:
        PlanRefused: a part's estimated peak memory exceeds a device's memory (before any work;
            with ``plan_only`` the plan says so and nothing is raised).
    """
    out = None if out is None else Path(out)
    parts = check_parts(parts)
    rank, world = rank_and_world()
    capacities = parse_devices(devices)
    # Bad data fails here, before any model is loaded.
    tasks = load_run_tasks(settings) if load_data or not plan_only else None
    pending = {
        p: [u for u in settings.units_of(p) if out is None or not unit_file(out, u).exists()]
        for p in parts
    }
    models = Models(settings, base)
    device = "cuda" if devices or torch.cuda.is_available() else "cpu"
    # Memory first, from the config alone: a part that does not fit is refused before the
    # model is loaded.
    plans = make_plan(
        settings, parts, base[0] if base else settings.model, capacities, tasks, device=device
    )
    note = "no calibration: model not loaded"
    if tasks is None:
        note += "; data not loaded: 1,000 training and 500 test examples a task assumed"
    refused = fits([p for p in plans if pending[p.part]])
    available = base is not None or model_here(settings.model)
    if not refused and tasks is not None and available and (plan_only or any(pending.values())):
        model = models.base()
        d = settings.detection
        rates = calibrate(
            model, models.tok, tasks[settings.tasks[0]].train, d.batch_size, d.max_length
        )
        add_times(plans, rates, tasks, settings)
        note = "time from a calibration on " + str(next(model.parameters()).device)
    label = model_name(models.base()) if models.loaded else settings.model or "the default model"
    if rank == 0:
        echo(format_plan(plans, capacities, settings, label, note))
    if refused and not plan_only:
        raise PlanRefused("; ".join(refused))
    if plan_only or out is None:
        return {"plan": plans, "ran": [], "adopted": []}
    out.mkdir(parents=True, exist_ok=True)
    _check_settings(out, settings)
    log = _logger(out) if rank == 0 else logging.getLogger("taskneuron_utils.replicate.quiet")
    times = read_json(out / "times.json", {})
    ran, adopted = [], []
    for part in parts:
        done = [u for u in settings.units_of(part) if u not in pending[part]]
        adopted += done
        if done:
            log.info("%s: %s already done (adopted)", part, ", ".join(done))
        quiet = not pending[part] or rank != 0
        for unit in tqdm(pending[part], desc=part, unit="unit", disable=quiet):
            log.info("%s: %s started", part, unit)
            started = time.perf_counter()
            PART_FUNCTIONS[part](models, models.tok, tasks, settings, out, (unit,))
            if world > 1:  # every rank's copy of the unit is written before any rank goes on
                torch.distributed.barrier()
            times[unit] = round(time.perf_counter() - started, 1)
            if rank == 0:
                write_json(out / "times.json", times)
            log.info("%s: %s done in %.1f s", part, unit, times[unit])
            ran.append(unit)
    if rank != 0:
        return {"plan": plans, "ran": ran, "adopted": adopted}
    write_json(out / "provenance.json", provenance(out, settings, models, times))
    paths = write_report(out, settings, parts)
    log.info("report: %s", ", ".join(map(str, paths)))
    echo(f"report: {paths[0]} and {paths[1]}")
    return {"plan": plans, "ran": ran, "adopted": adopted}


def model_here(model: str | None) -> bool:
    """Whether ``model`` loads without a download: the embedded default, a local folder, or a
    hub id whose config is in the local hub cache."""
    if model is None or Path(model).expanduser().exists():
        return True
    try:
        return isinstance(try_to_load_from_cache(model, "config.json"), str)
    except ValueError:  # not a valid repo id
        return False


def _check_settings(out: Path, settings: Settings) -> None:
    """Write ``out/settings.json``; refuse a folder holding another run's settings."""
    mine = json.loads(json.dumps(settings_dict(settings)))
    previous = read_json(out / "settings.json")
    if previous is not None and previous != mine:
        differ = sorted(k for k in {**previous, **mine} if previous.get(k) != mine.get(k))
        raise ValueError(
            f"{out} holds a run with other settings (different {', '.join(differ)}); "
            "choose another folder"
        )
    write_json(out / "settings.json", mine)


def _logger(out: Path) -> logging.Logger:
    log = logging.getLogger(f"taskneuron_utils.replicate.{out.resolve()}")
    if not log.handlers:
        handler = logging.FileHandler(out / "replicate.log")
        handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
        log.addHandler(handler)
        log.setLevel(logging.INFO)
        log.propagate = False
    return log


def provenance(out: Path, settings: Settings, models: Models, times: dict) -> dict:
    """Model and weight fingerprint, package version, git commit, hardware, seconds per part."""
    info = read_json(out / "original.json", {})
    record = {
        "model": settings.model or "HuggingFaceTB/SmolLM2-135M-Instruct (embedded default)",
        "base_fingerprint": info.get("base_fingerprint"),
        "original_key": info.get("key"),
        "package_version": importlib.metadata.version("taskneuron_utils"),
        "git_commit": _git_commit(),
        "hardware": _hardware(),
        "seconds_per_part": {
            part: round(sum(times.get(u, 0.0) for u in settings.units_of(part)), 1)
            for part in PARTS
        },
        "units_without_time": [u for p in PARTS for u in settings.units_of(p) if u not in times],
        "written": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    if models.loaded:  # loaded in this run: fingerprint it
        model = models.base()
        record.update(model=model_name(model), base_fingerprint=weight_fingerprint(model))
    return record


def _git_commit() -> str | None:
    try:
        done = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(__file__).parent,
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() or None


def _hardware() -> str:
    gpus = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    cpu = f"{platform.machine()} CPU, {torch.get_num_threads()} torch threads"
    return ", ".join(gpus) if gpus else cpu


__all__ = ["PART_FUNCTIONS", "PlanRefused", "check_parts", "model_here", "replicate"]
