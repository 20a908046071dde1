"""The [channels.phone] section: the Twilio account, who rings in which order, hours and voicemail."""

from __future__ import annotations

from datetime import time
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from channels.twilio_common.settings import TwilioSettings

Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class AgentLine(BaseModel):
    """An agent's phone: a number or a Twilio Client identity to ring, and a PBX extension for CDRs."""

    model_config = ConfigDict(extra="forbid")

    user_id: int | None = None
    label: str = Field("", max_length=100)
    number: str | None = Field(None, pattern=r"^\+[1-9]\d{6,14}$")
    client: str | None = Field(None, pattern=r"^[A-Za-z0-9_.\-]{1,100}$")
    extension: str | None = Field(None, pattern=r"^\d{1,10}$")
    ring: bool = Field(True, description="Ring this line for inbound calls (in list order)")

    @model_validator(mode="after")
    def _reachable(self) -> AgentLine:
        if self.number and self.client:
            raise ValueError("an agent line rings a number or a client, not both")
        if not (self.number or self.client or self.extension):
            raise ValueError("an agent line needs a number, a client or an extension")
        return self

    @property
    def target(self) -> str | None:
        """How Twilio names the line in a call: the number, or client:<identity>."""
        return self.number or (f"client:{self.client}" if self.client else None)


class BusinessHours(BaseModel):
    model_config = ConfigDict(extra="forbid")

    days: list[Weekday] = Field(min_length=1)
    opens: time
    closes: time

    @model_validator(mode="after")
    def _ordered(self) -> BusinessHours:
        if self.opens >= self.closes:
            raise ValueError("opens must be before closes (split a shift past midnight into two entries)")
        return self


class PhoneSettings(TwilioSettings):
    """Inbound calls ring `agents` one by one, then go to voicemail; outside business hours, straight there."""

    caller_id: str | None = Field(None, pattern=r"^\+[1-9]\d{6,14}$", description="Your Twilio number, E.164")
    agents: list[AgentLine] = Field(default_factory=list)
    ring_timeout_seconds: int = Field(20, ge=5, le=120)
    business_hours: list[BusinessHours] = Field(default_factory=list, description="Empty: always open")
    time_zone: str | None = Field(None, description="For business hours; default: the hub's default_timezone")
    language: str = Field("en-US", pattern=r"^[a-z]{2}-[A-Z]{2}$")
    greeting: str | None = Field(None, max_length=500)
    voicemail_greeting: str = Field("Sorry, no one can take your call right now. Please leave a message after the tone.",
                                    max_length=500)
    closed_greeting: str = Field("We are closed now. Please leave a message after the tone.", max_length=500)
    voicemail_max_seconds: int = Field(120, ge=5, le=3600)
    record_answered_calls: bool = False
    # CDR import: a party with at most this many digits is a PBX extension, not a customer.
    extension_max_digits: int = Field(6, ge=1, le=10)

    @field_validator("time_zone")
    @classmethod
    def _zone(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                ZoneInfo(value)
            except (ZoneInfoNotFoundError, ValueError):
                raise ValueError(f"{value!r} is not an IANA time zone (e.g. Europe/Moscow)") from None
        return value

    @property
    def ring_order(self) -> list[AgentLine]:
        return [line for line in self.agents if line.ring and line.target]

    def line_of(self, user_id: int | None) -> AgentLine | None:
        return next((line for line in self.agents if user_id is not None and line.user_id == user_id and line.target), None)

    def agent_by_extension(self, extension: str) -> AgentLine | None:
        return next((line for line in self.agents if line.extension == extension), None)
