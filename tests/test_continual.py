"""Continual learning (experiments.continual, cl_methods) on tiny random Llamas: the loop, the
methods, the metrics, resuming."""

import copy
import math

import numpy as np
import pandas as pd
import pytest
import torch

import taskneuron_utils as tn
from taskneuron_utils import experiments as ex
from taskneuron_utils.experiments.continual import methods as cl_methods
from taskneuron_utils.experiments.continual import neuron_methods as cl_neurons
from taskneuron_utils.tasks import encode
from tiny_models import label_sequence

CONFIG = ex.ContinualConfig(
    examples=8,
    steps=2,
    batch_size=4,
    lr=1e-2,
    n_eval=4,
    k=0.1,
    n_attribution=4,
    lora_r=2,
    ewc_samples=2,
    replay_per_task=2,
    wncft_samples=4,
    max_length=64,
    eval_batch_size=4,
    progress=False,
)


@pytest.fixture(scope="module")
def seq():
    return label_sequence()


def test_cl_metrics_hand_matrix():
    A = np.array([[0.8, 0.1, 0.2], [0.6, 0.9, 0.3], [0.4, 0.6, 0.7]])
    m = ex.cl_metrics(A)
    assert m["CL"] == pytest.approx((0.4 + 0.6 + 0.7) / 3)
    assert m["FG"] == pytest.approx((0.4 / 0.8 + 0.6 / 0.9 + 0.7 / 0.7) / 3 * 100)
    assert m["BWT"] == pytest.approx(((0.4 - 0.8) + (0.6 - 0.9)) / 2)
    assert m["forgetting"] == pytest.approx(((0.8 - 0.4) + (0.9 - 0.6)) / 2)
    assert ex.cl_metrics([[0.5]]) == {"CL": 0.5, "FG": 100.0, "BWT": 0.0, "forgetting": 0.0}
    with pytest.raises(ValueError):
        ex.cl_metrics(np.ones((2, 3)))


def test_olora_penalty_zero_iff_orthogonal():
    eye = torch.eye(4)
    old = [{"m": eye[:2]}]
    assert float(cl_methods.olora_penalty(old, {"m": eye[2:]})) == 0.0
    new = torch.tensor([[1.0, 0.0, 1.0, 0.0], [0.0, 0.0, 0.0, 2.0]])
    # A_old A_new^T = [[1, 0], [0, 0]] -> L1 = 1
    assert float(cl_methods.olora_penalty(old, {"m": new})) == pytest.approx(1.0)


def test_wncft_weights_softmax_of_cosines():
    q = torch.tensor([[1.0, 0.0]])
    v = torch.tensor([[2.0, 0.0], [0.0, 3.0], [1.0, 1.0]])
    w = cl_neurons.wncft_weights(q, v, temperature=0.5)
    cos = torch.tensor([1.0, 0.0, 1 / math.sqrt(2)])
    expected = torch.exp(cos / 0.5) / torch.exp(cos / 0.5).sum()
    assert torch.allclose(w[0], expected, atol=1e-6)
    assert w.sum().item() == pytest.approx(1.0)


def test_ncft_changes_only_the_current_tasks_neurons(tiny_llama, default_tok, seq):
    method = ex.make_method("ncft", CONFIG)
    before = {n: p.detach().clone() for n, p in tiny_llama.named_parameters()}
    method.before_task(tiny_llama, default_tok, seq[0], 0)
    ns = method.neurons
    method.train(tiny_llama, default_tok, seq[0], seq[0].train, 0)
    sites = tn.ffn_sites(tiny_llama)
    touched = {}
    for site in sites:
        touched[site.module.weight] = ns.indices[site.name]
    changed_rows = 0
    for name, p in tiny_llama.named_parameters():
        rows = touched.get(p)
        if rows is None:
            assert torch.equal(p, before[name]), name
        else:
            mask = torch.ones(p.shape[0], dtype=torch.bool)
            mask[rows] = False
            assert torch.equal(p[mask], before[name][mask]), name
            changed_rows += int((p[rows] != before[name][rows]).any(1).sum())
    assert changed_rows > 0


