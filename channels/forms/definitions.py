"""What an admin defines (fields, their mapping to the contact, what follows a submission) and how a
visitor's answers are checked against it. Pure: no database, no request."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from hub.identities import InvalidIdentity, normalize_email, normalize_phone
from hub.web.i18n import N_, TranslatableError


class FieldType(StrEnum):
    TEXT = "text"
    EMAIL = "email"
    PHONE = "phone"
    CHOICE = "choice"
    CHECKBOX = "checkbox"
    CONSENT = "consent"


FIELD_NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
ATTRIBUTE = re.compile(r"^attribute:([A-Za-z][A-Za-z0-9_.-]{0,63})$")
TAG = re.compile(r"^tag:(.{1,60})$")
# Which mappings each type may use; email and phone always become the contact's identities.
MAPPINGS: dict[FieldType, tuple[str, ...]] = {
    FieldType.TEXT: ("display_name", "attribute:"),
    FieldType.EMAIL: (),
    FieldType.PHONE: (),
    FieldType.CHOICE: ("attribute:", "tag"),
    FieldType.CHECKBOX: ("attribute:", "tag:"),
    FieldType.CONSENT: (),
}
TRUE_WORDS = frozenset({"on", "1", "true", "yes", "y"})
MAX_FIELDS = 30


class Option(BaseModel):
    model_config = ConfigDict(extra="forbid")

    value: str = Field(min_length=1, max_length=100)
    label: str = Field(min_length=1, max_length=200)


class FieldDef(BaseModel):
    """One field of a form."""

    model_config = ConfigDict(extra="forbid")

    name: str
    type: FieldType
    label: str = Field(min_length=1, max_length=300)
    required: bool = False
    help: str = Field(default="", max_length=500)
    max_length: int = Field(default=1000, ge=1, le=10_000)  # text only
    multiline: bool = False  # text only
    options: list[Option] = Field(default_factory=list, max_length=50)  # choice only
    # consent only: the exact words the visitor agrees to (recorded with the consent), and for what.
    wording: str = Field(default="", max_length=2000)
    consent_channel: str = Field(default="email", pattern=r"^(email|sms)$")
    maps_to: str | None = Field(default=None, max_length=80)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not FIELD_NAME.match(value):
            raise TranslatableError(N_("Use 1–40 lowercase letters, digits or _, starting with a letter."))
        return value

    @field_validator("maps_to")
    @classmethod
    def _blank_is_none(cls, value: str | None) -> str | None:
        return (value or "").strip() or None

    @model_validator(mode="after")
    def _consistent(self) -> FieldDef:
        if self.type == FieldType.CHOICE:
            if len(self.options) < 2:
                raise TranslatableError(N_("A choice needs at least two options, one per line."))
            values = [o.value for o in self.options]
            if len(set(values)) != len(values):
                raise TranslatableError(N_("Option values must differ."))
        elif self.options:
            raise TranslatableError(N_("Only a choice has options; remove them or make the field a choice."))
        if self.type == FieldType.CONSENT and not self.wording.strip():
            raise TranslatableError(N_("A consent field needs its exact wording."))
        if self.maps_to is not None:
            allowed = MAPPINGS[self.type]
            ok = any(self.maps_to == a if not a.endswith(":") else self.maps_to.startswith(a) for a in allowed)
            ok = ok and (not self.maps_to.startswith("attribute:") or ATTRIBUTE.match(self.maps_to) is not None)
            ok = ok and (not self.maps_to.startswith("tag:") or TAG.match(self.maps_to) is not None)
            if not ok:
                choices = ", ".join(a + ("<name>" if a.endswith(":") else "") for a in allowed) or "nothing"
                raise TranslatableError(N_("A %(type)s field can map to %(choices)s, not “%(value)s”."),
                                        type=self.type.value, choices=choices, value=self.maps_to)
        return self


def normalize_origin(value: str) -> str:
    """'https://Shop.example/' -> 'https://shop.example'; ValueError for anything but a bare origin."""
    parts = urlsplit(value.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise TranslatableError(N_("“%(value)s” is not an origin like https://shop.example."), value=value)
    if parts.path not in ("", "/") or parts.query or parts.fragment or parts.username or parts.password:
        raise TranslatableError(N_("“%(value)s” must be only scheme, host and port, like https://shop.example."),
                                value=value)
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{parts.hostname.lower()}{port}"


def origin_of(url: str) -> str | None:
    """The origin of an absolute http(s) URL, or None."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.username or parts.password:
        return None
    return f"{parts.scheme}://{parts.hostname.lower()}{f':{port}' if port else ''}"


def redirect_allowed(url: str | None, allowed_origins: list[str]) -> bool:
    """Only absolute http(s) URLs on one of the form's allow-listed origins (no open redirect)."""
    if not url or len(url) > 2000 or any(c in url for c in "\r\n\t\\"):
        return False
    return origin_of(url) in set(allowed_origins)


