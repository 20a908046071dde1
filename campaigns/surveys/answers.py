"""Answering through a link: who the link is for, saving answers, and closing the loop.

One response per invitation: the row is upserted on its unique invitation id (INSERT … ON CONFLICT
DO UPDATE), which waits for a concurrent save of the same invitation to commit and then updates the
row as it stands, so twenty simultaneous submissions end in one row holding the last answers. The
first complete answer posts `survey.answered` on the contact's timeline; an edit updates that event
rather than adding another, so the timeline and the segments built on `data.nps` always show the
answer in force. A detractor opens one follow-up task, once.
"""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from sqlalchemy import bindparam, case, func, literal_column, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from campaigns.surveys.links import read_token
from campaigns.surveys.models import InvitationStatus, Survey, SurveyInvitation, SurveyResponse
from campaigns.surveys.questions import Question, clean_answers, describe, headline_scores, parse_questions
from campaigns.surveys.service import SURVEYS_CHANNEL, is_open
from hub import clock
from hub.auth import SYSTEM
from hub.driver_reads import DriverRead
from hub.event_updates import publish_updated
from hub.ingest import InboundEvent, post_events
from hub.models import Contact, Direction, Task, TimelineEvent
from hub.signing import BadLink
from hub.tasks import InvalidTask, NewTask, create_tasks_posting
from hub.web import i18n

if TYPE_CHECKING:
    from hub.settings import Settings


class LinkProblem(StrEnum):
    INVALID = "invalid"  # forged, truncated, or for no invitation we know
    EXPIRED = "expired"  # past its expiry, never answered
    CLOSED = "closed"  # the survey no longer takes answers


class LinkRefused(Exception):
    def __init__(self, problem: LinkProblem) -> None:
        super().__init__(problem.value)
        self.problem = problem


@dataclass
class Link:
    """The invitation a link opens, with its survey, contact and response (None before any save), as
    read-only rows of their tables (each column an attribute, as on the models' objects; the
    invitation's and survey's columns in `_UNREAD` left out), and the survey's questions parsed."""

    invitation: Any  # a row of survey_invitation
    survey: Any  # of survey
    contact: Any  # of contact
    response: Any | None  # of survey_response
    questions: list[Question]

    @property
    def editable(self) -> bool:
        return is_open(self.survey)


# The statements of every page view and answer are built once, with bound parameters: building one
# costs more than running it (an upsert's `excluded` alone takes half a millisecond), and SQLAlchemy
# keeps each one's compiled SQL.
_INVITATION, _RESPONSE, _EVENT = SurveyInvitation.__table__, SurveyResponse.__table__, TimelineEvent.__table__
# Every page view and answer reads the link: the four rows in one statement of the tables' columns
# (Core: no ORM objects built and loaded into the session, ~0.3 ms of CPU less a read, docs/benchmarks.md
# "Survey page", issue 24 session 13), each table's columns then a row of their own.
_SURVEY, _CONTACT = Survey.__table__, Contact.__table__  # type: ignore[attr-defined]
# Not read: the invitation's sending and the survey's scheduling, which no page view or answer uses
# (a third of the statement's columns and three of its JSON values: each column costs psycopg a
# description and SQLAlchemy a result column on every read, docs/benchmarks.md "Survey page", session
# 15). The contact stays whole: the answer's events hand it to every trigger.
_UNREAD = {"survey_invitation": {"cause", "send_at", "sent_at", "remind_at", "reminded_at", "channel", "address",
                                 "skip_reason", "source_event_id", "context", "created_at"},
           "survey": {"trigger_kind", "delay_minutes", "channels", "reminder_days", "expiry_days", "cooldown_days",
                      "created_by", "created_at", "updated_at"}}
_LINK_COLUMNS = {table: [c for c in table.c if c.name not in _UNREAD.get(table.name, ())]
                 for table in (_INVITATION, _SURVEY, _CONTACT, _RESPONSE)}
_LINK_PARTS = tuple((namedtuple(table.name, [c.name for c in columns]), len(columns))  # type: ignore[misc]
                    for table, columns in _LINK_COLUMNS.items())
