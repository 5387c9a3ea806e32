"""Stage 1's steps without Ray: adaptive k, error-driven retrieval, silver additions, the best iteration."""

import math

import numpy as np
import pyarrow as pa
import pytest

from synpref.curation.stage1 import adaptive_k, best_iteration, retrieve_neighbours, seed_ranked, silver_additions
from synpref.record.ops import pair_key as key
from synpref.record.schema import pair_id
from tests.curation.stage_pairs import pair


@pytest.mark.parametrize("p,k", [(0.0, 8), (0.3, 8), (0.5, 8), (0.51, 4), (0.75, 2), (0.9, 1), (0.99, 1), (1.0, 0)])
def test_adaptive_k_follows_the_paper(p, k):
    assert adaptive_k(p, 8) == k
    assert adaptive_k(p, 8) == (8 if p <= 0.5 else math.ceil(8 * (1 - p)))


def searching(gold_vectors: np.ndarray, pool: np.ndarray, candidates: np.ndarray):
    """search(k) over pool positions, as the job's pool search answers: nearest first, candidates only."""
    def search(k):
        order = np.argsort(-(gold_vectors @ pool.T), axis=1, kind="stable")
        return [[int(j) for j in row if candidates[j]][:k] for row in order], int(candidates.sum())
    return search


def test_retrieval_takes_k_nearest_unverified_per_gold_pair_once():
    # pool vectors on a circle; gold pair 0 sits at angle 0, gold pair 1 at angle pi
    angles = np.linspace(0, 2 * np.pi, 16, endpoint=False)
    pool = np.stack([np.cos(angles), np.sin(angles)], axis=1).astype(np.float32)
    gold = [pair(100), pair(101)]
    gold_vectors = np.array([[1, 0], [-1, 0]], np.float32)
    p = {key(gold[0]): 0.2, key(gold[1]): 0.75}  # wrong -> k 8; right at 0.75 -> k 2
    mask = np.ones(16, bool)
    mask[0] = False  # already verified: never retrieved
    positions, figures = retrieve_neighbours(gold, p, searching(gold_vectors, pool, mask), k_max=8)
    assert 0 not in positions
    assert figures == {"gold_pairs": 2, "gold_wrong": 1, "k_requested": 10, "candidates": 15, "retrieved": 10}
    near_zero = sorted(positions[:8])
    assert near_zero == [1, 2, 3, 4, 12, 13, 14, 15]  # the 8 unmasked nearest to angle 0
    assert positions[8] == 8 and positions[9] in (7, 9)  # nearest to angle pi, then a tied neighbour


def test_retrieval_shares_neighbours_and_counts_unscored_gold_as_wrong():
    pool = np.eye(3, dtype=np.float32)
    gold = [pair(1), pair(2)]
    search = searching(np.array([[1, 0, 0], [1, 0, 0]], np.float32), pool, np.ones(3, bool))
    positions, figures = retrieve_neighbours(gold, {}, search, k_max=2)
    assert figures["gold_wrong"] == 2 and figures["k_requested"] == 4
    assert len(positions) == len(set(positions)) == 2


def test_seed_order_does_not_depend_on_blocks():
    ids = [f"p{i}" for i in range(40)]
    table = pa.table({"pair_id": ids, "key": ids})
    whole = seed_ranked(table, seed=3, n=5, excluded=frozenset({"p7"}))["pair_id"].to_pylist()
    halves = [seed_ranked(table.slice(lo, 20), seed=3, n=5, excluded=frozenset({"p7"})) for lo in (0, 20)]
    merged = sorted(r for h in halves for r in zip(h["rank"].to_pylist(), h["pair_id"].to_pylist()))[:5]
    assert [pid for _, pid in merged] == whole and "p7" not in whole
    assert seed_ranked(table, seed=4, n=5, excluded=frozenset())["pair_id"].to_pylist() != whole


def test_silver_additions_follow_the_judges():
    labelled = [pair(1, judge_label="chosen"), pair(2, judge_label="rejected"), pair(3, judge_label="tie"),
                pair(4, judge_label=None)]
    added, counts = silver_additions(labelled, iteration=3)
    assert counts == {"chosen": 1, "rejected": 1, "tie": 2}
    assert [a["is_silver"] for a in added] == [True, True]
    assert added[0]["chosen"] == "good 1"
    assert added[1]["chosen"] == "bad 2" and added[1]["rejected"] == "good 2"
    assert added[1]["pair_id"] == pair_id(added[1]["conversation"], "bad 2", "good 2")
    assert (added[1]["stage"], added[1]["reason"]) == ("stage1", "iteration 3: judges flipped the order")
    assert added[0]["reason"] == "iteration 3: judges kept the order"
    assert key(added[1]) == key(labelled[1])  # the flip is the same pair for set membership


def test_best_iteration_prefers_later_on_ties():
    assert best_iteration([{"iteration": 0, "gold_accuracy": 0.7}, {"iteration": 1, "gold_accuracy": 0.7},
                           {"iteration": 2, "gold_accuracy": 0.6}])["iteration"] == 1


def test_retrieval_budget_serves_the_rms_errors_first():
    pool = np.eye(4, dtype=np.float32)
    gold = [pair(1), pair(2)]
    vectors = np.array([[1, 0, 0, 0], [0, 0, 0, 1]], np.float32)
    p = {key(gold[0]): 0.9, key(gold[1]): 0.1}  # the second gold pair is the RM's error
    positions, figures = retrieve_neighbours(gold, p, searching(vectors, pool, np.ones(4, bool)), k_max=2, budget=2)
    assert positions[0] == 3 and len(positions) == 2 and figures["retrieved"] == 2
