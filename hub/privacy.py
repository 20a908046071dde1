"""Data-subject requests: export everything the hub holds about one person, or erase it.

Nothing here lists the tables by hand. The person's rows are found from the schema
(`hub.schema.metadata()`): every table with a `contact_id` column or a foreign key to `contact`,
then every table with a foreign key into rows already found (an attachment of one of their timeline
events, an answer to one of their survey invitations), then tables that name one of their addresses
in an `address`/`email`/`phone` column (the email channel's bounce list). A package that adds a
table is covered the day it is installed.

A person is a contact together with everything merged into it (`merged_into` chains, both ways), so
a request about a merged duplicate covers the survivor and the reverse.

Erasure keeps the shape and drops the content (see docs/privacy.md for why):
- the contact row stays as a placeholder "Erased contact #id", so campaign and delivery counts that
  point at it still add up; its name, attributes, tags, locale and owner are cleared;
- timeline events stay with their kind, channel, time and status, their subject, text, HTML and
  data blanked; deliveries keep their status, their address and content blanked; queued ones are
  cancelled first;
- identities, consent records and merge records are deleted; rows that carry a stored file
  (a `sha256` column) are deleted and the file removed once no remaining row refers to it;
- other packages' rows are blanked column by column (free text and JSON cleared; keys, numbers,
  times, flags and short codes such as a status kept), or deleted/kept when the table says so in
  `Table.info["privacy"]` ("delete" | "blank" | "keep"); a column can say `info={"privacy": "keep"}`;
- each address is put on the hashed do-not-contact list (`hub.suppression`), so a later import or
  form does not bring marketing back;
- the erasure is audited with ids and counts only, and marked on the timeline (`privacy.erased`).
Running it again changes nothing.
"""

from __future__ import annotations

import base64
import hashlib
import logging
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy import select
from sqlalchemy.orm import Session

from hub import audit, clock, notices, outbox
from hub.auth import Principal
from hub.db import after_commit
from hub.identities import fold
from hub.ingest import ContactNotFound, InboundEvent, post_event
from hub.models import Contact, Direction, Identity
from hub.suppression import suppress

if TYPE_CHECKING:
    from hub.runtime import Hub

log = logging.getLogger("hub.privacy")

ERASED_KIND = "privacy.erased"
ERASED_CHANNEL = "privacy"
ERASED_STAGE = "erased"
# Columns that name an address, matched against the person's identities in tables not linked to them.
ADDRESS_COLUMNS = ("address", "email", "phone", "phone_number", "email_address")
# Short strings with these names are codes, not content; they survive a blanking.
_CODE_WORDS = ("status", "state", "kind", "channel", "direction", "purpose", "reason", "type", "locale",
               "action", "entity", "stage", "outcome", "result", "currency", "method", "role", "provider")
_PERSONAL_WORDS = ("name", "email", "phone", "address", "ip", "user_agent", "token", "note", "comment",
                   "answer", "title", "subject", "text", "body", "value", "message", "url", "location")
_MAX_DEPTH = 4


@dataclass(frozen=True)
class Link:
    """Rows of `table` belong to the person when `column` holds one of `parent`'s `target` values."""

    table: sa.Table
    column: sa.Column[Any]
    parent: str  # "contact" or the name of a table linked before
    target: str  # the parent's column the value refers to


@dataclass
class ErasureResult:
    contact_id: int
    contact_ids: list[int]
    already_erased: bool
    rows_deleted: dict[str, int] = field(default_factory=dict)
    rows_blanked: dict[str, int] = field(default_factory=dict)
    identities_suppressed: int = 0
    deliveries_cancelled: int = 0
    files_deleted: int = 0

    @property
    def changed(self) -> bool:
        return bool(self.rows_deleted or self.rows_blanked or self.identities_suppressed or self.deliveries_cancelled)

    def as_dict(self) -> dict[str, Any]:
        return {"contact_id": self.contact_id, "contact_ids": self.contact_ids, "already_erased": self.already_erased,
                "changed": self.changed, "rows_deleted": self.rows_deleted, "rows_blanked": self.rows_blanked,
                "identities_suppressed": self.identities_suppressed,
                "deliveries_cancelled": self.deliveries_cancelled, "files_deleted": self.files_deleted}


