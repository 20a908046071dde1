"""Contacts: create and edit them, their tags, attributes, owner and consent, search, and the card data.

Service functions take the session first and everything else by keyword; they do not commit. Every
change is written to the audit log in the same transaction, naming the principal who made it."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any
from zoneinfo import available_timezones

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import exists, func, or_, select, tuple_
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from hub import audit, clock, notices
from hub.auth import Principal
from hub.db import among, contains_folded
from hub.identities import InvalidIdentity, fold, normalize, phone_digits_for_search
from hub.ingest import get_contact
from hub.models import (
    Account,
    ConsentRecord,
    ConsentStatus,
    Contact,
    Identity,
    IdentityKind,
    Purpose,
    Task,
    TaskStatus,
    TimelineEvent,
    User,
)
from hub.timeline import InvalidCursor, Page, decode_cursor, encode_cursor
from hub.translatable import N_, FieldError

LOCALES = ("ru", "en")
EDITABLE = ("display_name", "locale", "time_zone", "owner_id", "lifecycle_stage", "tags", "attributes", "account_id")
MAX_TAGS = 100
MAX_TAG_CHARS = 60
MAX_ATTRIBUTES_BYTES = 32_768
DEFAULT_STAGE = "lead"


# A contact's fields as pages label them, naming them in the messages of refused values.
FIELD_LABELS = {"display_name": N_("Name"), "locale": N_("Language"), "time_zone": N_("Time zone"),
                "owner_id": N_("Owner"), "lifecycle_stage": N_("Lifecycle stage"), "tags": N_("Tags"),
                "attributes": N_("Attributes"), "identities": N_("Email or phone")}


class InvalidField(FieldError):
    """A value the hub refuses, naming the field it came in (`identities.0.value`, `time_zone`). The
    message is a msgid with parameters that pages translate (hub.translatable.FieldError); `text` is
    its English, what API clients and the CSV import read."""

    def __init__(self, field: str, message: str, **params: Any) -> None:
        super().__init__(field, message, label=FIELD_LABELS.get(field.split(".")[0]), **params)

    @property
    def text(self) -> str:
        return self.translated(str)

    def _english(self) -> str:
        return f"{self.field}: {self.text}"


class ContactConflict(Exception):
    """A change that collides with another contact (an identity it already owns, a merge in the way)."""

    def __init__(self, message: str, *, contact_id: int | None = None) -> None:
        super().__init__(message)
        self.contact_id = contact_id


# Public shapes: what the API returns and the UI renders.

class IdentityIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: IdentityKind
    value: str = Field(min_length=1, max_length=320)
    label: str | None = Field(default=None, max_length=100)


class IdentityPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    kind: str
    value: str
    label: str | None
    is_primary: bool


class ConsentPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    channel: str
    purpose: str
    status: str
    source: str
    wording: str | None
    recorded_by: str | None
    occurred_at: datetime


class ContactPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    display_name: str
    locale: str | None
    time_zone: str | None
    tags: list[str]
    attributes: dict[str, Any]
    owner_id: int | None
    lifecycle_stage: str
    merged_into: int | None
    account_id: int | None = Field(default=None, description="The company or household it belongs to")
    created_at: datetime
    updated_at: datetime
    identities: list[IdentityPublic] = Field(default_factory=list)


class OwnerPublic(BaseModel):
    id: int
    display_name: str
    email: str


class LastEvent(BaseModel):
    id: int
    occurred_at: datetime
    channel: str
    direction: str
    kind: str
    subject: str | None


class ContactCard(ContactPublic):
    """Everything the screen pop shows at a glance."""

    owner: OwnerPublic | None = None
    consent: list[ConsentPublic] = Field(default_factory=list)
    open_tasks: int = 0
    last_event: LastEvent | None = None


# Field rules, shared by the API, the CSV import and merges.

@lru_cache(maxsize=1)
def _zones() -> frozenset[str]:
    return frozenset(available_timezones())


def clean_name(value: Any, field: str = "display_name") -> str:
    if not isinstance(value, str):
        raise InvalidField(field, N_("Fill in “%(label)s” with text."))
    value = " ".join(value.split())
    if len(value) > 300:
        raise InvalidField(field, N_("“%(label)s” is too long: at most %(max_length)s characters. Shorten it."),
                           max_length=300)
    return value


def clean_locale(value: Any, field: str = "locale") -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str) or value.strip().lower() not in LOCALES:
        raise InvalidField(field, N_("Choose “%(label)s” from the list."))
    return value.strip().lower()


def clean_time_zone(value: Any, field: str = "time_zone") -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str) or value.strip() not in _zones():
        raise InvalidField(field, N_("“%(value)s” is not a time zone the hub knows. Choose one such as "
                                     "Europe/Moscow."), value=str(value)[:64])
    return value.strip()


def clean_stage(value: Any, field: str = "lifecycle_stage") -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidField(field, N_("Fill in “%(label)s”."))
    if len(value.strip()) > 40:
        raise InvalidField(field, N_("“%(label)s” is too long: at most %(max_length)s characters. Shorten it."),
                           max_length=40)
    return value.strip()


def clean_tags(values: Any, field: str = "tags") -> list[str]:
    """Trimmed, de-duplicated tags in their given order; ',' and ';' separate tags in CSV, so not allowed."""
    if isinstance(values, str) or not isinstance(values, Iterable):
        raise InvalidField(field, "must be a list of strings")
    tags: list[str] = []
    for value in values:
        if not isinstance(value, str):
            raise InvalidField(field, "must be a list of strings")
        tag = " ".join(value.split())
        if not tag:
            raise InvalidField(field, N_("A tag cannot be empty. Remove the extra comma."))
        if len(tag) > MAX_TAG_CHARS:
            raise InvalidField(field, N_("The tag “%(tag)s…” is longer than %(limit)s characters. Shorten it."),
                               tag=tag[:20], limit=MAX_TAG_CHARS)
        if "," in tag or ";" in tag:
            raise InvalidField(field, N_("The tag “%(tag)s” contains “,” or “;”, which separate tags."), tag=tag[:60])
        if tag not in tags:
            tags.append(tag)
    if len(tags) > MAX_TAGS:
        raise InvalidField(field, N_("A contact can have at most %(limit)s tags. Remove some."), limit=MAX_TAGS)
    return tags


def clean_attributes(value: Any, field: str = "attributes") -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise InvalidField(field, "must be a JSON object")
    for key in value:
        if not isinstance(key, str) or not key.strip() or len(key) > 100:
            raise InvalidField(field, f"attribute names must be 1 to 100 characters, not {key!r}")
    try:
        size = len(json.dumps(value, allow_nan=False, ensure_ascii=False).encode())
    except (TypeError, ValueError):
        raise InvalidField(field, "must hold JSON values only") from None
    if size > MAX_ATTRIBUTES_BYTES:
        raise InvalidField(field, f"must be at most {MAX_ATTRIBUTES_BYTES} bytes as JSON")
    return json.loads(json.dumps(dict(value)))  # a detached copy the caller cannot mutate


def clean_owner(session: Session, value: Any, field: str = "owner_id") -> int | None:
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or session.get(User, value) is None:
        raise InvalidField(field, N_("There is no such user. Choose the owner from the list."))
    return value


def clean_account(session: Session, value: Any, field: str = "account_id") -> int | None:
    """A contact's account: None, or the id of an account that exists."""
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or session.get(Account, value) is None:
        raise InvalidField(field, f"there is no account with id {value!r}")
    return value


