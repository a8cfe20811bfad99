"""The core: what a model is to the toolkit. Imports only ``errors`` (and third-party code).

families    the family table: where each architecture keeps its blocks and FFN linears
sites       ``Site``: one group of FFN neurons of a block and the parameters each owns
layout      ``ffn_sites``, ``NeuronLayout`` / ``layout_of``, kind names, model identity
            (``model_name``, ``weight_fingerprint``)
identity    one content hash (``content_hash``) for files, data and weights
wrappers    nnsight's ``LanguageModel`` and TransformerLens' bridge, unwrapped
placement   models split over devices or offloaded (``input_device``, ``check_in_memory``)
parallel    ``torch.distributed`` sums and ranks, for attribution and training
models      ``load_model``: the embedded default model, a hub id or a local path
"""

from .families import FAMILIES, Family, family_of, register_family
from .layout import (
    NeuronLayout,
    ffn_sites,
    layout_difference,
    layout_for,
    layout_of,
    model_name,
    site_map,
    weight_fingerprint,
)
from .models import cache_dir, load_model
from .sites import Site

__all__ = [
    "FAMILIES",
    "Family",
    "NeuronLayout",
    "Site",
    "cache_dir",
    "family_of",
    "ffn_sites",
    "layout_difference",
    "layout_for",
    "layout_of",
    "load_model",
    "model_name",
    "register_family",
    "site_map",
    "weight_fingerprint",
]
