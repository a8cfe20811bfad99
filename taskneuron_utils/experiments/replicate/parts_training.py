"""The parts that train: Table 2 (over budgets), Section 4 (generalization), Table 5 (continual
learning), and the attribution-methods comparison. Same shape as ``parts_deactivation``:
``part(models, tok, tasks, settings, out, units)`` runs the units whose file is missing.

Units:

    finetune              task neurons vs random neurons vs full fine-tuning from the base model
    finetune_seeds        task vs random neurons again with the seeds of ``finetune_seeds``
    budget                Table 2 over training budgets (one constant-lr run scored at each)
    gen_sweep_cls/_gen    proportion sweep of the classification / generation group
    gen_pairwise          each training task's neurons trained alone, gain on every task
    gen_similarity        per-layer parameter similarity vs out-of-domain gain
    gen_pairwise_specific the pairwise gains beside the overlap of specific sets
    continual             every method on every order; one CSV per (method, order) under
                          ``continual/`` as it finishes, stage checkpoints within a sequence
    attribution_agreement each attribution method's score beside exact ablation, per unit

Trained runs are cached where the experiments cache them (``cache_dir()/generalization``, the
continual stage checkpoints, ``finetuned/``), so a killed unit resumes at the run it was in.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd

from ...attribution import attribute
from ...attribution.agreement import method_agreement
from ...core.layout import ffn_sites
from ..common import sample
from ..continual.references import choose_lrs, references
from ..continual.sequence import continual, forgetting_overlap
from ..finetuning import neuron_finetuning
from ..generalization.sweep import pairwise_transfer, proportion_sweep, similarity_vs_gain
from ...neurons.neuron_set import NeuronSet
from ..sweeps import budget_sweep
from .parts_deactivation import unit_file
from .settings import Settings
from .sources import read_json, write_csv, write_json

SWEEP_UNIT = {"classification": "gen_sweep_cls", "generation": "gen_sweep_gen"}
# Methods that train exactly as another one does use that one's lr.
SHARED_LR = {"ewc": "seqft", "replay": "seqft", "random_neurons": "ncft", "wncft": "ncft"}


def table2(models, tok, tasks: dict, settings: Settings, out: Path, units=()):
    """Table 2: training only the task's neurons vs random neurons vs everything."""
    chosen = {name: tasks[name] for name in settings.finetune_tasks}
    detection = settings.detection.replace(out_dir=str(Path(out) / "relevance" / "table2"))
    for unit in units:
        path = unit_file(out, unit)
        if path.exists():
            continue
        if unit == "finetune":
            frame = neuron_finetuning(
                models.fresh, tok, chosen, settings.finetuning, detection=detection
            )
        elif unit == "finetune_seeds":
            # Another seed: the detection sample, random set, training order, dev and test samples.
            frame = pd.concat(
                [
                    neuron_finetuning(
                        models.fresh,
                        tok,
                        chosen,
                        settings.finetuning.replace(
                            seed=seed, methods=("none", "neurons", "random")
                        ),
                        detection=settings.detection.replace(seed=seed),
                    ).assign(seed=seed)
                    for seed in settings.finetune_seeds
                ]
            )
        elif unit == "budget":
            mine = {name: tasks[name] for name in settings.tasks}
            frame = budget_sweep(
                models.fresh, tok, mine, settings.budgets, settings.budget, detection=detection
            )
        else:
            raise ValueError(f"table2 has no unit {unit!r}")
        write_csv(frame, path)


def _neuron_lr(out: Path, group: str) -> float | None:
    """The neuron lr the group's sweep chose (None: chosen on the source's own dev NLL)."""
    path = Path(out) / f"{SWEEP_UNIT.get(group, group)}.csv"
    if not path.exists():
        return None
    sweep = pd.read_csv(path)
    return float(sweep[sweep.condition == "task"]["lr"].iloc[0])