_LINK_FROM = (_INVITATION.join(_SURVEY, _SURVEY.c.id == _INVITATION.c.survey_id)
              .join(_CONTACT, _CONTACT.c.id == _INVITATION.c.contact_id)
              .outerjoin(_RESPONSE, _RESPONSE.c.invitation_id == _INVITATION.c.id))
_LINK = (select(*(column.label(f"{table.name}_{column.name}")
                  for table, columns in _LINK_COLUMNS.items() for column in columns))
         .select_from(_LINK_FROM).where(_INVITATION.c.id == bindparam("invitation_id")))
# On PostgreSQL it runs straight on the driver's cursor (hub.driver_reads: SQLAlchemy's execution of
# this 45-column statement, its result metadata and psycopg's description of every column, cost more
# than the read itself; docs/benchmarks.md "Survey page", session 16).
_LINK_READ = DriverRead(_LINK)


def _link_rows(row: Sequence[Any]) -> list[Any]:
    """The link's one row as a row of each table (None for a response not there: its id is NULL)."""
    parts, start = [], 0
    for make, width in _LINK_PARTS:
        values = row[start:start + width]
        parts.append(make._make(values) if values[0] is not None else None)
        start += width
    return parts
_MARK_ANSWERED = (update(_INVITATION).where(_INVITATION.c.id == bindparam("invitation_id"))
                  .values(status=InvitationStatus.ANSWERED.value))
_EDIT_EVENT = (update(_EVENT).where(_EVENT.c.id == bindparam("event_id"))
               .values(text=bindparam("summary"), data=bindparam("event_data", type_=_EVENT.c.data.type)))
_LINK_RESPONSE = (update(_RESPONSE).where(_RESPONSE.c.id == bindparam("response_id"))
                  .values(event_id=bindparam("new_event_id"), follow_up_task_id=bindparam("task_id")))
_TASK_SOURCE = (update(Task.__table__).where(Task.__table__.c.id == bindparam("task_id"))
                .values(source_event_id=bindparam("new_event_id")))
# PostgreSQL: the response linked to its event (and new task, and the task to the event) in one
# statement, a SELECT of data-modifying CTEs (each runs once, read or not) so that it can run on the
# driver's cursor like the link's read and the upsert (DriverRead: SQLAlchemy's execution of a cached
# statement cost more than sending it, docs/benchmarks.md "Survey page", session 16).
_PG_LINK_RESPONSE = {task: DriverRead(select(literal_column("1").label("linked")).add_cte(_LINK_RESPONSE.cte("linked"))
                                      .add_cte(_TASK_SOURCE.cte("sourced")) if task else
                                      select(literal_column("1").label("linked")).add_cte(_LINK_RESPONSE.cte("linked")))
                     for task in (False, True)}
_SAVED = ("id", "answers", "completed", "nps", "csat", "edits", "event_id", "follow_up_task_id", "submitted_at")


def _upsert(insert: Any) -> Any:
    """The response's upsert in one dialect: the new row, or these answers saved over the row in place.

    A complete save over a complete row counts an edit; `completed` and `submitted_at` never go back,
    and a draft never lands on a row already sent (it returns no row): the page's draft request can
    reach the store after the answer it was typed toward, read before that answer committed, and
    would otherwise put older answers and the page's fallback language over what the customer sent.
    """
    columns = ("invitation_id", "survey_id", "contact_id", "answers", "completed", "nps", "csat", "locale",
               "submitted_at", "created_at", "updated_at")
    # The parameters are named `new_<column>`: in _upsert_with's statements, a parameter named after a
    # column of a table that a CTE updates would be added to that UPDATE's SET clause.
    stmt = insert(_RESPONSE).values({**{c: bindparam(f"new_{c}", type_=_RESPONSE.c[c].type) for c in columns},
                                     "edits": 0})
    old, new = _RESPONSE.c, stmt.excluded
    return stmt.on_conflict_do_update(index_elements=[old.invitation_id], set_={
        "answers": new.answers, "nps": new.nps, "csat": new.csat, "locale": new.locale,
        "updated_at": new.updated_at, "completed": old.completed | new.completed,
        "submitted_at": func.coalesce(old.submitted_at, new.submitted_at),
        "edits": old.edits + case((old.completed & new.completed, 1), else_=0),
    }, where=or_(~old.completed, new.completed)).returning(*(old[c] for c in _SAVED))


