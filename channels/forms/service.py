"""Forms and their submissions: defining a form, and turning one accepted submission into a contact,
consent records, a timeline event (which fires `form.submitted` triggers) and an optional task.

Service functions take the session first and never commit: the route owns the unit of work.
"""

from __future__ import annotations

import csv
import io
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, tuple_
from sqlalchemy.orm import Session

from hub import audit, clock
from hub.auth import Principal
from hub.contacts import (
    ContactConflict, IdentityIn, add_tags, create_contact, owner_of, record_consent, set_attributes,
    update_contact,
)
from hub.ingest import IdentityRef, InboundEvent, get_contact, post_event
from hub.models import ActorKind, ConsentStatus, Contact, Direction, IdentityKind, Purpose, User
from hub.tasks import create_task
from hub.timeline import InvalidCursor, Page
from hub.utm import utm_params

from channels.forms.definitions import Answers, FieldDef, FieldType, FormDefinition, check_answers, parse_fields
from channels.forms.models import Form, FormSubmission

EVENT_KIND = "form.submitted"
CHANNEL = "forms"
CLIENT_ID = re.compile(r"^[A-Za-z0-9_-]{8,64}$")


class InvalidAnswers(ValueError):
    """The visitor's answers do not fit the form; `errors` maps field names to N_() messages."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


class FormNotFound(LookupError):
    pass


@dataclass(frozen=True)
class Outcome:
    submission: FormSubmission
    replay: bool  # True when this client id had already been submitted: nothing new was stored


def form_principal(form: Form) -> Principal:
    """Who the audit log says changed a contact: the form, on the visitor's behalf."""
    return Principal(ActorKind.SYSTEM, None, f"form:{form.key}")


# --- defining forms -----------------------------------------------------------------------------

def _check_assignee(session: Session, user_id: int | None) -> None:
    if user_id is not None:
        user = session.get(User, user_id)
        if user is None or not user.is_active:
            raise ValueError("the follow-up task's assignee is not an active user")


def _apply(form: Form, definition: FormDefinition) -> None:
    values = definition.model_dump(mode="json")
    for name, value in values.items():
        setattr(form, name, value)


def create_form(session: Session, *, actor: Principal, definition: FormDefinition) -> Form:
    """A new form with a fresh unguessable key."""
    _check_assignee(session, definition.task_assignee_id)
    form = Form(name=definition.name, created_by=actor.actor)
    _apply(form, definition)
    session.add(form)
    session.flush()
    audit.record(session, actor=actor, action="form.create", entity="form", entity_id=form.id,
                 changes={"name": [None, form.name]})
    return form


def update_form(session: Session, *, form: Form, actor: Principal, definition: FormDefinition) -> dict[str, Any]:
    """Replace what the admin edits; returns the audit diff (the key never changes)."""
    _check_assignee(session, definition.task_assignee_id)
    before = definition_of(form).model_dump(mode="json")
    _apply(form, definition)
    form.updated_at = clock.now()
    session.flush()
    changes = audit.diff(before, definition.model_dump(mode="json"))
    if changes:
        audit.record(session, actor=actor, action="form.update", entity="form", entity_id=form.id, changes=changes)
    return changes


def definition_of(form: Form) -> FormDefinition:
    return FormDefinition(
        name=form.name, title=form.title, description=form.description, fields=parse_fields(form.fields),
        submit_label=form.submit_label, locale=form.locale, thank_you=form.thank_you, redirect_url=form.redirect_url,
        allowed_origins=form.allowed_origins, tags=form.tags, task_assignee_id=form.task_assignee_id,
        task_title=form.task_title, is_active=form.is_active,
    )


def form_by_key(session: Session, key: str, *, active_only: bool = True) -> Form:
    if not key or len(key) > 40:
        raise FormNotFound(key)
    form = session.scalars(select(Form).where(Form.key == key)).first()
    if form is None or (active_only and not form.is_active):
        raise FormNotFound(key)
    return form


# --- submissions --------------------------------------------------------------------------------

def clean_client_id(value: Any) -> str:
    """The client's own id for this submission (a retry repeats it), or a fresh one."""
    if isinstance(value, str) and CLIENT_ID.match(value):
        return value
    return uuid.uuid4().hex


def _display(f: FieldDef, value: Any) -> str:
    if f.type in (FieldType.CHECKBOX, FieldType.CONSENT):
        return "✓" if value else "✗"
    if f.type == FieldType.CHOICE:
        return next((o.label for o in f.options if o.value == value), str(value))
    return str(value)


