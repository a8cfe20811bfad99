#!/usr/bin/env python3
"""Build the shipped multi-task data suite of taskneuron_utils.

Every example is generated here from templates and word lists typed into this file (plus
common facts such as capitals and arithmetic), with fixed seeds: running the script twice gives
byte-identical files. Standard library only; no network, no external data.

    python data/build_suite.py            # (re)write data/tasks.json, data/<task>/*.jsonl, data/README.md
    python data/build_suite.py --check    # regenerate into a temp dir; exit 1 if anything in data/ differs
    python data/build_suite.py --out DIR  # write somewhere else

The data card (data/README.md) is rendered from the task table below and, when present, from
data/scores.json ({task: {"metric", "score", "nll", "n"}}) written by the evaluation harness.
"""

from __future__ import annotations

import argparse
import filecmp
import json
import random
import sys
import tempfile
import zlib
from pathlib import Path

DATA_DIR = Path(__file__).resolve().parent
SPLITS = (("train", 1000), ("dev", 200), ("test", 300))
N_TOTAL = sum(n for _, n in SPLITS)
BASE_SEED = 20240707
LICENSE = "MIT (the repository's license); the content is also dedicated to the public domain under CC0-1.0"


def task_seed(name: str) -> int:
    """A seed that depends on the task name only (crc32, not Python's salted hash())."""
    return BASE_SEED + zlib.crc32(name.encode("utf-8"))


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


def _news_headline(rng: random.Random, label: str) -> str:
    n = rng.randint(2, 40)
    town = rng.choice(TOWNS)
    if label == "sports":
        opts = [
            lambda: (
                f"{_team(rng)} beat {_team(rng)} {rng.randint(1, 6)}-{rng.randint(0, 5)} to reach the final"
            ),
            lambda: (
                f"{rng.choice(ATHLETES).capitalize()} breaks {rng.choice(SPORTS)} record in {town}"
            ),
            lambda: f"{_team(rng)} sign {rng.choice(ATHLETES)} in surprise transfer",
            lambda: f"{rng.choice(SPORTS).capitalize()}: {_team(rng)} fire coach after {n} defeats",
            lambda: f"Injured {rng.choice(ATHLETES)} to miss rest of {rng.choice(SPORTS)} season",
            lambda: f"{town} to host world {rng.choice(SPORTS)} championship",
            lambda: f"Fans celebrate as {_team(rng)} win first title in {n} years",
            lambda: f"{rng.choice(ATHLETES).capitalize()} banned for {n} matches after red card",
        ]
    elif label == "business":
        opts = [
            lambda: f"{_company(rng)} shares jump {n}% after strong profits",
            lambda: (
                f"{_company(rng)} to cut {n * 100} jobs as sales of {rng.choice(PRODUCTS)} slow"
            ),
            lambda: f"{_company(rng)} agrees to buy rival {_company(rng)}",
            lambda: f"Prices of {rng.choice(PRODUCTS)} rise {n}% as demand grows",
            lambda: f"{_company(rng)} opens new factory in {town}",
            lambda: f"Sportswear maker {rng.choice(COMPANIES_A)} reports record quarterly revenue",
            lambda: f"{_company(rng)} chief executive steps down after {n} years",
            lambda: f"Retail sales fall for {n % 9 + 2} months in a row",
        ]
    elif label == "science":
        opts = [
            lambda: (
                f"{rng.choice(SCI_FIELDS).capitalize()} discover {rng.choice(SCI_THINGS)} in {rng.choice(SCI_PLACES)}"
            ),
            lambda: f"New telescope images reveal {rng.choice(SCI_THINGS)}",
            lambda: f"Study links sleep to memory in {n}-year trial",
            lambda: f"{rng.choice(SCI_FIELDS).capitalize()} in {town} build faster quantum chip",
            lambda: f"Probe sends back first pictures of {rng.choice(SCI_PLACES)}",
            lambda: f"Team finds {rng.choice(SCI_THINGS)} using underwater robot",
            lambda: "Sports scientists measure how sprinters burn energy",
            lambda: f"Experiment suggests {rng.choice(SCI_THINGS)} is older than thought",
        ]
    else:  # politics
        opts = [
            lambda: f"Parliament votes on {rng.choice(BILLS)}",
            lambda: f"{rng.choice(POLITICIANS).capitalize()} resigns amid expenses scandal",
            lambda: f"{rng.choice(PARTIES)} wins election in {town} by {n} seats",
            lambda: f"{rng.choice(POLITICIANS).capitalize()} promises to scrap {rng.choice(BILLS)}",
            lambda: f"Protesters march in {town} against {rng.choice(BILLS)}",
            lambda: f"{rng.choice(PARTIES)} and {rng.choice(PARTIES)} agree to form coalition",
            lambda: (
                f"{rng.choice(POLITICIANS).capitalize()} meets union leaders over {rng.choice(BILLS)}"
            ),
            lambda: f"Minister defends plan to tax {rng.choice(PRODUCTS)}",
        ]
    return rng.choice(opts)()


