"""Where the loop waits for people: the verdicts on an export are there, simulated, or awaited.

A curation job that needs human verdicts (D_gold's seed, each Stage 1 iteration) calls
`ensure_verdicts`. With a demo world (`simulate_truth`), a simulated annotator answers from the
world's known truth; it is the only reader of the truth besides the report. Otherwise, with no
verdict file there yet, it raises WaitingForHumans, which the job turns into exit status 3 and a
message saying where the pairs are and where the verdicts go.
"""

from __future__ import annotations

import json

from synpref.record import storage
from synpref.record.pairs_io import read_pairs
from synpref.runner import runs
from synpref.runner.errors import WaitingForHumans
from synpref.verification.export import SELECTED
from synpref.verification.verdicts import verdict_files

SIMULATED = "simulated"  # <verdicts>/simulated/verdicts.jsonl: the simulated annotator's answers


def ensure_verdicts(export: str, verdicts: str, *, waiting: str, simulate_truth: str | None = None,
                    error_rate: float = 0.0, undecidable_rate: float = 0.0, seed: int = 0) -> None:
    """Make sure `verdicts` holds verdicts on the pairs exported to `export`; `waiting` names what
    waits ("Stage 1 iteration 2")."""
    if simulate_truth:
        def simulate() -> dict:
            from synpref.demo.annotator import simulate_annotator
            from synpref.demo.world import load_truth

            rows = read_pairs(storage.join(export, SELECTED))
            lines = simulate_annotator(rows, load_truth(simulate_truth), annotator="simulated-1",
                                       error_rate=error_rate, undecidable_rate=undecidable_rate, seed=seed)
            storage.write_text(storage.join(verdicts, SIMULATED, "verdicts.jsonl"),
                               "".join(json.dumps(v) + "\n" for v in lines))
            return {"verdicts": len(lines)}

        fingerprint = runs.config_fingerprint({"export": export, "truth": simulate_truth, "seed": seed,
                                               "error_rate": error_rate, "undecidable_rate": undecidable_rate})
        runs.once(storage.join(verdicts, SIMULATED), fingerprint, simulate)
    if not verdict_files(verdicts):
        raise WaitingForHumans(waiting, export, verdicts)
