"""taskneuron_utils: find, verify and use the task-specific neurons of LLMs.

    import taskneuron_utils as tn
    model, tok = tn.load_model()                  # embedded default model, offline
    sites = tn.ffn_sites(model)                   # every FFN neuron site, by stable name

See README.md and the numbered notebooks for the full tour.
"""

from .architectures import (
    FAMILIES,
    Family,
    Site,
    UnsupportedArchitectureError,
    ffn_sites,
    register_family,
    site_map,
)
from .models import ModelNotAvailableError, cache_dir, load_model, model_name, weight_fingerprint

__version__ = "0.1.0"
