"""finetune: what changes (and what stays bit-identical), optimizer memory, determinism, LoRA."""

import pytest
import torch

import taskneuron_utils as tn
import taskneuron_utils.training.finetuning as training
from taskneuron_utils.scoring.loss import answer_losses
from taskneuron_utils.neurons.neuron_set import NeuronSet, NeuronSetMismatchError, layout_of
from taskneuron_utils.tasks import collate, encode
from taskneuron_utils.training import LoRAConfig, TrainConfig
from taskneuron_utils.training.finetuning import finetune, lora_targets
from tiny_models import tiny_model


@pytest.fixture(scope="module")
def tok(default_tok):
    return default_tok


def tiny(family, tok, seed=1):
    return tiny_model(family, seed=seed, vocab_size=len(tok))


def random_set(model, fraction: float, seed: int = 0, kinds=None) -> NeuronSet:
    """round(fraction * n) random neurons of every site of ``kinds``."""
    layout = layout_of(model, kinds)
    template = NeuronSet({s: torch.arange(round(fraction * n)) for s, n in layout.items()}, layout)
    return NeuronSet.random_like(template, seed=seed)


def snapshot(model):
    return {name: p.detach().clone() for name, p in model.named_parameters()}


def changeable_entries(model, neurons):
    """{parameter name: bool mask of the entries that neuron training may change}."""
    names = {id(p): name for name, p in model.named_parameters()}
    masks = {}
    for site_name, idx in neurons.indices.items():
        site = tn.core.site_map(model, "all")[site_name]
        for param, dim, index in site.entries(idx):
            mask = masks.setdefault(names[id(param)], torch.zeros_like(param, dtype=torch.bool))
            mask.index_fill_(dim, index, True)
    return masks


def test_changeable_entries_of_an_act_unit_by_hand():
    """The entries ``changeable_entries`` (and so ``Site.entries``) gives an act unit, written
    out: rows of gate_proj and up_proj, a column of down_proj; GPT-2: a c_fc column and bias
    entry (Conv1D stores (in, out)), a c_proj row."""
    llama = tiny_model("llama")
    ns = NeuronSet({"layers.1.mlp.act": [3]}, layout_of(llama, "act"))
    masks = changeable_entries(llama, ns)
    mlp = "model.layers.1.mlp"
    assert sorted(name for name, mask in masks.items() if mask.any()) == [
        f"{mlp}.down_proj.weight",
        f"{mlp}.gate_proj.weight",
        f"{mlp}.up_proj.weight",
    ]
    for name in ("gate_proj", "up_proj"):
        expected = torch.zeros(64, 32, dtype=torch.bool)
        expected[3] = True
        assert torch.equal(masks[f"{mlp}.{name}.weight"], expected)
    expected = torch.zeros(32, 64, dtype=torch.bool)
    expected[:, 3] = True
    assert torch.equal(masks[f"{mlp}.down_proj.weight"], expected)

    gpt2 = tiny_model("gpt2")
    masks = changeable_entries(gpt2, NeuronSet({"layers.0.mlp.act": [5]}, layout_of(gpt2, "act")))
    assert sorted(name for name, mask in masks.items() if mask.any()) == [
        "transformer.h.0.mlp.c_fc.bias",
        "transformer.h.0.mlp.c_fc.weight",
        "transformer.h.0.mlp.c_proj.weight",
    ]
    assert masks["transformer.h.0.mlp.c_fc.weight"].nonzero()[:, 1].unique().tolist() == [5]
    assert masks["transformer.h.0.mlp.c_fc.bias"].nonzero().flatten().tolist() == [5]
    assert masks["transformer.h.0.mlp.c_proj.weight"].nonzero()[:, 0].unique().tolist() == [5]


QUICK = dict(steps=3, lr=1e-2, batch_size=4, progress=False)


