"""A demo world where the truth is known: a noisy preference pool, held-out truth, a simulated human.

`make demo` runs the curation loop on this world so it can print label precision before and after
curation. Every prompt is a checkable task from one of four families, mixed evenly:

- arithmetic: "What is 7 + 5?"; the wrong answer is off by 1 or 2;
- conversion: "How many metres are in 7 kilometres?"; the wrong answer uses a wrong factor (100 for 1000);
- sorting: "Sort 12, 5, 33, 8 in ascending order."; the wrong answer is sorted the wrong way or has
  two neighbours swapped;
- atlas: "In the synpref atlas, what is the capital of Veloria?", answered from ATLAS, a table of
  made-up facts defined below; the wrong answer is another country's entry.

Correct and wrong responses of a pair share one template (a short form or a sentence form, chosen per
pair), so only the content tells them apart. Prompts stay under 13 words, so no pool pair can share a
13-gram with the held-out prompts (pre-processing's decontamination keeps the whole pool).

    folder/raw/pool.jsonl                      {"prompt", "chosen", "rejected"}; a `noise` share flipped
    folder/truth.jsonl                         {"prompt", "correct", "wrong", "family", "flipped", "split"}
                                               per pool and held-out prompt ("split": "pool" | "heldout";
                                               held-out lines add "correct_styles" / "wrong_styles")
    folder/benchmarks/rm-bench/math_filtered.json  held-out arithmetic, conversion and sorting prompts
    folder/benchmarks/rm-bench/chat_filtered.json  held-out atlas prompts

The held-out files are RM-Bench data files (a list of {"id", "subset": "demo", "prompt", "chosen"[3],
"rejected"[3]}, the three entries a terse, a sentence and an explained form). RM-Bench takes the
domain from the `<domain>_filtered.json` file name and scores only the chat/math/code/safety domains,
so `jobs/evaluate.py benchmarks.root=folder/benchmarks` finds and scores them. A held-out atlas
prompt asks, in another wording, a fact the pool asks where it can: the reward model can only know
made-up facts from its training data.

`load_truth`, `is_correct` and `label_precision` measure a set of pair rows against the truth;
`simulate_annotator` stands in for the human verifiers of Stage 1 (chosen / flipped / undecidable).

    python -m synpref.demo.world outputs/demo/world [n_pairs]
"""

from __future__ import annotations

import hashlib
import json
import random
import sys
from dataclasses import dataclass
from pathlib import Path

from synpref.record import schema

FAMILIES = ("arithmetic", "conversion", "sorting", "atlas")
# RM-Bench domain of each family's held-out file (RM-Bench scores chat, math, code and safety only)
RM_BENCH_DOMAINS = {"arithmetic": "math", "conversion": "math", "sorting": "math", "atlas": "chat"}
RM_BENCH_DIR = Path("benchmarks") / "rm-bench"

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


@dataclass(frozen=True)
class Task:
    """One checkable prompt; correct and wrong each in three styles: (short, sentence, explained)."""

    family: str
    prompt: str
    correct: tuple[str, str, str]
    wrong: tuple[str, str, str]


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


def split_evenly(n: int, parts: int) -> list[int]:
    return [n // parts + (i < n % parts) for i in range(parts)]


def unique_tasks(family: str, n: int, seen: set[str], rng: random.Random) -> list[Task]:
    """n tasks of a generated family whose prompts are not in `seen` (which they are added to)."""
    tasks = []
    for _ in range(200 * n + 1000):
        if len(tasks) == n:
            break
        task = GENERATORS[family](rng)
        if task.prompt not in seen:
            seen.add(task.prompt)
            tasks.append(task)
    if len(tasks) < n:
        raise ValueError(f"could not make {n} distinct {family} prompts; ask for fewer pairs")
    return tasks


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


def write_jsonl(path: Path, rows) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")


def write_demo_world(folder, n_pairs: int = 240, noise: float = 0.25, heldout: int = 60, seed: int = 0) -> dict:
    """Write the pool, the truth and the held-out RM-Bench files under folder; return the counts:
    pairs, flipped, heldout, and per family {"pool", "flipped", "heldout"}."""
    if n_pairs < 0 or heldout < 0:
        raise ValueError(f"n_pairs={n_pairs}, heldout={heldout}: both must be >= 0")
    if not 0.0 <= noise <= 1.0:
        raise ValueError(f"noise={noise}: the share of flipped labels must be in [0, 1]")
    folder = Path(folder)
    rng = random.Random(seed)

    pool: list[Task] = []
    held: list[Task] = []
    seen: set[str] = set()
    for family, n_pool, n_held in zip(FAMILIES, split_evenly(n_pairs, 4), split_evenly(heldout, 4)):
        if family == "atlas":
            pool_part, held_part = atlas_tasks(n_pool, n_held, rng)
            seen.update(t.prompt for t in pool_part + held_part)
        else:
            pool_part, held_part = unique_tasks(family, n_pool, seen, rng), unique_tasks(family, n_held, seen, rng)
        pool += pool_part
        held += held_part
    if len(seen) != n_pairs + heldout:  # the families' phrasings never meet; checked all the same
        raise AssertionError("duplicate prompts across families")
    rng.shuffle(pool)
    flipped = set(rng.sample(range(n_pairs), round(noise * n_pairs)))

    counts = {"pairs": n_pairs, "flipped": len(flipped), "heldout": heldout,
              "families": {f: {"pool": 0, "flipped": 0, "heldout": 0} for f in FAMILIES}}
    raw, truth = [], []
    for i, task in enumerate(pool):
        style = rng.randrange(2)  # short or sentence form, the same for both responses
        correct, wrong = task.correct[style], task.wrong[style]
        is_flipped = i in flipped
        chosen, rejected = (wrong, correct) if is_flipped else (correct, wrong)
        raw.append({"prompt": task.prompt, "chosen": chosen, "rejected": rejected})
        truth.append({"prompt": task.prompt, "correct": correct, "wrong": wrong, "family": task.family,
                      "flipped": is_flipped, "split": "pool"})
        counts["families"][task.family]["pool"] += 1
        counts["families"][task.family]["flipped"] += is_flipped

    by_domain: dict[str, list[dict]] = {}
    for i, task in enumerate(held):
        truth.append({"prompt": task.prompt, "correct": task.correct[0], "wrong": task.wrong[0],
                      "family": task.family, "flipped": False, "split": "heldout",
                      "correct_styles": list(task.correct), "wrong_styles": list(task.wrong)})
        by_domain.setdefault(RM_BENCH_DOMAINS[task.family], []).append(
            {"id": i, "subset": "demo", "family": task.family, "prompt": task.prompt,
             "chosen": list(task.correct), "rejected": list(task.wrong)})
        counts["families"][task.family]["heldout"] += 1

    write_jsonl(folder / "raw" / "pool.jsonl", raw)
    write_jsonl(folder / "truth.jsonl", truth)
    bench_dir = folder / RM_BENCH_DIR
    for domain in sorted(set(RM_BENCH_DOMAINS.values())):
        path = bench_dir / f"{domain}_filtered.json"
        if domain in by_domain:
            bench_dir.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(by_domain[domain], indent=1, ensure_ascii=False), encoding="utf-8")
        else:
            path.unlink(missing_ok=True)  # left by an earlier world in the same folder
    return counts


