"""Top-activating examples against a brute-force pass over every position, neuron statistics,
resuming, bad input; vocabulary projection against a by-hand matmul on three families."""

import pytest
import torch

import taskneuron_utils as tn
from taskneuron_utils.pages.scan import data_items, scan
from taskneuron_utils.tasks import Encoded, collate
from taskneuron_utils.pages.vocab import vocab_projection
from tiny_models import swap_task, tiny_model

NEURONS = [
    ("layers.0.mlp.act", 3),
    ("layers.1.mlp.act", 0),
    ("layers.1.mlp.act", 17),
    ("layers.0.mlp.up", 5),
    ("layers.1.mlp.down", 2),
]


def brute_force(model, tok, items, neurons, batch_size):
    """Every counted position's activation, from plain forward (pre-)hooks on the modules:
    {(site, index): [(activation, example, position)]}."""
    sites = {site.name: site for site in tn.ffn_sites(model, "all")}
    seen = {}

    def hook_for(name):
        def keep(module, args, output=None):
            seen[name] = (args[0] if sites[name].kind == "act" else output).detach()

        return keep

    handles = []
    for name in {name for name, _ in neurons}:
        module = sites[name].module
        handles.append(
            module.register_forward_pre_hook(hook_for(name))
            if sites[name].kind == "act"
            else module.register_forward_hook(hook_for(name))
        )
    values = {neuron: [] for neuron in neurons}
    try:
        with torch.no_grad():
            for start in range(0, len(items), batch_size):
                chunk = items[start : start + batch_size]
                batch = collate([Encoded(i.ids, len(i.ids)) for i in chunk], tok.pad_token_id)
                model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
                for name, index in neurons:
                    # (B, T, n); OPT's FFN runs on (B * T, d) rows
                    output = seen[name].reshape(*batch["input_ids"].shape, -1)
                    for row, item in enumerate(chunk):
                        for position in range(item.start, len(item.ids)):
                            values[(name, index)].append(
                                (float(output[row, position, index]), start + row, position)
                            )
    finally:
        for handle in handles:
            handle.remove()
    return values


def expected_rows(values, k, sign):
    """The k most extreme (activation, data index, position), ties to the earlier position."""
    key = (lambda v: (-v[0], v[1], v[2])) if sign == "top" else (lambda v: (v[0], v[1], v[2]))
    return sorted(values, key=key)[:k]


@pytest.mark.parametrize("family", ["llama", "opt"])
def test_top_examples_equal_a_brute_force_pass_over_every_position(family, default_tok):
    """Several neurons of several site kinds, several batches (6 of 4), k = 7. OPT's act is a
    ReLU: its bottom k are all exact zeros, a tie broken by data order."""
    model = tiny_model(family, vocab_size=len(default_tok))
    task = swap_task()
    data = [task.train[:13], task.dev]  # two parts, 19 examples
    neurons = (
        NEURONS
        if family == "llama"
        else [("layers.0.mlp.act", 3), ("layers.1.mlp.act", 9), ("layers.1.mlp.fc_out", 2)]
    )
    top = tn.top_examples(model, default_tok, data, neurons, k=7, batch_size=4, progress=False)
    items = data_items(default_tok, data)
    truth = brute_force(model, default_tok, items, neurons, batch_size=4)
    ties = 0
    for neuron, values in truth.items():
        for sign in ("top", "bottom"):
            rows = top[(top.site == neuron[0]) & (top.neuron == neuron[1]) & (top.sign == sign)]
            expected = expected_rows(values, 7, sign)
            assert list(rows["rank"]) == list(range(1, 8))
            assert list(zip(rows.activation, rows.data_index, rows.position)) == expected
            # and at least as extreme as every other counted position
            extreme = rows.activation.min() if sign == "top" else rows.activation.max()
            others = [v for v, *_ in values]
            assert sum(v > extreme if sign == "top" else v < extreme for v in others) < 7
            ties += len({v for v, *_ in expected}) < 7
    if family == "opt":
        assert ties >= 2  # the ReLU's zeros: ties were really exercised
    # The rows say where they come from: task, example within it, the token and its context.
    first = top.iloc[0]
    item = items[first.data_index]
    assert first.task == item.task and first.token_id == item.ids[first.position]
    assert f"⟦{first.token}⟧" in first.context


