"""How many SMS parts a body takes: GSM-7 or UCS-2, the way carriers (and Twilio) split it.

GSM-7 carries 160 septets in one part, 153 in each part of a longer message (the user data
header takes the rest); characters of the extension table (€ [ ] { } ^ ~ | \\ and form feed) cost
two septets, and an escape pair is never split between parts. One character outside the GSM
alphabet turns the whole body into UCS-2: 70 UTF-16 code units in one part, 67 per part otherwise,
and a surrogate pair (an emoji, say) is never split between parts either.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

# 3GPP TS 23.038 default alphabet (the escape code 0x1B itself is not a character).
GSM_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM_EXTENSION = frozenset("\f^{}\\[~]|€")

GSM_SINGLE, GSM_PART = 160, 153
UCS2_SINGLE, UCS2_PART = 70, 67
# Twilio refuses longer bodies (error 21617); it counts characters, as users do.
MAX_BODY_CHARS = 1600


class Encoding(StrEnum):
    GSM7 = "gsm-7"
    UCS2 = "ucs-2"


@dataclass(frozen=True)
class SegmentCount:
    """What the compose box shows: parts, encoding, and room left in the last part."""

    encoding: Encoding
    segments: int
    units: int  # septets (GSM-7) or UTF-16 code units (UCS-2)
    per_segment: int
    remaining: int  # units still free in the last part
    characters: int
    non_gsm: tuple[str, ...] = ()  # the characters that forced UCS-2, in order of appearance

    @property
    def over_limit(self) -> bool:
        return self.characters > MAX_BODY_CHARS

    def as_dict(self) -> dict[str, object]:
        return {
            "encoding": self.encoding.value,
            "segments": self.segments,
            "units": self.units,
            "per_segment": self.per_segment,
            "remaining": self.remaining,
            "characters": self.characters,
            "max_characters": MAX_BODY_CHARS,
            "over_limit": self.over_limit,
            "non_gsm": list(self.non_gsm),
        }


def _gsm_cost(char: str) -> int | None:
    if char in GSM_BASIC:
        return 1
    if char in GSM_EXTENSION:
        return 2
    return None


def _ucs2_cost(char: str) -> int:
    return 2 if ord(char) > 0xFFFF else 1


def _pack(costs: list[int], single: int, part: int) -> tuple[int, int]:
    """(parts, units free in the last part): one part if it fits whole, else greedy parts that never split a character."""
    total = sum(costs)
    if total <= single:
        return (1 if total else 0), single - total
    parts, used = 1, 0
    for cost in costs:
        if used + cost > part:
            parts, used = parts + 1, 0
        used += cost
    return parts, part - used


def count_segments(text: str) -> SegmentCount:
    """Count the parts `text` takes as an SMS (an empty body takes none)."""
    gsm_costs = [_gsm_cost(c) for c in text]
    non_gsm = tuple(dict.fromkeys(c for c, cost in zip(text, gsm_costs, strict=True) if cost is None))
    if not non_gsm:
        costs = [c for c in gsm_costs if c is not None]
        parts, free = _pack(costs, GSM_SINGLE, GSM_PART)
        per = GSM_SINGLE if parts <= 1 else GSM_PART
        return SegmentCount(Encoding.GSM7, parts, sum(costs), per, free, len(text))
    costs = [_ucs2_cost(c) for c in text]
    parts, free = _pack(costs, UCS2_SINGLE, UCS2_PART)
    per = UCS2_SINGLE if parts <= 1 else UCS2_PART
    return SegmentCount(Encoding.UCS2, parts, sum(costs), per, free, len(text), non_gsm)
