"""Runs: due campaigns become runs, runs become recipients and outbox rows, drips move on.

The crash promise rests on one rule: a recipient row and its delivery are written in the same
transaction. Materialisation streams the segment in batches; each batch is one transaction that
inserts the batch's recipients (INSERT … ON CONFLICT DO NOTHING on (run, contact)), enqueues a
delivery for each recipient it really inserted (idempotency key `campaign:<run>:<step>:<contact>`)
and moves the run's checkpoint. A `kill -9` anywhere loses at most the batch being written, which
was never committed; the restarted tick streams the segment again, skips contacts already in the
run, and carries on. The outbox then sends at-least-once, so only deliveries in flight at the
kill can go out twice.

Every tick here runs under `once=True` (a cluster-wide lock), so two workers never materialise the
same run at the same time; the unique constraints make a second attempt harmless anyway.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.orm import Session

from campaigns.ab import variants as ab_variants
from campaigns.ab.split import assign
from campaigns.models import (
    ACTIVE,
    Campaign,
    CampaignMessage,
    CampaignRecipient,
    CampaignRun,
    CampaignStatus,
    CampaignStep,
    CampaignVariant,
    RecipientStatus,
    RunStatus,
    ScheduleKind,
    of_runs,
)
from campaigns.scheduling import next_cron_time, run_key
from hub import clock, notices
from hub.db import after_commit, among, insert_ignore, insert_ignore_many
from hub.channel import MarketingContext
from hub.channel_hooks import contact_channels, identity_kind_of
from hub.models import Contact, Delivery, DeliveryStatus, Direction, Identity, Purpose, TimelineEvent

if TYPE_CHECKING:
    from hub.runtime import Hub

log = logging.getLogger("campaigns.runs")

DEFAULT_BATCH = 500
R = CampaignRecipient.__table__


def campaign_topic(campaign_id: int) -> str:
    return f"campaign:{campaign_id}"


def thread_key(campaign_id: int) -> str:
    """The thread every message and engagement event of a campaign shares on the timeline."""
    return f"campaign:{campaign_id}"


def delivery_key(run_id: int, step: int, contact_id: int) -> str:
    return f"campaign:{run_id}:{step}:{contact_id}"


def rules_of(campaign: Campaign) -> dict[str, Any]:
    """The campaign's overrides of the sending rules, as the outbox's send gates read them."""
    rules: dict[str, Any] = {}
    if campaign.quiet_hours_start and campaign.quiet_hours_end:
        rules["quiet_hours"] = {"start": campaign.quiet_hours_start, "end": campaign.quiet_hours_end}
    if campaign.frequency_cap_max and campaign.frequency_cap_days:
        rules["frequency_cap"] = {"max": campaign.frequency_cap_max, "days": campaign.frequency_cap_days}
    return rules


# --- due campaigns become runs ------------------------------------------------------------------

def dispatch_due(hub: Hub, *, now: datetime | None = None) -> list[int]:
    """Turn every active campaign whose next_run_at has come into a run; the new runs' ids.

    The next time of a recurring campaign is computed from now, so one that missed several times
    while nothing ran runs once, not once per missed time.
    """
    now = now or clock.now()
    created: list[int] = []
    with hub.session() as session, session.begin():
        due = session.scalars(
            select(Campaign)
            .where(Campaign.status.in_(ACTIVE), Campaign.next_run_at.is_not(None), Campaign.next_run_at <= now)
            .with_for_update(skip_locked=True)
        ).all()
        for campaign in due:
            scheduled = campaign.next_run_at
            assert scheduled is not None
            run_id = insert_ignore(
                session,
                CampaignRun,
                dict(campaign_id=campaign.id, run_key=run_key(scheduled, campaign.time_zone), scheduled_for=scheduled,
                     status=RunStatus.PENDING.value, created_at=now, targeted=0, batches=0),
                ["campaign_id", "run_key"],
            )
            if run_id is not None:
                created.append(run_id)
            campaign.last_run_at = scheduled
            if campaign.schedule_kind == ScheduleKind.CRON and campaign.cron:
                campaign.next_run_at = next_cron_time(campaign.cron, campaign.time_zone, after=max(now, scheduled))
            else:
                campaign.next_run_at = None
            campaign.status = CampaignStatus.RUNNING if campaign.schedule_kind != ScheduleKind.CRON else campaign.status
            campaign.updated_at = now
    for run_id in created:
        log.info("campaign run %s created", run_id)
    return created


def trigger_run(session: Session, *, campaign: Campaign, event: TimelineEvent, contact: Contact) -> int | None:
    """A triggered campaign's run for one event (inside the event's transaction): due after the delay."""
    due = (event.occurred_at or clock.now()) + timedelta(minutes=campaign.trigger_delay_minutes)
    return insert_ignore(
        session,
        CampaignRun,
        dict(campaign_id=campaign.id, run_key=f"event:{event.id}", scheduled_for=due, contact_id=contact.id,
             trigger_event_id=event.id, status=RunStatus.PENDING.value, created_at=clock.now(), targeted=0,
             batches=0),
        ["campaign_id", "run_key"],
    )


# --- runs become recipients and deliveries ---------------------------------------------------------

def materialise_due(hub: Hub, *, now: datetime | None = None, batch_size: int = DEFAULT_BATCH,
                    max_batches: int | None = None) -> int:
    """Add recipients to every due run of an active campaign; how many recipients were added."""
    now = now or clock.now()
    with hub.session(read_only=True) as session:
        run_ids = session.scalars(
            select(CampaignRun.id)
            .join(Campaign, Campaign.id == CampaignRun.campaign_id)
            .where(CampaignRun.status.in_([RunStatus.PENDING, RunStatus.MATERIALISING]),
                   CampaignRun.scheduled_for <= now, Campaign.status.in_(ACTIVE))
            .order_by(CampaignRun.scheduled_for, CampaignRun.id)
        ).all()
    added = 0
    for run_id in run_ids:
        added += materialise_run(hub, run_id=run_id, batch_size=batch_size, max_batches=max_batches)
    return added


def materialise_run(hub: Hub, *, run_id: int, batch_size: int = DEFAULT_BATCH, max_batches: int | None = None) -> int:
    """Stream the run's audience in batches, one transaction each; stops if the campaign is paused."""
    with hub.session() as session, session.begin():
        run = session.get(CampaignRun, run_id)
        if run is None or run.status not in (RunStatus.PENDING, RunStatus.MATERIALISING):
            return 0
        if run.status == RunStatus.PENDING:
            run.status = RunStatus.MATERIALISING
            run.started_at = clock.now()
            _emit_run(session, "campaign.started", run)
        campaign_id, contact_id, started_at = run.campaign_id, run.contact_id, run.started_at
        campaign = session.get(Campaign, campaign_id)
        # A triggered run's segment is optional: with one, the contact must be in it when the run is due.
        segment_definition = (_segment_definition(session, campaign) if contact_id is None or campaign.segment_id
                              else None)
    assert started_at is not None
    added = batches = 0
    with hub.session(read_only=True) as reader:
        from campaigns.segments.compiler import contains, iter_contact_ids

        source: Iterable[list[int]]
        if contact_id is not None:
            wanted = segment_definition is None or contains(reader, segment_definition, contact_id, now=started_at)
            source = [[contact_id]] if wanted else []
        else:
            # The audience as it was when the run started, however late a resumed run goes on.
            source = iter_contact_ids(reader, segment_definition, now=started_at, batch_size=batch_size)
        for ids in source:
            outcome = _write_batch(hub, run_id=run_id, contact_ids=ids)
            if outcome is None:  # paused or cancelled meanwhile: the rest waits for a resume
                return added
            added += outcome
            batches += 1
            if max_batches is not None and batches >= max_batches:
                return added
    _finish_materialising(hub, run_id=run_id)
    return added


