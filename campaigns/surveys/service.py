"""Surveys as marketers define them, and the invitations' life: scheduled, sent, reminded, skipped.

Every step is a due row: a trigger writes an invitation with `send_at` inside the event's
transaction; the `surveys.send_due` tick sends what is due (one short transaction per invitation:
status, outbox row and timeline event commit together); `surveys.send_reminders` sends the one
reminder. Idempotency keys on the outbox rows make a repeated tick or a restart send nothing twice.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from campaigns.surveys import messages
from campaigns.surveys.models import InvitationStatus, Survey, SurveyInvitation, SurveyStatus
from campaigns.surveys.questions import Question, Texts, parse_questions
from hub import audit, clock, outbox
from hub.auth import Principal
from hub.channel import MarketingContext
from hub.channel_hooks import contact_channels
from hub.contacts import consent_status, identities_of
from hub.db import insert_ignore, is_postgres
from hub.ingest import ContactNotFound, get_contact
from hub.models import ConsentStatus, Contact, Purpose, TimelineEvent, User

if TYPE_CHECKING:
    from hub.runtime import Hub

log = logging.getLogger("campaigns.surveys")

SURVEYS_CHANNEL = "surveys"
TRIGGER_KINDS = ("order.completed", "meeting.completed", "task.completed")


def send_kind(channel: str) -> str | None:
    """The identity kind a survey invitation on `channel` goes to; None for a channel that cannot invite
    (every installed channel that sends to a contact identity can: email, SMS, Telegram…)."""
    found = contact_channels().get(channel)
    return found.identity_kind if found is not None else None


BATCH = 200


class SurveyIn(BaseModel):
    """A survey as the API and the builder submit it."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    title: Texts = Field(default_factory=Texts)
    intro: Texts = Field(default_factory=Texts)
    thanks: Texts = Field(default_factory=Texts)
    questions: list[Question] = Field(min_length=1, max_length=30)
    trigger_kind: str | None = Field(default=None, description="order.completed, meeting.completed, task.completed")
    delay_minutes: int = Field(default=0, ge=0, le=60 * 24 * 90)
    channels: list[str] = Field(default_factory=lambda: ["email", "sms"], min_length=1, max_length=10)
    reminder_days: int | None = Field(default=None, ge=1, le=60)
    expiry_days: int = Field(default=14, ge=1, le=365)
    cooldown_days: int = Field(default=30, ge=0, le=365)
    detractor_nps_max: int = Field(default=6, ge=0, le=10)
    detractor_csat_max: int = Field(default=2, ge=1, le=5)
    follow_up_user_id: int | None = None
    closes_at: AwareDatetime | None = None
    status: SurveyStatus = SurveyStatus.DRAFT

    @field_validator("trigger_kind")
    @classmethod
    def _kind(cls, value: str | None) -> str | None:
        if value in (None, ""):
            return None
        if value not in TRIGGER_KINDS:
            raise ValueError(f"trigger_kind must be one of {', '.join(TRIGGER_KINDS)}")
        return value

    @field_validator("channels")
    @classmethod
    def _channels(cls, value: list[str]) -> list[str]:
        if any(send_kind(v) is None for v in value) or len(set(value)) != len(value):
            raise ValueError(f"channels are installed channels that send to a contact ({', '.join(contact_channels())}), "
                             "each once, in order of preference")
        return value

    @field_validator("questions")
    @classmethod
    def _questions(cls, value: list[Question]) -> list[Question]:
        return parse_questions([q.model_dump(mode="json") for q in value])


