"""The Markdown report of results.json: a sampled run says it is a sample, with n of m items."""

from synpref.eval.report import markdown

META = {"model": "tiny-rm", "source": "in process", "items": 3, "responses": 6, "truncated": 0, "seconds": 1.0}


def results(sample):
    judgebench = {"score": 50.0, "overall_micro": 50.0, "overall_macro": 50.0, "n": 2,
                  "categories": {"knowledge": 50.0}, "counts": {"knowledge": 2}}
    return {"benchmarks": {"judgebench": judgebench}, "missing": {"rmb": "no files at rmb"}, "paper_average": 50.0,
            "items_per_benchmark": {"judgebench": 2}, "sample": sample, "meta": {**META, "limit": 2 if sample else None}}


def test_a_sampled_run_says_it_is_a_sample_of_n_of_m_items():
    report = markdown(results({"limit": 2, "seed": 0, "items": {"judgebench": {"scored": 2, "of": 620}}}))
    assert ("**A sample, not the whole benchmarks: at most 2 items of each, spread over its subsets (limit_seed=0); "
            "scored JudgeBench 2 of 620 items.**") in report
    assert "| micro-average over pairs (official): 50.00 | 2 of 620 |" in report


def test_a_whole_run_counts_items_plainly():
    report = markdown(results(None))
    assert "sample" not in report.lower()
    assert "| micro-average over pairs (official): 50.00 | 2 |" in report
