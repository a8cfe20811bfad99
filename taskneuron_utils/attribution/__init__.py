"""Relevance of every FFN neuron on a task's data. Imports every layer below it (``errors``,
``core``, ``tasks``, ``io``, ``neurons``, ``hooks``, ``scoring``).

    run        ``attribute``: validation, provenance, the loop over batches, the ``Relevance``
    methods    the methods, one object each: gradient x activation (the paper's), activation,
               attribution patching, integrated gradients, exact ablation
    state      the running sums of a run, their checkpoints and the one finite check
    agreement  ``method_agreement``: each method against the exact ablation effect
"""

from .agreement import method_agreement
from .run import attribute

__all__ = ["attribute", "method_agreement"]
