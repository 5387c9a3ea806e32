"""What the per-benchmark tests share: the fixture folder, an item shape check and oracle rewards."""

from pathlib import Path

from synpref.eval.items import EvalItem

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "benchmarks"
ROLES = {"system", "user", "assistant"}


def assert_well_formed(items: list[EvalItem], benchmark: str):
    assert items, "no items loaded"
    keys = [item.key for item in items]
    assert len(set(keys)) == len(keys), "sample ids must be unique within a benchmark"
    for item in items:
        assert item.benchmark == benchmark
        assert item.subset
        assert item.conversation and item.conversation[-1]["role"] == "user"
        assert all(set(m) == {"role", "content"} and m["role"] in ROLES and isinstance(m["content"], str)
                   for m in item.conversation)
        assert len(item.responses) >= 2 and all(isinstance(r, str) and r for r in item.responses)
        assert len(item.is_chosen) == len(item.responses)


def oracle_scores(items: list[EvalItem]) -> list[list[float]]:
    """Rewards that always prefer the chosen responses, distinct within each item."""
    return [[(10.0 if ok else 0.0) + 0.001 * i for i, ok in enumerate(item.is_chosen)] for item in items]