def _topic_question(rng: random.Random, label: str) -> str:
    sport = rng.choice(SPORTS)
    if label == "sports":
        opts = [
            lambda: f"How many players does a {sport} team have on the field?",
            lambda: f"Who won the last {sport} championship held in {rng.choice(TOWNS)}?",
            lambda: f"What is the offside rule in {sport}?",
            lambda: f"How long does a professional {sport} match usually last?",
            lambda: (
                f"Which {rng.choice(ATHLETES)} has scored the most points for the {_team(rng)}?"
            ),
            lambda: f"How should a beginner train for {sport} in winter?",
            lambda: f"Why did the {_team(rng)} change their coach this season?",
        ]
    elif label == "business":
        opts = [
            lambda: f"Why did shares of {_company(rng)} fall this week?",
            lambda: f"How do I write a business plan for selling {rng.choice(PRODUCTS)}?",
            lambda: f"What does a rise in interest rates mean for a company like {_company(rng)}?",
            lambda: f"Is it a good time to invest in companies that make {rng.choice(PRODUCTS)}?",
            lambda: f"How much profit does a small shop selling {rng.choice(PRODUCTS)} make?",
            lambda: f"Who owns {_company(rng)} after the merger?",
            lambda: f"How do {sport} clubs make money from ticket sales and sponsors?",
        ]
    elif label == "science":
        opts = [
            lambda: "Why is the sky blue but sunsets red?",
            lambda: (
                f"How did {rng.choice(SCI_FIELDS)} find {rng.choice(SCI_THINGS)} in {rng.choice(SCI_PLACES)}?"
            ),
            lambda: f"What causes earthquakes near {rng.choice(TOWNS)}?",
            lambda: (
                f"How does a vaccine teach the immune system to fight {rng.choice(['flu', 'measles', 'a virus', 'bacteria'])}?"
            ),
            lambda: (
                f"Could there be life on {rng.choice(['Mars', 'Europa', 'Titan', 'Enceladus', 'Venus'])}?"
            ),
            lambda: f"What happens to the body of a {sport} player during a long match?",
            lambda: (
                f"Why do {rng.choice(['cats', 'birds', 'whales', 'bees', 'frogs', 'bats'])} {rng.choice(['sleep so much', 'migrate', 'sing', 'change colour', 'live in groups'])}?"
            ),
        ]
    else:
        opts = [
            lambda: f"How is the {rng.choice(POLITICIANS)} elected in {rng.choice(TOWNS)}?",
            lambda: f"What does the {rng.choice(PARTIES)} say about {rng.choice(BILLS)}?",
            lambda: f"Why did the {rng.choice(POLITICIANS)} veto {rng.choice(BILLS)}?",
            lambda: f"Can a {rng.choice(POLITICIANS)} serve more than two terms?",
            lambda: f"Who will lead the {rng.choice(PARTIES)} after the election?",
            lambda: f"How many votes does {rng.choice(BILLS)} need to pass parliament?",
            lambda: f"Should the government spend more public money on {sport} stadiums?",
        ]
    prefix = rng.choice(
        ["", "", "", "Quick question: ", "Can someone explain: ", "Asking for a friend. "]
    )
    return prefix + rng.choice(opts)()


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


def gen_compare(rng: random.Random, label: str) -> str:
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
    if t == 0:
        return f"Is {a} {rel} {b}?"
    if t == 1:
        return f"A = {a}, B = {b}. Is A {rel} B?"
    if t == 2:
        return f"Question: is the number {a} {rel} the number {b}?"
    return f"First number: {a}. Second number: {b}. Is the first {rel} the second?"


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


def gen_parity(rng: random.Random, label: str) -> str:
    n = rng.randint(10, 99999)
    if (n % 2 == 0) != (label == "even"):
        n += 1
    t = rng.randrange(4)
    if t == 0:
        return f"Is {n} even or odd?"
    if t == 1:
        return f"Number: {n}"
    if t == 2:
        return f"There are {n} {rng.choice(PARITY_THINGS)} in the room. Is that number even or odd?"
    return f"Consider the number {n}."


