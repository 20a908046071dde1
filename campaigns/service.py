"""Campaigns as marketers change them: create, edit, schedule, pause, resume, cancel, duplicate.

Functions take the session first and everything else by keyword, and never commit: the view or the
API route owns the unit of work. Pausing holds the campaign's queued deliveries (send_after far in
the future) inside the same transaction that flips the status, and the materialisation batch locks
the campaign row, so no delivery a batch writes can escape a pause; resuming releases them.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from functools import lru_cache
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session

from campaigns.models import (
    ACTIVE,
    Campaign,
    CampaignRun,
    CampaignStatus,
    CampaignStep,
    RunStatus,
    ScheduleKind,
    of_runs,
    run_deliveries,
)
from campaigns.ab import variants as ab_variants
from campaigns.ab.variants import ABTestIn
from campaigns.runs import steps_of
from campaigns.scheduling import ScheduleError, cron_trigger, next_cron_time, zone_of
from hub import clock
from hub.models import Delivery, DeliveryStatus
from hub.web.i18n import N_, Translatable, TranslatableError

# Queued deliveries of a paused campaign wait until this moment (or a resume, which brings them back).
HOLD_UNTIL = datetime(2999, 1, 1, tzinfo=timezone.utc)
_CLOCK = re.compile(r"^([01][0-9]|2[0-3]):[0-5][0-9]$")
EDITABLE = (CampaignStatus.DRAFT, CampaignStatus.PAUSED, CampaignStatus.SCHEDULED)


_NAMED_ADDRESS = re.compile(r"^(?P<name>[^<>]*?)\s*<(?P<address>[^<>]*)>$")
MAX_SENDER_NAME = 200


@lru_cache(maxsize=256)  # a pure function, called for every message of a campaign
def sender_parts(sender: str) -> tuple[str, str | None]:
    """A campaign's sender as (From name, From address or None), from "Shop news",
    "Shop news <news@shop.example>" or "news@shop.example"; ValueError when it is none of these."""
    from hub.identities import InvalidIdentity, normalize_email

    sender = " ".join(sender.split())
    match = _NAMED_ADDRESS.match(sender)
    if match:
        name, address = match["name"].strip().strip('"').strip(), match["address"].strip()
    elif "<" in sender or ">" in sender:
        raise CampaignError(N_("Write the sender as a name, as Name <address>, or as an address."))
    elif "@" in sender and " " not in sender:
        name, address = "", sender
    else:
        name, address = sender, None
    if len(name) > MAX_SENDER_NAME:
        raise CampaignError(N_("The sender's name is %(length)s characters long; the limit is %(limit)s."),
                            length=len(name), limit=MAX_SENDER_NAME)
    if address is not None:
        try:
            address = normalize_email(address)
        except InvalidIdentity:
            raise CampaignError(N_("“%(address)s” in the sender is not an email address."), address=address) from None
    return name, address


class CampaignError(TranslatableError):
    """A change that cannot be made; `field` names the input at fault, if one is; `status` is the
    HTTP answer. The message is a msgid with parameters (hub.web.i18n.TranslatableError)."""

    def __init__(self, message: str, *, field: str | None = None, status: int = 422, **params: Any) -> None:
        self.field = field
        self.status = status
        super().__init__(message, **params)

    def _param(self, key: str, value: Any, gettext: Callable[[str], str]) -> Any:
        if isinstance(value, Translatable):  # a cause, such as a template's render error
            return value.translated(gettext)
        return gettext(_STATUS_WORDS[value]) if key == "state" and value in _STATUS_WORDS else value


# A campaign's status inside a sentence ("this campaign is paused").
_STATUS_WORDS = {"draft": N_("a draft"), "scheduled": N_("scheduled"), "running": N_("running"),
                 "paused": N_("paused"), "completed": N_("completed"), "cancelled": N_("cancelled")}


class StepIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    template_id: int = Field(ge=1)
    delay_minutes: int = Field(0, ge=0, le=366 * 24 * 60)
    skip_if_replied: bool = True


class CampaignIn(BaseModel):
    """A campaign as the API and the editor submit it."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    channel: str = Field("email", min_length=1, max_length=40)
    segment_id: int | None = Field(None, ge=1)
    # Who email recipients see in From: "Shop news", "Shop news <news@shop.example>" or
    # "news@shop.example". Without an address, the email channel's from_address; an address must be
    # one the channel may send as (from_address or its sender_addresses). SMS ignore it.
    sender: str = Field("", max_length=320, pattern=r"^[^\r\n\x00]*$", description=(
        "The From of its emails: `Shop news`, `Shop news <news@shop.example>` or `news@shop.example`; an "
        "address must be the email channel's from_address or one of its sender_addresses"))
    schedule_kind: ScheduleKind = ScheduleKind.NOW
    send_at: datetime | None = None
    cron: str | None = Field(None, max_length=120)
    time_zone: str = Field("UTC", max_length=64)
    trigger_kind: str | None = Field(None, max_length=60, pattern=r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$")
    trigger_delay_minutes: int = Field(0, ge=0, le=366 * 24 * 60)
    quiet_hours_start: str | None = None
    quiet_hours_end: str | None = None
    frequency_cap_max: int | None = Field(None, ge=1, le=1000)
    frequency_cap_days: int | None = Field(None, ge=1, le=366)
    steps: list[StepIn] = Field(min_length=1, max_length=20)
    # Variants of the first step sent to a random share of the audience; the winner goes to the rest.
    ab_test: ABTestIn | None = None

    @field_validator("name")
    @classmethod
    def _strip(cls, value: str) -> str:
        if not value.strip():
            raise CampaignError(N_("Give the campaign a name."))
        return value.strip()

    @field_validator("sender")
    @classmethod
    def _sender(cls, value: str) -> str:
        sender_parts(value)  # CampaignError says what is wrong with it
        return value.strip()

    @field_validator("send_at")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise CampaignError(N_("The time needs a time zone offset."))
        return value

    @field_validator("quiet_hours_start", "quiet_hours_end")
    @classmethod
    def _clock_time(cls, value: str | None) -> str | None:
        if value in (None, ""):
            return None
        if not _CLOCK.match(value):
            raise CampaignError(N_("Write a time of day like 09:00."))
        return value


def _check(session: Session, hub: Any, data: CampaignIn, *, future_from: datetime | None = None) -> None:
    """Refuse settings that cannot work; with `future_from`, also a send time at or before it."""
    from hub.channel_hooks import sends_to_contacts

    channel = hub.channels.get(data.channel)
    if channel is None or not sends_to_contacts(channel):
        raise CampaignError(N_("There is no channel “%(channel)s” that can send."), field="channel", channel=data.channel)
    _name, address = sender_parts(data.sender)
    allows = getattr(getattr(channel, "settings", None), "allows_sender", None)
    if address is not None and allows is not None and not allows(address):
        raise CampaignError(N_("%(address)s is not an address this hub may send from: add it to sender_addresses "
                               "under [channels.%(channel)s] (only addresses the domain's SPF and DKIM cover), or "
                               "leave the address out to send from the channel's own."),
                            field="sender", address=address, channel=data.channel)
    try:
        zone_of(data.time_zone)
    except ScheduleError:
        raise CampaignError(N_("“%(zone)s” is not a time zone; write one like Europe/Moscow."), field="time_zone",
                            zone=data.time_zone) from None
    if data.schedule_kind == ScheduleKind.TRIGGER:
        if not data.trigger_kind:
            raise CampaignError(N_("A triggered campaign needs the event that triggers it."), field="trigger_kind")
    elif data.segment_id is None:
        raise CampaignError(N_("Choose the segment to send to."), field="segment_id")
    if data.segment_id is not None:
        from campaigns.segments.models import Segment

        if session.get(Segment, data.segment_id) is None:
            raise CampaignError(N_("There is no segment %(id)s."), field="segment_id", id=data.segment_id)
    if data.schedule_kind == ScheduleKind.AT and data.send_at is None:
        raise CampaignError(N_("A campaign scheduled at a time needs that time."), field="send_at")
    if data.schedule_kind == ScheduleKind.AT and future_from is not None and data.send_at <= future_from:  # type: ignore[operator]
        # It would go out at once: a date typed a year off must not become an immediate send.
        raise CampaignError(N_("The send time %(when)s has already passed. Choose a later time, or choose "
                               "“Now” under When to send at once."), field="send_at",
                            when=data.send_at.astimezone(zone_of(data.time_zone)).strftime("%Y-%m-%d %H:%M"))  # type: ignore[union-attr]
    if data.schedule_kind == ScheduleKind.CRON:
        try:
            cron_trigger(data.cron or "", data.time_zone)
        except ScheduleError as exc:
            raise CampaignError(N_("The cron expression is not valid (%(reason)s); write five fields: minute hour "
                                   "day month weekday, like 0 9 * * 1."), field="cron", reason=str(exc)) from None
    if bool(data.quiet_hours_start) != bool(data.quiet_hours_end):
        raise CampaignError(N_("Quiet hours need both a start and an end."), field="quiet_hours_end")
    if data.quiet_hours_start and data.quiet_hours_start == data.quiet_hours_end:
        raise CampaignError(N_("Quiet hours that start and end at the same time leave no time to send."),
                            field="quiet_hours_end")
    if bool(data.frequency_cap_max) != bool(data.frequency_cap_days):
        raise CampaignError(N_("A frequency cap needs both a number of messages and a number of days."),
                            field="frequency_cap_days")
    from campaigns.message_templates.models import MessageTemplate

    for i, step in enumerate(data.steps):
        template = session.get(MessageTemplate, step.template_id)
        if template is None:
            raise CampaignError(N_("There is no message template %(id)s."), field=f"steps.{i}.template_id",
                                id=step.template_id)
        template_channel = getattr(template, "channel", None)
        if template_channel and template_channel != data.channel:
            raise CampaignError(N_("Template %(id)s is for %(template_channel)s, not %(channel)s."),
                                field=f"steps.{i}.template_id", id=step.template_id,
                                template_channel=template_channel, channel=data.channel)
    ab_variants.check(session, data)


def channel_can_send(hub: Any, channel: str) -> bool:
    """Whether `channel` is installed, sends and is set up now (what the outbox worker needs)."""
    from hub.channel import Capability

    adapter = hub.channels.get(channel)
    return adapter is not None and Capability.SEND in adapter.capabilities and adapter.configured


def require_sending_channel(hub: Any, channel: str) -> None:
    """Refuse to start sending on a channel that is not set up: its messages would only wait."""
    if not channel_can_send(hub, channel):
        raise CampaignError(N_("The %(channel)s channel is not set up, so this campaign cannot send. An administrator "
                               "sets it up in the hub's configuration file, section [channels.%(name)s]; "
                               "Admin → Channels shows what is missing."),
                            field="channel", status=409, channel=_channel_label(hub, channel), name=channel)


def _channel_label(hub: Any, channel: str) -> str:
    adapter = hub.channels.get(channel)
    return getattr(adapter, "label", "") or channel


def _check_templates_render(session: Session, data: CampaignIn) -> None:
    """Each step's template renders for the sample contact in every language it has."""
    from campaigns.message_templates.models import MessageTemplate
    from campaigns.message_templates.rendering import TemplateRenderError, check_renders

    for i, step in enumerate(data.steps):
        template = session.get(MessageTemplate, step.template_id)
        if template is None:
            continue  # _check said so already
        try:
            check_renders(template.channel, template.variants, default_locale=template.default_locale)
        except TemplateRenderError as exc:
            raise CampaignError(N_("Step %(step)s's template “%(name)s” cannot be rendered (%(reason)s); fix the "
                                   "template first."), field=f"steps.{i}.template_id", step=i + 1, name=template.name,
                                reason=exc) from None
    ab_variants.check_renders(session, data)


_FIELDS = ("name", "channel", "segment_id", "sender", "schedule_kind", "send_at", "cron", "time_zone", "trigger_kind",
           "trigger_delay_minutes", "quiet_hours_start", "quiet_hours_end", "frequency_cap_max", "frequency_cap_days")


def create_campaign(session: Session, *, data: CampaignIn, created_by: int | None = None) -> Campaign:
    """A new draft campaign with its steps."""
    hub = session.info["hub"]
    _check(session, hub, data, future_from=clock.now())
    campaign = Campaign(**{f: getattr(data, f) for f in _FIELDS}, created_by=created_by,
                        status=CampaignStatus.DRAFT)
    session.add(campaign)
    session.flush()
    _write_steps(session, campaign, data.steps)
    ab_variants.write(session, campaign, data.ab_test)
    return campaign


def update_campaign(session: Session, *, campaign: Campaign, data: CampaignIn) -> Campaign:
    """Replace a draft, scheduled or paused campaign's settings; a scheduled one is rescheduled."""
    if campaign.status not in EDITABLE:
        raise CampaignError(N_("This campaign is %(state)s and cannot be changed; duplicate it instead."),
                            status=409, state=campaign.status)
    hub = session.info["hub"]
    has_runs = session.scalar(select(CampaignRun.id).where(CampaignRun.campaign_id == campaign.id).limit(1))
    # Once a run went out, its time is history and may stay as it was.
    _check(session, hub, data, future_from=clock.now() if has_runs is None else None)
    if has_runs is not None and (data.channel != campaign.channel or len(data.steps) < len(steps_of(session, campaign.id))):
        raise CampaignError(N_("A campaign that has sent cannot change its channel or drop steps; duplicate it instead."),
                            status=409)
    if has_runs is not None and _test_shape(data.ab_test) != _test_shape(ab_variants.read(session, campaign)):
        raise CampaignError(N_("A campaign whose A/B test has started cannot change the test; duplicate it instead."),
                            field="ab_test", status=409)
    for f in _FIELDS:
        setattr(campaign, f, getattr(data, f))
    campaign.updated_at = clock.now()
    for step in steps_of(session, campaign.id):  # type: ignore[arg-type]
        session.delete(step)
    session.flush()
    _write_steps(session, campaign, data.steps)
    ab_variants.write(session, campaign, data.ab_test)
    if campaign.status == CampaignStatus.SCHEDULED:
        campaign.next_run_at = first_run_at(campaign, now=clock.now())
    return campaign


def _test_shape(test: ABTestIn | None) -> Any:
    # The seed is kept when a form leaves it out, so it does not count as a change.
    return None if test is None else test.model_dump(exclude={"seed"})


def _write_steps(session: Session, campaign: Campaign, steps: list[StepIn]) -> None:
    for position, step in enumerate(steps, start=1):
        session.add(CampaignStep(campaign_id=campaign.id, position=position, template_id=step.template_id,  # type: ignore[arg-type]
                                 delay_minutes=0 if position == 1 else step.delay_minutes,
                                 skip_if_replied=step.skip_if_replied))
    session.flush()


def as_input(session: Session, campaign: Campaign) -> CampaignIn:
    """The campaign's settings in the shape the editor and the API submit."""
    steps = [StepIn(template_id=s.template_id, delay_minutes=s.delay_minutes, skip_if_replied=s.skip_if_replied)
             for s in steps_of(session, campaign.id)]  # type: ignore[arg-type]
    return CampaignIn(**{f: getattr(campaign, f) for f in _FIELDS}, steps=steps,
                      ab_test=ab_variants.read(session, campaign))


def first_run_at(campaign: Campaign, *, now: datetime) -> datetime | None:
    kind = ScheduleKind(campaign.schedule_kind)
    if kind == ScheduleKind.NOW:
        return now
    if kind == ScheduleKind.AT:
        return campaign.send_at
    if kind == ScheduleKind.CRON:
        return next_cron_time(campaign.cron or "", campaign.time_zone, after=now)
    return None


def schedule(session: Session, *, campaign: Campaign) -> Campaign:
    """Start a draft: now, at its time, on its cron, or (triggered) listening for its event."""
    if campaign.status != CampaignStatus.DRAFT:
        raise CampaignError(N_("Only a draft can be scheduled; this campaign is %(state)s."), status=409,
                            state=campaign.status)
    check_ready(session, campaign=campaign)
    now = clock.now()
    if campaign.schedule_kind == ScheduleKind.TRIGGER:
        campaign.status = CampaignStatus.RUNNING
        campaign.next_run_at = None
    else:
        campaign.next_run_at = first_run_at(campaign, now=now)
        if campaign.next_run_at is None:
            raise CampaignError(N_("This cron expression never fires again."), field="cron")
        campaign.status = CampaignStatus.SCHEDULED
    campaign.updated_at = now
    return campaign


def check_ready(session: Session, *, campaign: Campaign) -> None:
    """CampaignError if the campaign could not start now (its settings, its channel, its templates);
    changes nothing, so a draft's page can say beforehand what scheduling would refuse."""
    hub = session.info["hub"]
    data = as_input(session, campaign)
    _check(session, hub, data, future_from=clock.now())
    require_sending_channel(hub, campaign.channel)
    _check_templates_render(session, data)


def run_now(session: Session, *, campaign: Campaign) -> Campaign:
    """Make a draft or scheduled (non-triggered) campaign due at once."""
    if campaign.schedule_kind == ScheduleKind.TRIGGER:
        raise CampaignError(N_("A triggered campaign runs when its event happens."), status=409)
    if campaign.status == CampaignStatus.DRAFT:
        schedule(session, campaign=campaign)
    if campaign.status not in ACTIVE:
        raise CampaignError(N_("This campaign is %(state)s and cannot run."), status=409, state=campaign.status)
    require_sending_channel(session.info["hub"], campaign.channel)
    campaign.next_run_at = clock.now()
    return campaign


def _campaign_deliveries(campaign: Campaign) -> Any:
    runs = select(CampaignRun.id).where(CampaignRun.campaign_id == campaign.id).scalar_subquery()
    return of_runs(runs)


def pause(session: Session, *, campaign: Campaign) -> int:
    """Stop sending: no more runs, recipients or drip steps, and queued deliveries held; how many held."""
    if campaign.status not in ACTIVE:
        raise CampaignError(N_("Only a scheduled or running campaign can be paused; this one is %(state)s."),
                            status=409, state=campaign.status)
    _lock(session, campaign)
    campaign.status = CampaignStatus.PAUSED
    campaign.updated_at = clock.now()
    d = Delivery.__table__
    held = session.execute(
        update(d).where(_campaign_deliveries(campaign), d.c.status == DeliveryStatus.QUEUED)
        .values(send_after=HOLD_UNTIL, updated_at=clock.now())
    ).rowcount
    return held or 0


def resume(session: Session, *, campaign: Campaign) -> int:
    """Carry on where a pause stopped: held deliveries go, the run goes on; how many released."""
    if campaign.status != CampaignStatus.PAUSED:
        raise CampaignError(N_("Only a paused campaign can be resumed; this one is %(state)s."), status=409,
                            state=campaign.status)
    require_sending_channel(session.info["hub"], campaign.channel)
    now = clock.now()
    _lock(session, campaign)
    if campaign.schedule_kind == ScheduleKind.TRIGGER:
        campaign.status = CampaignStatus.RUNNING
    else:
        open_runs = session.scalar(select(CampaignRun.id).where(
            CampaignRun.campaign_id == campaign.id,
            CampaignRun.status.in_([RunStatus.PENDING, RunStatus.MATERIALISING, RunStatus.SENDING])).limit(1))
        recurring = campaign.schedule_kind == ScheduleKind.CRON
        campaign.status = CampaignStatus.RUNNING if open_runs is not None and not recurring else CampaignStatus.SCHEDULED
        if recurring and campaign.next_run_at is not None and campaign.next_run_at < now:
            # Times missed while paused are not made up, one after another: the next one is from now.
            campaign.next_run_at = next_cron_time(campaign.cron or "", campaign.time_zone, after=now)
        if open_runs is None and campaign.next_run_at is None and not recurring:
            campaign.next_run_at = now  # paused before its first run came due
    if campaign.ab_decide_at is not None and campaign.ab_decided_at is None:
        # The test's messages were held: its wait starts again from the resume.
        campaign.ab_decide_at = max(campaign.ab_decide_at, now + timedelta(minutes=campaign.ab_wait_minutes or 0))
    campaign.updated_at = now
    d = Delivery.__table__
    released = session.execute(
        update(d).where(_campaign_deliveries(campaign), d.c.status == DeliveryStatus.QUEUED,
                        d.c.send_after >= HOLD_UNTIL)
        .values(send_after=now, updated_at=now)
    ).rowcount
    return released or 0


def cancel(session: Session, *, campaign: Campaign) -> int:
    """Stop for good: open runs cancelled, queued deliveries cancelled; how many deliveries."""
    if campaign.status in (CampaignStatus.COMPLETED, CampaignStatus.CANCELLED):
        raise CampaignError(N_("This campaign is already %(state)s."), status=409, state=campaign.status)
    from hub import outbox

    _lock(session, campaign)
    now = clock.now()
    campaign.status = CampaignStatus.CANCELLED
    campaign.next_run_at = None
    campaign.updated_at = now
    cancelled = 0
    runs = session.scalars(select(CampaignRun).where(CampaignRun.campaign_id == campaign.id)).all()
    for run in runs:
        cancelled += outbox.cancel_where(session, ids=run_deliveries([run.id]))
        if run.status not in (RunStatus.COMPLETED, RunStatus.CANCELLED):
            run.status = RunStatus.CANCELLED
            run.finished_at = now
    return cancelled


def duplicate(session: Session, *, campaign: Campaign, created_by: int | None = None, name: str | None = None) -> Campaign:
    """A draft copy with the same settings and steps (and no runs)."""
    data = as_input(session, campaign)
    copy = Campaign(**{f: getattr(data, f) for f in _FIELDS}, status=CampaignStatus.DRAFT, created_by=created_by)
    copy.name = (name or f"{campaign.name} (copy)")[:200]
    session.add(copy)
    session.flush()
    _write_steps(session, copy, data.steps)
    if data.ab_test is not None:
        data.ab_test.seed = None  # a copy is a new test: a new split
    ab_variants.write(session, copy, data.ab_test)
    return copy


def _lock(session: Session, campaign: Campaign) -> None:
    # Serialises with a materialisation batch, which locks the same row while it writes.
    session.execute(select(Campaign.id).where(Campaign.id == campaign.id).with_for_update())


def list_campaigns(session: Session, *, status: str | None = None, limit: int = 100, offset: int = 0) -> list[Campaign]:
    query = select(Campaign).order_by(Campaign.id.desc()).limit(limit).offset(offset)
    if status:
        query = query.where(Campaign.status == status)
    return list(session.scalars(query).all())


# Built once: it runs for every new inbound event. Ids first, as a plain query (a third cheaper
# than loading objects), since most events trigger nothing; the campaigns only when there are some.
_ACTIVE_TRIGGERED = select(Campaign.__table__.c.id).where(
    Campaign.__table__.c.status == CampaignStatus.RUNNING.value,
    Campaign.__table__.c.schedule_kind == ScheduleKind.TRIGGER.value,
    Campaign.__table__.c.trigger_kind == bindparam("kind"))


def active_triggered(session: Session, *, kind: str) -> list[Campaign]:
    ids = session.execute(_ACTIVE_TRIGGERED, {"kind": kind}).scalars().all()
    if not ids:
        return []
    return list(session.scalars(select(Campaign).where(Campaign.id.in_(ids)).order_by(Campaign.id)).all())