def clean_identities(identities: Sequence[IdentityIn], *, region: str,
                     field: str = "identities") -> list[tuple[str, str, str | None]]:
    """(kind, normalized value, label) for each identity, duplicates dropped; errors name the entry."""
    out: dict[tuple[str, str], str | None] = {}
    for i, ident in enumerate(identities):
        try:
            value = normalize(ident.kind, ident.value, region=region)
        except InvalidIdentity as exc:
            raise InvalidField(f"{field}.{i}.value", exc.message, **exc.params) from None
        out.setdefault((str(ident.kind), value), ident.label)
    return [(kind, value, label) for (kind, value), label in out.items()]


def _clean(session: Session, name: str, value: Any) -> Any:
    rules = {"display_name": clean_name, "locale": clean_locale, "time_zone": clean_time_zone,
             "lifecycle_stage": clean_stage, "tags": clean_tags, "attributes": clean_attributes,
             "owner_id": lambda v: clean_owner(session, v), "account_id": lambda v: clean_account(session, v)}
    if name not in rules:
        raise InvalidField(name, f"is not a contact field; editable fields are {', '.join(EDITABLE)}")
    return rules[name](value)


def fields_of(contact: Contact) -> dict[str, Any]:
    """The editable fields as plain values, for diffs in the audit log."""
    return {name: getattr(contact, name) for name in EDITABLE}


