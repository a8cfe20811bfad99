"""Shared fixtures: the embedded default model (loaded once per session), its tokenizer alone,
and a tiny random Llama.

The fast inner loop is ``python -m pytest -m "not slow"``: every test that uses the real default
model (the ``default_model`` fixture, directly or through another fixture) is marked ``slow``
here, and the notebook and browser tests carry the mark themselves. ``default_tok`` reads only
the tokenizer files of the default model's cache folder (built once, on first use), so the
tiny-model tests that share its vocabulary stay in the fast loop.
"""

import os

import pytest
import torch
import transformers

import taskneuron_utils as tn


# Tests that run the real default model in a subprocess, where no fixture shows it. Their
# modules may mark them themselves; this list keeps the fast loop fast meanwhile.
REAL_MODEL_IN_A_SUBPROCESS = {
    "test_cli.py": {
        "test_main_job_writes_figures_and_summary",
        "test_detect_command",
        "test_sites_and_tasks_commands",
    },
    "test_models.py": {"test_loads_offline_in_a_fresh_process"},
}


def pytest_configure(config):
    """Under pytest-xdist (``-n 2``, the README's test command) the workers share the cores: each
    gets ``cores / workers`` torch threads, so two workers on two cores do not run four. The
    processes a test starts (Jupyter kernels, the command line, torchrun) get the same count
    through ``OMP_NUM_THREADS``: two kernels of two threads each on two cores ran a 72-second
    notebook for over 14 minutes (OpenMP threads spinning against each other)."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "0"))
    if workers > 1:
        threads = max(1, (os.cpu_count() or 1) // workers)
        torch.set_num_threads(threads)
        os.environ["OMP_NUM_THREADS"] = str(threads)


@pytest.fixture
def recorded_threads():
    """Two torch threads, the count the committed references (tests/reference/) were recorded
    with on 2 cores: float sums depend on the thread count, so a bit-for-bit comparison runs
    with it whatever ``-n`` gave the worker."""
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(threads)


def pytest_collection_modifyitems(config, items):
    """Mark ``slow`` every test that loads the real default model (``default_model``,
    directly or through another fixture, or in a subprocess as listed above)."""
    for item in items:
        in_subprocess = REAL_MODEL_IN_A_SUBPROCESS.get(item.path.name, ())
        if (
            "default_model" in getattr(item, "fixturenames", ())
            or getattr(item, "originalname", item.name) in in_subprocess
        ):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session")
def default_model():
    """(model, tokenizer) of the embedded default model (SmolLM2-135M-Instruct), eval mode."""
    return tn.load_model()


@pytest.fixture(scope="session")
def default_tok():
    """The default model's tokenizer, as ``tn.load_model()`` returns it (pad token set), read
    from the model cache folder without loading the weights."""
    from taskneuron_utils.core.models import default_model_path

    tok = transformers.AutoTokenizer.from_pretrained(default_model_path())
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return tok


@pytest.fixture(scope="session")
def toy_task():
    """A small generation task, "a b" -> "b a", split 24 / 6 / 6 (tiny_models.swap_task)."""
    from tiny_models import swap_task

    return swap_task()


@pytest.fixture
def tiny_llama(default_tok):
    """A randomly initialised 2-layer Llama (d=32, d_ff=64) sharing the default tokenizer's
    vocabulary, seeded, float32, eval mode. Function-scoped: tests may modify it."""
    from tiny_models import fixture_llama

    return fixture_llama(default_tok)
