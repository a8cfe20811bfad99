"""Neuron pages (HTML), the switch-off effect, relevance ranks, the Neuronpedia-layout export
and the neuron browser, on tiny models; the default model's top examples against a plain
forward hook (slow)."""

import gzip
import json

import pytest
import torch

import taskneuron_utils as tn
from taskneuron_utils.scoring.loss import answer_nll
from taskneuron_utils.pages.report import deactivation_effect, relevance_ranks
from taskneuron_utils.tasks import encode
from tiny_models import label_task, swap_task, tiny_model


@pytest.fixture
def tiny(default_tok):
    return tiny_model("llama", vocab_size=len(default_tok)), default_tok


def test_page_shows_examples_vocab_effect_and_ranks(tiny, tmp_path):
    model, tok = tiny
    tasks = [swap_task(), label_task("colour", ["red", "blue"], ["yes", "no"])]
    relevances = {
        t.name: tn.attribute(model, tok, t.train[:4], kinds="act", progress=False) for t in tasks
    }
    page = tn.neuron_page(
        model, tok, tasks, "layers.1.mlp.act", 5, k=4, relevances=relevances, effect_examples=3
    )
    top = tn.top_examples(model, tok, tasks, [("layers.1.mlp.act", 5)], k=4, progress=False)
    assert page.examples.equals(top)  # the page's examples are top_examples' rows
    # Every shown token is coloured with the value a separate forward gives at its position.
    row = page.examples.iloc[0]
    tokens, values, mark = page.snippet(row)
    assert values[mark] == pytest.approx(row.activation, abs=1e-5)
    assert tokens[mark] == row.token
    text = page.html
    assert 'data-site="layers.1.mlp.act"' in text and 'data-neuron="5"' in text
    assert text.count('class="tn-tok"') >= 8 and "<img" in text
    assert "promotes" in text and "colour" in text
    assert len(page.values) == int(page.stats["positions"].iloc[0])
    assert set(page.values.task) == {"swap", "colour"}
    saved = page.save(tmp_path / "page.html")
    assert saved.read_text() == text
    # ranks are the neuron's place among its site's scores
    scores = relevances["swap"].scores["layers.1.mlp.act"]
    ranks = relevance_ranks(relevances, "layers.1.mlp.act", 5)
    assert ranks.set_index("task").loc["swap", "rank"] == 1 + int((scores > scores[5]).sum())
    # an input projection has no vocabulary projection of its own: the page says so
    gate = tn.neuron_page(
        model, tok, tasks[0].test[:3], "layers.0.mlp.gate", 2, k=2, effect_examples=0
    )
    assert gate.vocab is None and "layers.0.mlp.act unit 2" in gate.html


def test_switch_off_effect_is_the_nll_change_under_deactivate(tiny):
    model, tok = tiny
    task = swap_task()
    effect = deactivation_effect(model, tok, task, "layers.0.mlp.act", 9, n_examples=4)
    encoded = encode(tok, task.test[:4])
    on = answer_nll(model, tok, encoded)
    ns = tn.NeuronSet({"layers.0.mlp.act": [9]}, tn.layout_of(model, "act"))
    with tn.deactivate(model, ns):
        off = answer_nll(model, tok, encoded)
    assert effect.nll.iloc[0] == pytest.approx(on) and effect.nll_off.iloc[0] == pytest.approx(off)
    assert effect.nll_change.iloc[0] == pytest.approx(off - on)
    assert effect.nll_change.iloc[0] != 0 and effect.ci95.iloc[0] > 0


def test_export_writes_neuronpedia_records(tiny, tmp_path):
    model, tok = tiny
    task = swap_task()
    neurons = [("layers.0.mlp.act", 3), ("layers.1.mlp.act", 8), ("layers.1.mlp.up", 1)]
    files = tn.export_neuron_pages(
        model, tok, task.train[:6], neurons, tmp_path, k=3, model_id="tiny", progress=False
    )
    assert {f.relative_to(tmp_path).as_posix() for f in files} == {
        "tiny/0-mlp-act/features/batch-0.jsonl.gz",
        "tiny/1-mlp-act/features/batch-0.jsonl.gz",
        "tiny/1-mlp-up/features/batch-0.jsonl.gz",
        "tiny/0-mlp-act/activations/batch-0.jsonl.gz",
        "tiny/1-mlp-act/activations/batch-0.jsonl.gz",
        "tiny/1-mlp-up/activations/batch-0.jsonl.gz",
    }
    read = lambda path: [
        json.loads(line) for line in gzip.decompress(path.read_bytes()).splitlines()
    ]
    (feature,) = read(tmp_path / "tiny/1-mlp-act/features/batch-0.jsonl.gz")
    stats = tn.neuron_stats(model, tok, task.train[:6], [("layers.1.mlp.act", 8)], progress=False)
    assert feature["index"] == "8" and feature["modelId"] == "tiny"
    assert feature["maxActApprox"] == pytest.approx(stats["max"].iloc[0])
    assert feature["frac_nonzero"] == pytest.approx(stats["firing_rate"].iloc[0])
    assert len(feature["pos_str"]) == 10 and feature["pos_values"] == sorted(
        feature["pos_values"], reverse=True
    )
    (up,) = read(tmp_path / "tiny/1-mlp-up/features/batch-0.jsonl.gz")
    assert up["pos_str"] == []  # no projection of its own
    records = read(tmp_path / "tiny/1-mlp-act/activations/batch-0.jsonl.gz")
    top = tn.top_examples(
        model, tok, task.train[:6], [("layers.1.mlp.act", 8)], k=3, progress=False
    )
    best = top[top.sign == "top"].iloc[0]
    assert records[0]["maxValue"] == pytest.approx(best.activation, abs=1e-5)
    assert records[0]["maxValue"] == max(records[0]["values"])
    assert len(records[0]["tokens"]) == len(records[0]["values"])
    assert records[0]["tokens"][records[0]["maxValueTokenIndex"]] == best.token
    assert records[0]["dataSource"] == "swap"