@pytest.mark.parametrize("name", list(ex.CL_METHODS))
def test_every_method_runs_two_tasks(tiny_llama, default_tok, seq, name):
    run = ex.continual(tiny_llama, default_tok, seq, name, CONFIG)
    assert run.scores.shape == (2, 2) and run.nll.shape == (2, 2)
    assert np.isfinite(run.nll.values).all()
    assert ((run.scores.values >= 0) & (run.scores.values <= 1)).all()
    assert run.trainable_parameters > 0 and run.optimizer_state_bytes > 0
    assert set(run.summary()) >= {"CL", "FG", "BWT", "forgetting"}


def test_the_penalty_is_added_once_a_step_on_the_shared_loop(tiny_llama, default_tok, seq):
    """cl_methods.train_tensors runs tn.finetune's loop with a penalty: logged beside the loss
    (which stays the answer NLL), and its gradient reaches the trained tensors."""
    encoded = encode(default_tok, seq[0].train, max_length=CONFIG.max_length)

    def run(strength):
        model = copy.deepcopy(tiny_llama)
        params = [p for name, p in model.named_parameters() if ".mlp." in name]
        start = float(sum(p.detach().square().sum() for p in params))

        def penalty():  # pulls the FFN weights towards 0
            return strength * sum(p.square().sum() for p in params)

        history = cl_methods.train_tensors(
            model,
            default_tok,
            encoded,
            params,
            CONFIG.train_config(lr=1e-2, seed=0, steps=3),
            method="test",
            penalty=penalty if strength else None,
        )
        return model, history, start

    plain, plain_history, start = run(0)
    pulled, history, _ = run(1.0)
    assert "penalty" not in plain_history and history["penalty"].notna().all()
    assert history["penalty"].iloc[0] == pytest.approx(start, rel=1e-5)
    assert history["loss"].iloc[0] == plain_history["loss"].iloc[0]  # same weights at step 1
    assert history.attrs["trainable_parameters"] == sum(
        p.numel() for name, p in pulled.named_parameters() if ".mlp." in name
    )
    for (name, a), b in zip(plain.named_parameters(), pulled.parameters()):
        if ".mlp." in name:
            assert b.norm() < a.norm(), name
        else:  # not trained: bit-identical
            assert torch.equal(a, b) and torch.equal(a, dict(tiny_llama.named_parameters())[name])


@pytest.mark.parametrize("name", ["ewc", "olora"])
def test_accelerate_options_reach_the_cl_methods(tiny_llama, default_tok, seq, name):
    """ContinualConfig.mixed_precision / gradient_checkpointing train EWC and O-LoRA (whose
    second stage adds a penalty) on tn.finetune's loop: checkpointing gives the same weights
    to float rounding, bf16 autocast other weights, still float32."""

    def trained(**options):
        models = []
        ex.continual(
            lambda: models.append(copy.deepcopy(tiny_llama)) or models[-1],
            default_tok,
            seq,
            name,
            CONFIG.replace(eval_upcoming=False, **options),
        )
        return models[0]

    plain = trained()
    checkpointed = trained(gradient_checkpointing=True)
    bf16 = trained(mixed_precision="bf16")
    for (param, a), b in zip(plain.named_parameters(), checkpointed.parameters()):
        torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-6, msg=param)
    assert all(p.dtype == torch.float32 for p in bf16.parameters())
    assert any(not torch.equal(a, b) for a, b in zip(plain.parameters(), bf16.parameters()))
    assert not any(
        torch.equal(a, b)
        for a, b in zip(plain.parameters(), tiny_llama.parameters())
        if a.shape[0] == 64
    )  # the FFN's gate/up rows moved


@pytest.mark.skipif(not torch.cuda.is_available(), reason="fp16 autocast needs a GPU")
@pytest.mark.parametrize("name", ["ewc", "olora"])
def test_fp16_trains_the_penalty_methods_on_a_gpu(tiny_llama, default_tok, seq, name):
    models = []
    run = ex.continual(
        lambda: models.append(copy.deepcopy(tiny_llama).cuda()) or models[-1],
        default_tok,
        seq,
        name,
        CONFIG.replace(mixed_precision="fp16"),
    )
    assert np.isfinite(run.nll.values).all()
    assert all(p.dtype == torch.float32 and torch.isfinite(p).all() for p in models[0].parameters())
    assert any(
        not torch.equal(a.cpu(), b) for a, b in zip(models[0].parameters(), tiny_llama.parameters())
    )