_UPSERT = {"postgresql": _upsert(postgresql.insert), "sqlite": _upsert(sqlite.insert)}


def _upsert_with(*, mark: bool, edit_event: bool) -> Any:
    """PostgreSQL: the upsert with the writes that follow it in one statement (data-modifying CTEs),
    a round trip each fewer: marking the invitation answered (a first complete answer), updating the
    answer's event in place (an edit whose event exists; `response_id` and `edits` from the row)."""
    saved = _UPSERT["postgresql"].cte("saved")
    stmt = select(*(saved.c[c] for c in _SAVED))
    if mark:
        stmt = stmt.add_cte(
            update(_INVITATION).where(_INVITATION.c.id == bindparam("new_invitation_id"),
                                      _INVITATION.c.status != InvitationStatus.ANSWERED.value)
            .values(status=InvitationStatus.ANSWERED.value).cte("marked"))
    if edit_event:
        row_data = func.jsonb_build_object(literal_column("'response_id'"), saved.c.id,
                                           literal_column("'edits'"), saved.c.edits)
        stmt = stmt.add_cte(
            update(_EVENT).where(_EVENT.c.id == saved.c.event_id)
            .values(text=bindparam("summary"),
                    data=bindparam("event_data", type_=postgresql.JSONB).op("||")(row_data))
            .cte("edited"))
    return stmt


# Each a SELECT of the upsert's CTE, run on the driver's cursor (see _PG_LINK_RESPONSE).
_PG_UPSERTS = {(mark, edit): DriverRead(_upsert_with(mark=mark, edit_event=edit))
               for mark in (False, True) for edit in (False, True)}


@dataclass
class SavedResponse:
    """The invitation's one response as a save left it."""

    id: int
    answers: dict[str, Any]
    completed: bool
    nps: int | None
    csat: int | None
    edits: int
    event_id: int | None
    follow_up_task_id: int | None
    submitted_at: datetime | None


def open_link(session: Session, settings: Settings, token: str, *, now: datetime | None = None) -> Link:
    """The invitation a token opens, with its survey, contact and response; LinkRefused otherwise.
    A save hands the contact's row to the events it posts (post_events' `contacts`), so it is read
    once, here, and no ORM object is built for it."""
    try:
        invitation_id, contact_id, survey_id, nonce = read_token(settings, token)
    except BadLink:
        raise LinkRefused(LinkProblem.INVALID) from None
    now = now or clock.now()
    row = _LINK_READ.first(session, {"invitation_id": invitation_id})
    if row is None:
        raise LinkRefused(LinkProblem.INVALID)
    invitation, survey, contact, response = _link_rows(row)
    # The nonce is compared as well as the signature: a link can be revoked by changing it.
    if (invitation.contact_id, invitation.survey_id, invitation.nonce) != (contact_id, survey_id, nonce):
        raise LinkRefused(LinkProblem.INVALID)
    if invitation.status in (InvitationStatus.SCHEDULED, InvitationStatus.SKIPPED, InvitationStatus.CANCELLED):
        raise LinkRefused(LinkProblem.INVALID)
    answered = response is not None and response.completed
    if not is_open(survey, now=now):
        if not answered:
            raise LinkRefused(LinkProblem.CLOSED)
    elif not answered and invitation.expires_at is not None and invitation.expires_at <= now:
        raise LinkRefused(LinkProblem.EXPIRED)
    return Link(invitation, survey, contact, response, parse_questions(survey.questions))


class AnswersInvalid(ValueError):
    def __init__(self, errors: dict[str, str], answers: dict[str, Any]) -> None:
        super().__init__(f"{len(errors)} answers need attention")
        self.errors = errors
        self.answers = answers


def save_answers(session: Session, *, link: Link, form: Mapping[str, Sequence[str]], complete: bool,
                 locale: str) -> SavedResponse | None:
    """Store the answers of the link's invitation (partial, or complete) in the caller's transaction.

    A completed response can only be replaced by another complete one (an edit), and only while
    the survey is open. AnswersInvalid carries the errors by question key; nothing is written then.
    """
    return write_answers(session, link=link, answers=check_answers(link, form, complete=complete), locale=locale)


