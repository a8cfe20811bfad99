"""The record's Table 1 with intervals, k sweeps and budget sweep: the units
``table1_seeds_<def>``, ``k_sweep_<def>`` and ``budget`` of ``taskneurons replicate`` (parts
table1 and table2; ``experiments.replicate``). Kept for the names the tests read: the quick
profile's multi-task config, the detection config, and the held-out detection tasks."""

from taskneuron_utils.experiments.multitask import held_out
from taskneuron_utils.experiments.replicate import quick_settings

QUICK = quick_settings()
MULTITASK = QUICK.multitask
DETECTION = QUICK.detection


def detection_tasks(tasks: dict) -> dict:
    """The tasks to detect neurons with on the multi-task model: their training splits without
    the examples that model was trained on."""
    return held_out(tasks, MULTITASK)
