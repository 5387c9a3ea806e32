"""synpref.demo.world: the noisy pool, its truth (checked independently), the held-out RM-Bench files,
label precision and the simulated annotator. Pure Python, no Ray."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from synpref.demo import hard_families
from synpref.demo import world as demo_world
from synpref.demo.annotator import simulate_annotator
from synpref.record import schema
from synpref.preprocess.decontam import NgramIndex
from synpref.eval import rm_bench  # load_rm_bench (the loaders were split by benchmark)
from synpref.preprocess.formats import parse_record

LIMITS = {"max_chars": 200_000, "max_messages": 256}
UNIT_FACTORS = {("kilometres", "metres"): 1000, ("kilograms", "grams"): 1000, ("litres", "millilitres"): 1000,
                ("metres", "centimetres"): 100, ("centimetres", "millimetres"): 10, ("hours", "minutes"): 60,
                ("minutes", "seconds"): 60, ("days", "hours"): 24}


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    folder = tmp_path_factory.mktemp("world")
    counts = demo_world.write_demo_world(folder, n_pairs=240, noise=0.25, heldout=64, seed=0)
    return folder, counts


def pool_lines(folder):
    return [json.loads(line) for line in (folder / "raw" / "pool.jsonl").read_text().splitlines()]


def pool_rows(folder):
    return [schema.new_pair([{"role": "user", "content": r["prompt"]}], r["chosen"], r["rejected"],
                            source="pool", source_record=f"pool.jsonl:{i + 1}")
            for i, r in enumerate(pool_lines(folder))]


def test_counts_and_noise_share(world):
    folder, counts = world
    lines = pool_lines(folder)
    truth = demo_world.load_truth(folder)
    assert len(lines) == counts["pairs"] == 240
    assert counts["heldout"] == 64 and counts["flipped"] == 60  # 0.25 * 240
    assert all(set(line) == {"prompt", "chosen", "rejected"} for line in lines)
    assert sum(f["flipped"] for f in truth.values() if f["split"] == "pool") == 60
    assert not any(f["flipped"] for f in truth.values() if f["split"] == "heldout")
    for family in demo_world.FAMILIES:
        assert counts["families"][family]["pool"] == 30 and counts["families"][family]["heldout"] == 8
        assert sum(f["family"] == family and f["split"] == "pool" for f in truth.values()) == 30
    assert sum(c["flipped"] for c in counts["families"].values()) == 60
    for line in lines:  # the raw line's order agrees with the truth's flipped flag
        fact = truth[line["prompt"]]
        assert (line["chosen"], line["rejected"]) == ((fact["wrong"], fact["correct"]) if fact["flipped"]
                                                     else (fact["correct"], fact["wrong"]))


@pytest.mark.parametrize("noise, expected", [(0.0, 0), (0.1, 10), (0.333, 33), (1.0, 100)])
def test_noise_share_within_rounding(tmp_path, noise, expected):
    counts = demo_world.write_demo_world(tmp_path, n_pairs=100, noise=noise, heldout=8, seed=3)
    flipped = sum(f["flipped"] for f in demo_world.load_truth(tmp_path).values())
    assert counts["flipped"] == flipped == expected


def test_prompts_unique_and_heldout_disjoint(world):
    folder, _ = world
    lines = (folder / "truth.jsonl").read_text().splitlines()
    facts = [json.loads(line) for line in lines]
    prompts = [f["prompt"] for f in facts]
    assert len(prompts) == len(set(prompts)) == 304
    pool = {f["prompt"] for f in facts if f["split"] == "pool"}
    heldout = {f["prompt"] for f in facts if f["split"] == "heldout"}
    assert pool == {line["prompt"] for line in pool_lines(folder)}
    assert len(heldout) == 64 and not pool & heldout
    bench = {item.conversation[0]["content"] for item in rm_bench.load_rm_bench(folder / "benchmarks" / "rm-bench")}
    assert bench == heldout


def test_pool_survives_13gram_decontamination(world):
    folder, _ = world
    index = NgramIndex.from_benchmarks([folder / "benchmarks"])
    for line in pool_lines(folder):
        assert not index.overlaps([line["prompt"], line["chosen"], line["rejected"]])


def test_same_seed_same_world(tmp_path):
    demo_world.write_demo_world(tmp_path / "a", n_pairs=40, heldout=8, seed=5)
    demo_world.write_demo_world(tmp_path / "b", n_pairs=40, heldout=8, seed=5)
    demo_world.write_demo_world(tmp_path / "c", n_pairs=40, heldout=8, seed=6)
    read = lambda name: (tmp_path / name / "truth.jsonl").read_text()  # noqa: E731
    assert read("a") == read("b") != read("c")


# --- the truth, recomputed independently --------------------------------------------------------

def numbers_in(text):
    return [int(n) for n in re.findall(r"-?\d+", text)]


def check_arithmetic(prompt, answer):
    m = re.search(r"(\d+) (\+|-|\*|plus|minus|times) (\d+)", prompt)
    a, op, b = int(m.group(1)), m.group(2), int(m.group(3))
    value = {"+": a + b, "plus": a + b, "-": a - b, "minus": a - b, "*": a * b, "times": a * b}[op]
    return numbers_in(answer)[-1 if "=" not in answer else 2] == value


def check_conversion(prompt, answer):
    m = (re.match(r"How many (\w+) are in (\d+) (\w+)\?", prompt) or re.match(r"Convert (\d+) (\w+) to (\w+)\.", prompt)
         or re.match(r"What is (\d+) (\w+) in (\w+)\?", prompt))
    if prompt.startswith("How many"):
        to, value, unit = m.group(1), int(m.group(2)), m.group(3)
    else:
        value, unit, to = int(m.group(1)), m.group(2), m.group(3)
    converted = [n for n in numbers_in(answer) if n != value][0]
    return converted == value * UNIT_FACTORS[(unit, to)]


def check_sorting(prompt, answer):
    given = numbers_in(prompt)
    listed = numbers_in(answer)
    return listed == sorted(given, reverse="descending" in prompt)


def atlas_fact(prompt):
    """(attribute, country) an atlas prompt asks about."""
    return re.search(r"what is the (capital|currency|national animal|longest river) of (\w+)\?", prompt).groups()


def check_atlas(prompt, answer):
    attribute, country = atlas_fact(prompt)
    value = hard_families.ATLAS[country][("capital", "currency", "national animal", "longest river").index(attribute)]
    named = re.findall(r"[A-Za-z]+", answer.split(" is ")[-1].split(",")[0])
    return value in named


def check_recall(prompt, answer):
    told = re.search(r"(?:is called|named my \w+|name is) (\w+)", prompt).group(1)
    return re.findall(r"[A-Z]\w+", answer)[-1 if answer.startswith(("Your", "You")) else 0] == told


def check_capitals(prompt, answer):
    return answer == answer.upper() and any(c.isalpha() for c in answer)


def check_format(prompt, answer):
    return len(answer.split()) == 1


def check_refusal(prompt, answer):
    return answer.startswith(("I can't", "I won't", "Sorry"))


CHECKS = {"arithmetic": check_arithmetic, "conversion": check_conversion, "sorting": check_sorting,
          "atlas": check_atlas, "recall": check_recall, "capitals": check_capitals, "format": check_format,
          "refusal": check_refusal}


def test_check_functions_tell_right_from_wrong():
    assert check_arithmetic("What is 7 plus 5?", "12.") and not check_arithmetic("What is 7 + 5?", "7 + 5 = 13.")
    assert check_conversion("Convert 7 kilometres to metres.", "7000 metres.")
    assert not check_conversion("How many metres are in 7 kilometres?", "7 kilometres is 700 metres.")
    assert check_sorting("Sort 3, 1, 2 in descending order.", "3, 2, 1.")
    assert not check_sorting("Sort 3, 1, 2 in ascending order.", "In ascending order: 2, 1, 3.")
    assert check_atlas("In the synpref atlas, what is the capital of Veloria?", "Trennic.")
    assert not check_atlas("In the synpref atlas, what is the capital of Veloria?", "Poravik.")
    assert check_recall("My cat is called Milo. What is my cat called?", "Your cat is called Milo.")
    assert not check_recall("I named my dog Luna. What name did I give my dog?", "Ruby.")
    assert check_capitals("Reply in capital letters: Which animal says moo?", "THE COW SAYS MOO.")
    assert not check_capitals("In capital letters: Which animal says moo?", "The cow says moo.")
    assert check_format("Answer in one word: Which animal says moo?", "Cow.")
    assert not check_format("In one word: Which animal says moo?", "The animal that says moo is the cow.")


def test_truth_is_correct_in_every_family_and_style(world):
    folder, _ = world
    facts = demo_world.load_truth(folder).values()
    assert {f["family"] for f in facts} == set(demo_world.FAMILIES)
    for fact in facts:
        check = CHECKS[fact["family"]]
        corrects = fact.get("correct_styles", [fact["correct"]])
        wrongs = fact.get("wrong_styles", [fact["wrong"]])
        for correct, wrong in zip(corrects, wrongs):
            assert check(fact["prompt"], correct), fact
            assert not check(fact["prompt"], wrong), fact
            assert correct != wrong


def test_correct_and_wrong_share_one_template(world):
    folder, _ = world
    values = {v for row in hard_families.ATLAS.values() for v in row}
    for column in range(4):  # a wrong atlas answer is never the right one by accident
        assert len({row[column] for row in hard_families.ATLAS.values()}) == len(hard_families.ATLAS)

    def mask(text):  # only the content may differ: numbers and table values
        tokens = re.findall(r"\w+|[^\w\s]", text)
        return ["#" if t.isdigit() else "V" if t in values else t for t in tokens]

    for fact in demo_world.load_truth(folder).values():
        if fact["family"] not in demo_world.HARD:  # the learnable families differ in form on purpose
            continue
        pairs = zip(fact.get("correct_styles", [fact["correct"]]), fact.get("wrong_styles", [fact["wrong"]]))
        for correct, wrong in pairs:
            assert mask(correct) == mask(wrong), fact
            assert len(correct.split()) < 30 and len(fact["prompt"].split()) < 30


# --- measuring rows against the truth -------------------------------------------------------------

def test_is_correct_on_clean_flipped_unknown_and_numpy_rows(world):
    folder, _ = world
    truth = demo_world.load_truth(folder)
    fact = next(f for f in truth.values() if f["split"] == "pool")
    conversation = [{"role": "user", "content": fact["prompt"]}]
    clean = schema.new_pair(conversation, fact["correct"], fact["wrong"], source="s", source_record="s:1")
    flipped = schema.new_pair(conversation, fact["wrong"], fact["correct"], source="s", source_record="s:2")
    assert demo_world.is_correct(clean, truth) is True
    assert demo_world.is_correct(flipped, truth) is False
    unknown = schema.new_pair([{"role": "user", "content": "What is 1 + 1?"}], "2.", "3.",
                              source="s", source_record="s:3")
    assert demo_world.is_correct(unknown, truth) is None
    ray_row = {**flipped, "conversation": np.array(conversation, dtype=object), "chosen": np.str_(fact["wrong"])}
    assert demo_world.is_correct(ray_row, truth) is False
    system = {**clean, "conversation": np.array([{"role": "system", "content": "Be brief."}] + conversation)}
    assert demo_world.is_correct(system, truth) is True


def test_label_precision_is_one_minus_noise(world):
    folder, _ = world
    truth = demo_world.load_truth(folder)
    rows = pool_rows(folder)
    assert demo_world.label_precision(rows, truth) == {"pairs": 240, "known": 240, "correct": 180, "precision": 0.75}
    extra = schema.new_pair([{"role": "user", "content": "Unknown?"}], "a", "b", source="s", source_record="s:1")
    assert demo_world.label_precision(rows + [extra], truth)["known"] == 240
    assert demo_world.label_precision([extra], truth)["precision"] is None


def test_preprocessed_rows_match_the_truth(world):
    folder, _ = world
    truth = demo_world.load_truth(folder)
    rows = [row for i, line in enumerate(pool_lines(folder))
            for row in parse_record(line, source="pool", source_record=f"pool.jsonl:{i + 1}",
                                    limits=LIMITS, binarize="best_vs_all")]
    assert [r["pair_id"] for r in rows] == [r["pair_id"] for r in pool_rows(folder)]
    assert demo_world.label_precision(rows, truth)["precision"] == 0.75


# --- the simulated annotator -----------------------------------------------------------------------

def test_annotator_exact_without_errors(world):
    folder, _ = world
    truth = demo_world.load_truth(folder)
    rows = pool_rows(folder)
    verdicts = simulate_annotator(rows, truth, error_rate=0.0, undecidable_rate=0.0)
    assert [v["pair_id"] for v in verdicts] == [r["pair_id"] for r in rows]
    for row, verdict in zip(rows, verdicts):
        flipped = truth[schema.prompt_text(row)]["flipped"]
        assert verdict["verdict"] == ("flipped" if flipped else "chosen")
        assert verdict["annotator"] == "sim-1" and isinstance(verdict["notes"], str)


def test_annotator_error_rate_one_flips_every_decidable_verdict(world):
    folder, _ = world
    truth = demo_world.load_truth(folder)
    rows = pool_rows(folder)
    right = simulate_annotator(rows, truth, undecidable_rate=0.2, seed=1)
    wrong = simulate_annotator(rows, truth, error_rate=1.0, undecidable_rate=0.2, seed=1)
    opposite = {"chosen": "flipped", "flipped": "chosen", "undecidable": "undecidable"}
    assert [opposite[v["verdict"]] for v in right] == [v["verdict"] for v in wrong]
    assert 0 < sum(v["verdict"] == "undecidable" for v in right) < len(rows)


def test_annotator_deterministic_per_pair_not_call_order(world):
    folder, _ = world
    truth = demo_world.load_truth(folder)
    rows = pool_rows(folder)
    run = lambda rows, **kw: {v["pair_id"]: v for v in simulate_annotator(  # noqa: E731
        rows, truth, error_rate=0.3, undecidable_rate=0.1, **kw)}
    first = run(rows)
    assert run(rows[::-1]) == first
    assert run(rows[:7]) == {pid: first[pid] for pid in run(rows[:7])}
    assert run(rows, seed=1) != first
    assert run(rows, annotator="sim-2") != first
    share_wrong = sum(v["verdict"] != ("flipped" if truth[schema.prompt_text(r)]["flipped"] else "chosen")
                      for r, v in zip(rows, map(first.get, (r["pair_id"] for r in rows)))) / len(rows)
    assert 0.2 < share_wrong < 0.55  # ~0.1 undecidable + ~0.27 mistakes


def test_annotator_undecidable_for_unknown_prompt(world):
    folder, _ = world
    truth = demo_world.load_truth(folder)
    unknown = schema.new_pair([{"role": "user", "content": "Unknown?"}], "a", "b", source="s", source_record="s:1")
    [verdict] = simulate_annotator([unknown], truth, undecidable_rate=0.0)
    assert verdict["verdict"] == "undecidable" and verdict["pair_id"] == unknown["pair_id"]


# --- the held-out RM-Bench files --------------------------------------------------------------------

def test_heldout_loads_with_the_rm_bench_loader(world):
    folder, _ = world
    bench_dir = folder / "benchmarks" / "rm-bench"
    items = rm_bench.load_rm_bench(bench_dir)
    assert len(items) == 64
    assert {i.subset for i in items} == {"math", "chat", "safety-refuse"}
    assert sum(i.subset == "chat" for i in items) == 32  # atlas, recall, capitals, format
    assert sum(i.subset == "safety-refuse" for i in items) == 8  # refusal
    assert len({i.key for i in items}) == 64
    truth = demo_world.load_truth(folder)
    for item in items:
        fact = truth[item.conversation[0]["content"]]
        assert fact["split"] == "heldout"
        assert item.responses == fact["correct_styles"] + fact["wrong_styles"]
        assert item.is_chosen == [True] * 3 + [False] * 3
    raw = json.loads((bench_dir / "math_filtered.json").read_text())
    assert all(r["subset"] == "demo" and len(r["chosen"]) == len(r["rejected"]) == 3 for r in raw)
    # pairs built from the held-out styles are judged by the truth too
    item = items[0]
    row = schema.new_pair(item.conversation, item.responses[2], item.responses[3], source="s", source_record="s:1")
    assert demo_world.is_correct(row, truth) is True


def test_heldout_atlas_asks_facts_the_pool_teaches(world):
    folder, _ = world
    facts = demo_world.load_truth(folder).values()
    taught = {atlas_fact(f["prompt"]) for f in facts if f["family"] == "atlas" and f["split"] == "pool"}
    asked = [atlas_fact(f["prompt"]) for f in facts if f["family"] == "atlas" and f["split"] == "heldout"]
    assert len(asked) == 8 and all(a in taught for a in asked)


def test_bad_arguments_are_refused(tmp_path):
    with pytest.raises(ValueError, match="noise"):
        demo_world.write_demo_world(tmp_path, noise=1.5)
    with pytest.raises(ValueError, match="atlas"):  # 24 countries x 4 facts x 3 phrasings
        demo_world.write_demo_world(tmp_path, n_pairs=8 * 300, heldout=0)
