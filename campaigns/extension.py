"""What the hub loads from the `hub.extensions` entry point `campaigns`.

It mounts the whole package: segments, message templates, campaigns (REST API and pages), and the
public unsubscribe and tracking routes; it schedules the campaigns tick and listens for the events
that trigger campaigns. Importing it registers every table of the package.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import Field
from sqlalchemy import event as sa_event
from sqlalchemy import inspect as sa_inspect
from sqlalchemy import select
from sqlalchemy.orm import Session, object_session

import campaigns.message_templates
import campaigns.message_templates.models
import campaigns.models
import campaigns.segments
import campaigns.segments.models  # noqa: F401  - the imports above register the tables
from hub.memo import memo_of
from hub.extensions import Extension, ExtensionSettings, NavEntry
from hub.web.i18n import N_
from hub.plugin import EventKind, TimelineChannel

if TYPE_CHECKING:
    from fastapi import APIRouter

    from hub.channel import PeriodicJob
    from hub.models import Contact, TimelineEvent
    from hub.triggers import TriggerRegistry


class CampaignsSettings(ExtensionSettings):
    # How often due campaigns, runs and drip steps are looked at.
    tick_seconds: float = Field(15.0, gt=0, le=3600)
    # Recipients per materialisation transaction: the checkpoint size of the crash promise.
    batch_size: int = Field(500, ge=1, le=10_000)
    # SQLite only: how long a crashed holder keeps the tick's lock (one process per SQLite store).
    lock_lease_seconds: float = Field(60.0, ge=1, le=3600)
    # A/B tests: the significance level of the winner rule, the fewest messages each variant must have
    # sent before it is trusted, and how long after an inconclusive verdict variant A goes by default.
    ab_alpha: float = Field(0.05, gt=0, lt=0.5)
    ab_min_sent: int = Field(30, ge=5, le=100_000)
    ab_default_after_hours: float = Field(24.0, ge=1, le=24 * 30)


class CampaignsExtension(Extension):
    name = "campaigns"
    permissions = {"campaigns:read": ("marketer",), "campaigns:write": ("marketer",)}
    timeline_channels = (TimelineChannel("campaigns", N_("Campaign"), "megaphone"),
                         TimelineChannel("campaign", N_("Campaign"), "megaphone"))
    event_kinds = (EventKind("campaign.message", N_("Campaign message")), EventKind("campaign.opened", N_("Opened")),
                   EventKind("campaign.clicked", N_("Clicked")), EventKind("campaign.unsubscribed", N_("Unsubscribed")),
                   EventKind("unsubscribed", N_("Unsubscribed")),
                   EventKind("preferences.updated", N_("Preferences updated")))
    Settings = CampaignsSettings

    def register_triggers(self, triggers: TriggerRegistry) -> None:
        triggers.register("*", on_event, outgoing=False)

    def notice_types(self) -> list[Any]:
        from campaigns.notices import NOTICE_TYPES

        return NOTICE_TYPES

    def api_router(self) -> APIRouter:
        from fastapi import APIRouter

        from campaigns.api import router as campaigns_api
        from campaigns.message_templates.api import router as templates_api
        from campaigns.segments.api import router as segments_api

        router = APIRouter()
        for part in (segments_api, templates_api, campaigns_api):
            router.include_router(part)
        return router

    def web_router(self) -> APIRouter:
        from fastapi import APIRouter

        from campaigns.message_templates.views import router as templates_views
        from campaigns.segments.views import router as segments_views
        from campaigns.views import router as campaign_views

        router = APIRouter()
        for part in (segments_views, templates_views, campaign_views):
            router.include_router(part)
        return router

    def public_router(self) -> APIRouter:
        from fastapi import APIRouter

        from campaigns.tracking.routes import router as tracking_routes
        from campaigns.unsubscribe.routes import router as unsubscribe_routes

        router = APIRouter()
        router.include_router(unsubscribe_routes)
        router.include_router(tracking_routes)
        return router

    def nav(self) -> list[NavEntry]:
        return [NavEntry(N_("Campaigns"), "/campaigns", "campaigns:read", "megaphone"),
                *campaigns.segments.NAV, *campaigns.message_templates.NAV]

    def jobs(self) -> list[PeriodicJob]:
        from hub.channel import PeriodicJob

        settings: Any = self.settings

        def tick(hub: Any) -> None:
            from campaigns import runs
            from campaigns.ab import decide
            from hub.locks import once_lock

            # Cluster-wide: two processes materialising one run would only waste work (the unique
            # keys keep it harmless). The lock is taken here rather than with once=True to choose
            # its SQLite lease: a worker killed mid-tick must not keep a restarted one from the
            # campaigns for the default ten minutes. (PostgreSQL's advisory lock dies with its
            # connection, so there a kill frees it at once.)
            with once_lock(hub, "job:campaigns.tick", lease_seconds=settings.lock_lease_seconds) as acquired:
                if not acquired:
                    return
                runs.dispatch_due(hub)
                runs.materialise_due(hub, batch_size=settings.batch_size)
                decide.decide_due(hub)
                decide.send_winner(hub, batch_size=settings.batch_size)
                runs.advance_drips(hub, batch_size=settings.batch_size)
                runs.finish_runs(hub)

        return [PeriodicJob("campaigns.tick", tick, seconds=settings.tick_seconds, once=False)]


def on_event(session: Session, *, event: TimelineEvent, contact: Contact) -> None:
    """A new timeline event: each running campaign triggered by its kind gets a run, due after its delay.

    Runs inside the event's transaction (hub.triggers): the run commits with the event or not at
    all, and a replayed event is not new, so it triggers nothing twice.
    """
    if event.direction == "out":  # our own messages trigger nothing (and cost no query)
        return
    if event.kind not in triggering_kinds(session):
        return
    from campaigns.runs import trigger_run
    from campaigns.service import active_triggered

    for campaign in active_triggered(session, kind=event.kind):
        trigger_run(session, campaign=campaign, event=event, contact=contact)


_KINDS_KEY = "campaigns.triggering_kinds"
_CAMPAIGN = campaigns.models.Campaign.__table__
_TRIGGERING_KINDS = select(_CAMPAIGN.c.trigger_kind).distinct().where(
    _CAMPAIGN.c.status == campaigns.models.CampaignStatus.RUNNING.value,
    _CAMPAIGN.c.schedule_kind == campaigns.models.ScheduleKind.TRIGGER.value)
# The columns the set is made of: a write that changes none of them (a run's bookkeeping) tells nobody.
_KIND_COLUMNS = ("status", "schedule_kind", "trigger_kind")


def triggering_kinds(session: Session) -> frozenset[str]:
    """The event kinds running triggered campaigns wait for.

    Every inbound event asks (an SMS, a survey answer, a form), so the set is kept per process until
    a campaign's status or trigger changes anywhere (hub.memo: told by the writer's commit here, by
    PostgreSQL NOTIFY elsewhere; read once per transaction on SQLite). A transaction that starts or
    stops a campaign sees its own change from its flush on (the mapper events below).
    """
    return memo_of(session).get(session, _KINDS_KEY, lambda: frozenset(session.execute(_TRIGGERING_KINDS).scalars()))


@sa_event.listens_for(campaigns.models.Campaign, "after_insert")
@sa_event.listens_for(campaigns.models.Campaign, "after_delete")
def _campaign_written(_mapper: Any, _connection: Any, campaign: campaigns.models.Campaign) -> None:
    _kinds_changed(campaign)


@sa_event.listens_for(campaigns.models.Campaign, "after_update")
def _campaign_updated(_mapper: Any, _connection: Any, campaign: campaigns.models.Campaign) -> None:
    state = sa_inspect(campaign)
    if any(state.attrs[name].history.has_changes() for name in _KIND_COLUMNS):
        _kinds_changed(campaign)


def _kinds_changed(campaign: campaigns.models.Campaign) -> None:
    session = object_session(campaign)
    if session is not None:
        memo_of(session).changed(session, _KINDS_KEY)
