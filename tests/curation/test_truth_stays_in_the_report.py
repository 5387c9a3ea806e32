"""The demo world's truth is read by the world, the simulated annotator and the report, and by no
curation stage: a stage that read it would make curation look good for the wrong reason.

Static: no module of synpref/ or jobs/ outside the allowed ones names the truth's readers or its file.
(The loop test checks the runtime side: which step configs name the world's folders.)"""

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
TRUTH_READERS = {"load_truth", "is_correct", "label_precision", "family_of", "simulate_annotator"}
# where the truth may be read: the world itself, the simulated human, the report, and the one place
# that calls the simulated human (a demo stand-in for the people of Stage 1)
ALLOWED = {"synpref/demo/world.py", "synpref/demo/annotator.py", "synpref/curation/report.py",
           "synpref/curation/report_figures.py", "synpref/verification/waiting.py"}


def names_used(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            found.add(node.id)
        elif isinstance(node, ast.Attribute):
            found.add(node.attr)
        elif isinstance(node, ast.alias):
            found.add(node.name.rsplit(".", 1)[-1])
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and "truth.jsonl" in node.value:
            found.add("truth.jsonl")
    return found


def test_only_the_world_the_simulated_annotator_and_the_report_read_the_truth():
    offenders = {}
    for path in sorted(list((REPO / "synpref").rglob("*.py")) + list((REPO / "jobs").glob("*.py"))):
        rel = path.relative_to(REPO).as_posix()
        used = names_used(path) & (TRUTH_READERS | {"truth.jsonl"})
        if used and rel not in ALLOWED:
            offenders[rel] = sorted(used)
    assert offenders == {}


def test_the_check_sees_a_stage_that_reads_the_truth(tmp_path):
    leaky = tmp_path / "leaky_stage.py"
    leaky.write_text("from synpref.demo.world import load_truth\n\ndef keep(row, world):\n"
                     "    return load_truth(world)[row['prompt']]['flipped'] is False\n")
    assert "load_truth" in names_used(leaky)
