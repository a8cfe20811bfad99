"""The redesign changed no result: outputs equal those recorded with the code before it.

``tests/reference/`` holds files written by the pre-redesign package (commit 33bf499) on the
real default model: the main job's overlap and layer CSVs (3 tasks, 16 examples each) and the
top-5% neuron set of the shipped ``addition`` task on its first 16 training examples. The main
job's CSVs are compared in ``test_cli.py::test_main_job_writes_figures_and_summary``, which runs
that job anyway.
"""

from pathlib import Path

import pytest
import torch

import taskneuron_utils as tn

REFERENCE = Path(__file__).parent / "reference"
# slow: the real default model; bit for bit: with the thread count the references were recorded with
pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("recorded_threads")]


def test_neuron_set_of_the_suite_is_bit_identical(default_model):
    model, tok = default_model
    reference = tn.NeuronSet.load(REFERENCE / "addition_k005.neurons.safetensors", model=model)
    rel = tn.attribute(
        model, tok, tn.load_tasks()["addition"].train[:16], batch_size=8, progress=False
    )
    ours = rel.top_k(0.05)
    assert len(ours) == len(reference) > 0
    for site in reference.sizes:
        assert torch.equal(ours.indices[site], reference.indices[site]), site


def test_relevance_on_the_default_model_is_bit_identical_to_before_the_layers(default_model):
    """grad x act on the real default model, every linear site and the act sites, against the
    digests the package wrote before the layer folders (tests/reference/relevance_digests.json)."""
    from test_attribution_methods import DIGESTS, relevance_digest

    model, tok = default_model
    data = tn.load_tasks()["addition"].train[:16]
    found = {
        "grad_x_act": relevance_digest(tn.attribute(model, tok, data, progress=False)),
        "grad_x_act/act": relevance_digest(
            tn.attribute(model, tok, data, kinds="act", progress=False)
        ),
    }
    assert found == DIGESTS["default"]