# Writing.

def owner_of(session: Session, identities: Iterable[tuple[str, str]]) -> Identity | None:
    """The stored identity among (kind, value) pairs, if any is taken."""
    for kind, value in identities:
        found = session.scalars(select(Identity).where(Identity.kind == kind, Identity.value == value)).first()
        if found is not None:
            return found
    return None


def _insert_identities(session: Session, contact: Contact, idents: Sequence[tuple[str, str, str | None]],
                       *, primary_first: bool) -> list[Identity]:
    rows = [
        Identity(contact_id=contact.id, kind=kind, value=value, label=label, is_primary=primary_first and i == 0)
        for i, (kind, value, label) in enumerate(idents)
    ]
    savepoint = session.begin_nested()
    try:
        session.add_all(rows)
        session.flush()
    except IntegrityError:
        # Another transaction took one of these identities between our check and this insert.
        savepoint.rollback()
        taken = owner_of(session, [(k, v) for k, v, _ in idents])
        raise ContactConflict(
            "one of these identities was just given to another contact; try again",
            contact_id=taken.contact_id if taken else None,
        ) from None
    savepoint.commit()
    return rows


def _refuse_taken(session: Session, idents: Sequence[tuple[str, str, str | None]], *, contact_id: int | None = None) -> None:
    for kind, value, _label in idents:
        found = owner_of(session, [(kind, value)])
        if found is not None and found.contact_id != contact_id:
            raise ContactConflict(
                f"{kind} {value} already belongs to contact {found.contact_id}; merge the two contacts instead",
                contact_id=found.contact_id,
            )


def create_contact(
    session: Session,
    *,
    actor: Principal,
    region: str,
    display_name: str = "",
    identities: Sequence[IdentityIn] = (),
    locale: str | None = None,
    time_zone: str | None = None,
    tags: Sequence[str] = (),
    attributes: Mapping[str, Any] | None = None,
    owner_id: int | None = None,
    lifecycle_stage: str = DEFAULT_STAGE,
    account_id: int | None = None,
) -> Contact:
    """A new contact with its identities (the first is primary); an identity owned by someone else is a conflict."""
    idents = clean_identities(identities, region=region)
    values = {
        "display_name": clean_name(display_name),
        "locale": clean_locale(locale),
        "time_zone": clean_time_zone(time_zone),
        "owner_id": clean_owner(session, owner_id),
        "lifecycle_stage": clean_stage(lifecycle_stage),
        "tags": clean_tags(tags),
        "attributes": clean_attributes(attributes or {}),
        "account_id": clean_account(session, account_id),
    }
    if not values["display_name"]:
        if not idents:
            raise InvalidField("display_name", N_("Enter a name, an email or a phone: a contact needs at least "
                                                  "one of them."))
        values["display_name"] = idents[0][1]
    _refuse_taken(session, idents)
    now = clock.now()
    contact = Contact(**values, search_name=fold(values["display_name"]), created_at=now, updated_at=now)
    session.add(contact)
    session.flush()
    _insert_identities(session, contact, idents, primary_first=True)
    changes = {k: [None, v] for k, v in values.items() if v not in (None, [], {})}
    if idents:
        changes["identities"] = [None, [f"{kind}:{value}" for kind, value, _ in idents]]
    audit.record(session, actor=actor, action="contact.create", entity="contact", entity_id=contact.id,
                 contact_id=contact.id, changes=changes)
    notices.emit(session, "contact.created", subject=f"contact:{contact.id}",
                 data={"contact_id": contact.id, "display_name": contact.display_name,
                       "lifecycle_stage": contact.lifecycle_stage})
    return contact


