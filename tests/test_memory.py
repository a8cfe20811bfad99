"""tn.estimate_memory against peaks measured on real runs of the package's own code
(tn.attribute, tn.finetune) on small random Llama and Bloom models, and once on the default
model; the measurement (tn.memory.measure_peak) against a known allocation."""

import pytest
import torch
import transformers

import taskneuron_utils as tn
from taskneuron_utils.memory.estimate import (
    KNOWN_CONFIGS,
    estimate_memory,
    estimate_table,
    measure_peak,
)
from taskneuron_utils.tasks import Task, collate, encode

WORDS = ["apple", "river", "stone", "cloud", "tiger", "piano", "lemon", "candle"]


def _model(family, tok, dtype=torch.float32):
    common = dict(vocab_size=len(tok), hidden_size=256, pad_token_id=tok.pad_token_id)
    if family == "llama":  # grouped-query attention, so the estimate's repeat_kv term is tested
        config = transformers.LlamaConfig(
            **common,
            intermediate_size=688,
            num_hidden_layers=4,
            num_attention_heads=4,
            num_key_value_heads=2,
        )
    else:
        config = transformers.BloomConfig(**common, n_layer=4, n_head=4)
    torch.manual_seed(0)
    return transformers.AutoModelForCausalLM.from_config(config, dtype=dtype).eval()


def _data(tok, n=8):
    """n examples of different lengths (so batches are padded, as in real use)."""
    records = [
        {"input": " ".join(WORDS[j % 8] for j in range(60 + 5 * i)), "output": " ".join(WORDS[:6])}
        for i in range(n)
    ]
    split = Task.from_records(
        "memory", instruction="Repeat the first words.", splits={"train": records}
    ).train
    batch = collate(encode(tok, split), tok.pad_token_id)
    seq_len = batch["input_ids"].shape[1]
    answer_len = int((batch["labels"][:, 1:] != -100).sum()) // n
    return split, seq_len, answer_len


def _static_bytes(model):
    return sum(p.numel() * p.element_size() for p in model.parameters()) + sum(
        b.numel() * b.element_size() for b in model.buffers()
    )


def _measure(model, tok, split, method, batch_size):
    if method == "attribution":
        run = lambda: tn.attribute(model, tok, split, batch_size=batch_size, progress=False)  # noqa: E731
    else:
        options = {"method": method}
        if method == "neurons":
            template = tn.NeuronSet(
                {s.name: torch.arange(round(0.1 * s.n_neurons)) for s in tn.ffn_sites(model)},
                tn.layout_of(model),
            )
            options = {"neurons": tn.NeuronSet.random_like(template, seed=0)}
        # Two steps: the second is the steady state, with the optimizer state alive.
        run = lambda: tn.finetune(
            model,
            tok,
            split,
            steps=2,
            batch_size=batch_size,  # noqa: E731
            lr=1e-5,
            progress=False,
            **options,
        )
    _, growth = measure_peak(run)
    return growth


def test_measure_peak_sees_a_known_allocation():
    _, peak = measure_peak(lambda: torch.ones(2_500_000).sum())  # 10 MB, freed at once
    assert 10_000_000 <= peak < 10_100_000
    _, none = measure_peak(lambda: 1 + 1)
    assert none == 0


