"""REST: /segments CRUD, and previews (count + sample) of a saved or an unsaved definition."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from campaigns.segments.compiler import count_contacts, sample_contacts
from campaigns.segments.definition import InvalidDefinition, SegmentDefinition
from campaigns.segments.models import Segment
from campaigns.segments.service import SegmentError, create_segment, delete_segment, list_segments, update_segment
from hub import clock
from hub.api.deps import SessionDep, require
from hub.api.problems import Problem
from hub.auth import Principal

router = APIRouter(tags=["segments"])
Reader = Annotated[Principal, Depends(require("campaigns:read"))]
Writer = Annotated[Principal, Depends(require("campaigns:write"))]


class SegmentCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    description: str = Field(default="", max_length=2000)
    definition: SegmentDefinition


class SegmentUpdate(BaseModel):
    """Only the fields sent change."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=2000)
    definition: SegmentDefinition | None = None


class SegmentPublic(BaseModel):
    id: int
    name: str
    description: str
    definition: dict[str, Any]
    created_by: str | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, segment: Segment) -> SegmentPublic:
        return cls(id=segment.id, name=segment.name, description=segment.description,  # type: ignore[arg-type]
                   definition=segment.definition, created_by=segment.created_by, created_at=segment.created_at,
                   updated_at=segment.updated_at)


class SegmentList(BaseModel):
    items: list[SegmentPublic]


class PreviewRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    definition: SegmentDefinition
    limit: int = Field(default=10, ge=0, le=50, description="How many sample contacts to return")


class SampleContact(BaseModel):
    id: int
    display_name: str
    locale: str | None
    tags: list[str]
    lifecycle_stage: str


class Preview(BaseModel):
    count: int
    sample: list[SampleContact]
    computed_at: datetime


def _problem(exc: SegmentError | InvalidDefinition) -> Problem:
    if isinstance(exc, InvalidDefinition):
        errors = [{"field": f"definition.{e['field']}".rstrip("."), "in": "body", "message": e["message"],
                   "type": "value_error"} for e in exc.errors]
        return Problem(422, str(exc), slug="validation", errors=errors)
    if exc.status == 409:
        return Problem(409, str(exc), slug="conflict")
    return Problem(exc.status, f"{exc.field}: {exc}" if exc.field else str(exc), slug="validation",
                   errors=[{"field": exc.field or "", "in": "body", "message": str(exc), "type": "value_error"}])


def _segment(session: Session, segment_id: int) -> Segment:
    segment = session.get(Segment, segment_id)
    if segment is None:
        raise Problem(404, f"segment {segment_id} does not exist")
    return segment


def preview_of(session: Session, definition: SegmentDefinition | dict[str, Any], *, limit: int = 10) -> Preview:
    """Count and sample against the current time."""
    now = clock.now()
    sample = sample_contacts(session, definition, now=now, limit=limit) if limit else []
    return Preview(count=count_contacts(session, definition, now=now), computed_at=now,
                   sample=[SampleContact(id=c.id, display_name=c.display_name, locale=c.locale,  # type: ignore[arg-type]
                                         tags=list(c.tags or []), lifecycle_stage=c.lifecycle_stage) for c in sample])


@router.get("/segments", summary="List segments")
def get_segments(session: SessionDep, principal: Reader) -> SegmentList:
    return SegmentList(items=[SegmentPublic.of(s) for s in list_segments(session)])


@router.post("/segments", status_code=201, summary="Create a segment")
def post_segment(body: SegmentCreate, session: SessionDep, principal: Writer) -> SegmentPublic:
    try:
        segment = create_segment(session, actor=principal, name=body.name, description=body.description,
                                 definition=body.definition)
    except (SegmentError, InvalidDefinition) as exc:
        raise _problem(exc) from None
    session.commit()
    return SegmentPublic.of(segment)


@router.post("/segments/preview", summary="Count and sample contacts for an unsaved definition")
def post_preview(body: PreviewRequest, session: SessionDep, principal: Reader) -> Preview:
    return preview_of(session, body.definition, limit=body.limit)


@router.get("/segments/{segment_id}", summary="One segment")
def get_segment(segment_id: int, session: SessionDep, principal: Reader) -> SegmentPublic:
    return SegmentPublic.of(_segment(session, segment_id))


@router.get("/segments/{segment_id}/preview", summary="Count and sample contacts of a saved segment, now")
def get_segment_preview(segment_id: int, session: SessionDep, principal: Reader,
                        limit: Annotated[int, Query(ge=0, le=50)] = 10) -> Preview:
    segment = _segment(session, segment_id)
    try:
        return preview_of(session, segment.definition, limit=limit)
    except InvalidDefinition as exc:  # stored before a stricter rule: say so instead of a 500
        raise Problem(409, f"the saved definition no longer validates: {exc}", slug="definition-outdated") from None


@router.patch("/segments/{segment_id}", summary="Change a segment")
def patch_segment(segment_id: int, body: SegmentUpdate, session: SessionDep, principal: Writer) -> SegmentPublic:
    segment = _segment(session, segment_id)
    changes: dict[str, Any] = {}
    for name in body.model_fields_set:
        value = getattr(body, name)
        if value is None:
            raise Problem(422, f"{name} cannot be null", slug="validation",
                          errors=[{"field": name, "in": "body", "message": "cannot be null", "type": "value_error"}])
        changes[name] = value
    try:
        update_segment(session, segment=segment, actor=principal, changes=changes)
    except (SegmentError, InvalidDefinition) as exc:
        session.rollback()
        raise _problem(exc) from None
    session.commit()
    return SegmentPublic.of(segment)


@router.delete("/segments/{segment_id}", status_code=204, summary="Delete a segment")
def remove_segment(segment_id: int, session: SessionDep, principal: Writer) -> Response:
    segment = _segment(session, segment_id)
    try:
        delete_segment(session, segment=segment, actor=principal)
    except SegmentError as exc:
        session.rollback()
        raise _problem(exc) from None
    session.commit()
    return Response(status_code=204)