# --- discovery --------------------------------------------------------------------------------

def _metadata() -> sa.MetaData:
    from hub.schema import metadata

    return metadata()


def links() -> list[Link]:
    """Every way a row can belong to a contact, found from the schema (see the module docstring)."""
    tables = [t for t in _metadata().sorted_tables if t.name != "contact"]
    found: list[Link] = []
    linked: set[str] = set()
    for table in tables:
        for column in table.columns:
            to_contact = any(fk.column.table.name == "contact" for fk in column.foreign_keys)
            if to_contact or (column.name == "contact_id" and not column.foreign_keys):
                found.append(Link(table, column, "contact", "id"))
                linked.add(table.name)
    frontier = set(linked)
    direct = set(linked)
    for _ in range(_MAX_DEPTH):
        added: set[str] = set()
        for table in tables:
            for column in table.columns:
                for fk in column.foreign_keys:
                    parent = fk.column.table.name
                    # A table with its own contact column is judged by it alone: a campaign run one
                    # person's event started has other people's recipients.
                    if parent in frontier and parent != table.name and table.name not in direct \
                            and not _has_link(found, table, column):
                        found.append(Link(table, column, parent, fk.column.name))
                        added.add(table.name)
        frontier = added - linked
        linked |= added
        if not frontier:
            break
    return found


def _has_link(found: list[Link], table: sa.Table, column: sa.Column[Any]) -> bool:
    return any(link.table is table and link.column is column for link in found)


def address_tables(linked: set[str]) -> list[tuple[sa.Table, sa.Column[Any]]]:
    """Tables not linked to contacts that hold an address column (matched by value)."""
    out = []
    for table in _metadata().sorted_tables:
        if table.name in linked or table.name in {"contact", "identity", "user_account", "suppression_entry"}:
            continue
        for name in ADDRESS_COLUMNS:
            if name in table.c and _string_type(table.c[name].type) is not None:
                out.append((table, table.c[name]))
    return out


def person_ids(session: Session, contact_id: int) -> list[int]:
    """The contact, the survivor it was merged into, and everything merged into that (transitively)."""
    contact = session.get(Contact, contact_id)
    if contact is None:
        raise ContactNotFound(f"contact {contact_id} does not exist")
    seen = {contact.id}
    while contact.merged_into is not None and contact.merged_into not in seen:  # up to the survivor
        contact = session.get(Contact, contact.merged_into)  # type: ignore[assignment]
        if contact is None:
            break
        seen.add(contact.id)
    frontier = set(seen)
    while frontier:  # down: everything merged into any of them
        below = set(session.scalars(select(Contact.id).where(Contact.merged_into.in_(frontier)))) - seen
        seen |= below
        frontier = below
    return sorted(seen)  # type: ignore[arg-type]


def root_of(session: Session, contact_id: int) -> int:
    """The survivor at the top of the contact's merge chain."""
    contact = session.get(Contact, contact_id)
    if contact is None:
        raise ContactNotFound(f"contact {contact_id} does not exist")
    seen = set()
    while contact.merged_into is not None and contact.id not in seen:
        seen.add(contact.id)
        up = session.get(Contact, contact.merged_into)
        if up is None:
            break
        contact = up
    return contact.id  # type: ignore[return-value]


