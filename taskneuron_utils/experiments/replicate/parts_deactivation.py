"""The parts that switch neurons off: the "original" model, Table 1 (with intervals and over k)
and specificity. Each part is ``part(models, tok, tasks, settings, out, units)``: it runs the
units named in ``units`` whose file is not in ``out`` yet and writes each file when the unit is
done (``unit_file``); relevance is checkpointed under ``out/relevance/<unit>/`` as it is
computed, so a killed unit resumes at the task it was in.

Units, one file each (the committed record's names and formats):

    original              original.json: the multi-task model's provenance (key, losses, time)
    deact_mt_k10/k02      Table 1 on the multi-task model, k = 10% / 2% per site
    deact_base_k10        the same on the untuned base model (own vs random only)
    table1_seeds_<def>    k = 10%, per example, many random seeds (intervals), def: linear / act
    k_sweep_<def>         per example at every k of ``settings.ks``
    deact_mt_kinds        the sets cut to gate+up or to down (own vs random)
    deact_mt_excl         each set minus every other task's set (k = 2%)
    specific_<def>_k<pct> every selection method's sets on every task, plus the shared core
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ...neurons.relevance import Relevance
from ...neurons.neuron_set import NeuronSet, parse_site_name
from ...neurons.selection import select, shared_core
from ..deactivation import aggregate_examples, deactivation
from ..detection import detect, exclusive_sets, neuron_sets
from ..multitask import held_out
from ..specificity import specificity
from ..sweeps import k_sweep
from .settings import Settings
from .sources import write_csv, write_json

KINDS = {"linear": None, "act": ("act",)}
SPECIFIC_KS = {"k01": 0.01, "k02": 0.02, "k05": 0.05, "k10": 0.10}
UNITS_SPECIFIC = tuple(f"specific_{d}_{k}" for d in KINDS for k in SPECIFIC_KS)


def unit_file(out: Path, unit: str) -> Path:
    """The file whose presence means ``unit`` is done."""
    names = {"original": "original.json", "attribution_agreement": "attribution_agreement.csv"}
    return Path(out) / names.get(unit, f"{unit}.csv")


def _detection(settings: Settings, out: Path, unit: str, **changes):
    return settings.detection.replace(out_dir=str(Path(out) / "relevance" / unit), **changes)


def original(models, tok, tasks: dict, settings: Settings, out: Path, units=("original",)):
    """The multi-task fine-tuned model (trained once, cached); writes its provenance."""
    if "original" in units and not unit_file(out, "original").exists():
        models.original(tasks)
        write_json(unit_file(out, "original"), models.original_info)


def only_kinds(neurons: NeuronSet, kinds: tuple[str, ...]) -> NeuronSet:
    """``neurons`` restricted to the sites of the given kinds (e.g. ("gate", "up"))."""
    kept = {
        site: idx if parse_site_name(site)[1] in kinds else idx[:0]
        for site, idx in neurons.indices.items()
    }
    return NeuronSet(kept, neurons.sizes, meta=neurons.meta)


def table1(models, tok, tasks: dict, settings: Settings, out: Path, units=()):
    """Table 1: own vs random vs other tasks' neurons off, at k = 10% and 2%, on the untuned
    model, with intervals over examples and seeds, and over k."""
    mine = {name: tasks[name] for name in settings.tasks}
    detect_on = held_out(mine, settings.multitask)  # training examples the model did not see
    for unit in units:
        path = unit_file(out, unit)
        if path.exists():
            continue
        if unit in ("deact_mt_k10", "deact_mt_k02"):
            k = 0.10 if unit.endswith("k10") else 0.02
            frame = deactivation(
                models.original(tasks),
                tok,
                detect_on,
                settings.deactivation,
                label=f"multitask k={k:g}",
                detection=_detection(settings, out, unit, k=k),
            )
        elif unit == "deact_base_k10":
            frame = deactivation(
                models.base(),
                tok,
                mine,
                settings.deactivation.replace(others=False),
                label="untuned k=0.1",
                detection=_detection(settings, out, unit),
            )
        elif unit.startswith("table1_seeds_"):
            kinds = unit.rsplit("_", 1)[1]
            frame = deactivation(
                models.original(tasks),
                tok,
                detect_on,
                settings.table1,
                label=f"multitask k=0.1 {kinds}",
                detection=_detection(settings, out, unit, kinds=KINDS[kinds]),
                per_example=True,
            )
        elif unit.startswith("k_sweep_"):
            kinds = unit.rsplit("_", 1)[1]
            frame = k_sweep(
                models.original(tasks),
                tok,
                {name: detect_on[name] for name in settings.k_sweep_tasks},
                settings.ks,
                settings.k_sweep,
                detection=_detection(settings, out, unit, kinds=KINDS[kinds]),
                kinds=KINDS[kinds],
                label=f"multitask {kinds}",
            )
        else:
            raise ValueError(f"table1 has no unit {unit!r}")
        write_csv(frame, path)


def specificity_part(models, tok, tasks: dict, settings: Settings, out: Path, units=()):
    """Specificity: which part of a set (gate+up or down) hurts, the exclusive neurons, and every
    selection method's sets on every task beside the shared core."""
    mine = {name: tasks[name] for name in settings.tasks}
    detect_on = held_out(mine, settings.multitask)
    own_only = settings.deactivation.replace(others=False)
    for unit in units:
        path = unit_file(out, unit)
        if path.exists():
            continue
        model = models.original(tasks)
        if unit == "deact_mt_kinds":
            chosen = {name: detect_on[name] for name in settings.kinds_tasks}
            detection = _detection(settings, out, unit)
            sets = neuron_sets(detect(model, tok, chosen, detection), detection)
            frame = pd.concat(
                [
                    deactivation(
                        model,
                        tok,
                        chosen,
                        own_only,
                        label=f"multitask k=0.1 {label}",
                        sets={n: only_kinds(s, kinds) for n, s in sets.items()},
                    )
                    for label, kinds in (("gate+up", ("gate", "up")), ("down", ("down",)))
                ]
            )
        elif unit == "deact_mt_excl":
            detection = _detection(settings, out, unit, k=0.02)
            sets = neuron_sets(detect(model, tok, detect_on, detection), detection)
            frame = deactivation(
                model,
                tok,
                mine,
                settings.deactivation,
                label="multitask k=0.02 exclusive",
                sets=exclusive_sets(sets),
            )
        elif unit.startswith("specific_"):
            frame = specific_unit(model, tok, tasks, settings, out, unit)
        else:
            raise ValueError(f"specificity has no unit {unit!r}")
        write_csv(frame, path)


