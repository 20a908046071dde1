"""Accounts: a company or household that groups contacts, and what its key-account manager knows.

Accounts are core: conversations, segments, figures and the agent's card all group by them. A
contact joins one through its `account_id` (edited like any contact field, so linking is audited on
the contact); a contact without one is its own account in the figures (keyaccounts). The account's
timeline is its contacts' timelines merged, read through `hub.timeline.timeline_page`.

Service functions take the session first and everything else by keyword; they do not commit. Every
change is written to the audit log in the same transaction; flagging a key account is an entry of
its own (`account.key`), so the flag's history is the audit log's.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import func, select, tuple_, update
from sqlalchemy.orm import Session

from hub import audit, clock
from hub.auth import Principal
from hub.contacts import InvalidField, clean_attributes, clean_owner
from hub.db import contains_folded
from hub.identities import fold
from hub.models import Account, AccountKind, AuditEntry, Contact
from hub.translatable import Translatable
from hub.timeline import InvalidCursor, Page, TimelineFilter, decode_cursor, encode_cursor, timeline_page

EDITABLE = ("name", "kind", "attributes", "owner_id", "deputy_id", "expected_profit", "cooperation_until",
            "fallback_plan", "interaction_notes")
KEY_ACTION = "account.key"
MAX_TEXT = 20_000


class AccountNotFound(LookupError):
    pass


class AccountRefused(Translatable, ValueError):
    """A change an extension's rule refuses (`Extension.account_rules`): a manager past the cap of key
    accounts, say. `rule` names it; the same change with `override=True` goes through, audited."""

    def __init__(self, message: str, *, rule: str, **params: Any) -> None:
        self.rule = rule
        super().__init__(message, **params)


OVERRIDE_ACTION = "account.override"
RULED = frozenset({"is_key", "owner_id"})


def enforce_rules(session: Session, *, account: Account, actor: Principal, changed: set[str] | frozenset[str],
                  override: bool = False) -> list[str]:
    """Run the installed extensions' account rules on the account as it now stands. A refusal is
    raised, unless `override`: then each rule let through is one `account.override` audit entry
    (who, which rule, what it said). The rules overridden, by name."""
    hub = session.info.get("hub")  # a session from Hub.session(); a bare one has no extensions to ask
    if hub is None or not changed:
        return []
    session.flush()
    overridden = []
    for _name, extension in sorted(hub.extensions.items()):
        for rule in extension.account_rules():
            try:
                rule(session, account, frozenset(changed))
            except AccountRefused as exc:
                if not override:
                    raise
                audit.record(session, actor=actor, action=OVERRIDE_ACTION, entity="account", entity_id=account.id,
                             changes={"rule": exc.rule, "refused": str(exc)})
                overridden.append(exc.rule)
    return overridden


class AccountIn(BaseModel):
    """The fields of an account as the API and the pages take them."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=300)
    kind: AccountKind = AccountKind.COMPANY
    attributes: dict[str, Any] = Field(default_factory=dict,
                                       description="Domain, INN, address…: free keys (as a contact's)")
    owner_id: int | None = Field(default=None, description="The key-account manager (a user id)")
    deputy_id: int | None = Field(default=None, description="Who stands in for the owner (a user id)")
    is_key: bool = False
    expected_profit: Decimal | None = Field(default=None, max_digits=14, decimal_places=2)
    cooperation_until: date | None = Field(default=None, description="The term of cooperation")
    fallback_plan: str | None = Field(default=None, max_length=MAX_TEXT, description="What we do if it is lost")
    interaction_notes: str | None = Field(default=None, max_length=MAX_TEXT, description="How to work with it")