class _Person:
    """Row conditions for one person's rows in every linked table (nested subqueries, no id lists)."""

    def __init__(self, ids: list[int], addresses: list[str]) -> None:
        self.ids = ids
        self.addresses = addresses
        self.links = links()
        self.by_table: dict[str, list[Link]] = defaultdict(list)
        for link in self.links:
            self.by_table[link.table.name].append(link)
        self.addressed = address_tables(set(self.by_table))

    def condition(self, table_name: str, depth: int = 0) -> Any:
        if table_name == "contact":
            return _metadata().tables["contact"].c.id.in_(self.ids)
        options = []
        for link in self.by_table.get(table_name, []):
            if link.parent == "contact":
                options.append(link.column.in_(self.ids))
            elif depth < _MAX_DEPTH:
                parent = _metadata().tables[link.parent]
                options.append(link.column.in_(
                    select(parent.c[link.target]).where(self.condition(link.parent, depth + 1))))
        for table, column in self.addressed:
            if table.name == table_name and self.addresses:
                options.append(sa.func.lower(column).in_([a.lower() for a in self.addresses]))
        return sa.or_(*options) if options else sa.false()

    def tables(self) -> list[sa.Table]:
        names = set(self.by_table) | {t.name for t, _ in self.addressed}
        return [t for t in _metadata().sorted_tables if t.name in names]


def _identities(session: Session, ids: list[int]) -> list[Identity]:
    return list(session.scalars(select(Identity).where(Identity.contact_id.in_(ids)).order_by(Identity.id)))


def _person(session: Session, ids: list[int]) -> _Person:
    return _Person(ids, [i.value for i in _identities(session, ids)])


# --- export ----------------------------------------------------------------------------------

def _json_value(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, bytes | memoryview):
        return base64.b64encode(bytes(value)).decode()
    return value


def _rows(session: Session, table: sa.Table, condition: Any) -> list[dict[str, Any]]:
    pk = list(table.primary_key.columns)
    stmt = select(table).where(condition).order_by(*pk)
    return [{k: _json_value(v) for k, v in row._mapping.items()} for row in session.execute(stmt)]


def file_stores(hub: Hub) -> list[Any]:
    """The content-addressed stores installed packages keep files in: a channel's or extension's
    `files` attribute, itself a store (`exists`, `path`) or an object holding stores."""
    stores = []
    for owner in [*hub.channels.values(), *getattr(hub, "extensions", {}).values()]:
        try:
            files = getattr(owner, "files", None)
        except Exception:  # noqa: BLE001 - an unconfigured adapter may refuse; it has no files then
            files = None
        if files is None:
            continue
        candidates = [files] if _is_store(files) else [v for v in vars(files).values() if _is_store(v)]
        stores.extend(candidates)
    return stores


def _is_store(obj: Any) -> bool:
    return callable(getattr(obj, "exists", None)) and callable(getattr(obj, "path", None))


def _file_tables() -> list[sa.Table]:
    return [t for t in _metadata().sorted_tables if "sha256" in t.c]


def _locate(stores: list[Any], sha256: str) -> list[Any]:
    out = []
    for store in stores:
        try:
            if store.exists(sha256):
                out.append(store)
        except ValueError:
            continue
    return out


def export_person(session: Session, *, hub: Hub, contact_id: int, include_files: bool = False) -> dict[str, Any]:
    """Everything held about the person `contact_id` belongs to, as JSON-ready data."""
    ids = person_ids(session, contact_id)
    person = _person(session, ids)
    contact_table = _metadata().tables["contact"]
    tables: dict[str, list[dict[str, Any]]] = {}
    for table in person.tables():
        rows = _rows(session, table, person.condition(table.name))
        if rows:
            tables[table.name] = rows
    stores = file_stores(hub)
    files = []
    for table in _file_tables():
        for row in tables.get(table.name, []):
            sha = row.get("sha256")
            if not isinstance(sha, str):
                continue
            held = _locate(stores, sha)
            entry = {"table": table.name, "row_id": row.get("id"), "sha256": sha,
                     "filename": row.get("filename"), "content_type": row.get("content_type"),
                     "size": row.get("size"), "stored": bool(held)}
            if include_files and held:
                entry["content_base64"] = base64.b64encode(held[0].path(sha).read_bytes()).decode()
            files.append(entry)
    contacts = _rows(session, contact_table, contact_table.c.id.in_(ids))
    account_table = _metadata().tables["account"]
    account_ids = sorted({row["account_id"] for row in contacts if row.get("account_id") is not None})
    erased = session.scalar(select(sa.func.count()).select_from(_metadata().tables["timeline_event"]).where(
        _metadata().tables["timeline_event"].c.kind == ERASED_KIND,
        _metadata().tables["timeline_event"].c.contact_id.in_(ids)))
    return {
        "format": "hub.privacy.export/1",
        "exported_at": clock.now().isoformat(),
        "contact_id": root_of(session, contact_id),
        "contact_ids": ids,
        "erased": bool(erased),
        "contacts": contacts,
        # The company or household the person belongs to: the grouping is about them, its other
        # contacts are not (they are not exported).
        "accounts": _rows(session, account_table, account_table.c.id.in_(account_ids)) if account_ids else [],
        "tables": tables,
        "files": files,
    }


