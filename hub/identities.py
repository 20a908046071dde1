"""Normalizing the ways a contact is recognised: emails case-folded, phones in E.164."""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

import phonenumbers
from email_validator import SPECIAL_USE_DOMAIN_NAMES, EmailNotValidError, validate_email

from hub.models import IdentityKind
from hub.translatable import N_, TranslatableError


class InvalidIdentity(TranslatableError):
    """An email or phone that cannot be normalized: the message says what to do, in plain words a page
    translates; `reason` is what the parser said, kept in the English text (APIs, logs, the CLI)."""

    def __init__(self, message: str, *, reason: str = "", **params: Any) -> None:
        self.reason = reason
        super().__init__(message, **params)

    def _english(self) -> str:
        text = self.translated(str)
        return f"{text} ({self.reason})" if self.reason else text


# An address already in the form normalize_email gives, and valid by every rule email_validator
# applies to it: a lowercase ASCII dot-atom local part of common characters, lowercase ASCII labels
# (no "--", so no Punycode and none of the labels RFC 5891 reserves), a TLD of letters, within the
# length limits, no special-use domain. For these validate_email's answer is the address itself, so
# it is not asked (~50 us an address: a campaign worker sends to addresses it has never seen).
# tests/test_identities_email.py holds this to validate_email over generated addresses.
_PLAIN_EMAIL = re.compile(r"[a-z0-9_+-]{1,64}(?:\.[a-z0-9_+-]+)*@(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}")
_SPECIAL_USE = tuple(SPECIAL_USE_DOMAIN_NAMES)


def _plain_email(address: str) -> bool:
    if len(address) > 254 or not _PLAIN_EMAIL.fullmatch(address):
        return False
    local, domain = address.rsplit("@", 1)
    return (len(local) <= 64 and len(domain) <= 253 and "--" not in domain
            and not any(domain == name or domain.endswith("." + name) for name in _SPECIAL_USE))


@lru_cache(maxsize=8192)
def normalize_email(value: str) -> str:
    """A syntactically valid address, case-folded whole (the hub treats local parts case-insensitively).

    Cached (a pure function): sending one campaign message checks its address three or four times.
    """
    if _plain_email(stripped := value.strip()):
        return stripped
    try:
        info = validate_email(value.strip(), check_deliverability=False)
    except EmailNotValidError as exc:
        raise InvalidIdentity(N_("“%(value)s” is not a valid email address. Check it for typos: it should look "
                                 "like name@example.com."), value=value.strip()[:100], reason=str(exc)) from None
    return info.normalized.casefold()


@lru_cache(maxsize=8192)
def normalize_phone(value: str, region: str) -> str:
    """E.164 for a number written in any common notation; `region` reads numbers without a country code.

    Cached (a pure function of its two strings; an invalid number raises again each time): the same
    callers ring again, and the contacts API checks a number before looking it up with it.
    """
    try:
        number = phonenumbers.parse(value, region)
    except phonenumbers.NumberParseException as exc:
        raise InvalidIdentity(N_("“%(value)s” is not a phone number. Write it with the country code, "
                                 "like +7 916 123-45-67."), value=value.strip()[:100], reason=str(exc)) from None
    if not phonenumbers.is_possible_number(number):
        raise InvalidIdentity(N_("“%(value)s” is not a possible phone number for its country. Check the digits "
                                 "and the country code."), value=value.strip()[:100])
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def normalize(kind: str, value: str, *, region: str) -> str:
    if kind == IdentityKind.EMAIL:
        return normalize_email(value)
    if kind == IdentityKind.PHONE:
        return normalize_phone(value, region)
    if kind == IdentityKind.TELEGRAM:
        value = value.strip()
        if not value.isdigit() or len(value) > 20:
            raise InvalidIdentity(N_("A Telegram user id is a number, like 123456789."))
        return str(int(value))
    if kind == IdentityKind.EXTERNAL:
        value = value.strip()
        if not value or len(value) > 320:
            raise InvalidIdentity(N_("An external id must be 1 to 320 characters long."))
        return value
    raise InvalidIdentity(N_("“%(kind)s” is not a kind of identity the hub knows; use email, phone or external."),
                          kind=str(kind)[:40])


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
