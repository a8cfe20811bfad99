"""File formats: how artefacts are stored and exchanged. Imports ``errors`` and ``core`` only.

    storage   atomic safetensors files with JSON metadata (every artefact), ``atomic_write``
              (``atomic_write_all``: a folder's files together), the same bytes in every process
    lape      LAPE's per-layer neuron masks, read and written as plain ``{site: indices}``
    hub       artefact folders on the Hugging Face Hub, read back by the kind stored in the file
    course_files  the course notebooks shipped with the package, found from a wheel or a clone,
              copied into a learner's folder without overwriting their edits

These modules never import the classes they serialise (``NeuronSet``, ``Relevance``): those
classes call them with plain tensors and metadata.
"""
