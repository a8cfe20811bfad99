"""benchmarks/gpu_check.py end to end, in its tiny CPU configuration (what it runs without CUDA)."""

import json

from scripts import load_script


def _load():
    return load_script("benchmarks/gpu_check.py")


def test_gpu_check_runs_tiny_on_the_cpu_and_reports_sane_json(tmp_path, capsys):
    out = tmp_path / "gpu_check.json"
    result = _load().main(["--tiny", "--repeats", "1", "--out", str(out)])
    printed = json.loads(capsys.readouterr().out)
    assert printed == result == json.loads(out.read_text())
    assert result["cuda"] is False and result["model"].startswith("tiny")
    assert result["batches"] == [[2, 48], [2, 48]] and result["answer_tokens_per_example"] == 9
    for key in ("attribution", "train_step", "forward"):
        assert result["seconds_median"][key] > 0 and result["tokens_per_second"][key] > 0
        assert result["peak_bytes_above_weights"][key] > 0
    assert 0 < result["attribution_over_train_step"] < 20
    assert 0 < result["attribution_over_forward"] < 50
    for method in ("attribution", "neurons"):  # the memory estimate, checked where it runs
        assert 0.75 < result["estimate_over_measured"][method] < 1.33
    finetune = result["finetune"]
    assert finetune["unselected_row_unchanged"] and finetune["selected_row_changed"]
    assert finetune["steps"] == 3 and finetune["step_seconds_median"] > 0
    assert finetune["neurons_selected"] == round(0.1 * 172) * 4 + round(0.1 * 64) * 2
    assert 0 < finetune["optimizer_state_bytes"]
    assert all(v == v for v in finetune["loss_first_last"])  # finite, not NaN
    check = result["replicate"]  # the replicate plan, and one part run against it
    assert set(check["plan"]) == {
        "original", "table1", "specificity", "table2", "generalization", "continual",
        "attribution",
    }  # fmt: skip
    assert check["ran"] == ["deact_base_k10"] and check["measured_seconds"] > 0
    assert all(p["peak_bytes_per_device"] > 0 for p in check["plan"].values())
    assert 0 < check["estimate_over_measured_memory"] < 20