def generalization(models, tok, tasks: dict, settings: Settings, out: Path, units=()):
    """Section 4 from the base model: the proportion sweep per group, pairwise transfer and
    parameter similarity (learning rates: the sweep's, per group)."""
    config = settings.generalization
    chosen = {name: tasks[name] for name in config.group_tasks()}
    for unit in units:
        path = unit_file(out, unit)
        if path.exists():
            continue
        if unit in ("gen_sweep_cls", "gen_sweep_gen"):
            groups = tuple(g for g in config.groups if SWEEP_UNIT.get(g[0]) == unit)
            if not groups:
                continue  # this run's groups have no such group (a preset, or --tasks)
            frame = proportion_sweep(models.fresh, tok, chosen, config.replace(groups=groups))
        else:
            frames = []
            for name, train, _ in config.groups:
                lr = _neuron_lr(out, name)
                if unit == "gen_pairwise":
                    run = pairwise_transfer(models.fresh, tok, chosen, config, sources=train, lr=lr)
                elif unit == "gen_pairwise_specific":
                    run = pairwise_transfer(
                        models.fresh,
                        tok,
                        chosen,
                        config,
                        sources=train,
                        lr=lr,
                        selections=settings.gen_selections,
                    )
                elif unit == "gen_similarity":
                    run = similarity_vs_gain(
                        models.fresh, tok, chosen, config, sources=train, lr=lr
                    )
                else:
                    raise ValueError(f"generalization has no unit {unit!r}")
                frames.append(run)
            frame = pd.concat(frames, ignore_index=True)
        write_csv(frame, path)


def continual_part(models, tok, tasks: dict, settings: Settings, out: Path, units=()):
    """Table 5: every method of ``settings.cl_methods`` on every order; the references (each task
    alone, all mixed) before the first long order; learning rates chosen on dev data of the
    first two tasks of the first order, stored in ``continual/lrs.json``."""
    if "continual" not in units or unit_file(out, "continual").exists():
        return
    folder = Path(out) / "continual"
    folder.mkdir(parents=True, exist_ok=True)
    lrs = read_json(folder / "lrs.json", {})
    first_two = [tasks[name] for name in settings.orders[0][1][:2]]
    for method in settings.cl_methods:  # one at a time, saved as chosen (resumable)
        source = SHARED_LR.get(method, method)
        if source not in lrs:
            lrs |= choose_lrs(
                models.base(), tok, first_two, [source], settings.cl_lrs, settings.continual
            )
            write_json(folder / "lrs.json", lrs)
    lrs |= {m: lrs[s] for m, s in SHARED_LR.items() if s in lrs}
    config = settings.continual.replace(
        method_lrs=tuple(sorted(lrs.items())), lr=lrs.get("seqft", settings.continual.lr)
    )
    names = list(dict.fromkeys(t for _, order in settings.orders for t in order))
    suite = {name: tasks[name] for name in names}
    sets = start_sets(models.base(), tok, suite, settings, folder)
    short = len(settings.orders[0][1])
    for number, order in settings.orders:
        if len(order) > short:  # the references before the long order
            run_references(models, tok, suite, settings, config, folder)
        sequence = [suite[name] for name in order]
        for method in settings.cl_methods:
            path = folder / f"{method}_order{number}.csv"
            if path.exists():
                continue
            run = continual(
                models.fresh,
                tok,
                sequence,
                method,
                config,
                checkpoint=folder / "checkpoints" / f"{method}_order{number}",
            )
            forgetting = [forgetting_overlap(run, sets).assign(sets="start")]
            if run.sets:
                forgetting.append(forgetting_overlap(run).assign(sets="own"))
            write_csv(
                pd.concat(forgetting).assign(order_number=number),
                folder / f"forgetting_{method}_order{number}.csv",
            )
            frame = run.to_frame().assign(
                **{k: v for k, v in run.summary().items() if k != "method"}
            )
            write_csv(frame.assign(order_number=number), path)
            # The run's result is written: its per-stage checkpoint (a whole model) has no use.
            shutil.rmtree(folder / "checkpoints" / f"{method}_order{number}", ignore_errors=True)
    write_csv(continual_summary(folder), unit_file(out, "continual"))


