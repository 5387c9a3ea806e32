"""Which pairs people verify first (DESIGN.md section 2).

Annotators verify pairs with their generated attributes and the written protocol (conf/protocol.md,
"human annotators only" sections included), objective low-controversiality pairs first.
"""

from __future__ import annotations

import hashlib

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
