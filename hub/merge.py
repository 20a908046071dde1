"""Merging duplicate contacts, and undoing a merge exactly.

Every row that points at the merged contact moves to the survivor. The rows to move are found from
the schema (every foreign key to contact.id), so a table added later moves too without a change here.
The merge record keeps both contacts' fields as they were and the id of every moved row, which is
what an exact undo needs: rows created on the survivor after the merge are not in that list and stay."""

from __future__ import annotations

import copy
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from pydantic import BaseModel
from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session
from sqlmodel import SQLModel

from hub import audit, clock, notices
from hub.auth import Principal
from hub.contacts import ContactConflict, ContactPublic, fields_of, to_public
from hub.identities import fold
from hub.ingest import ContactNotFound
from hub.models import Contact, Identity, MergeRecord, UTCDateTime

# Pointers that say what a contact *is* rather than what belongs to it; never moved.
_NOT_MOVED = {"contact", "merge_record", "audit_entry"}
_CHUNK = 500


class MergeRefused(ValueError):
    """A merge that makes no sense (a contact into itself)."""


class MergeConflict(ContactConflict):
    """A merge or undo that the current state forbids; the message says what to do first."""


class MergeNotFound(LookupError):
    pass


class MergePreview(BaseModel):
    survivor: ContactPublic  # as it will look after the merge
    merged: ContactPublic
    moves: dict[str, int]  # rows per table that will move to the survivor
    conflicts: list[dict[str, Any]]  # fields both have, where the survivor's value wins


class MergePublic(BaseModel):
    id: int
    survivor_id: int
    merged_id: int
    created_by: str | None
    created_at: datetime
    undone_at: datetime | None
    moved: dict[str, int]


def merge_public(record: MergeRecord) -> MergePublic:
    moved = record.snapshot.get("moved", {})
    return MergePublic(id=record.id, survivor_id=record.survivor_id, merged_id=record.merged_id,  # type: ignore[arg-type]
                       created_by=record.created_by, created_at=record.created_at, undone_at=record.undone_at,
                       moved={key: len(ids) for key, ids in moved.items() if ids})


def contact_references() -> list[tuple[sa.Table, sa.Column[Any], sa.Column[Any]]]:
    """(table, column pointing at contact.id, primary key) for every row that belongs to a contact."""
    refs = []
    for table in SQLModel.metadata.sorted_tables:
        if table.name in _NOT_MOVED:
            continue
        for column in table.columns:
            if any(fk.column.table.name == "contact" for fk in column.foreign_keys):
                pk = list(table.primary_key.columns)
                if len(pk) != 1:
                    raise RuntimeError(f"{table.name} needs a one-column primary key to take part in merges")
                refs.append((table, column, pk[0]))
    return refs


def _unique_with(table: sa.Table, column: sa.Column[Any]) -> list[list[sa.Column[Any]]]:
    """For each unique constraint or index that includes `column`, its other columns."""
    groups = [[]] if column.unique else []
    sets = [c.columns for c in table.constraints if isinstance(c, sa.UniqueConstraint)]
    sets += [i.columns for i in table.indexes if i.unique]
    for columns in sets:
        if column.name in columns:
            groups.append([c for c in columns if c.name != column.name])
    return groups


def _movable(table: sa.Table, column: sa.Column[Any], *, source: int, target: int) -> list[Any]:
    """The rows of `source` that can move to `target`: a row that would collide with one of the
    target's (a table allowing one row per contact and user, say) stays behind, so a merge never
    fails on a duplicate."""
    where = [column == source]
    for others in _unique_with(table, column):
        twin = table.alias()
        where.append(~sa.exists().where(twin.c[column.name] == target,
                                        *(twin.c[c.name] == table.c[c.name] for c in others)))
    return where


def _move(table: sa.Table, column: sa.Column[Any], pk: sa.Column[Any], *, source: int, target: int) -> sa.Update:
    """UPDATE … RETURNING the ids of the rows it moved."""
    where = _movable(table, column, source=source, target=target)
    return update(table).where(*where).values({column.name: target}).returning(pk)


def _key(table: sa.Table, column: sa.Column[Any]) -> str:
    return table.name if column.name == "contact_id" else f"{table.name}.{column.name}"


def _snapshot(contact: Contact) -> dict[str, Any]:
    """Every column of the contact as JSON values (times as ISO strings, microseconds kept)."""
    out = {}
    for column in Contact.__table__.columns:  # type: ignore[attr-defined]
        value = getattr(contact, column.key)
        out[column.key] = value.isoformat() if isinstance(value, datetime) else copy.deepcopy(value)
    return out