class _Stop(Exception):
    pass


@pytest.mark.parametrize("name", ["wncft", "seqlora"])
def test_resume_equals_uninterrupted(tiny_llama, default_tok, seq, tmp_path, name, monkeypatch):
    full = ex.continual(tiny_llama, default_tok, seq, name, CONFIG)
    # Interrupted: stop while training stage 1.
    original = ex.CL_METHODS[name].train

    def train(self, model, tok, task, train, stage):
        if stage == 1:
            raise _Stop
        return original(self, model, tok, task, train, stage)

    monkeypatch.setattr(ex.CL_METHODS[name], "train", train)
    with pytest.raises(_Stop):
        ex.continual(tiny_llama, default_tok, seq, name, CONFIG, checkpoint=tmp_path / "run")
    monkeypatch.setattr(ex.CL_METHODS[name], "train", original)
    assert (tmp_path / "run" / "stage_0").is_dir()
    resumed = ex.continual(tiny_llama, default_tok, seq, name, CONFIG, checkpoint=tmp_path / "run")
    assert np.array_equal(resumed.scores.values, full.scores.values)
    assert np.array_equal(resumed.nll.values, full.nll.values)
    assert resumed.sets.keys() == full.sets.keys()
    assert all(resumed.sets[t] == full.sets[t] for t in full.sets)
    # The weights: a third run from the stage-1 checkpoint's model equals the uninterrupted one.
    uninterrupted = ex.continual(
        tiny_llama, default_tok, seq, name, CONFIG, checkpoint=tmp_path / "full"
    )
    a = torch.load(tmp_path / "run" / "stage_1" / "model.pt", weights_only=True)
    b = torch.load(tmp_path / "full" / "stage_1" / "model.pt", weights_only=True)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert np.array_equal(uninterrupted.scores.values, full.scores.values)


def test_forgetting_overlap_hand_matrix_and_sets():
    sizes = {"layers.0.mlp.up": 10}
    sets = {
        name: tn.NeuronSet({"layers.0.mlp.up": torch.tensor(idx)}, sizes)
        for name, idx in (("a", [0, 1, 2, 3]), ("b", [2, 3, 4, 5]), ("c", [0, 9]))
    }
    A = pd.DataFrame(
        [[0.8, 0.1, 0.2], [0.6, 0.9, 0.3], [0.5, 0.7, 0.7]], index=list("abc"), columns=list("abc")
    )
    run = ex.ContinualResult("seqft", list("abc"), A, A)
    with pytest.raises(ValueError, match="no neuron set"):
        ex.forgetting_overlap(run)
    df = ex.forgetting_overlap(run, sets)
    got = {(r.trained, r.task): (r.forgetting, r.overlap) for r in df.itertuples()}
    assert got.keys() == {("b", "a"), ("c", "a"), ("c", "b")}
    assert got["b", "a"] == pytest.approx((0.8 - 0.6, 2 / 6))  # {2,3} of {0..5}
    assert got["c", "a"] == pytest.approx((0.6 - 0.5, 1 / 5))  # {0} of {0,1,2,3,9}
    assert got["c", "b"] == pytest.approx((0.9 - 0.7, 0 / 6))


def test_ncft_run_keeps_the_sets_it_trained(tiny_llama, default_tok, seq):
    run = ex.continual(tiny_llama, default_tok, seq, "ncft", CONFIG)
    assert list(run.sets) == [t.name for t in seq]
    assert all(len(s) > 0 for s in run.sets.values())
    df = ex.forgetting_overlap(run)
    assert len(df) == 1 and 0 <= df.overlap.iloc[0] <= 1
    assert ex.continual(tiny_llama, default_tok, seq, "seqft", CONFIG).sets == {}