def test_neuron_browser_follows_the_controls(tiny):
    from taskneuron_utils.ui.widgets import neuron_browser

    model, tok = tiny
    tasks = {t.name: t for t in [swap_task(), label_task("colour", ["red", "blue"], ["yes", "no"])]}
    rels = {
        name: tn.attribute(model, tok, t.train[:4], kinds="act", progress=False)
        for name, t in tasks.items()
    }
    sets = {name: rel.top_k(0.05) for name, rel in rels.items()}
    panel = neuron_browser(
        model, tok, tasks, sets, relevances=rels, k=3, effect_examples=0, n_examples=4
    )
    first = (panel.page.site, panel.page.neuron)
    best = rels["swap"].scores  # the first page is the task's most relevant neuron
    site, neuron = max(
        ((s, int(i)) for s, idx in sets["swap"].indices.items() for i in idx),
        key=lambda p: float(best[p[0]][p[1]]),
    )
    assert first == (site, neuron) and f'data-neuron="{neuron}"' in panel.view.value
    before = panel.view.value
    panel.next.click()
    assert (panel.page.site, panel.page.neuron) != first and panel.view.value != before
    panel.task.value = "colour"
    assert (panel.page.site, panel.page.neuron) in sets["colour"]


def test_default_model_top_examples_match_a_plain_forward_hook(default_model):
    """On the embedded model: the activations top_examples reports are exactly what a plain
    forward hook on the same inputs (the same padded batches) gives at those positions, and no
    counted position exceeds them; one sequence at a time, without padding, agrees to float
    rounding."""
    from taskneuron_utils.tasks import Encoded, collate

    model, tok = default_model
    task = tn.load_tasks(["addition"])["addition"]
    data = task.test[:8]
    neurons = [("layers.10.mlp.act", 7), ("layers.20.mlp.act", 811), ("layers.3.mlp.up", 5)]
    top = tn.top_examples(model, tok, data, neurons, k=5, batch_size=4, progress=False)
    items = tn.pages.scan.data_items(tok, data)

    def hooked(site, batches):
        module, kept = tn.core.site_map(model, "all")[site].module, []
        hook = (
            module.register_forward_pre_hook(lambda m, args: kept.append(args[0]))
            if site.endswith("act")
            else module.register_forward_hook(lambda m, args, out: kept.append(out))
        )
        try:
            with torch.no_grad():
                for batch in batches:
                    model(**batch)
        finally:
            hook.remove()
        return kept

    padded = [
        collate([Encoded(i.ids, len(i.ids)) for i in items[s : s + 4]], tok.pad_token_id)
        for s in range(0, len(items), 4)
    ]
    padded = [{"input_ids": b["input_ids"], "attention_mask": b["attention_mask"]} for b in padded]
    alone = [{"input_ids": torch.tensor([i.ids])} for i in items]
    for site, index in neurons:
        batched = hooked(site, padded)
        single = hooked(site, alone)
        rows = top[(top.site == site) & (top.neuron == index) & (top.sign == "top")]
        for row in rows.itertuples():
            value = batched[row.data_index // 4][row.data_index % 4, row.position, index]
            assert row.activation == float(value)  # exactly
            assert row.activation == pytest.approx(
                float(single[row.data_index][0, row.position, index]), rel=1e-4, abs=1e-5
            )
        counted = [
            float(batched[i // 4][i % 4, p, index])
            for i, item in enumerate(items)
            for p in range(item.start, len(item.ids))
        ]
        assert sorted(counted, reverse=True)[:5] == list(rows.activation)


def test_export_refuses_a_path_it_cannot_write_before_the_scan(tiny, tmp_path, monkeypatch):
    """An existing file, a file above the folder, or a file where the model's folder goes: a
    one-line error naming it, before the scan (which is not run)."""
    model, tok = tiny

    def no_scan(*args, **kwargs):
        raise AssertionError("the data were scanned before the path was checked")

    monkeypatch.setattr("taskneuron_utils.pages.report.scan", no_scan)
    a_file = tmp_path / "pages.txt"
    a_file.write_text("x")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "tiny").write_text("x")
    cases = {
        a_file: f"path {a_file} is an existing file; give a folder",
        a_file / "pages": f"path {a_file / 'pages'}: {a_file} is a file, not a folder",
        tmp_path / "out": f"the model's folder {tmp_path / 'out' / 'tiny'} is an existing file",
    }
    for path, expected in cases.items():
        with pytest.raises(NotADirectoryError) as caught:
            tn.export_neuron_pages(
                model, tok, ["a b"], [("layers.0.mlp.act", 3)], path, model_id="tiny"
            )
        assert expected in str(caught.value) and "\n" not in str(caught.value)
