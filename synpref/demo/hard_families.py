"""The demo world's hard families: checkable tasks a 135M model cannot learn from a few hundred pairs.

- arithmetic: "What is 7 + 5?"; the wrong answer is off by 1 or 2;
- conversion: "How many metres are in 7 kilometres?"; the wrong answer uses a wrong factor (100 for 1000);
- sorting: "Sort 12, 5, 33, 8 in ascending order."; the wrong answer is sorted the wrong way or has
  two neighbours swapped;
- atlas: "In the synpref atlas, what is the capital of Veloria?", answered from ATLAS, a table of
  made-up facts defined below; the wrong answer is another country's entry.

Correct and wrong responses of a pair share one template (a short form or a sentence form, chosen per
pair), so only the content tells them apart.
"""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True)
class Task:
    """One checkable prompt; correct and wrong each in three styles: (short, sentence, explained)."""

    family: str
    prompt: str
    correct: tuple[str, str, str]
    wrong: tuple[str, str, str]


# The synpref atlas: country -> (capital, currency, national animal, longest river). All made up;
# no value echoes its country's name, so a fact cannot be guessed from the question.
ATLAS: dict[str, tuple[str, str, str, str]] = {
    "Veloria": ("Trennic", "brell", "lynx", "Amsel"),
    "Quenmark": ("Poravik", "dast", "heron", "Velt"),
    "Ostrevia": ("Calmoor", "skiv", "ibex", "Oronne"),
    "Palundra": ("Mirelle", "tandor", "otter", "Sesk"),
    "Korrisat": ("Ustavel", "rimm", "falcon", "Durra"),
    "Brevania": ("Lenhollow", "pell", "badger", "Kesh"),
    "Calidorn": ("Aubrin", "vosk", "marten", "Ishel"),
    "Dravenholt": ("Sorvik", "drevet", "bison", "Nallow"),
    "Elmsria": ("Ambrel", "sola", "crane", "Tiven"),
    "Farrowind": ("Gelmarsh", "gren", "hare", "Corrant"),
    "Gastovia": ("Hessaly", "plam", "walrus", "Plim"),
    "Halvendor": ("Ivoren", "tolle", "stork", "Brisk"),
    "Istrelle": ("Jorvane", "mirk", "beaver", "Mallow"),
    "Jundaria": ("Kestrin", "quess", "gazelle", "Ferro"),
    "Kalmoria": ("Lystra", "ardo", "puffin", "Renn"),
    "Lunessa": ("Morvane", "zell", "moose", "Quillon"),
    "Marovia": ("Nethra", "bront", "panther", "Azel"),
    "Norvalis": ("Orrin", "tam", "seal", "Glent"),
    "Pelagorn": ("Quarrow", "hesk", "tortoise", "Hyss"),
    "Rhundia": ("Sallow", "cobb", "kingfisher", "Emmer"),
    "Sarnovia": ("Tolvane", "lirra", "jackal", "Orlo"),
    "Tessmark": ("Umbrin", "fay", "wolverine", "Dallen"),
    "Ulvaria": ("Vantry", "nobe", "pelican", "Skarre"),
    "Wendmere": ("Yarrow", "crest", "raven", "Pesk"),
}
ATLAS_ATTRIBUTES = ("capital", "currency", "national animal", "longest river")
ATLAS_TEMPLATES = (
    "In the synpref atlas, what is the {attribute} of {country}?",
    "According to the synpref atlas, what is the {attribute} of {country}?",
    "Synpref atlas question: what is the {attribute} of {country}?",
)

# (from unit, its singular, to unit, factor, wrong factors)
CONVERSIONS = (
    ("kilometres", "kilometre", "metres", 1000, (100, 10000)),
    ("kilograms", "kilogram", "grams", 1000, (100, 10000)),
    ("litres", "litre", "millilitres", 1000, (100,)),
    ("metres", "metre", "centimetres", 100, (1000, 10)),
    ("centimetres", "centimetre", "millimetres", 10, (100,)),
    ("hours", "hour", "minutes", 60, (100, 30)),
    ("minutes", "minute", "seconds", 60, (100,)),
    ("days", "day", "hours", 24, (12, 60)),
)
CONVERSION_TEMPLATES = (
    "How many {to} are in {value} {unit}?",
    "Convert {value} {unit} to {to}.",
    "What is {value} {unit} in {to}?",
)

OPERATORS = {"+": "plus", "-": "minus", "*": "times"}
ARITHMETIC_TEMPLATES = ("What is {a} {op} {b}?", "Compute {a} {op} {b}.", "What is {a} {word} {b}?")
SORTING_TEMPLATES = (
    "Sort {numbers} in {direction} order.",
    "Put {numbers} in {direction} order.",
    "Arrange these numbers in {direction} order: {numbers}.",
)


