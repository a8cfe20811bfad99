"""Every number the README states, and the main numbers of the docs pages, are the numbers of
the results files they come from; the README's notebook table is what ``notebooks/timings.json``
gives; the glossary has an entry for every term the notebooks link to.

``QUOTES`` lists, for each quoted passage: the page, the passage with ``{}`` where its numbers
stand, the results file, and a function that reads the numbers from that file and formats them
as the page writes them (rounding included). The passage, filled in, must appear on the page
(line breaks and repeated spaces count as one space). A number that moved in its file, or a
passage edited away from its file, fails here: rerun the benchmark and update the page, or
update the passage here when the page says something new.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

import taskneuron_utils as tn
from taskneuron_utils.io.course_files import TABLE_END, TABLE_START, course_table

ROOT = Path(__file__).resolve().parents[1]
RESULTS = "benchmarks/results"
REPLICATION = f"{RESULTS}/replication"
MAIN_JOB = "docs/reference/main_job"
WORDS = {3: "three", 4: "four", 5: "five", 6: "six", 7: "seven", 8: "eight"}


def _json(path: Path) -> dict:
    return json.loads(path.read_text())


def _csv(path: Path) -> pd.DataFrame:
    return pd.read_csv(path)


def _f(value: float, digits: int) -> str:
    """As the pages round: half away from zero (Python's format rounds the binary value)."""
    scaled = abs(value) * 10**digits
    rounded = math.floor(scaled + 0.5 + 1e-9) / 10**digits
    return f"{math.copysign(rounded, value) if rounded else 0.0:.{digits}f}"


# --- readers: each returns the numbers of one passage, formatted as the page writes them -------


def main_job_neurons(folder: Path) -> tuple[str, ...]:
    found = re.search(r"neurons per task: (\d+) of (\d+)", (folder / "summary.txt").read_text())
    assert found, "summary.txt: no 'neurons per task' line"
    return f"{int(found.group(1)):,}", f"{int(found.group(2)):,}"


def main_job_total(folder: Path) -> tuple[str, ...]:
    return main_job_neurons(folder)[1:]


def random_overlap(folder: Path) -> tuple[str, ...]:
    found = re.search(r"random baseline ([\d.]+)", (folder / "summary.txt").read_text())
    assert found, "summary.txt: no random baseline"
    return (found.group(1),)


def overlaps(folder: Path) -> tuple[str, ...]:
    """The sentiment pair's overlap, the range of the other pairs, the random baseline."""
    matrix = _csv(folder / "overlap.csv").set_index("task")
    pairs = {
        (a, b): matrix.loc[a, b] for i, a in enumerate(matrix.index) for b in matrix.index[i + 1 :]
    }
    sentiment = pairs.pop(("product_sentiment", "film_sentiment"))
    assert sentiment > max(pairs.values())  # "the two sentiment tasks share" the most
    others = sorted(pairs.values())
    return _f(sentiment, 2), _f(others[0], 2), _f(others[-1], 2), *random_overlap(folder)


def main_job_seconds(folder: Path) -> tuple[str, ...]:
    found = re.search(r"wall time: (\d+) s", (folder / "summary.txt").read_text())
    assert found, "summary.txt: no wall time"
    return (found.group(1),)


def table1_act(path: Path) -> tuple[str, ...]:
    """Own vs random, act units, k = 10%: on how many tasks beyond the interval; examples,
    seeds."""
    frame = _csv(path)
    tasks = frame[(frame.measure == "nll") & (frame.task != "all")]
    beyond = int(tasks.beyond_random.astype(bool).sum())
    count = "all " + str(len(tasks)) if beyond == len(tasks) else f"{beyond} of {len(tasks)}"
    (examples,) = tasks.examples.unique()
    (seeds,) = tasks.seeds.unique()
    return count, str(examples), str(seeds)


def table1_act_contrasts(path: Path) -> tuple[str, ...]:
    """Own minus random, act units: classification and generation metric (points), NLL range."""
    frame = _csv(path)
    overall = frame[frame.task == "all"].set_index(["category", "measure"]).own_vs_random
    nll = sorted(overall[(c, "nll")] for c in ("classification", "generation"))
    return (
        _f(overall[("classification", "score")] * 100, 0),
        _f(overall[("generation", "score")] * 100, 0),
        _f(nll[0], 0),
        _f(nll[1], 0),
    )


def dominance_act_k10(path: Path) -> tuple[str, ...]:
    frame = _csv(path)
    row = frame[
        (frame.model == "multitask act k=0.1")
        & (frame.family == "top_k")
        & (frame.value == "nll")
        & (frame.task == "mean")
    ].iloc[0]
    return _f(row.dominance, 2), _f(row.dominance_low, 2), _f(row.dominance_high, 2)


def budgets(folder: Path) -> tuple[str, ...]:
    """The budgets' range, the number of tasks, and at how many budgets the task neurons'
    test-metric advantage over random neurons is above zero beyond its interval."""
    contrasts = _csv(folder / "budget_contrasts.csv")
    rows = contrasts[
        (contrasts.against == "random")
        & (contrasts.value == "score")
        & (contrasts.category == "all")
    ]
    above = int((rows.low > 0).sum())
    tasks = _csv(folder / "budget.csv").task.nunique()
    return str(rows.step.min()), str(rows.step.max()), WORDS[tasks], str(above or "no")


def table5(path: Path) -> tuple[str, ...]:
    """CL of the two LoRA methods (the two best), the orders, NCFT's forgetting, NCFT against
    random neurons, NCFT and SeqFT."""
    frame = _csv(path).set_index("method")
    methods = frame.drop(index=["multitask", "per_task"])  # references, not methods
    assert set(methods.CL_4.nlargest(2).index) == {"seqlora", "olora"}  # "the LoRA methods lead"
    (orders,) = methods.orders_4.unique()
    return (
        _f(frame.CL_4["seqlora"], 1),
        _f(frame.CL_4["olora"], 1),
        WORDS[int(orders)],
        _f(frame.forgetting_4["ncft"], 1),
        _f(frame.CL_4["ncft"] - frame.CL_4["random_neurons"], 0),
        _f(frame.CL_4["ncft"], 1),
        _f(frame.CL_4["seqft"], 1),
    )


def table5_rounded(path: Path) -> tuple[str, ...]:
    lora = table5(path)
    frame = _csv(path).set_index("method")
    return (
        _f(float(lora[1]), 0),
        lora[4],
        _f(frame.CL_4["seqft"], 0),
    )


def bf16_speed(path: Path) -> tuple[str, ...]:
    speed = _json(path)["speedup_over_fp32"]
    return tuple(
        _f(speed[f"{w}/{p}"], 1)
        for w in ("bf16", "autocast")
        for p in ("forward", "attribution", "train_step")
    )


def bf16_speed_table(path: Path) -> tuple[str, ...]:
    speed = _json(path)["speedup_over_fp32"]
    return tuple(
        _f(speed[f"{w}/{p}"], 2)
        for w in ("bf16", "autocast")
        for p in ("forward", "attribution", "train_step")
    )


def bf16_sets(path: Path) -> tuple[str, ...]:
    agree = _json(path)["jaccard_vs_fp32"]  # {"<way>/<task>": {"all": ..., "gate": ...}}
    out = []
    for way in ("bf16", "autocast"):
        values = [sites["all"] for key, sites in agree.items() if key.startswith(f"{way}/")]
        out += [_f(min(values), 3), _f(max(values), 3)]
    return (*out, WORDS[len(values)])


def attribution_cost(path: Path) -> tuple[str, ...]:
    d = _json(path)
    return (
        _f(d["attribution_over_forward"], 3),
        _f(d["attribution_over_train_step"], 3),
        _f(d["attribution_over_floor"], 3),
        _f(d["matmul_floor"]["attribution_over_forward"], 3),
        _f(d["matmul_floor"]["attribution_over_train_step"], 3),
    )


def scale_ratios(path: Path) -> tuple[str, ...]:
    d = _json(path)
    ft, at = d["finetune"], d["attribution"]
    return (
        _f(ft["neuron_step_over_full_step"], 2),
        _f(ft["step_seconds_mean_median"]["neurons"], 2),
        _f(ft["step_seconds_mean_median"]["full"], 2),
        _f(ft["optimizer_state_fraction"], 3),
        _f(at["attribution_2proc_over_1proc"], 2),
        _f(at["seconds_median"]["2proc"], 2),
        _f(at["seconds_median"]["1proc"], 2),
    )


def method_agreement(path: Path) -> tuple[str, ...]:
    d = _json(path)
    spearman = {
        r["definition"]: r["spearman"]
        for r in d["spearman_pooled_magnitude"]
        if r["method"] == "grad_x_act" and r["reference"] == "exact_zero"
    }
    dominance = [r["dominance"] for r in d["specificity_mean_nll"]]
    return (
        _f(spearman["act"], 2),
        _f(spearman["linear"], 2),
        _f(min(dominance), 2),
        _f(max(dominance), 2),
    )


def top_examples(path: Path) -> tuple[str, ...]:
    d = _json(path)
    ratio, neurons = d["top_examples_over_forward"], d["neurons"]
    return (
        _f(ratio["act_10pct"], 2),
        f"{neurons['act_10pct']:,}",
        str(d["k"]),
        _f(ratio["act_1pct"], 2),
        f"{neurons['act_1pct']:,}",
        _f(d["peak_memory_10x_over_1x"], 2),
    )


def memory_estimate(path: Path) -> tuple[str, ...]:
    cases = [c for c in _json(path)["cases"] if c["model"].startswith("default")]
    worst = max(abs(c["estimate_over_measured"] - 1) for c in cases)
    return (f"{math.ceil(worst * 100)}%",)


def memory_table(_: Path) -> tuple[str, ...]:
    """The bigger-models table: computed by ``estimate_table`` (meta device, no weights)."""
    table = tn.memory.estimate_table(["llama-2-7b", "bloom-7b1"], batch_size=4, seq_len=512)
    peak = table.set_index(["model", "method"])["peak GiB"]
    return tuple(
        _f(peak[(model, method)], 1)
        for model in ("meta-llama/Llama-2-7b-hf", "bigscience/bloom-7b1")
        for method in ("attribution", "full", "neurons", "lora")
    )


MOR = f"{RESULTS}/model_or_recipe/summary"


def recipe_selectivity(folder: Path) -> tuple[str, ...]:
    """The answer's NLL selectivity: contrastive and paper at 0.1% (linear), contrastive at 10%
    (linear, act), each ratio with its interval."""

    def ratio(definition: str, recipe: str, k: float) -> str:
        frame = pd.read_csv(folder / f"selectivity_{definition}.csv")
        row = frame[(frame.recipe == recipe) & (frame.k == k) & (frame.measure == "nll")].iloc[0]
        return f"{_f(row.ratio, 2)} [{_f(row.ratio_low, 2)}, {_f(row.ratio_high, 2)}]"

    return (
        ratio("linear", "contrastive", 0.001),
        ratio("linear", "paper", 0.001),
        ratio("linear", "contrastive", 0.1),
        ratio("act", "contrastive", 0.1),
    )


def recipe_overlap(folder: Path) -> tuple[str, ...]:
    """The answer's overlap ratios: the paper's recipe and the contrastive ones at 0.05-1%."""
    low = [0.0005, 0.001, 0.01]

    def span(recipes: list[str], definitions: list[str]) -> list[float]:
        values: list[float] = []
        for definition in definitions:
            frame = pd.read_csv(folder / f"overlap_{definition}.csv")
            values += list(frame[frame.recipe.isin(recipes) & frame.k.isin(low)]["ratio"].dropna())
        return values

    paper = span(["paper"], ["linear"])
    contrast = span(["contrastive", "relp_ld"], ["linear", "act"])
    return _f(min(paper), 1), _f(max(paper), 1), _f(min(contrast), 1), f"{max(contrast):.0f}"


# (page, passage with {} for its numbers, results file or folder, reader)
Quote = tuple[str, str, str, Callable[[Path], tuple[str, ...]]]
QUOTES: list[Quote] = [
    # README
    ("README.md", "relevance of all {} FFN neurons", MAIN_JOB, main_job_total),
    (
        "README.md",
        "the two sentiment tasks share {} of their top-10% neurons, unrelated pairs {}-{}, "
        "random sets of the same size {}",
        MAIN_JOB,
        overlaps,
    ),
    (
        "README.md",
        "on {} tasks beyond bootstrap intervals over {} test examples and {} random seeds",
        f"{REPLICATION}/table1_seeds_act_intervals.csv",
        table1_act,
    ),
    (
        "README.md",
        "(diagonal dominance {} [{}, {}] on answer NLL",
        f"{REPLICATION}/specific_scores.csv",
        dominance_act_k10,
    ),
    (
        "README.md",
        "over budgets of {}-{} steps on {} tasks, their test-metric advantage is above zero at "
        "{} budget",
        REPLICATION,
        budgets,
    ),
    (
        "README.md",
        "(CL {} SeqLoRA, {} O-LoRA over {} 4-task orders), and NCFT forgets nothing (forgetting "
        "{} points) and beats its random-neuron control by {} points but ends at {}, level with "
        "sequential fine-tuning ({})",
        f"{REPLICATION}/continual_table5.csv",
        table5,
    ),
    # docs/install.md
    (
        "docs/install.md",
        "the two sentiment tasks share {}, unrelated pairs {}-{}, random sets of the same size {}",
        MAIN_JOB,
        overlaps,
    ),
    ("docs/install.md", "that recorded run took {} s", MAIN_JOB, main_job_seconds),
    (
        "docs/install.md",
        "(weights in bf16: forward {}x, attribution {}x, training step {}x faster than float32 "
        "here), or `tn.attribute(..., autocast=torch.bfloat16)` over float32 weights ({}x / {}x "
        "/ {}x)",
        f"{RESULTS}/bf16.json",
        bf16_speed,
    ),
    (
        "docs/install.md",
        "to a Jaccard of {}-{} (bf16 weights) and {}-{} (autocast) on {} tasks",
        f"{RESULTS}/bf16_sets.json",
        bf16_sets,
    ),
    (
        "docs/install.md",
        "{}x a forward pass and {}x a training step on the same batches, and {}x the bare "
        "forward and activation-only backward it cannot do without; those passes' matrix "
        "products alone are {}x a forward's and {}x a training step's",
        f"{RESULTS}/attribution.json",
        attribution_cost,
    ),
    # docs/neurons.md
    (
        "docs/neurons.md",
        "(Spearman {} act, {} linear), integrated gradients no better, activation statistics "
        "poorly; every method's sets hurt far more than random ones, and no method's sets are "
        "task-specific (diagonal dominance {} to +{})",
        f"{RESULTS}/attribution_methods/summary.json",
        method_agreement,
    ),
    (
        "docs/neurons.md",
        "{}x for 10% of the act units ({} neurons, k = {}), {}x for 1% ({} neurons); peak "
        "memory for 10x the examples {}x",
        f"{RESULTS}/top_examples.json",
        top_examples,
    ),
    # docs/bigger-models.md
    (
        "docs/bigger-models.md",
        "came within {} of measured CPU peaks",
        f"{RESULTS}/memory_estimate.json",
        memory_estimate,
    ),
    (
        "docs/bigger-models.md",
        "| Llama-2-7b | {} | {} | {} | {} | | Bloom-7b1 | {} | {} | {} | {} |",
        "taskneuron_utils/memory",
        memory_table,
    ),
    # docs/glossary.md
    ("docs/glossary.md", "share about {}", MAIN_JOB, random_overlap),
    (
        "docs/glossary.md",
        "{} of the default model's {} linear-site units",
        MAIN_JOB,
        main_job_neurons,
    ),
    # docs/scale.md (the measured speed ratios and bfloat16)
    (
        "docs/scale.md",
        "| **{}** ({} s / {} s, median of 3 runs of 4 timed steps) | ≤ 0.75 | | optimizer state, "
        "neuron-only / full | **{}** | the selected parameters' fraction, 0.059 | | `tn.attribute` "
        "with 2 gloo processes of 1 thread / with 1 process of 2 threads | **{}** ({} s / {} s",
        f"{RESULTS}/scale_ratios.json",
        scale_ratios,
    ),
    (
        "docs/scale.md",
        "| {}x | {}x | {}x | | autocast over float32 weights (`tn.attribute(..., "
        "autocast=torch.bfloat16)`) | {}x | {}x | {}x |",
        f"{RESULTS}/bf16.json",
        bf16_speed_table,
    ),
    # docs/model-or-recipe.md (the answer)
    (
        "docs/model-or-recipe.md",
        "(contrastive {} at 0.1%, linear; the paper's {}; Han et al.: 10.3). Intervals above 1 "
        "occur (the contrastive sets at 10%: {} linear, {} `act`)",
        MOR,
        recipe_selectivity,
    ),
    (
        "docs/model-or-recipe.md",
        "with a within/across ratio of {}-{} (linear units; 2.4-2.9 `act`). The contrastive recipe "
        "(and RelP on the logit difference) gives sets that hardly overlap across families (across "
        "Jaccard 0.003-0.018 at 0.05-1%) and a ratio of {}-{} at 0.05-1%",
        MOR,
        recipe_overlap,
    ),
    # docs/replication.md (its summary paragraphs)
    (
        "docs/replication.md",
        "(classification {} points against random, generation {}, +{} to +{} nats)",
        f"{REPLICATION}/table1_seeds_act_intervals.csv",
        table1_act_contrasts,
    ),
    (
        "docs/replication.md",
        "The LoRA methods lead (CL about {} on the 4-task orders), full fine-tuning forgets most, "
        "and NCFT forgets nothing and beats its random-neuron control by {} points, but it learns "
        "each task less and ends level with SeqFT ({})",
        f"{REPLICATION}/continual_table5.csv",
        table5_rounded,
    ),
]


def _flat(text: str) -> str:
    return re.sub(r"\s+", " ", text)


def missing(page_text: str, passage: str, values: tuple[str, ...]) -> str | None:
    """The passage as the file's numbers fill it, when the page lacks it; else None."""
    expected = _flat(passage.format(*values))
    return None if expected in _flat(page_text) else expected


@pytest.mark.parametrize(
    ("page", "passage", "source", "read"), QUOTES, ids=[f"{q[0]}:{q[1][:30]}" for q in QUOTES]
)
def test_a_quoted_number_is_its_results_file(page, passage, source, read):
    values = read(ROOT / source)
    assert passage.count("{}") == len(values)
    lacking = missing((ROOT / page).read_text(encoding="utf-8"), passage, values)
    assert lacking is None, f"{page} should say, as {source} gives: {lacking!r}"


def test_a_stale_number_is_caught():
    """The check itself: a page whose number moved away from its file fails."""
    page, passage, source, read = QUOTES[1]
    values = read(ROOT / source)
    text = (ROOT / page).read_text(encoding="utf-8")
    assert missing(text, passage, values) is None
    stale = _flat(text).replace(_flat(passage.format(*values)), passage.format("0.61", *values[1:]))
    assert missing(stale, passage, values) is not None


def test_rounding_is_half_away_from_zero():
    assert [_f(1.945, 2), _f(1.565, 2), _f(-0.005608, 2), _f(14.24, 0)] == [
        "1.95",
        "1.57",
        "-0.01",
        "14",
    ]


def test_the_readme_notebook_table_is_what_the_timing_file_gives():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    start, end = readme.index(TABLE_START) + len(TABLE_START), readme.index(TABLE_END)
    assert readme[start:end].strip() == course_table(ROOT / "notebooks").strip(), (
        "README's notebook table is stale: run "
        '`python -c "from taskneuron_utils.io.course_files import write_course_table; '
        "write_course_table('README.md')\"`"
    )


def test_the_readme_stays_short():
    assert len((ROOT / "README.md").read_text(encoding="utf-8").splitlines()) <= 200


# The glossary's terms: notebooks link to glossary.md#<anchor>, the course's copy of
# docs/glossary.md beside them (notebooks/glossary.md, shipped and copied with the course).
GLOSSARY_TERMS = """site neuron unit act-unit gate-up-down relevance grad-x-act attribution-patching
integrated-gradients logit-difference minimal-pair relp top-k k neuron-set deactivation overlap
jaccard specificity faithfulness ncft w-ncft continual-learning transfer task family split profile
verdict""".split()


def _slug(heading: str) -> str:
    """MkDocs' default heading id (toc's slugify): lower case, punctuation dropped, spaces to
    hyphens."""
    text = re.sub(r"[^\w\s-]", "", heading.strip().lower())
    return re.sub(r"[-\s]+", "-", text).strip("-")


def glossary_anchors() -> set[str]:
    text = (ROOT / "docs" / "glossary.md").read_text(encoding="utf-8")
    return {_slug(h) for h in re.findall(r"^## (.+)$", text, re.M)}


def test_the_glossary_defines_every_term_and_every_notebook_link_lands():
    anchors = glossary_anchors()
    assert set(GLOSSARY_TERMS) <= anchors, sorted(set(GLOSSARY_TERMS) - anchors)
    assert _slug("Act unit") == "act-unit" and _slug("Gate, up, down") == "gate-up-down"
    linked = {
        (path.name, anchor)
        for path in sorted((ROOT / "notebooks").glob("*.ipynb"))
        for anchor in re.findall(r"glossary\.md#([\w-]+)", path.read_text(encoding="utf-8"))
    }
    assert [link for link in sorted(linked) if link[1] not in anchors] == []


def test_the_course_glossary_is_the_docs_glossary_and_every_course_link_resolves():
    """notebooks/glossary.md is docs/glossary.md with its links to other pages reduced to text
    (regenerate: ``course_glossary``); every relative link of the notebooks that stays in the
    course (glossary.md, another notebook) names a file of the course."""
    from taskneuron_utils.io.course_files import course_files, course_glossary

    docs = (ROOT / "docs" / "glossary.md").read_text(encoding="utf-8")
    shipped = (ROOT / "notebooks" / "glossary.md").read_text(encoding="utf-8")
    assert shipped == course_glossary(docs), "regenerate notebooks/glossary.md"
    assert "](api/" not in shipped and "](attribution.md" not in shipped
    assert "[arXiv" in shipped or "https://" in shipped  # web links stay
    names = {p.name for p in course_files(ROOT / "notebooks")}
    assert "glossary.md" in names
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        for target in re.findall(r"\]\(([^)#:]+?)(?:#[^)]*)?\)", path.read_text(encoding="utf-8")):
            if not target.startswith("../"):  # ../docs/: pages of a clone, named as such
                assert target in names, (path.name, target)
