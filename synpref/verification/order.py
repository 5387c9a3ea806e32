"""Which pairs people verify first, and the protocol text they read (DESIGN.md section 2).

Annotators verify pairs with their generated attributes and the written protocol (conf/protocol.md,
"human annotators only" sections included), objective low-controversiality pairs first.
"""

from __future__ import annotations

import hashlib

from synpref.annotation.protocol import CORE, HUMAN_ONLY

OBJECTIVITY_RANK = {"objective": 0, "subjective": 1}


CONTROVERSIALITY_RANK = {"low": 0, "medium": 1, "high": 2}


ORDERS = ("protocol", "random")


def order_key(row: dict, seed: int = 0, order: str = "protocol") -> tuple:
    """protocol: objective before subjective, then low < medium < high controversiality (unknown
    values last), ties broken by a seeded hash of pair_id. random: the seeded hash alone, a uniform
    sample (for when the attributes say little, as a small annotator's do)."""
    tie = int.from_bytes(hashlib.blake2b(f"{seed}:{row['pair_id']}".encode(), digest_size=8).digest(), "big")
    if order == "random":
        return (tie,)
    return (OBJECTIVITY_RANK.get(row.get("objectivity"), len(OBJECTIVITY_RANK)),
            CONTROVERSIALITY_RANK.get(row.get("controversiality"), len(CONTROVERSIALITY_RANK)), tie)


def verification_order(rows: list[dict], seed: int = 0) -> list[dict]:
    return sorted(rows, key=lambda row: order_key(row, seed))


def human_protocol(sections: dict[str, str], rows: list[dict]) -> str:
    """The protocol as a person reads it for these pairs (Markdown): the core principles, every
    "(human annotators only)" section, and the guideline sections of the attribute values present."""
    wanted = {CORE}
    for row in rows:
        wanted |= {f"Task category: {row.get('task_category')}", f"Objectivity: {row.get('objectivity')}",
                   f"Controversiality: {row.get('controversiality')}"}
    return "\n\n".join(f"### {title}\n{body}" for title, body in sections.items()
                       if title in wanted or HUMAN_ONLY in title)
