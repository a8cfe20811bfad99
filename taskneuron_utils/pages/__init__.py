"""What a neuron does. Imports every layer up to ``training`` and ``plots``.

scan         one pass over a data set: ``top_examples``, ``neuron_stats``
running_top  running top-k and moments per neuron over streamed batches (scan's state)
frames       ``Scan``: what a pass returns, as DataFrames
vocab        ``vocab_projection``: the tokens a neuron's write promotes
report       ``neuron_page`` and ``export_neuron_pages`` (Neuronpedia's layout)
"""

from .report import export_neuron_pages, neuron_page
from .scan import neuron_stats, top_examples
from .vocab import vocab_projection

__all__ = ["export_neuron_pages", "neuron_page", "neuron_stats", "top_examples", "vocab_projection"]
