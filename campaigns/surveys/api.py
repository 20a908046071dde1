"""REST routes under /api/v1: surveys, a manual send to a segment, results and the CSV export."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from fastapi.responses import StreamingResponse
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import select
from sqlalchemy.orm import Session

from campaigns.surveys.models import Survey
from campaigns.surveys.results import export_csv, survey_results
from campaigns.surveys.service import (
    InvalidSurvey, SurveyIn, counts_by_status, create_survey, send_to_contacts, update_survey,
)
from hub import clock
from hub.api.deps import HubDep, SessionDep, require
from hub.api.problems import Problem
from hub.auth import Principal

router = APIRouter(tags=["surveys"])
Reader = Annotated[Principal, Depends(require("surveys:read"))]
Writer = Annotated[Principal, Depends(require("surveys:write"))]
MAX_CONTACTS = 10_000


class SurveyPublic(SurveyIn):
    id: int
    created_at: datetime
    updated_at: datetime
    invitations: dict[str, int] = Field(default_factory=dict, description="Invitations by status")


class SendRequest(BaseModel):
    """Who gets the survey now (or at send_at): a saved segment, or a list of contacts."""

    model_config = ConfigDict(extra="forbid")

    segment_id: int | None = None
    contact_ids: list[int] | None = Field(default=None, min_length=1, max_length=MAX_CONTACTS)
    send_at: AwareDatetime | None = None

    @model_validator(mode="after")
    def _one_audience(self) -> SendRequest:
        if (self.segment_id is None) == (self.contact_ids is None):
            raise ValueError("give exactly one of segment_id or contact_ids")
        return self


class SendResult(BaseModel):
    batch: str
    scheduled: int
    skipped: int = Field(description="Contacts left out by the N-day rule (or already invited in this batch)")


class ScorePublic(BaseModel):
    score: float | None
    responses: int
    distribution: dict[int, int]


class GroupPublic(BaseModel):
    label: str
    responses: int
    nps: float | None
    csat: float | None


class TrendPublic(BaseModel):
    week: datetime
    responses: int
    nps: float | None
    csat: float | None


class ResultsPublic(BaseModel):
    invited: int
    responded: int
    partial: int
    response_rate: float | None
    nps: ScorePublic
    csat: ScorePublic
    trend: list[TrendPublic]
    by_order: dict[str, list[GroupPublic]]
    by_segment: list[GroupPublic]
    texts: list[dict[str, Any]]


def _invalid(field: str, message: str) -> Problem:
    return Problem(422, f"{field}: {message}", slug="validation",
                   errors=[{"field": field, "in": "body", "message": message, "type": "value_error"}])


def _survey(session: Session, survey_id: int) -> Survey:
    survey = session.get(Survey, survey_id)
    if survey is None:
        raise Problem(404, f"survey {survey_id} does not exist")
    return survey


def _public(session: Session, survey: Survey) -> SurveyPublic:
    from campaigns.surveys.service import survey_in

    return SurveyPublic(**survey_in(survey).model_dump(), id=survey.id, created_at=survey.created_at,  # type: ignore[arg-type]
                        updated_at=survey.updated_at, invitations=counts_by_status(session, survey_id=survey.id))  # type: ignore[arg-type]


@router.get("/surveys", summary="List surveys, newest first")
def list_surveys(session: SessionDep, principal: Reader) -> list[SurveyPublic]:
    return [_public(session, s) for s in session.scalars(select(Survey).order_by(Survey.id.desc()).limit(500))]


@router.post("/surveys", status_code=201, summary="Create a survey")
def post_survey(body: SurveyIn, session: SessionDep, principal: Writer) -> SurveyPublic:
    try:
        survey = create_survey(session, actor=principal, data=body)
    except InvalidSurvey as exc:
        raise _invalid(exc.field, str(exc)) from None
    session.commit()
    return _public(session, survey)


@router.get("/surveys/{survey_id}", summary="One survey")
def get_survey(survey_id: int, session: SessionDep, principal: Reader) -> SurveyPublic:
    return _public(session, _survey(session, survey_id))


@router.put("/surveys/{survey_id}", summary="Replace a survey's definition")
def put_survey(survey_id: int, body: SurveyIn, session: SessionDep, principal: Writer) -> SurveyPublic:
    survey = _survey(session, survey_id)
    try:
        update_survey(session, survey=survey, actor=principal, data=body)
    except InvalidSurvey as exc:
        raise _invalid(exc.field, str(exc)) from None
    session.commit()
    return _public(session, survey)


@router.post("/surveys/{survey_id}/send", summary="Send an active survey to a segment or to listed contacts")
def post_send(survey_id: int, body: SendRequest, session: SessionDep, principal: Writer) -> SendResult:
    survey = _survey(session, survey_id)
    now = clock.now()
    if body.segment_id is not None:
        try:
            from campaigns.segments.compiler import iter_contact_ids
            from campaigns.segments.models import Segment
        except ImportError:
            raise Problem(422, "segments are not installed; send to contact_ids instead") from None
        segment = session.get(Segment, body.segment_id)
        if segment is None:
            raise _invalid("segment_id", f"segment {body.segment_id} does not exist")
        contact_ids = [cid for batch in iter_contact_ids(session, segment.definition, now=now) for cid in batch]
    else:
        contact_ids = list(dict.fromkeys(body.contact_ids or []))
    batch = uuid.uuid4().hex[:12]
    try:
        scheduled, skipped = send_to_contacts(session, survey=survey, contact_ids=contact_ids, batch=batch,
                                              send_at=body.send_at, actor=principal)
    except InvalidSurvey as exc:
        raise Problem(409, str(exc), slug="survey-state") from None
    session.commit()
    return SendResult(batch=batch, scheduled=scheduled, skipped=skipped)


@router.get("/surveys/{survey_id}/results", summary="Response rate, NPS, CSAT, trend and breakdowns")
def get_results(survey_id: int, hub: HubDep, session: SessionDep, principal: Reader) -> ResultsPublic:
    results = survey_results(session, survey=_survey(session, survey_id), locale=hub.settings.default_locale)

    def score(s: Any) -> ScorePublic:
        return ScorePublic(score=s.value, responses=s.total, distribution=s.counts)

    def groups(items: list[Any]) -> list[GroupPublic]:
        return [GroupPublic(label=g.label, responses=g.responses, nps=g.nps, csat=g.csat) for g in items]

    return ResultsPublic(
        invited=results.invited, responded=results.responded, partial=results.partial,
        response_rate=results.rate, nps=score(results.nps), csat=score(results.csat),
        trend=[TrendPublic(week=p.start, responses=p.responses, nps=p.nps, csat=p.csat) for p in results.trend],
        by_order={name: groups(items) for name, items in results.by_order.items()},
        by_segment=groups(results.by_segment),
        texts=[{**t, "at": t["at"].isoformat() if t["at"] else None} for t in results.texts],
    )


@router.get("/surveys/{survey_id}/responses.csv", summary="Every response as CSV",
            response_class=StreamingResponse, responses={200: {"content": {"text/csv": {}}}})
def get_csv(survey_id: int, hub: HubDep, session: SessionDep, principal: Reader) -> StreamingResponse:
    survey = _survey(session, survey_id)
    lines = list(export_csv(session, survey=survey, locale=hub.settings.default_locale))
    return StreamingResponse(iter(lines), media_type="text/csv; charset=utf-8",
                             headers={"content-disposition": f'attachment; filename="survey-{survey.id}.csv"'})