def test_batches_resume_and_padding_do_not_change_the_result(tmp_path, default_tok):
    model = tiny_model("llama", vocab_size=len(default_tok))
    data = swap_task().train[:12]
    whole = tn.top_examples(model, default_tok, data, NEURONS, k=5, batch_size=12, progress=False)
    small = tn.top_examples(model, default_tok, data, NEURONS, k=5, batch_size=2, progress=False)
    assert list(whole.data_index) == list(small.data_index)
    assert torch.allclose(
        torch.tensor(whole.activation.values), torch.tensor(small.activation.values), atol=1e-5
    )
    # A run stopped after 3 of 6 batches resumes from its checkpoint and ends identical to an
    # uninterrupted one.
    full = scan(model, default_tok, data, NEURONS, k=5, batch_size=2, progress=False)
    path = tmp_path / "scan.safetensors"
    calls = []

    def stop_at_the_fourth_batch(*args):
        calls.append(1)
        if len(calls) == 4:
            raise KeyboardInterrupt

    handle = model.register_forward_hook(stop_at_the_fourth_batch)
    with pytest.raises(KeyboardInterrupt):
        scan(
            model,
            default_tok,
            data,
            NEURONS,
            k=5,
            batch_size=2,
            progress=False,
            checkpoint=path,
            checkpoint_every=1,
        )
    handle.remove()
    resumed = scan(
        model, default_tok, data, NEURONS, k=5, batch_size=2, progress=False, checkpoint=path
    )
    for name in ("top_values", "top_keys", "bottom_values", "bottom_keys"):
        assert torch.equal(getattr(resumed, name), getattr(full, name)), name
    assert resumed.stats().equals(full.stats())
    # A checkpoint of other data is refused, and left alone.
    with pytest.raises(ValueError, match="belongs to another run"):
        scan(
            model,
            default_tok,
            data[:6],
            NEURONS,
            k=5,
            batch_size=2,
            progress=False,
            checkpoint=path,
        )


def test_stats_are_the_moments_of_every_counted_position(default_tok):
    model = tiny_model("llama", vocab_size=len(default_tok))
    task = swap_task()
    data = {"a": task.train[:5], "b": task.test}
    stats = tn.neuron_stats(model, default_tok, data, NEURONS, batch_size=3, progress=False)
    items = data_items(default_tok, data)
    truth = brute_force(model, default_tok, items, NEURONS, batch_size=3)
    for row in stats.itertuples():
        values = torch.tensor([v for v, *_ in truth[(row.site, row.neuron)]], dtype=torch.float64)
        assert row.positions == len(values)
        assert row.mean == pytest.approx(float(values.mean()), abs=1e-6)
        assert row.std == pytest.approx(float(values.std(correction=0)), abs=1e-5)
        assert row.firing_rate == pytest.approx(float((values > 0).double().mean()))
        assert (row.min, row.max) == pytest.approx((float(values.min()), float(values.max())))
        # one task here (both parts are the swap task): its mean is the overall mean
        assert row.mean_swap == pytest.approx(row.mean)


