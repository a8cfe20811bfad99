"""finetune on accelerate: 2 CPU processes (gloo) against one, mixed precision, gradient
checkpointing; the continual-learning methods with a penalty (EWC, O-LoRA) on the same loop.

The data-parallel test launches its processes with ``torch.multiprocessing.spawn`` and gives
them the environment ``torchrun`` gives (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, ...) but no
process group: ``finetune``'s accelerator makes it, as under ``torchrun`` or ``accelerate
launch``. Every process builds the same tiny random Llama and trains it on the same examples;
the weights go to files the parent compares with a one-process run of the same global batch.
"""

import os
import traceback

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

import taskneuron_utils as tn
from taskneuron_utils import experiments as ex
from taskneuron_utils.neurons.neuron_set import NeuronSet, layout_of
from launch import free_port, load_tok
from tiny_models import label_sequence, swap_task, tiny_model

WORLD = 2
# A global batch of 5: ranks take 2 and 3 examples (uneven shares); 4 steps.
RUN = dict(steps=4, lr=1e-2, batch_size=5, progress=False)
# The same global batch of 5 for every stage of a continual run; two tasks, so the second stage
# trains with EWC's or O-LoRA's penalty.
CL_CONFIG = ex.ContinualConfig(
    examples=8,
    steps=3,
    batch_size=5,
    lr=1e-2,
    n_eval=4,
    lora_r=2,
    ewc_samples=2,
    max_length=64,
    eval_batch_size=4,
    eval_upcoming=False,
    progress=False,
)
CL_METHODS = ("ewc", "olora")


def model_and_options(method, tok):
    """A fresh tiny Llama (seed 1) and finetune's options for ``method``: for "neurons", 20%
    of every linear site's units, drawn with seed 0."""
    model = tiny_model("llama", seed=1, vocab_size=len(tok))
    if method == "full":
        return model, {"method": "full"}
    layout = layout_of(model)
    template = NeuronSet({s: torch.arange(round(0.2 * n)) for s, n in layout.items()}, layout)
    return model, {"neurons": NeuronSet.random_like(template, seed=0)}


def train(method, tok, **options):
    model, extra = model_and_options(method, tok)
    history = tn.finetune(model, tok, swap_task().train, **RUN, **extra, **options)
    return model, history


def continual(method, tok, checkpoint=None):
    """(trained model, ContinualResult) of a continual run from a fresh tiny Llama (seed 1)."""
    models = []

    def loader():
        models.append(tiny_model("llama", seed=1, vocab_size=len(tok)))
        return models[-1]

    run = ex.continual(loader, tok, label_sequence(), method, CL_CONFIG, checkpoint=checkpoint)
    return models[0], run


def worker(rank, world, port, out, tok_path):
    torch.set_num_threads(1)
    os.environ.update(
        RANK=str(rank),
        WORLD_SIZE=str(world),
        LOCAL_RANK=str(rank),
        LOCAL_WORLD_SIZE=str(world),
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
        OMP_NUM_THREADS="1",
    )
    try:
        tok = load_tok(tok_path)
        for method in ("neurons", "full"):
            model, history = train(method, tok)
            torch.save(
                {
                    "weights": model.state_dict(),
                    "loss": history["loss"].tolist(),
                    "attrs": history.attrs,
                },
                os.path.join(out, f"{method}.rank{rank}.pt"),
            )
        for method in CL_METHODS:  # rank 0 alone writes the checkpoint folder
            model, run = continual(method, tok, checkpoint=os.path.join(out, f"cl_{method}"))
            torch.save(
                {"weights": model.state_dict(), "nll": run.nll.to_numpy()},
                os.path.join(out, f"{method}.rank{rank}.pt"),
            )
        try:  # ranks that pass different options all raise, before any step (no hang)
            train("neurons", tok, seed=rank)
        except RuntimeError as error:
            with open(os.path.join(out, f"mismatch.rank{rank}.txt"), "w") as f:
                f.write(str(error))
    except BaseException:
        with open(os.path.join(out, f"error.rank{rank}.txt"), "w") as f:
            f.write(traceback.format_exc())
        raise
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


def changeable(model, neurons) -> dict[str, torch.Tensor]:
    """{parameter name: bool mask of the entries neuron training may change}."""
    names = {id(p): name for name, p in model.named_parameters()}
    masks = {name: torch.zeros_like(p, dtype=torch.bool) for name, p in model.named_parameters()}
    for site_name, idx in neurons.indices.items():
        for param, dim, index in tn.core.site_map(model)[site_name].entries(idx):
            masks[names[id(param)]].index_fill_(dim, index, True)
    return masks


def assert_only_selected_changed(weights, before, masks):
    for name, mask in masks.items():
        assert torch.equal(weights[name][~mask], before[name][~mask]), name  # bit-identical
    assert any(not torch.equal(weights[n][m], before[n][m]) for n, m in masks.items() if m.any())


@pytest.fixture(scope="module")
def two_processes(default_tok, tmp_path_factory):
    """The folder the two workers wrote their results to (one launch for the module)."""
    from taskneuron_utils.core.models import default_model_path

    out = tmp_path_factory.mktemp("ranks")
    mp.spawn(
        worker,
        args=(WORLD, free_port(), str(out), str(default_model_path())),
        nprocs=WORLD,
        join=True,
    )
    return out


