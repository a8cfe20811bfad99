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

from .architectures import (
    FAMILIES,
    Family,
    NeuronLayout,
    NeuronSetMismatchError,
    Site,
    SiteKindError,
    UnsupportedArchitectureError,
    ffn_sites,
    layout_for,
    layout_of,
    model_name,
    register_family,
    site_map,
    weight_fingerprint,
)
from .attribution import AttributionError, Relevance, attribute
from .evaluation import evaluate
from .hooks import Edit, Trace, trace
from .interventions import deactivate, scale
from .loss import AnswerMaskError
from .memory import MemoryEstimate, estimate_memory, estimate_table, measure_peak
from .models import ModelNotAvailableError, cache_dir, load_model
from .neurons import NeuronSet
from .placement import OffloadedWeightsError
from .selection import matched_top, select, shared_core
from .storage import ArtefactFileError
from .tasks import (
    EncodingError,
    Example,
    HubUnavailableError,
    Split,
    Task,
    TaskDataError,
    UnknownTaskError,
    format_prompt,
    load_hub_task,
    load_tasks,
)
from .training import finetune
from . import playground  # tn.playground.neuron_playground: the interactive neuron panel
from . import selection  # tn.selection: contrastive, entropy, exclusive sets, shared core
from . import memory  # tn.memory: estimate_memory's formula, KNOWN_CONFIGS (7B configs offline)

__version__ = "0.1.0"