class AccountPatch(BaseModel):
    """Only the fields sent change; null clears an optional one."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=300)
    kind: AccountKind | None = None
    attributes: dict[str, Any] | None = None
    owner_id: int | None = None
    deputy_id: int | None = None
    is_key: bool | None = None
    expected_profit: Decimal | None = Field(default=None, max_digits=14, decimal_places=2)
    cooperation_until: date | None = None
    fallback_plan: str | None = Field(default=None, max_length=MAX_TEXT)
    interaction_notes: str | None = Field(default=None, max_length=MAX_TEXT)


class AccountPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    kind: str
    attributes: dict[str, Any]
    owner_id: int | None
    deputy_id: int | None
    is_key: bool
    expected_profit: Decimal | None
    cooperation_until: date | None
    fallback_plan: str | None
    interaction_notes: str | None
    created_at: datetime
    updated_at: datetime
    contacts: int = Field(default=0, description="How many contacts it groups")


def _clean(session: Session, name: str, value: Any) -> Any:
    if name == "name":
        value = " ".join(str(value or "").split())
        if not value:
            raise InvalidField("name", "cannot be empty")
        return value[:300]
    if name == "kind":
        try:
            return AccountKind(value).value
        except ValueError:
            raise InvalidField("kind", f"must be one of {', '.join(k.value for k in AccountKind)}") from None
    if name == "attributes":
        return clean_attributes(value)
    if name in ("owner_id", "deputy_id"):
        return clean_owner(session, value, field=name)
    if name == "expected_profit":
        return None if value is None else Decimal(str(value)).quantize(Decimal("0.01"))
    if name in ("fallback_plan", "interaction_notes"):
        text = (value or "").strip()
        return text[:MAX_TEXT] or None
    if name == "cooperation_until":
        return value
    raise InvalidField(name, f"is not an account field; editable fields are {', '.join(EDITABLE)}")


def fields_of(account: Account) -> dict[str, Any]:
    """The editable fields as JSON-ready values, for diffs in the audit log."""
    out = {}
    for name in EDITABLE:
        value = getattr(account, name)
        out[name] = str(value) if isinstance(value, (Decimal, date)) else value
    return out


def create_account(session: Session, *, actor: Principal, name: str, is_key: bool = False, override: bool = False,
                   **fields: Any) -> Account:
    """A new account (audited; flagged key with its own `account.key` entry when asked; the
    extensions' rules checked, `override` lets a refusal through on the audit log)."""
    cleaned = {n: _clean(session, n, v) for n, v in {"name": name, **fields}.items()}
    account = Account(**cleaned)
    account.search_name = fold(account.name)
    session.add(account)
    session.flush()
    audit.record(session, actor=actor, action="account.create", entity="account", entity_id=account.id,
                 changes={k: [None, v] for k, v in fields_of(account).items() if v not in (None, {}, "")})
    if is_key:
        set_key(session, account=account, actor=actor, is_key=True, check=False)
    enforce_rules(session, account=account, actor=actor, override=override,
                  changed={n for n in RULED if getattr(account, n)})
    return account


def update_account(session: Session, *, account: Account, actor: Principal, changes: dict[str, Any],
                   override: bool = False) -> dict[str, Any]:
    """Apply a partial update (`is_key` goes through set_key); the audited diff, {} when nothing changed.
    AccountRefused when an extension's rule refuses it and `override` is not set."""
    changes = dict(changes)
    key = changes.pop("is_key", None)
    cleaned = {n: _clean(session, n, v) for n, v in changes.items()}
    before = fields_of(account)
    for name, value in cleaned.items():
        setattr(account, name, value)
    diff = audit.diff(before, fields_of(account))
    if diff:
        account.search_name = fold(account.name)
        account.updated_at = clock.now()
        session.flush()
        audit.record(session, actor=actor, action="account.update", entity="account", entity_id=account.id,
                     changes=diff)
    if key is not None and set_key(session, account=account, actor=actor, is_key=bool(key), check=False):
        diff["is_key"] = [not key, bool(key)]
    enforce_rules(session, account=account, actor=actor, changed=RULED & set(diff), override=override)
    return diff


def set_key(session: Session, *, account: Account, actor: Principal, is_key: bool, reason: str = "",
            override: bool = False, check: bool = True) -> bool:
    """Flag or unflag a key account; True when it changed. Each change is one `account.key` audit entry.
    Flagging runs the extensions' rules (AccountRefused unless `override`)."""
    if account.is_key == is_key:
        return False
    account.is_key = is_key
    account.updated_at = clock.now()
    session.flush()
    changes: dict[str, Any] = {"is_key": [not is_key, is_key]}
    if reason:
        changes["reason"] = reason[:500]
    audit.record(session, actor=actor, action=KEY_ACTION, entity="account", entity_id=account.id, changes=changes)
    if check and is_key:
        enforce_rules(session, account=account, actor=actor, changed={"is_key"}, override=override)
    return True


def key_history(session: Session, *, account_id: int) -> list[AuditEntry]:
    """When the account was flagged and unflagged, by whom and why; newest first."""
    return list(session.scalars(
        select(AuditEntry).where(AuditEntry.entity == "account", AuditEntry.entity_id == str(account_id),
                                 AuditEntry.action == KEY_ACTION)
        .order_by(AuditEntry.occurred_at.desc(), AuditEntry.id.desc())
    ))


def delete_account(session: Session, *, account: Account, actor: Principal) -> int:
    """Delete an account; its contacts stay, unlinked. How many contacts were unlinked."""
    members = member_ids(session, account_id=account.id)  # type: ignore[arg-type]
    if members:
        session.execute(update(Contact).where(Contact.account_id == account.id).values(account_id=None))
    audit.record(session, actor=actor, action="account.delete", entity="account", entity_id=account.id,
                 changes={"name": [account.name, None], "contacts": members})
    session.delete(account)
    session.flush()
    return len(members)


def get_account(session: Session, account_id: int, *, lock: bool = False) -> Account:
    account = session.get(Account, account_id, with_for_update=lock)
    if account is None:
        raise AccountNotFound(f"account {account_id} does not exist")
    return account


def member_ids(session: Session, *, account_id: int) -> list[int]:
    """The surviving contacts of the account (a merged duplicate's events live on its survivor)."""
    return list(session.scalars(
        select(Contact.id).where(Contact.account_id == account_id, Contact.merged_into.is_(None)).order_by(Contact.id)
    ))


def members(session: Session, *, account_id: int) -> list[Contact]:
    return list(session.scalars(
        select(Contact).where(Contact.account_id == account_id, Contact.merged_into.is_(None))
        .order_by(Contact.search_name, Contact.id)
    ))


def contact_counts(session: Session, account_ids: Sequence[int]) -> dict[int, int]:
    """How many surviving contacts each account groups, in one query."""
    if not account_ids:
        return {}
    rows = session.execute(
        select(Contact.account_id, func.count()).where(Contact.account_id.in_(list(account_ids)),
                                                       Contact.merged_into.is_(None))
        .group_by(Contact.account_id)
    )
    counts = {int(aid): int(n) for aid, n in rows}
    return {aid: counts.get(aid, 0) for aid in account_ids}


def to_public(session: Session, accounts: Sequence[Account]) -> list[AccountPublic]:
    counts = contact_counts(session, [a.id for a in accounts])  # type: ignore[misc]
    return [AccountPublic.model_validate(a).model_copy(update={"contacts": counts[a.id]})  # type: ignore[index]
            for a in accounts]


def search_accounts(session: Session, *, query: str = "", limit: int = 50, cursor: str | None = None,
                    owner_id: int | None = None, key_only: bool = False) -> Page[Account]:
    """Accounts whose name contains `query` (any case, any script), alphabetically in keyset pages."""
    stmt = select(Account)
    query = " ".join(query.split())
    if query:
        stmt = stmt.where(contains_folded(session, Account.search_name, query))
    if owner_id is not None:
        stmt = stmt.where(Account.owner_id == owner_id)
    if key_only:
        stmt = stmt.where(Account.is_key.is_(True))
    if cursor:
        parts = decode_cursor(cursor)
        try:
            name, last_id = str(parts[0]), int(parts[1])  # type: ignore[call-overload]
        except (IndexError, ValueError, TypeError):
            raise InvalidCursor("the cursor is not one this API issued; start again without it") from None
        stmt = stmt.where(tuple_(Account.search_name, Account.id) > tuple_(name, last_id))
    rows = list(session.scalars(stmt.order_by(Account.search_name, Account.id).limit(limit + 1)))
    if len(rows) > limit:
        rows = rows[:limit]
        return Page(items=rows, next_cursor=encode_cursor(rows[-1].search_name, rows[-1].id))
    return Page(items=rows, next_cursor=None)


def account_timeline(session: Session, *, account_id: int, limit: int = 50, cursor: str | None = None,
                     filters: TimelineFilter = TimelineFilter()) -> Page[Any]:
    """The account's contacts' timelines merged, newest first, in the timeline's own keyset pages."""
    return timeline_page(session, contact_ids=member_ids(session, account_id=account_id), limit=limit,
                         cursor=cursor, filters=filters)



CHOICES_LIMIT = 500


def account_choices(session: Session, *, current: int | None = None) -> list[Account]:
    """Accounts to pick from in a form, alphabetically (the first CHOICES_LIMIT, plus the current one)."""
    rows = list(session.scalars(select(Account).order_by(Account.search_name, Account.id).limit(CHOICES_LIMIT)))
    if current is not None and all(a.id != current for a in rows):
        chosen = session.get(Account, current)
        if chosen is not None:
            rows.append(chosen)
    return rows
