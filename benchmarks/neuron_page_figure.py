"""The README's "What does this neuron do?" figure: one neuron's page as three panels.

    python benchmarks/neuron_page_figure.py [--out docs/reference/neuron_page]

On the embedded default model: relevance of every ``act`` unit on 24 training examples of
``addition`` and of ``product_sentiment`` (as notebook 06), the most relevant ``addition``
neuron outside ``product_sentiment``'s top 1% set, and its page (``tn.neuron_page``) over 16
test examples of each task: per-task activation histogram, vocabulary projection, answer-NLL
change when it alone is switched off. Writes ``neuron_page.png`` (``page.save`` would write
the whole page as HTML). About a minute on 2 CPU cores.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

import taskneuron_utils as tn  # noqa: E402
from taskneuron_utils.plots.neuron_page import (  # noqa: E402
    plot_activation_histogram,
    plot_deactivation_effect,
    plot_vocab_projection,
)

OUT = Path(__file__).resolve().parents[1] / "docs" / "reference" / "neuron_page"
TASKS = ("addition", "product_sentiment")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    torch.manual_seed(0)
    model, tok = tn.load_model()
    suite = tn.load_tasks(list(TASKS))
    rels = {
        name: tn.attribute(model, tok, suite[name].train[:24], kinds="act", progress=False)
        for name in TASKS
    }
    a, b = TASKS
    only = rels[a].top_k(0.01).difference(rels[b].top_k(0.01)).to_frame()
    best = rels[a].to_frame().merge(only[["site", "neuron"]]).nlargest(1, "score").iloc[0]
    site, neuron = best["site"], int(best["neuron"])
    data = {name: suite[name].test[:16] for name in TASKS}
    page = tn.neuron_page(model, tok, data, site, neuron, relevances=rels, k=5, effect_examples=8)
    fig, axes = plt.subplots(
        1, 3, figsize=(13, 3.6), layout="constrained", width_ratios=[1.1, 1, 1]
    )
    plot_activation_histogram(page.values, ax=axes[0], title=f"{site} #{neuron}: activations")
    plot_vocab_projection(page.vocab, ax=axes[1], n=6)
    plot_deactivation_effect(page.effect, ax=axes[2], title="switched off alone (8 examples)")
    axes[1].set_title("tokens its write vector promotes / suppresses", fontsize=10)
    axes[2].set_xlabel("answer NLL change (nats/token)")
    args.out.mkdir(parents=True, exist_ok=True)
    target = args.out / "neuron_page.png"
    fig.savefig(target, dpi=80)
    print(f"{target}: {site} #{neuron}, {target.stat().st_size / 1e3:.0f} kB")


if __name__ == "__main__":
    main()
