"""The pure parts of annotation: protocol sections, the attribute schema check, candidate order,
verdict mapping, vote aggregation, and example retrieval against brute-force cosine."""

import json
from pathlib import Path

import numpy as np
import pytest

from synpref.annotation.attributes import attribute_schema, check_answer
from synpref.annotation.judging import ORIGINAL, SWAPPED, check_verdict, first_order, judge_messages
from synpref.annotation.protocol import HUMAN_ONLY, judge_guidelines, load_protocol, missing_guidelines
from synpref.annotation.retrieval import VectorIndex

REPO = Path(__file__).resolve().parents[2]
TAXONOMY = {"task_categories": ["math", "coding", "other"], "objectivity": ["objective", "subjective"],
            "controversiality": ["low", "medium", "high"]}
GOOD = {"task_category": "math", "objectivity": "objective", "controversiality": "low",
        "desired_attributes": ["correct result"], "guideline": "The correct number wins."}


def test_protocol_gives_judges_the_matching_sections_and_never_the_human_only_ones():
    sections = load_protocol(str(REPO / "conf" / "protocol.md"))
    assert any(HUMAN_ONLY in title for title in sections)
    text = judge_guidelines(sections, task_category="math", objectivity="objective", controversiality="low")
    assert text.startswith("Core principles:")
    assert "Task category: math" in text and "Objectivity: objective" in text and "Controversiality: low" in text
    assert "Task category: coding" not in text and "search engines" not in text and "LLM assistants" not in text


def test_every_default_taxonomy_value_has_a_protocol_section():
    from omegaconf import OmegaConf

    taxonomy = OmegaConf.to_container(OmegaConf.load(REPO / "conf" / "annotate.yaml").taxonomy)
    assert missing_guidelines(load_protocol(str(REPO / "conf" / "protocol.md")), taxonomy) == []
    assert missing_guidelines({"Core principles": "x"}, TAXONOMY)  # and the check does find gaps


@pytest.mark.parametrize("text,n_tokens,reason", [
    ("", 0, "empty_answer"),
    ("   \n", 2, "empty_answer"),
    ('{"task_category": "math", "objectivity": "obj', 256, "truncated"),
    ("The task is math.", 5, "invalid_json"),
    ("[1, 2]", 5, "schema_mismatch:not_an_object"),
    (json.dumps({**GOOD, "task_category": "cooking"}), 40, "schema_mismatch:task_category_not_allowed"),
    (json.dumps({k: v for k, v in GOOD.items() if k != "guideline"}), 40, "schema_mismatch:missing_guideline"),
    (json.dumps({**GOOD, "desired_attributes": []}), 40, "schema_mismatch:desired_attributes_too_short"),
    (json.dumps({**GOOD, "desired_attributes": "correct"}), 40, "schema_mismatch:desired_attributes_not_a_list_of_strings"),
])
def test_bad_attribute_answers_get_their_reason(text, n_tokens, reason):
    assert check_answer(text, n_tokens, 256, attribute_schema(TAXONOMY)) == (None, reason)


def test_a_good_attribute_answer_parses():
    value, error = check_answer(json.dumps({**GOOD, "extra": 1}), 40, 256, attribute_schema(TAXONOMY))
    assert error is None and value == GOOD


def test_candidate_order_is_seeded_and_mixed():
    orders = [first_order(0, f"pair{i}", "j", 0) for i in range(200)]
    assert orders == [first_order(0, f"pair{i}", "j", 0) for i in range(200)]
    assert 60 < orders.count(ORIGINAL) < 140
    assert orders != [first_order(1, f"pair{i}", "j", 0) for i in range(200)]


def test_verdicts_map_back_through_the_order():
    answer = '{"better": "Candidate 1"}'
    assert check_verdict(answer, 8, 16, ORIGINAL)[0]["verdict"] == "chosen"
    assert check_verdict(answer, 8, 16, SWAPPED)[0]["verdict"] == "rejected"
    assert check_verdict('{"better": "Candidate 2"}', 8, 16, SWAPPED)[0]["verdict"] == "chosen"
    assert check_verdict('{"better": "both"}', 8, 16, ORIGINAL) == (None, "schema_mismatch:better")
    assert check_verdict('{"better": "Cand', 16, 16, ORIGINAL) == (None, "truncated")


def test_judge_prompt_shows_the_pair_in_the_asked_order_after_examples():
    pair = {"pair_id": "p", "conversation": [{"role": "user", "content": "2+2?"}], "chosen": "FOUR",
            "rejected": "FIVE", **GOOD}
    example = {**pair, "pair_id": "e", "chosen": "EX-GOOD", "rejected": "EX-BAD", "human_label": "chosen"}
    for order, first, second in ((ORIGINAL, "FOUR", "FIVE"), (SWAPPED, "FIVE", "FOUR")):
        user = judge_messages(pair, order, "RULES", [example], seed=0, max_chars=100, rationale=False)[1]["content"]
        target = user.split("Now the pair to judge.")[1]
        assert target.index(first) < target.index(second)
        assert user.index("Example 1") < user.index("Now the pair to judge.")
        shown = user.split("Now the pair to judge.")[0]
        good_first = shown.index("EX-GOOD") < shown.index("EX-BAD")
        assert ("Verdict: Candidate 1" in shown) == good_first


@pytest.mark.parametrize("kind", ["faiss", "numpy"])
def test_index_returns_the_brute_force_nearest(kind):
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(300, 16)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    queries = rng.normal(size=(20, 16)).astype(np.float32)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    similarity, positions = VectorIndex(vectors, kind).search(queries, 5)
    brute = np.argsort(-(queries @ vectors.T), axis=1)[:, :5]
    assert (positions == brute).all()
    assert np.allclose(similarity, np.take_along_axis(queries @ vectors.T, brute, axis=1), atol=1e-5)
