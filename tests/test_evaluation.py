"""Evaluation against independent ground truth: one example (and one option) at a time, full
logits, no shared prefixes, no padding."""

import logging

import numpy as np
import pytest
import torch
import transformers
from rouge_score import rouge_scorer

from taskneuron_utils.scoring.evaluation import evaluate, option_log_likelihoods
from taskneuron_utils.tasks import Task

INPUTS = [
    "short",
    "a somewhat longer input here",
    "x",
    "three words now",
    "the longest input of them all, with commas, and more words",
    "mid size input",
    "ok",
]


def independent_ids(tok, instruction, text):
    """Prompt ids written out by hand from the chat template (not through tasks.encode)."""
    prompt = tok.apply_chat_template(
        [{"role": "user", "content": f"{instruction}\n\n{text}"}],
        add_generation_prompt=True,
        tokenize=False,
    )
    return tok(prompt, add_special_tokens=False).input_ids


def answer_tokens(tok, text):
    return tok(text, add_special_tokens=False).input_ids + [tok.convert_tokens_to_ids("<|im_end|>")]


def sequence_log_likelihood(model, prompt, answer):
    """Summed log p(answer | prompt) from one unpadded forward pass; and the token count."""
    ids = torch.tensor([prompt + answer])
    with torch.no_grad():
        log_probs = torch.log_softmax(model(ids).logits[0].double(), dim=-1)
    positions = range(len(prompt), len(prompt) + len(answer))
    return sum(float(log_probs[t - 1, ids[0, t]]) for t in positions), len(answer)


@pytest.fixture
def choice_task():
    labels = ["yes", "no way", "maybe later on"]  # 1, 2 and 3 tokens (+ end marker)
    records = [{"input": text, "output": labels[i % 3]} for i, text in enumerate(INPUTS)]
    return Task.from_records(
        "choice", {"test": records}, "Pick an answer.", category="classification", labels=labels
    )


def expected_log_likelihoods(model, tok, task):
    """(examples, options) float64: one unpadded forward pass per (example, option)."""
    return torch.tensor(
        [
            [
                sequence_log_likelihood(
                    model,
                    independent_ids(tok, task.instruction, ex.input),
                    answer_tokens(tok, label),
                )[0]
                for label in task.labels
            ]
            for ex in task.test
        ],
        dtype=torch.float64,
    )


def tiny_gpt2(tok):
    """A random 2-layer GPT-2 (learned absolute positions, Conv1D, biases) on the default
    tokenizer's vocabulary; initializer_range 0.2 (not 0.02) so that attention is far from
    uniform and a wrong position or padding changes the scores."""
    config = transformers.GPT2Config(
        vocab_size=len(tok),
        n_embd=32,
        n_layer=2,
        n_head=4,
        n_positions=256,
        initializer_range=0.2,
        pad_token_id=tok.pad_token_id,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
    )
    torch.manual_seed(0)
    model = transformers.GPT2LMHeadModel(config).eval()
    with torch.no_grad():
        for name, param in model.named_parameters():
            if name.endswith("bias"):
                param.normal_(0, 0.1)
    return model


