"""A small raw pool in every input format synpref reads, with known defects, for the demo and tests.

The pairs are arithmetic questions whose correct answer is checkable, so later stages can measure
label precision against the truth. The pool mixes TRL conversational JSONL, plain prompt/chosen/
rejected JSONL, Anthropic HH JSONL, UltraFeedback-style rated completions, and HelpSteer3 Parquet,
and adds exact duplicates, pairs copying a benchmark prompt, pairs with a missing response, tied
ratings, and one row of every kind in BROKEN_ROWS. `write_demo_pool` returns the expected counts.

    python -m synpref.demo.pool outputs/demo/raw
"""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

# Prompts of a tiny benchmark (RM-Bench's file format); pool rows that copy them must be dropped.
BENCHMARK_PROMPTS = [
    "Explain in simple terms why the sky looks blue during the day and red at sunset for a child",
    "Write a short poem about a lighthouse keeper who waits every night for a ship that never comes",
    "What are the main differences between a virus and a bacterium and how are infections treated",
]


def j(obj) -> bytes:
    return json.dumps(obj, ensure_ascii=False).encode("utf-8")


def user(text):
    return [{"role": "user", "content": text}]


OK = {"prompt": "What is 1 + 1?", "chosen": "2", "rejected": "3"}

# (raw JSONL line, the quarantine reason it must get); 32 kinds of broken row
BROKEN_ROWS: list[tuple[bytes, str]] = [
    (b'{"prompt": "hi", "chosen": "a", "rejected": ', "bad_json"),
    (b"\xff\xfe{\"prompt\": \"x\"}", "invalid_utf8"),
    (b"   ", "empty_line"),
    (b"[1, 2, 3]", "not_an_object"),
    (b'"just a string"', "not_an_object"),
    (j({"foo": 1, "bar": 2}), "unknown_format"),
    (j({**OK, "chosen": 5}), "chosen_not_text"),
    (j({**OK, "rejected": {"text": "x"}}), "rejected_not_text"),
    (j({**OK, "prompt": 7}), "messages_not_a_list"),
    (j({"chosen": user("q") + [{"role": "assistant", "content": "a"}],
        "rejected": user("other q") + [{"role": "assistant", "content": "b"}]}), "prompt_mismatch"),
    (j({**OK, "prompt": ["hello"]}), "message_not_an_object"),
    (j({**OK, "prompt": [{"content": "x"}]}), "message_missing_role"),
    (j({**OK, "prompt": [{"role": "robot", "content": "x"}]}), "unknown_role"),
    (j({**OK, "prompt": user("x") + [{"role": "system", "content": "y"}] + user("z")}), "system_not_first"),
    (j({**OK, "prompt": user("   ")}), "empty_message"),
    (j({**OK, "prompt": user("x") + [{"role": "assistant", "content": "y"}]}), "prompt_not_ending_with_user"),
    (j({**OK, "prompt": [{"role": "system", "content": "be nice"}]}), "no_user_turn"),
    (j({**OK, "chosen": "a\u0000b"}), "nul_character"),
    (b'{"prompt": "q", "chosen": "\\ud800", "rejected": "r"}', "invalid_unicode"),
    (j({**OK, "chosen": "x" * 200_001}), "too_long"),
    (j({**OK, "prompt": user("u") * 301}), "too_many_messages"),
    (j({**OK, "chosen": "y" * 4_000_001}), "line_too_long"),
    (j({"prompt": "q", "completions": [{"response": "a", "overall_score": "high"},
                                       {"response": "b", "overall_score": 2}]}), "score_not_a_number"),
    (j({"prompt": "q", "completions": [{"response": "a", "overall_score": 5}]}), "fewer_than_two_responses"),
    (j({"context": user("q"), "response1": "a", "response2": "b", "overall_preference": 9}), "bad_preference_value"),
    (j({**OK, "prompt": [{"role": "user", "content": [{"type": "image_url", "image_url": "x"}]}]}), "non_text_content"),
    (j({"chosen": user("q") + [{"role": "assistant", "content": "a"}] + user("more"),
        "rejected": user("q") + [{"role": "assistant", "content": "b"}]}), "completion_not_assistant"),
    (j({"prompt": "q", "responses": ["a", "b"], "scores": [1]}), "responses_scores_mismatch"),
    (j({**OK, "prompt": ""}), "empty_prompt"),
    (j({"chosen": "a", "rejected": "b"}), "missing_prompt"),
    (j({"chosen": "\n\nAssistant: hi", "rejected": "\n\nAssistant: ho"}), "bad_hh_transcript"),
    (b"[" * 50_000 + b"]" * 50_000, "bad_json"),
    (j({**OK, "prompt": [{"role": "user", "content": 5}]}), "content_not_text"),
]
# The size cases above exceed conf/preprocess.yaml's limits: max_chars 200000, max_messages 256,
# max_line_bytes 4000000.


