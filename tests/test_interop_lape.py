"""LAPE's neuron files and the flat (CSV / Parquet) export: exact round trips, and refusals
that name the mismatch."""

import pandas as pd
import pytest
import torch

import taskneuron_utils as tn
from taskneuron_utils.io.storage import ArtefactFileError


def act_set(model, seed, k=0.25):
    """A seeded random set over the model's act units (k of every layer)."""
    empty = tn.NeuronSet.empty(model, kinds="act")
    generator = torch.Generator().manual_seed(seed)
    chosen = {
        site: torch.randperm(n, generator=generator)[: int(k * n)]
        for site, n in empty.sizes.items()
    }
    return tn.NeuronSet(chosen, empty.sizes, {"model": empty.meta["model"], "name": f"s{seed}"})


def test_lape_file_round_trip_is_exact(tiny_llama, tmp_path):
    sets = {"fr": act_set(tiny_llama, 0), "de": act_set(tiny_llama, 1)}
    path = tn.NeuronSet.save_lape(sets, tmp_path / "mask.neuron.pth")
    raw = torch.load(path, weights_only=True)  # LAPE's own reading: a list of lists
    assert len(raw) == 2 and len(raw[0]) == tiny_llama.config.num_hidden_layers
    assert raw[1][1].dtype == torch.long
    torch.testing.assert_close(raw[1][1], sets["de"].indices["layers.1.mlp.act"])
    back = tn.NeuronSet.from_lape(path, tiny_llama, names=["fr", "de"])
    assert list(back) == ["fr", "de"]
    for name in sets:
        assert back[name] == sets[name]
        back[name].check_fits(tiny_llama)
    assert [t.tolist() for t in sets["fr"].to_lape()] == [t.tolist() for t in raw[0]]


def test_lape_masks_written_by_hand_are_read(tiny_llama):
    """The structure LAPE's identify.py writes, built by hand: layer 0 units 3 and 1, layer 1
    nothing."""
    masks = [[torch.tensor([3, 1]), torch.tensor([], dtype=torch.long)]]
    (only,) = tn.NeuronSet.from_lape(masks, tiny_llama).values()
    assert only.indices["layers.0.mlp.act"].tolist() == [1, 3]
    assert len(only) == 2 and ("layers.0.mlp.act", 3) in only


def test_lape_mismatches_are_named(tiny_llama, tmp_path):
    three_layers = [[torch.tensor([0])] * 3]
    with pytest.raises(tn.errors.NeuronSetMismatchError, match="has 3 layers, model .* has 2"):
        tn.NeuronSet.from_lape(three_layers, tiny_llama)
    too_wide = [[torch.tensor([64]), torch.tensor([0])]]  # d_ff = 64
    with pytest.raises(
        tn.errors.NeuronSetMismatchError, match="layers.0.mlp.act holds index 64.* 64 units wide"
    ):
        tn.NeuronSet.from_lape(too_wide, tiny_llama)
    torch.save({"not": "a list"}, tmp_path / "odd.pth")
    with pytest.raises(ArtefactFileError, match="not LAPE's format"):
        tn.NeuronSet.from_lape(tmp_path / "odd.pth", tiny_llama)
    linear = tn.NeuronSet.empty(tiny_llama)
    with pytest.raises(
        tn.errors.NeuronSetMismatchError, match="act units only.*'down', 'gate', 'up'"
    ):
        linear.to_lape()


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_flat_export_round_trip(tiny_llama, tmp_path, fmt):
    empty = tn.NeuronSet.empty(tiny_llama, kinds="all")
    generator = torch.Generator().manual_seed(3)
    neurons = tn.NeuronSet(
        {s: torch.randperm(n, generator=generator)[:5] for s, n in empty.sizes.items()},
        empty.sizes,
        {"model": "tiny"},
    )
    path = getattr(neurons, f"to_{fmt}")(tmp_path / f"set.{fmt}")
    frame = pd.read_csv(path) if fmt == "csv" else pd.read_parquet(path)
    assert list(frame.columns) == ["site", "layer", "kind", "neuron"]
    assert len(frame) == len(neurons) == 5 * len(empty.sizes)
    assert tn.NeuronSet.from_frame(frame, tiny_llama) == neurons
    with pytest.raises(tn.errors.NeuronSetMismatchError, match="layers.7.mlp.up is not a site"):
        tn.NeuronSet.from_frame(
            pd.DataFrame({"site": ["layers.7.mlp.up"], "neuron": [0]}), tiny_llama
        )
