"""Relevance of every FFN neuron on a task's data. Imports every layer below it (``errors``,
``core``, ``tasks``, ``io``, ``neurons``, ``hooks``, ``scoring``).

    run        ``attribute``: validation, provenance, the loop over batches, the ``Relevance``
    methods    the ``Method`` interface; gradient x activation (the paper's), attribution
               patching (grad x act's step with a baseline), activation statistics
    paths      the methods that re-run the model: integrated gradients, exact ablation
    relp       relevance patching: attribution patching with RelP's backward rules
    metrics    the loss a method differentiates: answer NLL, or minus the logit difference
               of minimal pairs (``metric="logit_diff"``)
    state      ``RunningSums``: the sums of a run, the one finite check, the all-reduce and
               checkpoints
    agreement  ``method_agreement``: each method against the exact ablation effect

    rel = tn.attribute(model, tok, data, method=tn.attribution.IntegratedGradients(steps=8))
    rel = tn.attribute(model, tok, data, method="integrated_gradients", steps=8)  # the same
    rel = tn.attribute(model, tok, data, method="attribution_patching",           # contrastive
                       baseline=task.pairs("train"), metric="logit_diff")
"""

from .agreement import method_agreement
from .methods import Activation, AttributionPatching, GradXAct, Method
from .metrics import METRICS
from .paths import ExactAblation, IntegratedGradients
from .relp import RelP, relp_rules
from .run import METHODS, attribute, method_for

__all__ = [
    "METHODS",
    "METRICS",
    "Activation",
    "AttributionPatching",
    "ExactAblation",
    "GradXAct",
    "IntegratedGradients",
    "Method",
    "RelP",
    "attribute",
    "method_agreement",
    "method_for",
    "relp_rules",
]
