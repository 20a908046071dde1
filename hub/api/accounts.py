"""REST routes: accounts (companies, households), their contacts and their merged timeline.

Link a contact to an account with PATCH /contacts/{id} {"account_id": …} (audited on the contact)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response
from pydantic import AwareDatetime, BaseModel
from sqlalchemy.orm import Session

from hub.accounts import (
    AccountIn,
    AccountRefused,
    AccountNotFound,
    AccountPatch,
    AccountPublic,
    account_timeline,
    create_account,
    delete_account,
    get_account,
    members,
    search_accounts,
    to_public,
    update_account,
)
from hub.api.contacts import TimelineEventPublic, TimelinePage
from hub.api.deps import HubDep, SessionDep, page_size, require
from hub.api.problems import Problem
from hub.auth import Principal
from hub.contacts import ContactPublic, InvalidField
from hub.contacts import to_public as contacts_public
from hub.models import Account, Direction
from hub.timeline import InvalidCursor, TimelineFilter

router = APIRouter(tags=["accounts"])
ReadAccounts = Annotated[Principal, Depends(require("contacts:read"))]
WriteAccounts = Annotated[Principal, Depends(require("contacts:write"))]
ReadTimeline = Annotated[Principal, Depends(require("timeline:read"))]

_PROBLEM = {"content": {"application/problem+json": {}}}
_MISSING = {404: {"description": "No such account", **_PROBLEM}}
_REFUSED = {409: {"description": "A rule refuses it (a manager past the cap of key accounts): `detail` says "
                                 "which and why; `?override=true` goes over it, audited", **_PROBLEM}}
Override = Annotated[bool, Query(description="Go over a rule that refuses the change (a manager's cap of key "
                                             "accounts); recorded on the audit log as `account.override`")]


class AccountPage(BaseModel):
    items: list[AccountPublic]
    next_cursor: str | None


@contextmanager
def _service_errors() -> Iterator[None]:
    try:
        yield
    except InvalidField as exc:
        raise Problem(422, f"{exc.field}: {exc.message}", slug="validation",
                      errors=[{"field": exc.field, "in": "body", "message": exc.message, "type": "value_error"}]) from None
    except AccountNotFound as exc:
        raise Problem(404, str(exc)) from None
    except InvalidCursor as exc:
        raise Problem(400, str(exc), slug="invalid-cursor") from None
    except AccountRefused as exc:
        raise Problem(409, str(exc), slug="account-rule", rule=exc.rule, override="repeat with ?override=true "
                      "to go over it; the override is recorded on the audit log") from None


def _account(session: Session, account_id: int, *, lock: bool = False) -> Account:
    with _service_errors():
        return get_account(session, account_id, lock=lock)


def _public(session: Session, account: Account) -> AccountPublic:
    return to_public(session, [account])[0]


@router.get("/accounts", summary="Search accounts by name", response_model=AccountPage)
def search(
    hub: HubDep, session: SessionDep, _: ReadAccounts,
    q: Annotated[str, Query(max_length=200, description="Part of the name")] = "",
    owner_id: Annotated[int | None, Query(description="Only this key-account manager's")] = None,
    key: Annotated[bool, Query(description="Only key accounts")] = False,
    limit: Annotated[int | None, Query(description="Page size")] = None,
    cursor: Annotated[str | None, Query(description="next_cursor of the previous page")] = None,
) -> AccountPage:
    with _service_errors():
        page = search_accounts(session, query=q, owner_id=owner_id, key_only=key, limit=page_size(hub, limit),
                               cursor=cursor)
    return AccountPage(items=to_public(session, page.items), next_cursor=page.next_cursor)


@router.post("/accounts", status_code=201, summary="Create an account", response_model=AccountPublic,
             responses={422: {"description": "Invalid fields, named in `errors`", **_PROBLEM}, **_REFUSED})
def create(body: AccountIn, response: Response, session: SessionDep, principal: WriteAccounts,
           override: Override = False) -> AccountPublic:
    with _service_errors():
        account = create_account(session, actor=principal, override=override, **body.model_dump())
    session.commit()
    response.headers["Location"] = f"/api/v1/accounts/{account.id}"
    return _public(session, account)


@router.get("/accounts/{account_id}", summary="An account", response_model=AccountPublic, responses=_MISSING)
def read(account_id: int, session: SessionDep, _: ReadAccounts) -> AccountPublic:
    return _public(session, _account(session, account_id))


@router.patch("/accounts/{account_id}", summary="Edit an account", response_model=AccountPublic,
              description="Only the fields sent change. Changing `is_key` is recorded on the audit log as "
                          "`account.key`, so the flag's history is kept.", responses={**_MISSING, **_REFUSED})
def edit(account_id: int, body: AccountPatch, session: SessionDep, principal: WriteAccounts,
         override: Override = False) -> AccountPublic:
    account = _account(session, account_id, lock=True)
    with _service_errors():
        update_account(session, account=account, actor=principal, changes=body.model_dump(exclude_unset=True),
                       override=override)
    session.commit()
    return _public(session, account)


@router.delete("/accounts/{account_id}", status_code=204, summary="Delete an account (its contacts stay, unlinked)",
               responses=_MISSING)
def delete(account_id: int, session: SessionDep, principal: WriteAccounts) -> Response:
    account = _account(session, account_id, lock=True)
    delete_account(session, account=account, actor=principal)
    session.commit()
    return Response(status_code=204)


@router.get("/accounts/{account_id}/contacts", summary="The account's contacts", response_model=list[ContactPublic],
            responses=_MISSING)
def contacts(account_id: int, session: SessionDep, _: ReadAccounts) -> list[ContactPublic]:
    account = _account(session, account_id)
    return contacts_public(session, members(session, account_id=account.id))  # type: ignore[arg-type]


@router.get("/accounts/{account_id}/timeline", summary="Its contacts' timelines merged, newest first",
            response_model=TimelinePage, responses=_MISSING)
def timeline(
    account_id: int, hub: HubDep, session: SessionDep, _: ReadTimeline,
    limit: int | None = None,
    cursor: Annotated[str | None, Query(description="next_cursor of the previous page")] = None,
    channel: Annotated[list[str] | None, Query(description="Repeat for several")] = None,
    direction: Annotated[list[Direction] | None, Query()] = None,
    kind: Annotated[list[str] | None, Query()] = None,
    since: Annotated[AwareDatetime | None, Query(description="Events at or after this time")] = None,
    until: Annotated[AwareDatetime | None, Query(description="Events before this time")] = None,
) -> TimelinePage:
    account = _account(session, account_id)
    filters = TimelineFilter(channels=frozenset(channel or ()), directions=frozenset(d.value for d in direction or ()),
                             kinds=frozenset(kind or ()), since=since, until=until)
    with _service_errors():
        page = account_timeline(session, account_id=account.id, limit=page_size(hub, limit), cursor=cursor,  # type: ignore[arg-type]
                                filters=filters)
    return TimelinePage(items=[TimelineEventPublic.model_validate(e) for e in page.items], next_cursor=page.next_cursor)
