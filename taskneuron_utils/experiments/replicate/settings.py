"""Every knob of a replication run in one frozen dataclass, and the three ways to fill it.

``quick_settings()`` are the settings of the committed record (benchmarks/results/replication,
docs/replication.md): the embedded default model, the shipped suite, the sizes the record was
measured with, so that its files are adopted as they are. ``paper_settings(model)`` are the
paper's scale (Llama-2-7b or Bloom-7b1, the hub data sets, k = 10%). ``smoke_settings()``: every
part at toy sizes on the default model, minutes on a laptop CPU. ``settings_for`` applies the
command line's overrides (model, tasks, batch size, dtype) to one of them.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from ..common import ConfigMixin
from ..continual.sequence import (
    CL_METHODS,
    PAPER_ORDERS,
    QUICK_ORDERS,
    QUICK_SEQUENCE_8,
    ContinualConfig,
)
from ..deactivation import DeactivationConfig
from ..detection import DetectionConfig
from ..finetuning import FinetuningConfig
from ..generalization.sweep import GeneralizationConfig
from ..multitask import MultitaskConfig
from ..profiles import PAPER_MODEL, PROFILES
from ..sweeps import BudgetConfig
from ...tasks import PAPER_TASKS

# The units (one result file each) of every part, in the order they run. A part is one section
# of the paper; a unit is the grain a kill can lose.
UNITS: dict[str, tuple[str, ...]] = {
    "original": ("original",),
    "table1": (
        "deact_mt_k10",
        "deact_mt_k02",
        "deact_base_k10",
        "table1_seeds_linear",
        "table1_seeds_act",
        "k_sweep_linear",
        "k_sweep_act",
    ),
    "specificity": ("deact_mt_kinds", "deact_mt_excl")
    + tuple(f"specific_{d}_k{p}" for d in ("linear", "act") for p in ("01", "02", "05", "10")),
    "table2": ("finetune", "finetune_seeds", "budget"),
    "generalization": (
        "gen_sweep_cls",
        "gen_sweep_gen",
        "gen_pairwise",
        "gen_similarity",
        "gen_pairwise_specific",
    ),
    "continual": ("continual",),
    "attribution": ("attribution_agreement",),
}
PART_TITLES = {
    "original": 'the multi-task fine-tuned "original" model',
    "table1": "Table 1: task neurons off vs random neurons off, with intervals and over k",
    "specificity": "specificity: task-specific or merely important?",
    "table2": "Table 2: training only the task neurons, over budgets",
    "generalization": "Section 4: proportion sweep, pairwise transfer, parameter similarity",
    "continual": "Table 5: continual learning on the 4-task and 8-task sequences",
    "attribution": "attribution methods against exact ablation",
}
PARTS = tuple(UNITS)
PROFILE_NAMES = ("quick", "paper")
PRESETS = ("smoke",)


@dataclass(frozen=True)
class Settings(ConfigMixin):
    """What a replication run does. Task names are those of ``source`` ("quick": the shipped
    suite; "paper": the hub data sets, read from ``data_dir`` when given). ``units``: the units
    run per part (a preset runs fewer). Sizes in examples, steps and tokens."""

    profile: str
    preset: str | None
    model: str | None
    source: str
    data_dir: str | None
    dtype: str | None
    device_map: str | None
    multitask: MultitaskConfig
    detection: DetectionConfig
    deactivation: DeactivationConfig
    table1: DeactivationConfig
    k_sweep: DeactivationConfig
    ks: tuple[float, ...]
    k_sweep_tasks: tuple[str, ...]
    kinds_tasks: tuple[str, ...]
    specific: DeactivationConfig
    specific_tasks: tuple[str, ...]
    specific_methods: tuple[str, ...]
    core_ks: tuple[float, ...]
    finetuning: FinetuningConfig
    finetune_tasks: tuple[str, ...]
    finetune_seeds: tuple[int, ...]
    budget: BudgetConfig
    budgets: tuple[int, ...]
    generalization: GeneralizationConfig
    gen_selections: tuple[str, ...]
    continual: ContinualConfig
    cl_methods: tuple[str, ...]
    orders: tuple[tuple[int, tuple[str, ...]], ...]
    cl_lrs: tuple[float, ...]
    attribution_tasks: tuple[str, ...]
    attribution_methods: tuple[str, ...]
    agreement_units: int
    agreement_examples: int
    units: tuple[tuple[str, tuple[str, ...]], ...] = tuple(UNITS.items())
    # Table 5's per-task and multi-task references are trained in this order (each task's seed
    # follows its position); empty: the longest order's.
    reference_order: tuple[str, ...] = ()

    @property
    def tasks(self) -> tuple[str, ...]:
        """The tasks of Tables 1 and 2: those of the multi-task mixture."""
        return self.multitask.tasks

    def units_of(self, part: str) -> tuple[str, ...]:
        return dict(self.units).get(part, ())

    def all_tasks(self) -> list[str]:
        """Every task some part of this run needs, once, in order."""
        names = [*self.tasks, *self.generalization.group_tasks(), *self.attribution_tasks]
        names += [t for _, order in self.orders for t in order]
        return list(dict.fromkeys(names))


def quick_settings() -> Settings:
    """The committed record's settings (benchmarks/replication*.py as of 2026-11-29)."""
    quick = PROFILES["quick"]
    multitask = quick.multitask
    return Settings(
        profile="quick",
        preset=None,
        model=None,
        source="quick",
        data_dir=None,
        dtype=None,
        device_map=None,
        multitask=multitask,
        detection=quick.detection.replace(n_attribution=32),
        deactivation=quick.deactivation.replace(n_eval=48, random_seeds=(0, 1, 2)),
        table1=quick.deactivation.replace(n_eval=150, random_seeds=tuple(range(10)), others=False),
        k_sweep=quick.deactivation.replace(n_eval=32, random_seeds=(0, 1, 2)),
        ks=(0.005, 0.01, 0.02, 0.05, 0.1, 0.2),
        k_sweep_tasks=("product_sentiment", "news_topic", "last_word"),
        kinds_tasks=("product_sentiment", "addition"),
        specific=quick.deactivation.replace(n_eval=32, random_seeds=tuple(range(10)), others=True),
        specific_tasks=("product_sentiment", "news_topic", "country_continent", "last_word"),
        specific_methods=("top_k", "contrastive", "entropy", "exclusive"),
        core_ks=(0.02, 0.10),
        finetuning=quick.finetuning.replace(
            steps=12, batch_size=4, examples=200, n_dev=24, n_eval=48, lrs=(1e-4, 1e-3)
        ),
        finetune_tasks=("product_sentiment", "country_continent", "addition", "last_word"),
        finetune_seeds=(1, 2),
        budget=BudgetConfig(
            examples=200, batch_size=4, lr=1e-3, full_lr=1e-4, seeds=(0, 1), n_dev=16, n_eval=24
        ).replace(dev_every=8),
        budgets=(2, 4, 8, 16, 32),
        generalization=quick.generalization.replace(
            proportions=(0.1, 0.3, 0.5, 0.7, 1.0),
            random_seeds=(0, 1, 2),
            n_attribution=32,
            examples=200,
            steps=12,
            batch_size=4,
            lrs=(1e-4, 1e-3),
            full_lrs=(1e-5, 1e-4),
            n_dev=24,
            n_eval=32,
            pairwise_p=0.1,
        ),
        gen_selections=("contrastive", "entropy"),
        continual=quick.continual.replace(
            examples=64,
            steps=8,
            batch_size=4,
            n_eval=48,
            n_dev=24,
            n_attribution=16,
            wncft_samples=64,
            lora_r=4,
            ewc_samples=16,
            replay_per_task=8,
            max_length=128,
            eval_upcoming=False,
        ),
        cl_methods=tuple(CL_METHODS),
        orders=tuple((i, QUICK_ORDERS[i]) for i in (1, 2, 3, 4)),
        reference_order=QUICK_SEQUENCE_8,
        cl_lrs=(1e-4, 1e-3),
        attribution_tasks=multitask.tasks,
        attribution_methods=("grad_x_act", "attribution_patching", "integrated_gradients"),
        agreement_units=12,
        agreement_examples=1,
    )


