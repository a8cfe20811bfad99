#!/usr/bin/env python3
"""Build the shipped multi-task data suite of taskneuron_utils.

Every example is generated here from templates and word lists typed into this file (plus
common facts such as capitals and arithmetic), with fixed seeds: running the script twice gives
byte-identical files. Standard library only; no network, no external data.

    python data/build_suite.py            # (re)write data/tasks.json, data/<task>/*.jsonl, data/README.md
    python data/build_suite.py --check    # regenerate into a temp dir; exit 1 if anything in data/ differs
    python data/build_suite.py --out DIR  # write somewhere else
    python data/build_suite.py --token-table   # rewrite data/pair_token_counts.json (needs transformers)

The data card (data/README.md) is rendered from the task table below and, when present, from
data/scores.json ({task: {"metric", "score", "nll", "n"}}) written by the evaluation harness.

Minimal pairs. Every task but one also gets, per example, an alternative input that differs in
the task-critical part only and has another answer (``alt_input`` / ``alt_output`` in the same
JSONL lines; the rule per task is ``pair_rule`` in the task table). A pair's two prompts must have
the same number of tokens under the default model's tokenizer (SmolLM2-135M-Instruct), which this
script cannot run: ``n_tokens`` splits a text the way that tokenizer's pre-tokenizer does (the
GPT-2 regex, ASCII only) and adds up per-piece token counts read from the committed table
``data/pair_token_counts.json`` (digits: one token each, plus one for a leading space). The table
is written once by ``--token-table`` with transformers; the normal build reads it and stays
standard-library only. The alternatives are drawn with their own seeded generator after the
splits are made, so the original examples are exactly those of a build without pairs.
"""

from __future__ import annotations

import argparse
import filecmp
import itertools
import json
import random
import re
import string
import sys
import tempfile
import zlib
from pathlib import Path
from typing import NamedTuple

DATA_DIR = Path(__file__).resolve().parent
SPLITS = (("train", 1000), ("dev", 200), ("test", 300))
N_TOTAL = sum(n for _, n in SPLITS)
BASE_SEED = 20240707
LICENSE = "MIT (the repository's license); the content is also dedicated to the public domain under CC0-1.0"


def task_seed(name: str) -> int:
    """A seed that depends on the task name only (crc32, not Python's salted hash())."""
    return BASE_SEED + zlib.crc32(name.encode("utf-8"))


# ----------------------------------------------------------------------------------------------
# Token counts for minimal pairs (see the module docstring).
# ----------------------------------------------------------------------------------------------

TOKEN_TABLE = DATA_DIR / "pair_token_counts.json"
TOKENIZER_NAME = "HuggingFaceTB/SmolLM2-135M-Instruct (the embedded default model)"
# The pre-tokenizer of byte-level BPE tokenizers (GPT-2's regex; \p{L} / \p{N} read as ASCII
# letters / digits, which is exact for this suite's ASCII-only texts): tokens never cross these
# pieces, so a text's token count is the sum of its pieces' counts.
PRETOKEN = re.compile(
    r"'s|'t|'re|'ve|'m|'ll|'d| ?[A-Za-z]+| ?[0-9]+| ?[^\sA-Za-z0-9]+|\s+(?!\S)|\s+"
)


class TokenCounter:
    """Token counts of texts from a table of per-piece counts (``collect``: unknown pieces are
    recorded and estimated instead of failing, for ``--token-table``)."""

    def __init__(self, table: dict[str, int], collect: bool = False):
        self.table, self.collect = table, collect
        self.missing: set[str] = set()
        self.used: set[str] = set()
        self.cache: dict[str, int] = {}

    def __call__(self, text: str) -> int:
        if text not in self.cache:
            self.cache[text] = self.count(text)
        return self.cache[text]

    def count(self, text: str) -> int:
        if not text.isascii():
            raise ValueError(f"n_tokens counts ASCII texts only, got {text!r}")
        n = 0
        for piece in PRETOKEN.findall(text):
            digits = piece.lstrip(" ")
            if digits.isdigit():  # one token a digit, and a lone space token before a number
                n += len(piece)
                continue
            if piece in self.table:
                self.used.add(piece)
                n += self.table[piece]
            elif self.collect:
                self.missing.add(piece)
                n += 1 + len(piece) // 4
            else:
                raise RuntimeError(
                    f"no token count for {piece!r} in {TOKEN_TABLE.name}: run "
                    "`python data/build_suite.py --token-table` (needs transformers) and commit it"
                )
        return n


_COUNTER: TokenCounter | None = None


def n_tokens(text: str) -> int:
    """Tokens of ``text`` under the default model's tokenizer (from the committed table)."""
    global _COUNTER
    if _COUNTER is None:
        table = {}
        if TOKEN_TABLE.is_file():
            with open(TOKEN_TABLE, encoding="utf-8") as f:
                table = json.load(f)["counts"]
        _COUNTER = TokenCounter(table)
    return _COUNTER(text)


class NoPair(RuntimeError):
    """No alternative satisfies a pair rule for one example."""


def _shuffled(prng: random.Random, options) -> list:
    options = list(options)
    prng.shuffle(options)
    return options


def _first_alt(text: str, candidates):
    """The first of ``candidates`` (``(alt_text, alt_output)`` pairs, lazily made, tried in
    the given order) whose text differs from ``text`` and has its token count; else None."""
    target = n_tokens(text)
    for alt_text, alt_output in candidates:
        if alt_text != text and n_tokens(alt_text) == target:
            return alt_text, alt_output
    return None


def _combos(prng: random.Random, lists: list[list], limit: int = 400) -> list[tuple]:
    """Combinations of one choice per list, in random order: all of them when there are at
    most ``limit``, else ``limit`` random draws."""
    total = 1
    for options in lists:
        total *= len(options)
    if total <= limit:
        return _shuffled(prng, itertools.product(*lists))
    return [tuple(prng.choice(options) for options in lists) for _ in range(limit)]


