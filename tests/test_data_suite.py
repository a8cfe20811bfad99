"""The shipped task suite (data/): reproducible, well-formed, large enough, no leakage.

Fast and model-free: reads the JSON files and reruns the generator's --check.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from scripts import load_script

DATA = Path(__file__).resolve().parents[1] / "data"
SPLIT_SIZES = {"train": 1000, "dev": 200, "test": 300}
METRICS = {"classification": {"accuracy"}, "generation": {"exact_match", "rouge_l"}}
KEYS = {"name", "instruction", "category", "family", "metric", "labels", "description", "pair_rule"}
FIELDS = {"input", "output"}
PAIR_FIELDS = {"input", "output", "alt_input", "alt_output"}


def _tasks() -> list[dict]:
    with open(DATA / "tasks.json", encoding="utf-8") as f:
        return json.load(f)


def _read(name: str, split: str) -> list[dict]:
    with open(DATA / name / f"{split}.jsonl", encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


TASKS = _tasks()
NAMES = [t["name"] for t in TASKS]


def test_regeneration_is_byte_identical():
    proc = subprocess.run(
        [sys.executable, str(DATA / "build_suite.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_check_detects_a_changed_file(tmp_path):
    """--check must fail when a file differs (run against a copy, never touching data/)."""
    out = tmp_path / "suite"
    subprocess.run(
        [sys.executable, str(DATA / "build_suite.py"), "--out", str(out)],
        check=True,
        capture_output=True,
        timeout=120,
    )
    ok = subprocess.run(
        [sys.executable, str(DATA / "build_suite.py"), "--check", "--out", str(out)],
        capture_output=True,
        timeout=120,
    )
    assert ok.returncode == 0
    victim = out / NAMES[0] / "test.jsonl"
    victim.write_text(victim.read_text(encoding="utf-8") + "\n", encoding="utf-8")
    bad = subprocess.run(
        [sys.executable, str(DATA / "build_suite.py"), "--check", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert bad.returncode != 0
    assert "test.jsonl" in bad.stderr


def test_tasks_json_format():
    raw = (DATA / "tasks.json").read_text(encoding="utf-8")
    assert raw.endswith("\n")
    assert raw == json.dumps(TASKS, indent=2, ensure_ascii=False) + "\n"


def test_tasks_schema():
    assert isinstance(TASKS, list)
    assert len(NAMES) == len(set(NAMES))
    for t in TASKS:
        assert set(t) == KEYS, t.get("name")
        assert t["name"].isidentifier() and t["name"] == t["name"].lower()
        assert t["category"] in METRICS
        assert t["metric"] in METRICS[t["category"]], t["name"]
        assert isinstance(t["instruction"], str) and t["instruction"].strip()
        assert isinstance(t["description"], str) and t["description"].strip()
        assert isinstance(t["family"], str) and t["family"].strip()
        assert isinstance(t["pair_rule"], str) and t["pair_rule"].strip()
        if t["category"] == "classification":
            assert isinstance(t["labels"], list) and len(t["labels"]) >= 2
            assert len(set(t["labels"])) == len(t["labels"])
            assert all(isinstance(x, str) and x for x in t["labels"])
        else:
            assert t["labels"] is None


def test_suite_composition():
    assert len(TASKS) >= 12
    by_cat = {c: [t for t in TASKS if t["category"] == c] for c in METRICS}
    for c, ts in by_cat.items():
        assert len(ts) >= 6, c
        assert len({t["family"] for t in ts}) >= 3, c
    fam = Counter(t["family"] for t in TASKS)
    assert all(n >= 2 for n in fam.values()), fam
    # within each category, at least 3 families have 2 or more related tasks of that category
    for c, ts in by_cat.items():
        in_category = Counter(t["family"] for t in ts)
        assert sum(n >= 2 for n in in_category.values()) >= 3, (c, in_category)
    assert any(t["metric"] == "rouge_l" for t in TASKS)


def test_no_stray_task_directories():
    dirs = sorted(
        p.name for p in DATA.iterdir() if p.is_dir() and not p.name.startswith((".", "_"))
    )
    assert dirs == sorted(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_splits(name):
    task = next(t for t in TASKS if t["name"] == name)
    seen: dict[str, str] = {}
    # Minimal pairs are all or none: every line of the task has alt_input / alt_output, or none.
    keys = set(_read(name, "train")[0])
    assert keys in (FIELDS, PAIR_FIELDS), keys
    for split, n in SPLIT_SIZES.items():
        raw = (DATA / name / f"{split}.jsonl").read_text(encoding="utf-8")
        assert raw.endswith("\n")
        rows = _read(name, split)
        assert len(rows) == n, (name, split, len(rows))
        for r in rows:
            assert set(r) == keys
            for key in keys:
                assert isinstance(r[key], str) and r[key].strip(), (key, r)
            if keys == PAIR_FIELDS:
                assert r["alt_input"] != r["input"] and r["alt_output"] != r["output"], r
                if task["category"] == "classification":
                    assert r["alt_output"] in task["labels"], r
            assert r["input"] not in seen, (
                f"{name}: input repeated ({seen.get(r['input'])} and {split}): {r['input']!r}"
            )
            seen[r["input"]] = split
        if task["category"] == "classification":
            counts = Counter(r["output"] for r in rows)
            assert set(counts) <= set(task["labels"]), (name, split, counts)
            assert set(counts) == set(task["labels"]), (name, split, counts)
            expected = n / len(task["labels"])
            assert all(abs(c - expected) <= 0.1 * expected for c in counts.values()), (
                name,
                split,
                counts,
            )


@pytest.mark.parametrize("name", NAMES)
def test_lengths_are_short(name):
    for split in SPLIT_SIZES:
        for r in _read(name, split):
            for key in ("input", "alt_input"):
                assert len(r.get(key, "").split()) <= 40, r[key]
            for key in ("output", "alt_output"):
                assert len(r.get(key, "").split()) <= 15, r[key]


def test_card_lists_every_task():
    card = (DATA / "README.md").read_text(encoding="utf-8")
    for n in NAMES:
        assert f"`{n}`" in card
    pairs = card[card.index("## Minimal pairs") : card.index("## Tasks")]
    for t in TASKS:  # every task's pair rule (or why it has none) is in the section
        assert f"`{t['name']}`" in pairs and t["pair_rule"].rstrip(".") in pairs, t["name"]
    scores_present = (DATA / "scores.json").is_file()
    assert ("not yet measured" in card) or scores_present
    assert "default-model zero-shot score" in card


def test_card_shows_scores_when_present(tmp_path):
    out = tmp_path / "suite"
    out.mkdir()
    (out / "scores.json").write_text(
        json.dumps(
            {
                NAMES[0]: {
                    "metric": "accuracy",
                    "score": 0.625,
                    "nll": 1.5,
                    "n": 300,
                    "accuracy_per_token": 0.7,
                }
            }
        ),
        encoding="utf-8",
    )
    subprocess.run(
        [sys.executable, str(DATA / "build_suite.py"), "--out", str(out)],
        check=True,
        capture_output=True,
        timeout=120,
    )
    card = (out / "README.md").read_text(encoding="utf-8")
    row = next(line for line in card.splitlines() if line.startswith(f"| `{NAMES[0]}` |"))
    assert "0.625" in row and "n=300" in row and "acc_per_token 0.700" in row
    row2 = next(line for line in card.splitlines() if line.startswith(f"| `{NAMES[1]}` |"))
    assert "not yet measured" in row2


def _build_suite_module():
    return load_script("data/build_suite.py")


def test_headroom_rule():
    has_headroom = _build_suite_module().has_headroom
    assert has_headroom(0.72, 0.5, 300)
    assert not has_headroom(0.54, 0.5, 300)  # within two standard errors of a coin flip
    assert not has_headroom(0.93, 0.5, 300)  # too close to the ceiling to show a gain
    assert has_headroom(0.41, 0.25, 300)
    assert not has_headroom(0.04, 0.0, 100)  # generation: a few lucky matches are not headroom


def test_default_model_has_headroom_on_half_the_tasks():
    """The recorded default-model scores leave room both to drop and to gain on >= half the tasks."""
    scores_path = DATA / "scores.json"
    assert scores_path.is_file(), "data/scores.json is missing: run data/score_suite.py"
    scores = json.loads(scores_path.read_text(encoding="utf-8"))
    module = _build_suite_module()
    has_headroom = module.has_headroom
    assert set(scores) == set(NAMES)
    # The continual-learning additions start near chance by design (the sequence trains them).
    judged = [t for t in TASKS if t["name"] not in module.CONTINUAL_ADDITIONS]
    room = [
        t["name"]
        for t in judged
        if scores[t["name"]]["metric"] == t["metric"]
        and has_headroom(
            scores[t["name"]]["score"],
            1 / len(t["labels"]) if t["labels"] else 0.0,
            scores[t["name"]]["n"],
        )
    ]
    assert len(room) * 2 >= len(judged), room
