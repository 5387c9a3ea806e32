"""The verification protocol (conf/protocol.md): one document for human annotators and LLM judges.

The document is Markdown with one `## ` section per topic: core principles, then guidelines per task
category, objectivity and controversiality. Judges get the core principles plus the sections that
match the pair's attributes; sections whose title says "(human annotators only)" (tool use, order of
work) never reach a judge, as in the paper's judge prompt.
"""

from __future__ import annotations

import re
from pathlib import Path

from synpref.record import storage

REPO = Path(__file__).resolve().parents[2]

HUMAN_ONLY = "(human annotators only)"
CORE = "Core principles"


def parse_sections(text: str) -> dict[str, str]:
    """Section title -> body, in document order (the text before the first `## ` is the preamble)."""
    sections: dict[str, str] = {}
    parts = re.split(r"^## +(.+?)\s*$", text, flags=re.MULTILINE)
    for title, body in zip(parts[1::2], parts[2::2]):
        sections[title.strip()] = body.strip()
    return sections


def protocol_path(path: str) -> str:
    """A relative path names a file of the repository (conf/protocol.md) when one is there."""
    return str(REPO / path) if not Path(path).is_absolute() and (REPO / path).exists() else path


def protocol_text(path: str) -> str:
    return storage.read_text(storage.absolute(protocol_path(path)))


def load_protocol(path: str) -> dict[str, str]:
    sections = parse_sections(protocol_text(path))
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


def human_protocol(sections: dict[str, str], rows: list[dict]) -> str:
    """The protocol as a person reads it for these pairs (Markdown): the core principles, every
    "(human annotators only)" section, and the guideline sections of the attribute values present."""
    wanted = {CORE}
    for row in rows:
        wanted |= {f"Task category: {row.get('task_category')}", f"Objectivity: {row.get('objectivity')}",
                   f"Controversiality: {row.get('controversiality')}"}
    return "\n\n".join(f"### {title}\n{body}" for title, body in sections.items()
                       if title in wanted or HUMAN_ONLY in title)


def missing_guidelines(sections: dict[str, str], taxonomy) -> list[str]:
    """Taxonomy values with no guideline section (a config check: every label should have one)."""
    titles = [f"Task category: {c}" for c in taxonomy["task_categories"]]
    titles += [f"Objectivity: {o}" for o in taxonomy["objectivity"]]
    titles += [f"Controversiality: {c}" for c in taxonomy["controversiality"]]
    return [t for t in titles if t not in sections]