def test_without_upcoming_tasks_the_lower_triangle_and_metrics_are_unchanged(
    tiny_llama, default_tok, seq
):
    full = ex.continual(tiny_llama, default_tok, seq, "seqft", CONFIG)
    lower = ex.continual(tiny_llama, default_tok, seq, "seqft", CONFIG.replace(eval_upcoming=False))
    A, B = full.scores.to_numpy(), lower.scores.to_numpy()
    assert np.isnan(B[0, 1]) and np.isnan(lower.nll.to_numpy()[0, 1]) and not np.isnan(A[0, 1])
    seen = np.tril(np.ones_like(A, dtype=bool))
    assert np.array_equal(A[seen], B[seen])
    assert lower.metrics == full.metrics


def test_checkpoint_of_other_settings_is_refused(tiny_llama, default_tok, seq, tmp_path):
    ex.continual(tiny_llama, default_tok, seq[:1], "seqft", CONFIG, checkpoint=tmp_path)
    with pytest.raises(ValueError, match="other settings"):
        ex.continual(
            tiny_llama, default_tok, seq[:1], "seqft", CONFIG.replace(steps=3), checkpoint=tmp_path
        )


def test_wncft_with_one_hot_weights_recovers_the_stage_model(tiny_llama, default_tok, seq):
    """With one stage the mixture is that stage's rows: W-NCFT's scores equal NCFT's."""
    config = CONFIG.replace(wncft_temperature=1e-3)
    w = ex.continual(tiny_llama, default_tok, seq[:1], "wncft", config)
    n = ex.continual(tiny_llama, default_tok, seq[:1], "ncft", config)
    assert np.allclose(w.nll.values, n.nll.values, atol=1e-5)
    assert np.array_equal(w.scores.values, n.scores.values)


def test_unknown_method_and_references(tiny_llama, default_tok, seq):
    with pytest.raises(ValueError, match="unknown method"):
        ex.continual(tiny_llama, default_tok, seq, "nope", CONFIG)
    refs = ex.continual_references(tiny_llama, default_tok, seq, CONFIG)
    assert set(refs["reference"]) == {"per_task", "multitask"} and len(refs) == 4


def test_continual_plots_draw_into_given_axes():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd

    from taskneuron_utils import plots

    names = ["a", "b", "c"]
    scores = pd.DataFrame(
        [[0.8, 0.1, 0.2], [0.6, 0.9, 0.3], [0.4, 0.6, 0.7]], index=names, columns=names
    )
    fig, axes = plt.subplots(1, 3)
    assert plots.plot_cl_matrix(scores, ax=axes[0]) is axes[0]
    assert plots.plot_cl_trajectories(scores, ax=axes[1]) is axes[1]
    summary = pd.DataFrame(
        [
            {"method": "seqft", "CL": 40.0, "FG": 50.0},
            {"method": "seqft", "CL": 44.0, "FG": 55.0},
            {"method": "ncft", "CL": 60.0, "FG": 80.0},
        ]
    )
    assert plots.plot_cl_summary(summary, reference=70.0, ax=axes[2]) is axes[2]
    plt.close(fig)


def test_offline_sequences_are_distinct_classification_tasks():
    suite = tn.load_tasks(list(ex.QUICK_SEQUENCE_8))
    assert len(set(ex.QUICK_SEQUENCE_8)) == 8 and ex.QUICK_SEQUENCE_8[:4] == ex.QUICK_SEQUENCE_4
    for task in suite.values():
        assert task.category == "classification" and len(task.train) >= 1000, task
    assert len(suite["entity_type"].labels) == 10
    for number, order in ex.QUICK_ORDERS.items():
        assert sorted(order) == sorted(ex.QUICK_SEQUENCE_4 if number <= 3 else ex.QUICK_SEQUENCE_8)