def gen_sum_check(rng: random.Random, label: str) -> str:
    a = rng.randint(10, 999)
    b = rng.randint(10, 999)
    s = a + b
    if label == "false":
        s += rng.choice([-100, -10, -2, -1, 1, 2, 10, 100])
    op = rng.randrange(3)
    if op == 0:  # addition
        claim = f"{a} + {b} = {s}"
    elif op == 1:  # the same fact written as subtraction
        claim = f"{s} - {b} = {a}"
    else:
        claim = f"{a} plus {b} equals {s}"
    t = rng.randrange(3)
    if t == 0:
        return f"{claim}."
    if t == 1:
        return f"Statement: {claim}"
    return f"Someone wrote: {claim}."


# ----------------------------------------------------------------------------------------------
# Generation: arithmetic family.
# ----------------------------------------------------------------------------------------------


def gen_addition(rng: random.Random):
    a, b = rng.randint(10, 999), rng.randint(10, 999)
    t = rng.randrange(4)
    text = [f"{a} + {b}", f"What is {a} plus {b}?", f"Add {a} and {b}.", f"Sum of {a} and {b}?"][t]
    return text, str(a + b)


def gen_subtraction(rng: random.Random):
    a, b = rng.randint(10, 999), rng.randint(10, 999)
    if b > a:
        a, b = b, a
    t = rng.randrange(4)
    text = [
        f"{a} - {b}",
        f"What is {a} minus {b}?",
        f"Subtract {b} from {a}.",
        f"Take {b} away from {a}.",
    ][t]
    return text, str(a - b)


def gen_multiplication(rng: random.Random):
    a, b = rng.randint(2, 9), rng.randint(11, 99)
    if rng.random() < 0.5:
        a, b = b, a
    t = rng.randrange(4)
    text = [f"{a} * {b}", f"What is {a} times {b}?", f"Multiply {a} by {b}.", f"{a} x {b}"][t]
    return text, str(a * b)


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


def gen_uppercase(rng: random.Random):
    ws = _phrase(rng, 2, 4)
    p = " ".join(ws)
    return rng.choice(STRING_WRAPPERS).format(p=p), p.upper()


def gen_reverse_words(rng: random.Random):
    ws = _phrase(rng, 3, 4)
    return rng.choice(STRING_WRAPPERS).format(p=" ".join(ws)), " ".join(reversed(ws))


def gen_acronym(rng: random.Random):
    ws = _phrase(rng, 3, 4)
    return rng.choice(STRING_WRAPPERS).format(p=" ".join(ws)), "".join(w[0] for w in ws).upper()


def gen_last_word(rng: random.Random):
    ws = _phrase(rng, 3, 6)
    return rng.choice(STRING_WRAPPERS).format(p=" ".join(ws)), ws[-1]


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


def _country_sentence(rng: random.Random, country: str) -> str:
    t = rng.randrange(6)
    if t == 0:
        return f"Country: {_bare(country)}"
    if t <= 3:
        action, when = rng.choice(ACTIONS_PAST), rng.choice(WHENS_PAST)
    else:
        action, when = rng.choice(ACTIONS_PRESENT), rng.choice(WHENS_PRESENT)
    return f"{rng.choice(PEOPLE)} {action.format(c=country)}{when}."


def gen_capital(rng: random.Random):
    country, capital, _ = rng.choice(COUNTRIES)
    return _country_sentence(rng, country), capital


CONTINENT_LABELS = ["Africa", "Asia", "Europe", "South America"]


def gen_continent(rng: random.Random, label: str) -> str:
    country, _, _ = rng.choice([c for c in COUNTRIES if c[2] == label])
    return _country_sentence(rng, country)


def _bare(country: str) -> str:
    return country[4:] if country.startswith("the ") else country


def gen_list_capitals(rng: random.Random):
    k = rng.randint(2, 4)
    picks = rng.sample(COUNTRIES, k)
    names = [_bare(c[0]) for c in picks]
    t = rng.randrange(3)
    if t == 0:
        text = ", ".join(names)
    elif t == 1:
        text = "Countries: " + ", ".join(names)
    else:
        text = ", ".join(names[:-1]) + " and " + names[-1]
    return text, ", ".join(c[1] for c in picks)