@pytest.mark.parametrize(
    "share_prefix", [True, "prompt", False], ids=["shared_prefix", "per_prompt", "plain"]
)
def test_classification_equals_per_example_per_option_loop(
    tiny_llama, default_tok, choice_task, share_prefix
):
    tok, model = default_tok, tiny_llama
    split = choice_task.test
    expected = expected_log_likelihoods(model, tok, choice_task)  # (examples, options)
    scored = option_log_likelihoods(model, tok, split, batch_size=3, share_prefix=share_prefix)
    assert scored["path"] == ("shared_prefix" if share_prefix else "plain")
    torch.testing.assert_close(scored["log_likelihoods"], expected, rtol=1e-5, atol=2e-4)
    assert scored["n_tokens"].tolist() == [
        len(answer_tokens(tok, lab)) for lab in choice_task.labels
    ]

    result = evaluate(model, tok, split, batch_size=3, progress=False, share_prefix=share_prefix)
    gold = torch.tensor([choice_task.labels.index(ex.output) for ex in split])
    best = expected.argmax(1)
    assert result["predictions"] == [choice_task.labels[i] for i in best]
    accuracy = float((best == gold).double().mean())
    assert result["accuracy"] == result["score"] == pytest.approx(accuracy)
    n_tokens = torch.tensor([len(answer_tokens(tok, label)) for label in choice_task.labels])
    best_per_token = (expected / n_tokens).argmax(1)
    assert result["accuracy_per_token"] == pytest.approx(
        float((best_per_token == gold).double().mean())
    )
    # The harness's acc_norm / acc_bytes: the sum over the option's characters / bytes, the
    # option being the label plus the end marker's text (ASCII here: bytes = characters).
    n_chars = torch.tensor([len(label + "<|im_end|>") for label in choice_task.labels])
    by_chars = float(((expected / n_chars).argmax(1) == gold).double().mean())
    assert result["accuracy_norm"] == result["accuracy_bytes"] == pytest.approx(by_chars)
    assert result["score_norm"] == result["accuracy_norm"]
    assert result["score_per_token"] == result["accuracy_per_token"]
    assert result["scoring"] == "sum"
    gold_tokens = sum(len(answer_tokens(tok, ex.output)) for ex in split)
    nll = -float(expected[torch.arange(len(split)), gold].sum()) / gold_tokens
    assert result["nll"] == pytest.approx(nll, rel=1e-5)
    described = (result["task"], result["split"], result["metric"], result["n"])
    assert described == ("choice", "test", "accuracy", 7)


def test_sum_and_mean_scoring_pick_different_labels_when_built_to(tiny_llama, default_tok):
    """A model built so that the two scorings disagree: its LM head favours, whatever the
    input, a token that the long label repeats, so the long label has the best log-likelihood
    per token but, with more tokens to pay for, not the best sum. Checked against option
    log-likelihoods computed by hand (one plain forward pass per option)."""
    tok, model = default_tok, tiny_llama
    short, long = "no", "yes yes yes yes"  # tokens: [no, end] and [yes, " yes" x 3, end]
    (no, end), (yes, repeated) = answer_tokens(tok, short), answer_tokens(tok, long)[:2]
    head = torch.nn.Linear(32, len(tok), bias=True)
    with torch.no_grad():
        head.weight.copy_(0.1 * model.lm_head.weight)  # a little input dependence, not much
        head.bias.zero_()
        # log p ~ bias - 20: " yes" ~ 0, end ~ -6, "no" ~ -8, "yes" ~ -16 (nats)
        head.bias[[repeated, end, no, yes]] = torch.tensor([20.0, 14.0, 12.0, 4.0])
    model.lm_head = head
    records = [{"input": text, "output": [short, long][i % 2]} for i, text in enumerate(INPUTS)]
    task = Task.from_records(
        "lengths", {"test": records}, "Answer.", category="classification", labels=[short, long]
    )

    expected = expected_log_likelihoods(model, tok, task)  # (examples, 2), summed nats
    n_tokens = torch.tensor([2.0, 5.0])
    assert (expected.argmax(1) == 0).all()  # by sum: the short label, every time
    assert ((expected / n_tokens).argmax(1) == 1).all()  # per token: the long one
    gold = torch.tensor([i % 2 for i in range(len(INPUTS))])

    by_sum = evaluate(model, tok, task.test, batch_size=3, progress=False)
    by_mean = evaluate(model, tok, task.test, batch_size=3, progress=False, scoring="per_token")
    assert by_sum["predictions"] == [short] * len(INPUTS)
    assert by_mean["predictions"] == [long] * len(INPUTS)
    for result in (by_sum, by_mean):  # both accuracies from the one pass, either way
        assert result["accuracy"] == pytest.approx(float((gold == 0).double().mean()))  # 4/7
        assert result["accuracy_per_token"] == pytest.approx(
            float((gold == 1).double().mean())
        )  # 3/7
        assert result["nll"] == by_sum["nll"]
        assert result["score_per_token"] == result["accuracy_per_token"]
    assert (by_sum["scoring"], by_sum["score"]) == ("sum", by_sum["accuracy"])
    assert (by_mean["scoring"], by_mean["score"]) == ("per_token", by_mean["accuracy_per_token"])
    # Per example, both rankings too (Tables 1 and 2 report both): right or wrong by hand.
    values = evaluate(model, tok, task.test, batch_size=3, progress=False, per_example=True)[
        "examples"
    ]
    np.testing.assert_array_equal(values["score"], (gold == 0).double().numpy())
    np.testing.assert_array_equal(values["score_per_token"], (gold == 1).double().numpy())