@pytest.mark.parametrize("kinds", [None, "act"], ids=["linear", "act"])
@pytest.mark.parametrize(
    "family,dtype",
    [
        ("llama", torch.float32),
        ("gpt2", torch.float32),
        ("phi3", torch.float32),
        ("llama", torch.bfloat16),
    ],
)
def test_neuron_training_changes_only_the_selected_rows(family, dtype, kinds, tok, toy_task):
    model = tiny(family, tok).to(dtype)
    ns = random_set(model, 0.2, seed=7, kinds=kinds)
    before = snapshot(model)
    flags = {name: p.requires_grad for name, p in model.named_parameters()}
    history = finetune(model, tok, toy_task.train, neurons=ns, weight_decay=0.1, **QUICK)
    assert history.attrs["method"] == "neurons" and len(history) == 3

    masks = changeable_entries(model, ns)
    for name, param in model.named_parameters():
        if name not in masks:
            assert torch.equal(param, before[name]), name  # bit-identical
            continue
        mask = masks[name]
        assert torch.equal(param[~mask], before[name][~mask]), f"unselected entries of {name}"
    for site in tn.ffn_sites(model, kinds):
        idx = ns.indices[site.name]
        moved = site.read(idx) != (before_rows := _read_from(before, model, site, idx))
        assert moved.any(dim=1).all(), f"a selected row of {site.name} did not change"
        assert before_rows.shape == moved.shape
    assert {name: p.requires_grad for name, p in model.named_parameters()} == flags
    assert not model.training
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in model.modules())


def _read_from(state, model, site, idx):
    """Site.read of ``idx`` on a model whose parameters are ``state`` (a snapshot)."""
    current = snapshot(model)
    with torch.no_grad():
        for name, param in model.named_parameters():
            param.copy_(state[name])
        rows = site.read(idx)
        for name, param in model.named_parameters():
            param.copy_(current[name])
    return rows


def gradient_rows(site, idx):
    """The parameter gradients of ``site``'s neurons ``idx``, laid out as ``Site.read``."""
    parts = []
    for param, dim, index in site.entries(idx):
        grad = param.grad.index_select(dim, index)
        parts.append(grad[:, None] if grad.dim() == 1 else grad.T if dim == 1 else grad)
    return torch.cat(parts, dim=1)


@pytest.mark.parametrize("kinds", [None, "act"], ids=["linear", "act"])
@pytest.mark.parametrize("family", ["llama", "phi3", "gpt2"])
def test_trained_rows_get_the_gradients_of_their_parameters(family, kinds, tok, toy_task):
    """Spliced into the forward pass, the trainable rows give the frozen model's loss and
    receive the gradients a plain backward gives those parameters: for act units, of the
    gate/up (c_fc) rows and biases and of the down (c_proj) column."""
    model = tiny(family, tok)
    ns = random_set(model, 0.2, seed=3, kinds=kinds)
    batch = collate(encode(tok, toy_task.train[:4]), tok.pad_token_id)
    loss = answer_losses(model, batch)[0].sum()
    loss.backward()
    sites = tn.core.site_map(model, kinds)
    expected = {name: gradient_rows(sites[name], idx) for name, idx in ns.indices.items()}
    model.zero_grad(set_to_none=True)
    before = snapshot(model)

    with training._neuron_rows(model, ns) as params:
        spliced = answer_losses(model, batch)[0].sum()
        spliced.backward()
    torch.testing.assert_close(spliced, loss, rtol=1e-5, atol=1e-6)
    assert len(params) == len(ns.indices)
    for (name, idx), rows in zip(ns.indices.items(), params):
        assert rows.shape == (len(idx), sites[name].n_params)
        torch.testing.assert_close(rows.grad, expected[name], rtol=1e-4, atol=1e-7)
    assert all(torch.equal(p, before[name]) for name, p in model.named_parameters())
    assert all(p.grad is None for p in model.parameters())


