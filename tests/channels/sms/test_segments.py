"""Segment counts: GSM-7 160/153, UCS-2 70/67, extension characters cost two, nothing is split."""

from __future__ import annotations

import pytest

from channels.twilio_common.segments import MAX_BODY_CHARS, Encoding, count_segments


@pytest.mark.parametrize(
    ("text", "segments", "units"),
    [
        ("", 0, 0),
        ("a" * 160, 1, 160),
        ("a" * 161, 2, 161),
        ("a" * 306, 2, 306),  # 2 × 153
        ("a" * 307, 3, 307),
        ("€" * 80, 1, 160),  # extension characters cost two septets
        ("€" * 80 + "a", 2, 161),
        ("[" + "a" * 158, 1, 160),
        ("[" + "a" * 159, 2, 161),
    ],
)
def test_gsm7_edges(text: str, segments: int, units: int) -> None:
    count = count_segments(text)
    assert (count.encoding, count.segments, count.units) == (Encoding.GSM7, segments, units)


@pytest.mark.parametrize(
    ("text", "segments", "units"),
    [
        ("ж" * 70, 1, 70),
        ("ж" * 71, 2, 71),
        ("ж" * 134, 2, 134),  # 2 × 67
        ("ж" * 135, 3, 135),
        ("😀" * 35, 1, 70),  # each emoji is a surrogate pair: two UTF-16 units
        ("😀" * 35 + "a", 2, 71),
        ("a" * 69 + "😀", 2, 71),
    ],
)
def test_ucs2_edges(text: str, segments: int, units: int) -> None:
    count = count_segments(text)
    assert (count.encoding, count.segments, count.units) == (Encoding.UCS2, segments, units)


def test_a_surrogate_pair_is_never_split_between_parts() -> None:
    # 66 + 34 × 2 = 134 units would fit two 67-unit parts only by cutting an emoji in half.
    count = count_segments("a" * 66 + "😀" * 34)
    assert count.units == 134
    assert count.segments == 3


def test_an_escape_pair_is_never_split_between_parts() -> None:
    # 152 + 77 × 2 = 306 septets: two 153-septet parts only if a "€" straddled the boundary.
    count = count_segments("a" * 152 + "€" * 77)
    assert count.units == 306
    assert count.segments == 3


def test_one_character_outside_gsm_makes_the_whole_body_ucs2() -> None:
    count = count_segments("Your order is ready. Спасибо!")
    assert count.encoding == Encoding.UCS2
    assert count.non_gsm[:2] == ("С", "п")
    assert count_segments("Ça coûte 5 €").encoding == Encoding.UCS2  # "û" is not in the GSM alphabet
    assert count_segments("Ça va? Très bien, 5 €").encoding == Encoding.GSM7


def test_remaining_and_limit() -> None:
    assert count_segments("a" * 150).remaining == 10
    assert count_segments("a" * 161).remaining == 153 - 8
    assert not count_segments("a" * MAX_BODY_CHARS).over_limit
    assert count_segments("a" * (MAX_BODY_CHARS + 1)).over_limit
    assert count_segments("hi").as_dict()["max_characters"] == MAX_BODY_CHARS
