"""The ``continual`` part of the replication record (the paper's Table 5 analog): run by
``taskneurons replicate --parts continual`` (``experiments.replicate.parts_training``); its
summary (Table 5 beside the paper, the paper's orderings, forgetting vs overlap, the figures)
is ``experiments.replicate.summaries_sections``, kept here under the record's names."""

from taskneuron_utils.experiments.replicate.parts_training import continual_summary
from taskneuron_utils.experiments.replicate.summaries_sections import (
    PAPER_PAIRS,
    forgetting_correlations,
    orderings,
    reference_cl,
    summarize_continual,
    table5,
)

__all__ = [
    "PAPER_PAIRS",
    "continual_summary",
    "forgetting_correlations",
    "orderings",
    "reference_cl",
    "summarize_continual",
    "table5",
]
