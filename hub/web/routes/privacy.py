"""The admin's data-subject request page: find a person, read or download everything held about
them, and erase it after typing the contact's number (hub.privacy does the work)."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Query, Request
from starlette.responses import Response

from hub.contacts import identities_of, search_contacts
from hub.ingest import ContactNotFound
from hub.privacy import erase_person, export_person
from hub.web.i18n import N_
from hub.web.pages import Agent, PageError, get_hub, redirect, render, require

router = APIRouter(prefix="/admin/privacy")
Admin = Annotated[Agent, Depends(require("admin"))]
# Columns that are bookkeeping, not what the person would want to read first.
_QUIET = {"search_name", "contact_id"}


@router.get("")
def find(request: Request, agent: Admin, q: Annotated[str, Query(max_length=200)] = "") -> Response:
    hub = get_hub(request)
    found: list[Any] = []
    identities: dict[int, Any] = {}
    if q.strip():
        with hub.session(read_only=True) as db:
            found = search_contacts(db, query=q, region=hub.settings.default_region, limit=25).items
            identities = identities_of(db, [c.id for c in found])  # type: ignore[misc]
            for contact in found:
                db.expunge(contact)
    return render(request, agent, "privacy/find.html", q=q, found=found, identities=identities)


def _export(request: Request, contact_id: int) -> dict[str, Any]:
    hub = get_hub(request)
    with hub.session(read_only=True) as db:
        try:
            return export_person(db, hub=hub, contact_id=contact_id)
        except ContactNotFound:
            raise PageError(404, N_("There is no such contact.")) from None


def _rows(rows: list[dict[str, Any]]) -> list[list[tuple[str, str]]]:
    """Each row as (column, readable value) pairs, empty values left out."""
    out = []
    for row in rows:
        pairs = []
        for key, value in row.items():
            if key in _QUIET or value in (None, "", {}, []):
                continue
            text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
            pairs.append((key, text))
        out.append(pairs)
    return out


@router.get("/{contact_id}")
def person(request: Request, contact_id: int, agent: Admin, erased: Annotated[str, Query(max_length=5)] = "") -> Response:
    data = _export(request, contact_id)
    tables = {name: _rows(rows) for name, rows in sorted(data["tables"].items())}
    return render(request, agent, "privacy/person.html", data=data, contacts=_rows(data["contacts"]), tables=tables,
                  just_erased=erased == "1", error=None)


@router.get("/{contact_id}/export.json")
def download(request: Request, contact_id: int, agent: Admin) -> Response:
    data = _export(request, contact_id)
    body = json.dumps(data, ensure_ascii=False, indent=2, default=str)
    return Response(body, media_type="application/json", headers={
        "Content-Disposition": f'attachment; filename="contact-{data["contact_id"]}-export.json"',
        "Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"})


@router.post("/{contact_id}/erase")
def erase(request: Request, contact_id: int, agent: Admin,
          confirm: Annotated[str, Form(max_length=40)] = "") -> Response:
    hub = get_hub(request)
    data = _export(request, contact_id)
    if confirm.strip().lstrip("#") != str(data["contact_id"]):
        tables = {name: _rows(rows) for name, rows in sorted(data["tables"].items())}
        return render(request, agent, "privacy/person.html", status=422, data=data, contacts=_rows(data["contacts"]),
                      tables=tables, just_erased=False,
                      error=N_("Type the contact's number exactly as shown to confirm the erasure."))
    with hub.session() as db:
        erase_person(db, hub=hub, contact_id=contact_id, actor=agent.principal)
        db.commit()
    return redirect(request, f"/admin/privacy/{data['contact_id']}?erased=1")