# --- erasure ---------------------------------------------------------------------------------

def _erased_external_id(root: int) -> str:
    return f"erasure:{root}"


def is_erased(session: Session, contact_id: int) -> bool:
    """Whether the person was erased (their timeline carries the privacy.erased marker)."""
    events = _metadata().tables["timeline_event"]
    return session.scalar(select(events.c.id).where(
        events.c.channel == ERASED_CHANNEL, events.c.external_id == _erased_external_id(root_of(session, contact_id)))
    ) is not None


def _blank_value(column: sa.Column[Any], value: Any, pk_value: Any, unique: set[str]) -> Any:
    """What a column's value becomes when its row is blanked (the same value: nothing to change)."""
    policy = (column.info or {}).get("privacy")
    if policy == "keep" or column.primary_key or column.foreign_keys or column.name == "contact_id":
        return value
    kind = column.type
    if isinstance(kind, sa.JSON) or isinstance(value, dict | list):
        if value is None or value == {} or value == []:
            return value
        return {} if isinstance(value, dict) else [] if isinstance(value, list) else (None if column.nullable else {})
    string = _string_type(kind)
    if string is None:  # numbers, times, flags: counts and dates stay
        return value
    if value is None or value == "":
        return value
    length = string.length
    name = column.name.lower()
    personal = any(word in name for word in _PERSONAL_WORDS)
    code = any(word == name or name.endswith("_" + word) for word in _CODE_WORDS)
    if policy != "blank" and not personal and (code or (length is not None and length <= 40)):
        return value
    if column.name in unique:
        marker = f"erased:{pk_value}"
        return value if str(value).startswith("erased:") else marker[: length or len(marker)]
    return None if column.nullable else ""


def _string_type(kind: Any) -> sa.String | None:
    """The String behind a column type (SQLModel's AutoString is a TypeDecorator over one)."""
    if isinstance(kind, sa.String):
        return kind
    impl = getattr(kind, "impl", None)
    if isinstance(impl, sa.String):
        return impl
    if isinstance(impl, type) and issubclass(impl, sa.String):
        return sa.String(getattr(kind, "length", None))
    return None


def _unique_columns(table: sa.Table) -> set[str]:
    names = {c.name for c in table.columns if c.unique}
    for constraint in table.constraints:
        if isinstance(constraint, sa.UniqueConstraint):
            names |= {c.name for c in constraint.columns}
    for index in table.indexes:
        if index.unique:
            names |= {c.name for c in index.columns}
    return names


# What erasure does to the hub's own tables; other tables follow Table.info["privacy"] or "blank".
_CORE_POLICY = {"identity": "delete", "consent_record": "delete", "merge_record": "delete",
                "pending_status": "keep", "audit_entry": "audit", "timeline_event": "event",
                "delivery": "delivery", "scheduler_lease": "keep", "suppression_entry": "keep"}


