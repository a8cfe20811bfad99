"""Interactive notebook tools (ipywidgets). The top layer beside ``cli``: it may import
everything, ``experiments`` included.

    conditions  the playground's plain functions (all on / task off / random off), testable
    playground  ``neuron_playground``: switch a task's neurons off and watch the answer change
    widgets     explorers over overlap, deactivation, generalization, continual, neuron pages
"""

from . import conditions as conditions
from . import playground as playground
from . import widgets as widgets