def _combos_for(prng: random.Random, render, lists: list[list], target: int, limit: int = 400):
    """Combinations of one choice per list whose ``render`` (a function of the list of
    choices) should have ``target`` tokens, in random order, then random others. Token counts
    add up over pre-tokenizer pieces, so each choice's count difference from the first
    choices' text (measured once) predicts a combination's count; the caller checks it."""
    ref = [options[0] for options in lists]
    base = n_tokens(render(ref))
    groups: list[dict[int, list]] = []
    for j, options in enumerate(lists):
        by_delta: dict[int, list] = {}
        for option in options:
            trial = list(ref)
            trial[j] = option
            by_delta.setdefault(n_tokens(render(trial)) - base, []).append(option)
        groups.append(by_delta)
    fits = [d for d in itertools.product(*(sorted(g) for g in groups)) if sum(d) == target - base]
    for deltas in _shuffled(prng, fits)[:limit]:
        for _ in range(3):
            yield tuple(prng.choice(groups[j][d]) for j, d in enumerate(deltas))
    yield from _combos(prng, lists, limit // 4)


class Twin(NamedTuple):
    """Another label's version of a sentence frame: ``fmt`` is filled with the original's shared
    values and one choice per ``free`` slot (chosen so that the token count matches)."""

    label: str
    fmt: str
    free: dict


def _twin_alt(text: str, head: str, shared: dict, twins: list[Twin]):
    """An alt function: ``head`` + a twin frame filled with ``shared`` values and free choices."""

    def alt(prng: random.Random):
        def candidates():
            for twin in _shuffled(prng, twins):
                names = list(twin.free)

                def fill(choices, twin=twin, names=names):
                    return head + twin.fmt.format(**shared, **dict(zip(names, choices)))

                lists = [twin.free[k] for k in names]
                for combo in _combos_for(prng, fill, lists, n_tokens(text)):
                    yield fill(combo), twin.label

        return _first_alt(text, candidates())

    return alt


# ----------------------------------------------------------------------------------------------
# Sentiment family: three review domains with a shared structure (clauses, adjectives, verdicts),
# negation and contrast so that no single surface token decides the label.
# ----------------------------------------------------------------------------------------------

SENTIMENT_DOMAINS = {
    "product": {
        "items": [
            "blender",
            "phone case",
            "backpack",
            "desk lamp",
            "coffee grinder",
            "keyboard",
            "water bottle",
            "rice cooker",
            "vacuum cleaner",
            "pair of headphones",
            "toaster",
            "office chair",
            "electric kettle",
            "yoga mat",
            "phone charger",
            "umbrella",
            "hair dryer",
            "frying pan",
            "wireless mouse",
            "suitcase",
            "smart watch",
            "kitchen scale",
            "bike helmet",
            "air fryer",
            "tent",
            "printer",
            "space heater",
            "pair of running shoes",
            "camera bag",
            "baby monitor",
            "drill",
            "pillow",
            "lunch box",
            "tablet stand",
            "bluetooth speaker",
            "winter jacket",
        ],
        "pos_clauses": [
            "works perfectly",
            "arrived two days early",
            "feels really sturdy",
            "does exactly what the description says",
            "is easy to clean",
            "has survived months of daily use",
            "looks even better than in the photos",
            "was simple to set up",
            "runs quietly",
            "has a battery that lasts for days",
            "fits perfectly",
            "still works like new after a year",
            "came well packaged",
            "is much better than my old one",
            "handles heavy use without trouble",
        ],
        "neg_clauses": [
            "stopped working after a week",
            "arrived with a cracked corner",
            "feels cheap and flimsy",
            "looks nothing like the photos",
            "is a pain to clean",
            "makes a terrible rattling noise",
            "has a battery that dies within an hour",
            "was missing two parts",
            "broke the second time I used it",
            "overheats after a few minutes",
            "smells strongly of plastic",
            "is much worse than my old one",
            "came with instructions nobody could follow",
            "fell apart in the first month",
            "never charged properly",
        ],
        "pos_adjs": [
            "reliable",
            "sturdy",
            "excellent",
            "well made",
            "handy",
            "solid",
            "great value",
            "practical",
            "durable",
            "impressive",
            "comfortable",
            "useful",
        ],
        "neg_adjs": [
            "useless",
            "flimsy",
            "disappointing",
            "badly made",
            "faulty",
            "overpriced",
            "unreliable",
            "awkward",
            "poor quality",
            "defective",
            "uncomfortable",
            "cheap",
        ],
        "pos_verdicts": [
            "I would buy it again",
            "Worth every penny",
            "Highly recommended",
            "Five stars from me",
            "I already ordered a second one",
            "Very happy with this purchase",
            "My whole family loves it",
            "Best purchase I made this year",
        ],
        "neg_verdicts": [
            "I want my money back",
            "A complete waste of money",
            "I returned it",
            "One star is too generous",
            "Do not buy this",
            "Very unhappy with this purchase",
            "I regret ordering it",
            "Avoid this seller",
        ],
    },
    "film": {
        "items": [
            "thriller",
            "comedy",
            "documentary",
            "sequel",
            "animated film",
            "western",
            "horror film",
            "musical",
            "war drama",
            "romantic comedy",
            "space adventure",
            "crime drama",
            "biopic",
            "remake",
            "mystery",
            "fantasy epic",
            "heist film",
            "coming-of-age story",
            "period drama",
            "spy film",
            "disaster movie",
            "courtroom drama",
            "superhero movie",
            "family film",
            "sports drama",
            "detective story",
            "zombie movie",
            "road movie",
            "political thriller",
            "nature documentary",
        ],
        "pos_clauses": [
            "kept me on the edge of my seat",
            "has a clever, witty script",
            "features a stunning lead performance",
            "looks gorgeous on the big screen",
            "made the whole audience laugh",
            "has a soundtrack I still hum",
            "tells its story with real heart",
            "builds to a brilliant finale",
            "has characters you truly care about",
            "moved me to tears",
            "never wastes a single scene",
            "surprised me with every twist",
            "is beautifully shot",
            "has a charming cast",
            "stays with you for days",
        ],
        "neg_clauses": [
            "drags on for far too long",
            "has wooden acting throughout",
            "wastes a talented cast",
            "falls apart in the last act",
            "has jokes that never land",
            "is full of plot holes",
            "made me check my watch constantly",
            "has a muddy, ugly look",
            "copies better films scene by scene",
            "ends with a silly twist",
            "has dialogue that makes you cringe",
            "puts style over any kind of story",
            "has a villain with no motive",
            "feels like a long advert",
            "never finds its tone",
        ],
        "pos_adjs": [
            "gripping",
            "moving",
            "hilarious",
            "brilliant",
            "charming",
            "thrilling",
            "clever",
            "beautiful",
            "touching",
            "memorable",
            "fresh",
            "powerful",
        ],
        "neg_adjs": [
            "boring",
            "predictable",
            "clumsy",
            "dull",
            "tedious",
            "forgettable",
            "messy",
            "lifeless",
            "pointless",
            "shallow",
            "confusing",
            "bland",
        ],
        "pos_verdicts": [
            "I would happily watch it again",
            "A must-see",
            "Go and see it",
            "One of the best films of the year",
            "I left the cinema smiling",
            "Ten out of ten",
            "I will recommend it to everyone",
            "Easily worth the ticket",
        ],
        "neg_verdicts": [
            "Two hours I will never get back",
            "Skip it",
            "I walked out halfway",
            "One of the worst films of the year",
            "I nearly fell asleep",
            "Not worth the ticket",
            "Wait for something better",
            "I want those two hours back",
        ],
    },
    "restaurant": {
        "items": [
            "pizza place",
            "sushi bar",
            "diner",
            "cafe",
            "taco stand",
            "steakhouse",
            "noodle shop",
            "bakery",
            "vegan bistro",
            "burger joint",
            "curry house",
            "seafood restaurant",
            "bistro",
            "food truck",
            "tapas bar",
            "ramen shop",
            "family restaurant",
            "brunch spot",
            "dumpling house",
            "hotel restaurant",
            "barbecue shack",
            "pub kitchen",
            "falafel stand",
            "ice cream parlour",
            "creperie",
            "wine bar",
            "pasta place",
            "breakfast cafe",
            "salad bar",
            "grill",
        ],
        "pos_clauses": [
            "serves delicious food",
            "has the friendliest staff in town",
            "brought our dishes out quickly",
            "uses really fresh ingredients",
            "has generous portions at fair prices",
            "made my birthday dinner special",
            "has a cozy, relaxed atmosphere",
            "makes the best soup I have had",
            "always has a table for walk-ins",
            "cooked my steak exactly right",
            "has a creative seasonal menu",
            "keeps everything spotless",
            "handled our allergy requests with care",
            "has desserts worth the trip",
            "gave us a warm welcome",
        ],
        "neg_clauses": [
            "made us wait over an hour",
            "served my soup cold",
            "has rude staff",
            "charged us for dishes we never ordered",
            "had a sticky, dirty floor",
            "gave us tiny portions at huge prices",
            "burned the bread twice",
            "lost our reservation",
            "serves bland, greasy food",
            "is far too loud to hold a conversation",
            "got every order wrong",
            "had a hair in the salad",
            "ran out of half the menu",
            "left us waiting for the bill forever",
            "made me sick the next day",
        ],
        "pos_adjs": [
            "delicious",
            "cozy",
            "welcoming",
            "excellent",
            "charming",
            "tasty",
            "friendly",
            "lovely",
            "fantastic",
            "affordable",
            "spotless",
            "relaxing",
        ],
        "neg_adjs": [
            "dirty",
            "overpriced",
            "noisy",
            "greasy",
            "unfriendly",
            "bland",
            "awful",
            "crowded",
            "slow",
            "disappointing",
            "stale",
            "chaotic",
        ],
        "pos_verdicts": [
            "We will definitely be back",
            "Book a table now",
            "Our new favourite spot",
            "Worth every penny",
            "I cannot wait to go again",
            "Highly recommended",
            "Five stars",
            "A real gem",
        ],
        "neg_verdicts": [
            "I would never eat there again",
            "Avoid it",
            "Never again",
            "Save your money",
            "We left hungry and angry",
            "Not recommended",
            "One star",
            "A real letdown",
        ],
    },
}

INTENSIFIERS = [
    "",
    "really ",
    "very ",
    "truly ",
    "surprisingly ",
    "honestly ",
    "quite ",
    "incredibly ",
]
OPENERS = ["", "", "", "", "Update: ", "Honest review: ", "Review: ", "My verdict: "]


def _sentiment_example(rng: random.Random, domain: dict, label: str) -> str:
    want, other = ("pos", "neg") if label == "positive" else ("neg", "pos")
    item = rng.choice(domain["items"])
    cl = rng.choice(domain[want + "_clauses"])
    cl_o = rng.choice(domain[other + "_clauses"])
    adj = rng.choice(domain[want + "_adjs"])
    adj2 = rng.choice([a for a in domain[want + "_adjs"] if a != adj])
    adj_o = rng.choice(domain[other + "_adjs"])
    verdict = rng.choice(domain[want + "_verdicts"])
    intens = rng.choice(INTENSIFIERS)
    opener = rng.choice(OPENERS)
    # direct templates (0, 3, 5, 9) are drawn twice as often as contrast/negation ones
    t = rng.choice([0, 0, 1, 2, 3, 3, 4, 5, 5, 6, 7, 8, 9, 9])

    def render(cl, cl_o, adj, adj2, adj_o, verdict):
        if t == 0:
            text = f"The {item} {cl}. {verdict}."
        elif t == 1:
            text = f"The {item} {cl_o}, but it {cl}. {verdict}."
        elif t == 2:
            text = f"Although the {item} {cl_o}, {verdict[0].lower() + verdict[1:]}."
        elif t == 3:
            text = f"This {item} is {intens}{adj} and {adj2}."
        elif t == 4:
            text = f"I expected the {item} to be {adj_o}, but it was {intens}{adj}."
        elif t == 5:
            text = f"{verdict}. The {item} {cl}."
        elif t == 6:
            text = f"The {item} is not {adj_o} at all. In fact it {cl}."
        elif t == 7:
            text = f"My friends said the {item} was {adj_o}. They were wrong: it {cl}."
        elif t == 8:
            text = f"Sure, the {item} {cl_o}. Still, it {cl}, and it is {intens}{adj}."
        else:
            text = f"A {intens}{adj} {item}. It {cl}. {verdict}!"
        return opener + text if not text.startswith(("A ", "Sure")) else text

    values = dict(cl=cl, cl_o=cl_o, adj=adj, adj2=adj2, adj_o=adj_o, verdict=verdict)
    text = render(**values)
    flipped = "negative" if label == "positive" else "positive"
    # Every opinion slot of the template takes a phrase of the opposite polarity.
    pools = {
        "cl": other + "_clauses",
        "cl_o": want + "_clauses",
        "adj": other + "_adjs",
        "adj2": other + "_adjs",
        "adj_o": want + "_adjs",
        "verdict": other + "_verdicts",
    }
    slots = SENTIMENT_SLOTS[t]
    extra = next(SENTIMENT_EXTRA[k] for k, d in SENTIMENT_DOMAINS.items() if d is domain)

    def alt(prng: random.Random):
        def fill(choices):
            return render(**dict(values, **dict(zip(slots, choices))))

        def candidates():
            lists = [domain[pools[slot]] + extra.get(pools[slot], []) for slot in slots]
            for combo in _combos_for(prng, fill, lists, n_tokens(text)):
                new = dict(zip(slots, combo))
                if new.get("adj", 0) != new.get("adj2", 1):
                    yield fill(combo), flipped

        return _first_alt(text, candidates())

    return text, alt


# More opinion phrases, used by the alternatives only (the originals draw from the domains'
# lists): short and long ones, so that flipping a review's opinions can keep its token count.
SENTIMENT_EXTRA = {
    "product": {
        "pos_adjs": [
            "great",
            "good",
            "well designed",
            "really well made",
            "beautifully designed",
            "perfectly sized",
            "great value for money",
            "extremely well made",
            "very well designed",
        ],
        "neg_adjs": [
            "bad",
            "poor",
            "broken",
            "poorly designed",
            "badly built",
            "cheaply made",
            "very poorly made",
        ],
        "pos_clauses": [
            "works",
            "works well",
            "is great",
            "does the job",
            "never fails",
            "exceeded all my expectations",
            "is worth every single penny I paid",
            "has worked perfectly every single day since I bought it",
        ],
        "neg_clauses": [
            "broke",
            "leaks",
            "broke quickly",
            "is useless",
            "rattles badly",
            "never worked",
            "stopped working after a single day",
            "broke down completely within the first few days of use",
        ],
        "pos_verdicts": [
            "Love it",
            "Great buy",
            "Recommended",
            "Would buy again",
            "Ten out of ten",
            "I would happily buy it again",
            "I would recommend it to anyone who needs one",
        ],
        "neg_verdicts": [
            "Avoid",
            "Returned",
            "Do not buy",
            "Total waste",
            "Never again",
            "Save your money and buy something else",
            "I would not recommend it to anyone at all",
        ],
    },
    "film": {
        "pos_adjs": [
            "great",
            "fun",
            "wonderful",
            "beautifully made",
            "well acted",
            "beautifully acted",
            "wonderfully written",
            "brilliantly acted",
            "wonderfully funny",
            "really well written",
            "beautifully shot and acted",
        ],
        "neg_adjs": [
            "bad",
            "weak",
            "awful",
            "poorly made",
            "badly acted",
            "badly written",
            "terribly edited",
        ],
        "pos_clauses": [
            "works",
            "shines",
            "is great",
            "is a joy",
            "is wonderfully acted",
            "kept me hooked from start to finish",
            "has the best ending I have seen in years",
            "made me laugh and cry within the same ten minutes",
        ],
        "neg_clauses": [
            "drags",
            "bores",
            "is dull",
            "is a mess",
            "falls flat",
            "is badly acted",
            "never goes anywhere",
            "made me want to leave the cinema after ten minutes",
        ],
        "pos_verdicts": [
            "Loved it",
            "See it",
            "Brilliant",
            "Must see",
            "Highly recommended",
            "Worth every penny",
            "I want to see it again tomorrow",
            "The best film I have seen all year long",
        ],
        "neg_verdicts": [
            "Avoid",
            "Awful",
            "Skip this one",
            "Not recommended",
            "A waste of time",
            "Save your money",
            "Do not waste your evening on it",
            "The worst film I have seen in a very long time",
        ],
    },
    "restaurant": {
        "pos_adjs": [
            "great",
            "good",
            "clean",
            "well run",
            "beautifully decorated",
            "family friendly",
            "reasonably priced",
            "great value for money",
            "very well run",
            "beautifully decorated and cosy",
        ],
        "neg_adjs": ["bad", "poor", "rude", "badly run", "poorly managed", "badly decorated"],
        "pos_clauses": [
            "is great",
            "serves great food",
            "is spotless",
            "has great food",
            "has lovely staff",
            "served the best meal we have had all year",
            "has a menu full of lovely local dishes",
        ],
        "neg_clauses": [
            "is awful",
            "is filthy",
            "served cold food",
            "has rude staff",
            "overcharged us",
            "served the worst meal we have had all year",
            "kept us waiting for almost two hours for our food",
        ],
        "pos_verdicts": [
            "Loved it",
            "Go",
            "Brilliant",
            "Must visit",
            "Ten out of ten",
            "Worth the trip",
            "We will be back again very soon",
            "The best meal we have had in this town",
        ],
        "neg_verdicts": [
            "Avoid",
            "Awful",
            "Stay away",
            "Never again",
            "Not worth it",
            "Eat somewhere else",
            "We will never go back there again",
            "The worst meal we have had in this town",
        ],
    },
}


# The opinion slots each sentiment template uses (all of them flip in a minimal pair).
SENTIMENT_SLOTS = {
    0: ("cl", "verdict"),
    1: ("cl_o", "cl", "verdict"),
    2: ("cl_o", "verdict"),
    3: ("adj", "adj2"),
    4: ("adj_o", "adj"),
    5: ("verdict", "cl"),
    6: ("adj_o", "cl"),
    7: ("adj_o", "cl"),
    8: ("cl_o", "cl", "adj"),
    9: ("adj", "cl", "verdict"),
}


def gen_sentiment(domain_key: str):
    domain = SENTIMENT_DOMAINS[domain_key]

    def make(rng: random.Random, label: str) -> str:
        return _sentiment_example(rng, domain, label)

    return make


# ----------------------------------------------------------------------------------------------
# Topic family: headlines and questions over the same four labels (sports, business, science,
# politics), with made-up names and some cross-domain vocabulary.
# ----------------------------------------------------------------------------------------------

TOWNS = [
    "Riverside",
    "Ashford",
    "Kelmouth",
    "Brightwater",
    "Northgate",
    "Oakridge",
    "Westbrook",
    "Millbrook",
    "Stonehaven",
    "Harlow Bay",
    "Redcliff",
    "Eastfield",
    "Lakemont",
    "Pinecrest",
    "Greywick",
    "Sunmere",
    "Fairhaven",
    "Coldstream",
    "Marlowe",
    "Dunmore",
]
MASCOTS = [
    "Rovers",
    "Lions",
    "Falcons",
    "Giants",
    "United",
    "Wanderers",
    "Sharks",
    "Rangers",
    "Comets",
    "Bears",
]
SPORTS = [
    "tennis",
    "football",
    "basketball",
    "cricket",
    "rugby",
    "hockey",
    "volleyball",
    "baseball",
    "cycling",
    "swimming",
    "golf",
    "boxing",
]
ATHLETES = [
    "striker",
    "goalkeeper",
    "sprinter",
    "captain",
    "young swimmer",
    "veteran boxer",
    "rookie pitcher",
    "tennis star",
    "coach",
    "marathon runner",
]
COMPANIES_A = [
    "Norbel",
    "Vantix",
    "Corlane",
    "Meridia",
    "Quorvo",
    "Elston",
    "Tarvik",
    "Bluecrest",
    "Oxley",
    "Sundara",
    "Pellon",
    "Gravio",
]
COMPANIES_B = [
    "Motors",
    "Foods",
    "Bank",
    "Airlines",
    "Retail",
    "Energy",
    "Telecom",
    "Steel",
    "Pharma",
    "Textiles",
    "Logistics",
    "Insurance",
]
PRODUCTS = [
    "electric cars",
    "smartphones",
    "frozen meals",
    "sports shoes",
    "solar panels",
    "flights",
    "loans",
    "coffee",
    "laptops",
    "medicines",
]
SCI_THINGS = [
    "a new species of frog",
    "an ancient virus",
    "a giant crystal cave",
    "a new antibiotic",
    "water ice",
    "a fossilised dinosaur egg",
    "a deep-sea worm",
    "a new moon",
    "a rare mineral",
    "a gene linked to ageing",
    "a distant black hole",
    "bacteria that eat plastic",
]
SCI_PLACES = [
    "the Amazon rainforest",
    "Antarctica",
    "the Pacific seabed",
    "a Siberian cave",
    "Mars",
    "a lake in Canada",
    "the Sahara",
    "a Greek island",
    "the Moon",
    "a coral reef",
]
SCI_FIELDS = [
    "physicists",
    "biologists",
    "astronomers",
    "chemists",
    "geologists",
    "researchers",
    "scientists",
    "engineers",
]
POLITICIANS = [
    "prime minister",
    "president",
    "finance minister",
    "mayor",
    "governor",
    "foreign minister",
    "opposition leader",
    "senator",
]
PARTIES = [
    "Green Party",
    "Labour Party",
    "Liberal Party",
    "Unity Party",
    "Reform Party",
    "People's Party",
    "Conservative Party",
    "Freedom Party",
]
BILLS = [
    "a new climate law",
    "the tax reform bill",
    "voting age changes",
    "a housing bill",
    "new border rules",
    "the health care plan",
    "a ban on hunting",
    "the budget",
]


def _team(rng):
    return f"{rng.choice(TOWNS)} {rng.choice(MASCOTS)}"


def _company(rng):
    return f"{rng.choice(COMPANIES_A)} {rng.choice(COMPANIES_B)}"


def _cap(words: list[str]) -> list[str]:
    return [w[0].upper() + w[1:] for w in words]


# Free-slot choices of the topic twins (other-topic versions of each sentence frame); the
# lists are graded (short to long phrases) so that some choice matches the original's length.
TEAMS = [f"{t} {m}" for t in TOWNS for m in MASCOTS]
SQUADS = MASCOTS + TEAMS
COMPANY_NAMES = [f"{a} {b}" for a in COMPANIES_A for b in COMPANIES_B]
FIRMS = COMPANIES_A + COMPANY_NAMES
BODIES = [
    "council",
    "assembly",
    "senate",
    "parliament",
    "city council",
    "town council",
    "regional assembly",
    "national parliament",
]
POLICIES = BILLS + [
    "tax plan",
    "budget plan",
    "the new budget for schools",
    "a new law on housing rents",
    "plans to raise the pension age",
    "the plan to cut taxes for small firms",
    "a new tax on cars",
    "a new law to cut the cost of public transport",
    "the plan to build new homes on the edge of town",
]
TALENTS = [
    "talent",
    "a star",
    "new talent",
    "a striker",
    "a sprinter",
    "a young striker",
    "a teenage sprinter",
    "a new goalkeeper",
    "a star swimmer",
    "a rookie pitcher",
    "a future captain",
    "a talented teenage striker",
    "a future world champion",
    "a young goalkeeper with huge promise",
    "a teenage sprinter who broke the national record",
]
SCOUTS = ["Scouts", "Club scouts", "Talent scouts", "Football scouts", "Rugby club scouts"]
PARTIES_THE = PARTIES + ["the " + p for p in PARTIES]


def _news_headline(rng: random.Random, label: str):
    """A headline of ``label`` and its alt function: a twin frame of another topic that keeps
    the headline's town, numbers and names where the frame has them."""
    n = rng.randint(2, 40)
    town = rng.choice(TOWNS)
    # Each option draws exactly what the original one-line template drew, in the same order.
    if label == "sports":

        def o1():
            t1, m1, t2, m2 = (
                rng.choice(TOWNS),
                rng.choice(MASCOTS),
                rng.choice(TOWNS),
                rng.choice(MASCOTS),
            )
            a, b = rng.randint(1, 6), rng.randint(0, 5)
            return (
                f"{t1} {m1} beat {t2} {m2} {a}-{b} to reach the final",
                dict(t1=t1, a=a, b=b),
                Twin(
                    "politics",
                    "{t1} {body} votes {a}-{b} to approve {bill}",
                    dict(body=BODIES, bill=POLICIES),
                ),
            )

        def o2():
            ath, sport = rng.choice(ATHLETES), rng.choice(SPORTS)
            return (
                f"{ath.capitalize()} breaks {sport} record in {town}",
                dict(town=town),
                Twin(
                    "business",
                    "{co} breaks {what} record in {town}",
                    dict(
                        co=FIRMS + ["Bank", "Retailer", "Carmaker", "Airline"],
                        what=["sales", "profit", "export", "quarterly sales"],
                    ),
                ),
            )

        def o3():
            team, ath = _team(rng), rng.choice(ATHLETES)
            return (
                f"{team} sign {ath} in surprise transfer",
                {},
                Twin("business", "{co} buys {co2} in surprise takeover", dict(co=FIRMS, co2=FIRMS)),
            )

        def o4():
            sport, team = rng.choice(SPORTS), _team(rng)
            return (
                f"{sport.capitalize()}: {team} fire coach after {n} defeats",
                dict(n=n),
                Twin(
                    "politics",
                    "{head}: {party} fire {leader} after {n} defeats",
                    dict(
                        head=[
                            "Politics",
                            "Elections",
                            "Parliament",
                            "Local elections",
                            "Election news",
                            "Local election news",
                            "Regional elections",
                        ],
                        party=PARTIES_THE,
                        leader=[
                            "leader",
                            "party leader",
                            "their leader",
                            "chairman",
                            "their party leader",
                            "party chairman",
                        ],
                    ),
                ),
            )

        def o5():
            ath, sport = rng.choice(ATHLETES), rng.choice(SPORTS)
            return (
                f"Injured {ath} to miss rest of {sport} season",
                {},
                Twin(
                    "politics",
                    "Injured {pol} to miss rest of {body} session",
                    dict(
                        pol=POLITICIANS + ["deputy prime minister", "shadow finance minister"],
                        body=BODIES + ["parliamentary", "budget", "summer budget"],
                    ),
                ),
            )

        def o6():
            sport = rng.choice(SPORTS)
            return (
                f"{town} to host world {sport} championship",
                dict(town=town),
                Twin(
                    "science",
                    "{town} to host world {field} conference",
                    dict(
                        field=[
                            "physics",
                            "biology",
                            "astronomy",
                            "chemistry",
                            "geology",
                            "genetics",
                            "robotics",
                            "climate science",
                        ]
                    ),
                ),
            )

        def o7():
            team = _team(rng)
            return (
                f"Fans celebrate as {team} win first title in {n} years",
                dict(n=n),
                Twin(
                    "politics",
                    "{who} celebrate as {party} win first election in {n} years",
                    dict(
                        who=[
                            "Voters",
                            "Supporters",
                            "Activists",
                            "Party members",
                            "Party activists",
                        ],
                        party=PARTIES_THE,
                    ),
                ),
            )

        def o8():
            ath = rng.choice(ATHLETES)
            return (
                f"{ath.capitalize()} banned for {n} matches after red card",
                dict(n=n),
                Twin(
                    "politics",
                    "{pol} {ban} for {n} sessions after {why}",
                    dict(
                        pol=_cap(POLITICIANS),
                        ban=["banned", "suspended"],
                        why=["expenses scandal", "a rowdy debate", "lobbying scandal"],
                    ),
                ),
            )

    elif label == "business":

        def o1():
            co = _company(rng)
            return (
                f"{co} shares jump {n}% after strong profits",
                dict(n=n),
                Twin(
                    "politics",
                    "{party} support jumps {n}% after {event}",
                    dict(
                        party=PARTIES + ["The " + p for p in PARTIES],
                        event=[
                            "strong debate",
                            "TV debate",
                            "budget speech",
                            "election debate",
                            "a strong TV debate",
                            "the leader's budget speech",
                            "strong debate performance",
                        ],
                    ),
                ),
            )

        def o2():
            co, product = _company(rng), rng.choice(PRODUCTS)
            return (
                f"{co} to cut {n * 100} jobs as sales of {product} slow",
                dict(k=n * 100),
                Twin(
                    "politics",
                    "{gov} to cut {k} jobs as spending on {area} slows",
                    dict(
                        gov=[
                            "Government",
                            "Ministry",
                            "Council",
                            "City hall",
                            "The government",
                            "The city council",
                            "The finance ministry",
                            "The defence ministry",
                        ],
                        area=[
                            "defence",
                            "schools",
                            "roads",
                            "hospitals",
                            "housing",
                            "police",
                            "welfare",
                            "public transport",
                            "road repairs",
                            "new schools and hospitals",
                        ],
                    ),
                ),
            )

        def o3():
            co1, co2 = _company(rng), _company(rng)
            return (
                f"{co1} agrees to buy rival {co2}",
                {},
                Twin(
                    "sports",
                    "{team} agree to sign {ath} from rival {team2}",
                    dict(team=SQUADS, ath=ATHLETES, team2=SQUADS),
                ),
            )

        def o4():
            product = rng.choice(PRODUCTS)
            return (
                f"Prices of {product} rise {n}% as demand grows",
                dict(n=n),
                Twin(
                    "science",
                    "Levels of {gas} rise {n}% as {cause}",
                    dict(
                        gas=["carbon dioxide", "methane", "ozone", "ocean acidity"],
                        cause=[
                            "ice melts",
                            "oceans warm",
                            "forests burn",
                            "glaciers melt",
                            "permafrost thaws",
                        ],
                    ),
                ),
            )

        def o5():
            co = _company(rng)
            return (
                f"{co} opens new factory in {town}",
                dict(town=town),
                Twin(
                    "science",
                    "{field} open new {lab} in {town}",
                    dict(
                        field=_cap(SCI_FIELDS)
                        + [
                            "University physicists",
                            "Government scientists",
                            "Space agency engineers",
                            "Climate researchers",
                        ],
                        lab=[
                            "laboratory",
                            "observatory",
                            "research station",
                            "space research centre",
                            "climate research station",
                            "marine biology laboratory",
                        ],
                    ),
                ),
            )

        def o6():
            co_a = rng.choice(COMPANIES_A)
            return (
                f"Sportswear maker {co_a} reports record quarterly revenue",
                dict(co_a=co_a),
                Twin(
                    "sports",
                    "{ath} {co_a} breaks record in {sport} quarter final",
                    dict(ath=_cap(ATHLETES), sport=SPORTS),
                ),
            )

        def o7():
            co = _company(rng)
            return (
                f"{co} chief executive steps down after {n} years",
                dict(n=n),
                Twin(
                    "sports",
                    "{team} {role} steps down after {n} years",
                    dict(team=TEAMS, role=["head coach", "team captain", "manager"]),
                ),
            )

        def o8():
            k = n % 9 + 2
            return (
                f"Retail sales fall for {k} months in a row",
                dict(k=k),
                Twin(
                    "sports",
                    "{team} {lose} {k} {games} in a row",
                    dict(
                        team=TEAMS, lose=["lose", "have lost", "drop"], games=["games", "matches"]
                    ),
                ),
            )

    elif label == "science":

        def o1():
            field_, thing, place = (
                rng.choice(SCI_FIELDS),
                rng.choice(SCI_THINGS),
                rng.choice(SCI_PLACES),
            )
            return (
                f"{field_.capitalize()} discover {thing} in {place}",
                dict(place=place),
                Twin(
                    "sports",
                    "{scouts} discover {talent} in {place}",
                    dict(scouts=SCOUTS, talent=TALENTS),
                ),
            )

        def o2():
            thing = rng.choice(SCI_THINGS)
            return (
                f"New telescope images reveal {thing}",
                {},
                Twin(
                    "politics",
                    "New leaked {docs} reveal {bill}",
                    dict(docs=["emails", "documents", "memos", "cabinet memos"], bill=POLICIES),
                ),
            )

        def o3():
            return (
                f"Study links sleep to memory in {n}-year trial",
                dict(n=n),
                Twin(
                    "business",
                    "{co} links {pay} to {profit} in {n}-year deal",
                    dict(
                        co=FIRMS + ["Bank", "Retailer", "Carmaker", "Airline"],
                        pay=["pay", "bonuses", "staff pay"],
                        profit=["profits", "sales", "share price"],
                    ),
                ),
            )

        def o4():
            field_ = rng.choice(SCI_FIELDS)
            return (
                f"{field_.capitalize()} in {town} build faster quantum chip",
                dict(town=town),
                Twin(
                    "business",
                    "{co} in {town} {launch} cheaper {product}",
                    dict(
                        co=FIRMS + ["Retailers", "Carmakers", "Banks"],
                        launch=["launch", "sell"],
                        product=PRODUCTS,
                    ),
                ),
            )

        def o5():
            place = rng.choice(SCI_PLACES)
            return (
                f"Probe sends back first pictures of {place}",
                {},
                Twin(
                    "sports",
                    "{cam} sends back first pictures of {where}",
                    dict(
                        cam=["Camera", "Drone", "TV crew", "Helicopter"],
                        where=["the stadium", "the new stadium"]
                        + [
                            f"{t} {g}"
                            for t in SQUADS
                            for g in ["stadium", "new stadium", "training ground"]
                        ],
                    ),
                ),
            )

        def o6():
            thing = rng.choice(SCI_THINGS)
            return (
                f"Team finds {thing} using underwater robot",
                {},
                Twin(
                    "business",
                    "{co} finds {who} using {tool}",
                    dict(
                        co=FIRMS,
                        who=[
                            "buyers",
                            "new buyers",
                            "new investors",
                            "cheaper suppliers",
                            "new customers",
                        ],
                        tool=["ads", "online ads", "online adverts", "social media", "a new app"],
                    ),
                ),
            )

        def o7():
            return (
                "Sports scientists measure how sprinters burn energy",
                {},
                Twin(
                    "business",
                    "{who} measure how {whom} spend money",
                    dict(
                        who=[
                            "Bank economists",
                            "Retail analysts",
                            "Market researchers",
                            "Economists",
                            "Central bank economists",
                            "Retail market analysts",
                        ],
                        whom=[
                            "shoppers",
                            "families",
                            "tourists",
                            "students",
                            "young families",
                            "older shoppers",
                        ],
                    ),
                ),
            )

        def o8():
            thing = rng.choice(SCI_THINGS)
            return (
                f"Experiment suggests {thing} is older than thought",
                {},
                Twin(
                    "politics",
                    "Poll suggests {bill}{is_} {pop} than thought",
                    dict(bill=POLICIES, is_=["", " is"], pop=["less popular", "more popular"]),
                ),
            )

    else:  # politics

        def o1():
            bill = rng.choice(BILLS)
            return (
                f"Parliament votes on {bill}",
                {},
                Twin(
                    "business",
                    "{who} vote on {co} {deal}",
                    dict(
                        who=["Staff", "Investors", "Shareholders", "Owners"],
                        co=FIRMS,
                        deal=["merger", "takeover", "pay deal", "bonus scheme"],
                    ),
                ),
            )

        def o2():
            pol = rng.choice(POLITICIANS)
            return (
                f"{pol.capitalize()} resigns amid expenses scandal",
                {},
                Twin(
                    "sports",
                    "{ath} retires amid {scandal} scandal",
                    dict(ath=_cap(ATHLETES), scandal=["doping", "betting", "match-fixing"]),
                ),
            )

        def o3():
            party = rng.choice(PARTIES)
            return (
                f"{party} wins election in {town} by {n} seats",
                dict(town=town, n=n),
                Twin(
                    "sports",
                    "{team} win {match} in {town} by {n} {unit}",
                    dict(
                        team=SQUADS,
                        match=["derby", "final", "cup tie"],
                        unit=["goals", "points", "runs"],
                    ),
                ),
            )

        def o4():
            pol, bill = rng.choice(POLITICIANS), rng.choice(BILLS)
            return (
                f"{pol.capitalize()} promises to scrap {bill}",
                {},
                Twin(
                    "business",
                    "{co} promises to scrap {fees}",
                    dict(
                        co=FIRMS,
                        fees=[
                            "fees",
                            "bonuses",
                            "delivery fees",
                            "bank charges",
                            "its bonus scheme",
                            "its dividend",
                            "fees for late payments",
                        ],
                    ),
                ),
            )

        def o5():
            bill = rng.choice(BILLS)
            return (
                f"Protesters march in {town} against {bill}",
                dict(town=town),
                Twin(
                    "sports",
                    "Fans march in {town} against {team} {what}",
                    dict(
                        team=SQUADS, what=["owners", "ticket prices", "coach", "new stadium plans"]
                    ),
                ),
            )

        def o6():
            p1, p2 = rng.choice(PARTIES), rng.choice(PARTIES)
            return (
                f"{p1} and {p2} agree to form coalition",
                {},
                Twin(
                    "business",
                    "{co} and {co2} agree to form {venture}",
                    dict(co=FIRMS, co2=FIRMS, venture=["joint venture", "partnership", "alliance"]),
                ),
            )

        def o7():
            pol, bill = rng.choice(POLITICIANS), rng.choice(BILLS)
            return (
                f"{pol.capitalize()} meets union leaders over {bill}",
                {},
                Twin(
                    "business",
                    "{co}{boss} meets union leaders over {issue}",
                    dict(
                        co=FIRMS,
                        boss=["", " boss", " chief"],
                        issue=[
                            "pay",
                            "pay cuts",
                            "job cuts",
                            "pensions",
                            "factory closures",
                            "plans to close two factories",
                        ],
                    ),
                ),
            )

        def o8():
            product = rng.choice(PRODUCTS)
            return (
                f"Minister defends plan to tax {product}",
                dict(product=product),
                Twin(
                    "business",
                    "{co} defends plan to sell {product}",
                    dict(co=FIRMS + ["Retailer", "Bank", "Carmaker"]),
                ),
            )

    text, shared, twin = rng.choice([o1, o2, o3, o4, o5, o6, o7, o8])()
    return text, _twin_alt(text, "", shared, [twin])


def _topic_question(rng: random.Random, label: str):
    """A reader's question of ``label`` and its alt function (a twin frame of another topic)."""
    sport = rng.choice(SPORTS)
    if label == "sports":

        def o1():
            return (
                f"How many players does a {sport} team have on the field?",
                {},
                Twin(
                    "business",
                    "How many workers does a {maker} factory have on {where}?",
                    dict(
                        maker=["car", "shoe", "coffee", "steel", "textile", "phone", "toy"],
                        where=["the payroll", "each shift"],
                    ),
                ),
            )

        def o2():
            town = rng.choice(TOWNS)
            return (
                f"Who won the last {sport} championship held in {town}?",
                dict(town=town),
                Twin(
                    "politics",
                    "Who won the last {vote} held in {town}?",
                    dict(
                        vote=[
                            "mayoral election",
                            "general election",
                            "council election",
                            "leadership vote",
                            "local election",
                            "presidential election",
                        ]
                    ),
                ),
            )

        def o3():
            return (
                f"What is the offside rule in {sport}?",
                {},
                Twin(
                    "politics",
                    "What is the {rule} rule in {house}?",
                    dict(
                        rule=["filibuster", "quorum", "voting", "term limit"],
                        house=["parliament", "the senate", "congress"],
                    ),
                ),
            )

        def o4():
            return (
                f"How long does a professional {sport} match usually last?",
                {},
                Twin(
                    "politics",
                    "How long does a {kind} {event} usually last?",
                    dict(
                        kind=["parliamentary", "presidential", "senate", "general election"],
                        event=["debate", "campaign", "hearing", "election"],
                    ),
                ),
            )

        def o5():
            ath, team = rng.choice(ATHLETES), _team(rng)
            return (
                f"Which {ath} has scored the most points for the {team}?",
                {},
                Twin(
                    "politics",
                    "Which {pol} has won the most votes for the {party}{when}?",
                    dict(
                        pol=POLITICIANS,
                        party=PARTIES,
                        when=[
                            "",
                            " this year",
                            " in the north",
                            " in the last election",
                            " since the war",
                            " in the last two elections",
                        ],
                    ),
                ),
            )

        def o6():
            return (
                f"How should a beginner train for {sport} in winter?",
                {},
                Twin(
                    "business",
                    "How should a beginner {invest} {product} in winter?",
                    dict(invest=["invest in", "save for", "sell"], product=PRODUCTS),
                ),
            )

        def o7():
            team = _team(rng)
            return (
                f"Why did the {team} change their coach this season?",
                {},
                Twin(
                    "business",
                    "Why did {co} change their {boss} this {period}?",
                    dict(
                        co=FIRMS,
                        boss=[
                            "chief executive",
                            "boss",
                            "chairman",
                            "bank",
                            "chief financial officer",
                            "board of directors",
                        ],
                        period=["season", "year", "quarter"],
                    ),
                ),
            )

    elif label == "business":

        def o1():
            co = _company(rng)
            return (
                f"Why did shares of {co} fall this week?",
                {},
                Twin(
                    "politics",
                    "Why did {support} the {party} fall this week?",
                    dict(
                        support=[
                            "support for",
                            "votes for",
                            "polling for",
                            "backing for",
                            "the poll lead of",
                            "public support for",
                            "the poll numbers for",
                        ],
                        party=PARTIES,
                    ),
                ),
            )

        def o2():
            product = rng.choice(PRODUCTS)
            return (
                f"How do I write a business plan for selling {product}?",
                {},
                Twin(
                    "science",
                    "How do I write a research plan for studying {thing}?",
                    dict(
                        thing=SCI_THINGS
                        + ["frogs", "bees", "volcanoes", "black holes", "comets", "sea ice"]
                    ),
                ),
            )

        def o3():
            co = _company(rng)
            return (
                f"What does a rise in interest rates mean for a company like {co}?",
                {},
                Twin(
                    "science",
                    "What does a rise in {what} mean for a {place} like {town}?",
                    dict(
                        what=[
                            "heat",
                            "sea levels",
                            "temperature",
                            "ocean temperatures",
                            "carbon dioxide",
                            "global sea levels",
                            "carbon dioxide in the air",
                        ],
                        place=["town", "city", "coast", "coastal town", "river valley"],
                        town=TOWNS,
                    ),
                ),
            )

        def o4():
            product = rng.choice(PRODUCTS)
            return (
                f"Is it a good time to invest in companies that make {product}?",
                dict(product=product),
                Twin(
                    "politics",
                    "Is it a good time to vote for parties that {ban} {product}?",
                    dict(ban=["ban", "tax", "subsidise"]),
                ),
            )

        def o5():
            product = rng.choice(PRODUCTS)
            return (
                f"How much profit does a small shop selling {product} make?",
                {},
                Twin(
                    "science",
                    "How much {stuff} does a small {animal} {need}?",
                    dict(
                        stuff=["oxygen", "energy", "water", "sleep"],
                        animal=[
                            "frog",
                            "bat",
                            "bird",
                            "bee",
                            "fish",
                            "mouse",
                            "lizard",
                            "tree frog",
                            "desert lizard",
                            "honey bee",
                            "garden snail",
                        ],
                        need=[
                            "need",
                            "use",
                            "need each day",
                            "burn in a day",
                            "need to survive",
                            "need to stay warm in winter",
                        ],
                    ),
                ),
            )

        def o6():
            co = _company(rng)
            return (
                f"Who owns {co} after the merger?",
                {},
                Twin(
                    "politics",
                    "Who leads the {party} after the {event}?",
                    dict(
                        party=PARTIES,
                        event=[
                            "merger",
                            "election",
                            "split",
                            "vote",
                            "leadership contest",
                            "election defeat",
                            "party conference",
                            "leadership vote in parliament",
                        ],
                    ),
                ),
            )

        def o7():
            return (
                f"How do {sport} clubs make money from ticket sales and sponsors?",
                dict(sport=sport),
                Twin(
                    "sports",
                    "How do {sport} clubs pick players from {source}?",
                    dict(
                        source=[
                            "youth teams and schools",
                            "local schools",
                            "youth academies",
                            "other clubs",
                            "schools and universities",
                        ]
                    ),
                ),
            )

    elif label == "science":

        def o1():
            return (
                "Why is the sky blue but sunsets red?",
                {},
                Twin(
                    "politics",
                    "{q}",
                    dict(
                        q=[
                            "Why is the senate blue but the house red?",
                            "Why is the north blue but the south red?",
                            "Why do cities vote left but villages right?",
                            "Why is the capital red but the suburbs blue?",
                        ]
                    ),
                ),
            )

        def o2():
            field_, thing, place = (
                rng.choice(SCI_FIELDS),
                rng.choice(SCI_THINGS),
                rng.choice(SCI_PLACES),
            )
            return (
                f"How did {field_} find {thing} in {place}?",
                {},
                Twin(
                    "sports",
                    "How did {scouts} find {talent} in {town}?",
                    dict(
                        scouts=[s.lower() if s == "Scouts" else s for s in SCOUTS],
                        talent=TALENTS,
                        town=TOWNS,
                    ),
                ),
            )

        def o3():
            town = rng.choice(TOWNS)
            return (
                f"What causes earthquakes near {town}?",
                dict(town=town),
                Twin(
                    "politics",
                    "What causes {unrest} near {town}?",
                    dict(
                        unrest=[
                            "protests",
                            "riots",
                            "election fraud",
                            "voter anger",
                            "political unrest",
                        ]
                    ),
                ),
            )

        def o4():
            disease = rng.choice(["flu", "measles", "a virus", "bacteria"])
            return (
                f"How does a vaccine teach the immune system to fight {disease}?",
                dict(sport=sport),
                Twin(
                    "sports",
                    "How does a coach teach the {sport} team to {play}?",
                    dict(
                        play=[
                            "defend",
                            "attack",
                            "fight back",
                            "score goals",
                            "press high",
                            "score more goals",
                            "keep the ball under pressure",
                            "win away from home",
                        ]
                    ),
                ),
            )

        def o5():
            world = rng.choice(["Mars", "Europa", "Titan", "Enceladus", "Venus"])
            return (
                f"Could there be life on {world}?",
                {},
                Twin(
                    "politics",
                    "Could there be {what}?",
                    dict(
                        what=[
                            "a vote",
                            "an election",
                            "a recount",
                            "a coalition",
                            "a referendum",
                            "a snap election",
                            "a vote on the budget",
                            "a new general election",
                            "a recount in the capital",
                            "a referendum on the new tax",
                        ]
                    ),
                ),
            )

        def o6():
            return (
                f"What happens to the body of a {sport} player during a long match?",
                dict(sport=sport),
                Twin(
                    "business",
                    "What happens to the salary of a {sport} player during a long {event}?",
                    dict(event=["strike", "injury", "contract dispute", "lockout"]),
                ),
            )

        def o7():
            animals = rng.choice(["cats", "birds", "whales", "bees", "frogs", "bats"])
            habit = rng.choice(
                ["sleep so much", "migrate", "sing", "change colour", "live in groups"]
            )
            return (
                f"Why do {animals} {habit}?",
                {},
                Twin(
                    "business",
                    "Why do {firms} {act}?",
                    dict(
                        firms=[
                            "banks",
                            "airlines",
                            "retailers",
                            "insurers",
                            "carmakers",
                            "supermarkets",
                        ],
                        act=[
                            "merge",
                            "cut jobs",
                            "raise prices",
                            "pay dividends",
                            "sell shares",
                            "buy rivals",
                        ],
                    ),
                ),
            )

    else:  # politics

        def o1():
            pol, town = rng.choice(POLITICIANS), rng.choice(TOWNS)
            return (
                f"How is the {pol} elected in {town}?",
                dict(town=town),
                Twin(
                    "sports",
                    "How is the {role} chosen in {town}?",
                    dict(
                        role=[
                            "captain",
                            "coach",
                            "team captain",
                            "head coach",
                            "club captain",
                            "football coach",
                            "tennis champion",
                            "hockey team captain",
                            "national football coach",
                            "captain of the rugby team",
                        ]
                    ),
                ),
            )

        def o2():
            party, bill = rng.choice(PARTIES), rng.choice(BILLS)
            return (
                f"What does the {party} say about {bill}?",
                {},
                Twin(
                    "business",
                    "What does {co} say about {what}?",
                    dict(
                        co=FIRMS,
                        what=[
                            "falling sales",
                            "its profits",
                            "the merger",
                            "job cuts",
                            "rising costs",
                            "the cost of its new factory",
                            "plans to cut jobs at its main factory",
                        ],
                    ),
                ),
            )

        def o3():
            pol, bill = rng.choice(POLITICIANS), rng.choice(BILLS)
            return (
                f"Why did the {pol} veto {bill}?",
                {},
                Twin(
                    "sports",
                    "Why did the {ref} {stop} {match}?",
                    dict(
                        ref=["referee", "umpire", "league"],
                        stop=["cancel", "stop", "delay"],
                        match=[
                            "the match",
                            "the final",
                            "the game",
                            "the cup final",
                            "the tennis final",
                            "the football final",
                            "the rugby league final",
                            "the second half of the final",
                            "the last match of the season",
                        ],
                    ),
                ),
            )

        def o4():
            pol = rng.choice(POLITICIANS)
            return (
                f"Can a {pol} serve more than two terms?",
                {},
                Twin(
                    "sports",
                    "Can a {player} {join} more than two {clubs}?",
                    dict(
                        player=[
                            "player",
                            "footballer",
                            "tennis player",
                            "rugby player",
                            "young football player",
                            "professional hockey player",
                        ],
                        join=["play for", "sign for", "join"],
                        clubs=["clubs", "teams", "clubs a season"],
                    ),
                ),
            )

        def o5():
            party = rng.choice(PARTIES)
            return (
                f"Who will lead the {party} after the election?",
                {},
                Twin(
                    "business",
                    "Who will lead {co} after the {event}?",
                    dict(co=COMPANY_NAMES, event=["merger", "takeover", "buyout", "sale"]),
                ),
            )

        def o6():
            bill = rng.choice(BILLS)
            return (
                f"How many votes does {bill} need to pass parliament?",
                {},
                Twin(
                    "sports",
                    "How many points do the {team} need to {win}?",
                    dict(
                        team=SQUADS,
                        win=[
                            "win",
                            "stay up",
                            "go up",
                            "win the league",
                            "avoid relegation",
                            "reach the final",
                            "win the cup",
                        ],
                    ),
                ),
            )

        def o7():
            return (
                f"Should the government spend more public money on {sport} stadiums?",
                {},
                Twin(
                    "business",
                    "Should {co} spend more of its profits on {what}?",
                    dict(
                        co=COMPANY_NAMES,
                        what=["new factories", "staff pay", "advertising", "research"],
                    ),
                ),
            )

    prefix = rng.choice(
        ["", "", "", "Quick question: ", "Can someone explain: ", "Asking for a friend. "]
    )
    text, shared, twin = rng.choice([o1, o2, o3, o4, o5, o6, o7])()
    return prefix + text, _twin_alt(prefix + text, prefix, shared, [twin])


# ----------------------------------------------------------------------------------------------
# Numeric reasoning family (classification): compare, parity, check a sum.
# ----------------------------------------------------------------------------------------------


def _close_pair(rng: random.Random) -> tuple[int, int]:
    """Two different numbers of 3-4 digits that often share their leading digits."""
    a = rng.randint(100, 9999)
    mode = rng.randrange(4)
    if mode == 0:
        b = rng.randint(100, 9999)
    elif mode == 1:
        b = a + rng.choice([-1, 1]) * rng.randint(1, 9)
    elif mode == 2:
        b = a + rng.choice([-1, 1]) * rng.randint(10, 99)
    else:  # same digits swapped around
        s = list(str(a))
        rng.shuffle(s)
        b = int("".join(s)) if s[0] != "0" else a + 1
    b = min(max(b, 100), 9999)
    if b == a:
        b = a + 1 if a < 9999 else a - 1
    return a, b


def gen_compare(rng: random.Random, label: str):
    while True:
        a, b = _close_pair(rng)
        ask_greater = rng.random() < 0.5
        truth = (a > b) if ask_greater else (a < b)
        if ("yes" if truth else "no") == label:
            break
    rel = (
        rng.choice(["greater than", "larger than", "bigger than", "more than"])
        if ask_greater
        else rng.choice(["less than", "smaller than", "lower than", "fewer than"])
    )
    t = rng.randrange(4)

    def render(a: int, b: int) -> str:
        if t == 0:
            return f"Is {a} {rel} {b}?"
        if t == 1:
            return f"A = {a}, B = {b}. Is A {rel} B?"
        if t == 2:
            return f"Question: is the number {a} {rel} the number {b}?"
        return f"First number: {a}. Second number: {b}. Is the first {rel} the second?"

    text = render(a, b)
    flipped = "no" if label == "yes" else "yes"
    # The two numbers swap places: the same pieces, the other answer.
    return text, lambda prng: _first_alt(text, [(render(b, a), flipped)])


PARITY_THINGS = [
    "apples",
    "books",
    "chairs",
    "coins",
    "birds",
    "tickets",
    "stones",
    "pencils",
    "boxes",
    "trees",
    "marbles",
    "cups",
]


def gen_parity(rng: random.Random, label: str):
    n = rng.randint(10, 99999)
    if (n % 2 == 0) != (label == "even"):
        n += 1
    t = rng.randrange(4)
    thing = rng.choice(PARITY_THINGS) if t == 2 else ""

    def render(n: int) -> str:
        if t == 0:
            return f"Is {n} even or odd?"
        if t == 1:
            return f"Number: {n}"
        if t == 2:
            return f"There are {n} {thing} in the room. Is that number even or odd?"
        return f"Consider the number {n}."

    text = render(n)
    flipped = "odd" if label == "even" else "even"

    def alt(prng: random.Random):
        # The last digit changes to one of the other parity.
        digits = [d for d in range(10) if d % 2 != n % 2]
        return _first_alt(
            text, ((render(n - n % 10 + d), flipped) for d in _shuffled(prng, digits))
        )

    return text, alt


SUM_CHECK_OFFSETS = [-100, -10, -2, -1, 1, 2, 10, 100]


def gen_sum_check(rng: random.Random, label: str):
    a = rng.randint(10, 999)
    b = rng.randint(10, 999)
    s = a + b
    if label == "false":
        s += rng.choice(SUM_CHECK_OFFSETS)
    op = rng.randrange(3)
    t = rng.randrange(3)

    def render(a: int, b: int, s: int) -> str:
        if op == 0:  # addition
            claim = f"{a} + {b} = {s}"
        elif op == 1:  # the same fact written as subtraction
            claim = f"{s} - {b} = {a}"
        else:
            claim = f"{a} plus {b} equals {s}"
        if t == 0:
            return f"{claim}."
        if t == 1:
            return f"Statement: {claim}"
        return f"Someone wrote: {claim}."

    text = render(a, b, s)

    def alt(prng: random.Random):
        if label == "true":  # the sum goes wrong by one of the offsets of false statements
            cands = [(a, b, s + d) for d in _shuffled(prng, SUM_CHECK_OFFSETS)]
        else:  # put it right: the sum, else the first operand, else the second
            cands = [(a, b, a + b), (s - b, b, s), (a, s - a, s)]
            # else two operands of the same digit counts that add up to the stated sum
            cands += [(x, s - x, s) for x in _operand_variants(prng, a, 10, 999)]
        flipped = "false" if label == "true" else "true"
        return _first_alt(text, ((render(*c), flipped) for c in cands if min(c) > 0))

    return text, alt


# ----------------------------------------------------------------------------------------------
# Generation: arithmetic family.
# ----------------------------------------------------------------------------------------------


def _operand_variants(prng: random.Random, x: int, lo: int, hi: int):
    """Numbers in [lo, hi] with the digit count of ``x``: those that differ from it in one
    digit first (the most minimal change), then the others; each group shuffled, the second
    made only when the first is used up."""
    digits = str(x)
    low, high = max(lo, 10 ** (len(digits) - 1)), min(hi, 10 ** len(digits) - 1)
    one = {
        int(digits[:i] + d + digits[i + 1 :])
        for i in range(len(digits))
        for d in "0123456789"
        if d != digits[i]
    }
    one = sorted(v for v in one if low <= v <= high)
    yield from _shuffled(prng, one)
    in_one = set(one)
    yield from _shuffled(prng, (v for v in range(low, high + 1) if v != x and v not in in_one))


def _operand_alt(prng, text, render, values, ranges, answer, ok=lambda *v: True):
    """An alternative with one operand changed (digit count kept) so that the answer's first
    character, hence its first token, differs; both operands where one cannot do it."""
    first = answer(*values)[0]

    def candidates():
        for i in _shuffled(prng, range(len(values))):
            for v in _operand_variants(prng, values[i], *ranges[i]):
                new = list(values)
                new[i] = v
                if ok(*new) and answer(*new)[0] != first:
                    yield render(*new), answer(*new)
        # Where no single operand can do it (965 + 961: every sum starts with 1), both change.
        variants = [list(_operand_variants(prng, v, *r)) for v, r in zip(values, ranges)]
        for new in _combos(prng, variants):
            if ok(*new) and answer(*new)[0] != first:
                yield render(*new), answer(*new)

    return _first_alt(text, candidates())


def gen_addition(rng: random.Random):
    a, b = rng.randint(10, 999), rng.randint(10, 999)
    t = rng.randrange(4)

    def render(a, b):
        return [
            f"{a} + {b}",
            f"What is {a} plus {b}?",
            f"Add {a} and {b}.",
            f"Sum of {a} and {b}?",
        ][t]

    text = render(a, b)

    def alt(prng):
        return _operand_alt(
            prng, text, render, (a, b), ((10, 999), (10, 999)), lambda a, b: str(a + b)
        )

    return text, str(a + b), alt


def gen_subtraction(rng: random.Random):
    a, b = rng.randint(10, 999), rng.randint(10, 999)
    if b > a:
        a, b = b, a
    t = rng.randrange(4)

    def render(a, b):
        return [
            f"{a} - {b}",
            f"What is {a} minus {b}?",
            f"Subtract {b} from {a}.",
            f"Take {b} away from {a}.",
        ][t]

    text = render(a, b)

    def alt(prng):
        return _operand_alt(
            prng,
            text,
            render,
            (a, b),
            ((10, 999), (10, 999)),
            lambda a, b: str(a - b),
            ok=lambda a, b: a >= b,
        )

    return text, str(a - b), alt


def gen_multiplication(rng: random.Random):
    a, b = rng.randint(2, 9), rng.randint(11, 99)
    if rng.random() < 0.5:
        a, b = b, a
    t = rng.randrange(4)

    def render(a, b):
        return [f"{a} * {b}", f"What is {a} times {b}?", f"Multiply {a} by {b}.", f"{a} x {b}"][t]

    text = render(a, b)
    ranges = tuple((2, 9) if v < 10 else (11, 99) for v in (a, b))

    def alt(prng):
        return _operand_alt(prng, text, render, (a, b), ranges, lambda a, b: str(a * b))

    return text, str(a * b), alt


# ----------------------------------------------------------------------------------------------
# Generation: string manipulation family.
# ----------------------------------------------------------------------------------------------

WORDS = [
    "apple",
    "river",
    "stone",
    "green",
    "window",
    "garden",
    "silver",
    "yellow",
    "paper",
    "candle",
    "forest",
    "bridge",
    "rabbit",
    "orange",
    "winter",
    "summer",
    "market",
    "pencil",
    "basket",
    "mirror",
    "blue",
    "quiet",
    "happy",
    "little",
    "golden",
    "cloud",
    "ocean",
    "mountain",
    "valley",
    "tiger",
    "horse",
    "castle",
    "dragon",
    "flower",
    "honey",
    "lemon",
    "music",
    "rocket",
    "planet",
    "island",
    "purple",
    "pepper",
    "sugar",
    "salt",
    "bread",
    "butter",
    "cheese",
    "coffee",
    "kitten",
    "puppy",
    "storm",
    "thunder",
    "shadow",
    "light",
    "night",
    "morning",
    "evening",
    "road",
    "train",
    "ship",
    "engine",
    "wheel",
    "tower",
    "clock",
    "story",
    "letter",
    "table",
    "chair",
    "door",
    "floor",
    "cotton",
    "wool",
    "velvet",
    "copper",
    "iron",
    "glass",
    "marble",
    "feather",
    "leaf",
    "branch",
    "seed",
    "root",
    "desert",
    "meadow",
    "harbor",
    "lantern",
    "compass",
    "anchor",
    "violin",
    "drum",
    "piano",
    "guitar",
    "cookie",
    "pickle",
    "tomato",
    "carrot",
    "potato",
    "mango",
    "cherry",
    "peach",
    "falcon",
    "eagle",
    "owl",
    "parrot",
    "dolphin",
    "whale",
    "turtle",
    "spider",
    "beetle",
    "bee",
    "brave",
    "gentle",
    "swift",
    "sleepy",
    "clever",
    "wild",
    "tiny",
    "huge",
    "bright",
    "dark",
    "red",
    "white",
    "black",
    "pink",
    "brown",
    "old",
    "new",
    "warm",
    "cold",
    "soft",
    "king",
    "queen",
    "knight",
    "farmer",
    "doctor",
    "sailor",
    "painter",
    "baker",
    "pilot",
    "teacher",
    "sing",
    "dance",
    "jump",
    "run",
    "swim",
    "read",
    "write",
    "sleep",
    "cook",
    "climb",
]
STRING_WRAPPERS = ["{p}", "{p}", "Phrase: {p}", "Text: {p}", "Words: {p}", "Input: {p}"]


def _phrase(rng: random.Random, lo: int, hi: int) -> list[str]:
    k = rng.randint(lo, hi)
    out: list[str] = []
    while len(out) < k:
        w = rng.choice(WORDS)
        if w not in out:
            out.append(w)
    return out


def _word_alt(prng, text, wrapper, ws, at, answer):
    """Word ``ws[at]`` replaced by another word of the list (not in the phrase) that starts
    with another letter, so that the answer's first token changes."""

    def candidates():
        for w in _shuffled(prng, WORDS):
            if w not in ws and w[0] != ws[at][0]:
                new = list(ws)
                new[at] = w
                yield wrapper.format(p=" ".join(new)), answer(new)

    return _first_alt(text, candidates())


def gen_uppercase(rng: random.Random):
    ws = _phrase(rng, 2, 4)
    p = " ".join(ws)
    wrapper = rng.choice(STRING_WRAPPERS)
    text = wrapper.format(p=p)
    return (
        text,
        p.upper(),
        lambda prng: _word_alt(prng, text, wrapper, ws, 0, lambda ws: " ".join(ws).upper()),
    )


def gen_reverse_words(rng: random.Random):
    ws = _phrase(rng, 3, 4)
    wrapper = rng.choice(STRING_WRAPPERS)
    text = wrapper.format(p=" ".join(ws))
    return (
        text,
        " ".join(reversed(ws)),
        lambda prng: _word_alt(prng, text, wrapper, ws, -1, lambda ws: " ".join(reversed(ws))),
    )


def gen_acronym(rng: random.Random):
    ws = _phrase(rng, 3, 4)
    wrapper = rng.choice(STRING_WRAPPERS)
    text = wrapper.format(p=" ".join(ws))

    def acronym(ws):
        return "".join(w[0] for w in ws).upper()

    return text, acronym(ws), lambda prng: _word_alt(prng, text, wrapper, ws, 0, acronym)


def gen_last_word(rng: random.Random):
    ws = _phrase(rng, 3, 6)
    wrapper = rng.choice(STRING_WRAPPERS)
    text = wrapper.format(p=" ".join(ws))
    return text, ws[-1], lambda prng: _word_alt(prng, text, wrapper, ws, -1, lambda ws: ws[-1])


GROCERIES = [
    "apples",
    "rice",
    "soap",
    "milk",
    "eggs",
    "bread",
    "butter",
    "cheese",
    "coffee",
    "tea",
    "onions",
    "carrots",
    "potatoes",
    "tomatoes",
    "lemons",
    "bananas",
    "flour",
    "sugar",
    "salt",
    "olive oil",
    "pasta",
    "yogurt",
    "honey",
    "beans",
    "lentils",
    "spinach",
    "garlic",
    "oranges",
    "cereal",
    "toothpaste",
    "shampoo",
    "batteries",
    "candles",
    "napkins",
    "dish soap",
    "peanuts",
    "chicken",
    "fish",
    "jam",
    "cucumbers",
]


def gen_list_to_sentence(rng: random.Random):
    k = rng.randint(2, 4)
    items = rng.sample(GROCERIES, k)
    t = rng.randrange(4)
    if t == 0:
        text = "Shopping list: " + ", ".join(items)
    elif t == 1:
        text = "To buy: " + "; ".join(items)
    elif t == 2:
        text = "List: " + ", ".join(items)
    else:
        text = "\n".join("- " + x for x in items)
    joined = (
        items[0] + " and " + items[1] if k == 2 else ", ".join(items[:-1]) + " and " + items[-1]
    )
    return text, f"We need to buy {joined}."


# ----------------------------------------------------------------------------------------------
# Generation: world facts family. (country, capital, continent); countries with a disputed,
# split or ambiguous capital or continent are left out on purpose.
# ----------------------------------------------------------------------------------------------

COUNTRIES = [
    ("France", "Paris", "Europe"),
    ("Germany", "Berlin", "Europe"),
    ("Italy", "Rome", "Europe"),
    ("Spain", "Madrid", "Europe"),
    ("Portugal", "Lisbon", "Europe"),
    ("Greece", "Athens", "Europe"),
    ("Norway", "Oslo", "Europe"),
    ("Sweden", "Stockholm", "Europe"),
    ("Finland", "Helsinki", "Europe"),
    ("Denmark", "Copenhagen", "Europe"),
    ("Poland", "Warsaw", "Europe"),
    ("Austria", "Vienna", "Europe"),
    ("Hungary", "Budapest", "Europe"),
    ("Ireland", "Dublin", "Europe"),
    ("Belgium", "Brussels", "Europe"),
    ("the Czech Republic", "Prague", "Europe"),
    ("Romania", "Bucharest", "Europe"),
    ("Bulgaria", "Sofia", "Europe"),
    ("Croatia", "Zagreb", "Europe"),
    ("Serbia", "Belgrade", "Europe"),
    ("Iceland", "Reykjavik", "Europe"),
    ("Estonia", "Tallinn", "Europe"),
    ("Latvia", "Riga", "Europe"),
    ("Lithuania", "Vilnius", "Europe"),
    ("Slovakia", "Bratislava", "Europe"),
    ("Slovenia", "Ljubljana", "Europe"),
    ("Albania", "Tirana", "Europe"),
    ("the United Kingdom", "London", "Europe"),
    ("Switzerland", "Bern", "Europe"),
    ("Japan", "Tokyo", "Asia"),
    ("China", "Beijing", "Asia"),
    ("India", "New Delhi", "Asia"),
    ("South Korea", "Seoul", "Asia"),
    ("Thailand", "Bangkok", "Asia"),
    ("Vietnam", "Hanoi", "Asia"),
    ("Indonesia", "Jakarta", "Asia"),
    ("the Philippines", "Manila", "Asia"),
    ("Malaysia", "Kuala Lumpur", "Asia"),
    ("Pakistan", "Islamabad", "Asia"),
    ("Bangladesh", "Dhaka", "Asia"),
    ("Nepal", "Kathmandu", "Asia"),
    ("Iran", "Tehran", "Asia"),
    ("Iraq", "Baghdad", "Asia"),
    ("Saudi Arabia", "Riyadh", "Asia"),
    ("Afghanistan", "Kabul", "Asia"),
    ("Mongolia", "Ulaanbaatar", "Asia"),
    ("Cambodia", "Phnom Penh", "Asia"),
    ("Laos", "Vientiane", "Asia"),
    ("Qatar", "Doha", "Asia"),
    ("Jordan", "Amman", "Asia"),
    ("Lebanon", "Beirut", "Asia"),
    ("Syria", "Damascus", "Asia"),
    ("Oman", "Muscat", "Asia"),
    ("Egypt", "Cairo", "Africa"),
    ("Kenya", "Nairobi", "Africa"),
    ("Nigeria", "Abuja", "Africa"),
    ("Ghana", "Accra", "Africa"),
    ("Ethiopia", "Addis Ababa", "Africa"),
    ("Morocco", "Rabat", "Africa"),
    ("Algeria", "Algiers", "Africa"),
    ("Tunisia", "Tunis", "Africa"),
    ("Senegal", "Dakar", "Africa"),
    ("Uganda", "Kampala", "Africa"),
    ("Zimbabwe", "Harare", "Africa"),
    ("Zambia", "Lusaka", "Africa"),
    ("Angola", "Luanda", "Africa"),
    ("Sudan", "Khartoum", "Africa"),
    ("Mali", "Bamako", "Africa"),
    ("Rwanda", "Kigali", "Africa"),
    ("Somalia", "Mogadishu", "Africa"),
    ("Libya", "Tripoli", "Africa"),
    ("Mozambique", "Maputo", "Africa"),
    ("Madagascar", "Antananarivo", "Africa"),
    ("Namibia", "Windhoek", "Africa"),
    ("Botswana", "Gaborone", "Africa"),
    ("Canada", "Ottawa", "North America"),
    ("Mexico", "Mexico City", "North America"),
    ("Cuba", "Havana", "North America"),
    ("Jamaica", "Kingston", "North America"),
    ("Guatemala", "Guatemala City", "North America"),
    ("Honduras", "Tegucigalpa", "North America"),
    ("Nicaragua", "Managua", "North America"),
    ("Panama", "Panama City", "North America"),
    ("Haiti", "Port-au-Prince", "North America"),
    ("the Dominican Republic", "Santo Domingo", "North America"),
    ("El Salvador", "San Salvador", "North America"),
    ("the Bahamas", "Nassau", "North America"),
    ("Brazil", "Brasilia", "South America"),
    ("Argentina", "Buenos Aires", "South America"),
    ("Chile", "Santiago", "South America"),
    ("Peru", "Lima", "South America"),
    ("Colombia", "Bogota", "South America"),
    ("Venezuela", "Caracas", "South America"),
    ("Ecuador", "Quito", "South America"),
    ("Uruguay", "Montevideo", "South America"),
    ("Guyana", "Georgetown", "South America"),
    ("Suriname", "Paramaribo", "South America"),
    ("Australia", "Canberra", "Oceania"),
    ("New Zealand", "Wellington", "Oceania"),
    ("Fiji", "Suva", "Oceania"),
    ("Papua New Guinea", "Port Moresby", "Oceania"),
    ("Samoa", "Apia", "Oceania"),
    ("Vanuatu", "Port Vila", "Oceania"),
]
PEOPLE = [
    "My sister",
    "My uncle",
    "Our teacher",
    "A friend of mine",
    "My neighbour",
    "The new intern",
    "My grandmother",
    "Our football coach",
    "The author",
    "My cousin",
    "A colleague",
    "The pilot",
    "My brother",
    "Our landlord",
    "The singer",
]
ACTIONS_PAST = [
    "moved to {c}",
    "wrote a book about {c}",
    "grew up in {c}",
    "spent a holiday in {c}",
    "sent me a postcard from {c}",
    "gave a talk about {c}",
    "was born in {c}",
    "worked in {c}",
    "got married in {c}",
    "studied in {c}",
]
ACTIONS_PRESENT = [
    "is travelling to {c}",
    "is studying the history of {c}",
    "works for a company in {c}",
    "is learning about {c}",
    "dreams of visiting {c}",
    "lives in {c}",
    "wants to retire in {c}",
    "is writing a report on {c}",
]
WHENS_PAST = [
    "",
    "",
    " last year",
    " a long time ago",
    " recently",
    " in May",
    " in 2019",
    " after the war",
    " last winter",
]
WHENS_PRESENT = ["", "", " this year", " at the moment", " these days", " now"]


def _country_sentence(rng: random.Random, country: str):
    """A sentence mentioning ``country`` and a function that writes it for another country."""
    t = rng.randrange(6)
    if t == 0:
        return f"Country: {_bare(country)}", lambda c: f"Country: {_bare(c)}"
    if t <= 3:
        action, when = rng.choice(ACTIONS_PAST), rng.choice(WHENS_PAST)
    else:
        action, when = rng.choice(ACTIONS_PRESENT), rng.choice(WHENS_PRESENT)
    person = rng.choice(PEOPLE)

    def render(c: str) -> str:
        return f"{person} {action.format(c=c)}{when}."

    return render(country), render


# More countries (undisputed capitals), for alternatives only: the originals draw from
# COUNTRIES; a country whose name has a rare token count needs a wider choice of partners.
EXTRA_COUNTRIES = [
    ("Moldova", "Chisinau", "Europe"),
    ("Montenegro", "Podgorica", "Europe"),
    ("Malta", "Valletta", "Europe"),
    ("Belarus", "Minsk", "Europe"),
    ("North Macedonia", "Skopje", "Europe"),
    ("Bosnia and Herzegovina", "Sarajevo", "Europe"),
    ("Kyrgyzstan", "Bishkek", "Asia"),
    ("Tajikistan", "Dushanbe", "Asia"),
    ("Uzbekistan", "Tashkent", "Asia"),
    ("Bhutan", "Thimphu", "Asia"),
    ("Bahrain", "Manama", "Asia"),
    ("Yemen", "Sanaa", "Asia"),
    ("Burkina Faso", "Ouagadougou", "Africa"),
    ("Niger", "Niamey", "Africa"),
    ("Cameroon", "Yaounde", "Africa"),
    ("Gabon", "Libreville", "Africa"),
    ("Malawi", "Lilongwe", "Africa"),
    ("Liberia", "Monrovia", "Africa"),
    ("Sierra Leone", "Freetown", "Africa"),
    ("Guinea", "Conakry", "Africa"),
    ("Togo", "Lome", "Africa"),
    ("Eritrea", "Asmara", "Africa"),
    ("Mauritania", "Nouakchott", "Africa"),
    ("Paraguay", "Asuncion", "South America"),
    ("Costa Rica", "San Jose", "North America"),
    ("Belize", "Belmopan", "North America"),
    ("Barbados", "Bridgetown", "North America"),
    ("the Solomon Islands", "Honiara", "Oceania"),
]
ALT_COUNTRIES = COUNTRIES + EXTRA_COUNTRIES


def gen_capital(rng: random.Random):
    country, capital, _ = rng.choice(COUNTRIES)
    text, render = _country_sentence(rng, country)

    def alt(prng):  # another country whose capital starts with another letter
        return _first_alt(
            text,
            (
                (render(c), cap)
                for c, cap, _ in _shuffled(prng, ALT_COUNTRIES)
                if c != country and cap[0] != capital[0]
            ),
        )

    return text, capital, alt


CONTINENT_LABELS = ["Africa", "Asia", "Europe", "South America"]


def gen_continent(rng: random.Random, label: str):
    country, _, _ = rng.choice([c for c in COUNTRIES if c[2] == label])
    text, render = _country_sentence(rng, country)

    def alt(prng):  # a country of another of the four continents
        return _first_alt(
            text,
            (
                (render(c), cont)
                for c, _, cont in _shuffled(prng, ALT_COUNTRIES)
                if cont in CONTINENT_LABELS and cont != label
            ),
        )

    return text, alt


def _bare(country: str) -> str:
    return country[4:] if country.startswith("the ") else country


def gen_list_capitals(rng: random.Random):
    k = rng.randint(2, 4)
    picks = rng.sample(COUNTRIES, k)
    t = rng.randrange(3)

    def render(picks) -> tuple[str, str]:
        names = [_bare(c[0]) for c in picks]
        if t == 0:
            text = ", ".join(names)
        elif t == 1:
            text = "Countries: " + ", ".join(names)
        else:
            text = ", ".join(names[:-1]) + " and " + names[-1]
        return text, ", ".join(c[1] for c in picks)

    text, answer = render(picks)

    def alt(prng):  # the first country replaced; its capital starts with another letter
        return _first_alt(
            text,
            (
                render([c, *picks[1:]])
                for c in _shuffled(prng, ALT_COUNTRIES)
                if c not in picks and c[1][0] != picks[0][1][0]
            ),
        )

    return text, answer, alt


RECORD_NAMES = [
    "Anna",
    "Ben",
    "Carla",
    "David",
    "Elif",
    "Farid",
    "Grace",
    "Hugo",
    "Ines",
    "Jonas",
    "Kenji",
    "Lena",
    "Marco",
    "Nadia",
    "Omar",
    "Priya",
]


def gen_describe_list(rng: random.Random):
    """Turn a 'key: value' record into one plain sentence (rouge_l)."""
    person = rng.choice(RECORD_NAMES)
    country, capital, _ = rng.choice(COUNTRIES)
    job = rng.choice(
        [
            "doctor",
            "teacher",
            "farmer",
            "pilot",
            "baker",
            "painter",
            "nurse",
            "engineer",
            "chef",
            "lawyer",
        ]
    )
    pet = rng.choice(
        ["a cat", "a dog", "two cats", "a parrot", "a rabbit", "no pets", "three fish", "a turtle"]
    )
    age = rng.randint(19, 80)

    def render(person: str) -> tuple[str, str]:
        text = f"name: {person}; age: {age}; job: {job}; city: {capital}; pets: {pet}"
        out = f"{person} is a {age}-year-old {job} who lives in {capital} and has {pet}."
        return text, out

    text, out = render(person)

    def alt(prng):  # another name, with another first letter (the answer starts with it)
        return _first_alt(
            text, (render(p) for p in _shuffled(prng, RECORD_NAMES) if p[0] != person[0])
        )

    return text, out, alt


# ----------------------------------------------------------------------------------------------
# Task table. Order here is the order of tasks.json and of the card.
# ----------------------------------------------------------------------------------------------

# ----------------------------------------------------------------------------------------------
# Entity types (DBpedia-like, ten labels) and sentence-pair tasks (NLI, paraphrase, RTE-like).
# ----------------------------------------------------------------------------------------------

NAME_PARTS_A = [
    "Bel",
    "Cor",
    "Dar",
    "El",
    "Fen",
    "Gal",
    "Har",
    "Ist",
    "Jor",
    "Kel",
    "Lom",
    "Mar",
    "Nor",
    "Ost",
    "Pel",
    "Quin",
    "Ros",
    "Sal",
    "Tor",
    "Val",
    "Wes",
    "Yar",
    "Zan",
    "Ab",
]
NAME_PARTS_B = [
    "ford",
    "wick",
    "ton",
    "ley",
    "mont",
    "vale",
    "ridge",
    "dale",
    "brook",
    "holm",
    "stead",
    "field",
    "more",
    "bury",
    "gate",
    "wood",
]
FIRST_NAMES = [
    "Anna",
    "Ben",
    "Clara",
    "David",
    "Elena",
    "Felix",
    "Grace",
    "Hugo",
    "Ines",
    "Jonas",
    "Karin",
    "Leo",
    "Maya",
    "Nils",
    "Olga",
    "Paul",
    "Rosa",
    "Sam",
    "Tara",
    "Victor",
]
ENTITY_TYPES = {
    "company": [
        "{N} {x} is a company that makes {p}.",
        "{N} {x} is a firm based in {T} selling {p}.",
        "Founded in {y}, {N} {x} is a manufacturer of {p}.",
    ],
    "school": [
        "{N} Academy is a secondary school in {T}.",
        "{N} College is a private school founded in {y} in {T}.",
        "{N} High School is a public school in {T} with about {k} pupils.",
    ],
    "artist": [
        "{P} is a painter from {T} known for {s} portraits.",
        "{P} is a sculptor who has worked in {T} since {y}.",
        "{P} is a singer and songwriter born in {T} in {y}.",
    ],
    "athlete": [
        "{P} is a {sp} player who joined the {T} {m} in {y}.",
        "{P} is a retired {sp} player from {T}.",
        "{P} won a national {sp} title in {y} for {T}.",
    ],
    "politician": [
        "{P} is a politician who served as mayor of {T} from {y}.",
        "{P} is a member of the {pa} representing {T}.",
        "{P} was elected to parliament for {T} in {y}.",
    ],
    "building": [
        "The {N} Tower is an office building in {T} completed in {y}.",
        "{N} Hall is a historic house in {T}.",
        "The {N} Bridge Station is a railway building in {T} opened in {y}.",
    ],
    "village": [
        "{N} is a small village near {T} with about {k} inhabitants.",
        "{N} is a village in the {T} district, first mentioned in {y}.",
        "{N} is a rural village on the river near {T}.",
    ],
    "animal": [
        "The {s} {N} beetle is an insect found near {T}.",
        "The {N} {s} frog is an amphibian first described in {y}.",
        "The {N} warbler is a small {s} bird of the {T} forests.",
    ],
    "plant": [
        "{N} {s} moss is a plant that grows on rocks near {T}.",
        "The {N} lily is a flowering plant first described in {y}.",
        "{N} fern is a {s} plant of the wet valleys near {T}.",
    ],
    "film": [
        "{N} Nights is a {y} drama film set in {T}.",
        "The {N} Affair is a comedy film released in {y}.",
        "{N} Road is a {y} documentary film about {T}.",
    ],
}
ENTITY_LABELS = list(ENTITY_TYPES)
ENTITY_ADJS = [
    "bright",
    "dark",
    "golden",
    "pale",
    "red",
    "green",
    "spotted",
    "striped",
    "tiny",
    "silver",
]


def _coined(rng: random.Random) -> str:
    return rng.choice(NAME_PARTS_A) + rng.choice(NAME_PARTS_B)


# More sentences per type, used by the alternatives only: a short and a longer one, each
# ending in a neutral tail of graded length (so that some alternative keeps the token count).
ENTITY_EXTRA = {
    "company": ["{N} {x} is a company{tail}.", "{N} {x} is a company in {T} that makes {p}{tail}."],
    "school": [
        "{N} Academy is a school{tail}.",
        "{N} School is a secondary school in {T}, founded in {y}{tail}.",
    ],
    "artist": ["{P} is a painter{tail}.", "{P} is a painter from {T}, born in {y}{tail}."],
    "athlete": [
        "{P} is a {sp} player{tail}.",
        "{P} is a {sp} player from {T} who joined the {m} in {y}{tail}.",
    ],
    "politician": [
        "{P} is a politician{tail}.",
        "{P} is a politician of the {pa} from {T}, elected in {y}{tail}.",
    ],
    "building": [
        "{N} Hall is a building{tail}.",
        "{N} Hall is a historic building in {T}, completed in {y}{tail}.",
    ],
    "village": [
        "{N} is a village{tail}.",
        "{N} is a village near {T}, first mentioned in {y}{tail}.",
    ],
    "animal": [
        "The {N} beetle is an insect{tail}.",
        "The {s} {N} frog is an amphibian found near {T}, first described in {y}{tail}.",
    ],
    "plant": [
        "{N} moss is a plant{tail}.",
        "The {N} lily is a flowering plant found near {T}, first described in {y}{tail}.",
    ],
    "film": ["{N} Nights is a film{tail}.", "{N} Road is a {y} drama film set in {T}{tail}."],
}
ENTITY_TAILS = [
    "",
    " today",
    " in the region",
    ", well known locally",
    ", of some local fame",
    ", well known across the whole country",
    ", often mentioned in local newspapers and guide books",
    ", described in several books about the history of the region",
]


# The details of an entity sentence that its alternative may draw anew (to keep the token
# count); the names (N, P), the town (T) and the year (y) stay.
ENTITY_FREE = {
    "x": COMPANIES_B,
    "p": PRODUCTS,
    "k": list(range(200, 5000, 50)),
    "s": ENTITY_ADJS,
    "sp": SPORTS,
    "m": MASCOTS,
    "pa": PARTIES,
    "tail": ENTITY_TAILS,
}


def gen_entity(rng: random.Random, label: str):
    template = rng.choice(ENTITY_TYPES[label])
    name = _coined(rng)
    values = dict(
        N=name,
        x=rng.choice(COMPANIES_B),
        p=rng.choice(PRODUCTS),
        T=rng.choice(TOWNS),
        y=rng.randint(1850, 2020),
        k=rng.randrange(200, 5000, 50),
        s=rng.choice(ENTITY_ADJS),
        P=f"{rng.choice(FIRST_NAMES)} {_coined(rng)}",
        sp=rng.choice(SPORTS),
        m=rng.choice(MASCOTS),
        pa=rng.choice(PARTIES),
    )

    def render(template: str) -> str:
        return template.format(**values).replace("The The", "The")

    text = render(template)

    def alt(prng):  # another type's sentence about the same names, town and year
        others = [
            (lab, tpl)
            for lab in ENTITY_LABELS
            if lab != label
            for tpl in ENTITY_TYPES[lab] + ENTITY_EXTRA[lab]
        ]

        def candidates():
            for lab, tpl in _shuffled(prng, others):
                fields = [f for _, f, _, _ in string.Formatter().parse(tpl) if f in ENTITY_FREE]

                def fill(choices, tpl=tpl, fields=fields):
                    return tpl.format(**dict(values, **dict(zip(fields, choices)))).replace(
                        "The The", "The"
                    )

                lists = [
                    [values[f]] + ENTITY_FREE[f] if f in values else ENTITY_FREE[f] for f in fields
                ]
                for combo in _combos_for(prng, fill, lists, n_tokens(text), limit=50):
                    yield fill(combo), lab

        return _first_alt(text, candidates())

    return text, alt


NLI_FACTS = [  # (premise verb phrase, entailed phrase, contradicting phrase, neutral phrase)
    (
        "is playing the guitar on a stage",
        "is making music",
        "is asleep at home",
        "is performing for a large crowd",
    ),
    (
        "is cooking dinner in the kitchen",
        "is preparing food",
        "is swimming in the sea",
        "is making pasta for her family",
    ),
    (
        "is riding a bicycle down a hill",
        "is outdoors",
        "is sitting in an office",
        "is late for work",
    ),
    (
        "is reading a newspaper on a bench",
        "is sitting down",
        "is running a marathon",
        "is waiting for a friend",
    ),
    (
        "is painting a fence in the garden",
        "is working outside",
        "is sleeping in bed",
        "is painting it white",
    ),
    (
        "is feeding ducks at the lake",
        "is near water",
        "is in a desert",
        "is with her grandchildren",
    ),
    (
        "is climbing a steep mountain",
        "is outdoors",
        "is watching television",
        "is training for a race",
    ),
    (
        "is writing a letter at a desk",
        "is using a pen",
        "is dancing at a party",
        "is writing to an old friend",
    ),
    (
        "is washing a red car",
        "is cleaning a vehicle",
        "is flying a plane",
        "is getting paid for it",
    ),
    (
        "is teaching a class of children",
        "is at a school",
        "is alone on an island",
        "is teaching history",
    ),
    (
        "is buying apples at a market",
        "is shopping",
        "is asleep on a train",
        "is buying them for a pie",
    ),
    (
        "is carrying a heavy box upstairs",
        "is lifting something",
        "is lying on a beach",
        "is moving to a new flat",
    ),
]
PAIR_PEOPLE = [
    "A man",
    "A woman",
    "An old man",
    "A young woman",
    "A boy",
    "A girl",
    "A teacher",
    "A farmer",
    "A nurse",
    "A student",
    "A tourist",
    "A chef",
]


# Short hypotheses per fact (index into NLI_FACTS) and label, and neutral time phrases appended
# to any hypothesis: used by the alternatives only, so that some keeps the token count.
NLI_EXTRA: dict[int, dict[str, list[str]]] = {
    0: {"entailment": ["is playing"], "contradiction": ["is asleep"], "neutral": ["is famous"]},
    1: {"entailment": ["is cooking"], "contradiction": ["is asleep"], "neutral": ["is hungry"]},
    2: {"entailment": ["is outside"], "contradiction": ["is indoors"], "neutral": ["is lost"]},
    3: {"entailment": ["is reading"], "contradiction": ["is asleep"], "neutral": ["is retired"]},
    4: {"entailment": ["is painting"], "contradiction": ["is asleep"], "neutral": ["is tired"]},
    5: {"entailment": ["is outside"], "contradiction": ["is indoors"], "neutral": ["is retired"]},
    6: {"entailment": ["is outside"], "contradiction": ["is indoors"], "neutral": ["is tired"]},
    7: {"entailment": ["is writing"], "contradiction": ["is asleep"], "neutral": ["is sad"]},
    8: {"entailment": ["is washing"], "contradiction": ["is asleep"], "neutral": ["is bored"]},
    9: {"entailment": ["is working"], "contradiction": ["is asleep"], "neutral": ["is tired"]},
    10: {"entailment": ["is buying"], "contradiction": ["is asleep"], "neutral": ["is hungry"]},
    11: {"entailment": ["is busy"], "contradiction": ["is asleep"], "neutral": ["is tired"]},
}
NLI_SUFFIXES = ["", " now", " right now", " at the moment", " at this very moment"]


def gen_nli(rng: random.Random, label: str):
    who = rng.choice(PAIR_PEOPLE)
    fact = rng.choice(NLI_FACTS)
    when = rng.choice(
        ["", " this morning", " in the rain", " at noon", " on a Sunday", " after lunch"]
    )
    premise = f"{who} {fact[0]}{when}."
    subject = rng.choice(
        ["The person", who.replace("A ", "The ").replace("An ", "The "), "Someone"]
    )

    def render(part: str) -> str:
        return f"Premise: {premise} Hypothesis: {subject} {part}."

    column = {"entailment": 1, "contradiction": 2, "neutral": 3}
    text = render(fact[column[label]])
    extra = NLI_EXTRA.get(NLI_FACTS.index(fact), {})

    def alt(prng):  # the hypothesis's predicate becomes another label's, for the same premise
        def candidates():
            for other in _shuffled(prng, [lab for lab in column if lab != label]):
                for suffix in NLI_SUFFIXES:
                    for part in [fact[column[other]], *_shuffled(prng, extra.get(other, []))]:
                        yield render(part + suffix), other

        return _first_alt(text, candidates())

    return text, alt


QUESTION_FRAMES = [  # (question, paraphrase) with {x}
    ("How do I learn {x} quickly?", "What is the fastest way to learn {x}?"),
    ("What is the best book about {x}?", "Which book about {x} would you recommend most?"),
    ("Is {x} hard to learn?", "How difficult is it to learn {x}?"),
    ("Why do people like {x}?", "What makes {x} popular with people?"),
    ("How much does it cost to study {x}?", "What is the price of a course in {x}?"),
    ("Can I learn {x} at home?", "Is it possible to study {x} without leaving home?"),
    ("What jobs can I get with {x}?", "Which careers are open to someone who knows {x}?"),
    ("When should children start learning {x}?", "At what age should kids begin {x}?"),
]
TOPICS_X = [
    "chess",
    "French",
    "piano",
    "cooking",
    "statistics",
    "painting",
    "swimming",
    "Python",
    "photography",
    "gardening",
    "Japanese",
    "chemistry",
    "guitar",
    "accounting",
    "yoga",
    "German",
    "drawing",
    "algebra",
    "tennis",
    "knitting",
    "economics",
    "violin",
    "baking",
    "astronomy",
    "Spanish",
    "poetry",
    "sailing",
    "physics",
    "dancing",
    "coding",
]
QUESTION_OPENERS = [
    "",
    "",
    "Quick question: ",
    "As a beginner, ",
    "Honestly, ",
    "Asking for a friend: ",
]


# Openers used by the alternatives only (more lengths to keep a pair's token count).
PARAPHRASE_EXTRA_OPENERS = [
    "Question: ",
    "A quick one: ",
    "Just wondering: ",
    "Serious question: ",
    "One more question: ",
    "I have always wondered: ",
    "Here is something I keep asking myself: ",
]


# More paraphrases of each frame's question (index into QUESTION_FRAMES), for alternatives
# only: a "no" pair of two questions becomes "yes" with one replaced by the other's paraphrase.
PARAPHRASE_EXTRA = {
    0: ["How can I learn {x} fast?", "What is the quickest way to learn {x}?"],
    1: ["Which {x} book is best?", "Which book on {x} is the best?"],
    2: ["Is learning {x} difficult?", "Is {x} difficult to learn?"],
    3: ["Why is {x} popular?", "Why do so many people enjoy {x}?"],
    4: ["What does a {x} course cost?", "How expensive is it to study {x}?"],
    5: ["Can {x} be learned at home?", "Is it possible to learn {x} at home?"],
    6: ["What work can I do with {x}?", "Which jobs need {x}?"],
    7: ["At what age should children learn {x}?", "When should kids start {x}?"],
}


def _question(q: tuple, opener: str) -> str:
    """Frame ``q[0]``, side ``q[1]`` (question or paraphrase) about topic ``q[2]`` (or a
    question template ``q[0]`` about topic ``q[1]``), after ``opener`` (which lower-cases the
    question's first letter, names and "I" excepted)."""
    if isinstance(q[0], str):
        text = q[0].format(x=q[1])
    else:
        text = QUESTION_FRAMES[q[0]][q[1]].format(x=q[2])
    if opener and not text.startswith(("I", "French", "Python")):
        text = text[0].lower() + text[1:]
    return opener + text


def gen_paraphrase(rng: random.Random, label: str):
    i = rng.randrange(len(QUESTION_FRAMES))
    x = rng.choice(TOPICS_X)
    q1 = (i, 0, x)  # (frame, side, topic)
    if label == "yes":
        q2 = (i, 1, x)
    elif rng.random() < 0.5:  # same frame, another topic (lexical overlap, different meaning)
        q2 = (i, 1, rng.choice([t for t in TOPICS_X if t != x]))
    else:  # same topic, another question
        j = rng.choice([j for j in range(len(QUESTION_FRAMES)) if j != i])
        q2 = (j, 1, x)
    if rng.random() < 0.5:
        q1, q2 = q2, q1
    o1, o2 = rng.choice(QUESTION_OPENERS), rng.choice(QUESTION_OPENERS)

    def render(q1, o1, q2, o2) -> str:
        return f"Question 1: {_question(q1, o1)} Question 2: {_question(q2, o2)}"

    text = render(q1, o1, q2, o2)
    openers = list(dict.fromkeys(QUESTION_OPENERS + PARAPHRASE_EXTRA_OPENERS))

    def alt(prng):
        def candidates():
            if label == "yes":  # the second question asks about another topic (PAWS-like)
                for y in _shuffled(prng, TOPICS_X):
                    yield render(q1, o1, (q2[0], q2[1], y), o2), "no"
                for y in _shuffled(prng, TOPICS_X):
                    yield render((q1[0], q1[1], y), o1, q2, o2), "no"
            else:
                if q1[0] == q2[0]:  # same frame, two topics: one topic becomes the other
                    sides = [(q1, (q2[0], q2[1], q1[2])), ((q1[0], q1[1], q2[2]), q2)]
                else:  # two questions about one topic: one becomes the other's paraphrase
                    sides = [(q1, (q1[0], 1 - q1[1], q1[2])), ((q2[0], 1 - q2[1], q2[2]), q2)]
                    sides += [(q1, (p, q1[2])) for p in PARAPHRASE_EXTRA[q1[0]]]
                    sides += [((p, q2[2]), q2) for p in PARAPHRASE_EXTRA[q2[0]]]
                # the openers first as they are, then others (to keep the token count)
                pairs = [(o1, o2)] + _combos(prng, [openers, openers])
                for new1, new2 in sides:
                    for a, b in pairs:
                        yield render(new1, a, new2, b), "yes"

        return _first_alt(text, candidates())

    return text, alt


# The claims of alternatives made to agree with the passage: the original wording first, then
# others of one token more or less (to keep the pair's token count).
RTE_TITLES = ["Dr", "Mr", "Ms", "Sir"]
RTE_VERBS = {
    0: [
        "{v} founded {c}.",
        "{v} set up {c}.",
        "{v} started {c}.",
        "{v} personally founded {c}.",
        "{v} personally set up {c}.",
        "{v} is the founder of {c}.",
    ],
    1: ["{c} was started in {v}.", "{c} started in {v}.", "{c} was set up in {v}."],
}


def gen_rte(rng: random.Random, label: str):
    company = _company(rng)
    first, surname = rng.choice(FIRST_NAMES), _coined(rng)
    town, year = rng.choice(TOWNS), rng.randint(1900, 2015)
    product = rng.choice(PRODUCTS)  # drawn for every passage (the list was built eagerly)
    shape = rng.choice([0, 1, 2])

    def passage(founder: str, town: str, year: int) -> str:
        return [
            f"{company} was founded by {founder} in {town} in {year}.",
            f"In {year}, {founder} started {company} in {town}.",
            f"{founder} set up {company}, a maker of {product}, in {town} in {year}.",
        ][shape]

    founder = f"{first} {surname}"
    kind = rng.randrange(3)
    entailed = label == "entailment"
    wrong_name, wrong_town, wrong_year = "", "", 0
    if not entailed:  # all three wrong facts are drawn (the list of claims was built eagerly)
        wrong_name = _coined(rng)
        wrong_town = rng.choice([t for t in TOWNS if t != town])
        wrong_year = year + rng.choice([-12, -5, 3, 9])

    def claim(kind: int, entailed: bool, value) -> str:
        if entailed:
            return [
                f"{value} founded {company}.",
                f"{company} was started in {value}.",
                f"{company} has existed since {value}.",
            ][kind]
        return [
            f"{value} founded {company}.",
            f"{company} was started in {value}.",
            f"{company} was founded in {value}.",
        ][kind]

    facts = (founder, town, year)
    wrong = (wrong_name, wrong_town, wrong_year)

    def render(p: tuple, c: str) -> str:
        return f"{passage(*p)} Claim: {c}"

    text = render(facts, claim(kind, entailed, facts[kind] if entailed else wrong[kind]))

    def alt(prng):
        def candidates():
            if entailed:  # the claim's fact changes (an earlier year: "has existed since")
                if kind == 0:
                    parts = [FIRST_NAMES, NAME_PARTS_A, NAME_PARTS_B]
                    names = (f"{f} {a}{b}" for f, a, b in _combos(prng, parts))
                    values = (n for n in names if n != founder)
                elif kind == 1:  # another town (the claim's wording may change by a token)
                    for t, verb in _combos(prng, [TOWNS, RTE_VERBS[1]]):
                        if t != town:
                            yield render(facts, verb.format(v=t, c=company)), "not_entailment"
                    return
                else:
                    values = (year - d for d in _shuffled(prng, range(1, 31)))
                for v in values:
                    yield render(facts, claim(kind, True, v)), "not_entailment"
            elif kind == 0:  # the claimed founder is named by surname: in the claim or passage
                for verb in RTE_VERBS[0]:
                    yield render(facts, verb.format(v=surname, c=company)), "entailment"
                # else the passage's founder gets the claimed name (and a first name or title)
                founders = [wrong_name] + [f"{f} {wrong_name}" for f in FIRST_NAMES + RTE_TITLES]
                for f, verb in _combos(prng, [founders, RTE_VERBS[0]]):
                    p = (f, town, year)
                    yield render(p, verb.format(v=wrong_name, c=company)), "entailment"
            elif kind == 1:  # the claim's town is the passage's, or the passage's the claim's
                for verb in RTE_VERBS[1]:
                    yield render(facts, verb.format(v=town, c=company)), "entailment"
                    p = (founder, wrong_town, year)
                    yield render(p, verb.format(v=wrong_town, c=company)), "entailment"
                for t, verb in _combos(prng, [TOWNS, RTE_VERBS[1]]):
                    yield render((founder, t, year), verb.format(v=t, c=company)), "entailment"
            else:  # the claim's year is the passage's
                yield render(facts, claim(2, False, year)), "entailment"

        return _first_alt(text, candidates())

    return text, alt


TASKS = [
    # -- classification --------------------------------------------------------------------
    dict(
        name="product_sentiment",
        family="sentiment",
        category="classification",
        metric="accuracy",
        labels=["positive", "negative"],
        make=gen_sentiment("product"),
        instruction="Does the customer like the product? Answer with positive or negative.",
        description="Short product reviews from templates with contrast ('X, but Y'), negation and verdicts; the label follows the overall opinion.",
        pair_rule="Every opinion phrase the review's template uses (its clauses, adjectives and verdict) is replaced by one of the opposite polarity from the same domain's lists (or from a few more phrases written for the alternatives); the product, intensifier, opener and sentence frame stay, and the label flips.",
    ),
    dict(
        name="film_sentiment",
        family="sentiment",
        category="classification",
        metric="accuracy",
        labels=["positive", "negative"],
        make=gen_sentiment("film"),
        instruction="Did the reviewer like the film? Answer with positive or negative.",
        description="Short film reviews built like product_sentiment, with film vocabulary.",
        pair_rule="Every opinion phrase the review's template uses (its clauses, adjectives and verdict) is replaced by one of the opposite polarity from the same domain's lists (or from a few more phrases written for the alternatives); the film, intensifier, opener and sentence frame stay, and the label flips.",
    ),
    dict(
        name="restaurant_sentiment",
        family="sentiment",
        category="classification",
        metric="accuracy",
        labels=["positive", "negative"],
        make=gen_sentiment("restaurant"),
        instruction="Classify the sentiment of this restaurant review. Answer with positive or negative.",
        description="Short restaurant reviews built like product_sentiment, with restaurant vocabulary.",
        pair_rule="Every opinion phrase the review's template uses (its clauses, adjectives and verdict) is replaced by one of the opposite polarity from the same domain's lists (or from a few more phrases written for the alternatives); the restaurant, intensifier, opener and sentence frame stay, and the label flips.",
    ),
    dict(
        name="news_topic",
        family="topic",
        category="classification",
        metric="accuracy",
        labels=["sports", "business", "science", "politics"],
        make=_news_headline,
        instruction="Classify the topic of this news headline. Answer with sports, business, science or politics.",
        description="Invented news headlines with made-up teams, companies and towns; a few headlines borrow another topic's words (e.g. a sportswear company's revenue is business).",
        pair_rule="The headline's frame is rewritten as its twin of another topic (e.g. 'Striker breaks tennis record in Ashford' -> 'Norbel Motors breaks sales record in Ashford'): the topic-bearing words change, the town, numbers and names that the twin shares stay; the label is the twin's topic.",
    ),
    dict(
        name="question_topic",
        family="topic",
        category="classification",
        metric="accuracy",
        labels=["sports", "business", "science", "politics"],
        make=_topic_question,
        instruction="Classify the topic of this question. Answer with sports, business, science or politics.",
        description="Questions a reader might ask, over the same four topics as news_topic, with some cross-topic vocabulary.",
        pair_rule="The question's frame is rewritten as its twin of another topic (e.g. 'Who won the last golf championship held in Oakridge?' -> 'Who won the last council election held in Oakridge?'): the topic-bearing words change, the opener and shared words stay; the label is the twin's topic.",
    ),
    dict(
        name="number_compare",
        family="numeric_reasoning",
        category="classification",
        metric="accuracy",
        labels=["yes", "no"],
        make=gen_compare,
        instruction="Answer the question about the two numbers. Answer with yes or no.",
        description="Is A greater/less than B, for 3-4 digit numbers that often share leading digits or are digit permutations; half the questions ask 'less than'.",
        pair_rule="The two numbers swap places (the same pieces in another order); the answer flips.",
    ),
    dict(
        name="number_parity",
        family="numeric_reasoning",
        category="classification",
        metric="accuracy",
        labels=["even", "odd"],
        make=gen_parity,
        instruction="Say whether the number in the text is even or odd. Answer with even or odd.",
        description="Numbers from 10 to 99999 in several short templates; the label is the number's parity.",
        pair_rule="The number's last digit becomes one of the other parity; the answer flips.",
    ),
    dict(
        name="sum_check",
        family="numeric_reasoning",
        category="classification",
        metric="accuracy",
        labels=["true", "false"],
        make=gen_sum_check,
        instruction="Is this arithmetic statement true or false? Answer with true or false.",
        description="Addition facts of two 2-3 digit numbers, written as a sum or as the matching subtraction; wrong statements are off by 1, 2, 10 or 100.",
        pair_rule="A true statement's sum is put off by 1, 2, 10 or 100 (as the false statements are); a false one is put right (its sum, else one operand, else both operands change); the answer flips.",
    ),
    dict(
        name="entity_type",
        family="topic",
        category="classification",
        metric="accuracy",
        labels=ENTITY_LABELS,
        make=gen_entity,
        instruction="What kind of thing does this short encyclopedia entry describe? Answer with one of: "
        + ", ".join(ENTITY_LABELS)
        + ".",
        description="DBpedia-like ten-way entity typing: one invented encyclopedia sentence (invented names of companies, schools, people, buildings, villages, species, films) per example.",
        pair_rule="The same invented names, town and year in another type's sentence (another type's template, or a short or longer one ending in a neutral tail; its other details may be drawn anew); the label is that type.",
    ),
    dict(
        name="nli",
        family="sentence_pair",
        category="classification",
        metric="accuracy",
        labels=["entailment", "neutral", "contradiction"],
        make=gen_nli,
        instruction="Does the premise entail the hypothesis, contradict it, or neither? Answer with entailment, neutral or contradiction.",
        description="MNLI-like three-way inference: a premise about a person's activity and a hypothesis that follows from it, contradicts it, or adds unverifiable detail (labels balanced to within one example per split).",
        pair_rule="Same premise and subject; the hypothesis's predicate becomes the same fact's phrase for another label, or a short phrase of that label, maybe followed by a neutral time phrase ('right now'); the label is that label.",
    ),
    dict(
        name="paraphrase",
        family="sentence_pair",
        category="classification",
        metric="accuracy",
        labels=["yes", "no"],
        make=gen_paraphrase,
        instruction="Do the two questions ask the same thing? Answer with yes or no.",
        description="QQP/PAWS-like question pairs: a reworded question (yes), or the same frame about another topic or another question about the same topic (no).",
        pair_rule="A 'yes' pair gets another topic in one question (PAWS-like: 'no'); a 'no' pair about two topics gets one topic in both questions, a 'no' pair of two questions gets one question replaced by a paraphrase of the other ('yes'); an opener may change to keep the length.",
    ),
    dict(
        name="rte",
        family="sentence_pair",
        category="classification",
        metric="accuracy",
        labels=["entailment", "not_entailment"],
        make=gen_rte,
        instruction="Does the passage support the claim? Answer with entailment or not_entailment.",
        description="RTE-like: a sentence about an invented company's founding (who, where, when) and a claim that restates one fact or changes it.",
        pair_rule="A supported claim gets its fact changed (another founder, another town, or a year before the founding); an unsupported claim is made to agree with the passage (its year or town put right, or the founder named by surname in the claim, or in the passage); the claim's verb may change ('founded', 'set up') to keep the length.",
    ),
    # -- generation ------------------------------------------------------------------------
    dict(
        name="addition",
        family="arithmetic",
        category="generation",
        metric="exact_match",
        labels=None,
        make=gen_addition,
        instruction="Compute the sum. Answer with the number only.",
        description="a + b for a, b in 10..999, in four phrasings.",
        pair_rule="One operand changes, keeping its digit count (one digit of it where that suffices), so that the sum's first digit changes; both operands where one cannot do it (965 + 961).",
    ),
    dict(
        name="subtraction",
        family="arithmetic",
        category="generation",
        metric="exact_match",
        labels=None,
        make=gen_subtraction,
        instruction="Compute the difference. Answer with the number only.",
        description="a - b for 10 <= b <= a <= 999 (non-negative results), in four phrasings.",
        pair_rule="One operand changes, keeping its digit count (one digit of it where that suffices) and a non-negative result, so that the difference's first digit changes; both operands where one cannot do it.",
    ),
    dict(
        name="multiplication",
        family="arithmetic",
        category="generation",
        metric="exact_match",
        labels=None,
        make=gen_multiplication,
        instruction="Compute the product. Answer with the number only.",
        description="A one-digit number times a two-digit number (either order), in four phrasings.",
        pair_rule="One factor changes (a one-digit factor stays one-digit, a two-digit one two-digit, one digit where that suffices) so that the product's first digit changes; both where one cannot do it.",
    ),
    dict(
        name="uppercase",
        family="string_manipulation",
        category="generation",
        metric="rouge_l",
        labels=None,
        make=gen_uppercase,
        instruction="Rewrite the phrase in capital letters. Answer with the rewritten phrase only.",
        description="Two to four distinct common English words; the answer is the phrase in upper case.",
        pair_rule="The first word is replaced by another word of the list with another first letter (the answer starts with it).",
    ),
    dict(
        name="reverse_words",
        family="string_manipulation",
        category="generation",
        metric="rouge_l",
        labels=None,
        make=gen_reverse_words,
        instruction="Reverse the order of the words in the phrase. Answer with the reversed phrase only.",
        description="Three or four distinct common English words; the answer lists them last to first.",
        pair_rule="The last word is replaced by another word of the list with another first letter (the answer starts with it).",
    ),
    dict(
        name="acronym",
        family="string_manipulation",
        category="generation",
        metric="exact_match",
        labels=None,
        make=gen_acronym,
        instruction="Write the acronym of the phrase, the first letter of each word in capitals. Answer with the acronym only.",
        description="Three or four distinct common English words; the answer is their initials in upper case.",
        pair_rule="The first word is replaced by another word of the list with another initial (the acronym's first letter).",
    ),
    dict(
        name="last_word",
        family="string_manipulation",
        category="generation",
        metric="rouge_l",
        labels=None,
        make=gen_last_word,
        instruction="What is the last word of the phrase? Answer with that word only.",
        description="Three to six distinct common English words; the answer is the last one.",
        pair_rule="The last word (the answer) is replaced by another word of the list with another first letter.",
    ),
    dict(
        name="list_to_sentence",
        family="string_manipulation",
        category="generation",
        metric="rouge_l",
        labels=None,
        make=gen_list_to_sentence,
        instruction="Rewrite this shopping list as one sentence that starts with 'We need to buy'.",
        description="Two to four grocery items in a list (several list formats); the answer is one sentence 'We need to buy a, b and c.' Graded by ROUGE-L.",
        pair_rule="every answer starts with the same words ('We need to buy'), so no alternative input can change the first answer token, which the logit difference compares.",
        pairs=False,
    ),
    dict(
        name="country_capital",
        family="world_facts",
        category="generation",
        metric="rouge_l",
        labels=None,
        make=gen_capital,
        instruction="Name the capital city of the country mentioned in the text. Answer with the city name only.",
        description=f"A country ({len(COUNTRIES)} countries with an undisputed capital) inside a short sentence or as 'Country: X'; the answer is its capital.",
        pair_rule="The country is replaced by another (from the suite's list or a few more) whose capital starts with another letter, in the same sentence.",
    ),
    dict(
        name="country_continent",
        family="world_facts",
        category="classification",
        metric="accuracy",
        labels=CONTINENT_LABELS,
        make=gen_continent,
        instruction="Name the continent of the country mentioned in the text. Answer with Africa, Asia, Europe or South America.",
        description="Same sentences as country_capital, for countries of four continents (balanced labels; four, not six, so that every split size divides evenly). A classification task: scoring the four names by likelihood measures the fact, where free generation mostly measured the answer format.",
        pair_rule="The country is replaced by one (from the suite's list or a few more) of another of the four continents, in the same sentence; the label is that continent.",
    ),
    dict(
        name="list_capitals",
        family="world_facts",
        category="generation",
        metric="rouge_l",
        labels=None,
        make=gen_list_capitals,
        instruction="List the capital cities of these countries in the same order, separated by commas. Answer with the list only.",
        description="Two to four countries; the answer is their capitals joined by ', '. Graded by ROUGE-L so a partly right list earns partial credit.",
        pair_rule="The first country is replaced by another (not in the list; from the suite's list or a few more) whose capital starts with another letter.",
    ),
    dict(
        name="record_to_sentence",
        family="world_facts",
        category="generation",
        metric="rouge_l",
        labels=None,
        make=gen_describe_list,
        instruction="Rewrite this record as one plain English sentence.",
        description="A 'key: value' record (name, age, job, a capital city, pets); the answer is one sentence in a fixed pattern. Graded by ROUGE-L (data-to-text, like the paper's E2E).",
        pair_rule="The person's name is replaced by another of the list with another first letter (the answer starts with the name); the rest of the record stays.",
    ),
]


# ----------------------------------------------------------------------------------------------
# Building
# ----------------------------------------------------------------------------------------------


def build_task(task: dict, collect: bool = False) -> dict[str, list[dict]]:
    """Return {split: [{"input", "output"[, "alt_input", "alt_output"]}, ...]}; inputs unique
    within the whole task. ``collect`` (for ``--token-table``): an example whose pair rule finds
    no alternative (the counts are estimates then) keeps a placeholder instead of failing."""
    rng = random.Random(task_seed(task["name"]))
    seen: dict[str, None] = {}  # dict, not set: insertion-ordered, no hash-order dependence
    max_tries = 200 * N_TOTAL
    tries = 0
    splits: dict[str, list[dict]] = {s: [] for s, _ in SPLITS}
    if task["category"] == "classification":
        labels = task["labels"]
        per_label: dict[str, list[dict]] = {}
        # Per label and split: n // L examples, one more for the first n % L labels (balanced
        # to within one example when L does not divide n, e.g. three NLI labels).
        quota = {
            label: {split: n // len(labels) + (i < n % len(labels)) for split, n in SPLITS}
            for i, label in enumerate(labels)
        }
        for label in labels:
            rows: list[dict] = []
            while len(rows) < sum(quota[label].values()):
                tries += 1
                if tries > max_tries:
                    raise RuntimeError(f"{task['name']}: example space too small")
                x, alt = _made(task["make"](rng, label), 1)
                if x in seen:
                    continue
                seen[x] = None
                rows.append({"input": x, "output": label, "_alt": alt})
            per_label[label] = rows
        for label in labels:  # stratified split: every split has the same label balance
            start = 0
            for split, _ in SPLITS:
                k = quota[label][split]
                splits[split].extend(per_label[label][start : start + k])
                start += k
    else:
        rows = []
        while len(rows) < N_TOTAL:
            tries += 1
            if tries > max_tries:
                raise RuntimeError(f"{task['name']}: example space too small")
            (x, y), alt = _made(task["make"](rng), 2)
            if x in seen:
                continue
            seen[x] = None
            rows.append({"input": x, "output": y, "_alt": alt})
        start = 0
        for split, n in SPLITS:
            splits[split] = rows[start : start + n]
            start += n
    for split, _ in SPLITS:
        rng.shuffle(splits[split])
    add_pairs(task, splits, collect)
    return splits


def _made(made, n: int):
    """``make``'s result as (the example, its alt function or None): a generator returns its
    example (``n`` values: the input, or the input and the output) and, for a task with minimal
    pairs, a function from a Random to ``(alt_input, alt_output)`` or None."""
    values = made if isinstance(made, tuple) else (made,)
    example = values[0] if n == 1 else values[:n]
    return example, (values[n] if len(values) > n else None)


def add_pairs(task: dict, splits: dict[str, list[dict]], collect: bool = False) -> None:
    """Give every row its minimal-pair alternative (in place), drawn by the task's alt
    functions with a generator of its own (seeded by the task name), split by split in file
    order: the originals do not depend on it. Checks each pair: another answer (for generation
    another first character, so another first token), a label for classification, the same
    token count (``n_tokens``)."""
    rows = [(split, i, row) for split, _ in SPLITS for i, row in enumerate(splits[split])]
    alts = [row.pop("_alt") for _, _, row in rows]
    made_by_generator = [alt is not None for alt in alts]
    if task.get("pairs") is False:  # a task without pairs (its pair_rule says why)
        if any(made_by_generator):
            raise RuntimeError(f"{task['name']}: pairs=False, but the generator makes pairs")
        return
    if not all(made_by_generator):
        raise RuntimeError(
            f"{task['name']}: the generator makes no alternative for some examples; give "
            "every example an alt function, or set pairs=False in the task table"
        )
    prng = random.Random(task_seed(task["name"] + "/pairs"))
    for (split, i, row), alt in zip(rows, alts):
        made = alt(prng)
        where = f"{task['name']} {split}[{i}] ({row['input']!r})"
        if made is None:
            if collect:
                made = (row["input"] + " (no pair yet)", row["output"])
            else:
                raise NoPair(
                    f"{where}: no alternative fits the pair rule with the same token count"
                )
        row["alt_input"], row["alt_output"] = made
        if collect:
            continue
        if task["category"] == "classification":
            bad = row["alt_output"] not in task["labels"] or row["alt_output"] == row["output"]
        else:
            bad = row["alt_output"][:1] == row["output"][:1]
        if bad or row["alt_input"] == row["input"]:
            raise NoPair(f"{where}: the alternative {made!r} has the same answer start or input")
        if n_tokens(row["alt_input"]) != n_tokens(row["input"]):
            raise NoPair(f"{where}: the alternative {made[0]!r} has another token count")


def task_record(task: dict) -> dict:
    return {
        "name": task["name"],
        "instruction": task["instruction"],
        "category": task["category"],
        "family": task["family"],
        "metric": task["metric"],
        "labels": list(task["labels"]) if task["labels"] is not None else None,
        "description": task["description"],
        "pair_rule": task["pair_rule"],
    }


JSONL_FIELDS = ("input", "output", "alt_input", "alt_output")


def _write_jsonl(path: Path, rows: list[dict]) -> None:
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        for r in rows:
            record = {key: r[key] for key in JSONL_FIELDS if key in r}
            f.write(json.dumps(record, ensure_ascii=False) + "\n")


def _md_escape(s: str) -> str:
    return s.replace("|", "\\|").replace("\n", " ")


FAMILY_NOTES = {
    "sentiment": "Binary opinion polarity in three review domains (products, films, restaurants). Same label words, same sentence patterns, different vocabulary: the closest pairs in the suite, where neuron overlap and transfer should be largest.",
    "topic": "Four-way topic classification of headlines and of reader questions over the same four labels: same label space, different text genre.",
    "numeric_reasoning": "Yes/no, even/odd or true/false judgements about numbers (comparison, parity, checking a sum). Classification over digits, related to each other and, through sum_check, to the arithmetic generation family.",
    "arithmetic": "Exact numeric answers: addition, subtraction, multiplication of small numbers.",
    "string_manipulation": "Copying and transforming the input's own words (upper case, word reversal, acronym, last word, a list rewritten as a sentence); no world knowledge needed.",
    "sentence_pair": "Two-text judgements in the spirit of GLUE: three-way inference (MNLI), question paraphrase (QQP/PAWS) and passage-claim entailment (RTE). With news_topic, product_sentiment, entity_type and question_topic they make the offline 4- and 8-task continual-learning sequences (experiments.continual).",
    "world_facts": "Recall of country facts (the capital, a list of capitals: generation, ROUGE-L; the continent: four-way classification) and one data-to-text task that rewrites a record mentioning a capital, as in the paper's generation set.",
}


# Tasks added for the continual-learning sequences (experiments.continual): near-chance zero-shot
# scores are expected there (the sequence trains them), so the headroom count leaves them out.
CONTINUAL_ADDITIONS = ("entity_type", "nli", "paraphrase", "rte")
HEADROOM_CEILING = 0.9
HEADROOM_MARGIN = 0.05


def has_headroom(score: float, chance: float, n: int) -> bool:
    """True if ``score`` (in [0, 1], on ``n`` examples) is clearly above ``chance`` and below 0.9."""
    margin = max(HEADROOM_MARGIN, 2 * (chance * (1 - chance) / n) ** 0.5)
    return chance + margin <= score < HEADROOM_CEILING


def render_card(
    tasks_json: list[dict], examples: dict[str, dict[str, list[dict]]], scores: dict | None
) -> str:
    families: dict[str, list[str]] = {}
    for t in tasks_json:
        families.setdefault(t["family"], []).append(t["name"])
    n_cls = sum(t["category"] == "classification" for t in tasks_json)
    n_gen = len(tasks_json) - n_cls
    L: list[str] = []
    L.append("# The taskneuron_utils task suite (data card)")
    L.append("")
    L.append(
        "<!-- Generated by data/build_suite.py; do not edit by hand. Run `python data/build_suite.py` to rebuild. -->"
    )
    L.append("")
    L.append(
        f"{len(tasks_json)} small synthetic tasks ({n_cls} classification, {n_gen} generation) in "
        f"{len(families)} families, made for replicating Leng & Xiong (2024) on a small CPU model: "
        "finding task-specific neurons, deactivating them, fine-tuning only them, and measuring "
        "transfer between related tasks and its absence between unrelated ones."
    )
    L.append("")
    L.append("## Files")
    L.append("")
    L.append(
        "- `tasks.json`: one object per task: `name`, `instruction`, `category` (classification | generation), "
        "`family`, `metric` (accuracy | exact_match | rouge_l), `labels` (list, or null for generation), `description`."
    )
    L.append(
        '- `<task>/train.jsonl`, `dev.jsonl`, `test.jsonl`: one `{"input": ..., "output": ...}` object per line, '
        + "/".join(str(n) for _, n in SPLITS)
        + " examples; for a task with minimal pairs each line also has `alt_input` and `alt_output` "
        "(see Minimal pairs)."
    )
    L.append(
        f"- `{TOKEN_TABLE.name}` (not installed with the package): the token counts the generator "
        "uses to give a pair's two prompts the same length (see Minimal pairs)."
    )
    L.append(
        "- `scores.json` (optional, written by the evaluation harness): default-model zero-shot scores shown below."
    )
    L.append("")
    L.append(
        "A prompt is the task's instruction, a blank line, then the input, sent as the user turn of the "
        "model's chat template; the answer is the output. Classification is scored by which label's answer "
        "tokens get the highest log-likelihood (accuracy); generation by greedy decoding (exact match on the "
        "stripped text, or ROUGE-L)."
    )
    L.append("")
    L.append(
        "Classification is scored two ways from the same forward pass: `accuracy` ranks the labels by their "
        "summed log-likelihood (the default `score`; the `acc` of evaluation harnesses), `accuracy_per_token` "
        'by the mean log-likelihood per answer token (`tn.evaluate(..., scoring="per_token")` makes it the '
        "`score`; it is not the harnesses' `acc_norm`, which divides by the label's characters and is "
        '`accuracy_norm` in `tn.evaluate`). A sum favours short labels ("Asia" over "South America"); a mean favours long '
        "ones whose later tokens are easy to predict once the first is given. The sum stays the default: it "
        "is the probability the model gives the whole label, and every recorded number was made with it. "
        "The table shows both where they were measured (`acc_per_token`); they differ where a task's labels "
        "differ in length."
    )
    L.append("")
    L.append("## How the data was made, and license")
    L.append("")
    L.append(
        "Every example is generated by `data/build_suite.py` (Python standard library only, no network, no "
        "external data set) from sentence templates and word lists written for this project, plus common "
        "facts (capital cities, continents) and arithmetic. Names of teams, companies and towns are invented. "
        "Seeds are fixed (per task: a base seed plus the CRC-32 of the task name), so the files are "
        "byte-identical on every run; `python data/build_suite.py --check` verifies this. Inputs are unique "
        "within a task: no input appears in two splits or twice in one split. Classification splits are "
        "stratified, so each split has exactly balanced labels."
    )
    L.append("")
    L.append(
        f"License: {LICENSE}. The data contain no personal information: all people are generic "
        '("my sister") or invented first names.'
    )
    L.append("")
    L.append(
        "Limitations: the texts are template-made and far more regular than natural data; the facts cover "
        f"{len(COUNTRIES)} countries, so fact tasks repeat the same facts across splits with different "
        "wording (they test recall and answer format, not unseen knowledge). Scores here are not comparable "
        "with the paper's benchmarks. The default model is weak: it often answers generation prompts in a full "
        "sentence instead of the bare answer, so strict exact match can be near zero zero-shot on some tasks "
        "(fine-tuning teaches the format), and on some numeric classification tasks it prefers one label "
        "whatever the input."
    )
    L.append("")
    L.append("## Families and the intended transfer structure")
    L.append("")
    L.append(
        "Each family groups at least two related tasks. The expected pattern: task-specific neurons overlap "
        "more within a family than across families; deactivating one task's neurons hurts its family members "
        "more than unrelated tasks; fine-tuning one task's neurons transfers to its family members, less or not "
        "at all to other families."
    )
    L.append("")
    for fam, names in families.items():
        L.append(
            f"- **{fam}** ({', '.join('`' + n + '`' for n in names)}): {FAMILY_NOTES.get(fam, '')}"
        )
    L.append("")
    L.append(
        "Suggested splits for generalization experiments (train on one group, test out of domain): "
        "classification {product_sentiment, news_topic, number_compare} -> {film_sentiment, question_topic, number_parity}; "
        "generation {addition, uppercase, country_capital} -> {subtraction, reverse_words, list_capitals}."
    )
    L.append("")
    L.append("## Overview")
    L.append("")
    if scores:
        L.append(
            "Zero-shot scores of the default model (SmolLM2-135M-Instruct) come from `scores.json`, written by the evaluation harness on the test split."
        )
    else:
        L.append(
            "Default-model zero-shot scores: not yet measured (the evaluation harness writes `data/scores.json`; rebuild the card afterwards)."
        )
    L.append("")
    L.append(
        "| task | category | family | metric | labels | train/dev/test | chance | default-model zero-shot score | headroom |"
    )
    L.append("|---|---|---|---|---|---|---|---|---|")
    n_headroom = n_scored = 0
    for t in tasks_json:
        chance = 1 / len(t["labels"]) if t["labels"] else 0.0
        sc, room = "not yet measured", "-"
        if scores and t["name"] in scores:
            s = scores[t["name"]]
            try:
                score, n = float(s["score"]), int(s["n"])
                sc = f"{score:.3f} (n={n}"
                if s.get("nll") is not None:
                    sc += f", NLL {float(s['nll']):.3f}"
                sc += ")"
                if s.get("accuracy_per_token") is not None:
                    sc += f"; acc_per_token {float(s['accuracy_per_token']):.3f}"
                n_scored += 1
                if has_headroom(score, chance, n):
                    room, n_headroom = "yes", n_headroom + 1
                else:
                    room = "no"
            except (KeyError, TypeError, ValueError):
                sc = "not yet measured"
        labels = ", ".join(t["labels"]) if t["labels"] else "-"
        sizes = "/".join(str(len(examples[t["name"]][s])) for s, _ in SPLITS)
        L.append(
            f"| `{t['name']}` | {t['category']} | {t['family']} | {t['metric']} | {labels} | {sizes} "
            f"| {chance:.2f} | {sc} | {room} |"
        )
    L.append("")
    if n_scored:
        L.append(
            f"Headroom (the score is clearly above chance and below {HEADROOM_CEILING}, so that both a drop "
            f"under deactivation and a gain from fine-tuning can show): **{n_headroom} of {len(tasks_json)} "
            f'tasks**. "Clearly above" means by at least {HEADROOM_MARGIN} and by two binomial standard '
            "errors of chance accuracy at that n. The four tasks added for the continual-learning "
            f"sequences ({', '.join(CONTINUAL_ADDITIONS)}) were scored on 100 test examples and sit near "
            "chance zero-shot, as the sequence trains them from the starting model; the headroom "
            "requirement (half of the tasks) is checked on the other tasks."
        )
        L.append("")
    L.extend(render_pairs_section(tasks_json, examples))
    L.append("## Tasks")
    for t in tasks_json:
        L.append("")
        L.append(f"### `{t['name']}`")
        L.append("")
        L.append(f'- Instruction: "{t["instruction"]}"')
        L.append(f"- Category: {t['category']}; family: {t['family']}; metric: {t['metric']}")
        L.append(
            f"- Labels: {', '.join(t['labels']) if t['labels'] else 'none (free-form answer)'}"
        )
        L.append(
            "- Split sizes: " + ", ".join(f"{s} {len(examples[t['name']][s])}" for s, _ in SPLITS)
        )
        L.append(f"- Generation: {t['description']}")
        L.append("- Examples (from train):")
        L.append("")
        L.append("  | input | output |")
        L.append("  |---|---|")
        for r in examples[t["name"]]["train"][:2]:
            L.append(f"  | {_md_escape(r['input'])} | {_md_escape(r['output'])} |")
    L.append("")
    return "\n".join(L)


def render_pairs_section(
    tasks_json: list[dict], examples: dict[str, dict[str, list[dict]]]
) -> list[str]:
    with_pairs = [t for t in tasks_json if "alt_input" in examples[t["name"]]["train"][0]]
    without = [t for t in tasks_json if t not in with_pairs]
    L = ["## Minimal pairs", ""]
    L.append(
        f"{len(with_pairs)} of {len(tasks_json)} tasks have minimal pairs: every example's line also "
        "carries `alt_input` and `alt_output`, an alternative input that differs from the original in "
        "the task-critical part only and has another answer (e.g. an addition with one operand "
        "changed, another country, the opposite opinion words). `task.pairs(split)` returns the "
        "alternatives as a Split aligned one to one with `task.<split>` (`split.pairs()` for a slice or "
        "sample); contrastive attribution patches the alternative's activations into the original and "
        "compares the two answers' first tokens (`logit(A_1) - logit(B_1)`)."
    )
    L.append("")
    L.append(
        "Every pair's two prompts have the same number of tokens under the default model's tokenizer "
        "(SmolLM2-135M-Instruct), because positions are patched one for one; the answers may differ in "
        "length, but their first tokens differ (a generation task's alternative answer starts with "
        "another character; a classification alternative has another label). The generator cannot run "
        f"the tokenizer: it counts tokens with the committed table `{TOKEN_TABLE.name}` (per "
        "pre-tokenizer piece; `python data/build_suite.py --token-table` rewrites it with transformers), "
        "and where a candidate alternative has another count it tries the next one. A test checks every "
        "shipped pair with the real tokenizer; for another tokenizer, "
        "`taskneuron_utils.tasks.check_pairs(tok, split, alt)` says which pairs do not fit. The "
        "alternatives are drawn by a generator of their own after the splits are made, so the original "
        "examples are exactly those of a build without pairs; they are not deduplicated against the "
        "inputs (an alternative may be another example's input)."
    )
    L.append("")
    if without:
        L.append(
            "Without pairs: "
            + "; ".join(f"`{t['name']}` ({t['pair_rule'].rstrip('.')})" for t in without)
            + "."
        )
        L.append("")
    L.append("| task | pair rule | example (train[0]): original -> answer; alternative -> answer |")
    L.append("|---|---|---|")
    for t in with_pairs:
        r = examples[t["name"]]["train"][0]
        L.append(
            f"| `{t['name']}` | {_md_escape(t['pair_rule'])} | {_md_escape(r['input'])} -> "
            f"{_md_escape(r['output'])}; {_md_escape(r['alt_input'])} -> {_md_escape(r['alt_output'])} |"
        )
    L.append("")
    return L


def build(out_dir: Path, scores_path: Path | None = None) -> list[Path]:
    """Write every file of the suite under out_dir; return the written paths (relative)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    tasks_json = [task_record(t) for t in TASKS]
    names = [t["name"] for t in tasks_json]
    assert len(names) == len(dict.fromkeys(names)), "duplicate task names"
    examples: dict[str, dict[str, list[dict]]] = {}
    for task in TASKS:
        splits = build_task(task)
        examples[task["name"]] = splits
        d = out_dir / task["name"]
        d.mkdir(exist_ok=True)
        for split, _ in SPLITS:
            _write_jsonl(d / f"{split}.jsonl", splits[split])
            written.append(Path(task["name"]) / f"{split}.jsonl")
    with open(out_dir / "tasks.json", "w", encoding="utf-8", newline="\n") as f:
        f.write(json.dumps(tasks_json, indent=2, ensure_ascii=False) + "\n")
    written.append(Path("tasks.json"))
    scores = None
    if scores_path is not None and scores_path.is_file():
        with open(scores_path, encoding="utf-8") as f:
            scores = json.load(f)
    with open(out_dir / "README.md", "w", encoding="utf-8", newline="\n") as f:
        f.write(render_card(tasks_json, examples, scores))
    written.append(Path("README.md"))
    return written


def check(data_dir: Path) -> int:
    with tempfile.TemporaryDirectory(prefix="taskneuron_suite_") as tmp:
        tmp_dir = Path(tmp)
        written = build(tmp_dir, scores_path=data_dir / "scores.json")
        bad = []
        for rel in written:
            mine = data_dir / rel
            if not mine.is_file():
                bad.append(f"missing: {rel}")
            elif not filecmp.cmp(mine, tmp_dir / rel, shallow=False):
                bad.append(f"differs: {rel}")
    if bad:
        print(
            "data suite check FAILED (run `python data/build_suite.py` to regenerate):",
            file=sys.stderr,
        )
        for b in bad:
            print("  " + b, file=sys.stderr)
        return 1
    print(f"data suite check passed: {len(written)} files identical to a fresh build")
    return 0


def write_token_table(tokenizer: str | None = None, path: Path = TOKEN_TABLE) -> int:
    """Rewrite the token-count table with the real tokenizer (transformers; the default model's
    unless ``tokenizer`` names another folder or hub id): build every task in collect mode,
    count the pieces it looked up, and repeat until every piece is known (the choices depend on
    the counts); keep exactly the pieces the final build uses."""
    global _COUNTER
    from transformers import AutoTokenizer

    if tokenizer is None:
        from taskneuron_utils.core.models import default_model_path

        tokenizer = str(default_model_path())
    tok = AutoTokenizer.from_pretrained(tokenizer)

    def count(piece: str) -> int:
        return len(tok(piece, add_special_tokens=False).input_ids)

    for number in ("7", " 7", "2024", " 31415"):  # the digit rule TokenCounter assumes
        if count(number) != len(number):
            raise SystemExit(f"{tokenizer}: {number!r} is not one token a character")
    table: dict[str, int] = {}
    for _ in range(50):
        _COUNTER = TokenCounter(table, collect=True)
        for task in TASKS:
            build_task(task, collect=True)
        if not _COUNTER.missing:
            break
        table.update({piece: count(piece) for piece in sorted(_COUNTER.missing)})
    else:
        raise SystemExit("the token table did not settle in 50 rounds")
    used = {piece: table[piece] for piece in sorted(_COUNTER.used)}
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        json.dump({"tokenizer": TOKENIZER_NAME, "counts": used}, f, indent=1, ensure_ascii=False)
        f.write("\n")
    print(f"wrote {len(used)} token counts to {path}")
    _COUNTER = TokenCounter(used)
    for task in TASKS:  # the table builds every pair (else: NoPair names the example)
        build_task(task)
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--check", action="store_true", help="regenerate into a temp dir and compare with data/"
    )
    ap.add_argument(
        "--out",
        type=Path,
        default=DATA_DIR,
        help="output directory (default: this script's folder)",
    )
    ap.add_argument(
        "--token-table",
        action="store_true",
        help=f"rewrite {TOKEN_TABLE.name} with the default model's tokenizer (needs transformers)",
    )
    ap.add_argument(
        "--tokenizer", default=None, help="with --token-table: another tokenizer (folder or hub id)"
    )
    args = ap.parse_args(argv)
    if args.token_table:
        return write_token_table(args.tokenizer)
    if args.check:
        return check(args.out)
    written = build(args.out, scores_path=args.out / "scores.json")
    print(f"wrote {len(written)} files for {len(TASKS)} tasks under {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
