"""Every attribution method in bounded memory, and expensive calls refused before they start
(attribution.budget, attribution.cost): integrated gradients' peak does not grow with the
number of sites, the stacked copies follow the memory budget without changing a bit of the
result, and a run beyond the work or memory budget is a one-line refusal before any forward
pass (a warning with ``force=True``)."""

import gc
import warnings
import weakref

import pytest
import torch
import transformers

import taskneuron_utils as tn
from taskneuron_utils.attribution import budget
from taskneuron_utils.attribution.budget import parse_memory
from taskneuron_utils.hooks.tracing import Trace
from taskneuron_utils.memory.estimate import measure_peak


def llama(tok, layers=2, d_ff=64, d=32):
    config = transformers.LlamaConfig(
        vocab_size=len(tok),
        hidden_size=d,
        intermediate_size=d_ff,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        pad_token_id=tok.pad_token_id,
    )
    torch.manual_seed(0)
    return transformers.LlamaForCausalLM(config).eval()


def attribute(model, tok, data, **options):
    return tn.attribute(model, tok, data, batch_size=4, progress=False, **options)


def forward_counter(model):
    """A list that grows by one per forward pass of the model's blocks (hook on the base)."""
    calls = []
    handle = model.base_model.register_forward_hook(lambda *args: calls.append(1))
    return calls, handle


def test_integrated_gradients_peak_does_not_grow_with_the_number_of_sites(default_tok, toy_task):
    model = llama(default_tok, layers=8, d_ff=512, d=128)  # activations outweigh the logits
    data = toy_task.train[:4]
    sites = [s.name for s in tn.ffn_sites(model)]

    def peak(neurons):
        gc.collect()
        run = lambda: attribute(  # noqa: E731
            model, default_tok, data, method="integrated_gradients", steps=2, neurons=neurons
        )
        return measure_peak(run)[1]

    one = peak({sites[0]: [0]})  # layer 0's gate: the widest site, the deepest graph
    every = peak({name: [0] for name in sites})  # 24 sites, one after another
    assert every <= 1.2 * one, (one, every)
    # Nothing of a site's passes outlives it: no trace is left behind.
    gc.collect()
    assert not [o for o in gc.get_objects() if type(o) is Trace]


def test_a_trace_and_its_outputs_are_freed_without_the_garbage_collector(tiny_llama):
    """A trace with gradients holds its outputs, and they the autograd graph: neither may sit
    in a reference cycle (Record -> Trace, or a tensor hook -> Trace), which only the garbage
    collector, or for a hook nothing, would free."""
    ids = torch.tensor([[1, 2, 3, 4]])
    gc.disable()
    try:
        with tn.trace(tiny_llama, ["layers.0.mlp.up"], grad=True) as tr:
            tr.backward(tiny_llama(input_ids=ids).logits.sum())
        assert tr["layers.0.mlp.up"].grad is not None
        trace, (output,) = weakref.ref(tr), [weakref.ref(t) for t in tr._outputs.values()]
        del tr
        assert trace() is None and output() is None
    finally:
        gc.enable()


@pytest.mark.parametrize("kinds", [None, "act"])
def test_stacked_copies_follow_the_budget_and_change_no_bit(default_tok, toy_task, kinds):
    model = llama(default_tok)
    data = toy_task.train[:6]
    site = tn.ffn_sites(model, kinds)[-1].name
    results, passes = {}, {}
    for label, max_memory in (("one a pass", 1), ("all in one", "1GB"), ("default", None)):
        calls, handle = forward_counter(model)
        try:
            ig = attribute(
                model,
                default_tok,
                data,
                kinds=kinds,
                method="integrated_gradients",
                steps=4,
                neurons={site: [0]},
                max_memory=max_memory,
            )
            ablation = attribute(
                model,
                default_tok,
                data,
                kinds=kinds,
                method="ablation",
                neurons={site: list(range(12))},
                max_memory=max_memory,
            )
        finally:
            handle.remove()
        results[label], passes[label] = (ig, ablation), len(calls)
        assert "max_memory" not in ig.provenance["settings"]  # it changes no result
    # 2 batches: IG 5 points a site, ablation a clean pass and 12 units.
    assert passes["one a pass"] == 2 * (5 + 1 + 12)
    assert passes["all in one"] == passes["default"] == 2 * (1 + 1 + 1)
    for label in ("all in one", "default"):
        for got, want in zip(results[label], results["one a pass"]):
            for name in want.sum_abs:
                for field in ("sum_abs", "sum_signed"):
                    torch.testing.assert_close(
                        getattr(got, field)[name],
                        getattr(want, field)[name],
                        rtol=0,
                        atol=0,
                        equal_nan=True,
                    )


