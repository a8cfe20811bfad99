"""Neuron sets and relevance on the Hub: the repository folder round trip (what from_hub reads
after snapshot_download), and push_to_hub's upload driven through a file-backed stand-in for
``huggingface_hub.HfApi`` (no network here), then read back with from_hub."""

import json
import shutil
from pathlib import Path

import pytest
import torch

import taskneuron_utils as tn
from taskneuron_utils.interop import hub


class FolderHub:
    """The two HfApi calls push_to_hub makes, against a folder: one sub-folder a repository."""

    def __init__(self, root: Path):
        self.root = root

    def create_repo(self, repo_id, repo_type, private, exist_ok):
        assert repo_type == "model" and exist_ok
        (self.root / repo_id).mkdir(parents=True, exist_ok=True)

    def upload_folder(self, repo_id, repo_type, folder_path, commit_message):
        shutil.copytree(folder_path, self.root / repo_id, dirs_exist_ok=True)
        return f"file://{self.root / repo_id} ({commit_message})"


@pytest.fixture
def relevance(tiny_llama, default_tok, toy_task):
    return tn.attribute(tiny_llama, default_tok, toy_task.train[:4], batch_size=4, progress=False)


def test_push_then_pull_a_neuron_set(tiny_llama, relevance, tmp_path):
    neurons = relevance.top_k(0.1)
    url = neurons.push_to_hub(
        "me/tiny-neurons", api=FolderHub(tmp_path), command="taskneurons detect --k 0.1"
    )
    repo = tmp_path / "me/tiny-neurons"
    assert url.startswith(f"file://{repo}")
    assert sorted(p.name for p in repo.iterdir()) == [
        "README.md",
        "neuronset.safetensors",
        "taskneurons.json",
    ]
    info = json.loads((repo / "taskneurons.json").read_text())
    assert info["weights"] == tn.core.weight_fingerprint(tiny_llama)
    assert (info["kind"], info["k"], info["tasks"]) == (
        "NeuronSet",
        0.1,
        [relevance.provenance["task"]],
    )
    card = (repo / "README.md").read_text()
    for shown in (
        info["weights"],
        "taskneurons detect --k 0.1",
        "| k | 0.1 |",
        f"| neurons | {len(neurons)} |",
    ):
        assert shown in card
    back = tn.NeuronSet.from_hub(repo, model=tiny_llama)
    assert back == neurons and back.meta == neurons.meta


def test_relevance_round_trip_through_a_repo_folder(tiny_llama, relevance, tmp_path):
    hub.write_repo_folder(relevance, tmp_path / "rel")
    back = hub.from_hub(tmp_path / "rel", model=tiny_llama, kind="Relevance")
    for site, scores in relevance.scores.items():
        torch.testing.assert_close(back.scores[site], scores, rtol=0, atol=0)
    assert back.provenance == relevance.provenance


def test_push_then_pull_relevance(tiny_llama, relevance, tmp_path):
    relevance.push_to_hub("me/tiny-relevance", api=FolderHub(tmp_path), command="tn.attribute")
    repo = tmp_path / "me/tiny-relevance"
    info = json.loads((repo / "taskneurons.json").read_text())
    assert info["kind"] == "Relevance" and info["weights"] == tn.core.weight_fingerprint(tiny_llama)
    back = tn.Relevance.from_hub(repo, model=tiny_llama)
    assert all(torch.equal(back.sum_abs[s], v) for s, v in relevance.sum_abs.items())
    assert back.provenance == relevance.provenance
    with pytest.raises(hub.HubRepoError, match="holds a 'Relevance', not a 'NeuronSet'"):
        tn.NeuronSet.from_hub(repo)


def test_repos_without_our_metadata_are_refused(tiny_llama, relevance, tmp_path):
    (tmp_path / "plain").mkdir()
    (tmp_path / "plain" / "config.json").write_text("{}")
    with pytest.raises(hub.HubRepoError, match="has no taskneurons.json.*config.json"):
        tn.NeuronSet.from_hub(tmp_path / "plain")
    hub.write_repo_folder(relevance, tmp_path / "rel")
    with pytest.raises(hub.HubRepoError, match="holds a 'Relevance', not a 'NeuronSet'"):
        tn.NeuronSet.from_hub(tmp_path / "rel")
    neurons = relevance.top_k(0.1)
    hub.write_repo_folder(neurons, tmp_path / "ns")
    other = tn.NeuronSet({}, {"layers.0.mlp.up": 3}, {"model": "other"})
    hub.write_repo_folder(other, tmp_path / "other")
    with pytest.raises(tn.errors.NeuronSetMismatchError, match="made for model 'other'"):
        tn.NeuronSet.from_hub(tmp_path / "other", model=tiny_llama)