@pytest.fixture
def one_thread():
    """One thread, as the workers: float sums then round alike."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_two_processes_equal_one_with_the_same_global_batch(default_tok, two_processes, one_thread):
    for method in ("neurons", "full"):
        one, history = train(method, default_tok)
        ranks = [torch.load(two_processes / f"{method}.rank{r}.pt") for r in range(WORLD)]
        for run in ranks:
            assert run["attrs"]["processes"] == WORLD and history.attrs["processes"] == 1
            assert run["attrs"]["examples_per_step"] == 5
            assert run["loss"] == pytest.approx(history["loss"].tolist(), rel=1e-5)
            for name, value in one.state_dict().items():
                assert torch.equal(run["weights"][name], ranks[0]["weights"][name]), name
                torch.testing.assert_close(run["weights"][name], value, rtol=1e-5, atol=1e-5)
        if method == "neurons":
            model, options = model_and_options(method, default_tok)
            before = {name: p.detach().clone() for name, p in model.named_parameters()}
            masks = changeable(model, options["neurons"])
            for run in ranks:
                assert_only_selected_changed(run["weights"], before, masks)
    for r in range(WORLD):
        message = (two_processes / f"mismatch.rank{r}.txt").read_text()
        assert f"the {WORLD} processes disagree on seed" in message


@pytest.mark.parametrize("method", CL_METHODS)
def test_continual_learning_with_a_penalty_on_two_processes(
    method, default_tok, two_processes, one_thread
):
    """EWC and O-LoRA add their penalty once a step; rank 0 alone writes the checkpoints."""
    one, run = continual(method, default_tok)
    ranks = [
        torch.load(two_processes / f"{method}.rank{r}.pt", weights_only=False) for r in range(WORLD)
    ]
    folder = two_processes / f"cl_{method}"
    assert sorted(p.name for p in folder.iterdir()) == ["stage_1"]
    saved = torch.load(folder / "stage_1" / "model.pt")
    for name, value in one.state_dict().items():
        assert torch.equal(ranks[1]["weights"][name], ranks[0]["weights"][name]), name
        assert torch.equal(saved[name], ranks[0]["weights"][name]), name
        # AdamW's first steps move an entry by about lr * sign(gradient), so rounding can move
        # one with a near-zero gradient by ~2e-5; a penalty added on every rank (counted twice)
        # moves hundreds of entries by 5e-4 to 3e-3.
        torch.testing.assert_close(
            ranks[0]["weights"][name],
            value,
            rtol=1e-5,
            atol=1e-4,
            msg=lambda m, name=name: f"{name}: {m}",
        )
    np.testing.assert_allclose(ranks[0]["nll"], run.nll.to_numpy(), rtol=1e-5)


def test_bf16_mixed_precision_trains_only_the_selected_rows(default_tok):
    model, options = model_and_options("neurons", default_tok)
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    history = tn.finetune(
        model, default_tok, swap_task().train, mixed_precision="bf16", **RUN, **options
    )
    assert history.attrs["mixed_precision"] == "bf16"
    assert history["loss"].notna().all()
    assert all(p.dtype == torch.float32 for p in model.parameters())
    assert_only_selected_changed(model.state_dict(), before, changeable(model, options["neurons"]))
    # Autocast ran: float32 training gives other weights (here, after a float32 run, in one
    # process: a second accelerator with another precision is no error).
    float32, _ = train("neurons", default_tok)
    assert any(not torch.equal(a, b) for a, b in zip(model.parameters(), float32.parameters()))


@pytest.mark.parametrize("method", ["neurons", "full"])
def test_gradient_checkpointing_gives_the_same_weights(method, default_tok):
    plain, _ = train(method, default_tok)
    checkpointed, _ = train(method, default_tok, gradient_checkpointing=True)
    for (name, a), b in zip(plain.named_parameters(), checkpointed.parameters()):
        torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-6, msg=name)
    # Switched off again, and no hook left behind (transformers 5 adds one to the embeddings).
    assert not any(getattr(m, "gradient_checkpointing", False) for m in checkpointed.modules())
    assert all(not m._forward_hooks for m in checkpointed.modules())


def test_fp16_on_the_cpu_is_refused_before_any_work(default_tok):
    model, options = model_and_options("neurons", default_tok)
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    with pytest.raises(ValueError, match="fp16.* needs a GPU.*use mixed_precision='bf16'"):
        tn.finetune(model, default_tok, swap_task().train, mixed_precision="fp16", **RUN, **options)
    with pytest.raises(ValueError, match="mixed_precision must be one of"):
        tn.finetune(model, default_tok, swap_task().train, mixed_precision="fp32", **RUN)
    assert all(torch.equal(p, before[name]) for name, p in model.named_parameters())


def test_a_callers_accelerator_keeps_its_settings(default_tok):
    """accelerate's state is process-wide; finetune sets it aside and puts it back."""
    from accelerate import Accelerator
    from accelerate.state import AcceleratorState

    try:
        mine = Accelerator(mixed_precision="no", cpu=True)
        train("neurons", default_tok, mixed_precision="bf16")
        assert mine.mixed_precision == "no" and AcceleratorState().mixed_precision == "no"
    finally:
        AcceleratorState._reset_state(reset_partial_state=True)