@pytest.mark.parametrize(
    "family, method, dtype",
    [
        ("llama", "attribution", torch.float32),
        ("llama", "full", torch.float32),
        ("llama", "neurons", torch.float32),
        ("llama", "lora", torch.float32),
        ("bloom", "attribution", torch.float32),
        ("bloom", "full", torch.float32),
        # bfloat16 matmuls are slow on most CPUs: a smaller batch, and training in the slow loop.
        ("llama", "attribution", torch.bfloat16),
        pytest.param("llama", "full", torch.bfloat16, marks=pytest.mark.slow),
    ],
)
def test_estimate_matches_the_measured_peak_of_a_real_run(default_tok, family, method, dtype):
    model = _model(family, default_tok, dtype)
    batch_size = 8 if dtype == torch.float32 else 4
    split, seq_len, answer_len = _data(default_tok, batch_size)
    static = _static_bytes(model)
    growth = _measure(model, default_tok, split, method, batch_size)
    estimate = estimate_memory(
        model, batch_size, seq_len, method, answer_len=answer_len, device="cpu"
    )
    assert estimate.dtype == str(dtype).replace("torch.", "")
    measured = static + growth
    # Measured on 2 CPU cores with torch 2.13: every case within 1.5% of the total, 3% of the
    # part above the weights. The bounds leave room for other torch/transformers versions.
    assert estimate.peak == pytest.approx(measured, rel=0.05), estimate
    assert estimate.peak - static == pytest.approx(growth, rel=0.10), estimate


# Each attribution method of tn.attribute (integrated gradients on one site of the given kind,
# its points stacked as tn.attribute's budget says; ablation of 8 units of one site).
ATTRIBUTION_CASES = [
    ("llama", "grad_x_act", "act", {}),
    ("llama", "activation", None, {}),
    ("llama", "activation", "act", {}),
    ("llama", "integrated_gradients", ("gate",), {"steps": 8}),
    ("llama", "integrated_gradients", ("down",), {"steps": 8, "max_memory": "150MB"}),
    ("llama", "integrated_gradients", "act", {"steps": 8, "max_memory": "60MB"}),
    ("llama", "ablation", None, {"units": 8}),
    ("llama", "relp", None, {}),
    ("llama", "relp", "act", {}),
    ("bloom", "grad_x_act", "act", {}),
    ("bloom", "activation", None, {}),
    ("bloom", "integrated_gradients", ("fc_in",), {"steps": 8, "max_memory": "300MB"}),
    ("bloom", "ablation", "act", {"units": 8}),
    ("bloom", "relp", None, {}),
    ("bloom", "relp", "act", {}),
]


@pytest.mark.parametrize("family, method, kinds, options", ATTRIBUTION_CASES)
def test_estimate_matches_the_measured_peak_of_every_attribution_method(
    default_tok, family, method, kinds, options
):
    model = _model(family, default_tok)
    split, seq_len, answer_len = _data(default_tok, 8)
    static = _static_bytes(model)
    site = tn.ffn_sites(model, kinds)[0].name  # layer 0: the deepest graph
    run = {"kinds": kinds, "batch_size": 8, "progress": False, "method": method}
    if method == "integrated_gradients":
        run.update(steps=options["steps"], neurons={site: [0]})
        run["max_memory"] = options.get("max_memory")
    if method == "ablation":
        run["neurons"] = {site: list(range(options["units"]))}
    _, growth = measure_peak(lambda: tn.attribute(model, default_tok, split, **run))
    estimate = estimate_memory(
        model, 8, seq_len, method, answer_len=answer_len, device="cpu", kinds=kinds, **options
    )
    # Measured on 2 CPU cores with torch 2.13: every case within 6% of the part above the
    # weights (ablation's float32 head the furthest, an overestimate; RelP within 1.7%).
    assert estimate.peak - static == pytest.approx(growth, rel=0.10), (estimate, growth)
    if method == "integrated_gradients":
        assert estimate.details["copies_per_pass"] >= 1
        assert estimate.details["rows_per_pass"] == 8 * estimate.details["copies_per_pass"]


