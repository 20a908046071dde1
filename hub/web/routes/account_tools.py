"""Account tools in the workspace: CSV export and import (every bad row listed with its line, nothing
written until the whole file is good) and merging two accounts of the same company (a preview, then
the confirm step). Mounted before hub.web.routes.accounts, so /accounts/import is not an account id."""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Annotated

from fastapi import APIRouter, Depends, File, Form, Request, UploadFile
from fastapi.responses import StreamingResponse
from starlette.responses import Response

from hub.accounts import AccountNotFound, AccountRefused, account_choices, get_account
from hub.accounts_csv import COLUMNS, export_accounts, import_accounts
from hub.accounts_merge import AccountMergeRefused, merge_accounts, preview_account_merge
from hub.web import confirm
from hub.web.i18n import N_
from hub.web.pages import Agent, PageError, get_hub, redirect, render, require

router = APIRouter()
Reader = Annotated[Agent, Depends(require("contacts:read"))]
Writer = Annotated[Agent, Depends(require("contacts:write"))]
NO_ACCOUNT = N_("There is no such account.")
PICK = N_("Choose the account to merge into this one.")
MERGE_TITLE = N_("Merge accounts")
MERGE_QUESTION = N_("Merge «%(duplicate)s» into «%(survivor)s»?")
MERGE_DETAIL = N_("%(contacts)d contact(s) with their timelines, the temperature history and the cooling alerts "
                  "move to «%(survivor)s»; its empty fields take «%(duplicate)s»'s. «%(duplicate)s» is deleted; "
                  "the audit log keeps what it was.")
MERGE_BUTTON = N_("Merge")
TOO_LARGE = N_("The file is larger than %(limit)d bytes.")


@router.get("/accounts/export.csv")
def export_csv(request: Request, agent: Reader, excel: bool = False) -> StreamingResponse:
    hub = get_hub(request)

    def chunks() -> Iterator[str]:
        with hub.session(read_only=True) as session:
            yield from export_accounts(session, excel=excel)

    return StreamingResponse(chunks(), media_type="text/csv; charset=utf-8",
                             headers={"Content-Disposition": 'attachment; filename="accounts.csv"'})


@router.get("/accounts/import")
def import_form(request: Request, agent: Writer) -> Response:
    return render(request, agent, "accounts/import.html", columns=COLUMNS, result=None, error=None)


@router.post("/accounts/import")
def import_file(request: Request, agent: Writer,
                file: Annotated[UploadFile, File()]) -> Response:
    hub = get_hub(request)
    limit = hub.settings.api.max_body_bytes
    if file.size is not None and file.size > limit:
        return render(request, agent, "accounts/import.html", status=413, columns=COLUMNS, result=None,
                      error=agent.gettext(TOO_LARGE) % {"limit": limit})
    text = io.TextIOWrapper(file.file, encoding="utf-8-sig", newline="")
    with hub.session() as db:
        try:
            result = import_accounts(db, stream=text, actor=agent.principal, source=file.filename or "upload")
        finally:
            text.detach()
        if result.ok:
            db.commit()
        else:
            db.rollback()
    return render(request, agent, "accounts/import.html", status=200 if result.ok else 422, columns=COLUMNS,
                  result=result, error=None)


@router.get("/accounts/{account_id}/merge")
def merge_form(request: Request, account_id: int, agent: Writer) -> Response:
    return _merge_page(request, agent, account_id)


def _merge_page(request: Request, agent: Agent, account_id: int, *, status: int = 200, error: str | None = None) -> Response:
    hub = get_hub(request)
    with hub.session(read_only=True) as db:
        try:
            account = get_account(db, account_id)
        except AccountNotFound:
            raise PageError(404, NO_ACCOUNT) from None
        choices = [a for a in account_choices(db) if a.id != account_id]
    return render(request, agent, "accounts/merge.html", status=status, account=account, choices=choices, error=error)


@router.post("/accounts/{account_id}/merge")
async def merge(request: Request, account_id: int, agent: Writer) -> Response:
    form = await request.form()
    raw = str(form.get("duplicate_id", ""))
    if not raw.isdigit():
        return _merge_page(request, agent, account_id, status=422, error=agent.gettext(PICK))
    duplicate_id = int(raw)
    hub = get_hub(request)
    with hub.session() as db:
        try:
            if not confirm.confirmed(form):
                seen = preview_account_merge(db, survivor_id=account_id, duplicate_id=duplicate_id)
                names = {"survivor": seen.survivor.name, "duplicate": seen.duplicate.name, "contacts": seen.contacts}
                return confirm.ask(request, agent, action=f"/accounts/{account_id}/merge", title=MERGE_TITLE,
                                   question=MERGE_QUESTION, detail=MERGE_DETAIL, button=MERGE_BUTTON,
                                   back=f"/accounts/{account_id}", params=names,
                                   fields={"duplicate_id": str(duplicate_id),
                                           **({"override": "on"} if form.get("override") == "on" else {})})
            merge_accounts(db, survivor_id=account_id, duplicate_id=duplicate_id, actor=agent.principal,
                           override=form.get("override") == "on")
        except AccountNotFound:
            raise PageError(404, NO_ACCOUNT) from None
        except (AccountMergeRefused, AccountRefused) as exc:
            db.rollback()
            return _merge_page(request, agent, account_id, status=422, error=exc.translated(agent.gettext))
        db.commit()
    return redirect(request, f"/accounts/{account_id}")