def _summary(fields: list[FieldDef], values: dict[str, Any]) -> str:
    lines = [f"{f.label}: {_display(f, values[f.name])}" for f in fields
             if f.name in values and f.type != FieldType.CONSENT and values[f.name] not in ("", None)]
    return "\n".join(lines)


def _resolve_contact(session: Session, *, form: Form, answers: Answers, name: str | None, locale: str | None,
                     region: str) -> tuple[Contact, bool]:
    """The contact owning any of the given email/phone identities, or a new one: never a duplicate."""
    actor = form_principal(form)
    for _attempt in range(3):
        owner = owner_of(session, answers.identities)
        if owner is not None:
            return get_contact(session, owner.contact_id), False
        savepoint = session.begin_nested()
        try:
            contact = create_contact(
                session, actor=actor, region=region, display_name=name or "",
                identities=[IdentityIn(kind=IdentityKind(k), value=v) for k, v in answers.identities],
                locale=locale,
            )
        except ContactConflict:  # another submission created this person a moment ago: use theirs
            savepoint.rollback()
            continue
        savepoint.commit()
        return contact, True
    raise RuntimeError("could not resolve the contact after repeated concurrent conflicts")


def submit(session: Session, *, form: Form, raw: dict[str, Any], region: str, locale: str | None,
           source_url: str | None, address: str = "", user_agent: str | None = None,
           client_id: str | None = None) -> Outcome:
    """Store one accepted submission (at most once per client id) and everything that follows from it.

    Raises InvalidAnswers, before anything is written, when the answers do not fit the form.
    """
    fields = parse_fields(form.fields)
    answers = check_answers(fields, raw, region=region)
    if not answers.ok:
        raise InvalidAnswers(answers.errors)
    client_id = clean_client_id(client_id)
    existing = session.scalars(
        select(FormSubmission).where(FormSubmission.form_id == form.id, FormSubmission.client_id == client_id)
    ).first()
    if existing is not None:
        return Outcome(existing, replay=True)

    now = clock.now()
    by_name = {f.name: f for f in fields}
    name = next((answers.values.get(f.name) for f in fields if f.maps_to == "display_name"), None)
    contact, created = _resolve_contact(session, form=form, answers=answers, name=name, locale=locale, region=region)
    actor = form_principal(form)

    # What the form maps onto the contact. A known contact keeps its name and language.
    attributes: dict[str, Any] = {}
    tags: list[str] = list(form.tags)
    for field_name, value in answers.values.items():
        target = by_name[field_name].maps_to or ""
        if target.startswith("attribute:"):
            attributes[target.removeprefix("attribute:")] = value
        elif target == "tag" and value:
            tags.append(str(value))
        elif target.startswith("tag:") and value is True:
            tags.append(target.removeprefix("tag:"))
    if attributes:
        set_attributes(session, contact=contact, actor=actor, attributes=attributes, replace=False)
    if tags:
        add_tags(session, contact=contact, actor=actor, tags=tags)
    if not created and contact.locale is None and locale:
        update_contact(session, contact=contact, actor=actor, changes={"locale": locale})

    # Consent: the exact words the visitor ticked, where and when. An unticked optional box decides nothing.
    consents = []
    for f in fields:
        if f.type == FieldType.CONSENT and answers.values.get(f.name):
            record_consent(session, contact=contact, actor=actor, channel=f.consent_channel,
                           status=ConsentStatus.GRANTED, purpose=Purpose.MARKETING,
                           source=(source_url or f"form:{form.key}")[:200], wording=f.wording, occurred_at=now)
            consents.append({"field": f.name, "channel": f.consent_channel, "purpose": Purpose.MARKETING.value,
                             "wording": f.wording, "source_url": source_url, "at": now.isoformat()})

    # The event last, so `form.submitted` triggers see the consent and tags just recorded.
    result = post_event(session, event=InboundEvent(
        channel=CHANNEL, kind=EVENT_KIND, direction=Direction.IN,
        external_id=f"{form.key}:{client_id}", occurred_at=now, contact_id=contact.id,
        identities=[IdentityRef(kind=IdentityKind(k), value=v) for k, v in answers.identities],
        subject=form.title or form.name, text=_summary(fields, answers.values),
        data={"form": form.key, "form_id": form.id, "form_name": form.name, "fields": answers.values,
              "source_url": source_url, "locale": locale, "submission": client_id,
              **({"utm": utm} if (utm := utm_params(source_url)) else {})},
    ))
    task_id = None
    if form.task_assignee_id is not None:
        task = create_task(session, actor=actor, title=form.task_title or f"{form.name}: {contact.display_name}",
                           notes=_summary(fields, answers.values) or None, assignee_id=form.task_assignee_id,
                           contact_id=contact.id)
        task.source_event_id = result.event.id
        task_id = task.id
    submission = FormSubmission(
        form_id=form.id, client_id=client_id, contact_id=contact.id, event_id=result.event.id, task_id=task_id,
        values=answers.values, consents=consents, source_url=source_url, locale=locale, address=address[:64],
        user_agent=(user_agent or "")[:400] or None, created_at=now,
    )
    session.add(submission)
    session.flush()  # a concurrent replay of the same client id fails here on the unique constraint
    return Outcome(submission, replay=False)