def _segment_definition(session: Session, campaign: Campaign | None) -> Any:
    from campaigns.segments.models import Segment

    segment = session.get(Segment, campaign.segment_id) if campaign and campaign.segment_id else None
    if segment is None:
        raise LookupError(f"campaign {campaign.id if campaign else '?'} has no segment to send to")
    return segment.definition


def _write_batch(hub: Hub, *, run_id: int, contact_ids: Sequence[int]) -> int | None:
    """One checkpoint: the batch's new recipients and their deliveries; None if the campaign stopped."""
    with hub.session() as session, session.begin():
        run = session.get(CampaignRun, run_id)
        assert run is not None
        # Locks the campaign row, so a pause cannot slip between this check and the commit.
        campaign = session.scalars(select(Campaign).where(Campaign.id == run.campaign_id).with_for_update()).one()
        if campaign.status not in ACTIVE or run.status != RunStatus.MATERIALISING:
            return None
        known = set(session.scalars(
            select(R.c.contact_id).where(R.c.run_id == run_id, among(session, R.c.contact_id, contact_ids))
        ).all())
        fresh = [cid for cid in dict.fromkeys(contact_ids) if cid not in known]
        added = _add_recipients(session, hub, campaign=campaign, run=run, contact_ids=fresh) if fresh else 0
        run.targeted += added
        run.batches += 1
        progress = {"type": "campaign.progress", "campaign_id": campaign.id, "run_id": run_id, "targeted": run.targeted}
        topic = campaign_topic(campaign.id)  # type: ignore[arg-type]
        after_commit(session, lambda: hub.broker.publish(topic, progress))
    return added


