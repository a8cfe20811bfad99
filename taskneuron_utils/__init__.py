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

from .core.layout import (
    FAMILIES,
    Family,
    NeuronLayout,
    Site,
    ffn_sites,
    layout_for,
    layout_of,
    model_name,
    register_family,
    site_map,
    weight_fingerprint,
)
from .errors import NeuronSetMismatchError, SiteKindError, UnsupportedArchitectureError
from .attribution.run import Relevance, attribute
from .errors import AttributionError
from .hooks.baselines import Ablation, ActivationStats, activation_stats
from .scoring.evaluation import evaluate
from .hooks.tracing import Edit, Trace, trace
from .interop.harness_export import export_lm_eval_task
from .hooks.interventions import deactivate, scale
from .errors import AnswerMaskError
from .memory.estimate import MemoryEstimate, estimate_memory, estimate_table, measure_peak
from .attribution.agreement import method_agreement
from .core.models import cache_dir, load_model
from .errors import ModelNotAvailableError
from .neurons.neuron_set import NeuronSet
from .pages.scan import neuron_stats, top_examples
from .pages.report import export_neuron_pages, neuron_page
from .pages.vocab import vocab_projection
from .errors import OffloadedWeightsError
from .neurons.selection import matched_top, select, shared_core
from .errors import ArtefactFileError
from .tasks import Example, Split, Task, format_prompt, load_hub_task, load_tasks
from .errors import EncodingError, HubUnavailableError, TaskDataError, UnknownTaskError
from .training.finetuning import finetune
from .ui import playground  # tn.playground.neuron_playground: the interactive neuron panel
from .neurons import selection  # tn.selection: contrastive, entropy, exclusive sets, shared core
from .memory import (
    estimate as memory,
)  # tn.memory: estimate_memory's formula, KNOWN_CONFIGS (7B configs offline)
from . import interop  # tn.interop: LAPE files, the Hub, lm-evaluation-harness

# The one place the version is written: pyproject.toml reads it from here (setuptools' attr:),
# and CHANGELOG.md has a section for it.
__version__ = "0.1.0"

# The public API: what `from taskneuron_utils import *` gives, what the API reference documents
# (docs/api/, checked by tests/test_docs.py) and what type checkers treat as re-exported.
__all__ = [
    "__version__",
    # models and their neurons
    "load_model",
    "cache_dir",
    "ModelNotAvailableError",
    "ffn_sites",
    "Site",
    "site_map",
    "layout_of",
    "layout_for",
    "NeuronLayout",
    "model_name",
    "weight_fingerprint",
    "Family",
    "FAMILIES",
    "register_family",
    "UnsupportedArchitectureError",
    "SiteKindError",
    "NeuronSetMismatchError",
    "OffloadedWeightsError",
    # tasks
    "load_tasks",
    "load_hub_task",
    "Task",
    "Split",
    "Example",
    "format_prompt",
    "TaskDataError",
    "UnknownTaskError",
    "HubUnavailableError",
    "EncodingError",
    # relevance, neuron sets, selections
    "attribute",
    "Relevance",
    "AttributionError",
    "AnswerMaskError",
    "NeuronSet",
    "activation_stats",
    "ActivationStats",
    "method_agreement",
    "ArtefactFileError",
    "select",
    "matched_top",
    "shared_core",
    # looking inside and intervening
    "trace",
    "Trace",
    "Edit",
    "deactivate",
    "scale",
    "Ablation",
    # evaluation and training
    "evaluate",
    "finetune",
    # other tools (tn.interop)
    "export_lm_eval_task",
    # what a neuron does
    "top_examples",
    "neuron_stats",
    "vocab_projection",
    "neuron_page",
    "export_neuron_pages",
    # memory
    "estimate_memory",
    "estimate_table",
    "measure_peak",
    "MemoryEstimate",
    # modules
    "playground",
    "selection",
    "memory",
    "interop",
]