def list_forms(session: Session) -> list[tuple[Form, int]]:
    """Every form with its number of submissions, newest first."""
    from sqlalchemy import func

    counts = (select(FormSubmission.form_id, func.count().label("n")).group_by(FormSubmission.form_id)).subquery()
    rows = session.execute(
        select(Form, func.coalesce(counts.c.n, 0)).outerjoin(counts, counts.c.form_id == Form.id)
        .order_by(Form.created_at.desc(), Form.id.desc())
    ).all()
    return [(form, int(n)) for form, n in rows]


def list_submissions(session: Session, *, form_id: int | None, limit: int = 50, cursor: str | None = None,
                     since: datetime | None = None, until: datetime | None = None) -> Page[FormSubmission]:
    """Submissions newest first, in keyset pages: one form's or every form's, optionally within [since, until)."""
    stmt = select(FormSubmission)
    if form_id is not None:
        stmt = stmt.where(FormSubmission.form_id == form_id)
    if since is not None:
        stmt = stmt.where(FormSubmission.created_at >= since)
    if until is not None:
        stmt = stmt.where(FormSubmission.created_at < until)
    if cursor:
        at, _, last = cursor.rpartition("|")
        try:
            when, last_id = datetime.fromisoformat(at), int(last)
        except ValueError:
            raise InvalidCursor("the cursor is not one this page issued") from None
        if when.tzinfo is None:
            raise InvalidCursor("the cursor is not one this page issued")
        stmt = stmt.where(tuple_(FormSubmission.created_at, FormSubmission.id) < tuple_(when, last_id))
    rows = list(session.scalars(stmt.order_by(FormSubmission.created_at.desc(), FormSubmission.id.desc()).limit(limit + 1)))
    if len(rows) > limit:
        rows = rows[:limit]
        return Page(items=rows, next_cursor=f"{rows[-1].created_at.isoformat()}|{rows[-1].id}")
    return Page(items=rows, next_cursor=None)


def submission_count(session: Session, *, form_id: int) -> int:
    from sqlalchemy import func

    return session.scalar(select(func.count()).select_from(FormSubmission).where(FormSubmission.form_id == form_id)) or 0


class FormInUse(ValueError):
    """A form with submissions is closed, not deleted, so what visitors sent stays."""


def delete_form(session: Session, *, form: Form, actor: Principal) -> None:
    """Delete a form nobody has submitted yet; one with submissions raises FormInUse (close it instead)."""
    count = submission_count(session, form_id=form.id)  # type: ignore[arg-type]
    if count:
        raise FormInUse(f"form {form.id} has {count} submissions; close it instead (is_active false) to keep them")
    audit.record(session, actor=actor, action="form.delete", entity="form", entity_id=form.id,
                 changes={"name": [form.name, None]})
    session.delete(form)
    session.flush()


# Spreadsheets run cells starting with these as formulas; visitors' answers are untrusted.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: Any) -> str:
    if value is True:
        return "yes"
    if value is False:
        return "no"
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


def export_submissions(session: Session, *, form: Form, batch: int = 500) -> Iterator[str]:
    """A form's submissions as CSV lines (oldest first), one column per field; safe to open in a spreadsheet."""
    fields = parse_fields(form.fields)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["submitted_at", "contact_id", *[f.name for f in fields], "source_url", "locale"])
    yield out.getvalue()
    last_id = 0
    while True:
        rows = list(session.scalars(select(FormSubmission).where(FormSubmission.form_id == form.id,
                                                                 FormSubmission.id > last_id)
                                    .order_by(FormSubmission.id).limit(batch)))
        if not rows:
            return
        out.seek(0)
        out.truncate()
        for row in rows:
            writer.writerow([row.created_at.isoformat(), row.contact_id,
                             *[_cell(row.values.get(f.name)) for f in fields], _cell(row.source_url), row.locale or ""])
        yield out.getvalue()
        last_id = rows[-1].id  # type: ignore[assignment]


__all__ = ["export_submissions", "EVENT_KIND", "FormInUse", "FormNotFound", "delete_form", "submission_count", "InvalidAnswers", "Outcome", "create_form", "definition_of",
           "form_by_key", "list_forms", "list_submissions", "submit", "update_form"]