def test_unknown_scoring_is_refused(tiny_llama, default_tok, choice_task):
    with pytest.raises(
        ValueError,
        match=r"scoring must be one of \['bytes', 'norm', 'per_token', "
        r"'sum'\].*got 'avg'",
    ):
        evaluate(tiny_llama, default_tok, choice_task.test, scoring="avg", progress=False)


@pytest.mark.parametrize("family", ["llama", "gpt2"])
def test_shared_prefix_and_plain_scoring_agree(family, tiny_llama, default_tok, choice_task):
    """Both scoring paths on a rotary-position model (Llama, grouped-query attention) and a
    learned-position one (GPT-2), in batches that mix prompt lengths (left padding in the
    shared path, right padding in the plain one), and against the one-at-a-time loop."""
    tok = default_tok
    model = tiny_llama if family == "llama" else tiny_gpt2(tok)
    split = choice_task.test
    shared = option_log_likelihoods(model, tok, split, batch_size=4, share_prefix=True)
    plain = option_log_likelihoods(model, tok, split, batch_size=4, share_prefix=False)
    assert (shared["path"], plain["path"]) == ("shared_prefix", "plain")
    torch.testing.assert_close(
        shared["log_likelihoods"], plain["log_likelihoods"], rtol=0, atol=1e-4
    )
    expected = expected_log_likelihoods(model, tok, choice_task)
    torch.testing.assert_close(plain["log_likelihoods"], expected, rtol=1e-5, atol=2e-4)
    # Real scores, not a constant: the options differ in length, the examples in content.
    assert plain["log_likelihoods"].std(dim=0).min() > 1e-3


@pytest.mark.parametrize("how", ["rejects", "ignores"])
def test_models_without_a_cache_argument_use_the_plain_path(
    tiny_llama, default_tok, choice_task, monkeypatch, caplog, how
):
    """A forward that raises on the cache argument, or silently drops it, gets the plain path,
    with the same scores, and a log record says so."""
    tok, model = default_tok, tiny_llama
    plain = option_log_likelihoods(model, tok, choice_task.test, batch_size=3, share_prefix=False)
    body = model.base_model
    original = body.forward

    def forward(*args, **kwargs):
        for name in ("cache", "past_key_values"):
            if kwargs.pop(name, None) is not None and how == "rejects":
                raise TypeError(f"forward() got an unexpected keyword argument {name!r}")
        return original(*args, **kwargs)

    monkeypatch.setattr(body, "forward", forward)
    with caplog.at_level(logging.INFO, logger="taskneuron_utils.scoring.option_scoring"):
        scored = option_log_likelihoods(model, tok, choice_task.test, batch_size=3)
    assert scored["path"] == "plain"
    torch.testing.assert_close(scored["log_likelihoods"], plain["log_likelihoods"], rtol=0, atol=0)
    assert "without prefix sharing" in caplog.text


