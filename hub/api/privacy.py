"""REST routes for data-subject requests: export one person's data, or erase it (admin only)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, ConfigDict, Field

from hub.api.deps import HubDep, SessionDep, require
from hub.api.problems import Problem
from hub.auth import Principal
from hub.privacy import erase_person, export_person, person_ids

router = APIRouter(prefix="/privacy", tags=["privacy"])
Admin = Annotated[Principal, Depends(require("admin"))]


class ErasureRequest(BaseModel):
    """The caller confirms by repeating the contact's id: a typo in the path erases nobody."""

    model_config = ConfigDict(extra="forbid")

    confirm: int = Field(description="The id of the contact being erased, repeated")


@router.get("/contacts/{contact_id}/export", summary="Everything the hub holds about one person, as JSON")
def export(contact_id: int, session: SessionDep, hub: HubDep, principal: Admin,
           include_files: Annotated[bool, Query(description="Embed stored files (base64)")] = False) -> dict[str, Any]:
    return export_person(session, hub=hub, contact_id=contact_id, include_files=include_files)


@router.post("/contacts/{contact_id}/erase", summary="Erase one person (idempotent; needs the id confirmed)")
def erase(contact_id: int, body: ErasureRequest, session: SessionDep, hub: HubDep, principal: Admin) -> dict[str, Any]:
    person_ids(session, contact_id)  # 404 before the confirmation is judged
    if body.confirm != contact_id:
        raise Problem(422, f"confirm must repeat the contact id {contact_id}", slug="confirmation-mismatch",
                      errors=[{"field": "confirm", "in": "body", "message": "does not match the contact id",
                               "type": "value_error"}])
    result = erase_person(session, hub=hub, contact_id=contact_id, actor=principal)
    session.commit()
    return result.as_dict()
