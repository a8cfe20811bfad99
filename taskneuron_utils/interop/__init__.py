"""Where users already work: lm-evaluation-harness (``harness``: a model with neurons switched
off, registered as ``taskneurons``; needs the ``lm-eval`` extra) and a task exported as a harness
task (``harness_export``). Imports every layer up to ``training``.

The file formats of other tools live in ``io`` (``io.lape``, ``io.hub``); ``interop.lape`` and
``interop.hub`` still name them, for code written before the move.
"""

from ..io import hub, lape

__all__ = ["hub", "lape"]