def test_choose_lrs_takes_the_lowest_mean_dev_nll_over_the_stages(tiny_llama, default_tok, seq):
    """Two stages, two lrs: the choice is the lr whose sequential run (the method's own
    inference) leaves the lower mean dev NLL over both tasks, recomputed here by hand."""
    from taskneuron_utils.experiments.common import sample

    tasks, lrs = seq[:2], (1e-4, 1e-1)
    chosen = ex.choose_lrs(tiny_llama, default_tok, tasks, ["seqft", "ncft"], lrs, CONFIG)
    assert set(chosen) == {"seqft", "ncft"} and set(chosen.values()) <= set(lrs)
    nll = {}
    for lr in lrs:
        method = ex.make_method("seqft", CONFIG.replace(method_lrs=(("seqft", lr),)))
        model = copy.deepcopy(tiny_llama)
        for stage, task in enumerate(tasks):
            train = sample(task.train, CONFIG.examples, CONFIG.seed)
            method.before_task(model, default_tok, task, stage)
            method.train(model, default_tok, task, train, stage)
            method.after_task(model, default_tok, task, train, stage)
        nll[lr] = np.mean(
            [
                method.evaluate(model, default_tok, sample(t.dev, CONFIG.n_dev, CONFIG.seed))["nll"]
                for t in tasks
            ]
        )
    assert nll[1e-4] != nll[1e-1]  # the two lrs lead to different models
    assert chosen["seqft"] == min(lrs, key=nll.get)
    # One task: the one-stage choice, the same function.
    assert set(ex.choose_lrs(tiny_llama, default_tok, tasks[0], ["seqft"], lrs, CONFIG)) == {
        "seqft"
    }
    # One lr: nothing to choose, so no model is even loaded.

    def no_model():
        raise AssertionError("choose_lrs trained with a single lr")

    assert ex.choose_lrs(no_model, default_tok, tasks, ["seqft", "ncft"], (3e-4,), CONFIG) == {
        "seqft": 3e-4,
        "ncft": 3e-4,
    }


@pytest.mark.parametrize("generation", [False, True])
def test_wncft_batched_inference_equals_one_example_at_a_time(
    tiny_llama, default_tok, seq, generation
):
    """W-NCFT scores a batch with per-row mixtures; the ground truth scores each example alone
    with its combined rows sum_s w_s theta_s written into an edit (the definition), per example
    and with mixtures that differ between the examples of a batch."""
    from taskneuron_utils.scoring.evaluation import evaluate
    from tiny_models import swap_task

    method = ex.make_method("wncft", CONFIG.replace(wncft_temperature=0.5))
    model = copy.deepcopy(tiny_llama)
    for stage, task in enumerate(seq):
        method.before_task(model, default_tok, task, stage)
        method.train(model, default_tok, task, task.train[:8], stage)
        method.after_task(model, default_tok, task, task.train[:8], stage)
    split = swap_task().test if generation else seq[0].test
    snaps = method._snapshots()
    # Mixtures that differ from example to example: each example its own stage, alternating.
    weights = torch.eye(len(seq))[torch.arange(len(split)) % len(seq)]
    with method._mixed_edit(model, snaps, weights):
        batched = evaluate(
            model,
            default_tok,
            split,
            batch_size=4,
            progress=False,
            share_prefix="prompt",
            per_example=True,
        )["examples"]
        plain = evaluate(
            model,
            default_tok,
            split,
            batch_size=4,
            progress=False,
            share_prefix=False,
            per_example=True,
        )["examples"]
    assert np.allclose(batched["nll_sum"], plain["nll_sum"], rtol=1e-4)
    alone = []
    for i in range(len(split)):
        combined = {
            n: (u, torch.einsum("s,sui->ui", weights[i].to(r), r)) for n, (u, r) in snaps.items()
        }
        with method._rows_edit(model, combined):
            alone.append(
                evaluate(
                    model,
                    default_tok,
                    split[i : i + 1],
                    batch_size=1,
                    progress=False,
                    per_example=True,
                )["examples"]["nll_sum"][0]
            )
    assert np.allclose(batched["nll_sum"], alone, rtol=1e-4)
    # The stages' rows differ: the odd examples (stage 1 above) score otherwise on stage 0.
    with method._mixed_edit(model, snaps, torch.eye(len(seq))[[0] * len(split)]):
        first = evaluate(
            model,
            default_tok,
            split,
            batch_size=4,
            progress=False,
            share_prefix="prompt",
            per_example=True,
        )["examples"]["nll_sum"]
    assert not np.allclose(first[1::2], batched["nll_sum"][1::2], rtol=1e-4)
    # The method's own inference is the same mechanism with its own weights.
    own = method.weights(model, default_tok, split)
    with method._mixed_edit(model, snaps, own):
        direct = evaluate(
            model, default_tok, split, batch_size=4, progress=False, share_prefix="prompt"
        )
    assert method.evaluate(model, default_tok, split)["nll"] == pytest.approx(direct["nll"])
    with (
        pytest.raises(RuntimeError, match="per example"),
        method._mixed_edit(model, snaps, weights),
    ):
        model(input_ids=torch.tensor([[1, 2, 3]]))