def update_contact(session: Session, *, contact: Contact, actor: Principal, changes: Mapping[str, Any],
                   action: str = "contact.update") -> dict[str, Any]:
    """Apply field changes (only the ones given); returns the audit diff, empty when nothing changed."""
    if contact.merged_into is not None:
        raise ContactConflict(f"contact {contact.id} was merged into {contact.merged_into}; edit that one",
                              contact_id=contact.merged_into)
    cleaned = {name: _clean(session, name, value) for name, value in changes.items()}
    if "display_name" in cleaned and not cleaned["display_name"]:
        raise InvalidField("display_name", N_("Fill in “%(label)s”."))
    before = fields_of(contact)
    for name, value in cleaned.items():
        setattr(contact, name, value)
    diff = audit.diff(before, fields_of(contact))
    if not diff:
        return diff
    if "display_name" in diff:
        contact.search_name = fold(contact.display_name)
    contact.updated_at = clock.now()
    session.flush()
    audit.record(session, actor=actor, action=action, entity="contact", entity_id=contact.id,
                 contact_id=contact.id, changes=diff)
    notices.emit(session, "contact.updated", subject=f"contact:{contact.id}",
                 data={"contact_id": contact.id, "display_name": contact.display_name,
                       "lifecycle_stage": contact.lifecycle_stage, "changes": diff})
    return diff


def set_tags(session: Session, *, contact: Contact, actor: Principal, tags: Sequence[str]) -> dict[str, Any]:
    """Replace the contact's tags."""
    return update_contact(session, contact=contact, actor=actor, changes={"tags": tags}, action="contact.tags")


def add_tags(session: Session, *, contact: Contact, actor: Principal, tags: Sequence[str]) -> dict[str, Any]:
    """Add tags the contact does not have yet."""
    return set_tags(session, contact=contact, actor=actor, tags=[*contact.tags, *clean_tags(tags)])


def remove_tags(session: Session, *, contact: Contact, actor: Principal, tags: Sequence[str]) -> dict[str, Any]:
    """Remove these tags; ones the contact does not have are ignored."""
    gone = set(clean_tags(tags))
    return set_tags(session, contact=contact, actor=actor, tags=[t for t in contact.tags if t not in gone])


def add_tag(session: Session, *, contact: Contact, actor: Principal, tag: str) -> dict[str, Any]:
    return add_tags(session, contact=contact, actor=actor, tags=[tag])


def remove_tag(session: Session, *, contact: Contact, actor: Principal, tag: str) -> dict[str, Any]:
    return remove_tags(session, contact=contact, actor=actor, tags=[tag])


def set_attributes(session: Session, *, contact: Contact, actor: Principal, attributes: Mapping[str, Any],
                   replace: bool = True) -> dict[str, Any]:
    """Replace the attributes (or, with replace=False, set only the given keys)."""
    value = dict(attributes) if replace else {**contact.attributes, **attributes}
    return update_contact(session, contact=contact, actor=actor, changes={"attributes": value},
                          action="contact.attributes")


def set_owner(session: Session, *, contact: Contact, actor: Principal, owner_id: int | None) -> dict[str, Any]:
    return update_contact(session, contact=contact, actor=actor, changes={"owner_id": owner_id}, action="contact.owner")


def add_identity(session: Session, *, contact: Contact, actor: Principal, identity: IdentityIn,
                 region: str) -> tuple[Identity, bool]:
    """Attach an identity; (identity, False) when the contact already has it, a conflict when another does."""
    if contact.merged_into is not None:
        raise ContactConflict(f"contact {contact.id} was merged into {contact.merged_into}", contact_id=contact.merged_into)
    idents = clean_identities([identity], region=region, field="identity")
    kind, value, _label = idents[0]
    existing = owner_of(session, [(kind, value)])
    if existing is not None and existing.contact_id == contact.id:
        return existing, False
    _refuse_taken(session, idents, contact_id=contact.id)
    has_primary = session.scalar(
        select(func.count()).select_from(Identity).where(Identity.contact_id == contact.id, Identity.is_primary)
    )
    row = _insert_identities(session, contact, idents, primary_first=not has_primary)[0]
    contact.updated_at = clock.now()
    audit.record(session, actor=actor, action="contact.identity.add", entity="contact", entity_id=contact.id,
                 contact_id=contact.id, changes={"identities": [None, f"{kind}:{value}"]})
    return row, True


_CHANNEL_NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}$")