def load_truth(folder) -> dict[str, dict]:
    """The truth lines of a demo world, keyed by prompt text."""
    lines = (Path(folder) / "truth.jsonl").read_text(encoding="utf-8").splitlines()
    return {fact["prompt"]: fact for fact in map(json.loads, filter(str.strip, lines))}


def is_correct(row, truth: dict[str, dict]) -> bool | None:
    """Whether a pair row's chosen response is the correct one: True / False, or None when the prompt
    is not in the truth (or neither response is one the truth knows). Takes Ray Data rows too, whose
    conversation may be a numpy array of message dicts."""
    conversation = row.get("conversation")
    conversation = [] if conversation is None else list(conversation)
    fact = truth.get(schema.prompt_text({"conversation": conversation}))
    if fact is None:
        return None
    correct = {fact["correct"], *fact.get("correct_styles", ())}
    wrong = {fact["wrong"], *fact.get("wrong_styles", ())}
    chosen, rejected = row.get("chosen"), row.get("rejected")
    if chosen in correct:
        return True
    if chosen in wrong or rejected in correct:
        return False
    return None


def label_precision(rows, truth: dict[str, dict]) -> dict:
    """pairs, known (prompt in the truth), correct (chosen is right), precision = correct / known."""
    pairs = known = correct = 0
    for row in rows:
        pairs += 1
        verdict = is_correct(row, truth)
        known += verdict is not None
        correct += verdict is True
    return {"pairs": pairs, "known": known, "correct": correct,
            "precision": round(correct / known, 4) if known else None}


def _uniforms(*key) -> tuple[float, float]:
    """Two uniform numbers in [0, 1) fixed by the key (independent of call order)."""
    digest = hashlib.blake2b(json.dumps(key).encode("utf-8"), digest_size=16).digest()
    return int.from_bytes(digest[:8], "little") / 2**64, int.from_bytes(digest[8:], "little") / 2**64


def simulate_annotator(rows, truth: dict[str, dict], *, annotator: str = "sim-1", error_rate: float = 0.0,
                       undecidable_rate: float = 0.05, seed: int = 0) -> list[dict]:
    """A simulated human verifier: one {"pair_id", "verdict", "annotator", "notes"} per row.

    verdict is "chosen" when the row's chosen response is correct, "flipped" when it is wrong, and
    "undecidable" for a prompt the truth does not know or with probability undecidable_rate; with
    probability error_rate a decidable verdict is the wrong one of chosen / flipped (a human
    mistake). Each draw depends on (seed, annotator, pair_id) only.
    """
    verdicts = []
    for row in rows:
        pid = row["pair_id"]
        right = is_correct(row, truth)
        u_undecidable, u_error = _uniforms(seed, annotator, pid)
        if right is None:
            verdict, notes = "undecidable", "simulated: prompt or responses not in the truth"
        elif u_undecidable < undecidable_rate:
            verdict, notes = "undecidable", "simulated: could not decide (undecidable_rate)"
        elif u_error < error_rate:
            verdict, notes = ("flipped" if right else "chosen"), "simulated: a human mistake (error_rate)"
        else:
            verdict, notes = ("chosen" if right else "flipped"), "simulated: checked against the truth"
        verdicts.append({"pair_id": pid, "verdict": verdict, "annotator": annotator, "notes": notes})
    return verdicts


if __name__ == "__main__":
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "outputs/demo/world")
    counts = write_demo_world(out, n_pairs=int(sys.argv[2]) if len(sys.argv) > 2 else 240)
    print(f"wrote a demo world to {out}: {counts['pairs']} pool pairs ({counts['flipped']} flipped) in "
          f"raw/pool.jsonl, {counts['heldout']} held-out prompts in {RM_BENCH_DIR}/, truth in truth.jsonl")
    print(json.dumps(counts["families"]))
