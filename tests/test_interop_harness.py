"""lm-evaluation-harness (the ``lm-eval`` extra): a shipped task exported to the harness's
format and run offline through the ``taskneurons`` model gives ``tn.evaluate``'s numbers, with
nothing switched off and with a set switched off."""

import json

import pytest
import torch

import taskneuron_utils as tn

lm_eval = pytest.importorskip("lm_eval")
from lm_eval.tasks import TaskManager  # noqa: E402

from taskneuron_utils.interop.harness import TaskNeuronsLM  # noqa: E402


@pytest.fixture(scope="module")
def exported(tmp_path_factory, default_tok):
    """Three shipped tasks in the harness's format, and one TaskManager over them (indexing the
    harness's own tasks takes seconds: once per module)."""
    folder = tmp_path_factory.mktemp("harness_tasks")
    suite = tn.load_tasks(["product_sentiment", "news_topic", "addition"])
    tn.export_lm_eval_task(suite["product_sentiment"], default_tok, folder, n=16)
    tn.export_lm_eval_task(suite["news_topic"], default_tok, folder, n=12)
    tn.export_lm_eval_task(suite["addition"], default_tok, folder, n=4)
    return folder, TaskManager(include_path=str(folder))


def harness_metrics(lm, exported, name):
    results = lm_eval.simple_evaluate(
        model=lm, tasks=[name], task_manager=exported[1], bootstrap_iters=0, log_samples=False
    )
    return {
        key.split(",")[0]: value
        for key, value in results["results"][name].items()
        if "," in key and "stderr" not in key
    }


def test_exported_task_is_the_harness_format(default_tok, tmp_path):
    task = tn.load_tasks(["product_sentiment"])["product_sentiment"]
    path = tn.export_lm_eval_task(task, default_tok, tmp_path, n=5)
    config = json.loads(path.read_text())
    assert (config["task"], config["output_type"]) == ("tn_product_sentiment", "multiple_choice")
    docs = [json.loads(line) for line in open(config["dataset_kwargs"]["data_files"]["test"])]
    assert len(docs) == 5
    assert docs[0]["context"] == tn.format_prompt(default_tok, task.instruction, task.test[0].input)
    assert docs[0]["choices"] == [label + "<|im_end|>" for label in task.labels]
    assert docs[0]["choices"][docs[0]["gold"]] == task.test[0].output + "<|im_end|>"


def test_harness_loglikelihoods_equal_ours_on_a_tiny_model(tiny_llama, default_tok, exported):
    """Random weights, so every option has a distinct log-likelihood: the harness's requests,
    scored by TaskNeuronsLM, give option_log_likelihoods' values, and so its acc / acc_norm /
    acc_bytes equal evaluate's accuracy / accuracy_norm / accuracy_bytes exactly."""
    task = tn.load_tasks(["news_topic"])["news_topic"]
    split = task.test[:12]
    ours = tn.evaluate(tiny_llama, default_tok, split, progress=False)
    lm = TaskNeuronsLM(model=tiny_llama, tokenizer=default_tok, batch_size=8)
    theirs = harness_metrics(lm, exported, "tn_news_topic")
    assert theirs["acc"] == pytest.approx(ours["accuracy"], abs=1e-12)
    assert theirs["acc_norm"] == pytest.approx(ours["accuracy_norm"], abs=1e-12)
    assert theirs["acc_bytes"] == pytest.approx(ours["accuracy_bytes"], abs=1e-12)
    # The request-level numbers: option log-likelihoods to float tolerance.
    from lm_eval.api.instance import Instance

    docs = [json.loads(line) for line in open(exported[0] / "tn_news_topic" / "test.jsonl")]
    requests = [
        Instance("loglikelihood", doc, (doc["context"], choice), i)
        for doc in docs[:3]
        for i, choice in enumerate(doc["choices"])
    ]
    scored = torch.tensor(
        [total for total, _ in lm.loglikelihood(requests, disable_tqdm=True)], dtype=torch.float64
    ).view(3, -1)
    expected = tn.scoring.evaluation.option_log_likelihoods(tiny_llama, default_tok, split[:3])
    torch.testing.assert_close(scored, expected["log_likelihoods"], rtol=1e-5, atol=2e-4)


