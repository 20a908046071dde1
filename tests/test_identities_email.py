"""normalize_email answers plain addresses without asking email_validator (hub.identities._PLAIN_EMAIL);
for every address the fast path takes, email_validator's own answer is the same address."""

from __future__ import annotations

import pytest
from email_validator import EmailNotValidError, validate_email
from hypothesis import given, settings
from hypothesis import strategies as st

from hub.identities import _PLAIN_EMAIL, InvalidIdentity, _plain_email, normalize_email


def validator(value: str) -> str | None:
    """What normalize_email answered before the fast path: email_validator's normalized, case-folded form."""
    try:
        return validate_email(value.strip(), check_deliverability=False).normalized.casefold()
    except EmailNotValidError:
        return None


def normalized(value: str) -> str | None:
    try:
        return normalize_email.__wrapped__(value)  # type: ignore[attr-defined]
    except InvalidIdentity:
        return None


@settings(max_examples=500, deadline=None)
@given(st.from_regex(_PLAIN_EMAIL, fullmatch=True))
def test_every_address_the_fast_path_takes_is_valid_and_already_normalized(address):
    if _plain_email(address):
        assert validator(address) == address


_ALPHABET = "abz09._+-@\"' AZ\u00e9\u0430\u2024xn-[]()\\,;:<>\t"


@settings(max_examples=500, deadline=None)
@given(st.one_of(
    st.text(alphabet=_ALPHABET, max_size=40),
    st.builds(lambda local, labels, tld: f"{local}@{'.'.join(labels)}.{tld}",
              st.text(alphabet="az09._+-", min_size=0, max_size=70),
              st.lists(st.text(alphabet="az09-", min_size=0, max_size=70), min_size=1, max_size=5),
              st.sampled_from(["com", "ru", "local", "test", "arpa", "invalid", "onion", "localhost", "c0m", "x"]))))
def test_normalize_email_answers_as_email_validator_does(value):
    assert normalized(value) == validator(value)


@pytest.mark.parametrize("address", [
    "a..b@x.com", ".a@x.com", "a.@x.com", "a@x", "a@x.local", "a@mail.x.onion", "a@ab--cd.com", "a@-x.com", "a@x-.com",
    "a@1.23", "a@x.test", "a" * 65 + "@x.com", "a@" + "b" * 64 + ".com", "a@" + ".".join(["b" * 60] * 5) + ".com"])
def test_addresses_outside_the_fast_path_are_answered_as_before(address):
    assert not _plain_email(address)
    assert normalized(address) == validator(address)


def test_plain_addresses_come_back_as_they_are_and_others_as_email_validator_has_them():
    assert normalize_email(" anna.petrova+news@shop-1.example.ru ") == "anna.petrova+news@shop-1.example.ru"
    assert normalize_email("Anna@Example.COM") == "anna@example.com"
    assert normalize_email("a@xn--80ak6aa92e.com") == validator("a@xn--80ak6aa92e.com")
