"""Normalizing the ways a contact is recognised: emails case-folded, phones in E.164."""

from __future__ import annotations

import re
from functools import lru_cache

import phonenumbers
from email_validator import EmailNotValidError, validate_email

from hub.models import IdentityKind


class InvalidIdentity(ValueError):
    """An email or phone that cannot be normalized; the message says why."""


@lru_cache(maxsize=8192)
def normalize_email(value: str) -> str:
    """A syntactically valid address, case-folded whole (the hub treats local parts case-insensitively).

    Cached (a pure function): sending one campaign message checks its address three or four times.
    """
    try:
        info = validate_email(value.strip(), check_deliverability=False)
    except EmailNotValidError as exc:
        raise InvalidIdentity(f"{value!r} is not a valid email address: {exc}") from None
    return info.normalized.casefold()


def normalize_phone(value: str, region: str) -> str:
    """E.164 for a number written in any common notation; `region` reads numbers without a country code."""
    try:
        number = phonenumbers.parse(value, region)
    except phonenumbers.NumberParseException as exc:
        raise InvalidIdentity(f"{value!r} is not a phone number: {exc}") from None
    if not phonenumbers.is_possible_number(number):
        raise InvalidIdentity(f"{value!r} is not a possible phone number for its country")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def normalize(kind: str, value: str, *, region: str) -> str:
    if kind == IdentityKind.EMAIL:
        return normalize_email(value)
    if kind == IdentityKind.PHONE:
        return normalize_phone(value, region)
    if kind == IdentityKind.EXTERNAL:
        value = value.strip()
        if not value or len(value) > 320:
            raise InvalidIdentity("an external id must be 1 to 320 characters")
        return value
    raise InvalidIdentity(f"unknown identity kind {kind!r}; use email, phone or external")


_DIGITS = re.compile(r"\D+")


def phone_digits_for_search(query: str, *, region: str) -> list[str]:
    """Digit strings to look for inside stored E.164 numbers, for a partial phone written any way."""
    try:
        return [normalize_phone(query, region).lstrip("+")]
    except InvalidIdentity:
        pass
    digits = _DIGITS.sub("", query)
    if len(digits) < 3:
        return []
    candidates = [digits]
    # A national trunk prefix (8 in Russia, 0 in most of Europe) is not part of the stored number.
    prefix = phonenumbers.country_code_for_region(region)
    trunk = phonenumbers.PhoneMetadata.metadata_for_region(region).national_prefix if region else None
    if trunk and digits.startswith(trunk) and len(digits) > len(trunk) + 2:
        candidates.append(str(prefix) + digits[len(trunk):])
    return candidates


def fold(text: str | None) -> str:
    """Case-folded text for case-insensitive search in any script."""
    return (text or "").casefold()
