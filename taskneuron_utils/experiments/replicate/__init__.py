"""``taskneurons replicate``: the paper's sections as parts of one planned, resumable run, and
its report beside the paper. Inside ``experiments``: it may import every module of the package
below ``experiments`` and the other experiment modules (never ``ui`` or ``cli``); ``cli`` calls
``command``.

    settings        ``Settings`` (every knob of a run), ``quick_settings`` (the committed
                    record's), ``paper_settings`` (the paper's scale), ``smoke_settings``,
                    ``settings_for`` (a profile or preset plus the command line's overrides);
                    ``PARTS`` and each part's ``UNITS``
    sources         ``Models`` (base model, fresh copies to train, the cached "original"),
                    ``load_run_tasks``, atomic writers
    parts_deactivation  the parts original, table1, specificity (``unit_file``)
    parts_training  the parts table2, generalization, continual, attribution
    summaries, summaries_sections   derived tables and figures from the units' files
    plan            memory per part and device (``estimate_memory``), the calibration, the time
                    estimate, the refusal of a part that does not fit (``PlanRefused``)
    runner          ``replicate``: plan, run the missing units, provenance, report
    report, render, settings_table  ``report.md`` / ``report.html``: tables beside the paper,
                    verdicts, settings, provenance, figures
    command         the ``taskneurons replicate`` subcommand's options and checks

    from taskneuron_utils.experiments.replicate import replicate, settings_for
    replicate("runs/smoke", settings_for("quick", preset="smoke"))
"""

from .plan import PlanRefused
from .report import write_report
from .runner import PART_FUNCTIONS, check_parts, replicate
from .settings import (
    PARTS,
    UNITS,
    Settings,
    paper_settings,
    quick_settings,
    settings_for,
    smoke_settings,
)

__all__ = [
    "PARTS",
    "PART_FUNCTIONS",
    "PlanRefused",
    "Settings",
    "UNITS",
    "check_parts",
    "paper_settings",
    "quick_settings",
    "replicate",
    "settings_for",
    "smoke_settings",
    "write_report",
]