def test_act_and_linear_units_of_one_layer_are_not_trained_together(tok, toy_task):
    model = tiny("llama", tok)
    layout = layout_of(model, "all")
    before = snapshot(model)
    clash = NeuronSet({"layers.0.mlp.act": [1], "layers.0.mlp.down": [2]}, layout)
    with pytest.raises(
        ValueError,
        match=r"layers\.0\.mlp\.act and layers\.0\.mlp\.down, "
        "which share parameters",
    ):
        finetune(model, tok, toy_task.train, neurons=clash, **QUICK)
    assert all(torch.equal(p, before[name]) for name, p in model.named_parameters())
    # Act units of one layer and linear units of another share nothing.
    apart = NeuronSet({"layers.0.mlp.act": [1, 9], "layers.1.mlp.up": [2]}, layout)
    finetune(model, tok, toy_task.train, neurons=apart, **QUICK)
    masks = changeable_entries(model, apart)
    for name, param in model.named_parameters():
        mask = masks.get(name, torch.zeros_like(param, dtype=torch.bool))
        assert torch.equal(param[~mask], before[name][~mask]), name
        assert not mask.any() or not torch.equal(param[mask], before[name][mask]), name


@pytest.mark.parametrize("method", ["full", "neurons"])
def test_loss_decreases_on_a_toy_task(method, tok, toy_task):
    model = tiny("llama", tok)
    options = {"neurons": random_set(model, 0.5)} if method == "neurons" else {"method": "full"}
    history = finetune(
        model,
        tok,
        toy_task.train,
        steps=30,
        lr=1e-2,
        batch_size=8,
        warmup=0.1,
        dev=toy_task.dev,
        eval_every=10,
        progress=False,
        **options,
    )
    train = history[history["loss"].notna()]
    assert list(train["step"]) == list(range(1, 31))
    first, last = train["loss"].head(5).mean(), train["loss"].tail(5).mean()
    if method == "full":
        assert last < 0.8 * first
    else:
        # A random tiny model's LM head (49k words, d=32) is what limits its loss; its FFN
        # neurons alone still bring it down steadily (about 0.3 nats here).
        assert last < first - 0.2
    dev = history[history["dev_nll"].notna()]
    assert list(dev["step"]) == [0, 10, 20, 30]
    assert dev["dev_nll"].iloc[-1] < dev["dev_nll"].iloc[0]


def test_optimizer_state_is_the_selected_fraction_of_full_training(tok, toy_task):
    model = tiny("llama", tok)
    ns = random_set(model, 0.1, seed=2)
    sites = tn.core.site_map(model)
    trained = [(sites[s], len(idx)) for s, idx in ns.indices.items() if len(idx)]
    selected = sum(n * (site.in_features + (site.module.bias is not None)) for site, n in trained)
    neurons = finetune(model, tok, toy_task.train[:8], neurons=ns, **QUICK).attrs
    # AdamW keeps two moments per trained number and one step counter per trained tensor.
    assert neurons["trainable_parameters"] == selected
    assert neurons["optimizer_state_numel"] == 2 * selected + len(trained)

    full = finetune(tiny("llama", tok), tok, toy_task.train[:8], method="full", **QUICK).attrs
    params = list(model.parameters())
    total = sum(p.numel() for p in params)
    assert full["optimizer_state_numel"] == 2 * total + len(params)
    fraction = selected / total
    assert neurons["optimizer_state_numel"] <= fraction * full["optimizer_state_numel"] + len(
        trained
    )
    assert neurons["optimizer_state_bytes"] == 4 * neurons["optimizer_state_numel"]


@pytest.mark.parametrize(
    "family,method", [("llama", "neurons"), ("gpt2", "full"), ("llama", "lora")]
)
def test_same_seed_same_weights_other_seed_other_weights(family, method, tok, toy_task):
    # GPT-2 has dropout 0.1, so the full run also checks that dropout is seeded.
    def run(seed):
        model = tiny(family, tok)
        options = {"neurons": random_set(model, 0.2)} if method == "neurons" else {"method": method}
        finetune(model, tok, toy_task.train, seed=seed, **QUICK, **options)
        return snapshot(model)

    a, b, c = run(0), run(0), run(1)
    assert all(torch.equal(a[name], b[name]) for name in a)
    assert any(not torch.equal(a[name], c[name]) for name in a)