def test_generation_equals_one_at_a_time_greedy_decode(tiny_llama, default_tok):
    tok, model = default_tok, tiny_llama
    records = [
        {"input": text, "output": f"reply {i} " * (i % 3 + 1)} for i, text in enumerate(INPUTS)
    ]
    task = Task.from_records("gen", {"test": records}, "Answer.", metric="rouge_l")
    end = tok.convert_tokens_to_ids("<|im_end|>")
    max_new = max(len(answer_tokens(tok, r["output"])) for r in records) + 8

    expected, total_nll, n_tokens = [], 0.0, 0
    for ex in task.test:
        ids = independent_ids(tok, "Answer.", ex.input)
        new = []
        with torch.no_grad():
            for _ in range(max_new):
                token = int(model(torch.tensor([ids + new])).logits[0, -1].argmax())
                if token in (end, tok.eos_token_id):
                    break
                new.append(token)
        expected.append(tok.decode(new, skip_special_tokens=True).strip())
        ll, n = sequence_log_likelihood(model, ids, answer_tokens(tok, ex.output))
        total_nll, n_tokens = total_nll - ll, n_tokens + n

    model.train()  # evaluate must switch to eval mode and back
    result = evaluate(model, tok, task.test, batch_size=3, progress=False)
    assert model.training
    assert result["predictions"] == expected
    assert result["nll"] == pytest.approx(total_nll / n_tokens, rel=1e-5)
    scorer = rouge_scorer.RougeScorer(["rougeL"])
    rouge = [scorer.score(ex.output, p)["rougeL"].fmeasure for ex, p in zip(task.test, expected)]
    exact = [
        " ".join(ex.output.lower().split()) == " ".join(p.lower().split())
        for ex, p in zip(task.test, expected)
    ]
    assert result["rouge_l"] == result["score"] == pytest.approx(sum(rouge) / len(rouge))
    assert result["exact_match"] == pytest.approx(sum(exact) / len(exact))


def test_evaluate_rejects_empty_or_taskless_splits(tiny_llama, default_tok, choice_task):
    with pytest.raises(ValueError, match="no examples"):
        evaluate(tiny_llama, default_tok, choice_task.test[:0], progress=False)
    with pytest.raises(TypeError, match="Split of a Task"):
        evaluate(tiny_llama, default_tok, list(choice_task.test), progress=False)


# -- the real default model ------------------------------------------------------------------


def test_default_model_beats_chance_on_a_trivial_task(default_model):
    model, tok = default_model
    positive, negative = (
        "The sentiment of this review is positive.",
        "The sentiment of this review is negative.",
    )
    things = ["chair", "table", "spoon", "car", "book", "lamp", "phone", "cup", "door", "shoe"]
    records = [
        {"input": f"I love this wonderful, excellent {w}. It is the best!", "output": positive}
        for w in things
    ]
    records += [
        {"input": f"I hate this terrible, awful {w}. It is the worst!", "output": negative}
        for w in things
    ]
    task = Task.from_records(
        "easy_sentiment",
        {"test": records},
        "What is the sentiment of this review?",
        category="classification",
    )
    result = evaluate(model, tok, task.test, progress=False)
    assert result["accuracy"] >= 0.8  # chance is 0.5; measured 1.0
    assert result["nll"] < 2.0


def test_default_model_knows_the_capital_of_france(default_model):
    model, tok = default_model
    task = Task.from_records(
        "capital", {"test": [{"input": "What is the capital of France?", "output": "Paris"}]}, ""
    )
    result = evaluate(model, tok, task.test, max_new_tokens=20, progress=False)
    assert "Paris" in result["predictions"][0]
    assert result["rouge_l"] > 0


def test_recorded_frames_keep_their_per_token_column():
    """Records made before the rename call the per-token score ``score_norm``: the readers
    aggregate and bootstrap it under that name, equal to the mean computed by hand."""
    import pandas as pd

    from taskneuron_utils import experiments
    from scripts import ROOT

    recorded = pd.read_csv(ROOT / "benchmarks/results/replication/table1_seeds_linear.csv")
    assert "score_norm" in recorded and "score_per_token" not in recorded
    one = recorded[recorded.task == recorded.task.iloc[0]]
    table = experiments.aggregate_examples(one)
    keys = [
        c
        for c in table.columns
        if c in one.columns and c not in ("score", "score_norm", "nll", "n")
    ]
    by_hand = one.groupby(keys, sort=False)["score_norm"].mean().to_numpy()
    np.testing.assert_allclose(table["score_norm"].to_numpy(), by_hand)