def test_record_table5_and_figures_from_hand_made_runs(tmp_path, monkeypatch):
    """The record's Table 5: CL per method is the mean (and std) over orders of each run's last
    row; the references' CL is the mean of their per-task scores; the figures are written."""
    import importlib
    from pathlib import Path

    import matplotlib

    matplotlib.use("Agg")
    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[1] / "benchmarks"))
    record = importlib.import_module("replication_continual")
    folder = tmp_path / "continual"
    folder.mkdir()
    order = list(ex.QUICK_SEQUENCE_4)
    last_rows = {
        ("seqft", 1): [0.2, 0.4, 0.6, 0.8],
        ("seqft", 2): [0.4, 0.4, 0.4, 0.4],
        ("ncft", 1): [0.5, 0.5, 0.5, 0.9],
        ("seqlora", 1): [0.9] * 4,
    }
    for (method, number), last in last_rows.items():
        A = np.tril(np.full((4, 4), 0.9))
        A[-1] = last
        index = pd.Index(order, name="after")
        run = ex.ContinualResult(
            method,
            order,
            pd.DataFrame(A, index=index, columns=order),
            pd.DataFrame(1 - A, index=index, columns=order),
        )
        frame = run.to_frame().assign(**{k: v for k, v in run.summary().items() if k != "method"})
        frame.assign(order_number=number).to_csv(
            folder / f"{method}_order{number}.csv", index=False
        )
    pd.DataFrame(
        {
            "reference": ["per_task"] * 4 + ["multitask"] * 4,
            "task": order * 2,
            "score": [1.0, 0.8, 0.6, 0.4, 0.5, 0.5, 0.5, 0.7],
            "nll": 0.1,
            "tasks": 4,
        }
    ).to_csv(folder / "references_4.csv", index=False)
    table = record.table5(folder).set_index("method")
    assert table.loc["seqft", "CL_4"] == pytest.approx(45.0)  # (50 + 40) / 2
    assert table.loc["seqft", "CL_4_std"] == pytest.approx(np.std([50, 40], ddof=1))
    assert table.loc["seqft", "orders_4"] == 2 and table.loc["ncft", "CL_4"] == pytest.approx(60)
    assert table.loc["per_task", "CL_4"] == pytest.approx(70.0)
    assert table.loc["multitask", "CL_4"] == pytest.approx(55.0)
    assert table.loc["ncft", "paper_CL_4"] == ex.PAPER_TABLE5["ncft"][0]
    # FG: the mean of last row / diagonal, x100 (ncft's diagonal is 0.9 throughout)
    assert table.loc["ncft", "FG_4"] == pytest.approx((0.5 + 0.5 + 0.5 + 0.9) / 0.9 / 4 * 100)
    pairs = record.orderings(folder).set_index(["a", "b"])
    assert pairs.loc[("seqlora", "seqft"), "orders_4"] == 1  # seqlora has order 1 only
    assert pairs.loc[("seqlora", "seqft"), "diff_4"] == pytest.approx(40.0)  # 90 - 50
    assert pairs.loc[("ncft", "seqlora"), "diff_4"] == pytest.approx(-30.0)  # 60 - 90
    assert pairs.loc[("per_task", "seqft"), "diff_4"] == pytest.approx(25.0)  # 70 - (50 + 40) / 2
    assert pairs.loc[("per_task", "seqft")][["min_4", "max_4"]].tolist() == pytest.approx([20, 30])
    assert pairs.loc[("per_task", "seqft"), "a_above_b_every_order"]
    assert pairs.loc[("per_task", "seqlora"), "diff_4"] == pytest.approx(-20.0)  # 70 - 90
    assert not pairs.loc[("per_task", "seqlora"), "a_above_b_every_order"]
    record.summarize_continual(tmp_path)
    for name in (
        "continual_cl.png",
        "continual_matrices_order1.png",
        "continual_trajectories_order2.png",
    ):
        assert (tmp_path / name).stat().st_size > 0, name