def test_estimates_of_stacked_methods_follow_the_memory_budget():
    """Integrated gradients and ablation stack as many copies as the budget holds; neither
    grows with the number of steps or units beyond it."""

    def estimate(method, **options):
        return estimate_memory("default", 8, 64, method, answer_len=4, device="cpu", **options)

    small = estimate("integrated_gradients", max_memory="1GB")
    large = estimate("integrated_gradients", max_memory="8GB")
    assert small.peak - small.parameters <= 10**9 < large.peak - large.parameters
    assert 1 <= small.details["copies_per_pass"] < large.details["copies_per_pass"] <= 17
    gxa = estimate("grad_x_act")
    for steps in (16, 256):  # the default budget: grad x act's own pass (or MEMORY_FLOOR)
        ig = estimate("integrated_gradients", steps=steps)
        assert ig.peak - ig.parameters <= max(gxa.peak - gxa.parameters, 2**29)
    assert estimate("ablation", units=4).details["copies_per_pass"] == 4
    many = estimate("ablation", units=100_000)
    assert many.peak - many.parameters <= max(gxa.peak - gxa.parameters, 2**29)
    assert estimate("attribution").peak == gxa.peak


def test_known_7b_configs_build_offline_with_their_published_sizes():
    llama = estimate_memory("meta-llama/Llama-2-7b-hf", 4, 512, "full", dtype=torch.bfloat16)
    bloom = estimate_memory("bloom-7b1", 4, 512, "attribution")
    assert llama.n_params == 6_738_415_616 and bloom.n_params == 7_069_016_064
    assert set(KNOWN_CONFIGS) >= {"meta-llama/Llama-2-7b-hf", "bigscience/bloom-7b1"}
    # Pure bf16 AdamW, as tn.finetune runs it: gradient and two moments in the weights' dtype.
    assert llama.gradients == 2 * llama.n_params
    assert 0 <= llama.parameters - 2 * llama.n_params < 10_000  # + the rotary buffers
    assert llama.optimizer == pytest.approx(2 * llama.gradients, rel=1e-4)
    assert bloom.gradients == bloom.optimizer == 0 and bloom.details["attention"] == "eager"
    assert llama.details["attention"] == "sdpa"


def test_trained_numbers_follow_the_package_s_training_code(tiny_llama, default_tok, toy_task):
    from taskneuron_utils.training.finetuning import lora_targets

    neurons = estimate_memory(tiny_llama, 2, 64, "neurons", k=0.25, device="cpu")
    sizes = tn.layout_of(tiny_llama)
    site_params = {s.name: s.n_params for s in tn.ffn_sites(tiny_llama)}
    assert neurons.n_trainable == sum(round(0.25 * n) * site_params[s] for s, n in sizes.items())
    template = tn.NeuronSet({s: torch.arange(round(0.25 * n)) for s, n in sizes.items()}, sizes)
    history = tn.finetune(
        tiny_llama,
        default_tok,
        toy_task.train[:4],
        neurons=template,
        steps=1,
        batch_size=2,
        progress=False,
    )
    assert history.attrs["trainable_parameters"] == neurons.n_trainable
    assert history.attrs["optimizer_state_bytes"] == neurons.optimizer

    lora = estimate_memory(tiny_llama, 2, 64, "lora", lora_r=4, device="cpu")
    history = tn.finetune(
        tiny_llama,
        default_tok,
        toy_task.train[:4],
        method="lora",
        lora_r=4,
        steps=1,
        batch_size=2,
        progress=False,
    )
    assert history.attrs["trainable_parameters"] == lora.n_trainable
    assert history.attrs["optimizer_state_bytes"] == lora.optimizer
    assert set(lora_targets(tiny_llama)) == {
        "gate_proj",
        "up_proj",
        "down_proj",
        "q_proj",
        "v_proj",
    }