def _finish_materialising(hub: Hub, *, run_id: int) -> None:
    with hub.session() as session, session.begin():
        run = session.get(CampaignRun, run_id)
        if run is None or run.status != RunStatus.MATERIALISING:
            return
        run.status = RunStatus.SENDING
        run.materialised_at = clock.now()
        campaign = session.get(Campaign, run.campaign_id)
        if campaign is not None and campaign.ab_share_percent is not None and campaign.ab_decide_at is None:
            from campaigns.ab.decide import decision_time

            campaign.ab_decide_at = decision_time(session, campaign=campaign, run_id=run_id, now=run.materialised_at)


def steps_of(session: Session, campaign_id: int) -> list[CampaignStep]:
    return list(session.scalars(
        select(CampaignStep).where(CampaignStep.campaign_id == campaign_id).order_by(CampaignStep.position)
    ).all())


def _add_recipients(session: Session, hub: Hub, *, campaign: Campaign, run: CampaignRun,
                    contact_ids: Sequence[int]) -> int:
    steps = steps_of(session, campaign.id)  # type: ignore[arg-type]
    first = steps[0]
    following = steps[1] if len(steps) > 1 else None
    contacts = {c.id: c for c in session.scalars(select(Contact).where(among(session, Contact.id, contact_ids))).all()}
    addresses = addresses_for(session, channel=campaign.channel, contact_ids=list(contacts))
    variants = {v.label: v for v in ab_variants.variants_of(session, campaign.id)} \
        if campaign.ab_share_percent is not None else {}  # type: ignore[arg-type]
    now = clock.now()
    rows: list[dict[str, Any]] = []
    for cid in contact_ids:
        contact = contacts.get(cid)
        if contact is None or contact.merged_into is not None:
            continue  # gone or merged since the segment was read; the survivor is in the segment itself
        address = addresses.get(cid)
        # The A/B draw is written with the row, in the transaction that queues the message: a
        # restart finds the row and never draws again (and the seeded draw would agree anyway).
        label = assign(campaign.ab_seed or 0, cid, share_percent=campaign.ab_share_percent,
                       labels=list(variants)) if variants else None
        held = bool(variants) and label is None and address is not None
        # Written as it will stand once step 1 is queued (one statement, not insert-then-update);
        # corrected below in the rare case the message cannot be made.
        rows.append(dict(run_id=run.id, contact_id=cid, address=address, step=1 if address and not held else 0,
                         status=(RecipientStatus.NO_ADDRESS if address is None else RecipientStatus.HELD if held else
                                 RecipientStatus.ACTIVE if following is not None else RecipientStatus.DONE).value,
                         next_step_at=(now + timedelta(minutes=following.delay_minutes)
                                       if following and address and not held else None),
                         ab_role=None if not variants else "rest" if label is None else "test", variant=label,
                         created_at=now, updated_at=now))
    added = {r.contact_id: r.id for r in insert_ignore_many(session, R, rows, ["run_id", "contact_id"],
                                                            ["id", "contact_id"])}
    groups: dict[str | None, list[tuple[Contact, str]]] = {}
    for r in rows:
        if r["contact_id"] in added and r["address"] and r["status"] != RecipientStatus.HELD:
            groups.setdefault(r["variant"], []).append((contacts[r["contact_id"]], r["address"]))
    messages, failed = [], []
    for label, targets in groups.items():
        variant = variants.get(label) if label else None
        sent_list = send_steps(session, hub, campaign=campaign, run_id=run.id, step=first, targets=targets,  # type: ignore[arg-type]
                               variant=variant)
        for (contact, _address), sent in zip(targets, sent_list):
            if isinstance(sent, str):
                failed.append({"recipient": added[contact.id], "reason": sent[:500]})
            else:
                messages.append(sent)
    if failed:
        session.execute(update(R).where(R.c.id == bindparam("recipient")).values(
            status=RecipientStatus.FAILED, step=0, next_step_at=None, error=bindparam("reason")), failed)
    if messages:  # which delivery carried which step, for the per-step results: one statement per batch
        session.execute(CampaignMessage.__table__.insert(), messages)
    return len(added)