def arithmetic(rng: random.Random):
    a, b = rng.randint(2, 999), rng.randint(2, 999)
    op = rng.choice(["+", "-", "*"])
    truth = {"+": a + b, "-": a - b, "*": a * b}[op]
    wrong = truth + rng.choice([-10, -2, -1, 1, 2, 10])
    return f"What is {a} {op} {b}? Answer with the number.", f"{a} {op} {b} = {truth}.", f"{a} {op} {b} = {wrong}."


def write_demo_pool(folder, n_pairs: int = 200, seed: int = 0) -> dict:
    """Write the pool under folder/ (and a mini benchmark under folder/../benchmarks/); return the
    counts a correct pre-processing run must report."""
    rng = random.Random(seed)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    bench_dir = folder.parent / "benchmarks"
    bench_dir.mkdir(parents=True, exist_ok=True)
    (bench_dir / "rm-bench-mini.json").write_text(json.dumps(
        [{"id": i, "subset": "chat", "prompt": p, "chosen": ["a", "b", "c"], "rejected": ["d", "e", "f"]}
         for i, p in enumerate(BENCHMARK_PROMPTS)], indent=1))

    expected = {"records": 0, "pairs_kept": 0, "duplicate": 0, "benchmark_ngram_overlap": 0,
                "missing_chosen": 0, "missing_rejected": 0, "tied_scores": 0, "quarantined": {}}
    n_each = n_pairs // 5
    trl, plain, hh, rated, helpsteer = [], [], [], [], []
    for _ in range(n_each):
        q, good, bad = arithmetic(rng)
        trl.append({"chosen": user(q) + [{"role": "assistant", "content": good}],
                    "rejected": user(q) + [{"role": "assistant", "content": bad}]})
        q, good, bad = arithmetic(rng)
        plain.append({"prompt": q, "chosen": good, "rejected": bad})
        q, good, bad = arithmetic(rng)
        hh.append({"chosen": f"\n\nHuman: {q}\n\nAssistant: {good}", "rejected": f"\n\nHuman: {q}\n\nAssistant: {bad}"})
        q, good, bad = arithmetic(rng)
        helpsteer.append({"context": user(q), "response1": bad, "response2": good, "overall_preference": 2})
    for _ in range(n_pairs - 4 * n_each):  # three rated responses -> two pairs each (best_vs_all)
        q, good, bad = arithmetic(rng)
        rated.append({"prompt": q, "completions": [{"response": good, "overall_score": 9.0},
                                                   {"response": bad, "overall_score": 3.0},
                                                   {"response": "I do not know.", "overall_score": 1.0}]})
    expected["pairs_kept"] = 4 * n_each + 2 * len(rated)

    # defects that are dropped, not quarantined
    duplicates = [dict(r) for r in plain[:5]]
    contaminated = [{"prompt": f"Please answer: {p.lower()}!", "chosen": "A good answer.", "rejected": "No."}
                    for p in BENCHMARK_PROMPTS]
    missing = [{"prompt": "What is 2 + 2?", "chosen": None, "rejected": "5"},
               {"prompt": "What is 3 + 3?", "chosen": "6", "rejected": ""}]
    tied = [{"prompt": "Name a colour.", "completions": [{"response": "Red.", "overall_score": 5},
                                                         {"response": "Blue.", "overall_score": 5},
                                                         {"response": "Seven.", "overall_score": 1}]}]
    expected.update(duplicate=len(duplicates), benchmark_ngram_overlap=len(contaminated),
                    missing_chosen=1, missing_rejected=1, tied_scores=1)
    expected["pairs_kept"] += 1  # the tied record still gives Red > Seven

    def write_jsonl(name, rows, extra_lines=()):
        lines = [j(r) for r in rows] + list(extra_lines)
        (folder / name).write_bytes(b"\n".join(lines) + b"\n")
        return len(lines)

    records = write_jsonl("trl_conversational.jsonl", trl)
    records += write_jsonl("plain.jsonl", plain + duplicates + contaminated + missing)
    records += write_jsonl("anthropic_hh.jsonl", hh)
    records += write_jsonl("ultrafeedback.jsonl", rated + tied)
    records += write_jsonl("broken.jsonl", [], [line for line, _ in BROKEN_ROWS])
    pq.write_table(pa.Table.from_pylist(helpsteer), folder / "helpsteer3.parquet")
    records += len(helpsteer)
    for _, reason in BROKEN_ROWS:
        expected["quarantined"][reason] = expected["quarantined"].get(reason, 0) + 1
    expected["records"] = records
    return expected


if __name__ == "__main__":
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "outputs/demo/raw")
    counts = write_demo_pool(out, n_pairs=int(sys.argv[2]) if len(sys.argv) > 2 else 200)
    (out.parent / "expected_counts.json").write_text(json.dumps(counts, indent=1))
    print(f"wrote a demo pool of {counts['records']} records to {out} (expected counts: {out.parent}/expected_counts.json)")
