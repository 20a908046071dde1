"""REST routes: accounts (companies, households), their contacts and their merged timeline.

Link a contact to an account with PATCH /contacts/{id} {"account_id": …} (audited on the contact)."""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from typing import Annotated

from fastapi import APIRouter, Depends, File, Query, Response, UploadFile
from fastapi.responses import StreamingResponse
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field
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
from hub.accounts_csv import export_accounts, import_accounts
from hub.accounts_merge import AccountMergeRefused, merge_accounts
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


@router.get("/accounts/export.csv", summary="Export every account as CSV (streamed)", response_class=StreamingResponse,
            responses={200: {"content": {"text/csv": {}}, "description": "The same columns the import takes"}})
def export_csv(hub: HubDep, _: ReadAccounts,
               excel: Annotated[bool, Query(description="';', a BOM and formula guards for spreadsheets")] = False,
               ) -> StreamingResponse:
    def chunks() -> Iterator[str]:
        with hub.session(read_only=True) as session:
            yield from export_accounts(session, excel=excel)

    return StreamingResponse(chunks(), media_type="text/csv; charset=utf-8",
                             headers={"Content-Disposition": 'attachment; filename="accounts.csv"'})


class AccountImportSummary(BaseModel):
    rows: int
    created: int
    updated: int
    unchanged: int


@router.post("/accounts/import", summary="Import accounts from CSV", response_model=AccountImportSummary,
             description="Columns: id, name, kind, is_key (yes/no), owner_email, deputy_email, expected_profit, "
                         "cooperation_until (YYYY-MM-DD), fallback_plan, interaction_notes, attr:<key>. A row with "
                         "an id updates that account; without one, the one account of that name, else a new one. "
                         "If any row is invalid nothing is imported and the 422 answer lists every error with its line.",
             responses={422: {"description": "Rejected rows in `errors` ({line, column, message}); nothing written",
                              **_PROBLEM},
                        413: {"description": "The file is larger than the upload limit", **_PROBLEM}})
def import_csv(file: Annotated[UploadFile, File(description="A UTF-8 CSV file with a header row")],
               hub: HubDep, session: SessionDep, principal: WriteAccounts) -> AccountImportSummary:
    limit = hub.settings.api.max_body_bytes
    if file.size is not None and file.size > limit:
        raise Problem(413, f"the file is larger than {limit} bytes")
    text = io.TextIOWrapper(file.file, encoding="utf-8-sig", newline="")
    try:
        result = import_accounts(session, stream=text, actor=principal, source=file.filename or "upload")
    finally:
        text.detach()
    if not result.ok:
        session.rollback()
        raise Problem(422, f"{result.rejected} of {result.rows} rows are invalid; nothing was imported. "
                           "Fix the lines listed in `errors` and upload the file again.",
                      slug="invalid-csv", errors=[asdict(e) for e in result.errors], rows=result.rows,
                      rejected=result.rejected)
    session.commit()
    return AccountImportSummary(rows=result.rows, created=result.created, updated=result.updated,
                                unchanged=result.unchanged)


class AccountMergeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    duplicate_id: int = Field(description="The account merged into this one, then deleted")


@router.post("/accounts/{account_id}/merge", summary="Merge another account of the same company into this one",
             response_model=AccountPublic,
             description="The duplicate's contacts (with their timelines), its temperature history, cooling episodes "
                         "and thresholds move here; empty fields here take the duplicate's; the duplicate is deleted. "
                         "One `account.merge` audit entry keeps what it was.",
             responses={**_MISSING, **_REFUSED, 422: {"description": "The same account twice", **_PROBLEM}})
def merge(account_id: int, body: AccountMergeIn, session: SessionDep, principal: WriteAccounts,
          override: Override = False) -> AccountPublic:
    with _service_errors():
        try:
            done = merge_accounts(session, survivor_id=account_id, duplicate_id=body.duplicate_id, actor=principal,
                                  override=override)
        except AccountMergeRefused as exc:
            raise Problem(422, str(exc), slug="validation") from None
    session.commit()
    return _public(session, done.survivor)


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