def _policy(table: sa.Table) -> str:
    if table.name in _CORE_POLICY:
        return _CORE_POLICY[table.name]
    if "sha256" in table.c:
        return "delete"  # a stored file's record: the row goes, the file too when nobody else needs it
    declared = (table.info or {}).get("privacy")
    return declared if declared in {"delete", "blank", "keep"} else "blank"


def _blank_rows(session: Session, table: sa.Table, condition: Any, overrides: dict[str, Any] | None) -> int:
    """Blank the person's rows of `table`; how many changed (rows already blank are left alone).

    With `overrides`, exactly those columns are set (the hub's own tables); without, every column
    goes through the generic rule of `_blank_value`."""
    pk = list(table.primary_key.columns)
    if len(pk) != 1:
        return 0
    unique = _unique_columns(table)
    changed = 0
    if table.name == "audit_entry":  # the erasure's own entries hold ids and counts only: they stay
        condition = sa.and_(condition, table.c.action != ERASED_KIND)
    for row in session.execute(select(table).where(condition)).all():
        values = row._mapping
        pk_value = values[pk[0].name]
        update: dict[str, Any] = {}
        for column in table.columns:
            current = values[column.name]
            if overrides is not None:
                if column.name not in overrides:
                    continue
                new = overrides[column.name]
                new = new(current) if callable(new) else new
            else:
                new = _blank_value(column, current, pk_value, unique)
            if new != current:
                update[column.name] = new
        if update:
            session.execute(sa.update(table).where(pk[0] == pk_value).values(**update))
            changed += 1
    return changed


def erase_person(session: Session, *, hub: Hub, contact_id: int, actor: Principal) -> ErasureResult:
    """Erase the person `contact_id` belongs to, in the caller's transaction (idempotent)."""
    ids = person_ids(session, contact_id)
    root = root_of(session, contact_id)
    already = is_erased(session, root)
    identities = _identities(session, ids)
    person = _Person(ids, [i.value for i in identities])
    result = ErasureResult(contact_id=root, contact_ids=ids, already_erased=already)

    # 1. The addresses go on the hashed do-not-contact list before the identities go.
    for identity in identities:
        if suppress(session, kind=identity.kind, value=identity.value, region=hub.settings.default_region,
                    reason="erased", source="privacy.erasure"):
            result.identities_suppressed += 1
    # 2. Nothing queued goes out any more.
    for cid in ids:
        result.deliveries_cancelled += outbox.cancel_where(session, contact_id=cid)

    # 3. Files referenced by the person's rows (collected before those rows go).
    files: set[str] = set()
    for table in _file_tables():
        if table.name in person.by_table or any(t.name == table.name for t, _ in person.addressed):
            files |= {s for s in session.scalars(select(table.c.sha256).where(person.condition(table.name))) if s}

    # 4. Rows, children before parents so foreign keys hold; conditions are evaluated before deletes
    #    of their parents by materialising the ids first.
    plan: list[tuple[sa.Table, str, list[Any]]] = []
    for table in person.tables():
        policy = _policy(table)
        if table.name not in person.by_table and "privacy" not in (table.info or {}) and policy == "blank":
            policy = "delete"  # found by address alone (a bounce, a suppression): the row is about the address
        if policy == "keep":
            continue
        pk = list(table.primary_key.columns)
        if len(pk) != 1:
            log.warning("privacy: %s has no one-column primary key; its rows are left as they are", table.name)
            continue
        keys = list(session.scalars(select(pk[0]).where(person.condition(table.name))))
        if keys:
            plan.append((table, policy, keys))
    for table, policy, keys in reversed(plan):  # sorted_tables puts parents first
        pk = list(table.primary_key.columns)[0]
        if policy == "delete":
            count = 0
            for chunk in _chunks(keys):
                count += session.execute(sa.delete(table).where(pk.in_(chunk))).rowcount or 0
            if count:
                result.rows_deleted[table.name] = count
    for table, policy, keys in plan:
        if policy == "delete":
            continue
        pk = list(table.primary_key.columns)[0]
        overrides = _overrides(table, policy)
        count = sum(_blank_rows(session, table, pk.in_(chunk), overrides) for chunk in _chunks(keys))
        if count:
            result.rows_blanked[table.name] = count

    # 5. The contact rows become placeholders.
    contact_table = _metadata().tables["contact"]
    placeholders = 0
    for contact in session.scalars(select(Contact).where(Contact.id.in_(ids))):
        name = f"Erased contact #{contact.id}"
        wanted = dict(display_name=name, search_name=fold(name), locale=None, time_zone=None, attributes={},
                      tags=[], owner_id=None, account_id=None, lifecycle_stage=ERASED_STAGE)
        if any(getattr(contact, k) != v for k, v in wanted.items()):
            for key, value in wanted.items():
                setattr(contact, key, value)
            contact.updated_at = clock.now()
            placeholders += 1
    if placeholders:
        result.rows_blanked[contact_table.name] = placeholders
    session.flush()

    # 6. Files nobody else refers to any more are removed once the transaction commits.
    orphans = sorted(sha for sha in files if not _referenced(session, sha))
    stores = file_stores(hub)
    doomed = [(store, sha) for sha in orphans for store in _locate(stores, sha)]
    result.files_deleted = len({sha for _, sha in doomed})
    if doomed:
        after_commit(session, lambda: _unlink(doomed))

    # 7. Marked on the timeline and audited with ids and counts only, the first time or when
    #    something changed since.
    if not already or result.changed:
        if not already:
            post_event(session, event=InboundEvent(
                channel=ERASED_CHANNEL, kind=ERASED_KIND, direction=Direction.INTERNAL, contact_id=root,
                external_id=_erased_external_id(root), actor_user_id=actor.user_id))
            notices.emit(session, "contact.erased", subject=f"contact:{root}", data={"contact_id": root, "contact_ids": ids})
        audit.record(session, actor=actor, action=ERASED_KIND, entity="contact", entity_id=root, contact_id=root,
                     changes={"contact_ids": ids, "rows_deleted": result.rows_deleted,
                              "rows_blanked": result.rows_blanked,
                              "identities_suppressed": result.identities_suppressed,
                              "deliveries_cancelled": result.deliveries_cancelled,
                              "files_deleted": result.files_deleted})
    return result