def test_gradient_accumulation_matches_a_larger_batch(tok, toy_task):
    # Adam divides by sqrt(v), so float rounding of a near-zero gradient (the 8-example mean vs
    # two 4-example halves) moves a weight by up to a fraction of lr: at lr 1e-2 that measured
    # 4e-5 here. At lr 1e-3 the same rounding stays under 1e-5 while the weights move ~3e-3.
    results = []
    for batch_size, grad_accum in ((8, 1), (4, 2)):
        model = tiny("llama", tok)
        before = snapshot(model)
        history = finetune(
            model,
            tok,
            toy_task.train,
            neurons=random_set(model, 0.3),
            steps=3,
            lr=1e-3,
            batch_size=batch_size,
            grad_accum=grad_accum,
            progress=False,
        )
        results.append((snapshot(model), history["loss"].to_numpy()))
    (a, loss_a), (b, loss_b) = results
    assert max((a[name] - before[name]).abs().max().item() for name in a) > 1e-3
    assert all(torch.allclose(a[name], b[name], atol=1e-5) for name in a)
    assert abs(loss_a - loss_b).max() < 1e-4


@pytest.mark.parametrize("family", ["llama", "gpt2", "phi3"])
def test_lora_merges_back_into_a_plain_model(family, tok, toy_task):
    model = tiny(family, tok)
    cls, before = type(model), snapshot(model)
    flags = {name: p.requires_grad for name, p in model.named_parameters()}
    history = finetune(model, tok, toy_task.train, method="lora", **QUICK)
    assert history.attrs["method"] == "lora" and history.attrs["trainable_parameters"] > 0
    assert type(model) is cls and not hasattr(model, "peft_config")
    assert list(snapshot(model)) == list(before)  # same parameter names, same order
    assert not any("lora" in name for name, _ in model.named_modules())
    assert {name: p.requires_grad for name, p in model.named_parameters()} == flags
    targets = tuple(lora_targets(model))
    changed = {name for name, p in model.named_parameters() if not torch.equal(p, before[name])}
    assert changed and all(name.rsplit(".", 2)[-2] in targets for name in changed)
    assert not model.training


def test_lora_default_targets():
    assert lora_targets(tiny_model("llama")) == [
        "gate_proj",
        "up_proj",
        "down_proj",
        "q_proj",
        "v_proj",
    ]
    assert lora_targets(tiny_model("gpt2")) == ["c_fc", "c_proj", "c_attn"]
    assert lora_targets(tiny_model("phi3")) == ["down_proj", "gate_up_proj", "qkv_proj"]


@pytest.mark.parametrize("method", ["neurons", "lora"])
def test_an_error_mid_training_leaves_a_plain_model(method, tok, toy_task):
    model = tiny("llama", tok)
    names = [name for name, _ in model.named_parameters()]
    calls = []

    def failing(model, batch):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(model, batch)

    real = answer_losses
    options = {"neurons": random_set(model, 0.2)} if method == "neurons" else {"method": method}
    with pytest.raises(KeyboardInterrupt):
        finetune(model, tok, toy_task.train, loss=failing, **QUICK, **options)
    assert [name for name, _ in model.named_parameters()] == names
    assert all(not m._forward_hooks for m in model.modules())
    assert all(p.requires_grad for p in model.parameters()) and not model.training


def test_bad_arguments_raise_clear_errors(tok, toy_task):
    model = tiny("llama", tok)
    before = snapshot(model)
    with pytest.raises(ValueError, match="method must be one of"):
        finetune(model, tok, toy_task.train, method="neuron", progress=False)
    with pytest.raises(ValueError, match="needs the neurons"):
        finetune(model, tok, toy_task.train, method="neurons", progress=False)
    with pytest.raises(ValueError, match="only used by method='neurons'"):
        finetune(
            model,
            tok,
            toy_task.train,
            neurons=random_set(model, 0.1),
            method="full",
            progress=False,
        )
    with pytest.raises(ValueError, match="schedule"):
        finetune(model, tok, toy_task.train, schedule="step", progress=False)
    with pytest.raises(ValueError, match="empty"):
        finetune(model, tok, toy_task.train, neurons=NeuronSet.empty(model), progress=False)
    with pytest.raises(NeuronSetMismatchError):
        finetune(
            model, tok, toy_task.train, neurons=random_set(tiny("gpt2", tok), 0.1), progress=False
        )
    assert all(torch.equal(p, before[name]) for name, p in model.named_parameters())