class InvalidSurvey(ValueError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def _apply(session: Session, survey: Survey, data: SurveyIn) -> None:
    if data.follow_up_user_id is not None:
        user = session.get(User, data.follow_up_user_id)
        if user is None or not user.is_active:
            raise InvalidSurvey("follow_up_user_id", f"user {data.follow_up_user_id} does not exist or is deactivated")
    values = data.model_dump(mode="json")
    values["closes_at"] = data.closes_at
    values["status"] = data.status.value
    for name, value in values.items():
        setattr(survey, name, value)
    survey.updated_at = clock.now()


def create_survey(session: Session, *, actor: Principal, data: SurveyIn) -> Survey:
    """A new survey (draft unless `data.status` says otherwise); audited."""
    survey = Survey(name=data.name, created_by=actor.actor)
    _apply(session, survey, data)
    session.add(survey)
    session.flush()
    audit.record(session, actor=actor, action="survey.created", entity="survey", entity_id=survey.id,
                 changes={"name": [None, survey.name], "status": [None, survey.status]})
    return survey


def update_survey(session: Session, *, survey: Survey, actor: Principal, data: SurveyIn) -> Survey:
    """Replace the survey's definition; answers already given keep their keys."""
    before = {"name": survey.name, "status": survey.status, "trigger_kind": survey.trigger_kind}
    _apply(session, survey, data)
    session.flush()
    after = {"name": survey.name, "status": survey.status, "trigger_kind": survey.trigger_kind}
    audit.record(session, actor=actor, action="survey.updated", entity="survey", entity_id=survey.id,
                 changes=audit.diff(before, after))
    return survey


def survey_in(survey: Survey) -> SurveyIn:
    """The stored survey as its editable definition."""
    return SurveyIn.model_validate({
        "name": survey.name, "title": survey.title or {}, "intro": survey.intro or {}, "thanks": survey.thanks or {},
        "questions": survey.questions, "trigger_kind": survey.trigger_kind, "delay_minutes": survey.delay_minutes,
        "channels": survey.channels, "reminder_days": survey.reminder_days, "expiry_days": survey.expiry_days,
        "cooldown_days": survey.cooldown_days, "detractor_nps_max": survey.detractor_nps_max,
        "detractor_csat_max": survey.detractor_csat_max, "follow_up_user_id": survey.follow_up_user_id,
        "closes_at": survey.closes_at, "status": survey.status,
    })


def is_open(survey: Survey, *, now: datetime | None = None) -> bool:
    """Active and not past its closing time: links can be answered and answers edited."""
    now = now or clock.now()
    return survey.status == SurveyStatus.ACTIVE and (survey.closes_at is None or survey.closes_at > now)


# --- scheduling ------------------------------------------------------------------------------

def order_context(event: TimelineEvent) -> dict[str, Any]:
    """The attributes of the cause the results break answers down by (order source, amount, items)."""
    data = event.data or {}
    context: dict[str, Any] = {"kind": event.kind}
    if data.get("source"):
        context["source"] = str(data["source"])[:64]
    order = data.get("order") if isinstance(data.get("order"), dict) else None
    if order:
        context["order_id"] = str(order.get("order_id", ""))[:200]
        context["amount"] = str(order.get("amount", ""))[:30]
        context["currency"] = str(order.get("currency", ""))[:3]
        context["items"] = len(order.get("items") or [])
    return context


def surveyed_recently(session: Session, *, contact_id: int, around: datetime, days: int,
                      exclude_id: int | None = None) -> bool:
    """Whether any survey reached (or is about to reach) the contact within `days` of `around`."""
    if days <= 0:
        return False
    window = timedelta(days=days)
    when = func.coalesce(SurveyInvitation.sent_at, SurveyInvitation.send_at)
    stmt = select(SurveyInvitation.id).where(
        SurveyInvitation.contact_id == contact_id,
        SurveyInvitation.status.in_([InvitationStatus.SCHEDULED, InvitationStatus.SENT, InvitationStatus.ANSWERED]),
        when > around - window, when < around + window,
    )
    if exclude_id is not None:
        stmt = stmt.where(SurveyInvitation.id != exclude_id)
    return session.scalars(stmt.limit(1)).first() is not None


def schedule_invitation(session: Session, *, survey: Survey, contact_id: int, cause: str, send_at: datetime,
                        source_event_id: int | None = None, context: dict[str, Any] | None = None,
                        ) -> SurveyInvitation | None:
    """A scheduled invitation (None when the N-day rule or an earlier identical cause stops it)."""
    contact_id = get_contact(session, contact_id).id
    if surveyed_recently(session, contact_id=contact_id, around=send_at, days=survey.cooldown_days):
        return None
    new_id = insert_ignore(session, SurveyInvitation, dict(
        survey_id=survey.id, contact_id=contact_id, cause=cause[:200], nonce=secrets.token_urlsafe(24),
        status=InvitationStatus.SCHEDULED.value, send_at=send_at, source_event_id=source_event_id,
        context=context or {}, created_at=clock.now(),
        expires_at=send_at + timedelta(days=survey.expiry_days),
    ), ["survey_id", "contact_id", "cause"])
    return None if new_id is None else session.get(SurveyInvitation, new_id)


def on_event(session: Session, *, event: TimelineEvent, contact: Contact) -> None:
    """Trigger: a sale, a completed meeting or a closed task schedules the surveys waiting for it."""
    surveys = session.scalars(select(Survey).where(Survey.trigger_kind == event.kind,
                                                   Survey.status == SurveyStatus.ACTIVE)).all()
    now = clock.now()
    for survey in surveys:
        if not is_open(survey, now=now):
            continue
        due = event.occurred_at + timedelta(minutes=survey.delay_minutes)
        if due + timedelta(days=survey.expiry_days) <= now:
            continue  # an old sale imported late: too long ago to ask about
        schedule_invitation(session, survey=survey, contact_id=contact.id, cause=f"event:{event.id}",
                            send_at=max(due, now), source_event_id=event.id, context=order_context(event))


def send_to_contacts(session: Session, *, survey: Survey, contact_ids: Iterable[int], batch: str,
                     send_at: datetime | None = None, actor: Principal | None = None) -> tuple[int, int]:
    """Manual send: schedule the survey for these contacts; (scheduled, left out by the N-day rule)."""
    if not is_open(survey):
        raise InvalidSurvey("status", "only an active survey can be sent")
    send_at = send_at or clock.now()
    scheduled = skipped = 0
    for contact_id in contact_ids:
        try:
            invitation = schedule_invitation(session, survey=survey, contact_id=contact_id, cause=f"manual:{batch}",
                                             send_at=send_at, context={"kind": "manual"})
        except ContactNotFound:
            invitation = None
        if invitation is None:
            skipped += 1
        else:
            scheduled += 1
    if actor is not None:
        audit.record(session, actor=actor, action="survey.sent", entity="survey", entity_id=survey.id,
                     changes={"batch": [None, batch], "scheduled": [None, scheduled], "skipped": [None, skipped]})
    return scheduled, skipped


# --- sending ---------------------------------------------------------------------------------

def choose_channel(session: Session, hub: Hub, *, survey: Survey, contact_id: int) -> tuple[str, str] | None:
    """(channel, address) to invite by: in the survey's order of preference, channels whose identity the
    contact has and whose consent is not withdrawn; one the contact explicitly agreed to wins."""
    idents = identities_of(session, [contact_id])[contact_id]
    candidates: list[tuple[bool, int, str, str]] = []
    for position, name in enumerate(survey.channels or []):
        channel = hub.channels.get(name)
        kind = send_kind(name)
        if channel is None or not channel.configured or kind is None:
            continue
        address = next((i.value for i in idents if i.kind == kind), None)
        if address is None:
            continue
        consent = consent_status(session, contact_id=contact_id, channel=name, purpose=Purpose.MARKETING)
        if consent == ConsentStatus.WITHDRAWN:
            continue
        candidates.append((consent != ConsentStatus.GRANTED, position, name, address))
    if not candidates:
        return None
    _, _, name, address = min(candidates)
    return name, address


def _send(session: Session, hub: Hub, *, invitation: SurveyInvitation, survey: Survey, contact: Contact,
          reminder: bool) -> None:
    """Queue the invitation (or its reminder) and record it on the timeline, in the caller's transaction."""
    locale = contact.locale or hub.settings.default_locale
    name = contact.display_name if contact.display_name and "@" not in contact.display_name else ""
    assert invitation.channel is not None and invitation.address is not None
    adapter = hub.channel(invitation.channel)
    content = messages.content_for(hub.settings, survey, invitation, parts={p.name for p in adapter.parts},
                                   locale=locale, name=name, reminder=reminder)
    try:
        from campaigns.unsubscribe import unsubscribe_url
    except ImportError:  # the campaigns package brings unsubscribe links; without it none are given
        link = None
    else:
        link = unsubscribe_url(hub.settings, contact_id=contact.id, channel=invitation.channel)  # type: ignore[arg-type]
    # The channel words its own opt-out: List-Unsubscribe, STOP, Telegram's /stop and its button.
    content = adapter.decorate_marketing(content, MarketingContext(locale=locale, unsubscribe_url=link,
                                                                   recipient_name=name or None))
    # The delivery's own timeline event is the invitation's record: kind survey.invited (or
    # survey.reminded), carrying the survey and invitation ids. Quiet hours and the frequency cap
    # come from the hub's sending defaults, checked by the worker at send time.
    outbox.enqueue(session, channel=invitation.channel, address=invitation.address, content=content,
                   idempotency_key=f"survey:{invitation.id}:{'reminder' if reminder else 'invitation'}",
                   contact_id=contact.id, purpose=Purpose.MARKETING,
                   event_kind="survey.reminded" if reminder else "survey.invited",
                   event_data={"survey_id": survey.id, "invitation_id": invitation.id})


def _skip(invitation: SurveyInvitation, reason: str) -> None:
    invitation.status = InvitationStatus.SKIPPED.value
    invitation.skip_reason = reason[:300]


def send_one(session: Session, hub: Hub, *, invitation_id: int, now: datetime) -> str | None:
    """Send one due invitation in the caller's transaction; its new status (None if someone else did)."""
    stmt = select(SurveyInvitation).where(SurveyInvitation.id == invitation_id,
                                          SurveyInvitation.status == InvitationStatus.SCHEDULED,
                                          SurveyInvitation.send_at <= now)
    if is_postgres(session):
        stmt = stmt.with_for_update(skip_locked=True)
    invitation = session.scalars(stmt).first()
    if invitation is None:
        return None
    survey = session.get(Survey, invitation.survey_id)
    assert survey is not None
    contact = get_contact(session, invitation.contact_id)
    if not is_open(survey, now=now):
        _skip(invitation, "the survey is not active")
    elif survey.cooldown_days and _sent_recently(session, invitation, survey, now):
        _skip(invitation, f"surveyed within the last {survey.cooldown_days} days")
    else:
        chosen = choose_channel(session, hub, survey=survey, contact_id=contact.id)
        if chosen is None:
            _skip(invitation, "no channel the contact can be reached on with consent")
        else:
            invitation.channel, invitation.address = chosen
            invitation.contact_id = contact.id
            invitation.status = InvitationStatus.SENT.value
            invitation.sent_at = now
            invitation.expires_at = now + timedelta(days=survey.expiry_days)
            if survey.reminder_days:
                invitation.remind_at = now + timedelta(days=survey.reminder_days)
            session.flush()
            _send(session, hub, invitation=invitation, survey=survey, contact=contact, reminder=False)
    session.flush()
    return invitation.status


def _sent_recently(session: Session, invitation: SurveyInvitation, survey: Survey, now: datetime) -> bool:
    # At send time only invitations that actually went out (or answered) count: two scheduled ones
    # for the same contact must not cancel each other; the first one due goes, the later is skipped.
    window = now - timedelta(days=survey.cooldown_days)
    return session.scalars(select(SurveyInvitation.id).where(
        SurveyInvitation.contact_id == invitation.contact_id, SurveyInvitation.id != invitation.id,
        SurveyInvitation.sent_at.is_not(None), SurveyInvitation.sent_at > window,
    ).limit(1)).first() is not None


def send_due(hub: Hub, *, now: datetime | None = None, limit: int = BATCH) -> int:
    """The `surveys.send_due` tick: send invitations whose time has come; how many were handled."""
    now = now or clock.now()
    with hub.session(read_only=True) as session:
        ids = session.scalars(select(SurveyInvitation.id).where(
            SurveyInvitation.status == InvitationStatus.SCHEDULED, SurveyInvitation.send_at <= now,
        ).order_by(SurveyInvitation.send_at, SurveyInvitation.id).limit(limit)).all()
    handled = 0
    for invitation_id in ids:
        try:
            with hub.session() as session, session.begin():
                if send_one(session, hub, invitation_id=invitation_id, now=now) is not None:
                    handled += 1
        except Exception:  # one bad row must not stop the others; it stays due and is retried
            log.exception("survey invitation %s could not be sent", invitation_id)
    return handled


def send_reminders(hub: Hub, *, now: datetime | None = None, limit: int = BATCH) -> int:
    """The `surveys.send_reminders` tick: the one reminder to invitations still unanswered."""
    now = now or clock.now()
    with hub.session(read_only=True) as session:
        ids = session.scalars(select(SurveyInvitation.id).where(
            SurveyInvitation.status == InvitationStatus.SENT, SurveyInvitation.remind_at <= now,
            SurveyInvitation.reminded_at.is_(None),
        ).order_by(SurveyInvitation.remind_at, SurveyInvitation.id).limit(limit)).all()
    sent = 0
    table = SurveyInvitation.__table__
    for invitation_id in ids:
        try:
            with hub.session() as session, session.begin():
                # The conditional UPDATE is the claim: of two workers (or a tick after a restart)
                # only one sees the row still unreminded.
                claimed = session.execute(
                    update(table).where(table.c.id == invitation_id, table.c.status == InvitationStatus.SENT,
                                        table.c.reminded_at.is_(None))
                    .values(reminded_at=now)
                ).rowcount
                if not claimed:
                    continue
                invitation = session.get(SurveyInvitation, invitation_id)
                survey = session.get(Survey, invitation.survey_id)  # type: ignore[union-attr]
                assert invitation is not None and survey is not None
                if not is_open(survey, now=now) or (invitation.expires_at and invitation.expires_at <= now):
                    continue  # nothing to remind of; reminded_at keeps it from coming back
                contact = get_contact(session, invitation.contact_id)
                _send(session, hub, invitation=invitation, survey=survey, contact=contact, reminder=True)
                sent += 1
        except Exception:
            log.exception("reminder of survey invitation %s could not be sent", invitation_id)
    return sent


def counts_by_status(session: Session, *, survey_id: int) -> dict[str, int]:
    return dict(session.execute(select(SurveyInvitation.status, func.count()).where(
        SurveyInvitation.survey_id == survey_id).group_by(SurveyInvitation.status)).all())
