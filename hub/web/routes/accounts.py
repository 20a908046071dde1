"""Accounts in the workspace: the list with search, an account's page (fields, contacts, the merged
timeline of its contacts in pages) and its form. Installed extensions add panels to the page
(`Extension.account_panels`: key-account figures, say), loaded as fragments."""

from __future__ import annotations

from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Query, Request
from sqlalchemy.orm import Session
from starlette.responses import Response

from hub.accounts import (
    AccountNotFound,
    AccountRefused,
    account_timeline,
    create_account,
    get_account,
    key_history,
    members,
    search_accounts,
    to_public,
    update_account,
)
from hub.contacts import InvalidField
from hub.models import Account, AccountKind, Contact, User
from hub.timeline import InvalidCursor
from hub.web import timeline_view
from hub.web.card import active_users, display_names
from hub.web.i18n import N_
from hub.web.pages import Agent, PageError, get_hub, is_fragment, redirect, render, require

router = APIRouter()
Reader = Annotated[Agent, Depends(require("contacts:read"))]
Writer = Annotated[Agent, Depends(require("contacts:write"))]
LIST_LIMIT = 50
KIND_LABELS = {AccountKind.COMPANY: N_("Company"), AccountKind.HOUSEHOLD: N_("Household")}
NO_ACCOUNT = N_("There is no such account.")


def _account_or_404(db: Session, account_id: int) -> Account:
    try:
        return get_account(db, account_id)
    except AccountNotFound:
        raise PageError(404, NO_ACCOUNT) from None


@router.get("/accounts")
def account_list(request: Request, agent: Reader, q: Annotated[str, Query(max_length=200)] = "",
                 key: bool = False, cursor: str | None = None) -> Response:
    hub = get_hub(request)
    with hub.session(read_only=True) as db:
        try:
            page = search_accounts(db, query=q, key_only=key, limit=LIST_LIMIT, cursor=cursor)
        except InvalidCursor:
            raise PageError(400, N_("That page of results has expired; search again.")) from None
        accounts = to_public(db, page.items)
        owners = display_names(db, User, {a.owner_id for a in accounts if a.owner_id})
    return render(request, agent, "accounts/list.html", q=q.strip(), key=key, accounts=accounts, owners=owners,
                  next_cursor=page.next_cursor, kind_labels=KIND_LABELS)


def _timeline_values(request: Request, agent: Agent, db: Session, *, account_id: int, cursor: str | None,
                     previous_day: date | None) -> dict[str, Any]:
    hub = get_hub(request)
    try:
        found = account_timeline(db, account_id=account_id, cursor=cursor, limit=timeline_view.PAGE_SIZE)
    except InvalidCursor:
        raise PageError(400, N_("That part of the timeline has expired; reload the page.")) from None
    # Threads are a contact's: counted per event's own contact would cost a query each, so the
    # account's timeline links each event to its contact's page instead.
    items = timeline_view.views(db, found.items, contact_id=0, fmt=agent.fmt, channels=hub.channels,
                                previous_day=previous_day)
    names = display_names(db, Contact, {e.contact_id for e in found.items})
    return {"items": items, "next_cursor": found.next_cursor, "names": names,
            "last_day": items[-1].day.isoformat() if items else (previous_day.isoformat() if previous_day else "")}


@router.get("/accounts/new")
def new_form(request: Request, agent: Writer) -> Response:
    hub = get_hub(request)
    with hub.session(read_only=True) as db:
        users = active_users(db)
    return render(request, agent, "accounts/edit.html", account=None, values={}, users=users, error=None,
                  kind_labels=KIND_LABELS)


@router.get("/accounts/{account_id}")
def account_page(request: Request, account_id: int, agent: Reader) -> Response:
    hub = get_hub(request)
    with hub.session(read_only=True) as db:
        account = _account_or_404(db, account_id)
        public = to_public(db, [account])[0]
        people = members(db, account_id=account_id)
        users = display_names(db, User, {u for u in (account.owner_id, account.deputy_id) if u})
        history = key_history(db, account_id=account_id)
        timeline = _timeline_values(request, agent, db, account_id=account_id, cursor=None, previous_day=None)
    panels = [panel for _name, ext in sorted(hub.extensions.items())
              for panel in (ext.account_panels() if hasattr(ext, "account_panels") else [])
              if agent.allows(panel.scope)]
    return render(request, agent, "accounts/page.html", account=public, people=people, users=users,
                  history=history, kind_labels=KIND_LABELS, panels=panels, **timeline)


@router.get("/accounts/{account_id}/timeline")
def timeline_fragment(request: Request, account_id: int, agent: Reader, cursor: str | None = None,
                      day: str | None = None) -> Response:
    hub = get_hub(request)
    try:
        previous_day = date.fromisoformat(day) if day else None
    except ValueError:
        previous_day = None
    with hub.session(read_only=True) as db:
        account = _account_or_404(db, account_id)
        values = _timeline_values(request, agent, db, account_id=account_id, cursor=cursor, previous_day=previous_day)
    if not is_fragment(request):
        return redirect(request, f"/accounts/{account_id}")
    return render(request, agent, "accounts/_timeline_items.html", account=account, **values)


