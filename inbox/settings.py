"""The inbox's section of the config, `[extensions.inbox]`: what expects an answer, the agents' cap,
service-level policies, business hours and the out-of-hours replies."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from hub.extensions import ExtensionSettings
from inbox.hours import DEFAULT_HOURS, parse_hours
from inbox.models import Priority

# (channel, kind) pairs of inbound events a person expects an answer to. A channel added later (a
# Telegram adapter posting ("telegram", "message")) needs only a line here or in the config.
ANSWERABLE = [("email", "message"), ("sms", "message"), ("telegram", "message"), ("forms", "form.submitted"),
              ("phone", "call"), ("phone", "voicemail")]


class SlaPolicy(BaseModel):
    """Targets in business minutes for conversations matching channel / priority / key flag (None: any)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100)
    channel: str | None = None
    priority: Priority | None = None
    key_account: bool | None = None
    first_response_minutes: float | None = Field(None, gt=0)
    next_response_minutes: float | None = Field(None, gt=0)
    resolution_minutes: float | None = Field(None, gt=0)
    # A near-breach is escalated this many minutes before a due time.
    warn_minutes_before: float = Field(15, ge=0)


def _default_policies() -> list[SlaPolicy]:
    return [
        SlaPolicy(name="standard", first_response_minutes=60, next_response_minutes=120, resolution_minutes=8 * 60),
        SlaPolicy(name="urgent", priority=Priority.URGENT, first_response_minutes=15, next_response_minutes=30,
                  resolution_minutes=4 * 60, warn_minutes_before=5),
        SlaPolicy(name="key account", key_account=True, first_response_minutes=30, next_response_minutes=60,
                  resolution_minutes=4 * 60),
        SlaPolicy(name="sms", channel="sms", first_response_minutes=30, next_response_minutes=60, resolution_minutes=8 * 60),
    ]


def _default_replies() -> dict[str, dict[str, str]]:
    ru = "Здравствуйте! Мы получили ваше сообщение. Сейчас нерабочее время: ответим в ближайший рабочий день."
    en = "Hello! We have your message. It is outside our working hours; we will answer on the next working day."
    return {"email": {"ru": ru, "en": en}, "sms": {"ru": ru, "en": en}, "telegram": {"ru": ru, "en": en}}


class InboxSettings(ExtensionSettings):
    answerable: list[tuple[str, str]] = Field(default_factory=lambda: list(ANSWERABLE))
    # Open conversations one agent holds at most (auto and manual assignment both respect it).
    default_cap: int = Field(10, ge=1, le=1000)
    policies: list[SlaPolicy] = Field(default_factory=_default_policies)
    # Business hours when a conversation has no team (or its team has none).
    time_zone: str = "Europe/Moscow"
    hours: dict[str, list[list[str]]] = Field(default_factory=lambda: dict(DEFAULT_HOURS))
    holidays: list[str] = Field(default_factory=list)
    # On a breach: raise the priority one step, and give it to another available agent if the
    # assignee is not online.
    breach_raises_priority: bool = True
    breach_reassigns: bool = True
    # Out-of-hours replies: off until an admin turns them on; then per channel and language (ru, en),
    # a channel left out gets none.
    auto_reply_enabled: bool = False
    auto_reply: dict[str, dict[str, str]] = Field(default_factory=_default_replies)
    auto_reply_subject: dict[str, str] = Field(default_factory=lambda: {"ru": "Мы получили ваше письмо",
                                                                        "en": "We have your message"})
    # A resolved conversation is reopened by a new message within this many days; later, a new one starts.
    reopen_days: int = Field(7, ge=0, le=365)
    tick_seconds: float = Field(60, ge=5, le=3600)

    @field_validator("time_zone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}") from None
        return value

    @field_validator("hours")
    @classmethod
    def _hours(cls, value: dict[str, list[list[str]]]) -> dict[str, list[list[str]]]:
        parse_hours(value)
        return value