def addresses_for(session: Session, *, channel: str, contact_ids: Sequence[int]) -> dict[int, str]:
    """Each contact's address on `channel` (an identity of the kind the channel sends to): the primary
    one first, then the oldest."""
    hub = session.info.get("hub")
    kind = identity_kind_of(hub.channels.get(channel) if hub is not None else contact_channels().get(channel), channel)
    if not contact_ids:
        return {}
    rows = session.execute(
        select(Identity.contact_id, Identity.value)
        .where(among(session, Identity.contact_id, contact_ids), Identity.kind == kind)
        .order_by(Identity.contact_id, Identity.is_primary.desc(), Identity.id)
    ).all()
    found: dict[int, str] = {}
    for contact_id, value in rows:
        found.setdefault(contact_id, value)
    return found


def send_step(session: Session, hub: Hub, *, campaign: Campaign, run_id: int, step: CampaignStep, contact: Contact,
              address: str) -> str | None:
    """Render `step` for one contact, put it in the outbox and note which delivery carried it; an
    error message instead if it cannot be sent."""
    [sent] = send_steps(session, hub, campaign=campaign, run_id=run_id, step=step, targets=[(contact, address)])
    if isinstance(sent, str):
        return sent
    insert_ignore(session, CampaignMessage, sent, ["run_id", "step", "contact_id"])
    return None


