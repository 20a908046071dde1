"""Saving segments: create, change, delete, list (audited; the caller commits)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from campaigns.segments.definition import SegmentDefinition, parse_definition
from campaigns.segments.models import Segment
from hub import audit, clock
from hub.auth import Principal

MAX_NAME = 200
MAX_DESCRIPTION = 2000


class SegmentError(ValueError):
    """A refused change; `field` names the input, `status` the HTTP answer it deserves."""

    def __init__(self, message: str, *, field: str | None = None, status: int = 422) -> None:
        super().__init__(message)
        self.field = field
        self.status = status


def _clean_name(session: Session, name: Any, *, exclude_id: int | None = None) -> str:
    if not isinstance(name, str) or not " ".join(name.split()):
        raise SegmentError("a segment needs a name", field="name")
    name = " ".join(name.split())
    if len(name) > MAX_NAME:
        raise SegmentError(f"the name is longer than {MAX_NAME} characters", field="name")
    taken = session.scalars(select(Segment.id).where(func.lower(Segment.name) == name.lower())).first()
    if taken is not None and taken != exclude_id:
        raise SegmentError(f"a segment named {name!r} already exists", field="name", status=409)
    return name


def _clean_description(value: Any) -> str:
    if value is None:
        return ""
    if not isinstance(value, str) or len(value) > MAX_DESCRIPTION:
        raise SegmentError(f"the description must be text of at most {MAX_DESCRIPTION} characters",
                           field="description")
    return value.strip()


def create_segment(session: Session, *, actor: Principal, name: str, definition: SegmentDefinition | dict[str, Any],
                   description: str = "") -> Segment:
    """A new segment (the definition is validated; InvalidDefinition lists what is wrong)."""
    parsed = parse_definition(definition)
    now = clock.now()
    segment = Segment(name=_clean_name(session, name), description=_clean_description(description),
                      definition=parsed.to_json(), created_by=actor.actor, created_at=now, updated_at=now)
    session.add(segment)
    session.flush()
    audit.record(session, actor=actor, action="segment.create", entity="segment", entity_id=segment.id,
                 changes={"name": [None, segment.name]})
    return segment


def update_segment(session: Session, *, segment: Segment, actor: Principal, changes: Mapping[str, Any]) -> Segment:
    """Change the name, description or definition (only the keys given)."""
    before = {"name": segment.name, "description": segment.description, "definition": segment.definition}
    if "name" in changes:
        segment.name = _clean_name(session, changes["name"], exclude_id=segment.id)
    if "description" in changes:
        segment.description = _clean_description(changes["description"])
    if "definition" in changes:
        segment.definition = parse_definition(changes["definition"]).to_json()
    after = {"name": segment.name, "description": segment.description, "definition": segment.definition}
    diff = audit.diff(before, after)
    if diff:
        segment.updated_at = clock.now()
        session.flush()
        audit.record(session, actor=actor, action="segment.update", entity="segment", entity_id=segment.id,
                     changes=diff)
    return segment


def campaigns_using(session: Session, *, segment_id: int) -> list[str]:
    """Names of campaigns that are not over and still send to this segment."""
    try:
        from campaigns.models import Campaign, CampaignStatus
    except ImportError:  # campaigns not installed: nothing can use a segment
        return []
    over = [CampaignStatus.COMPLETED.value, CampaignStatus.CANCELLED.value]
    return list(session.scalars(select(Campaign.name).where(Campaign.segment_id == segment_id,
                                                             Campaign.status.not_in(over)).order_by(Campaign.name)))


def delete_segment(session: Session, *, segment: Segment, actor: Principal) -> None:
    """Delete a segment; one that a live campaign still uses is refused (status 409)."""
    name = segment.name
    users = campaigns_using(session, segment_id=segment.id)  # type: ignore[arg-type]
    if users:
        raise SegmentError(f"segment {name!r} is used by the campaign(s) {', '.join(users)}; "
                           "change or cancel them first", status=409)
    try:
        with session.begin_nested():
            session.delete(segment)
            session.flush()
    except IntegrityError:
        raise SegmentError(f"segment {name!r} is used by a campaign; change the campaign first", status=409) from None
    audit.record(session, actor=actor, action="segment.delete", entity="segment", entity_id=segment.id,
                 changes={"name": [name, None]})


def list_segments(session: Session, *, limit: int = 200, after_id: int | None = None) -> list[Segment]:
    """Segments by name (no segment list is long; `after_id` pages by id when one is)."""
    stmt = select(Segment)
    if after_id is not None:
        stmt = stmt.where(Segment.id > after_id).order_by(Segment.id)
    else:
        stmt = stmt.order_by(func.lower(Segment.name), Segment.id)
    return list(session.scalars(stmt.limit(limit)))