def test_estimates_print_and_tabulate():
    estimate = estimate_memory("llama-2-7b", 4, 512, "attribution")
    text = repr(estimate)
    assert "Llama-2-7b" in text and "peak" in text and "GiB" in text
    frame = estimate.to_frame()
    assert list(frame.index) == list(estimate.COMPONENTS)
    assert frame.loc["peak", "bytes"] == estimate.peak
    table = estimate_table(["llama-2-7b", "bloom-7b1"], batch_size=4, seq_len=512)
    assert len(table) == 8 and set(table["method"]) == {"attribution", "full", "neurons", "lora"}
    peak = table.set_index(["model", "method"])["peak GiB"]
    for model in table["model"].unique():  # full fine-tuning needs the most, attribution least
        assert peak[model, "full"] > peak[model, "neurons"] > peak[model, "attribution"]
    # More answer tokens cost logits memory; a longer sequence costs activations.
    assert estimate_memory("llama-2-7b", 4, 512, answer_len=16).peak < estimate.peak
    assert estimate_memory("llama-2-7b", 4, 1024).activations > 1.9 * estimate.activations


def test_bad_arguments_say_what_is_wrong(tmp_path):
    with pytest.raises(ValueError, match="method must be one of"):
        estimate_memory("llama-2-7b", method="adam")
    with pytest.raises(ValueError, match="answer_len"):
        estimate_memory("llama-2-7b", 4, 128, answer_len=256)
    with pytest.raises(ValueError, match="model_type"):
        estimate_memory({"hidden_size": 8})
    with pytest.raises(OSError, match="cannot read the config"):
        estimate_memory(str(tmp_path / "nowhere"))


@pytest.mark.slow
def test_estimate_is_within_25_percent_on_the_default_model():
    """The issue's acceptance check: one attribution pass and two training steps (the second
    is the steady state) on the real default model, batch 4 of a shipped task."""
    model, tok = tn.load_model()  # its own copy: training changes the weights
    split = tn.load_tasks(["product_sentiment"])["product_sentiment"].train[:4]
    batch = collate(encode(tok, split), tok.pad_token_id)
    seq_len = batch["input_ids"].shape[1]
    answer_len = round(int((batch["labels"][:, 1:] != -100).sum()) / 4)
    static = _static_bytes(model)
    for method in ("attribution", "full"):
        measured = static + _measure(model, tok, split, method, batch_size=4)
        estimate = estimate_memory(model, 4, seq_len, method, answer_len=answer_len, device="cpu")
        # Measured (2 cores, torch 2.13): estimate / measured 0.998 (attribution), 1.000 (full).
        assert estimate.peak == pytest.approx(measured, rel=0.25), (method, measured, estimate)


@pytest.mark.slow
def test_every_attribution_method_is_estimated_within_10_percent_on_the_default_model():
    """The issue's check for every method: one batch of 8 shipped examples on the real default
    model, both neuron definitions (integrated gradients on a layer-0 site, 4 steps; ablation
    of 16 units)."""
    model, tok = tn.load_model()
    split = tn.load_tasks(["addition"])["addition"].train[:8]
    batch = collate(encode(tok, split), tok.pad_token_id)
    seq_len = batch["input_ids"].shape[1]
    answer_len = int((batch["labels"][:, 1:] != -100).sum()) / 8  # the mean: N = 8 x this
    static = _static_bytes(model)
    for kinds, site in ((None, "layers.0.mlp.gate"), ("act", "layers.0.mlp.act")):
        cases = {
            "grad_x_act": ({}, {}),
            "activation": ({}, {}),
            "integrated_gradients": ({"steps": 4, "neurons": {site: [0]}}, {"steps": 4}),
            "ablation": ({"neurons": {site: list(range(16))}}, {"units": 16}),
        }
        for method, (run, options) in cases.items():
            _, growth = measure_peak(
                lambda method=method, kinds=kinds, run=run: tn.attribute(
                    model, tok, split, method=method, kinds=kinds, progress=False, **run
                )
            )
            estimate = estimate_memory(
                model, 8, seq_len, method, answer_len=answer_len, device="cpu",
                kinds=kinds if kinds else ["gate"] if method == "integrated_gradients" else None,
                **options,
            )  # fmt: skip
            # Measured (2 cores, torch 2.13): 0.99-1.00, ablation 1.06.
            assert estimate.peak - static == pytest.approx(growth, rel=0.10), (method, kinds)