def paper_settings(model: str | None = None) -> Settings:
    """The paper's scale: its model, the twelve hub tasks of Tables 1 and 2, k = 10%, whole
    training splits for detection, the Table 5 benchmarks in the paper's orders. Sizes the paper
    does not state are ours (the report's settings table says which)."""
    paper = PROFILES["paper"]
    model = model or PAPER_MODEL
    quick = quick_settings()
    deact = paper.deactivation.replace(n_eval=500, random_seeds=(0, 1, 2), batch_size=8)
    training = dict(max_length=512, batch_size=8, examples=1000, steps=125)
    return quick.replace(
        profile="paper",
        model=model,
        source="paper",
        dtype="auto",
        device_map="auto",
        multitask=paper.multitask.replace(model=model, examples=1000, steps=750, lr=2e-5),
        detection=paper.detection.replace(model=model, n_attribution=1000),
        deactivation=deact,
        table1=deact.replace(n_eval=None, random_seeds=tuple(range(10)), others=False),
        k_sweep=deact.replace(n_eval=200),
        k_sweep_tasks=("sst2", "mnli", "xsum"),
        kinds_tasks=("sst2", "sciqa"),
        specific=deact.replace(n_eval=200, random_seeds=tuple(range(10))),
        specific_tasks=("amazon_food", "mnli", "sciqa", "xsum"),
        finetuning=paper.finetuning.replace(lrs=(1e-5, 1e-4), n_dev=200, n_eval=500, **training),
        finetune_tasks=PAPER_TASKS,
        budget=quick.budget.replace(
            examples=1000, batch_size=8, lr=1e-4, full_lr=1e-5, n_dev=200, n_eval=500
        ).replace(max_length=512, dev_every=32),
        budgets=(8, 16, 32, 64, 128),
        generalization=paper.generalization,
        continual=paper.continual.replace(eval_upcoming=False),
        orders=tuple(PAPER_ORDERS.items()),
        reference_order=(),
        cl_lrs=(1e-5, 1e-4),
        attribution_tasks=("sst2", "mnli", "sciqa"),
        agreement_units=24,
        agreement_examples=8,
    )


