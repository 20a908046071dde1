"""Contacts in and out as CSV.

Import reads the file twice: the first pass checks every row and collects every error with its line
number; only a file without errors is written, all of it in one transaction, in the second pass. So a
bad row never leaves half a file behind. Export streams the surviving contacts with the same columns,
so an export imports again cleanly."""

from __future__ import annotations

import csv
import io
import json
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, TextIO

from sqlalchemy import select
from sqlalchemy.orm import Session

from hub import audit
from hub.auth import Principal
from hub.contacts import (
    IdentityIn,
    InvalidField,
    add_identity,
    clean_attributes,
    clean_locale,
    clean_name,
    clean_stage,
    clean_tags,
    clean_time_zone,
    create_contact,
    identity_owners,
    identities_of,
    update_contact,
)
from hub.identities import InvalidIdentity, normalize_email, normalize_phone
from hub.models import Contact, IdentityKind, User

COLUMNS = ("name", "email", "phone", "tags", "locale", "time_zone", "owner_email", "lifecycle_stage")
ATTR = "attr:"
_SAMPLE_CHARS = 65_536
_SPLIT = re.compile(r"[;,]")
# Spreadsheets run cells that start with these as formulas; exports for Excel quote them with "'".
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")

_NOT_UTF8 = "the file is not UTF-8 text; save it as 'CSV UTF-8'"

Progress = Callable[[str, int, int | None], None]  # (stage, rows done, rows in all or None)


@dataclass(frozen=True)
class RowError:
    line: int  # physical line in the file where the row starts; the header is line 1
    column: str | None
    message: str


@dataclass
class ImportResult:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    rows: int = 0
    errors: list[RowError] = field(default_factory=list)

    @property
    def rejected(self) -> int:
        """How many lines have at least one error."""
        return len({e.line for e in self.errors})

    @property
    def ok(self) -> bool:
        return not self.errors


@dataclass
class _Row:
    line: int
    name: str = ""
    identities: list[tuple[str, str]] = field(default_factory=list)
    fields: dict[str, Any] = field(default_factory=dict)  # locale, time_zone, owner_id, lifecycle_stage
    tags: list[str] = field(default_factory=list)
    attributes: dict[str, str] = field(default_factory=dict)