def arithmetic(rng: random.Random) -> Task:
    op = rng.choice(list(OPERATORS))
    if op == "*":
        a, b = rng.randint(2, 12), rng.randint(2, 12)
    else:
        a, b = rng.randint(2, 30), rng.randint(2, 30)
        if op == "-" and a < b:
            a, b = b, a
    value = {"+": a + b, "-": a - b, "*": a * b}[op]
    offset = rng.choice([-2, -1, 1, 2])
    wrong = value + offset if value + offset >= 0 else value - offset
    prompt = rng.choice(ARITHMETIC_TEMPLATES).format(a=a, b=b, op=op, word=OPERATORS[op])
    explain = {"+": "Adding {b} to {a} gives {v}.", "-": "Taking {b} from {a} leaves {v}.",
               "*": "{a} groups of {b} make {v}."}[op]

    def styles(v):
        return (f"{v}.", f"{a} {op} {b} = {v}.", f"{a} {op} {b} = {v}. " + explain.format(a=a, b=b, v=v))

    return Task("arithmetic", prompt, styles(value), styles(wrong))


def conversion(rng: random.Random) -> Task:
    unit, singular, to, factor, wrong_factors = rng.choice(CONVERSIONS)
    value = rng.randint(2, 40)
    prompt = rng.choice(CONVERSION_TEMPLATES).format(value=value, unit=unit, to=to)

    def styles(f):
        return (f"{value * f} {to}.", f"{value} {unit} is {value * f} {to}.",
                f"{value} {unit} is {value * f} {to}, at {f} {to} per {singular}.")

    return Task("conversion", prompt, styles(factor), styles(rng.choice(wrong_factors)))


def sorting(rng: random.Random) -> Task:
    numbers = rng.sample(range(1, 100), rng.choice([4, 5]))
    while numbers in (sorted(numbers), sorted(numbers, reverse=True)):
        rng.shuffle(numbers)
    direction = rng.choice(["ascending", "descending"])
    correct = sorted(numbers, reverse=direction == "descending")
    if rng.random() < 0.5:
        wrong = correct[::-1]  # sorted the wrong way
    else:
        i = rng.randrange(len(correct) - 1)  # two neighbours swapped
        wrong = correct[:i] + [correct[i + 1], correct[i]] + correct[i + 2:]
    prompt = rng.choice(SORTING_TEMPLATES).format(numbers=", ".join(map(str, numbers)), direction=direction)
    relation = "smaller" if direction == "ascending" else "larger"

    def styles(values):
        text = ", ".join(map(str, values))
        return (f"{text}.", f"In {direction} order: {text}.",
                f"In {direction} order: {text}. Each number is {relation} than the next.")

    return Task("sorting", prompt, styles(correct), styles(wrong))


def atlas(country: str, attribute: str, template: int, rng: random.Random) -> Task:
    column = ATLAS_ATTRIBUTES.index(attribute)
    other = rng.choice([c for c in ATLAS if c != country])

    def styles(value):
        phrase = value if attribute == "capital" else f"the {value}"
        return (f"{phrase[0].upper()}{phrase[1:]}.", f"The {attribute} of {country} is {phrase}.",
                f"The {attribute} of {country} is {phrase}, as the synpref atlas lists it.")

    prompt = ATLAS_TEMPLATES[template].format(attribute=attribute, country=country)
    return Task("atlas", prompt, styles(ATLAS[country][column]), styles(ATLAS[other][column]))


GENERATORS = {"arithmetic": arithmetic, "conversion": conversion, "sorting": sorting}


def atlas_tasks(n_pool: int, n_heldout: int, rng: random.Random) -> tuple[list[Task], list[Task]]:
    """Pool and held-out atlas tasks with distinct prompts; held-out ones prefer facts the pool asks."""
    combos = [(c, a, t) for c in ATLAS for a in ATLAS_ATTRIBUTES for t in range(len(ATLAS_TEMPLATES))]
    if n_pool + n_heldout > len(combos):
        raise ValueError(f"the atlas has {len(combos)} distinct prompts, {n_pool + n_heldout} asked; "
                         "ask for fewer pairs")
    rng.shuffle(combos)
    pool, rest = combos[:n_pool], combos[n_pool:]
    asked = {(c, a) for c, a, _ in pool}
    rest.sort(key=lambda combo: combo[:2] not in asked)  # stable: facts the pool asks first
    return [atlas(*combo, rng) for combo in pool], [atlas(*combo, rng) for combo in rest[:n_heldout]]
