"""The verification protocol (conf/protocol.md): one document for human annotators and LLM judges.

The document is Markdown with one `## ` section per topic: core principles, then guidelines per task
category, objectivity and controversiality. Judges get the core principles plus the sections that
match the pair's attributes; sections whose title says "(human annotators only)" (tool use, order of
work) never reach a judge, as in the paper's judge prompt.
"""

from __future__ import annotations

import re

from synpref.record import storage

HUMAN_ONLY = "(human annotators only)"
CORE = "Core principles"


def parse_sections(text: str) -> dict[str, str]:
    """Section title -> body, in document order (the text before the first `## ` is the preamble)."""
    sections: dict[str, str] = {}
    parts = re.split(r"^## +(.+?)\s*$", text, flags=re.MULTILINE)
    for title, body in zip(parts[1::2], parts[2::2]):
        sections[title.strip()] = body.strip()
    return sections


def load_protocol(path: str) -> dict[str, str]:
    sections = parse_sections(storage.read_text(storage.absolute(path)))
    if CORE not in sections:
        raise ValueError(f"{path}: the protocol needs a '## {CORE}' section")
    return sections


def judge_guidelines(sections: dict[str, str], *, task_category: str | None, objectivity: str | None,
                     controversiality: str | None) -> str:
    """The protocol text a judge reads for one pair: core principles + the matching guidelines."""
    wanted = [CORE, f"Task category: {task_category}", f"Objectivity: {objectivity}",
              f"Controversiality: {controversiality}"]
    parts = [f"{title}:\n{sections[title]}" for title in wanted if title in sections and HUMAN_ONLY not in title]
    return "\n\n".join(parts)


def missing_guidelines(sections: dict[str, str], taxonomy) -> list[str]:
    """Taxonomy values with no guideline section (a config check: every label should have one)."""
    titles = [f"Task category: {c}" for c in taxonomy["task_categories"]]
    titles += [f"Objectivity: {o}" for o in taxonomy["objectivity"]]
    titles += [f"Controversiality: {c}" for c in taxonomy["controversiality"]]
    return [t for t in titles if t not in sections]