def smoke_settings() -> Settings:
    """Every part at toy sizes on the default model: the full report shape in minutes."""
    quick = quick_settings()
    two = ("product_sentiment", "addition")
    tiny = quick.deactivation.replace(n_eval=4, random_seeds=(0,), progress=False)
    order = ("news_topic", "product_sentiment")
    return quick.replace(
        preset="smoke",
        multitask=quick.multitask.replace(tasks=two, examples=8, steps=2, batch_size=4),
        detection=quick.detection.replace(n_attribution=4, progress=False),
        deactivation=tiny,
        table1=tiny.replace(others=False),
        k_sweep=tiny.replace(others=False),
        ks=(0.02, 0.1),
        k_sweep_tasks=two,
        kinds_tasks=two,
        specific=tiny,
        specific_tasks=two,
        specific_methods=("top_k", "exclusive"),
        core_ks=(0.10,),
        finetuning=quick.finetuning.replace(
            steps=2, batch_size=2, examples=8, n_dev=2, n_eval=4, lrs=(1e-3,), progress=False
        ),
        finetune_tasks=two,
        finetune_seeds=(1,),
        budget=quick.budget.replace(
            examples=8, batch_size=2, seeds=(0,), n_dev=2, n_eval=4, dev_every=None
        ),
        budgets=(1, 2),
        generalization=quick.generalization.replace(
            groups=(("classification", ("product_sentiment",), ("film_sentiment",)),),
            proportions=(0.1, 1.0),
            random_seeds=(0,),
            n_attribution=4,
            examples=8,
            steps=2,
            batch_size=2,
            lrs=(1e-3,),
            full_lrs=(1e-4,),
            n_dev=2,
            n_eval=4,
            progress=False,
        ),
        continual=quick.continual.replace(
            examples=8,
            steps=2,
            batch_size=2,
            n_eval=2,
            n_dev=2,
            n_attribution=4,
            wncft_samples=8,
            ewc_samples=4,
            replay_per_task=2,
            progress=False,
        ),  # fmt: skip
        cl_methods=("seqft", "ncft"),
        orders=((1, order), (4, order + ("entity_type",))),
        reference_order=(),
        cl_lrs=(1e-3,),
        attribution_tasks=("product_sentiment",),
        attribution_methods=("grad_x_act", "attribution_patching"),
        agreement_units=4,
        agreement_examples=1,
        units=tuple(
            (part, units[:1] + tuple(u for u in units if u in SMOKE_EXTRA))
            for part, units in UNITS.items()
        ),
    )


# Beyond each part's first unit, the smoke preset runs one unit of every other shape (per-example
# intervals, a k sweep, a budget sweep, the pairwise and similarity runs).
SMOKE_EXTRA: tuple[str, ...] = ("table1_seeds_linear", "k_sweep_linear", "specific_linear_k10")
SMOKE_EXTRA += ("budget", "gen_pairwise", "gen_similarity")