@router.get("/accounts/{account_id}/edit")
def edit_form(request: Request, account_id: int, agent: Writer) -> Response:
    hub = get_hub(request)
    with hub.session(read_only=True) as db:
        account = _account_or_404(db, account_id)
        users = active_users(db)
    return render(request, agent, "accounts/edit.html", account=account, values=_values_of(account), users=users,
                  error=None, kind_labels=KIND_LABELS)


def _values_of(account: Account) -> dict[str, Any]:
    return {
        "name": account.name, "kind": account.kind, "owner_id": account.owner_id, "deputy_id": account.deputy_id,
        "is_key": account.is_key, "expected_profit": "" if account.expected_profit is None else str(account.expected_profit),
        "cooperation_until": account.cooperation_until.isoformat() if account.cooperation_until else "",
        "fallback_plan": account.fallback_plan or "", "interaction_notes": account.interaction_notes or "",
        "attributes": "\n".join(f"{k}: {v}" for k, v in sorted(account.attributes.items())),
    }


def _parse_form(form: dict[str, str]) -> dict[str, Any]:
    """The form's strings as service values; InvalidField names the field that does not parse."""
    changes: dict[str, Any] = {
        "name": form["name"], "kind": form["kind"] or AccountKind.COMPANY,
        "owner_id": int(form["owner_id"]) if form["owner_id"].isdigit() else None,
        "deputy_id": int(form["deputy_id"]) if form["deputy_id"].isdigit() else None,
        "fallback_plan": form["fallback_plan"], "interaction_notes": form["interaction_notes"],
        "is_key": form["is_key"] == "on",
    }
    profit = form["expected_profit"].replace(" ", "").replace("\u00a0", "").replace(",", ".")
    try:
        changes["expected_profit"] = Decimal(profit) if profit else None
    except InvalidOperation:
        raise InvalidField("expected_profit", N_("Write the expected profit as a number, e.g. 1500000.")) from None
    until = form["cooperation_until"].strip()
    try:
        changes["cooperation_until"] = date.fromisoformat(until) if until else None
    except ValueError:
        raise InvalidField("cooperation_until", N_("Pick the date cooperation runs until.")) from None
    attributes: dict[str, str] = {}
    for line in form["attributes"].splitlines():
        if not line.strip():
            continue
        name, sep, value = line.partition(":")
        if not sep or not name.strip():
            raise InvalidField("attributes", N_("Write one attribute a line as “name: value”, e.g. “INN: 7700000000”."))
        attributes[name.strip()] = value.strip()
    changes["attributes"] = attributes
    return changes


FormField = Annotated[str, Form(max_length=20_000)]


def _save(request: Request, agent: Agent, account_id: int | None, form: dict[str, str],
          override: bool = False) -> Response:
    hub = get_hub(request)
    with hub.session() as db:
        try:
            changes = _parse_form(form)
            if account_id is None:
                account = create_account(db, actor=agent.principal, override=override, **changes)
            else:
                account = get_account(db, account_id, lock=True)
                update_account(db, account=account, actor=agent.principal, changes=changes, override=override)
        except AccountNotFound:
            raise PageError(404, NO_ACCOUNT) from None
        except InvalidField as exc:
            db.rollback()
            return render(request, agent, "accounts/edit.html", status=422,
                          account=db.get(Account, account_id) if account_id else None, values=form,
                          users=active_users(db), error=exc.message, kind_labels=KIND_LABELS)
        except AccountRefused as exc:  # an extension's rule (a manager's cap): say why, offer the override
            db.rollback()
            return render(request, agent, "accounts/edit.html", status=409,
                          account=db.get(Account, account_id) if account_id else None, values=form,
                          users=active_users(db), error=exc.translated(agent.gettext), refused=True,
                          kind_labels=KIND_LABELS)
        db.commit()
        return redirect(request, f"/accounts/{account.id}")


@router.post("/accounts/new")
def create(request: Request, agent: Writer, name: FormField = "", kind: FormField = "", owner_id: FormField = "",
           deputy_id: FormField = "", is_key: FormField = "", expected_profit: FormField = "",
           cooperation_until: FormField = "", fallback_plan: FormField = "", interaction_notes: FormField = "",
           attributes: FormField = "", override: FormField = "") -> Response:
    return _save(request, agent, None, _form_values(locals()), override=override == "on")


@router.post("/accounts/{account_id}/edit")
def save(request: Request, account_id: int, agent: Writer, name: FormField = "", kind: FormField = "",
         owner_id: FormField = "", deputy_id: FormField = "", is_key: FormField = "", expected_profit: FormField = "",
         cooperation_until: FormField = "", fallback_plan: FormField = "", interaction_notes: FormField = "",
         attributes: FormField = "", override: FormField = "") -> Response:
    return _save(request, agent, account_id, _form_values(locals()), override=override == "on")


FORM_FIELDS = ("name", "kind", "owner_id", "deputy_id", "is_key", "expected_profit", "cooperation_until",
               "fallback_plan", "interaction_notes", "attributes")


def _form_values(values: dict[str, Any]) -> dict[str, str]:
    """The form's fields out of a route's arguments."""
    return {name: str(values[name]) for name in FORM_FIELDS}