def record_consent(
    session: Session,
    *,
    contact: Contact,
    actor: Principal,
    channel: str,
    status: ConsentStatus,
    purpose: Purpose = Purpose.MARKETING,
    source: str = "",
    wording: str | None = None,
    occurred_at: datetime | None = None,
) -> ConsentRecord:
    """Append one consent decision; the history is never rewritten and the newest one is in force."""
    if not _CHANNEL_NAME.match(channel or ""):
        raise InvalidField("channel", "must be a channel name such as email or sms")
    now = clock.now()
    if occurred_at is not None and (occurred_at.tzinfo is None or occurred_at > now + timedelta(minutes=5)):
        raise InvalidField("occurred_at", "must be an aware time that is not in the future")
    record = ConsentRecord(
        contact_id=contact.id,
        channel=channel,
        purpose=Purpose(purpose).value,
        status=ConsentStatus(status).value,
        source=(source or "")[:200],
        wording=wording,
        recorded_by=actor.actor,
        occurred_at=occurred_at or now,
    )
    session.add(record)
    session.flush()
    audit.record(session, actor=actor, action="contact.consent", entity="contact", entity_id=contact.id,
                 contact_id=contact.id,
                 changes={"consent": [None, {"channel": record.channel, "purpose": record.purpose,
                                             "status": record.status, "source": record.source}]})
    notices.emit(session, "consent.changed", subject=f"contact:{contact.id}",
                 data={"contact_id": contact.id, "channel": record.channel, "purpose": record.purpose,
                       "status": record.status, "source": record.source}, occurred_at=record.occurred_at)
    return record


def current_consent(session: Session, *, contact_id: int) -> list[ConsentRecord]:
    """The decision in force per (channel, purpose): the newest one of each."""
    rows = session.scalars(
        select(ConsentRecord)
        .where(ConsentRecord.contact_id == contact_id)
        .order_by(ConsentRecord.occurred_at.desc(), ConsentRecord.id.desc())
    )
    current: dict[tuple[str, str], ConsentRecord] = {}
    for row in rows:
        current.setdefault((row.channel, row.purpose), row)
    return sorted(current.values(), key=lambda r: (r.channel, r.purpose))


def consent_status(session: Session, *, contact_id: int, channel: str, purpose: Purpose) -> str | None:
    """'granted', 'withdrawn', or None when the contact never decided for this channel and purpose."""
    return session.scalars(
        select(ConsentRecord.status)
        .where(ConsentRecord.contact_id == contact_id, ConsentRecord.channel == channel,
               ConsentRecord.purpose == Purpose(purpose).value)
        .order_by(ConsentRecord.occurred_at.desc(), ConsentRecord.id.desc())
        .limit(1)
    ).first()


def consent_history(session: Session, *, contact_id: int, limit: int = 50,
                    cursor: str | None = None) -> Page[ConsentRecord]:
    """Every consent decision of a contact, newest first, in keyset pages."""
    stmt = select(ConsentRecord).where(ConsentRecord.contact_id == contact_id)
    if cursor:
        at, last_id = _cursor_pair(cursor)
        try:
            when = datetime.fromisoformat(at)
        except ValueError:
            raise InvalidCursor("the cursor is not one this API issued; start again without it") from None
        stmt = stmt.where(tuple_(ConsentRecord.occurred_at, ConsentRecord.id) < tuple_(when, last_id))
    rows = list(session.scalars(stmt.order_by(ConsentRecord.occurred_at.desc(), ConsentRecord.id.desc()).limit(limit + 1)))
    if len(rows) > limit:
        rows = rows[:limit]
        return Page(items=rows, next_cursor=encode_cursor(rows[-1].occurred_at, rows[-1].id))
    return Page(items=rows, next_cursor=None)


def _cursor_pair(cursor: str) -> tuple[str, int]:
    parts = decode_cursor(cursor)
    try:
        first, last_id = str(parts[0]), int(parts[1])  # type: ignore[call-overload]
        if len(parts) != 2:
            raise ValueError
        return first, last_id
    except (IndexError, ValueError, TypeError):
        raise InvalidCursor("the cursor is not one this API issued; start again without it") from None


# Reading.

_PHONE_LIKE = re.compile(r"^[\d\s()+\-./]+$")