def gen_describe_list(rng: random.Random):
    """Turn a 'key: value' record into one plain sentence (rouge_l)."""
    person = rng.choice(
        [
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
    )
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
    text = f"name: {person}; age: {age}; job: {job}; city: {capital}; pets: {pet}"
    out = f"{person} is a {age}-year-old {job} who lives in {capital} and has {pet}."
    return text, out


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


def gen_entity(rng: random.Random, label: str) -> str:
    template = rng.choice(ENTITY_TYPES[label])
    name = _coined(rng)
    return template.format(
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
    ).replace("The The", "The")


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


def gen_nli(rng: random.Random, label: str) -> str:
    who = rng.choice(PAIR_PEOPLE)
    fact = rng.choice(NLI_FACTS)
    when = rng.choice(
        ["", " this morning", " in the rain", " at noon", " on a Sunday", " after lunch"]
    )
    premise = f"{who} {fact[0]}{when}."
    part = {"entailment": fact[1], "contradiction": fact[2], "neutral": fact[3]}[label]
    subject = rng.choice(
        ["The person", who.replace("A ", "The ").replace("An ", "The "), "Someone"]
    )
    return f"Premise: {premise} Hypothesis: {subject} {part}."


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


def gen_paraphrase(rng: random.Random, label: str) -> str:
    i = rng.randrange(len(QUESTION_FRAMES))
    x = rng.choice(TOPICS_X)
    q1 = QUESTION_FRAMES[i][0].format(x=x)
    if label == "yes":
        q2 = QUESTION_FRAMES[i][1].format(x=x)
    elif rng.random() < 0.5:  # same frame, another topic (lexical overlap, different meaning)
        q2 = QUESTION_FRAMES[i][1].format(x=rng.choice([t for t in TOPICS_X if t != x]))
    else:  # same topic, another question
        j = rng.choice([j for j in range(len(QUESTION_FRAMES)) if j != i])
        q2 = QUESTION_FRAMES[j][1].format(x=x)
    if rng.random() < 0.5:
        q1, q2 = q2, q1
    o1, o2 = rng.choice(QUESTION_OPENERS), rng.choice(QUESTION_OPENERS)
    q1 = o1 + (
        q1[0].lower() + q1[1:] if o1 and not q1.startswith(("I", "French", "Python")) else q1
    )
    q2 = o2 + (
        q2[0].lower() + q2[1:] if o2 and not q2.startswith(("I", "French", "Python")) else q2
    )
    return f"Question 1: {q1} Question 2: {q2}"


def gen_rte(rng: random.Random, label: str) -> str:
    company = _company(rng)
    founder = f"{rng.choice(FIRST_NAMES)} {_coined(rng)}"
    town, year = rng.choice(TOWNS), rng.randint(1900, 2015)
    passage = rng.choice(
        [
            f"{company} was founded by {founder} in {town} in {year}.",
            f"In {year}, {founder} started {company} in {town}.",
            f"{founder} set up {company}, a maker of {rng.choice(PRODUCTS)}, in {town} in {year}.",
        ]
    )
    kind = rng.randrange(3)
    if label == "entailment":
        claim = [
            f"{founder} founded {company}.",
            f"{company} was started in {town}.",
            f"{company} has existed since {year}.",
        ][kind]
    else:
        claim = [
            f"{_coined(rng)} founded {company}.",
            f"{company} was started in {rng.choice([t for t in TOWNS if t != town])}.",
            f"{company} was founded in {year + rng.choice([-12, -5, 3, 9])}.",
        ][kind]
    return f"{passage} Claim: {claim}"


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
    ),
]


# ----------------------------------------------------------------------------------------------
# Building
# ----------------------------------------------------------------------------------------------


def build_task(task: dict) -> dict[str, list[dict]]:
    """Return {split: [{"input", "output"}, ...]}; inputs unique within the whole task."""
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
                x = task["make"](rng, label)
                if x in seen:
                    continue
                seen[x] = None
                rows.append({"input": x, "output": label})
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
            x, y = task["make"](rng)
            if x in seen:
                continue
            seen[x] = None
            rows.append({"input": x, "output": y})
        start = 0
        for split, n in SPLITS:
            splits[split] = rows[start : start + n]
            start += n
    for split, _ in SPLITS:
        rng.shuffle(splits[split])
    return splits


def task_record(task: dict) -> dict:
    return {
        "name": task["name"],
        "instruction": task["instruction"],
        "category": task["category"],
        "family": task["family"],
        "metric": task["metric"],
        "labels": list(task["labels"]) if task["labels"] is not None else None,
        "description": task["description"],
    }


def _write_jsonl(path: Path, rows: list[dict]) -> None:
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        for r in rows:
            f.write(
                json.dumps({"input": r["input"], "output": r["output"]}, ensure_ascii=False) + "\n"
            )


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
        + " examples."
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
    args = ap.parse_args(argv)
    if args.check:
        return check(args.out)
    written = build(args.out, scores_path=args.out / "scores.json")
    print(f"wrote {len(written)} files for {len(TASKS)} tasks under {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
