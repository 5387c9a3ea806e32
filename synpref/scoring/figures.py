"""What a scoring run did, read back from its output: the stage table of the pairs that came in kept,
and per model the mean p and the share of pairs it prefers as labelled.
"""

from __future__ import annotations

from synpref.record.counts import outcome_counts, summary
from synpref.record.ops import p_of
from synpref.record.pairs_io import iter_rows
from synpref.record.schema import KEPT
from synpref.scoring.pairs import STAGE, STAGES, TRUNCATED

def model_figures(kept, names: list[str]) -> dict:
    """Per model over the kept pairs (any iterable of rows, read once): pairs with its score, mean p,
    share with p > 0.5. Sums, not lists, so that a stream of tens of millions of rows stays small."""
    count, total, above = dict.fromkeys(names, 0), dict.fromkeys(names, 0.0), dict.fromkeys(names, 0)
    for row in kept:
        for name in names:
            p = p_of(row, name)
            if p is not None:
                count[name], total[name], above[name] = count[name] + 1, total[name] + p, above[name] + (p > 0.5)
    return {name: {"pairs": count[name], "mean_p": round(total[name] / count[name], 4) if count[name] else None,
                   "share_p_above_half": round(above[name] / count[name], 4) if count[name] else None}
            for name in names}


def format_models(figures: dict) -> str:
    lines = [f"{'model':<18} {'pairs':>10} {'mean p':>9} {'p > 0.5':>9}"]
    for name, f in figures.items():
        mean = f"{f['mean_p']:.4f}" if f["mean_p"] is not None else "-"
        share = f"{f['share_p_above_half']:.4f}" if f["share_p_above_half"] is not None else "-"
        lines.append(f"{name:<18} {f['pairs']:>10} {mean:>9} {share:>9}")
    return "\n".join(lines)


def score_stats(input_counts, pairs_path: str, names: list[str], seconds: float) -> dict:
    """The stage table of the pairs that came in kept (in = kept + quarantined), read back from the
    output; the rows that came in not kept are counted as passed through and must come out unchanged."""
    out_counts = outcome_counts(pairs_path)
    passed = {k: n for k, n in input_counts.items() if k[0] != KEPT}
    ours = out_counts.copy()
    ours.subtract(passed)
    ours = +ours  # drop the zeros
    stats = summary(ours, STAGES, unit="pairs")
    n_kept_in = sum(n for k, n in input_counts.items() if k[0] == KEPT)
    problems = stats["reconcile"]["problems"]
    if any(out_counts[k] < n for k, n in passed.items()):
        problems.append(f"rows not kept on input did not all pass through unchanged: {passed} in, {dict(out_counts)} out")
    if stats["records_in"] != n_kept_in:
        problems.append(f"{n_kept_in} kept pairs read but {stats['records_in']} came out of the score stage")
    stats["reconcile"]["ok"] = not problems

    kept = (row for row in iter_rows(pairs_path, ["rm_scores"]) if row["status"] == KEPT)  # streamed: bounded memory
    scored = stats["totals"][KEPT]
    stats.update(job="score", seconds=round(seconds, 2), passed_through=sum(passed.values()), pairs_scored=scored,
                 pairs_truncated=sum(n for k, n in ours.items() if k[:3] == (KEPT, STAGE, TRUNCATED)),
                 pairs_per_second=round(scored / max(seconds, 1e-9), 3), models=model_figures(kept, names))
    return stats
