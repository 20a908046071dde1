"""Who gets which variant: a seeded hash of (seed, contact), the same in every process and after any restart.

Python's hash() is salted per process, so the draw is SHA-256 of "seed:contact": two independent
uniform numbers, one for "in the test share?", one for "which variant?". No state is needed to
repeat an assignment; the recipient row records it anyway, before anything is sent.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

LABELS = ("A", "B", "C", "D")
_SCALE = float(2**64)


def draws(seed: int, contact_id: int) -> tuple[float, float]:
    """Two uniform numbers in [0, 1) for this seed and contact."""
    digest = hashlib.sha256(f"{seed}:{contact_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / _SCALE, int.from_bytes(digest[8:16], "big") / _SCALE


def assign(seed: int, contact_id: int, *, share_percent: int, labels: Sequence[str]) -> str | None:
    """The variant label this contact gets in the test, or None when it belongs to the rest."""
    in_test, which = draws(seed, contact_id)
    if in_test * 100 >= share_percent:
        return None
    return labels[int(which * len(labels))]


__all__ = ["LABELS", "assign", "draws"]
