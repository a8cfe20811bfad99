"""The plan of a run, before the work: per part its data sizes, trained runs, peak memory per
device (``memory.estimate_memory``) and a time estimate; a part that does not fit is refused
with the option that makes it fit.

Memory: the largest of the part's phases (attribution, full / neuron / LoRA training), each an
``estimate_memory`` of one steady-state step at the part's batch size and token budget, with an
assumed answer length of ``min(max_length, 128)`` tokens. Over ``n`` devices (``device_map=
"auto"`` splits the layers) a device holds ``(peak - transient) / n + transient``: the layers
split evenly, the LM head's short-lived gradients whole on the last device (an approximation;
gradient checkpointing is not modelled, so it is never offered as the fix). A training phase
adds the base model's weights, which the run keeps beside the copy it trains.

Time: the work of each part counted in examples attributed, examples trained (steps x batch)
and examples scored, times the seconds per example that ``calibrate`` measures on the loaded
model and device (a timed forward, attribution and forward + backward on real training
examples); a generated answer is assumed to cost ``GENERATION_FACTOR`` forwards, and the
optimizer step is not timed (small beside the backward pass). Without a loaded model
(``--plan`` on a hub id that is not available here) there is no time estimate.
"""

from __future__ import annotations

import functools
import os
import time
from dataclasses import dataclass, field

import torch

from ...attribution import attribute
from ...attribution.budget import parse_memory
from ...memory import estimate_memory
from ...memory.formulas import GiB
from ...tasks import collate, encode
from .settings import Settings, with_batch_size

TRAINING = ("full", "neurons", "lora")
GENERATION_FACTOR = 4  # forwards per scored generation example (assumed, not measured)
ASSUMED_SPLIT = {"train": 1000, "test": 500}  # sizes of a task not loaded (offline --plan)


class PlanRefused(ValueError):
    """A part's estimated peak memory exceeds a device's memory; the message names the option
    that makes it fit."""


@dataclass
class PartPlan:
    part: str
    units: tuple[str, ...]
    data: str
    runs: int
    work: dict
    peak: dict = field(default_factory=dict)  # {devices: bytes per device}
    phase: str = ""
    seconds: float | None = None
    fix: str | None = None


