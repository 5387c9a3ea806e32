"""The report's verdict: labels first, then what the held-out set can say about the RMs."""

from synpref.curation.report import POOL, verdict
from synpref.curation.report_figures import gap_closed


def report(pool_precision, kept_precision, raw, curated, ceiling):
    heldout = {name: {"learnable": {"accuracy": acc}} for name, acc in
               (("raw", raw), ("curated", curated), ("ceiling", ceiling))}
    return {"truth": {"stages": {POOL: {"learnable": {"precision": pool_precision, "recall": None}},
                                 "Stage 2 kept (curated)": {"learnable": {"precision": kept_precision,
                                                                          "recall": 0.8}}}},
            "gap_closed": gap_closed(heldout)}


def test_a_wide_gap_is_closed_by_a_share():
    text = verdict(report(0.75, 0.95, raw=0.70, curated=0.85, ceiling=0.90))
    assert text.startswith("Curation helped") and "closes 75% of the gap" in text
    assert "label precision 0.750 in the pool, 0.950 in the Stage 2 curated pool (recall 0.800)" in text


def test_a_narrow_gap_is_not_read_as_a_loss():
    text = verdict(report(0.75, 1.0, raw=0.953, curated=0.922, ceiling=1.0))
    assert text.startswith("Curation helped") and "cannot show" in text and "closes" not in text


def test_lower_precision_did_not_help():
    assert verdict(report(0.75, 0.70, raw=0.7, curated=0.6, ceiling=0.9)).startswith("Curation did not help")
    assert verdict({"truth": None}).startswith("No truth is known")
