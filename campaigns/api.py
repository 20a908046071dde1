"""REST routes for campaigns: everything the editor does, plus results and live progress figures."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from campaigns import service
from campaigns.ab import variants as ab_variants
from campaigns.ab.decide import choose, default_at, thresholds
from campaigns.ab.results import ab_results
from campaigns.ab.variants import ABTestIn
from campaigns.models import Campaign, CampaignRun, CampaignStatus
from campaigns.results import campaign_results
from campaigns.runs import progress, steps_of
from campaigns.waiting import waiting
from hub.api.deps import SessionDep, require
from hub.api.problems import Problem
from hub.auth import Principal

router = APIRouter(prefix="/campaigns", tags=["campaigns"])
Reader = Annotated[Principal, Depends(require("campaigns:read"))]
Writer = Annotated[Principal, Depends(require("campaigns:write"))]


class StepPublic(BaseModel):
    position: int
    template_id: int
    delay_minutes: int
    skip_if_replied: bool


class ABTestPublic(ABTestIn):
    """The test as submitted, and where it stands: when the winner is picked, the verdict, the winner."""

    decide_at: datetime | None = Field(None, description="When the winner is picked (set once the test messages are queued)")
    outcome: str | None = Field(None, description="The verdict: winner, no_difference or too_few")
    p_value: float | None = None
    winner: str | None = Field(None, description="The variant the rest of the audience gets")
    winner_by: str | None = Field(None, description="test (significant), marketer (chosen) or default (A, nobody chose)")
    decided_at: datetime | None = None
    default_at: datetime | None = Field(None, description="When A goes by default if nobody chooses")


class WinnerIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    variant: str = Field(min_length=1, max_length=1, description="A, B, C or D")


class CampaignPublic(BaseModel):
    id: int
    name: str
    channel: str
    segment_id: int | None
    sender: str
    schedule_kind: str
    send_at: datetime | None
    cron: str | None
    time_zone: str
    trigger_kind: str | None
    trigger_delay_minutes: int
    quiet_hours_start: str | None
    quiet_hours_end: str | None
    frequency_cap_max: int | None
    frequency_cap_days: int | None
    status: str
    next_run_at: datetime | None
    last_run_at: datetime | None
    created_at: datetime
    updated_at: datetime
    steps: list[StepPublic]
    ab_test: ABTestPublic | None = None


class RunPublic(BaseModel):
    id: int
    run_key: str
    scheduled_for: datetime
    status: str
    contact_id: int | None
    targeted: int
    started_at: datetime | None
    materialised_at: datetime | None
    finished_at: datetime | None


class ActionResult(BaseModel):
    campaign: CampaignPublic
    affected_deliveries: int


def to_public(session: Any, campaign: Campaign) -> CampaignPublic:
    steps = [StepPublic(position=s.position, template_id=s.template_id, delay_minutes=s.delay_minutes,
                        skip_if_replied=s.skip_if_replied) for s in steps_of(session, campaign.id)]  # type: ignore[arg-type]
    return CampaignPublic(**campaign.model_dump(include=set(CampaignPublic.model_fields) - {"steps", "ab_test"}),
                          steps=steps, ab_test=_ab_public(session, campaign))


def _ab_public(session: Any, campaign: Campaign) -> ABTestPublic | None:
    test = ab_variants.read(session, campaign)
    if test is None:
        return None
    return ABTestPublic(**test.model_dump(), decide_at=campaign.ab_decide_at, outcome=campaign.ab_outcome,
                        p_value=campaign.ab_p_value, winner=campaign.ab_winner, winner_by=campaign.ab_winner_by,
                        decided_at=campaign.ab_decided_at, default_at=default_at(campaign, session.info["hub"]))


def _get(session: Any, campaign_id: int) -> Campaign:
    campaign = session.get(Campaign, campaign_id)
    if campaign is None:
        raise Problem(404, f"There is no campaign {campaign_id}.")
    return campaign


def _fail(exc: service.CampaignError) -> Problem:
    if exc.field:
        return Problem(exc.status, f"{exc.field}: {exc}", slug="validation",
                       errors=[{"field": exc.field, "in": "body", "message": str(exc), "type": "value_error"}])
    return Problem(exc.status, str(exc), slug="campaign-state" if exc.status == 409 else None)


@router.get("", summary="List campaigns, newest first")
def list_campaigns(session: SessionDep, _: Reader,
                   status: Annotated[CampaignStatus | None, Query()] = None,
                   limit: Annotated[int, Query(ge=1, le=200)] = 50,
                   offset: Annotated[int, Query(ge=0)] = 0) -> list[CampaignPublic]:
    return [to_public(session, c) for c in service.list_campaigns(session, status=status, limit=limit, offset=offset)]


@router.post("", status_code=201, summary="Create a draft campaign (schedule it with POST …/schedule)")
def create(body: service.CampaignIn, session: SessionDep, principal: Writer) -> CampaignPublic:
    try:
        campaign = service.create_campaign(session, data=body,
                                           created_by=principal.id if principal.kind == "user" else None)
    except service.CampaignError as exc:
        raise _fail(exc) from None
    session.commit()
    return to_public(session, campaign)


@router.get("/{campaign_id}", summary="One campaign with its steps")
def read(campaign_id: int, session: SessionDep, _: Reader) -> CampaignPublic:
    return to_public(session, _get(session, campaign_id))


@router.put("/{campaign_id}", summary="Replace a draft, scheduled or paused campaign's settings")
def replace(campaign_id: int, body: service.CampaignIn, session: SessionDep, _: Writer) -> CampaignPublic:
    campaign = _get(session, campaign_id)
    try:
        service.update_campaign(session, campaign=campaign, data=body)
    except service.CampaignError as exc:
        raise _fail(exc) from None
    session.commit()
    return to_public(session, campaign)


def _action(name: str, summary: str) -> None:
    func = getattr(service, name)

    def act(campaign_id: int, session: SessionDep, principal: Writer) -> ActionResult:
        campaign = _get(session, campaign_id)
        try:
            affected = func(session, campaign=campaign)
        except service.CampaignError as exc:
            raise _fail(exc) from None
        session.commit()
        return ActionResult(campaign=to_public(session, campaign),
                            affected_deliveries=affected if isinstance(affected, int) else 0)

    act.__name__ = f"campaign_{name}"
    router.add_api_route(f"/{{campaign_id}}/{name.replace('_', '-')}", act, methods=["POST"], summary=summary,
                         response_model=ActionResult)


_action("schedule", "Start a draft: now, at its time, on its cron schedule, or listening for its event")
_action("run_now", "Run a campaign at once (a draft is scheduled first)")
_action("pause", "Pause: nothing more is sent until it is resumed; queued messages are held")
_action("resume", "Resume a paused campaign where it stopped, with no duplicates")
_action("cancel", "Cancel for good: queued messages are cancelled")


@router.post("/{campaign_id}/duplicate", status_code=201, summary="Copy a campaign as a new draft")
def duplicate(campaign_id: int, session: SessionDep, principal: Writer) -> CampaignPublic:
    campaign = _get(session, campaign_id)
    copy = service.duplicate(session, campaign=campaign, created_by=principal.id if principal.kind == "user" else None)
    session.commit()
    return to_public(session, copy)


@router.get("/{campaign_id}/runs", summary="The campaign's runs, newest first")
def runs(campaign_id: int, session: SessionDep, _: Reader,
         limit: Annotated[int, Query(ge=1, le=200)] = 50) -> list[RunPublic]:
    _get(session, campaign_id)
    found = session.scalars(select(CampaignRun).where(CampaignRun.campaign_id == campaign_id)
                            .order_by(CampaignRun.scheduled_for.desc(), CampaignRun.id.desc()).limit(limit)).all()
    return [RunPublic(**r.model_dump(include=set(RunPublic.model_fields))) for r in found]


@router.get("/{campaign_id}/progress", summary="Where sending stands now (poll it for a progress bar)")
def read_progress(campaign_id: int, session: SessionDep, _: Reader) -> dict[str, Any]:
    """The figures, and why the messages still queued wait (`waiting`) or were dropped (`skipped`), by reason."""
    campaign = _get(session, campaign_id)
    waits, skips = waiting(session, session.info["hub"], campaign=campaign)
    return {"campaign_id": campaign_id, "status": campaign.status, **progress(session, campaign_id=campaign_id),
            "waiting": {w.key: w.count for w in waits}, "skipped": {w.key: w.count for w in skips}}


@router.get("/{campaign_id}/results",
            summary="Targeted, sent, delivered, bounced, opened, clicked, replied, unsubscribed, failed; per step, "
                    "over time, and per A/B variant with the test's significance")
def results(campaign_id: int, session: SessionDep, _: Reader,
            bucket: Annotated[str | None, Query(pattern="^(hour|day)$")] = None) -> dict[str, Any]:
    campaign = _get(session, campaign_id)
    found = campaign_results(session, campaign_id=campaign_id, bucket=bucket).as_dict()
    alpha, min_sent, _hours = thresholds(session.info["hub"])
    test = ab_results(session, campaign=campaign, alpha=alpha, min_sent=min_sent)
    found["ab_test"] = None if test is None else {**test.as_dict(), "outcome": campaign.ab_outcome,
                                                  "p_value": campaign.ab_p_value, "winner": campaign.ab_winner,
                                                  "winner_by": campaign.ab_winner_by}
    return found


@router.post("/{campaign_id}/ab-winner", summary="Choose the A/B variant the rest of the audience gets")
def choose_winner(campaign_id: int, body: WinnerIn, session: SessionDep, principal: Writer) -> CampaignPublic:
    """For a test that could not tell (or before it decides): the rest gets this variant from the next tick."""
    campaign = _get(session, campaign_id)
    try:
        choose(session, campaign=campaign, label=body.variant.upper(), actor=principal)
    except service.CampaignError as exc:
        raise _fail(exc) from None
    session.commit()
    return to_public(session, campaign)
