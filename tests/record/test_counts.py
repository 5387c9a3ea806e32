from collections import Counter

from synpref.preprocess.batch import STAGES
from synpref.record.counts import summary


def counts(**kw):
    return Counter(kw)


def test_stage_table_reconciles():
    c = Counter({
        ("kept", None, None, True): 90, ("kept", None, None, False): 10,  # 10 extra pairs from rated records
        ("quarantined", "parse", "bad_json", True): 3,
        ("dropped", "binarize", "tied_scores", False): 2,
        ("dropped", "require_responses", "missing_chosen", True): 1,
        ("dropped", "dedup", "duplicate", True): 4,
    })
    s = summary(c, STAGES)
    rows = {r["stage"]: r for r in s["stages"]}
    assert s["records_in"] == 98  # rows that are the first pair of their record
    assert rows["parse"]["quarantined"] == {"bad_json": 3} and rows["parse"]["kept"] == 95
    assert rows["binarize"]["in"] == 107 and rows["binarize"]["kept"] == 105
    assert rows["dedup"]["in"] == 104 and rows["dedup"]["kept"] == 100
    assert s["reconcile"]["ok"], s["reconcile"]


def test_reconcile_catches_an_unknown_stage():
    c = Counter({("kept", None, None, True): 5, ("dropped", "mystery", "x", True): 1})
    s = summary(c, STAGES)
    assert not s["reconcile"]["ok"]
    assert "mystery" in s["reconcile"]["problems"][-1] or "mystery" in " ".join(s["reconcile"]["problems"])


def test_num_cpus_only_for_a_local_cluster(monkeypatch):
    from synpref.runner.runs import local_num_cpus

    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    assert local_num_cpus(None, 4) == 4
    assert local_num_cpus("auto", 4) is None
    monkeypatch.setenv("RAY_ADDRESS", "http://127.0.0.1:8265")  # what `ray job submit` sets for a job
    assert local_num_cpus(None, 4) is None
