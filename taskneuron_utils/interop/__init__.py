"""Where users already work: LAPE's neuron files (``lape``), the Hugging Face Hub (``hub``),
lm-evaluation-harness (``lm_eval``, needs the ``lm-eval`` extra).

``NeuronSet`` exposes the first two as methods (``from_lape`` / ``to_lape`` / ``save_lape``,
``push_to_hub`` / ``from_hub``); these modules hold the logic.
"""

from . import hub, lape

__all__ = ["hub", "lape"]
