"""The ``specific_*`` units of the replication record (issue 15): every selection method's sets
at k = 1, 2, 5, 10% under both neuron definitions, on every task, with the shared core. Run by
``taskneurons replicate --parts specificity`` (``experiments.replicate``); this module keeps the
record's names (``run_specific``, ``summarize_specific``) over the quick settings, which a
caller may replace (``DETECTION``, ``CONFIG``, ``TASKS``, ``METHODS``)."""

from pathlib import Path

from taskneuron_utils.experiments.replicate import quick_settings
from taskneuron_utils.experiments.replicate.parts_deactivation import UNITS_SPECIFIC, specific_unit
from taskneuron_utils.experiments.replicate.sources import Models, load_run_tasks
from taskneuron_utils.experiments.replicate.summaries import summarize_specific

QUICK = quick_settings()
DETECTION = QUICK.detection
CONFIG = QUICK.specific
TASKS = QUICK.specific_tasks
METHODS = QUICK.specific_methods
SPECIFIC_PARTS = UNITS_SPECIFIC


def run_specific(part: str, out: Path, model=None, tok=None):
    """One unit on the multi-task model (or ``model``, ``tok``): writes
    ``<part>_examples.csv.gz`` and returns the rows aggregated per condition."""
    settings = QUICK.replace(
        detection=DETECTION, specific=CONFIG, specific_tasks=TASKS, specific_methods=METHODS
    )
    tasks = load_run_tasks(settings, [*settings.tasks, *TASKS])
    if model is None:
        models = Models(settings)
        model, tok = models.original(tasks), models.tok
    return specific_unit(model, tok, tasks, settings, Path(out), part)


__all__ = ["SPECIFIC_PARTS", "run_specific", "summarize_specific"]