def test_history_dev_nll_is_what_evaluate_reports(tok, toy_task):
    """One NLL: the history's dev_nll (before and after training) equals tn.evaluate's nll, nats
    per answer token; the training ``loss`` is the per-example mean, a different quantity."""
    model = tiny("llama", tok)
    dev = toy_task.dev
    before = tn.evaluate(model, tok, dev, progress=False)["nll"]
    history = finetune(
        model, tok, toy_task.train, method="full", steps=3, lr=1e-3, dev=dev, progress=False
    )
    after = tn.evaluate(model, tok, dev, progress=False)["nll"]
    dev_rows = history.dropna(subset=["dev_nll"])
    assert dev_rows["dev_nll"].iloc[0] == pytest.approx(before, rel=1e-6)
    assert dev_rows["dev_nll"].iloc[-1] == pytest.approx(after, rel=1e-6)
    assert after != pytest.approx(before, rel=1e-3)


def test_a_registered_family_carries_its_lora_targets():
    """Per-family facts live in Family: a family registered without attention targets gets
    LoRA on its FFN layers only; the built-in Llama family adds q_proj and v_proj."""
    assert tn.core.FAMILIES["llama"].attention_targets == ("q_proj", "v_proj")
    assert tn.core.FAMILIES["gpt2"].transposed and not tn.core.FAMILIES["llama"].transposed
    assert tn.core.FAMILIES["gemma"].logit_softcap == "final_logit_softcapping"
    model = tiny_model("llama")
    try:
        tn.core.register_family(
            tn.core.Family(
                "plain_llama",
                ("plain_llama",),
                "model.layers",
                {"up": "mlp.up_proj", "down": "mlp.down_proj"},
            )
        )
        model.config.model_type = "plain_llama"
        assert lora_targets(model) == ["up_proj", "down_proj"]
    finally:
        tn.core.FAMILIES.pop("plain_llama", None)


# --- TrainConfig: one value for the settings, the loss an explicit field -----------------------


def test_train_config_replace_refuses_a_misspelt_setting():
    config = TrainConfig(lr=1e-3, steps=4)
    with pytest.raises(TypeError, match=r"no setting 'lrr' \(did you mean 'lr'\?\).* lr, "):
        config.replace(lrr=1e-2)
    assert config.replace(seed=3) == TrainConfig(lr=1e-3, steps=4, seed=3)
    assert config.lr == 1e-3 and config.seed == 0  # frozen: replace made a copy
    with pytest.raises(TypeError, match="no setting 'rank'"):
        LoRAConfig().replace(rank=4)


@pytest.mark.parametrize(
    "changes,match",
    [
        ({"schedule": "step"}, "schedule must be one of"),
        ({"mixed_precision": "fp32"}, "mixed_precision must be one of"),
        ({"batch_size": 0}, "batch_size must be a positive integer"),
        ({"grad_accum": 1.5}, "grad_accum must be a positive integer"),
        ({"steps": 0}, "steps must be a positive integer"),
        ({"epochs": 0}, "epochs must be positive"),
        ({"warmup": 1.0}, "warmup is a fraction"),
        ({"eval_every": 0}, "eval_every must be a positive number"),
    ],
)
def test_train_config_checks_its_values_when_made(changes, match):
    with pytest.raises(ValueError, match=match):
        TrainConfig(**changes)
    with pytest.raises(ValueError, match=match):
        TrainConfig().replace(**changes)