def test_harness_generations_equal_ours(tiny_llama, default_tok, exported):
    """A generation task: the harness's greedy responses through TaskNeuronsLM are
    tn.evaluate's predictions, text for text (random weights: long, arbitrary strings)."""
    task = tn.load_tasks(["addition"])["addition"]
    ours = tn.evaluate(tiny_llama, default_tok, task.test[:4], progress=False)
    lm = TaskNeuronsLM(model=tiny_llama, tokenizer=default_tok)
    results = lm_eval.simple_evaluate(
        model=lm, tasks=["tn_addition"], bootstrap_iters=0, task_manager=exported[1]
    )
    samples = sorted(results["samples"]["tn_addition"], key=lambda s: s["doc_id"])
    assert [s["filtered_resps"][0] for s in samples] == ours["predictions"]
    assert results["results"]["tn_addition"]["exact_match,none"] == ours["exact_match"]


@pytest.mark.slow
def test_harness_on_the_default_model_with_and_without_a_set(default_model, exported, tmp_path):
    """The default model on 16 product_sentiment examples: the harness's acc with nothing off
    equals our accuracy; with the task's top 5% act units off it equals our evaluate under
    tn.deactivate, so it moves as ours does."""
    model, tok = default_model
    task = tn.load_tasks(["product_sentiment"])["product_sentiment"]
    split = task.test[:16]
    neurons = tn.attribute(model, tok, task.train[:8], kinds="act", progress=False).top_k(0.05)
    path = neurons.save(tmp_path / "ns.safetensors")
    scores = {}
    for mode, off in (("none", tn.NeuronSet({}, neurons.sizes)), ("zero", neurons)):
        lm = TaskNeuronsLM(model=model, tokenizer=tok, neurons=str(path), mode=mode)
        theirs = harness_metrics(lm, exported, "tn_product_sentiment")
        with tn.deactivate(model, off):
            ours = tn.evaluate(model, tok, split, progress=False)
        assert theirs["acc"] == pytest.approx(ours["accuracy"], abs=1e-12), mode
        assert theirs["acc_norm"] == pytest.approx(ours["accuracy_norm"], abs=1e-12), mode
        scores[mode] = ours["nll"]
    assert scores["zero"] > scores["none"]  # the set does something: the comparison is not idle


# lm-eval's additional config for a model made from --model_args (LM.create_from_arg_string)
HARNESS_EXTRAS = {"batch_size": 1, "max_batch_size": None, "device": "cuda:0"}


def from_model_args(arg_string, extras=HARNESS_EXTRAS):
    """The model as the harness's command line makes it from ``--model_args``."""
    return lm_eval.api.registry.get_model("taskneurons").create_from_arg_string(arg_string, extras)


def test_model_args_mistakes_are_one_line_errors_before_the_model_loads(
    tiny_llama, tmp_path, monkeypatch
):
    """A misspelt key (``neuron=``), a mode that needs neurons without them, factor / seed
    with a mode that does not use them, and a set made for another model are refused with a
    one-line message, before any model is loaded."""

    def no_loading(*args, **kwargs):
        raise AssertionError("the model was loaded before the arguments were checked")

    monkeypatch.setattr("taskneuron_utils.interop.harness.load_model", no_loading)
    layout = tn.layout_of(tiny_llama)
    ours = tn.NeuronSet({layout.sites[0].name: [1, 2]}, layout, {"model": "someone/other-model"})
    path = str(ours.save(tmp_path / "ns.safetensors"))
    cases = {
        "neuron=ns.safetensors,mode=zero": "unknown model_args 'neuron' (did you mean 'neurons'?)",
        f"neurons={path},mode=zero,bacth_size=4": "'bacth_size' (did you mean 'batch_size'?)",
        "mode=zero": "mode=zero switches off a neuron set, and no neurons= was given",
        "mode=random,seed=1": "mode=random switches off a neuron set",
        f"neurons={path},mode=zero,factor=0.5": "factor= is for mode=scale, not mode=zero",
        f"neurons={path},mode=scale": "mode=scale needs factor=",
        f"neurons={path},mode=zero,seed=3": "seed= is for mode=random",
        f"neurons={path},mode=zeros": "mode must be one of none, zero, zero_weights",
        f"neurons={path},mode=zero": "was made for model 'someone/other-model', not "
        "'smollm2-135m-instruct-q4_1'",
        f"pretrained=someone/model,neurons={path},mode=none": "made for model "
        "'someone/other-model', not 'someone/model'",
    }
    for args, expected in cases.items():
        with pytest.raises((TypeError, ValueError)) as caught:
            from_model_args(args)
        message = str(caught.value)
        assert expected in message, (args, message)
        assert "\n" not in message and message.startswith("taskneurons: "), message
    with pytest.raises(ValueError, match="model= is given"):
        TaskNeuronsLM(model=tiny_llama, tokenizer=object(), device="cpu")
    with pytest.raises(ValueError, match="tokenizer= goes with model="):
        TaskNeuronsLM(tokenizer=object())