def _restore(contact: Contact, values: dict[str, Any]) -> None:
    for column in Contact.__table__.columns:  # type: ignore[attr-defined]
        if column.key == "id":
            continue
        value = values[column.key]
        if isinstance(column.type, UTCDateTime) and value is not None:
            value = datetime.fromisoformat(value)
        setattr(contact, column.key, copy.deepcopy(value))


def merged_fields(survivor: Contact, merged: Contact) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The survivor's editable fields after the merge, and the fields where both differ (survivor wins)."""
    result = fields_of(survivor)
    conflicts = []
    for name in ("display_name", "locale", "time_zone", "owner_id", "account_id"):
        mine, theirs = getattr(survivor, name), getattr(merged, name)
        if mine in (None, ""):
            result[name] = theirs
        elif theirs not in (None, "") and theirs != mine:
            conflicts.append({"field": name, "survivor": mine, "merged": theirs})
    if merged.lifecycle_stage != survivor.lifecycle_stage:
        conflicts.append({"field": "lifecycle_stage", "survivor": survivor.lifecycle_stage, "merged": merged.lifecycle_stage})
    result["tags"] = [*survivor.tags, *(t for t in merged.tags if t not in survivor.tags)]
    result["attributes"] = {**merged.attributes, **survivor.attributes}
    for key in sorted(set(merged.attributes) & set(survivor.attributes)):
        if merged.attributes[key] != survivor.attributes[key]:
            conflicts.append({"field": f"attributes.{key}", "survivor": survivor.attributes[key],
                              "merged": merged.attributes[key]})
    return result, conflicts


def _lock(session: Session, contact_id: int, *, lock: bool = True) -> Contact:
    contact = session.get(Contact, contact_id, with_for_update=lock, populate_existing=True)
    if contact is None:
        raise ContactNotFound(f"contact {contact_id} does not exist")
    return contact


def _pair(session: Session, survivor_id: int, merged_id: int, *, lock: bool = True) -> tuple[Contact, Contact]:
    if survivor_id == merged_id:
        raise MergeRefused("a contact cannot be merged into itself; choose two different contacts")
    # Lock in id order so two merges of the same pair cannot deadlock.
    locked = {cid: _lock(session, cid, lock=lock) for cid in sorted((survivor_id, merged_id))}
    survivor, merged = locked[survivor_id], locked[merged_id]
    for contact in (survivor, merged):
        if contact.merged_into is not None:
            raise MergeConflict(
                f"contact {contact.id} was already merged into contact {contact.merged_into}; "
                f"use contact {contact.merged_into} instead",
                contact_id=contact.merged_into,
            )
    return survivor, merged


def preview_merge(session: Session, *, survivor_id: int, merged_id: int) -> MergePreview:
    """What merging `merged_id` into `survivor_id` would do; writes nothing."""
    survivor, merged = _pair(session, survivor_id, merged_id, lock=False)
    fields, conflicts = merged_fields(survivor, merged)
    moves = {}
    for table, column, _pk in contact_references():
        count = session.scalar(select(func.count()).select_from(table)
                               .where(*_movable(table, column, source=merged.id, target=survivor.id)))
        if count:
            moves[_key(table, column)] = count
    after, before = to_public(session, [survivor, merged])
    return MergePreview(survivor=after.model_copy(update=fields), merged=before, moves=moves, conflicts=conflicts)


def merge_contacts(session: Session, *, survivor_id: int, merged_id: int, actor: Principal) -> MergeRecord:
    """Merge `merged_id` into `survivor_id`: fields filled, rows moved, the merged one redirects."""
    survivor, merged = _pair(session, survivor_id, merged_id)
    session.flush()
    snapshot: dict[str, Any] = {"survivor": _snapshot(survivor), "merged": _snapshot(merged), "moved": {}}
    # Two primaries on one contact would be ambiguous; the survivor's stays primary.
    demoted = sorted(session.scalars(
        select(Identity.id).where(Identity.contact_id == merged.id, Identity.is_primary)
    ))
    for table, column, pk in contact_references():
        moved = session.execute(_move(table, column, pk, source=merged.id, target=survivor.id)).scalars().all()
        snapshot["moved"][_key(table, column)] = sorted(moved)
    if demoted:
        session.execute(update(Identity.__table__).where(Identity.__table__.c.id.in_(demoted)).values(is_primary=False))  # type: ignore[attr-defined]
    snapshot["demoted_primary"] = demoted

    before = fields_of(survivor)
    fields, _conflicts = merged_fields(survivor, merged)
    now = clock.now()
    for name, value in fields.items():
        setattr(survivor, name, value)
    survivor.search_name = fold(survivor.display_name)
    survivor.updated_at = now
    merged.merged_into = survivor.id
    merged.updated_at = now
    record = MergeRecord(survivor_id=survivor.id, merged_id=merged.id, snapshot=snapshot,  # type: ignore[arg-type]
                         created_by=actor.actor, created_at=now)
    session.add(record)
    session.flush()
    moved_counts = {key: len(ids) for key, ids in snapshot["moved"].items() if ids}
    audit.record(session, actor=actor, action="contact.merge", entity="contact", entity_id=survivor.id,
                 contact_id=survivor.id,
                 changes={**audit.diff(before, fields_of(survivor)), "merge_id": record.id,
                          "merged_id": merged.id, "moved": moved_counts})
    audit.record(session, actor=actor, action="contact.merged_into", entity="contact", entity_id=merged.id,
                 contact_id=merged.id, changes={"merged_into": [None, survivor.id], "merge_id": record.id})
    notices.emit(session, "contact.merged", subject=f"contact:{survivor.id}",
                 data={"survivor_id": survivor.id, "merged_id": merged.id, "merge_id": record.id})
    session.expire_all()  # the bulk updates bypassed the identity map
    return record