def test_the_running_top_k_is_exact_under_ties_and_short_batches():
    """The streaming update alone, on activations with many exact ties (small integers),
    batches of unequal widths with uncounted positions, one shorter than k, one without any
    counted position: the kept
    top / bottom k are the brute-force ones (ties to the earlier position), and mean / std are
    right for values far from zero (1000 + a spread of 0.2, where float32 E[x^2] - mean^2 would
    cancel to noise)."""
    from taskneuron_utils.pages.running_top import POSITION_BITS, fresh_state, update

    gen = torch.Generator().manual_seed(0)
    k, m = 6, 9
    state = fresh_state(k, m, 2)
    seen, tasks, first = [], [], 0
    for batch, width in ((4, 7), (3, 11), (1, 3), (2, 4), (5, 2)):  # (1, 3): 3 positions < k
        acts = torch.randint(-3, 4, (m, batch * width), generator=gen).float()
        acts[0] = acts[0] * 0.1 + 1000  # neuron 0: mean / std ~ 5000
        counted = torch.rand(batch, width, generator=gen) < 0.7
        counted[:, 0] = False
        if batch == 2:
            counted[:] = False  # a batch without a counted position
        update(
            state, acts[:, counted.reshape(-1)], counted, first, [b % 2 for b in range(batch)], k
        )
        for b in range(batch):
            for t in range(width):
                if counted[b, t]:
                    seen.append((acts[:, b * width + t], (first + b) << POSITION_BITS | t))
                    tasks.append(b % 2)
        first += batch
    values = torch.stack([v for v, _ in seen])  # (positions, m)
    keys = torch.tensor([key for _, key in seen])
    for column in range(m):
        top = sorted(zip(values[:, column].tolist(), keys.tolist()), key=lambda p: (-p[0], p[1]))
        bottom = sorted(zip(values[:, column].tolist(), keys.tolist()))
        assert (
            list(zip(state["top_values"][column].tolist(), state["top_keys"][column].tolist()))
            == top[:k]
        )
        assert (
            list(
                zip(
                    (-state["bottom_values"][column]).tolist(),
                    state["bottom_keys"][column].tolist(),
                )
            )
            == bottom[:k]
        )
    assert int(state["count"]) == len(seen)
    truth = values.double()
    assert torch.allclose(state["sum"] / len(seen), truth.mean(0), rtol=1e-6, atol=1e-6)
    assert torch.allclose((state["m2"] / len(seen)).sqrt(), truth.std(0, correction=0), rtol=1e-4)
    for task in (0, 1):
        rows = torch.tensor(tasks) == task
        assert int(state["task_count"][task]) == int(rows.sum())
        assert torch.allclose(state["task_sum"][task], truth[rows].sum(0), rtol=1e-6)


def test_template_positions_are_not_counted_and_strings_work(default_tok):
    model = tiny_model("llama", vocab_size=len(default_tok))
    task = swap_task()
    items = data_items(default_tok, task.train[:3])
    template = tn.tasks.prompt_ids(default_tok, task.instruction, "")
    assert all(item.ids[: item.start] == template[: item.start] for item in items)
    assert all(item.ids[item.start] != template[item.start] for item in items)
    every = data_items(default_tok, task.train[:3], skip_template=False)
    assert all(item.start == 1 for item in every)
    texts = ["The river is long.", "A tiger sleeps."]
    top = tn.top_examples(model, default_tok, texts, [("layers.1.mlp.act", 4)], k=3, progress=False)
    assert set(top.task.isna()) == {True} and (top.position >= 1).all()


def test_bad_input_fails_before_any_forward_pass(default_tok):
    model = tiny_model("llama", vocab_size=len(default_tok))
    calls = []
    model.register_forward_hook(lambda *args: calls.append(1))
    task = swap_task()
    with pytest.raises(ValueError, match="not a site of"):
        tn.top_examples(model, default_tok, task.test, [("layers.9.mlp.act", 0)])
    with pytest.raises(IndexError, match="has neurons 0..63; got 64"):
        tn.top_examples(model, default_tok, task.test, [("layers.0.mlp.act", 64)])
    with pytest.raises(ValueError, match="data set is empty"):
        tn.top_examples(model, default_tok, task.test[:0], [("layers.0.mlp.act", 1)])
    other = tiny_model("gpt2", vocab_size=len(default_tok))
    with pytest.raises(tn.errors.NeuronSetMismatchError, match="does not fit"):
        tn.top_examples(model, default_tok, task.test, tn.NeuronSet.empty(other, kinds="act"))
    with pytest.raises(ValueError, match="no neurons"):
        tn.top_examples(model, default_tok, task.test, [])
    assert not calls


