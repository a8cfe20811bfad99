"""Models split by a device_map (``tn.load_model(path, dtype="bfloat16", device_map=...)``):
attribution, deactivation and evaluation give what the same model gives in one piece.

On the CPU, a tiny random Llama saved to a folder is loaded with its layer 1 and LM head
offloaded to disk: accelerate keeps their weights as meta tensors and loads them for each
forward pass. With a GPU, also: CPU offload onto the GPU (how a model larger than the GPU
runs), and a model whose layers run on two devices (the GPU and the CPU), as over several GPUs.
"""

import pytest
import torch

import taskneuron_utils as tn
from taskneuron_utils.core.placement import input_device
from tiny_models import label_task, swap_task

DISK = {
    "model.embed_tokens": "cpu",
    "model.rotary_emb": "cpu",
    "model.layers.0": "cpu",
    "model.layers.1": "disk",
    "model.norm": "cpu",
    "lm_head": "disk",
}
cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")


@pytest.fixture
def folder(tmp_path, tiny_llama, default_tok):
    tiny_llama.save_pretrained(tmp_path / "model")
    default_tok.save_pretrained(tmp_path / "model")
    return tmp_path / "model"


def layer1_set(model) -> tn.NeuronSet:
    """A quarter of the units of layer 1's up and down projections (the offloaded layer)."""
    sizes = tn.layout_of(model)
    return tn.NeuronSet(
        {"layers.1.mlp.up": torch.arange(0, 64, 4), "layers.1.mlp.down": torch.arange(0, 32, 4)},
        sizes,
    )


def assert_same_results(whole, split, tok, rtol):
    """Relevance, and evaluation with and without layer 1's set switched off, on ``whole`` and
    ``split`` agree to ``rtol``; the switch-off changes the NLL."""
    data = swap_task().train[:6]
    rel, rel_split = (
        tn.attribute(m, tok, data, batch_size=3, progress=False) for m in (whole, split)
    )
    assert rel_split.provenance == rel.provenance  # the weights' fingerprint included
    for site, total in rel.sum_abs.items():
        assert total.abs().max() > 0, site
        torch.testing.assert_close(rel_split.sum_abs[site], total, rtol=rtol, atol=0)
    assert rel_split.top_k(0.1) == rel.top_k(0.1)
    for task in (swap_task(), label_task("colour", ["red", "blue"], ["yes", "no"])):
        scores = {}
        for name, model in (("whole", whole), ("split", split)):
            on = tn.evaluate(model, tok, task.test, progress=False)
            with tn.deactivate(model, layer1_set(model)):
                off = tn.evaluate(model, tok, task.test, progress=False)
            scores[name] = (on, off)
            assert abs(off["nll"] - on["nll"]) > 1e-3, (task.name, name)
        for a, b in zip(scores["whole"], scores["split"]):
            assert b["nll"] == pytest.approx(a["nll"], rel=rtol)
            assert b["predictions"] == a["predictions"]


def test_a_disk_offloaded_model_gives_the_whole_models_results(folder, tmp_path):
    whole, tok = tn.load_model(folder, dtype="bfloat16")
    split, _ = tn.load_model(
        folder, dtype="bfloat16", device_map=DISK, offload_folder=tmp_path / "offload"
    )
    site = tn.core.site_map(split)["layers.1.mlp.up"]
    assert split.hf_device_map["model.layers.1"] == "disk" and site.module.weight.is_meta
    assert input_device(split) == torch.device("cpu")
    assert_same_results(whole, split, tok, rtol=1e-6)
    # Reading an offloaded neuron's parameters reads the stored values, and offloads again.
    assert torch.equal(site.read([3, 5]), tn.core.site_map(whole)["layers.1.mlp.up"].read([3, 5]))
    assert site.module.weight.is_meta


def test_writing_offloaded_weights_is_refused(folder, tmp_path, toy_task):
    whole, tok = tn.load_model(folder, dtype="bfloat16")
    split, _ = tn.load_model(
        folder, dtype="bfloat16", device_map=DISK, offload_folder=tmp_path / "offload"
    )
    ns = layer1_set(split)
    before = tn.evaluate(split, tok, toy_task.test, progress=False)["nll"]
    with pytest.raises(tn.errors.OffloadedWeightsError, match="mode='activation'"):
        with tn.deactivate(split, ns, mode="weight"):
            pass
    with pytest.raises(tn.errors.OffloadedWeightsError, match="training writes weights in place"):
        tn.finetune(split, tok, toy_task.train, neurons=ns, steps=1, progress=False)
    # Weight mode works where the weights are in memory (layer 0 here), on the same model.
    layer0 = tn.NeuronSet({"layers.0.mlp.up": torch.arange(8)}, tn.layout_of(split))
    with tn.deactivate(split, layer0, mode="weight"):
        assert tn.evaluate(split, tok, toy_task.test, progress=False)["nll"] != before
    assert tn.evaluate(split, tok, toy_task.test, progress=False)["nll"] == before


@cuda
def test_cpu_offload_onto_a_gpu(folder):
    whole, tok = tn.load_model(folder, dtype="bfloat16", device="cuda:0")
    split, _ = tn.load_model(
        folder,
        dtype="bfloat16",
        device_map={
            "model.embed_tokens": 0,
            "model.rotary_emb": 0,
            "model.layers.0": 0,
            "model.layers.1": "cpu",
            "model.norm": 0,
            "lm_head": "cpu",
        },
    )
    assert tn.core.site_map(split)["layers.1.mlp.up"].module.weight.is_meta
    assert input_device(split) == torch.device("cuda", 0)
    assert_same_results(whole, split, tok, rtol=1e-6)


@cuda
def test_layers_on_two_devices(folder):
    """Layers 0 and the final norm run on the CPU, the rest on cuda:0 (float32, against the
    whole model on the CPU): every boundary between devices is crossed both ways."""
    from accelerate import dispatch_model

    whole, tok = tn.load_model(folder)
    split, _ = tn.load_model(folder)
    # main_device="cpu": modules mapped to the CPU run there instead of being offloaded.
    dispatch_model(
        split,
        {
            "model.embed_tokens": 0,
            "model.rotary_emb": 0,
            "model.layers.0": "cpu",
            "model.layers.1": 0,
            "model.norm": "cpu",
            "lm_head": 0,
        },
        main_device="cpu",
    )
    assert input_device(split) == torch.device("cuda", 0)
    assert tn.core.site_map(split)["layers.1.mlp.up"].module.weight.device.type == "cuda"
    assert_same_results(whole, split, tok, rtol=1e-4)