def search_contacts(session: Session, *, query: str = "", region: str, limit: int = 50,
                    cursor: str | None = None) -> Page[Contact]:
    """Surviving contacts whose name, email or phone contains `query` (any case, any phone notation),
    alphabetically in keyset pages."""
    stmt = select(Contact).where(Contact.merged_into.is_(None))
    query = " ".join(query.split())
    if query:
        matches = [
            contains_folded(session, Contact.search_name, query),
            exists().where(Identity.contact_id == Contact.id, Identity.kind == IdentityKind.EMAIL,
                           contains_folded(session, Identity.value, query)),
        ]
        if _PHONE_LIKE.match(query):
            # A short local fragment ("123-45-67") may also parse as a whole number; look for both.
            digits = set(phone_digits_for_search(query, region=region))
            raw = re.sub(r"\D", "", query)
            if len(raw) >= 3:
                digits.add(raw)
            if digits:
                matches.append(exists().where(
                    Identity.contact_id == Contact.id, Identity.kind == IdentityKind.PHONE,
                    or_(*(Identity.value.contains(d, autoescape=True) for d in sorted(digits))),
                ))
        stmt = stmt.where(or_(*matches))
    if cursor:
        name, last_id = _cursor_pair(cursor)
        stmt = stmt.where(tuple_(Contact.search_name, Contact.id) > tuple_(name, last_id))
    rows = list(session.scalars(stmt.order_by(Contact.search_name, Contact.id).limit(limit + 1)))
    if len(rows) > limit:
        rows = rows[:limit]
        return Page(items=rows, next_cursor=encode_cursor(rows[-1].search_name, rows[-1].id))
    return Page(items=rows, next_cursor=None)


def identities_of(session: Session, contact_ids: Sequence[int]) -> dict[int, list[Identity]]:
    """Each contact's identities, primary first, in one query."""
    out: dict[int, list[Identity]] = {cid: [] for cid in contact_ids}
    if not contact_ids:
        return out
    rows = session.scalars(
        select(Identity).where(among(session, Identity.contact_id, contact_ids))
        .order_by(Identity.contact_id, Identity.is_primary.desc(), Identity.id)
    )
    for row in rows:
        out[row.contact_id].append(row)
    return out


def to_public(session: Session, contacts: Sequence[Contact]) -> list[ContactPublic]:
    """Contacts with their identities, loaded in one query for the whole list."""
    idents = identities_of(session, [c.id for c in contacts])  # type: ignore[misc]
    return [
        ContactPublic.model_validate(c).model_copy(
            update={"identities": [IdentityPublic.model_validate(i) for i in idents[c.id]]}  # type: ignore[index]
        )
        for c in contacts
    ]


def contact_card(session: Session, *, contact_id: int) -> ContactCard:
    """The card: fields, identities, owner, consent in force, open tasks and the latest event."""
    contact = get_contact(session, contact_id)
    base = to_public(session, [contact])[0]
    owner = session.get(User, contact.owner_id) if contact.owner_id is not None else None
    open_tasks = session.scalar(
        select(func.count()).select_from(Task).where(Task.contact_id == contact.id, Task.status == TaskStatus.OPEN)
    )
    last = session.scalars(
        select(TimelineEvent).where(TimelineEvent.contact_id == contact.id)
        .order_by(TimelineEvent.occurred_at.desc(), TimelineEvent.id.desc()).limit(1)
    ).first()
    return ContactCard(
        **base.model_dump(),
        owner=OwnerPublic(id=owner.id, display_name=owner.display_name, email=owner.email) if owner else None,  # type: ignore[arg-type]
        consent=[ConsentPublic.model_validate(r) for r in current_consent(session, contact_id=contact.id)],  # type: ignore[arg-type]
        open_tasks=open_tasks or 0,
        last_event=LastEvent(id=last.id, occurred_at=last.occurred_at, channel=last.channel,  # type: ignore[arg-type]
                             direction=last.direction, kind=last.kind, subject=last.subject) if last else None,
    )


def identity_owners(session: Session, identities: Iterable[tuple[str, str]]) -> dict[tuple[str, str], int]:
    """The surviving contact owning each of these normalized (kind, value) pairs that is taken, in one query."""
    pairs = list(dict.fromkeys(identities))
    if not pairs:
        return {}
    rows = session.execute(
        select(Identity.kind, Identity.value, Identity.contact_id, Contact.merged_into)
        .join(Contact, Contact.id == Identity.contact_id)  # type: ignore[arg-type]
        .where(tuple_(Identity.kind, Identity.value).in_(pairs))
    )
    return {(kind, value): contact_id if merged_into is None else get_contact(session, contact_id).id  # type: ignore[misc]
            for kind, value, contact_id, merged_into in rows}
