"""RM-Bench: the loader on the fixture and on the real shared files, and the metrics on small
hand-computed cases (every expected number is worked out in the comment next to it).
"""

import shutil
from collections import Counter

import pytest

from synpref.eval.rm_bench import RM_BENCH, load_rm_bench, score_rm_bench

from .helpers import FIXTURES, assert_well_formed

# --- loading -------------------------------------------------------------------------------------


def test_rm_bench_fixture_domains_come_from_file_names():
    items = load_rm_bench(FIXTURES / "rm-bench")
    assert_well_formed(items, RM_BENCH)
    assert [(i.subset, i.sample_id) for i in items] == [("chat", "chat:1"), ("safety-refuse", "safety-refuse:2952")]
    assert items[0].is_chosen == [True] * 3 + [False] * 3
    assert items[0].responses[0] == "100 °C." and items[0].responses[3] == "90 °C."


def test_rm_bench_repo_layout_reads_its_data_folder(tmp_path):
    # the official repo keeps the domain files in data/, next to its scripts and README
    shutil.copytree(FIXTURES / "rm-bench", tmp_path / "RM-Bench" / "data")
    (tmp_path / "RM-Bench" / "README.md").write_text("# RM-Bench\n")
    items = load_rm_bench(tmp_path / "RM-Bench")
    assert [i.key for i in items] == [i.key for i in load_rm_bench(FIXTURES / "rm-bench")]


def test_real_rm_bench_files(shared_benchmarks):
    items = load_rm_bench(shared_benchmarks / "rm-bench")
    assert_well_formed(items, RM_BENCH)
    # data/math_filtered.json (>= 4 MiB) is not in the shared copy
    assert Counter(i.subset for i in items) == {"chat": 129, "code": 228, "safety-refuse": 284, "safety-response": 157}
    assert all(len(i.responses) == 6 and i.is_chosen == [True] * 3 + [False] * 3 for i in items)


# --- metrics -------------------------------------------------------------------------------------


def test_rm_bench_matrix_levels_and_safety_pooling():
    result = score_rm_bench(
        [
            # chosen [3, 2, 1] vs rejected [2.5, 2, 0.5]:
            # row 0 (3): beats all            -> [1, 1, 1]
            # row 1 (2): 2>2.5 no, 2>2 no (tie), 2>0.5 -> [0, 0, 1]
            # row 2 (1): only 1>0.5            -> [0, 0, 1]
            # hard = upper (0,1)+(0,2)+(1,2) = 3/3 = 100; normal = diag 1+0+1 = 2/3; easy = lower 0
            {"domain": "chat", "score_chosen": [3, 2, 1], "score_rejected": [2.5, 2, 0.5]},
            # safety-refuse: all right; safety-response: all wrong -> pooled safety: every cell 1/2
            {"domain": "safety-refuse", "score_chosen": [1, 1, 1], "score_rejected": [0, 0, 0]},
            {"domain": "safety-response", "score_chosen": [0, 0, 0], "score_rejected": [1, 1, 1]},
        ]
    )
    chat, safety = result["domains"]["chat"], result["domains"]["safety"]
    assert (chat["hard"], chat["normal"], chat["easy"]) == pytest.approx((100.0, 200 / 3, 0.0))
    assert chat["avg"] == pytest.approx((100 + 200 / 3 + 0) / 3)  # 55.5556
    assert chat["matrix"] == [[100.0, 100.0, 100.0], [0.0, 0.0, 100.0], [0.0, 0.0, 100.0]]
    assert (safety["hard"], safety["normal"], safety["easy"], safety["avg"], safety["n"]) == pytest.approx(
        (50.0, 50.0, 50.0, 50.0, 2)
    )
    assert set(result["domains"]) == {"chat", "safety"}  # absent domains are left out
    assert result["hard"] == pytest.approx(75.0)  # mean(100, 50)
    assert result["normal"] == pytest.approx((200 / 3 + 50) / 2)  # 58.3333
    assert result["easy"] == pytest.approx(25.0)  # mean(0, 50)
    assert result["score"] == pytest.approx(((100 + 200 / 3) / 3 + 50) / 2)  # mean(55.5556, 50) = 52.7778


def test_rm_bench_rejects_unknown_domain_and_wrong_shape():
    with pytest.raises(ValueError, match="unknown RM-Bench domain"):
        score_rm_bench([{"domain": "poetry", "score_chosen": [1, 1, 1], "score_rejected": [0, 0, 0]}])
    with pytest.raises(ValueError, match="3 chosen"):
        score_rm_bench([{"domain": "chat", "score_chosen": [1, 1], "score_rejected": [0, 0, 0]}])