SUMMARY_COLUMNS = [
    "method",
    "order_number",
    "tasks",
    "CL",
    "FG",
    "BWT",
    "forgetting",
    "trainable_parameters",
    "optimizer_state_bytes",
    "train_seconds",
]


def continual_summary(folder: Path) -> pd.DataFrame:
    """One row per finished (method, order) run, from the CSVs under ``folder``."""
    rows = []
    for path in sorted(Path(folder).glob("*_order*.csv")):
        if path.name.startswith(("references", "forgetting")):
            continue
        frame = pd.read_csv(path)
        rows.append(frame.iloc[0].to_dict() | {"tasks": frame.task.nunique()})
    return pd.DataFrame(rows, columns=SUMMARY_COLUMNS)


def start_sets(model, tok, suite: dict, settings: Settings, folder: Path) -> dict:
    """Each task's top-k neurons on the starting model, kept under ``folder/start_sets``."""
    config = settings.continual
    (folder / "start_sets").mkdir(parents=True, exist_ok=True)
    sets = {}
    for name, task in suite.items():
        path = folder / "start_sets" / f"{name}.pt"
        if not path.exists():
            rel = attribute(
                model,
                tok,
                task.train[: config.n_attribution],
                batch_size=config.batch_size,
                max_length=config.max_length,
                progress=False,
            )
            rel.top_k(config.k).save(path)
        sets[name] = NeuronSet.load(path)
    return sets


def run_references(models, tok, suite: dict, settings: Settings, config, folder: Path) -> None:
    """``references_<n>.csv`` for the longest and the first order's sequence: each task
    fine-tuned alone (the runs of the long sequence's tasks serve the short one too; a short-order
    task outside the long order is run alone for it) and all of a sequence's tasks mixed."""
    short = list(settings.orders[0][1])
    longest = max((order for _, order in settings.orders), key=lambda order: len(order))
    long = list(settings.reference_order or longest)
    longer = folder / f"references_{len(long)}.csv"
    shorter = folder / f"references_{len(short)}.csv"
    if not longer.exists():
        runs = references(models.fresh, tok, [suite[n] for n in long], config)
        write_csv(runs.assign(tasks=len(long)), longer)
    if not shorter.exists():
        alone = pd.read_csv(longer).query("reference == 'per_task'")
        frames = [alone[alone.task.isin(short)]]
        missing = [suite[n] for n in short if n not in long]
        if missing:
            frames.append(references(models.fresh, tok, missing, config, which=("per_task",)))
        frames.append(
            references(models.fresh, tok, [suite[n] for n in short], config, which=("multitask",))
        )
        write_csv(pd.concat(frames, ignore_index=True).assign(tasks=len(short)), shorter)


def attribution_part(models, tok, tasks: dict, settings: Settings, out: Path, units=()):
    """Each method's score beside exact ablation's, for ``agreement_units`` units of a middle
    layer's ``up`` (or ``fc_in``) site and of its ``act`` site, on the original model."""
    path = unit_file(out, "attribution_agreement")
    if "attribution_agreement" not in units or path.exists():
        return
    model = models.original(tasks)
    sites = ffn_sites(model, kinds="all")
    middle = max(s.layer for s in sites) // 2
    chosen = [s for s in sites if s.layer == middle and s.kind in ("up", "fc_in", "act")]
    frames = []
    for name in settings.attribution_tasks:
        data = sample(tasks[name].train, settings.agreement_examples, 1)
        for site in chosen:
            frame = method_agreement(
                model,
                tok,
                data,
                site.name,
                methods=settings.attribution_methods,
                n_units=min(settings.agreement_units, site.n_neurons),
                steps=8,
                force=True,
            )
            frames.append(
                frame.assign(task=name, definition="act" if site.kind == "act" else "linear")
            )
    write_csv(pd.concat(frames, ignore_index=True), path)
