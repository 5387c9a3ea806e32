"""Stage 2's anti-join on a real local Ray: the pool less D_gold (in either order) and judge-labelled
D_silver, while the seed part of D_silver stays in the pool; rows come out whole."""

import pytest

from synpref.curation.pool_join import judged_silver, without_gold_and_silver
from synpref.curation.stage1 import seed_silver_rows, silver_additions
from synpref.record.ops import flip
from synpref.record.pairs_io import read_pairs, write_pairs
from synpref.record.schema import PAIR_SCHEMA, to_table
from tests.curation.stage_pairs import pair

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def ray_local():
    import ray

    ray.init(num_cpus=2, include_dashboard=False)
    yield
    ray.shutdown()


def test_pool_less_gold_and_judged_silver(ray_local, tmp_path):
    pool = [pair(i, rm_scores=[{"model": "m", "r_chosen": 1.0, "r_rejected": 0.5, "p": 0.6}]) for i in range(60)]
    write_pairs(pool, str(tmp_path / "pool"))
    gold = [pool[1], flip(pool[2], stage="verify", reason="a person flipped it")]  # a flipped pair is the same pair
    write_pairs(gold, str(tmp_path / "gold"))
    judged, _ = silver_additions([{**pool[3], "judge_label": "chosen"}, {**pool[4], "judge_label": "rejected"}],
                                 iteration=0)
    seed = seed_silver_rows([pool[5], pool[6]])  # the pool's own labels: still Stage 2's to decide
    write_pairs(judged + seed, str(tmp_path / "silver"))

    remaining = without_gold_and_silver(str(tmp_path / "pool"), str(tmp_path / "gold"), str(tmp_path / "silver"),
                                        partition_rows=16)  # four partitions
    table = to_table(sorted(remaining.take_all(), key=lambda r: r["pair_id"]))
    expected = to_table(sorted((r for i, r in enumerate(pool) if i not in (1, 2, 3, 4)), key=lambda r: r["pair_id"]))
    assert table.select(PAIR_SCHEMA.names).equals(expected.select(PAIR_SCHEMA.names))
    assert judged_silver(str(tmp_path / "silver")).count() == 2
    assert len(read_pairs(str(tmp_path / "pool"))) == 60  # the input is untouched