@dataclass
class CheckedAnswers:
    """A form's answers, cleaned and valid, as they will be saved."""

    answers: dict[str, Any]
    complete: bool
    nps: int | None
    csat: int | None


def check_answers(link: Link, form: Mapping[str, Sequence[str]], *, complete: bool) -> CheckedAnswers:
    """The form's answers for the link's invitation; LinkRefused when it is closed, AnswersInvalid
    (the errors by question key) when some need attention."""
    if not link.editable:
        raise LinkRefused(LinkProblem.CLOSED)
    if link.response is not None and link.response.completed:
        complete = True  # once answered, every save is an edit of the whole answer
    answers, errors = clean_answers(link.questions, form, complete=complete)
    if errors:
        raise AnswersInvalid(errors, answers)
    nps, csat = headline_scores(link.questions, answers)
    return CheckedAnswers(answers, complete, nps, csat)


def writes_once(session: Session, *, link: Link, answers: CheckedAnswers) -> bool:
    """Whether write_answers takes a single statement (atomic without a transaction of its own): on
    PostgreSQL, an edit of an answer whose event exists and that opens no task."""
    response = link.response
    return (session.get_bind().dialect.name == "postgresql" and response is not None and response.completed
            and response.event_id is not None and link.invitation.status == InvitationStatus.ANSWERED
            and (response.follow_up_task_id is not None or not is_detractor(link.survey, answers)))


def write_answers(session: Session, *, link: Link, answers: CheckedAnswers, locale: str) -> SavedResponse | None:
    """Save checked answers in the caller's transaction, and close the loop for a complete answer;
    None for a draft that found the answer sent meanwhile (nothing is written)."""
    now = clock.now()
    invitation, complete = link.invitation, answers.complete
    params = dict(
        new_invitation_id=invitation.id, new_survey_id=invitation.survey_id, new_contact_id=invitation.contact_id,
        new_answers=answers.answers, new_completed=complete, new_nps=answers.nps, new_csat=answers.csat,
        new_locale=locale, new_submitted_at=now if complete else None, new_created_at=now, new_updated_at=now,
    )
    mark = complete and invitation.status != InvitationStatus.ANSWERED
    # What agents read is in the hub's language, not the customer's.
    summary = _summary(link, answers.answers, session.info["hub"].settings.default_locale) if complete else ""
    edited = link.response.event_id if complete and link.response is not None else None
    if session.get_bind().dialect.name == "postgresql":
        # The event of an answer already made is updated by the same statement (see _upsert_with).
        if edited is not None:
            params.update(summary=summary, event_data={
                "survey_id": link.survey.id, "invitation_id": invitation.id, "nps": answers.nps,
                "csat": answers.csat, "answers": answers.answers})
        row = _PG_UPSERTS[mark, edited is not None].first(session, params)
        mark = False
    else:
        row, edited = session.execute(_UPSERT["sqlite"], params).one_or_none(), None
    if row is None:  # a draft late for an answer already sent: that answer stands
        return None
    response = SavedResponse(*row)  # the columns of _SAVED, in order
    if complete:
        if mark:
            session.execute(_MARK_ANSWERED, {"invitation_id": invitation.id})
        _close_the_loop(session, link=link, response=response, summary=summary, edited_event_id=edited)
    return response


def _summary(link: Link, answers: Mapping[str, Any], locale: str) -> str:
    """One line per answer: "Question: answer", or "Question? answer" after a question mark."""
    return "\n".join(f"{question}{' ' if question.rstrip().endswith(('?', '!', ':')) else ': '}{answer}"
                     for question, answer in describe(link.questions, answers, locale))


