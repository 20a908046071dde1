"""normalize_phone reads plainly written numbers without phonenumbers.parse (hub.identities._plain_phone);
for every number, written any way, its answer is the one phonenumbers gives."""

from __future__ import annotations

import phonenumbers
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hub.identities import InvalidIdentity, _plain_phone, normalize_phone

REGIONS = ["RU", "KZ", "BY", "UA", "US", "CA", "GB", "DE", "FR", "IT", "AU", "IN", "BR", "CN", "JP", "AR", "MX", "SE"]
TYPES = [phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE,
         phonenumbers.PhoneNumberType.TOLL_FREE]
FORMATS = [phonenumbers.PhoneNumberFormat.NATIONAL, phonenumbers.PhoneNumberFormat.INTERNATIONAL,
           phonenumbers.PhoneNumberFormat.E164]
EXAMPLES = [phonenumbers.format_number(number, fmt) for region in REGIONS for kind in TYPES for fmt in FORMATS
            if (number := phonenumbers.example_number_for_type(region, kind)) is not None]


def parsed(value: str, region: str) -> str | None:
    """What normalize_phone answered before the fast path: phonenumbers' E.164 for a possible number."""
    try:
        number = phonenumbers.parse(value, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def normalized(value: str, region: str) -> str | None:
    try:
        return normalize_phone.__wrapped__(value, region)  # type: ignore[attr-defined]
    except InvalidIdentity:
        return None


def respaced(example: str, digits: list[int], separators: list[str]) -> str:
    """The example's digits, some replaced, dropped or added, between separators of any kind."""
    out = [c for c in example if c.isdigit()]
    for at, digit in zip(digits[::2], digits[1::2]):
        if out:
            i = at % (len(out) + 1)
            if digit < 4 and i < len(out):
                out[i] = str(digit)
            elif digit < 7:
                out.insert(i, str(digit))
            elif i < len(out):
                del out[i]
    text = "".join(d + (separators[i % len(separators)] if separators else "") for i, d in enumerate(out))
    return ("+" if example.startswith("+") else "") + text


@settings(max_examples=600, deadline=None)
@given(st.sampled_from(EXAMPLES), st.lists(st.integers(0, 20), max_size=6),
       st.lists(st.sampled_from(["", "", "", " ", "-", ".", "(", ")", ") ", " ("]), max_size=6),
       st.sampled_from([*REGIONS, "ru", "001", ""]), st.sampled_from(["", "8", "0", "00", "810", "011", "7", "1", "+", "(",
                                                                 "+("]))
def test_normalize_phone_answers_as_phonenumbers_does(example, digits, separators, region, lead):
    value = lead + respaced(example, digits, separators)
    assert normalized(value, region) == parsed(value, region), value


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet="0123456789 ()-.+", max_size=22), st.sampled_from([*REGIONS, "ru", "001", ""]))
def test_any_string_of_digits_and_separators_is_answered_as_phonenumbers_does(value, region):
    assert normalized(value, region) == parsed(value, region)


@pytest.mark.parametrize(("value", "region"), [
    ("8 (916) 123-45-67", "RU"), ("+7 916 123-45-67", "RU"), ("+79161234567", "GB"), ("(916) 123-45-67", "RU"),
    ("8 701 123 4567", "KZ"), ("030 1234567", "DE"), ("+49 30 1234567", "RU"), ("(202) 555-0123", "US"),
    ("+1 202-555-0123", "RU"), ("020 7946 0958", "GB"), ("06 12 34 56 78", "FR")])
def test_plain_numbers_take_the_fast_path(value, region):
    expected = parsed(value, region)
    assert expected is not None
    assert _plain_phone(value, region) == expected
    assert normalize_phone(value, region) == expected


@pytest.mark.parametrize(("value", "region"), [
    ("8 10 49 30 1234567", "RU"),  # dialling out of Russia: phonenumbers reads the 810 prefix
    ("7 916 123 45 67", "RU"),  # a country code without "+": phonenumbers decides whether it is one
    ("+39 06 1234 5678", "RU"),  # Italy keeps its leading zero
    ("tel:+7-916-123-45-67", "RU"), ("8 916 123-45-67 ext. 12", "RU"), ("８ ９１６ １２３ ４５ ６７", "RU"),
    ("12345", "RU"), ("+999 1234567", "RU"), ("8 (916) 123-45-67", "ru"), ("8 (916) 123-45-67", "")])
def test_numbers_outside_the_fast_path_are_answered_by_phonenumbers(value, region):
    assert _plain_phone(value, region) is None
    assert normalized(value, region) == parsed(value, region)