def _overrides(table: sa.Table, policy: str) -> dict[str, Any] | None:
    """The columns the hub's own tables blank (None: the generic rule for other packages' tables)."""
    if policy == "event":  # kind, channel, time, status stay: campaign results still add up
        return {"subject": None, "text": None, "html": None, "data": {}, "thread_key": None,
                "external_id": _erased_id}
    if policy == "delivery":
        return {"content": {}, "address": "", "last_error": None}
    if policy == "audit":  # who did what when stays; what the values were goes
        return {"changes": {}}
    return None


def _erased_id(external_id: str) -> str:
    """A provider id can name the person (`suppressed:<address>`, an SMS thread): keep only its hash,
    so the row stays unique on (channel, external_id) and says nothing."""
    if external_id.startswith(("erased:", "erasure:")):
        return external_id
    return "erased:" + hashlib.sha256(external_id.encode()).hexdigest()


def _chunks(keys: list[Any], size: int = 500) -> Iterator[list[Any]]:
    for start in range(0, len(keys), size):
        yield keys[start:start + size]


def _referenced(session: Session, sha256: str) -> bool:
    for table in _file_tables():
        if session.scalar(select(sa.func.count()).select_from(table).where(table.c.sha256 == sha256)):
            return True
    return False


def _unlink(doomed: list[tuple[Any, str]]) -> None:
    for store, sha in doomed:
        try:
            store.path(sha).unlink(missing_ok=True)
        except OSError as exc:  # the rows are gone; a file left behind is logged, not fatal
            log.warning("privacy: could not delete stored file %s…: %s", sha[:12], exc)
