"""The redesign changed no result: outputs equal those recorded with the code before it.

``tests/reference/`` holds files written by the pre-redesign package (commit 33bf499) on the
real default model: the main job's overlap and layer CSVs (3 tasks, 16 examples each) and the
top-5% neuron set of the shipped ``addition`` task on its first 16 training examples.
"""

import subprocess
import sys
from pathlib import Path

import pytest
import torch

import taskneuron_utils as tn

REFERENCE = Path(__file__).parent / "reference"
pytestmark = pytest.mark.slow


def test_main_job_overlap_is_bit_identical(tmp_path):
    out = tmp_path / "main"
    result = subprocess.run(
        [sys.executable, "-m", "taskneuron_utils.cli", "main", "--out", str(out), "--n", "16",
         "--tasks", "product_sentiment", "film_sentiment", "news_topic"],
        capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    assert (out / "overlap.csv").read_bytes() == (REFERENCE / "main_overlap.csv").read_bytes()
    assert (out / "layers.csv").read_bytes() == (REFERENCE / "main_layers.csv").read_bytes()


def test_neuron_set_of_the_suite_is_bit_identical(default_model):
    model, tok = default_model
    reference = tn.NeuronSet.load(REFERENCE / "addition_k005.neurons.safetensors", model=model)
    rel = tn.attribute(model, tok, tn.load_tasks()["addition"].train[:16], batch_size=8,
                       progress=False)
    ours = rel.top_k(0.05)
    assert len(ours) == len(reference) > 0
    for site in reference.sizes:
        assert torch.equal(ours.indices[site], reference.indices[site]), site
