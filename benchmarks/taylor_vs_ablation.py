"""How well does the Taylor relevance predict the exact effect of zeroing a neuron?

    python benchmarks/taylor_vs_ablation.py [--tasks A B] [--neurons 300] [--examples 16]

On the default model, for each task: sample neurons uniformly over all FFN neurons, and for each
one compare
  - exact: the change of the mean answer loss over the examples when the neuron's output is
    zeroed at every position (re-running the model with ``tn.deactivate``), and
  - taylor: the mean over examples of the first-order estimate r_j (``per_example_relevance``).
Reports Spearman correlations (signed, and of magnitudes, which is what the ranking into top-k
uses) and the fraction of sampled neurons whose sign agrees. Prints JSON.
"""

from __future__ import annotations

import argparse
import platform
import time

import torch
from scipy.stats import pearsonr, spearmanr
from tqdm.auto import tqdm

import taskneuron_utils as tn
from harness import emit
from taskneuron_utils.attribution.run import per_example_relevance
from taskneuron_utils.scoring.loss import answer_losses
from taskneuron_utils.neurons.neuron_set import NeuronSet, layout_of
from taskneuron_utils.tasks import collate, encode, load_tasks


def study(model, tok, task, n_neurons: int, n_examples: int, seed: int) -> dict:
    data = task.train.sample(n_examples, seed=seed)
    batch = collate(encode(tok, data), tok.pad_token_id)
    layout = layout_of(model)
    taylor_all = per_example_relevance(model, tok, data)  # {site: (examples, neurons)}

    generator = torch.Generator().manual_seed(seed)
    sites = list(layout)
    offsets = torch.tensor([0] + [layout[s] for s in sites]).cumsum(0)
    flat = torch.randperm(int(offsets[-1]), generator=generator)[:n_neurons]
    with torch.no_grad():
        base, _ = answer_losses(model, batch)
    exact, taylor, names = [], [], []
    for index in tqdm(flat.tolist(), desc=f"ablations {task.name}"):
        site_index = int(torch.searchsorted(offsets, index, right=True)) - 1
        site, neuron = sites[site_index], index - int(offsets[site_index])
        single = NeuronSet({site: [neuron]}, layout)
        with torch.no_grad(), tn.deactivate(model, single):
            ablated, _ = answer_losses(model, batch)
        exact.append(float((ablated - base).mean()))
        taylor.append(float(taylor_all[site][:, neuron].mean()))
        names.append(f"{site}[{neuron}]")
    exact_t, taylor_t = torch.tensor(exact), torch.tensor(taylor)
    return {
        "task": task.name,
        "neurons": n_neurons,
        "examples": n_examples,
        "spearman_signed": round(float(spearmanr(exact, taylor).statistic), 4),
        "spearman_magnitude": round(float(spearmanr(exact_t.abs(), taylor_t.abs()).statistic), 4),
        "pearson_signed": round(float(pearsonr(exact, taylor).statistic), 4),
        "sign_agreement": round(float(((exact_t > 0) == (taylor_t > 0)).float().mean()), 4),
        "largest_exact": sorted(zip(exact, taylor, names), key=lambda t: -abs(t[0]))[:5],
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tasks", nargs="+", default=["product_sentiment", "addition"])
    parser.add_argument("--neurons", type=int, default=300)
    parser.add_argument("--examples", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out")
    args = parser.parse_args()
    started = time.perf_counter()
    model, tok = tn.load_model()
    tasks = load_tasks(args.tasks)
    results = [
        study(model, tok, tasks[name], args.neurons, args.examples, args.seed)
        for name in args.tasks
    ]
    report = {
        "machine": f"{platform.machine()}, {torch.get_num_threads()} torch threads",
        "model": tn.core.model_name(model),
        "loss": "mean answer-token NLL per example, averaged over the examples (nats)",
        "results": results,
        "seconds": round(time.perf_counter() - started, 1),
    }
    emit(report, args.out)


if __name__ == "__main__":
    main()
