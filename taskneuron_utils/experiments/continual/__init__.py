"""Continual learning (the paper's Table 5 and App. A.2).

sequence        ``continual``: a task sequence trained in order, ``ContinualConfig``,
                ``cl_metrics``; the paper's orders and numbers
methods         ``CLMethod`` (the interface) and the baselines: SeqFT, Replay, EWC, SeqLoRA,
                O-LoRA
neuron_methods  NCFT, random neurons and W-NCFT
references      the upper references (per-task fine-tuning) and ``choose_lrs`` on dev data
"""

from .methods import CLMethod
from .references import choose_lrs, references
from .sequence import (
    CL_METHODS,
    PAPER_ORDERS,
    PAPER_TABLE5,
    QUICK_ORDERS,
    QUICK_SEQUENCE_4,
    QUICK_SEQUENCE_8,
    ContinualConfig,
    ContinualResult,
    cl_metrics,
    continual,
    forgetting_overlap,
    make_method,
)

__all__ = [
    "CLMethod",
    "CL_METHODS",
    "ContinualConfig",
    "ContinualResult",
    "PAPER_ORDERS",
    "PAPER_TABLE5",
    "QUICK_ORDERS",
    "QUICK_SEQUENCE_4",
    "QUICK_SEQUENCE_8",
    "choose_lrs",
    "cl_metrics",
    "continual",
    "forgetting_overlap",
    "make_method",
    "references",
]