class _Owners:
    """owner_email → user id, looked up once per address."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.cache: dict[str, int | None] = {}

    def __call__(self, value: str) -> int:
        try:
            email = normalize_email(value)
        except InvalidIdentity as exc:
            raise InvalidField("owner_email", exc.message, **exc.params) from None
        if email not in self.cache:
            self.cache[email] = self.session.scalars(select(User.id).where(User.email == email)).first()
        user_id = self.cache[email]
        if user_id is None:
            raise InvalidField("owner_email", f"there is no user with email {email}")
        return user_id


def _seekable(stream: TextIO) -> TextIO:
    try:
        if stream.seekable():
            return stream
    except (AttributeError, ValueError):
        pass
    spool = tempfile.SpooledTemporaryFile(max_size=8 << 20, mode="w+", encoding="utf-8", newline="")
    shutil.copyfileobj(stream, spool)
    spool.seek(0)
    return spool  # type: ignore[return-value]


def detect_delimiter(sample: str) -> str:
    """',' or ';' (spreadsheets in Russian locales save with ';')."""
    sample = sample.removeprefix("\ufeff")
    if "\n" in sample:
        sample = sample[: sample.rindex("\n") + 1]  # a cut last line would confuse the sniffer
    try:
        found = csv.Sniffer().sniff(sample, delimiters=",;").delimiter
    except csv.Error:
        found = ","
    # The header holds plain column names, so it settles a doubtful guess.
    header = sample.splitlines()[0] if sample else ""
    other = ";" if found == "," else ","
    if header.count(found) == 0 and header.count(other) > 0:
        return other
    return found


def _lines(stream: TextIO) -> Iterator[str]:
    first = True
    for line in stream:
        if first:
            line, first = line.removeprefix("\ufeff"), False
        yield line


def _records(stream: TextIO, delimiter: str, errors: list[RowError]) -> Iterator[tuple[int, list[str]]]:
    """(line where the record starts, cells) for each non-blank record; read errors go to `errors`."""
    reader = csv.reader(_lines(stream), delimiter=delimiter)
    previous = 0
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return
        except UnicodeDecodeError:
            errors.append(RowError(previous + 1, None, _NOT_UTF8 + f" (a bad byte at or after line {previous + 1})"))
            return
        except csv.Error as exc:
            errors.append(RowError(previous + 1, None, f"unreadable CSV: {exc}"))
            return
        start, previous = previous + 1, reader.line_num
        if any(cell.strip() for cell in cells):
            yield start, cells


def read_header(line: int, cells: list[str], *, known: tuple[str, ...],
                needs: tuple[set[str], str]) -> tuple[list[str], list[RowError]]:
    """The header row of an import: the known columns (any case) and attr:<key> ones, with errors
    for unknown, repeated and missing columns. `needs` is (columns of which at least one must be
    there, what to say when none is); contacts and accounts differ only in these."""
    columns: list[str] = []
    errors: list[RowError] = []
    unknown: list[str] = []
    for raw in cells:
        name = raw.strip()
        if name.lower().startswith(ATTR):
            key = name[len(ATTR):].strip()
            if not key or len(key) > 100:
                errors.append(RowError(line, name, "an attribute column needs a key of 1 to 100 characters, e.g. attr:city"))
            columns.append(ATTR + key)
        elif name.lower() in known:
            columns.append(name.lower())
        else:
            unknown.append(name or "(empty)")
            columns.append(name)
    if unknown:
        errors.append(RowError(line, None, f"unknown columns: {', '.join(unknown)}; the columns are "
                                           f"{', '.join(known)} and attr:<key> for attributes"))
    repeated = sorted({c for c in columns if columns.count(c) > 1})
    if repeated:
        errors.append(RowError(line, None, f"columns appear twice: {', '.join(repeated)}"))
    required, missing = needs
    if not required & set(columns):
        errors.append(RowError(line, None, missing))
    return columns, errors


def _cell(value: str) -> str:
    value = value.strip()
    # Undo the formula guard of an export made for Excel.
    if len(value) > 1 and value[0] == "'" and value[1:].startswith(_FORMULA_START):
        return value[1:]
    return value


def _parse(line: int, cells: list[str], columns: list[str], *, region: str,
           owners: _Owners) -> tuple[_Row, list[RowError]]:
    row, errors = _Row(line=line), []
    if len(cells) > len(columns):
        extra = [c for c in cells[len(columns):] if c.strip()]
        if extra:
            errors.append(RowError(line, None, f"the row has {len(cells)} fields but the header has {len(columns)}"))
    for column, raw in zip(columns, cells):
        value = _cell(raw)
        if not value:
            continue
        try:
            if column == "name":
                row.name = clean_name(value, "name")
            elif column == "email":
                for part in filter(None, (p.strip() for p in _SPLIT.split(value))):
                    row.identities.append((IdentityKind.EMAIL.value, normalize_email(part)))
            elif column == "phone":
                for part in filter(None, (p.strip() for p in _SPLIT.split(value))):
                    row.identities.append((IdentityKind.PHONE.value, normalize_phone(part, region)))
            elif column == "tags":
                row.tags = clean_tags([t for t in (p.strip() for p in _SPLIT.split(value)) if t], "tags")
            elif column == "locale":
                row.fields["locale"] = clean_locale(value, "locale")
            elif column == "time_zone":
                row.fields["time_zone"] = clean_time_zone(value, "time_zone")
            elif column == "owner_email":
                row.fields["owner_id"] = owners(value)
            elif column == "lifecycle_stage":
                row.fields["lifecycle_stage"] = clean_stage(value, "lifecycle_stage")
            else:
                row.attributes[column[len(ATTR):]] = value
        except InvalidField as exc:
            errors.append(RowError(line, column, exc.text))
        except InvalidIdentity as exc:
            errors.append(RowError(line, column, str(exc)))
    if row.attributes:
        try:
            clean_attributes(row.attributes, "attributes")
        except InvalidField as exc:
            errors.append(RowError(line, None, exc.text))
    row.identities = list(dict.fromkeys(row.identities))
    if not errors and not row.name and not row.identities:
        errors.append(RowError(line, None, "a row needs a name, an email or a phone"))
    return row, errors


def _check(session: Session, stream: TextIO, delimiter: str, *, region: str,
           progress: Progress | None) -> tuple[list[str], int, list[RowError]]:
    """First pass: every error in the file, and the number of rows to write."""
    errors: list[RowError] = []
    records = _records(stream, delimiter, errors)
    first = next(records, None)
    if first is None:
        return [], 0, errors or [RowError(1, None, "the file is empty; its first line must be a header such as "
                                                   + ",".join(COLUMNS))]
    columns, header_errors = read_header(*first, known=COLUMNS,
                                         needs=({"name", "email", "phone"}, "the header needs a name, email or phone column"))
    if header_errors:
        return columns, 0, header_errors
    owners = _Owners(session)
    seen: dict[tuple[str, str], int] = {}
    claimed: dict[int, int] = {}
    rows = 0
    for line, cells in records:
        rows += 1
        row, row_errors = _parse(line, cells, columns, region=region, owners=owners)
        for kind, value in row.identities:
            if (kind, value) in seen:
                row_errors.append(RowError(line, kind, f"{value} is also on line {seen[(kind, value)]}"))
            else:
                seen[(kind, value)] = line
        if not row_errors:
            found = set(identity_owners(session, row.identities).values())
            if len(found) > 1:
                row_errors.append(RowError(line, None, f"the row's email and phone belong to different contacts "
                                                       f"({', '.join(map(str, sorted(found)))}); merge them first"))
            elif found:
                contact_id = found.pop()
                if contact_id in claimed:
                    row_errors.append(RowError(line, None, f"line {claimed[contact_id]} already updates the same "
                                                           f"contact ({contact_id})"))
                claimed[contact_id] = line
        errors.extend(row_errors)
        if progress:
            progress("checking", rows, None)
    return columns, rows, errors


def _apply(session: Session, row: _Row, *, actor: Principal, region: str) -> str:
    owners = identity_owners(session, row.identities)
    if not owners:
        create_contact(session, actor=actor, region=region, display_name=row.name,
                       identities=[IdentityIn(kind=kind, value=value) for kind, value in row.identities],
                       tags=row.tags, attributes=row.attributes, **row.fields)
        return "created"
    contact = session.get(Contact, next(iter(owners.values())))
    assert contact is not None
    changes: dict[str, Any] = dict(row.fields)
    if row.name:
        changes["display_name"] = row.name
    if row.tags:
        changes["tags"] = [*contact.tags, *row.tags]
    if row.attributes:
        changes["attributes"] = {**contact.attributes, **row.attributes}
    diff = update_contact(session, contact=contact, actor=actor, changes=changes, action="contact.import")
    new = [(kind, value) for kind, value in row.identities if (kind, value) not in owners]
    for kind, value in new:
        add_identity(session, contact=contact, actor=actor, identity=IdentityIn(kind=kind, value=value), region=region)
    return "updated" if diff or new else "unchanged"


def import_contacts(session: Session, *, stream: TextIO, actor: Principal, region: str,
                    progress: Progress | None = None, source: str = "") -> ImportResult:
    """Check the whole file, then write all of it or, if any row is bad, nothing; the caller commits.

    A row whose email or phone is known updates that contact (tags and attributes are added to its
    own); a row with neither always creates a contact."""
    stream = _seekable(stream)
    start = stream.tell()
    try:
        delimiter = detect_delimiter(stream.read(_SAMPLE_CHARS))
    except UnicodeDecodeError:
        return ImportResult(errors=[RowError(1, None, _NOT_UTF8)])
    stream.seek(start)
    columns, total, errors = _check(session, stream, delimiter, region=region, progress=progress)
    result = ImportResult(rows=total, errors=errors)
    if errors:
        return result

    stream.seek(start)
    records = _records(stream, delimiter, errors)
    next(records)  # the header, checked above
    owners = _Owners(session)
    with session.begin_nested():
        for done, (line, cells) in enumerate(records, start=1):
            row, row_errors = _parse(line, cells, columns, region=region, owners=owners)
            if row_errors:  # the file changed between the passes
                raise RuntimeError(f"line {line} changed while importing: {row_errors[0].message}")
            outcome = _apply(session, row, actor=actor, region=region)
            setattr(result, outcome, getattr(result, outcome) + 1)
            if progress:
                progress("writing", done, total)
        if errors:
            raise RuntimeError(f"the file changed while importing: {errors[0].message}")
        audit.record(session, actor=actor, action="contacts.import", entity="import", entity_id=source or None,
                     changes={"source": source, "rows": total, "created": result.created,
                              "updated": result.updated, "unchanged": result.unchanged})
    return result


# Export.

def _guard(value: str, excel: bool) -> str:
    return "'" + value if excel and value.startswith(_FORMULA_START) else value


def _attribute_cell(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def export_contacts(session: Session, *, excel: bool = False, batch: int = 500) -> Iterator[str]:
    """CSV text in chunks, one row per surviving contact; `excel` adds a BOM, ';' and formula guards."""
    keys: set[str] = set()
    for attributes in session.scalars(
        select(Contact.attributes).where(Contact.merged_into.is_(None)).execution_options(yield_per=batch * 2)
    ):
        keys.update(attributes)
    attr_keys = sorted(keys)
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=";" if excel else ",", lineterminator="\r\n")
    writer.writerow([*COLUMNS, *(ATTR + k for k in attr_keys)])
    yield ("\ufeff" if excel else "") + buffer.getvalue()
    stmt = (
        select(Contact, User.email)
        .outerjoin(User, User.id == Contact.owner_id)  # type: ignore[arg-type]
        .where(Contact.merged_into.is_(None))
        .order_by(Contact.id)
        .execution_options(yield_per=batch)
    )
    for part in session.execute(stmt).partitions():
        idents = identities_of(session, [contact.id for contact, _ in part])
        buffer.seek(0)
        buffer.truncate()
        for contact, owner_email in part:
            mine = idents[contact.id]
            cells = [
                contact.display_name,
                ";".join(i.value for i in mine if i.kind == IdentityKind.EMAIL),
                ";".join(i.value for i in mine if i.kind == IdentityKind.PHONE),
                ";".join(contact.tags),
                contact.locale or "",
                contact.time_zone or "",
                owner_email or "",
                contact.lifecycle_stage,
                *(_attribute_cell(contact.attributes[k]) if k in contact.attributes else "" for k in attr_keys),
            ]
            writer.writerow([_guard(c, excel) for c in cells])
        yield buffer.getvalue()