def test_a_misspelt_keyword_is_refused_before_any_training(tok, toy_task):
    model = tiny("llama", tok)
    before = snapshot(model)
    with pytest.raises(TypeError, match="'lrr'"):
        finetune(model, tok, toy_task.train, neurons=random_set(model, 0.2), lrr=1e-3, steps=2)
    assert all(torch.equal(p, before[name]) for name, p in model.named_parameters())
    assert all(not m._forward_hooks for m in model.modules())


def test_a_config_and_the_keywords_train_alike(tok, toy_task):
    """``finetune(..., TrainConfig(...))`` is the keyword form, bit for bit; keywords given
    with a config change only what they name."""
    runs = []
    for config, keywords in (
        (None, dict(lr=1e-2, steps=3, batch_size=4, seed=2, progress=False)),
        (TrainConfig(lr=1e-2, steps=3, batch_size=4, seed=2, progress=False), {}),
        (TrainConfig(lr=5.0, steps=3, batch_size=4, progress=False), dict(lr=1e-2, seed=2)),
    ):
        model = tiny("llama", tok)
        ns = random_set(model, 0.2, seed=5)
        history = finetune(model, tok, toy_task.train, config, neurons=ns, **keywords)
        runs.append((snapshot(model), history))
    (first, history), *others = runs
    assert any(not torch.equal(first[name], p) for name, p in snapshot(tiny("llama", tok)).items())
    for params, other in others:
        assert all(torch.equal(first[name], params[name]) for name in first)
        assert history["loss"].tolist() == other["loss"].tolist()
        assert history.attrs["seed"] == other.attrs["seed"] == 2


def test_the_loss_field_is_the_loss_trained_on(tok, toy_task):
    """``config.loss`` is what the loop minimises and logs: the answer loss times 0 leaves every
    parameter as it was (no weight decay), times 2 logs twice the default run's first loss."""
    calls = []

    def scaled(factor):
        def loss(model, batch):
            losses, n_tokens = answer_losses(model, batch)
            calls.append(factor)
            return losses * factor, n_tokens

        return loss

    histories = {}
    for factor in (None, 0.0, 2.0):
        model = tiny("llama", tok)
        before = snapshot(model)
        config = TrainConfig(**QUICK, weight_decay=0.0)
        if factor is not None:
            config = config.replace(loss=scaled(factor))
        histories[factor] = finetune(model, tok, toy_task.train, config, method="full")
        unchanged = all(torch.equal(p, before[name]) for name, p in model.named_parameters())
        assert unchanged == (factor == 0.0), factor
    assert calls.count(0.0) == calls.count(2.0) == 3  # one batch of 4 a step, 3 steps
    assert (histories[0.0]["loss"] == 0).all()
    first = histories[None]["loss"].iloc[0]
    assert histories[2.0]["loss"].iloc[0] == pytest.approx(2 * first, rel=1e-6)


def test_lora_config_equals_the_old_lora_keywords(tok, toy_task):
    def run(**options):
        model = tiny("llama", tok)
        history = finetune(model, tok, toy_task.train, method="lora", **QUICK, **options)
        return snapshot(model), history.attrs["trainable_parameters"]

    (new, n_new), (old, n_old) = run(lora=LoRAConfig(r=4)), run(lora_r=4)
    default, n_default = run()
    assert n_new == n_old == n_default // 2  # rank 4 adapters: half of rank 8's numbers
    assert all(torch.equal(new[name], old[name]) for name in new)
    assert any(not torch.equal(new[name], default[name]) for name in new)
    (only_q, _), (only_q_old, _) = (
        run(lora=LoRAConfig(r=4, alpha=8, target=["q_proj"])),
        run(lora_r=4, lora_alpha=8, lora_target=["q_proj"]),
    )
    assert all(torch.equal(only_q[name], only_q_old[name]) for name in only_q)
    untrained = snapshot(tiny("llama", tok))
    changed = {name for name, p in only_q.items() if not torch.equal(p, untrained[name])}
    assert changed and all(".q_proj." in name for name in changed)