def undo_merge(session: Session, *, merge_id: int, actor: Principal) -> MergeRecord:
    """Put both contacts back exactly as they were before the merge; later rows stay with the survivor."""
    record = session.get(MergeRecord, merge_id, with_for_update=True, populate_existing=True)
    if record is None:
        raise MergeNotFound(f"merge {merge_id} does not exist")
    if record.undone_at is not None:
        raise MergeConflict(f"merge {merge_id} was already undone at {record.undone_at.isoformat()}")
    pair = (record.survivor_id, record.merged_id)
    later = session.scalars(
        select(MergeRecord)
        .where(MergeRecord.id > record.id, MergeRecord.undone_at.is_(None),
               or_(MergeRecord.survivor_id.in_(pair), MergeRecord.merged_id.in_(pair)))
        .order_by(MergeRecord.id.desc())
        .limit(1)
    ).first()
    if later is not None:
        raise MergeConflict(
            f"merge {later.id} (contact {later.merged_id} into {later.survivor_id}) came after this one and "
            f"involves the same contacts; undo merge {later.id} first"
        )
    survivor = _lock(session, record.survivor_id)
    merged = _lock(session, record.merged_id)
    if merged.merged_into != survivor.id:
        raise MergeConflict(f"contact {merged.id} is no longer merged into {survivor.id}; this merge cannot be undone")
    session.flush()

    snapshot = record.snapshot
    refs = {_key(table, column): (table, column, pk) for table, column, pk in contact_references()}
    for key, ids in snapshot["moved"].items():
        if key not in refs:
            raise RuntimeError(f"merge {merge_id} moved rows of {key}, which no longer points at contacts")
        table, column, pk = refs[key]
        for start in range(0, len(ids), _CHUNK):
            session.execute(
                update(table)
                .where(pk.in_(ids[start:start + _CHUNK]), column == survivor.id)
                .values({column.name: merged.id})
            )
    if snapshot.get("demoted_primary"):
        session.execute(
            update(Identity.__table__)  # type: ignore[attr-defined]
            .where(Identity.__table__.c.id.in_(snapshot["demoted_primary"]))  # type: ignore[attr-defined]
            .values(is_primary=True)
        )

    survivor_before, merged_before = fields_of(survivor), fields_of(merged)
    _restore(survivor, snapshot["survivor"])
    _restore(merged, snapshot["merged"])
    record.undone_at = clock.now()
    session.flush()
    audit.record(session, actor=actor, action="contact.merge.undo", entity="contact", entity_id=survivor.id,
                 contact_id=survivor.id,
                 changes={**audit.diff(survivor_before, fields_of(survivor)), "merge_id": record.id,
                          "merged_id": merged.id})
    audit.record(session, actor=actor, action="contact.merge.undo", entity="contact", entity_id=merged.id,
                 contact_id=merged.id,
                 changes={**audit.diff(merged_before, fields_of(merged)), "merged_into": [survivor.id, None],
                          "merge_id": record.id})
    session.expire_all()
    return record


def merges_of(session: Session, *, contact_id: int) -> list[MergeRecord]:
    """Merges a contact took part in, newest first (for the card's history and its undo buttons)."""
    return list(session.scalars(
        select(MergeRecord)
        .where(or_(MergeRecord.survivor_id == contact_id, MergeRecord.merged_id == contact_id))
        .order_by(MergeRecord.id.desc())
    ))