# --- vocabulary projection --------------------------------------------------------------------


def _by_hand(unembed, norm_scale, column, centre):
    w = column - column.mean() if centre else column
    return unembed @ (norm_scale * w)


@pytest.mark.parametrize("family", ["llama", "gpt2", "gemma2"])
def test_vocab_projection_is_the_by_hand_matmul(family, default_tok):
    """Llama (untied, RMSNorm), GPT-2 (tied embeddings, Conv1D (in, out), LayerNorm: centred)
    and Gemma 2 (tied, RMSNorm with 1 + weight, logit soft-cap)."""
    model = tiny_model(family, vocab_size=len(default_tok))
    if family == "gemma2":
        model.config.final_logit_softcapping = 3.0
    with torch.no_grad():  # a non-trivial final norm weight
        norm = model.transformer.ln_f if family == "gpt2" else model.model.norm
        norm.weight.uniform_(0.5, 1.5)
    if family == "llama":
        unembed, column = model.lm_head.weight, model.model.layers[1].mlp.down_proj.weight[:, 7]
        scale, centre = norm.weight, False
    elif family == "gpt2":
        assert model.lm_head.weight is model.transformer.wte.weight  # tied
        unembed = model.transformer.wte.weight
        column = model.transformer.h[1].mlp.c_proj.weight[7, :]  # Conv1D: (in, out)
        scale, centre = norm.weight, True
    else:
        unembed, column = (
            model.model.embed_tokens.weight,
            model.model.layers[1].mlp.down_proj.weight[:, 7],
        )
        scale, centre = 1 + norm.weight, False
    expected = _by_hand(unembed.detach(), scale.detach(), column.detach(), centre)
    frame = vocab_projection(model, default_tok, "layers.1.mlp.act", 7, k=10)
    top = torch.sort(expected, descending=True, stable=True)
    bottom = torch.sort(expected, stable=True)
    promotes, suppresses = (
        frame[frame.direction == "promotes"],
        frame[frame.direction == "suppresses"],
    )
    assert list(promotes.token_id) == top.indices[:10].tolist()
    assert list(suppresses.token_id) == bottom.indices[:10].tolist()
    assert torch.allclose(
        torch.tensor(promotes.logit.values).float(), top.values[:10].float(), atol=1e-5
    )
    if family == "gemma2":
        assert torch.allclose(
            torch.tensor(promotes.logit_capped.values).float(),
            3.0 * torch.tanh(top.values[:10] / 3.0).float(),
            atol=1e-5,
        )
    else:
        assert "logit_capped" not in frame
    # A residual dimension: column i of the unembedding after the norm weight.
    down = vocab_projection(
        model, default_tok, "layers.1.mlp." + ("fc_out" if family == "gpt2" else "down"), 4, k=5
    )
    basis = torch.zeros(unembed.shape[1])
    basis[4] = 1.0
    expected = _by_hand(unembed.detach(), scale.detach(), basis, centre)
    assert (
        list(down[down.direction == "promotes"].token_id)
        == torch.sort(expected, descending=True, stable=True).indices[:5].tolist()
    )
    assert "residual dimension" in down.attrs["meaning"]


def test_vocab_projection_refuses_input_projections(default_tok):
    model = tiny_model("llama", vocab_size=len(default_tok))
    with pytest.raises(ValueError, match="project layers.0.mlp.act unit 3 instead"):
        vocab_projection(model, default_tok, "layers.0.mlp.gate", 3)
    with pytest.raises(IndexError, match="got 99"):
        vocab_projection(model, default_tok, "layers.0.mlp.act", 99)
