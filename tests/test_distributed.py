"""Data-parallel attribution: 2 and 3 CPU processes (gloo) against one process.

Each test launches its processes with ``torch.multiprocessing.spawn``; every process builds the
same tiny random Llama (same seed) and attributes the same 10 examples in batches of 2 (5
batches: uneven shares). The processes write what they return to files the parent checks.
"""

import os
import traceback

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from taskneuron_utils.attribution.run import AttributionError, Relevance, attribute
from launch import free_port, load_tok
from tiny_models import swap_task, tiny_model

N_EXAMPLES, BATCH = 10, 2


def setup(tok_path):
    tok = load_tok(tok_path)
    model = tiny_model("llama", seed=1, vocab_size=len(tok))
    return model, tok, swap_task().train[:N_EXAMPLES]


def worker(rank, world, port, out, tok_path):
    torch.set_num_threads(1)
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        model, tok, data = setup(tok_path)
        rel = attribute(model, tok, data, batch_size=BATCH, progress=False)
        rel.save(os.path.join(out, f"rel.rank{rank}.safetensors"))

        # Ranks that pass different data all raise, before any work (no hang).
        mine = data if rank else data[: N_EXAMPLES - 1]
        try:
            attribute(model, tok, mine, batch_size=BATCH, progress=False)
        except AttributionError as error:
            with open(os.path.join(out, f"mismatch.rank{rank}.txt"), "w") as f:
                f.write(str(error))

        # Interrupted on every rank's last own batch (before the sums are gathered), then
        # resumed from the per-rank checkpoints (a rank with one batch has none: it starts over).
        checkpoint = os.path.join(out, "ckpt.safetensors")
        calls, own = {"n": 0}, len(range(rank, -(-N_EXAMPLES // BATCH), world))

        def interrupt_on_last_batch(module, args):
            calls["n"] += 1
            if calls["n"] == own:
                raise KeyboardInterrupt

        handle = model.get_input_embeddings().register_forward_pre_hook(interrupt_on_last_batch)
        try:
            attribute(
                model,
                tok,
                data,
                batch_size=BATCH,
                checkpoint=checkpoint,
                checkpoint_every=1,
                progress=False,
            )
        except KeyboardInterrupt:
            pass
        handle.remove()
        dist.barrier()
        resumed = attribute(
            model,
            tok,
            data,
            batch_size=BATCH,
            checkpoint=checkpoint,
            checkpoint_every=1,
            progress=False,
        )
        resumed.save(os.path.join(out, f"resumed.rank{rank}.safetensors"))
    except BaseException:
        with open(os.path.join(out, f"error.rank{rank}.txt"), "w") as f:
            f.write(traceback.format_exc())
        raise
    finally:
        dist.destroy_process_group()


@pytest.mark.parametrize("world", [2, pytest.param(3, marks=pytest.mark.slow)])
def test_data_parallel_equals_one_process(world, default_tok, tmp_path):
    from taskneuron_utils.core.models import default_model_path

    tok_path = str(default_model_path())
    mp.spawn(worker, args=(world, free_port(), str(tmp_path), tok_path), nprocs=world, join=True)

    # The workers run one thread each; so does the reference, so that both reduce their sums in
    # the same order.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        model, tok, data = setup(tok_path)
        one = attribute(model, tok, data, batch_size=BATCH, progress=False)
    finally:
        torch.set_num_threads(threads)
    ranks = [Relevance.load(tmp_path / f"rel.rank{r}.safetensors") for r in range(world)]
    resumed = [Relevance.load(tmp_path / f"resumed.rank{r}.safetensors") for r in range(world)]
    for rel in ranks + resumed:  # identical on every rank, and after a resume
        assert rel.n_examples == one.n_examples == N_EXAMPLES
        assert rel.n_tokens == one.n_tokens
        assert rel.provenance == one.provenance
        assert rel.top_k(0.1) == one.top_k(0.1) and rel.top_k(0.1, per="global") == one.top_k(
            0.1, per="global"
        )
        for site in one.sum_abs:
            assert torch.equal(rel.sum_abs[site], ranks[0].sum_abs[site])
            assert torch.equal(rel.sum_signed[site], ranks[0].sum_signed[site])
            assert rel.sum_abs[site].dtype == torch.float64
            torch.testing.assert_close(rel.sum_abs[site], one.sum_abs[site], rtol=1e-9, atol=0)
            scale = one.sum_abs[site].abs().max()
            torch.testing.assert_close(
                rel.sum_signed[site], one.sum_signed[site], rtol=1e-9, atol=1e-9 * float(scale)
            )

    for r in range(world):
        message = (tmp_path / f"mismatch.rank{r}.txt").read_text()
        assert f"the {world} processes disagree on n_examples, data_hash" in message

    assert sorted(p.name for p in tmp_path.glob("ckpt*")) == [
        f"ckpt.rank{r}-of-{world}.safetensors" for r in range(world)
    ]
    with pytest.raises(AttributionError, match=f"another number of processes .*-of-{world}"):
        attribute(
            model,
            tok,
            data,
            batch_size=BATCH,
            checkpoint=tmp_path / "ckpt.safetensors",
            progress=False,
        )


def test_one_process_checkpoint_is_refused_by_several(tmp_path):
    """A multi-process run names the one-process file as made by another number of processes
    (``attribute`` then refuses it, as the 2-process test shows for the reverse case)."""
    from taskneuron_utils.core.parallel import rank_file

    path = tmp_path / "ckpt.safetensors"
    path.write_bytes(b"")
    assert rank_file(path, 1, 2) == (tmp_path / "ckpt.rank1-of-2.safetensors", ["ckpt.safetensors"])
    assert rank_file(path, 0, 1) == (path, [])
