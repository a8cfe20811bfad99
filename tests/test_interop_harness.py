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