def parse_devices(text: str | None) -> list[int]:
    """``"80GB,80GB"`` -> bytes per device; None: the GPUs there are, else this machine's RAM."""
    if text:
        return [parse_memory(item) for item in text.split(",") if item.strip()]  # type: ignore[misc]
    if torch.cuda.is_available():
        return [
            torch.cuda.get_device_properties(i).total_memory
            for i in range(torch.cuda.device_count())
        ]
    return [os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")]


def phases(settings: Settings, part: str) -> list[tuple[str, int, int]]:
    """(estimate_memory method, batch size, tokens per example) of each phase of ``part``."""
    d, f, g, c = (
        settings.detection,
        settings.finetuning,
        settings.generalization,
        settings.continual,
    )
    attribution = [("attribution", d.batch_size, d.max_length)]
    return {
        "original": [("full", settings.multitask.batch_size, settings.multitask.max_length)],
        "table1": attribution,
        "specificity": attribution,
        "table2": [("full", f.batch_size, f.max_length), ("neurons", f.batch_size, f.max_length)],
        "generalization": [
            ("full", g.batch_size, g.max_length),
            ("neurons", g.batch_size, g.max_length),
        ],
        "continual": [(m, c.batch_size, c.max_length) for m in ("full", "lora", "neurons")],
        "attribution": attribution + [("integrated_gradients", d.batch_size, d.max_length)],
    }[part]


def peak_bytes(model_ref, settings: Settings, part: str, device: str, dtype, n_devices: int):
    """(bytes per device over ``n_devices``, the phase that sets it) of ``part``."""
    best, which = 0, ""
    for method, batch, seq in phases(settings, part):
        peak, transient = _estimate(model_ref, method, batch, seq, dtype, device)
        per = peak if n_devices == 1 else (peak - transient) / n_devices + transient
        if per > best:
            best, which = int(per), f"{method}, batch {batch} x {seq} tokens"
    return best, which


def _estimate(model_ref, method: str, batch: int, seq: int, dtype, device: str):
    """(peak, transient) bytes of one phase. Cached for a model named by its id, since each
    estimate builds the model on the meta device (about a second for a 7B config); a loaded
    model is not kept in a cache."""
    if model_ref is None or isinstance(model_ref, str):
        return _estimate_named(model_ref, method, batch, seq, dtype, device)
    return _estimate_named.__wrapped__(model_ref, method, batch, seq, dtype, device)


@functools.lru_cache(maxsize=256)
def _estimate_named(model_ref, method: str, batch: int, seq: int, dtype, device: str):
    est = estimate_memory(
        model_ref, batch, seq, method, dtype=dtype, answer_len=min(seq, 128), device=device
    )
    # A training part trains a copy (``Models.fresh``) while the run keeps the base model to
    # copy from and to read: one more set of weights.
    base = est.n_params * dtype.itemsize if method in TRAINING else 0
    return est.peak + base, est.transient


def _size(tasks, name: str, split: str) -> int:
    task = (tasks or {}).get(name)
    return len(getattr(task, split)) if task is not None else ASSUMED_SPLIT[split]


def work(settings: Settings, part: str, tasks=None) -> tuple[dict, int, str]:
    """({"attr", "train", "scored": examples}, trained runs, data sizes) of ``part``."""
    s = settings
    units = s.units_of(part)

    def n(value, name, split):
        return _size(tasks, name, split) if value is None else min(value, _size(tasks, name, split))

    def attr(names):
        return sum(n(s.detection.n_attribution, t, "train") for t in names)

    def scored(names, config, conditions):
        return sum(n(config.n_eval, t, "test") for t in names) * conditions

    T, out = s.tasks, {"attr": 0, "train": 0, "scored": 0}
    runs, seeds = 0, len(s.deactivation.random_seeds)
    for unit in units:
        if unit in ("deact_mt_k10", "deact_mt_k02", "deact_base_k10", "deact_mt_excl"):
            others = len(T) - 1 if s.deactivation.others and unit != "deact_base_k10" else 0
            out["attr"] += attr(T)
            out["scored"] += scored(T, s.deactivation, 2 + seeds + others)
        elif unit.startswith("table1_seeds"):
            out["attr"] += attr(T)
            out["scored"] += scored(T, s.table1, 2 + len(s.table1.random_seeds))
        elif unit.startswith("k_sweep"):
            K, k = s.k_sweep_tasks, s.k_sweep
            per_k = 1 + len(k.random_seeds) + (len(K) - 1 if k.others else 0)
            out["attr"] += attr(K)
            out["scored"] += scored(K, k, 1 + len(s.ks) * per_k)
        elif unit == "deact_mt_kinds":
            out["attr"] += attr(s.kinds_tasks)
            out["scored"] += 2 * scored(s.kinds_tasks, s.deactivation, 2 + seeds)
        elif unit.startswith("specific_"):
            S, sp = s.specific_tasks, s.specific
            out["attr"] += attr(S) // 4  # relevance shared by the four k of a definition
            conditions = 1 + len(sp.random_seeds) + len(s.specific_methods) * len(S)
            out["scored"] += scored(S, sp, conditions)
        elif unit in ("finetune", "finetune_seeds", "budget"):
            F = s.finetune_tasks if unit != "budget" else T
            if unit == "budget":
                b = s.budget
                trained = len(F) * len(b.seeds) * len(b.methods)
                out["train"] += trained * max(s.budgets) * b.batch_size
                out["scored"] += scored(F, b, len(b.seeds) * len(b.methods) * len(s.budgets))
            else:
                f, reps = s.finetuning, 1 if unit == "finetune" else len(s.finetune_seeds)
                trained = len(F) * (len(f.methods) - 1) * len(f.lrs) * reps
                out["train"] += trained * f.steps * f.batch_size
                out["scored"] += scored(F, f, len(f.methods) * reps)
            out["attr"] += attr(F)
            runs += trained
        elif unit.startswith("gen_"):
            g = s.generalization
            for _, train, test in g.groups:
                if unit.startswith("gen_sweep"):
                    trained = (len(g.proportions) - 1) * (1 + len(g.random_seeds)) + 1
                    trained += len(g.lrs) + len(g.full_lrs or g.lrs)
                    names = [*train, *test]
                else:
                    trained, names = len(train), g.group_tasks()
                out["attr"] += sum(n(g.n_attribution, t, "train") for t in train)
                out["train"] += trained * g.steps * g.batch_size
                out["scored"] += sum(n(g.n_eval, t, "test") for t in names) * trained
                runs += trained
        elif unit == "continual":
            c = s.continual
            for _, order in s.orders:
                L = len(order)
                trained = L * len(s.cl_methods)
                out["train"] += trained * c.steps * c.batch_size
                out["scored"] += (
                    len(s.cl_methods) * sum(n(c.n_eval, t, "test") for t in order) * (L + 1) // 2
                )
                out["attr"] += L * (c.n_attribution or 1000)
                runs += trained
        elif unit == "attribution_agreement":
            per_site = s.agreement_units + 8  # one ablation a unit, 8 IG points
            out["scored"] += 2 * len(s.attribution_tasks) * s.agreement_examples * per_site
        elif unit == "original":
            m = s.multitask
            out["train"] += m.steps * m.batch_size
            runs += 1
    listed = {
        "continual": [t for _, o in s.orders for t in o],
        "generalization": s.generalization.group_tasks(),
    }.get(part, list(T))
    data = f"{len(set(listed))} tasks; " + ", ".join(f"{k} {v:,}" for k, v in out.items())
    return out, runs, data


def calibrate(model, tok, examples, batch_size: int, max_length: int, repeats: int = 1) -> dict:
    """Seconds per example of a forward pass, an attribution pass (``tn.attribute``) and a
    forward + backward pass (the training step without the optimizer), on the first two of
    ``examples`` (a Split of real training examples; fewer when ``batch_size`` is 1) at up to
    ``max_length`` tokens; the median of ``repeats`` timed repeats after one warm-up. Per
    example at two examples a pass: a larger batch is cheaper per example on a GPU, so the
    estimate errs long there. The model's parameters
    are left as they were (gradients are dropped)."""
    # Two examples a pass: per-example costs, measured cheaply (one warm-up, then ``repeats``).
    data = examples[: max(1, min(batch_size, 2, len(examples)))]
    batch = collate(encode(tok, data, max_length), tok.pad_token_id)
    device = next(model.parameters()).device
    batch = {k: v.to(device) for k, v in batch.items()}

    def timed(fn) -> float:
        fn()
        times = []
        for _ in range(repeats):
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            started = time.perf_counter()
            fn()
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            times.append(time.perf_counter() - started)
        return sorted(times)[len(times) // 2] / len(data)

    def forward():
        with torch.no_grad():
            model(**batch)

    def backward():
        model(**batch).loss.backward()
        model.zero_grad(set_to_none=True)

    return {
        "forward": timed(forward),
        "attr": timed(
            lambda: attribute(
                model, tok, data, batch_size=len(data), max_length=max_length, progress=False
            )
        ),
        "train": timed(backward),
    }


def estimate_seconds(counts: dict, rates: dict, generation_share: float) -> float:
    score = rates["forward"] * (1 + (GENERATION_FACTOR - 1) * generation_share)
    return (
        counts["attr"] * rates["attr"] + counts["train"] * rates["train"] + counts["scored"] * score
    )


def add_times(plans, rates: dict, tasks, settings: Settings) -> None:
    """Set each plan's ``seconds`` from the calibration's ``rates``."""
    share = _generation_share(tasks, settings.tasks)
    for plan in plans:
        plan.seconds = estimate_seconds(plan.work, rates, share)


def make_plan(settings, parts, model_ref, devices, tasks=None, rates=None, device="cuda"):
    """One ``PartPlan`` per part; ``fix`` is set on a part whose peak per device exceeds the
    smallest device's memory. ``model_ref``: a loaded model, or what ``estimate_memory`` reads
    a config from (None: the default model)."""
    dtype = _dtype(settings, device)
    share = _generation_share(tasks, settings.tasks)
    capacity = min(devices)
    plans = []
    for part in parts:
        counts, runs, data = work(settings, part, tasks)
        plan = PartPlan(part, settings.units_of(part), data, runs, counts)
        for n in sorted({1, len(devices)}):
            plan.peak[n], phase = peak_bytes(model_ref, settings, part, device, dtype, n)
            plan.phase = plan.phase or phase
        if rates is not None:
            plan.seconds = estimate_seconds(counts, rates, share)
        if plan.peak[len(devices)] > capacity:
            plan.fix = suggest_fix(settings, part, model_ref, device, dtype, capacity, len(devices))
        plans.append(plan)
    return plans


def suggest_fix(settings, part, model_ref, device, dtype, capacity, n_devices) -> str:
    """The options that make ``part`` fit ``capacity`` bytes a device, each with its estimate."""
    found = []
    if dtype == torch.float32:
        peak, _ = peak_bytes(model_ref, settings, part, device, torch.bfloat16, n_devices)
        if peak <= capacity:
            found.append(f"--dtype bfloat16 ({peak / GiB:.1f} GiB)")
    batch = max(b for _, b, _ in phases(settings, part))
    while batch > 1:
        batch //= 2
        smaller = with_batch_size(settings, batch)
        peak, _ = peak_bytes(model_ref, smaller, part, device, dtype, n_devices)
        if peak <= capacity:
            found.append(f"--batch-size {batch} ({peak / GiB:.1f} GiB)")
            break
    for n in (2, 4, 8):
        if n > n_devices:
            peak, _ = peak_bytes(model_ref, settings, part, device, dtype, n)
            if peak <= capacity:
                found.append(f"{n} devices with device_map='auto' ({peak / GiB:.1f} GiB each)")
                break
    return "; ".join(found) or "no option of this command makes it fit"


def _dtype(settings: Settings, device: str) -> torch.dtype:
    if settings.dtype in (None, "float32"):
        return torch.float32
    if settings.dtype == "auto":
        return torch.bfloat16 if device == "cuda" else torch.float32
    return getattr(torch, settings.dtype)


def _generation_share(tasks, names) -> float:
    if not tasks:
        return 0.5
    kinds = [tasks[n].category == "generation" for n in names if n in tasks]
    return sum(kinds) / max(1, len(kinds))


def format_plan(plans, devices, settings: Settings, model_label: str, note: str) -> str:
    """The plan as text: one block per part, then the total."""
    sizes = " + ".join(f"{d / GiB:.0f} GiB" for d in devices)
    lines = [
        f"replicate plan: profile {settings.profile}"
        + (f", preset {settings.preset}" if settings.preset else "")
        + f"; model {model_label}; devices {sizes}; {note}"
    ]
    total = 0.0
    for p in plans:
        memory = ", ".join(f"{p.peak[n] / GiB:.1f} GiB per device on {n}" for n in sorted(p.peak))
        seconds = "no estimate" if p.seconds is None else _duration(p.seconds)
        total += p.seconds or 0.0
        lines.append(f"  {p.part:15s} {len(p.units)} unit(s), {p.runs} trained run(s); {p.data}")
        lines.append(f"  {'':15s} peak {memory} ({p.phase}); time {seconds}")
        if p.fix:
            lines.append(f"  {'':15s} DOES NOT FIT: {p.fix}")
    if any(p.seconds is not None for p in plans):
        lines.append(f"  total time {_duration(total)} (estimate)")
    return "\n".join(lines)


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def fits(plans) -> list[str]:
    """One line per refused part (empty: every part fits)."""
    return [
        f"part {p.part} needs {p.peak[max(p.peak)] / GiB:.1f} GiB per device, more than the "
        f"smallest device has; it fits with {p.fix}"
        for p in plans
        if p.fix
    ]