def _close_the_loop(session: Session, *, link: Link, response: SavedResponse, summary: str,
                    edited_event_id: int | None) -> None:
    """Post or update the answer's event and open a detractor's task, once; `edited_event_id`: the
    event the save's own statement already updated."""
    locale = session.info["hub"].settings.default_locale
    data = {"survey_id": link.survey.id, "invitation_id": link.invitation.id, "response_id": response.id,
            "nps": response.nps, "csat": response.csat, "answers": response.answers, "edits": response.edits}
    linked = (response.event_id, response.follow_up_task_id)
    answered = None
    if response.event_id is None:
        # Posted below: with a detractor's task's event in one batch (one insert), or alone.
        answered = InboundEvent(
            channel=SURVEYS_CHANNEL, kind="survey.answered", direction=Direction.IN,
            contact_id=link.invitation.contact_id, external_id=f"survey-response:{response.id}",
            subject=link.survey.name, text=summary, data=data,
        )
    else:
        if response.event_id != edited_event_id:
            # An edit replaces the answer in force on the same event (see the module's docstring): one
            # statement, since what the live message says is known here (the answer's page is timed).
            session.execute(_EDIT_EVENT, {"event_id": response.event_id, "summary": summary, "event_data": data})
        # Agents' open pages hear of the edit (hub.event_updates' one shape), however it was written.
        publish_updated(session, event_id=response.event_id, contact_id=link.invitation.contact_id,
                        channel=SURVEYS_CHANNEL, kind="survey.answered", status=None)
    task_id = None
    along = [answered] if answered is not None else []
    if response.follow_up_task_id is None and is_detractor(link.survey, response):
        task_id, posted = _open_follow_up(session, link=link, response=response, summary=summary, locale=locale,
                                          along=along)
        response.follow_up_task_id = task_id
    elif along:
        posted = post_events(session, events=along, contacts={link.contact.id: link.contact})
    if along:
        [response.event_id] = posted
    if (response.event_id, response.follow_up_task_id) != linked:
        # Written by statements rather than through the ORM rows: that would cost a flush of its own.
        params = {"response_id": response.id, "new_event_id": response.event_id, "task_id": response.follow_up_task_id}
        if session.get_bind().dialect.name == "postgresql":
            _PG_LINK_RESPONSE[task_id is not None].first(session, params)
        else:
            if task_id is not None:
                session.execute(_TASK_SOURCE, params)
            session.execute(_LINK_RESPONSE, params)


def is_detractor(survey: Survey, response: SurveyResponse | SavedResponse | CheckedAnswers) -> bool:
    """NPS at or below the survey's threshold (6), or CSAT at or below its own (2)."""
    return ((response.nps is not None and response.nps <= survey.detractor_nps_max)
            or (response.csat is not None and response.csat <= survey.detractor_csat_max))


def _open_follow_up(session: Session, *, link: Link, response: SavedResponse, summary: str, locale: str,
                    along: Sequence[InboundEvent]) -> tuple[int, list[int]]:
    """The detractor's follow-up task's id (its source, the answer's event, is set by the caller), and
    the ids of the `along` events (the answer's, on a first answer), posted in the task's batch ahead
    of its own event: one insert for both, the answer's triggers first.

    Created as a plain row (`create_tasks_posting`), not an ORM object: nothing here reads the task
    back, and the object's construction and flush cost a fifth of a detractor's first answer
    (docs/benchmarks.md, "Survey page")."""
    _ = i18n.package_translations(locale, "surveys").gettext
    contact = link.contact
    title = _("Low survey score from %(name)s: %(survey)s") % {
        "name": contact.display_name, "survey": link.survey.name}
    notes = summary + "\n\n" + _("Answered on %(date)s.") % {
        "date": response.submitted_at.date().isoformat() if response.submitted_at else ""}
    task = None
    # The contact's owner first, then the survey's queue, then nobody (everyone's open tasks).
    # create_tasks_posting checks the assignee (InvalidTask for one deactivated or gone), so it is read once.
    for assignee in dict.fromkeys([contact.owner_id, link.survey.follow_up_user_id, None]):
        try:
            [task], posted = create_tasks_posting(session, actor=SYSTEM, events=along, tasks=[NewTask(
                title=title[:500], notes=notes, assignee_id=assignee, contact_id=link.invitation.contact_id)],
                contacts={contact.id: contact})
            break
        except InvalidTask:  # nothing was written, the answer's event included
            continue
    assert task is not None
    return task, posted

