"""taskneuron_utils: find, verify and use the task-specific neurons of LLMs.

    import taskneuron_utils as tn
    model, tok = tn.load_model()                        # embedded default model, offline
    suite = tn.load_tasks()                             # the shipped task suite
    rel = tn.attribute(model, tok, suite["product_sentiment"].train[:128])
    neurons = rel.top_k(0.10)                           # the task-specific neurons
    with tn.deactivate(model, neurons):
        print(tn.evaluate(model, tok, suite["product_sentiment"].test)["score"])

See README.md and the numbered notebooks for the full tour.
"""

import importlib
import warnings

from . import errors
from .attribution import attribute, method_agreement
from .core import Site, ffn_sites, layout_of, load_model
from .hooks import Ablation, Edit, Trace, activation_stats, deactivate, scale, trace
from .interop.harness_export import export_lm_eval_task
from .memory import estimate_memory
from .neurons import NeuronSet, Relevance, select, shared_core
from .pages import export_neuron_pages, neuron_page, neuron_stats, top_examples, vocab_projection
from .scoring import evaluate
from .tasks import Example, Split, Task, format_prompt, load_hub_task, load_tasks
from .training import finetune
from .training import TrainConfig

# The layers, lowest first, reachable as tn.<name> (README "Layout"; tests/test_layering.py).
from . import core as core
from . import tasks as tasks
from . import io as io
from . import neurons as neurons
from . import hooks as hooks
from . import scoring as scoring
from . import attribution as attribution
from . import training as training
from . import plots as plots
from . import memory as memory
from . import pages as pages
from . import interop as interop
from . import experiments as experiments
from . import ui as ui

# The one place the version is written: pyproject.toml reads it from here (setuptools' attr:),
# and CHANGELOG.md has a section for it.
__version__ = "0.1.0"

# The front door: the verbs and types of the tour (README, notebook 00). What `from
# taskneuron_utils import *` gives, what the API reference documents (docs/api/, checked by
# tests/test_docs.py) and what type checkers treat as re-exported. Everything else is reached
# through its layer: tn.core (families, layouts, identity), tn.errors, tn.memory, tn.pages, ...
__all__ = [
    "__version__",
    "errors",
    # a model and its neurons
    "load_model",
    "ffn_sites",
    "Site",
    "layout_of",
    # tasks
    "load_tasks",
    "load_hub_task",
    "Task",
    "Split",
    "Example",
    "format_prompt",
    # relevance and neuron sets
    "attribute",
    "Relevance",
    "NeuronSet",
    "select",
    "shared_core",
    "method_agreement",
    # looking inside and intervening
    "trace",
    "Trace",
    "Edit",
    "deactivate",
    "scale",
    "Ablation",
    "activation_stats",
    # evaluation and training
    "evaluate",
    "finetune",
    "TrainConfig",
    # what a neuron does
    "top_examples",
    "neuron_stats",
    "vocab_projection",
    "neuron_page",
    "export_neuron_pages",
    # other tools, memory
    "export_lm_eval_task",
    "estimate_memory",
]

# Names the facade held before the layers (0.1.0 notebooks and scripts): they still work, with a
# DeprecationWarning that names their home. {old name: (module, attribute)}.
_MOVED = {
    **{
        name: ("taskneuron_utils.core", name)
        for name in (
            "cache_dir",
            "site_map",
            "layout_for",
            "NeuronLayout",
            "model_name",
            "weight_fingerprint",
            "Family",
            "FAMILIES",
            "register_family",
        )
    },
    **{
        name: ("taskneuron_utils.errors", name)
        for name in (
            "ModelNotAvailableError",
            "UnsupportedArchitectureError",
            "SiteKindError",
            "NeuronSetMismatchError",
            "OffloadedWeightsError",
            "TaskDataError",
            "UnknownTaskError",
            "HubUnavailableError",
            "EncodingError",
            "AttributionError",
            "AnswerMaskError",
            "ArtefactFileError",
        )
    },
    "ActivationStats": ("taskneuron_utils.hooks", "ActivationStats"),
    "matched_top": ("taskneuron_utils.neurons", "matched_top"),
    "selection": ("taskneuron_utils.neurons", "selection"),
    "playground": ("taskneuron_utils.ui", "playground"),  # a module: tn.ui.playground
    "estimate_table": ("taskneuron_utils.memory", "estimate_table"),
    "measure_peak": ("taskneuron_utils.memory", "measure_peak"),
    "MemoryEstimate": ("taskneuron_utils.memory", "MemoryEstimate"),
}


def __getattr__(name: str):
    if name in _MOVED:
        module, attribute = _MOVED[name]
        home = module.removeprefix("taskneuron_utils")
        warnings.warn(
            f"tn.{name} moved to tn{home}.{attribute}; the old name will be removed",
            DeprecationWarning,
            stacklevel=2,
        )
        return getattr(importlib.import_module(module), attribute)
    raise AttributeError(f"module 'taskneuron_utils' has no attribute {name!r}")