def send_steps(session: Session, hub: Hub, *, campaign: Campaign, run_id: int, step: CampaignStep,
               targets: Sequence[tuple[Contact, str]], variant: CampaignVariant | None = None) -> list[str | dict[str, Any]]:
    """Render `step` (as A/B `variant` has it, if given) for each (contact, address) and enqueue the
    lot together: per target, the campaign_message row to insert, or why its message cannot be sent."""
    from campaigns.message_templates.models import MessageTemplate
    from campaigns.message_templates.rendering import TemplateRenderError, contact_contexts, render_message
    from hub import outbox

    template_id = ab_variants.step_template_id(step, variant)
    template = session.get(MessageTemplate, template_id)
    if template is None:
        return [f"template {template_id} no longer exists"] * len(targets)
    source = ab_variants.source(template, variant.subject if variant else None)
    send_after = ab_variants.send_after(variant, zone=campaign.time_zone, now=clock.now())
    contexts = contact_contexts(session, [contact for contact, _ in targets])
    extra = {"campaign": {"id": campaign.id, "name": campaign.name}}
    rules = rules_of(campaign)
    event_data: dict[str, Any] = {"campaign_id": campaign.id, "campaign_run_id": run_id, "step": step.position}
    if variant is not None:
        event_data["variant"] = variant.label
    results: list[str | int] = []
    outgoing: list[outbox.Outgoing] = []
    decorated = decorator(hub, campaign=campaign) if targets else None
    for contact, address in targets:
        key = delivery_key(run_id, step.position, contact.id)  # type: ignore[arg-type]
        chunks: list[str] = []  # the HTML's pieces: its links' parse is the template's, replayed
        try:
            content = dict(render_message(source, contact_context=contexts[contact.id],  # type: ignore[index]
                                          locale=contact.locale or hub.settings.default_locale, extra=extra,
                                          channel=template.channel, default_locale=template.default_locale,
                                          text_from_html=False, html_chunks=chunks))
        except TemplateRenderError as exc:
            results.append(f"the template could not be rendered: {exc}")
            continue
        results.append(len(outgoing))
        outgoing.append(outbox.Outgoing(
            channel=campaign.channel, address=address, idempotency_key=key, contact_id=contact.id,
            content=decorated(contact, content, key, chunks),  # type: ignore[misc]
            purpose=Purpose.MARKETING, rules=rules, event_kind="campaign.message",
            event_data=event_data, send_after=send_after))
    queued = outbox.enqueue_many(session, outgoing)
    now = clock.now()
    out: list[str | dict[str, Any]] = []
    for (contact, _address), result in zip(targets, results):
        if isinstance(result, str):
            out.append(result)
        elif queued[result].delivery_id is None:  # the channel refused the content (too long, say)
            out.append(f"the message was refused: {queued[result].refused}")
        else:
            out.append(dict(campaign_id=campaign.id, run_id=run_id, step=step.position, contact_id=contact.id,
                            delivery_id=queued[result].delivery_id, created_at=now))
    return out


def decorate(hub: Hub, *, campaign: Campaign, contact: Contact, content: dict[str, Any], key: str,
             chunks: list[str] | None = None) -> dict[str, Any]:
    """What every campaign message carries: its thread, and what its channel adds to marketing (the
    channel decides: unsubscribe headers and tracked links, opt-out wording, a stop button).
    `chunks`, the pieces the HTML was rendered from, spare its links' parse (tracking.replay)."""
    return decorator(hub, campaign=campaign)(contact, content, key, chunks)


def decorator(hub: Hub, *, campaign: Campaign) -> Callable[[Contact, dict[str, Any], str, list[str] | None], dict[str, Any]]:
    """decorate for the messages of one campaign's batch: what they share (the thread, the sender,
    the channel) read once, not per message."""
    from campaigns.service import sender_parts
    from campaigns.tracking.links import instrument_html_and_text
    from campaigns.unsubscribe import unsubscribe_url

    thread = thread_key(campaign.id)  # type: ignore[arg-type]
    name, address = sender_parts(campaign.sender) if campaign.sender else ("", None)  # checked when saved
    settings = hub.settings
    campaign_id, channel_name = campaign.id, campaign.channel
    channel = hub.channel(channel_name)

    def one(contact: Contact, content: dict[str, Any], key: str, chunks: list[str] | None = None) -> dict[str, Any]:
        content["thread_key"] = thread
        context = MarketingContext(
            locale=contact.locale or settings.default_locale,
            unsubscribe_url=unsubscribe_url(settings, contact_id=contact.id, channel=channel_name,  # type: ignore[arg-type]
                                            campaign_id=campaign_id),
            delivery_key=key, track_links=lambda html: instrument_html_and_text(settings, html, delivery_key=key, chunks=chunks),
            sender_name=name or None, sender_address=address)
        return channel.decorate_marketing(content, context)

    return one