def specific_relevances(model, tok, tasks: dict, settings: Settings, definition: str, out: Path):
    """{task: Relevance} of one definition on held-out training examples, kept under
    ``out/specific_relevance/<definition>/`` for the other k (as the record keeps them)."""
    folder = Path(out) / "specific_relevance" / definition
    folder.mkdir(parents=True, exist_ok=True)
    missing = {n: t for n, t in tasks.items() if not (folder / f"{n}.safetensors").exists()}
    if missing:
        detection = settings.detection.replace(kinds=KINDS[definition])
        for name, rel in detect(
            model, tok, held_out(missing, settings.multitask), detection
        ).items():
            rel.save(folder / f"{name}.safetensors")
    return {name: Relevance.load(folder / f"{name}.safetensors", model) for name in tasks}


def specific_unit(
    model, tok, tasks: dict, settings: Settings, out: Path, unit: str
) -> pd.DataFrame:
    """One ``specific_<definition>_k<pct>`` unit: writes ``<unit>_examples.csv.gz`` (per test
    example) and returns the rows aggregated per condition."""
    _, definition, k_name = unit.split("_")
    k = SPECIFIC_KS[k_name]
    chosen = {name: tasks[name] for name in settings.specific_tasks}
    rel = specific_relevances(model, tok, chosen, settings, definition, out)
    families = {method: select(rel, method, k) for method in settings.specific_methods}
    label = f"multitask {definition} k={k:g}"
    config = settings.specific
    frames = [specificity(model, tok, chosen, families, config, label=label, per_example=True)]
    core = shared_core(rel, k)
    if k in settings.core_ks and len(core):  # an empty core has nothing to switch off
        frames.append(
            deactivation(
                model,
                tok,
                chosen,
                config.replace(others=False),
                label=label,
                sets={name: core for name in chosen},
                per_example=True,
            ).assign(family="shared core")
        )
    examples = pd.concat(frames, ignore_index=True).assign(definition=definition, k=k)
    write_csv(examples, Path(out) / f"{unit}_examples.csv.gz")
    return aggregate_examples(examples)
