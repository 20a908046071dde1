"""Teams: who answers which channels, their lead, and their business hours (weekly, holidays, zone)."""

from __future__ import annotations

from datetime import date
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from hub import audit
from hub.auth import Principal
from hub.models import User
from inbox.hours import DAYS, parse_hours
from inbox.models import Team, TeamMember


class TeamIn(BaseModel):
    """A team as the form sends it: hours per day as "09:00-13:00, 14:00-18:00" (empty: closed)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    time_zone: str = Field(min_length=1, max_length=64)
    hours: dict[str, str] = Field(default_factory=dict)
    holidays: str = Field("", max_length=4000)
    channels: list[str] = Field(default_factory=list, max_length=50)
    lead_id: int | None = None
    member_ids: list[int] = Field(default_factory=list, max_length=500)

    @field_validator("time_zone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r} (an IANA name such as Europe/Moscow)") from None
        return value

    def weekly(self) -> dict[str, list[list[str]]]:
        out: dict[str, list[list[str]]] = {}
        for day, text in self.hours.items():
            if day not in DAYS:
                raise ValueError(f"unknown day {day!r}")
            spans = [part.strip() for part in text.split(",") if part.strip()]
            if spans:
                out[day] = [[s.strip() for s in span.split("-", 1)] for span in spans]
                if any(len(pair) != 2 for pair in out[day]):
                    raise ValueError(f"{day}: write spans as 09:00-18:00")
        parse_hours(out)
        return out

    def holiday_list(self) -> list[str]:
        days = [part.strip() for part in self.holidays.replace("\n", ",").split(",") if part.strip()]
        return sorted({date.fromisoformat(d).isoformat() for d in days})


class TeamRefused(ValueError):
    pass


def save(session: Session, *, data: TeamIn, actor: Principal, team_id: int | None = None) -> Team:
    """Create or change a team; TeamRefused with a plain reason for bad hours, dates or people."""
    try:
        hours, holidays = data.weekly(), data.holiday_list()
    except (ValueError, TypeError) as exc:
        raise TeamRefused(str(exc)) from None
    people = set(data.member_ids) | ({data.lead_id} if data.lead_id else set())
    known = set(session.scalars(select(User.id).where(User.id.in_(people)))) if people else set()
    if people - known:
        raise TeamRefused(f"no user {sorted(people - known)[0]}")
    clash = session.scalar(select(Team.id).where(Team.name == data.name, Team.id != (team_id or -1)))
    if clash is not None:
        raise TeamRefused(f"a team named {data.name!r} exists already")
    team = session.get(Team, team_id) if team_id is not None else Team(name=data.name)
    if team is None:
        raise TeamRefused(f"no team {team_id}")
    before: dict[str, Any] = {"name": team.name, "time_zone": team.time_zone, "hours": team.hours,
                              "holidays": team.holidays, "channels": team.channels, "lead_id": team.lead_id}
    team.name, team.time_zone, team.hours, team.holidays = data.name, data.time_zone, hours, holidays
    team.channels, team.lead_id = sorted(set(data.channels)), data.lead_id
    session.add(team)
    session.flush()
    session.execute(delete(TeamMember).where(TeamMember.team_id == team.id))
    for uid in sorted(set(data.member_ids)):
        session.add(TeamMember(team_id=team.id, user_id=uid))
    after = {"name": team.name, "time_zone": team.time_zone, "hours": hours, "holidays": holidays,
             "channels": team.channels, "lead_id": team.lead_id, "members": sorted(set(data.member_ids))}
    audit.record(session, actor=actor, action="team.create" if team_id is None else "team.update", entity="team",
                 entity_id=team.id, changes={k: v for k, v in after.items() if before.get(k) != v})
    return team


def members(session: Session) -> dict[int, list[int]]:
    out: dict[int, list[int]] = {}
    for team_id, user_id in session.execute(select(TeamMember.team_id, TeamMember.user_id)).all():
        out.setdefault(team_id, []).append(user_id)
    return out


def hours_text(team: Team) -> dict[str, str]:
    return {day: ", ".join(f"{a}-{b}" for a, b in team.hours.get(day, [])) for day in DAYS}
