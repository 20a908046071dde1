"""Accounts in and out as CSV, on the contacts' CSV machinery (hub.csvio): the same delimiter
detection, line numbers, formula guards and two passes — every row is checked first and every
error reported with its line; only a file without errors is written, all of it in one transaction
(a rule refusing a row on the way, a manager past the cap say, rolls the whole file back).

Columns: id, name, kind, is_key, owner_email, deputy_email, expected_profit, cooperation_until,
fallback_plan, interaction_notes, attr:<key>. A row with an id updates that account; without one,
it updates the one account of the same name, or creates one. An export imports again cleanly."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any, TextIO

from sqlalchemy import func, select
from sqlalchemy.orm import Session, aliased

from hub import audit
from hub.accounts import AccountRefused, create_account, update_account
from hub.auth import Principal
from hub.contacts import InvalidField, clean_attributes
from hub.csvio import (
    _NOT_UTF8,
    _SAMPLE_CHARS,
    ATTR,
    ImportResult,
    RowError,
    _attribute_cell,
    _cell,
    _guard,
    _Owners,
    _records,
    _seekable,
    detect_delimiter,
    read_header,
)
from hub.identities import fold
from hub.models import Account, AccountKind, User

COLUMNS = ("id", "name", "kind", "is_key", "owner_email", "deputy_email", "expected_profit", "cooperation_until",
           "fallback_plan", "interaction_notes")
TRUE, FALSE = {"1", "true", "yes", "да", "y"}, {"0", "false", "no", "нет", "n", ""}


@dataclass
class _Row:
    line: int
    account_id: int | None = None
    fields: dict[str, Any] = field(default_factory=dict)
    attributes: dict[str, str] = field(default_factory=dict)


def _parse(session: Session, line: int, cells: list[str], columns: list[str], owners: _Owners) -> tuple[_Row, list[RowError]]:
    row, errors = _Row(line), []
    if len([c for c in cells[len(columns):] if c.strip()]):
        errors.append(RowError(line, None, f"the row has {len(cells)} fields but the header has {len(columns)}"))
    for column, raw in zip(columns, cells):
        value = _cell(raw)
        try:
            if column == "id":
                if value:
                    if not value.isdigit():
                        raise InvalidField("id", "an id is a whole number (leave it empty to create an account)")
                    row.account_id = int(value)
                    if session.get(Account, row.account_id) is None:
                        raise InvalidField("id", f"there is no account {value}")
            elif column == "is_key":
                if value.lower() not in TRUE | FALSE:
                    raise InvalidField("is_key", "write yes or no")
                row.fields["is_key"] = value.lower() in TRUE
            elif column == "kind":
                if value:
                    if value.lower() not in {k.value for k in AccountKind}:
                        raise InvalidField("kind", f"the kind is one of {', '.join(k.value for k in AccountKind)}")
                    row.fields["kind"] = value.lower()
            elif column in ("owner_email", "deputy_email"):
                target = column.replace("_email", "_id")
                try:
                    row.fields[target] = owners(value) if value else None
                except InvalidField as exc:
                    raise InvalidField(column, exc.text) from None
            elif column == "expected_profit":
                try:
                    row.fields[column] = Decimal(value.replace(" ", "").replace(",", ".")) if value else None
                except InvalidOperation:
                    raise InvalidField(column, "write the expected profit as a number, e.g. 1500000") from None
                if row.fields[column] is not None and abs(row.fields[column]) >= Decimal("1e12"):
                    raise InvalidField(column, "the expected profit is too large")
            elif column == "cooperation_until":
                try:
                    row.fields[column] = date.fromisoformat(value) if value else None
                except ValueError:
                    raise InvalidField(column, "write the date as YYYY-MM-DD") from None
            elif column == "name":
                if value:
                    row.fields["name"] = value
            elif column in ("fallback_plan", "interaction_notes"):
                row.fields[column] = value or None
            elif value:
                row.attributes[column[len(ATTR):]] = value
        except InvalidField as exc:
            errors.append(RowError(line, column, exc.text))
    if row.attributes:
        try:
            clean_attributes(row.attributes, "attributes")
        except InvalidField as exc:
            errors.append(RowError(line, None, exc.text))
    if not errors and row.account_id is None and not row.fields.get("name"):
        errors.append(RowError(line, "name", "a new account needs a name"))
    return row, errors


def _target(session: Session, row: _Row) -> int | None:
    """The account the row updates: its id, else the one account of the same name (None: create)."""
    if row.account_id is not None:
        return row.account_id
    ids = list(session.scalars(select(Account.id).where(Account.search_name == fold(" ".join(
        str(row.fields["name"]).split()))).limit(2)))
    return ids[0] if len(ids) == 1 else None


def _check(session: Session, stream: TextIO, delimiter: str) -> tuple[list[str], int, list[RowError]]:
    errors: list[RowError] = []
    records = _records(stream, delimiter, errors)
    first = next(records, None)
    if first is None:
        return [], 0, errors or [RowError(1, None, "the file is empty; its first line must be a header such as "
                                                   + ",".join(COLUMNS))]
    columns, header_errors = read_header(
        *first, known=COLUMNS, needs=({"name", "id"}, "the header needs a name column (or an id column to update accounts)"))
    if header_errors:
        return columns, 0, header_errors
    owners, claimed, rows = _Owners(session), dict[Any, int](), 0
    for line, cells in records:
        rows += 1
        row, row_errors = _parse(session, line, cells, columns, owners)
        if not row_errors:
            target = _target(session, row)
            if target is None and row.account_id is None:
                if session.scalar(select(func.count()).select_from(Account).where(
                        Account.search_name == fold(" ".join(str(row.fields["name"]).split())))) > 1:
                    row_errors.append(RowError(line, "name", "several accounts have this name; give the id"))
                target = ("new", fold(" ".join(str(row.fields["name"]).split())))  # one new name: one account
            if target in claimed:
                row_errors.append(RowError(line, None, f"line {claimed[target]} already writes the same account"))
            claimed[target] = line
        errors.extend(row_errors)
    return columns, rows, errors


def import_accounts(session: Session, *, stream: TextIO, actor: Principal, source: str = "") -> ImportResult:
    """Check the whole file, then write all of it or, if any row is bad, nothing; the caller commits."""
    stream = _seekable(stream)
    start = stream.tell()
    try:
        delimiter = detect_delimiter(stream.read(_SAMPLE_CHARS))
    except UnicodeDecodeError:
        return ImportResult(errors=[RowError(1, None, _NOT_UTF8)])
    stream.seek(start)
    columns, total, errors = _check(session, stream, delimiter)
    result = ImportResult(rows=total, errors=errors)
    if errors:
        return result
    stream.seek(start)
    records = _records(stream, delimiter, errors)
    next(records)
    owners = _Owners(session)
    line = 0
    try:
        with session.begin_nested():
            for line, cells in records:
                row, row_errors = _parse(session, line, cells, columns, owners)
                if row_errors:  # the file changed between the passes
                    raise RuntimeError(f"line {line} changed while importing: {row_errors[0].message}")
                target = _target(session, row)
                changes = dict(row.fields)
                if target is None:
                    create_account(session, actor=actor, attributes=row.attributes, **changes)
                    result.created += 1
                    continue
                account = session.get(Account, target, with_for_update=True)
                assert account is not None
                if row.attributes:
                    changes["attributes"] = {**account.attributes, **row.attributes}
                diff = update_account(session, account=account, actor=actor, changes=changes)
                if diff:
                    result.updated += 1
                else:
                    result.unchanged += 1
            audit.record(session, actor=actor, action="accounts.import", entity="import", entity_id=source or None,
                         changes={"source": source, "rows": total, "created": result.created,
                                  "updated": result.updated, "unchanged": result.unchanged})
    except AccountRefused as exc:  # a rule refused a row: the savepoint is gone, nothing of the file stays
        return ImportResult(rows=total, errors=[RowError(line, None, str(exc))])
    return result


def export_accounts(session: Session, *, excel: bool = False, batch: int = 500) -> Iterator[str]:
    """CSV text in chunks, one row per account, the import's columns; `excel` adds a BOM, ';' and guards."""
    keys: set[str] = set()
    for attributes in session.scalars(select(Account.attributes).execution_options(yield_per=batch * 2)):
        keys.update(attributes)
    attr_keys = sorted(keys)
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=";" if excel else ",", lineterminator="\r\n")
    writer.writerow([*COLUMNS, *(ATTR + k for k in attr_keys)])
    yield ("\ufeff" if excel else "") + buffer.getvalue()
    owner, deputy = aliased(User), aliased(User)
    stmt = (select(Account, owner.email, deputy.email)
            .outerjoin(owner, owner.id == Account.owner_id).outerjoin(deputy, deputy.id == Account.deputy_id)
            .order_by(Account.id).execution_options(yield_per=batch))
    for part in session.execute(stmt).partitions():
        buffer.seek(0)
        buffer.truncate()
        for account, owner_email, deputy_email in part:
            cells = [str(account.id), account.name, account.kind, "yes" if account.is_key else "no", owner_email or "",
                     deputy_email or "", "" if account.expected_profit is None else str(account.expected_profit),
                     account.cooperation_until.isoformat() if account.cooperation_until else "",
                     account.fallback_plan or "", account.interaction_notes or "",
                     *(_attribute_cell(account.attributes[k]) if k in account.attributes else "" for k in attr_keys)]
            writer.writerow([_guard(c, excel) for c in cells])
        yield buffer.getvalue()
