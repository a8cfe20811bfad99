"""The course's exercise checks and reference solutions (notebooks 00-06).

    checks     ``check_jaccard``, ``check_relevance``, ``check_top_k``, ``check_dominance``,
               ``check_cl_metrics``: the learner's function against the reference on generated
               inputs, one line saying what differs
    solutions  the reference answers the notebooks' folded solutions show, tested against the
               package's own implementations

A layer beside ``ui``, above ``experiments``: it may import everything below (``experiments``
included), and nothing of ours imports it; only the notebooks and the tests do.
"""

from . import solutions as solutions
from .checks import Check as Check
from .checks import check_cl_metrics as check_cl_metrics
from .checks import check_dominance as check_dominance
from .checks import check_jaccard as check_jaccard
from .checks import check_relevance as check_relevance
from .checks import check_top_k as check_top_k
