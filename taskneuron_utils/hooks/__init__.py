"""Looking inside and intervening, by site name (``layers.3.mlp.up``). Imports ``errors``,
``core``, ``tasks``, ``io`` and ``neurons``.

    tracing        ``trace`` / ``Trace``: keep a site's output or its gradient; ``Edit`` it
    interventions  ``deactivate`` / ``scale``: switch neurons off (or up) inside a ``with``
    baselines      what "off" means: zero, or the mean / median of the activations (``Ablation``)
"""

from .baselines import Ablation, ActivationStats, activation_stats
from .interventions import deactivate, scale
from .tracing import Edit, Trace, trace

__all__ = [
    "Ablation",
    "ActivationStats",
    "Edit",
    "Trace",
    "activation_stats",
    "deactivate",
    "scale",
    "trace",
]