# --- drips: later steps ------------------------------------------------------------------------

def replied_since(session: Session, *, contact_id: int, since: datetime) -> bool:
    """Whether the contact sent us a message (email, SMS…) after `since`."""
    return session.scalar(
        select(TimelineEvent.id).where(
            TimelineEvent.contact_id == contact_id, TimelineEvent.direction == Direction.IN,
            TimelineEvent.kind == "message", TimelineEvent.occurred_at > since,
        ).limit(1)
    ) is not None


def advance_drips(hub: Hub, *, now: datetime | None = None, batch_size: int = DEFAULT_BATCH) -> int:
    """Send every drip step that has come due, unless its contact replied; how many recipients moved on."""
    now = now or clock.now()
    moved = 0
    while True:
        with hub.session() as session, session.begin():
            rows = session.execute(
                select(CampaignRecipient, CampaignRun.campaign_id)
                .join(CampaignRun, CampaignRun.id == CampaignRecipient.run_id)
                .join(Campaign, Campaign.id == CampaignRun.campaign_id)
                .where(CampaignRecipient.next_step_at.is_not(None), CampaignRecipient.next_step_at <= now,
                       CampaignRecipient.status == RecipientStatus.ACTIVE, Campaign.status.in_(ACTIVE),
                       CampaignRun.status.in_([RunStatus.MATERIALISING, RunStatus.SENDING]))
                .order_by(CampaignRecipient.next_step_at, CampaignRecipient.id)
                .limit(batch_size)
            ).all()
            if not rows:
                return moved
            campaigns: dict[int, tuple[Campaign, list[CampaignStep]]] = {}
            for recipient, campaign_id in rows:
                if campaign_id not in campaigns:
                    campaign = session.get(Campaign, campaign_id)
                    campaigns[campaign_id] = (campaign, steps_of(session, campaign_id))  # type: ignore[assignment]
                campaign, steps = campaigns[campaign_id]
                _advance(session, hub, recipient=recipient, campaign=campaign, steps=steps, now=now)
                moved += 1


def _advance(session: Session, hub: Hub, *, recipient: CampaignRecipient, campaign: Campaign,
             steps: list[CampaignStep], now: datetime) -> None:
    by_position = {s.position: s for s in steps}
    step = by_position.get(recipient.step + 1)
    recipient.updated_at = now
    if step is None:
        recipient.next_step_at = None
        recipient.status = RecipientStatus.DONE
        return
    # "Unless the contact replied": any message from them since the run reached them.
    if step.skip_if_replied and replied_since(session, contact_id=recipient.contact_id, since=recipient.created_at):
        recipient.next_step_at = None
        recipient.status = RecipientStatus.REPLIED
        return
    contact = session.get(Contact, recipient.contact_id)
    if contact is None or recipient.address is None:
        recipient.next_step_at = None
        recipient.status = RecipientStatus.NO_ADDRESS
        return
    error = send_step(session, hub, campaign=campaign, run_id=recipient.run_id, step=step, contact=contact,
                      address=recipient.address)
    if isinstance(error, str):
        recipient.status, recipient.error, recipient.next_step_at = RecipientStatus.FAILED, error[:500], None
        return
    recipient.step = step.position
    following = by_position.get(step.position + 1)
    if following is None:
        recipient.next_step_at = None
        recipient.status = RecipientStatus.DONE
    else:
        recipient.next_step_at = now + timedelta(minutes=following.delay_minutes)


# --- completion --------------------------------------------------------------------------------