def test_model_args_load_a_model_with_its_set_and_the_harness_extras(
    tiny_llama, default_tok, tmp_path
):
    """The keys lm-eval adds (batch_size, max_batch_size, device) are taken; the set's model is
    checked against the loaded model's name, and check_model=false lets a set of the same
    layout through."""
    folder = tmp_path / "tiny"
    tiny_llama.save_pretrained(folder)
    default_tok.save_pretrained(folder)
    layout = tn.layout_of(tiny_llama)
    made_here = tn.NeuronSet({layout.sites[1].name: [0, 5]}, layout, {"model": str(folder)})
    here = str(made_here.save(tmp_path / "here.safetensors"))
    lm = from_model_args(
        f"pretrained={folder},neurons={here},mode=none",
        {"batch_size": 8, "max_batch_size": 4, "device": "cpu"},
    )
    assert (lm.mode, lm.batch_size, lm.intervention["units"]) == ("none", 4, 0)
    assert lm.intervention["set_fingerprint"] == made_here.fingerprint()
    elsewhere = tn.NeuronSet(made_here.indices, layout, {"model": "someone/else"})
    other = str(elsewhere.save(tmp_path / "other.safetensors"))
    with pytest.raises(ValueError, match="made for model 'someone/else'"):
        from_model_args(f"pretrained={folder},neurons={other}")
    lm = from_model_args(f"pretrained={folder},neurons={other},check_model=false")
    assert lm.mode == "zero" and lm.intervention["units"] == 2
    assert lm.intervention["set_model"] == "someone/else"


def test_results_config_says_what_was_switched_off(tiny_llama, default_tok, exported):
    """The results' config carries the intervention: mode, the set's fingerprint and size, the
    units switched off (for random: the drawn set's fingerprint), seed and factor."""
    layout = tn.layout_of(tiny_llama)
    four = tn.NeuronSet({s: range(4) for s in layout}, layout, {"model": layout.model})
    neurons = tn.NeuronSet.random_like(four, seed=0)
    lm = TaskNeuronsLM(
        model=tiny_llama, tokenizer=default_tok, neurons=neurons, mode="random", seed=3
    )
    results = lm_eval.simple_evaluate(
        model=lm, tasks=["tn_news_topic"], task_manager=exported[1], bootstrap_iters=0, limit=2
    )
    recorded = results["config"]["intervention"]
    drawn = tn.NeuronSet.random_like(neurons, seed=3)
    assert recorded == {
        "mode": "random",
        "neurons": neurons.name,
        "set_fingerprint": neurons.fingerprint(),
        "set_units": len(neurons),
        "set_model": "LlamaForCausalLM",
        "units": len(drawn),
        "fingerprint": drawn.fingerprint(),
        "seed": 3,
        "factor": None,
        "model": "LlamaForCausalLM",
    }
    assert drawn.fingerprint() != neurons.fingerprint() and drawn != neurons
    json.dumps(results["config"], default=str)  # what the harness writes to its results file
    scaled = TaskNeuronsLM(
        model=tiny_llama, tokenizer=default_tok, neurons=neurons, mode="scale", factor=0.5
    )
    assert scaled.get_model_info()["intervention"]["factor"] == 0.5
    assert scaled.get_model_info()["intervention"]["fingerprint"] == neurons.fingerprint()