def test_work_beyond_the_budget_is_refused_before_any_forward_pass(
    default_tok, toy_task, monkeypatch
):
    monkeypatch.setattr(budget, "FLOP_FLOOR", 0.0)  # a tiny model's work counts as a real one's
    model = llama(default_tok, d_ff=256)  # 2 x (256 + 256 + 32) = 1,088 units
    data = toy_task.train[:4]
    every_unit = {s.name: list(range(s.n_neurons)) for s in tn.ffn_sites(model)}
    calls, handle = forward_counter(model)
    try:
        with pytest.raises(ValueError) as error:
            attribute(model, default_tok, data, method="ablation", neurons=every_unit)
        message = str(error.value)
        assert "\n" not in message
        assert "ablating 1,088 units one at a time" in message
        assert "~544x the time of grad x act" in message  # (1,088 + 1 clean) x 0.5
        assert "neurons=" in message and "force=True" in message
        with pytest.raises(ValueError) as error:
            attribute(model, default_tok, data, method="integrated_gradients", steps=40)
        message = str(error.value)
        assert "\n" not in message and "6 sites x 41 path points" in message
        assert "~246x" in message and "neurons={site: units}" in message
        assert "fewer steps" in message and "kinds=" in message
        assert calls == []  # refused before any forward pass
        # Within the budget: no refusal (a site list bounds integrated gradients).
        two = {name: [0] for name in list(every_unit)[:2]}
        attribute(model, default_tok, data, method="integrated_gradients", steps=40, neurons=two)
    finally:
        handle.remove()
    with pytest.warns(UserWarning, match=r"ablating 1,088 units .* force=True"):
        forced = attribute(
            model, default_tok, data, method="ablation", neurons=every_unit, force=True
        )
    assert not forced.scores["layers.1.mlp.down"].isnan().any()


def test_a_pass_beyond_the_free_memory_is_refused(default_tok, toy_task, monkeypatch):
    monkeypatch.setattr(budget, "free_memory", lambda device: 2**20)  # 1 MiB free
    model = llama(default_tok)
    data = toy_task.train[:4]
    calls, handle = forward_counter(model)
    try:
        for options in ({}, {"method": "integrated_gradients", "steps": 2}):
            with pytest.raises(ValueError) as error:
                attribute(model, default_tok, data, **options)
            message = str(error.value)
            assert "\n" not in message and "beyond the model but 1 MiB is free" in message
            assert "batch_size" in message and "force=True" in message
        assert calls == []
    finally:
        handle.remove()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        attribute(model, default_tok, data, force=True)
    assert any("1 MiB is free" in str(w.message) for w in caught)


def test_max_memory_takes_bytes_or_a_size_string(default_tok, toy_task):
    assert parse_memory(None) is None
    assert parse_memory(123) == 123
    assert parse_memory("2GB") == 2 * 10**9
    assert parse_memory("1.5 GiB") == 3 * 2**29
    assert parse_memory("512MiB") == 512 * 2**20
    for bad in ("lots", "-1GB", 0, True):
        with pytest.raises(ValueError, match="max_memory"):
            parse_memory(bad)
    with pytest.raises(ValueError, match="max_memory must be bytes or a string like '2GB'"):
        attribute(
            llama(default_tok), default_tok, toy_task.train[:2], method="ablation",
            neurons={"layers.0.mlp.up": [0]}, max_memory="lots",
        )  # fmt: skip
    with pytest.raises(ValueError, match="max_memory applies to integrated_gradients, ablation"):
        attribute(llama(default_tok), default_tok, toy_task.train[:2], max_memory="1GB")


def test_the_recorded_benchmark_meets_the_issue_s_targets_and_its_table_is_its_json():
    """benchmarks/results/attribution_memory.json (the default model, measured by
    benchmarks/attribution_memory.py): integrated gradients at 16 steps over every site within
    1.5x grad x act's peak, all sites within 1.2x one site, 10x the examples within 1.1x where
    measured, the estimate within 10% of each one-site and whole-model call; the .md table that
    docs/scale.md includes is the one the script writes from that JSON."""
    import json
    import sys
    from pathlib import Path

    from scripts import load_script

    root = Path(__file__).resolve().parents[1]
    path = root / "benchmarks" / "results" / "attribution_memory.json"
    record = json.loads(path.read_text())
    rows = record["summary"]["per_configuration"]
    for definition in ("linear", "act"):
        ig = rows[f"integrated_gradients/{definition}/all_sites/n8"]
        assert ig["peak_over_grad_x_act"] <= 1.5, (definition, ig)
    for key, row in rows.items():
        for field, bound in (("peak_all_sites_over_one", 1.2), ("peak_10n_over_n", 1.1)):
            assert row.get(field) is None or row[field] <= bound, (key, field, row[field])
        if "all_sites" not in key or "integrated" in key:  # ablation's all-sites: 20 MB
            assert 0.9 <= row["estimate_over_measured_increase"] <= 1.1, (key, row)
    sys.path.insert(0, str(root / "benchmarks"))  # the script imports its sibling harness.py
    script = load_script("benchmarks/attribution_memory.py")
    table = (root / "benchmarks" / "results" / "attribution_memory.md").read_text()
    assert table == script.markdown_table(record), "rerun it with --table-only"