def finish_runs(hub: Hub, *, now: datetime | None = None) -> int:
    """Complete materialised runs with no drip step left and no message still waiting in the outbox;
    one-off campaigns complete with their run. A run whose messages wait (quiet hours, a channel
    that is not set up) stays "sending", and the campaign's page says why they wait."""
    now = now or clock.now()
    done = 0
    d = Delivery.__table__
    with hub.session() as session, session.begin():
        runs = session.scalars(select(CampaignRun).where(CampaignRun.status == RunStatus.SENDING)).all()
        for run in runs:
            pending = session.scalar(  # a drip step to come, or the rest of an A/B test awaiting its winner
                select(R.c.id).where(R.c.run_id == run.id,
                                     R.c.status.in_([RecipientStatus.ACTIVE, RecipientStatus.HELD])).limit(1)
            )
            if pending is not None:
                continue
            waiting = session.scalar(
                select(d.c.id).where(of_runs([run.id]),
                                     d.c.status.in_([DeliveryStatus.QUEUED.value, DeliveryStatus.SENDING.value]))
                .limit(1)
            )
            if waiting is not None:
                continue
            run.status = RunStatus.COMPLETED
            run.finished_at = now
            done += 1
            _emit_run(session, "campaign.finished", run)
            campaign = session.get(Campaign, run.campaign_id)
            if campaign is not None and campaign.status == CampaignStatus.RUNNING and \
                    campaign.schedule_kind in (ScheduleKind.NOW, ScheduleKind.AT):
                campaign.status = CampaignStatus.COMPLETED
                campaign.updated_at = now
    return done


def _emit_run(session: Session, name: str, run: CampaignRun) -> None:
    """campaign.started / campaign.finished for `run` (hub.notices: webhooks hear of it)."""
    campaign = session.get(Campaign, run.campaign_id)
    notices.emit(session, name, subject=f"campaign:{run.campaign_id}",
                 data={"campaign_id": run.campaign_id, "run_id": run.id, "campaign_name": campaign.name if campaign else "",
                       "contact_id": run.contact_id, "at": run.finished_at or run.started_at or clock.now()})


# --- progress ----------------------------------------------------------------------------------

def progress(session: Session, *, campaign_id: int) -> dict[str, int]:
    """Where a campaign's sending stands now: recipients targeted, deliveries queued, sent, failed."""
    # Runs first, both counts in one statement (one snapshot: a run created between two statements
    # would read as existing and not materialising). A run leaves `materialising` only after its
    # batches committed, so once it reads as done, the counts below (later statements, later
    # snapshots) include every delivery it made.
    runs, materialising = session.execute(
        select(func.count(), func.count().filter(CampaignRun.status.in_([RunStatus.PENDING, RunStatus.MATERIALISING])))
        .select_from(CampaignRun).where(CampaignRun.campaign_id == campaign_id)
    ).one()
    run_ids = select(CampaignRun.id).where(CampaignRun.campaign_id == campaign_id).scalar_subquery()
    targeted = session.scalar(select(func.count()).select_from(R).where(R.c.run_id.in_(run_ids))) or 0
    counts = dict(session.execute(
        select(Delivery.status, func.count()).where(of_runs(run_ids)).group_by(Delivery.status)
    ).all())
    pending = counts.get(DeliveryStatus.QUEUED, 0) + counts.get(DeliveryStatus.SENDING, 0)
    failed = sum(counts.get(s, 0) for s in (DeliveryStatus.FAILED, DeliveryStatus.UNDELIVERED, DeliveryStatus.DEAD,
                                            DeliveryStatus.BOUNCED))
    skipped = counts.get(DeliveryStatus.CANCELLED, 0)
    total = sum(counts.values())
    return {"runs": runs, "targeted": targeted, "messages": total, "pending": pending, "done": total - pending,
            "sent": total - pending - failed - skipped, "failed": failed, "skipped": skipped,
            "materialising": materialising}


__all__ = ["advance_drips", "dispatch_due", "finish_runs", "materialise_due", "materialise_run", "progress",
           "tick", "trigger_run"]
