"""benchmarks/scale_ratios.py end to end in its tiny setting: 1 + 2 spawned gloo processes on the
CPU, then neuron-only against full fine-tuning. Only the report's shape and sanity are checked,
never wall-clock values (the ratios are for an idle machine and the default model)."""

import json
import math
import sys
from pathlib import Path

import torch

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def _load():
    # A plain import (not load_script): the spawned workers unpickle ``scale_ratios.worker`` by
    # name, and spawn passes them this sys.path.
    if str(BENCHMARKS) not in sys.path:
        sys.path.insert(0, str(BENCHMARKS))
    import scale_ratios

    return scale_ratios


def test_scale_ratios_tiny_reports_both_ratios(tmp_path, capsys):
    out = tmp_path / "results" / "scale_ratios.json"
    threads = torch.get_num_threads()
    result = _load().main(["--tiny", "--repeats", "1", "--no-progress", "--out", str(out)])
    assert torch.get_num_threads() == threads  # restored

    assert out.exists() and not list(out.parent.glob(".*.tmp"))  # atomic write, no leftovers
    written = json.loads(out.read_text())
    assert json.loads(capsys.readouterr().out) == written == json.loads(json.dumps(result))

    for key in ("attribution_2proc_over_1proc", "neuron_step_over_full_step"):
        value = written[key]
        assert isinstance(value, float) and math.isfinite(value) and value > 0, (key, value)
    assert 0 < written["optimizer_state_fraction"] < 1
    assert 0 < written["selected_fraction"] < 1 and 0 < written["selected_parameter_fraction"] < 1

    attribution = written["attribution"]
    assert attribution["threads"] == {"1proc": [2], "2proc": [1, 1]}
    assert attribution["examples"] == 8
    # Both did the same work: a different split of the data would differ by O(1). What is left is
    # float32 rounding of 2 threads vs 1 thread per process (seen here: 1.2e-6, on the commit
    # before this bound too), so the bound is 1e-5, not 1e-6.
    assert attribution["relevance_max_rel_diff"] < 1e-5
    assert all(len(v) == 1 and v[0] > 0 for v in attribution["seconds"].values())
    assert all(
        v > 0
        for v in (attribution["startup_seconds"]["1proc"], attribution["startup_seconds"]["2proc"])
    )

    finetune = written["finetune"]
    assert finetune["steps_timed"] == finetune["steps"] - 1 == 2
    assert finetune["neurons_selected"] == round(0.1 * 64) * 4 + round(0.1 * 32) * 2
    assert finetune["optimizer_state_numel"]["neurons"] < finetune["optimizer_state_numel"]["full"]

    machine = written["machine"]
    assert machine["cpu_count"] >= 1 and machine["torch_threads"] >= 1
    assert machine["torch"] == torch.__version__