class FormDefinition(BaseModel):
    """Everything an admin edits about a form, validated as one."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    title: str = Field(default="", max_length=300)
    description: str = Field(default="", max_length=4000)
    fields: list[FieldDef] = Field(min_length=1, max_length=MAX_FIELDS)
    submit_label: str = Field(default="", max_length=100)
    locale: Literal["ru", "en"] | None = None  # the language of the texts; the page speaks it
    thank_you: str = Field(default="", max_length=4000)
    redirect_url: str | None = Field(default=None, max_length=2000)
    allowed_origins: list[str] = Field(default_factory=list, max_length=20)
    tags: list[str] = Field(default_factory=list, max_length=20)
    task_assignee_id: int | None = None
    task_title: str = Field(default="", max_length=500)
    is_active: bool = True

    @field_validator("allowed_origins")
    @classmethod
    def _origins(cls, values: list[str]) -> list[str]:
        return list(dict.fromkeys(normalize_origin(v) for v in values if v.strip()))

    @field_validator("tags")
    @classmethod
    def _tags(cls, values: list[str]) -> list[str]:
        cleaned = [v.strip() for v in values if v.strip()]
        if any(len(v) > 60 for v in cleaned):
            raise TranslatableError(N_("A tag is at most 60 characters."))
        return list(dict.fromkeys(cleaned))

    @field_validator("redirect_url")
    @classmethod
    def _blank_redirect(cls, value: str | None) -> str | None:
        return (value or "").strip() or None

    @model_validator(mode="after")
    def _whole(self) -> FormDefinition:
        names = [f.name for f in self.fields]
        if len(set(names)) != len(names):
            raise TranslatableError(N_("Two fields have the same name; rename one."))
        if not any(f.type in (FieldType.EMAIL, FieldType.PHONE) for f in self.fields):
            raise TranslatableError(N_("A form needs an email or a phone field: that is how a submission finds "
                                       "its contact."))
        if sum(1 for f in self.fields if f.maps_to == "display_name") > 1:
            raise TranslatableError(N_("Only one field can be the contact's name."))
        if self.redirect_url is not None and not redirect_allowed(self.redirect_url, self.allowed_origins):
            raise TranslatableError(N_("The redirect must be an http(s) address on one of the allowed origins."))
        return self


# --- a visitor's answers ------------------------------------------------------------------------

REQUIRED = N_("This field is required.")
BAD_EMAIL = N_("Enter a valid email address.")
BAD_PHONE = N_("Enter a valid phone number.")
BAD_CHOICE = N_("Choose one of the options.")
TOO_LONG = N_("This is too long.")
NEED_CONSENT = N_("Tick this box to continue.")
NEED_CONTACT = N_("Give an email address or a phone number.")


@dataclass
class Answers:
    """A visitor's answers after checking: clean values, or an error message (N_ id) per field."""

    values: dict[str, Any] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    identities: list[tuple[str, str]] = field(default_factory=list)  # (kind, normalized value)

    @property
    def ok(self) -> bool:
        return not self.errors


def _text(raw: Any) -> str:
    if isinstance(raw, list):
        raw = raw[0] if raw else ""
    if raw is None or isinstance(raw, (dict, bool)):
        return ""
    return str(raw).strip()


def _truthy(raw: Any) -> bool:
    if isinstance(raw, list):
        raw = raw[-1] if raw else ""  # a hidden "off" before the checkbox's "on"
    if isinstance(raw, bool):
        return raw
    return str(raw or "").strip().lower() in TRUE_WORDS


def check_answers(fields: list[FieldDef], raw: Mapping[str, Any], *, region: str) -> Answers:
    """Check every field of `raw` against the form; collects all errors, not only the first."""
    answers = Answers()
    for f in fields:
        value = raw.get(f.name)
        if f.type in (FieldType.CHECKBOX, FieldType.CONSENT):
            checked = _truthy(value)
            if f.required and not checked:
                answers.errors[f.name] = NEED_CONSENT if f.type == FieldType.CONSENT else REQUIRED
            answers.values[f.name] = checked
            continue
        text = _text(value)
        if not text:
            if f.required:
                answers.errors[f.name] = REQUIRED
            continue
        if len(text) > (f.max_length if f.type == FieldType.TEXT else 320):
            answers.errors[f.name] = TOO_LONG
            continue
        if f.type == FieldType.EMAIL:
            try:
                answers.identities.append(("email", normalize_email(text)))
            except InvalidIdentity:
                answers.errors[f.name] = BAD_EMAIL
                continue
        elif f.type == FieldType.PHONE:
            try:
                answers.identities.append(("phone", normalize_phone(text, region)))
            except InvalidIdentity:
                answers.errors[f.name] = BAD_PHONE
                continue
        elif f.type == FieldType.CHOICE and text not in {o.value for o in f.options}:
            answers.errors[f.name] = BAD_CHOICE
            continue
        answers.values[f.name] = text
    if not answers.identities and not answers.errors:
        first = next(f for f in fields if f.type in (FieldType.EMAIL, FieldType.PHONE))
        answers.errors[first.name] = NEED_CONTACT
    return answers


def parse_fields(stored: list[dict[str, Any]]) -> list[FieldDef]:
    return [FieldDef.model_validate(f) for f in stored]