def settings_for(
    profile: str = "quick",
    *,
    preset: str | None = None,
    model: str | None = None,
    tasks: tuple[str, ...] | None = None,
    data_dir: str | None = None,
    batch_size: int | None = None,
    dtype: str | None = None,
) -> Settings:
    """The settings of one run: the profile's (or the preset's, on the quick profile's task
    source), with the command line's overrides. ``tasks`` replaces Table 1 / Table 2's tasks
    (and narrows every subset to it); ``batch_size`` caps every training and attribution batch."""
    if profile not in PROFILE_NAMES:
        raise ValueError(f"profile must be one of {PROFILE_NAMES}, got {profile!r}")
    if preset is not None and preset not in PRESETS:
        raise ValueError(f"preset must be one of {PRESETS}, got {preset!r}")
    settings = (
        smoke_settings()
        if preset == "smoke"
        else paper_settings(model)
        if profile == "paper"
        else quick_settings()
    )
    if preset == "smoke" and profile == "paper":
        settings = _smoke_on_paper(settings)
    if model is not None:
        settings = _with_model(settings, model)
    if data_dir is not None:
        settings = settings.replace(data_dir=str(data_dir))
    if tasks:
        settings = _with_tasks(settings, tuple(tasks))
    if batch_size is not None:
        settings = with_batch_size(settings, batch_size)
    if dtype is not None:
        settings = settings.replace(dtype=dtype)
    return settings


def _smoke_on_paper(smoke: Settings) -> Settings:
    """The smoke sizes on the paper's task source: the hub tasks (two of Tables 1 and 2, one
    group of Section 4, the first orders of Table 5), for the paper path's end-to-end test."""
    two = ("sst2", "sciqa")
    names = {"product_sentiment": "sst2", "addition": "sciqa"}
    return smoke.replace(
        profile="paper",
        source="paper",
        multitask=smoke.multitask.replace(tasks=two, source="paper"),
        k_sweep_tasks=two,
        kinds_tasks=two,
        specific_tasks=two,
        finetune_tasks=two,
        generalization=smoke.generalization.replace(
            groups=(("classification", ("qqp",), ("paws",)),)
        ),
        orders=((1, PAPER_ORDERS[1][:2]), (4, (*PAPER_ORDERS[1][:2], "mnli"))),
        attribution_tasks=tuple(names[t] for t in smoke.attribution_tasks),
    )


def _with_model(settings: Settings, model: str) -> Settings:
    return settings.replace(
        model=model,
        multitask=settings.multitask.replace(model=model),
        detection=settings.detection.replace(model=model),
    )


def _with_tasks(settings: Settings, tasks: tuple[str, ...]) -> Settings:
    def narrow(subset: tuple[str, ...]) -> tuple[str, ...]:
        kept = tuple(t for t in subset if t in tasks)
        return kept or tasks[: max(1, min(len(subset), len(tasks)))]

    return settings.replace(
        multitask=settings.multitask.replace(tasks=tasks),
        k_sweep_tasks=narrow(settings.k_sweep_tasks),
        kinds_tasks=narrow(settings.kinds_tasks),
        specific_tasks=narrow(settings.specific_tasks),
        finetune_tasks=narrow(settings.finetune_tasks),
        attribution_tasks=narrow(settings.attribution_tasks),
    )


def with_batch_size(settings: Settings, cap: int) -> Settings:
    """Every batch (attribution, training, evaluation) at most ``cap`` examples."""

    def capped(config, *fields):
        return config.replace(**{f: min(getattr(config, f), cap) for f in fields})

    return settings.replace(
        multitask=capped(settings.multitask, "batch_size"),
        detection=capped(settings.detection, "batch_size"),
        deactivation=capped(settings.deactivation, "batch_size"),
        table1=capped(settings.table1, "batch_size"),
        k_sweep=capped(settings.k_sweep, "batch_size"),
        specific=capped(settings.specific, "batch_size"),
        finetuning=capped(settings.finetuning, "batch_size", "eval_batch_size"),
        budget=capped(settings.budget, "batch_size", "eval_batch_size"),
        generalization=capped(settings.generalization, "batch_size", "eval_batch_size"),
        continual=capped(settings.continual, "batch_size", "eval_batch_size"),
    )


def settings_dict(settings: Settings) -> dict:
    """The settings as JSON-able data (the report's and the log's record of them)."""
    return dataclasses.asdict(settings)
