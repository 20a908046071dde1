"""Normalizing the ways a contact is recognised: emails case-folded, phones in E.164."""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

import phonenumbers
from phonenumbers import PhoneMetadata
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


# A number written in ASCII digits and the usual separators (spaces, hyphens, dots, parentheses),
# with or without a leading "+": "8 (916) 123-45-67", "+7 916 123-45-67", "+79161234567". For these
# `_plain_phone` follows the steps phonenumbers.parse takes for such input (country code, national
# prefix, possible lengths, from the same metadata) without its generic ones (extracting the number
# from text, the viability and extension patterns, normalising every Unicode digit): ~60 us a number
# on this VM, ~10% of a screen pop's CPU, and the screen pop's caller is a number never seen before.
# Any step it does not take the plain way (an international dialling prefix, a country code without
# "+", a national prefix rewritten by a rule, a leading zero, a length that is not possible) goes to
# phonenumbers. tests/test_identities_phone.py holds it to phonenumbers over generated numbers.
_PLAIN_PHONE = re.compile(r"(\+)?\(?[0-9][0-9 ()\-.]*[0-9]")
_NOT_DIGIT = re.compile(r"[^0-9]")


@lru_cache(maxsize=None)
def _pattern(regex: str) -> re.Pattern[str]:
    return re.compile(regex)


def _plain_phone(value: str, region: str) -> str | None:
    """E.164 for a plainly written possible number, as normalize_phone gives it; None where phonenumbers decides."""
    plain = _PLAIN_PHONE.fullmatch(value)
    if plain is None:
        return None
    digits = _NOT_DIGIT.sub("", value)
    if not 7 <= len(digits) <= 17:
        return None
    if plain.group(1):  # "+": the country code comes first, the shortest known prefix (as parse reads it)
        code = next((int(digits[:n]) for n in (1, 2, 3)
                     if digits[0] != "0" and int(digits[:n]) in phonenumbers.COUNTRY_CODE_TO_REGION_CODE), 0)
        if not code:
            return None
        plan = PhoneMetadata.metadata_for_region_or_calling_code(code, phonenumbers.region_code_for_country_code(code))
        national = digits[len(str(code)):]
    else:  # the region's own notation; one that starts with its dialling-out prefix or country code is not plain
        # parse reads a number without "+" only for a region it supports, spelt as it spells them
        plan = PhoneMetadata.metadata_for_region(region) if region in phonenumbers.SUPPORTED_REGIONS else None
        if (plan is None or plan.international_prefix is None or digits.startswith(str(plan.country_code))
                or _pattern(plan.international_prefix).match(digits)):
            return None
        code, national = plan.country_code, digits
    if plan is None or plan.national_prefix_transform_rule or plan.general_desc.national_number_pattern is None:
        return None
    if plan.national_prefix_for_parsing and (prefix := _pattern(plan.national_prefix_for_parsing).match(national)):
        general = _pattern(plan.general_desc.national_number_pattern)
        stripped = national[prefix.end():]
        # parse keeps the prefix when only the whole number fits the plan, and drops it only when what
        # remains has a possible length that is not local-only.
        if not (general.fullmatch(national) and not general.fullmatch(stripped)):
            lengths, local = plan.general_desc.possible_length, plan.general_desc.possible_length_local_only
            if len(stripped) not in lengths or len(stripped) in local:
                return None
            national = stripped
    if national.startswith("0") or not phonenumbers.is_possible_number(
            phonenumbers.PhoneNumber(country_code=code, national_number=int(national))):
        return None
    return f"+{code}{national}"


@lru_cache(maxsize=8192)
def normalize_phone(value: str, region: str) -> str:
    """E.164 for a number written in any common notation; `region` reads numbers without a country code.

    Cached (a pure function of its two strings; an invalid number raises again each time): the same
    callers ring again, and the contacts API checks a number before looking it up with it.
    """
    if (plain := _plain_phone(value.strip(), region)) is not None:
        return plain
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
