"""Plain factory functions and the SMTP fixture the campaign tests share (no conftest: the
segments/, message_templates/ and other folders beside this one keep their own)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, update

from campaigns import runs, service
from campaigns.ab import decide
from campaigns.models import Campaign, CampaignRecipient, CampaignRun, of_runs
from hub.auth import SYSTEM
from hub.contacts import create_contact
from hub.models import Delivery
from hub.runtime import Hub
from tests.channels.email.conftest import SmtpServer, configure, start_smtp


def stop(server: SmtpServer) -> None:
    server.proc.terminate()
    try:
        server.proc.wait(timeout=10)
    except Exception:  # noqa: BLE001
        server.proc.kill()


@pytest.fixture
def smtp(hub: Hub, tmp_path: Path) -> Iterator[SmtpServer]:
    """A real aiosmtpd server in its own process, with the hub's email channel pointed at it."""
    server = start_smtp(tmp_path / "smtp")
    configure(hub, **server.settings())
    yield server
    stop(server)


def email_set_up(hub: Hub) -> None:
    """Give the email channel the settings it needs to count as set up (a campaign on a channel that
    is not refuses to start), unless a test's SMTP server configured it already. Nothing is sent
    unless the test runs a worker."""
    if not hub.channel("email").configured:
        configure(hub, smtp_host="smtp.invalid")


def add_contacts(hub: Hub, n: int, *, tag: str = "news", prefix: str = "c", locale: str = "en") -> list[int]:
    """n contacts with an email each, tagged `tag`."""
    from hub.contacts import IdentityIn

    ids = []
    with hub.session() as s, s.begin():
        for i in range(n):
            contact = create_contact(
                s, actor=SYSTEM, region="US", display_name=f"{prefix.title()} {i}", locale=locale, tags=[tag],
                identities=[IdentityIn(kind="email", value=f"{prefix}{i}@example.org")],
            )
            ids.append(contact.id)
    return ids


def make_segment(hub: Hub, *, tag: str = "news", name: str = "Newsletter") -> int:
    from campaigns.segments.models import Segment

    with hub.session() as s, s.begin():
        segment = Segment(name=name, definition={"type": "and", "conditions": [{"type": "tag", "op": "has", "tag": tag}]})
        s.add(segment)
        s.flush()
        return segment.id  # type: ignore[return-value]


def make_template(hub: Hub, *, channel: str = "email", name: str | None = None,
                  subject: str = "Hello {{ contact.name }}", text: str = "Hi {{ contact.first_name }}!",
                  html: str = '<p>Hi {{ contact.first_name }}! <a href="https://shop.example.com/sale">Sale</a></p>') -> int:
    from campaigns.message_templates.models import MessageTemplate

    variant = {"subject": subject, "text": text, "html": html} if channel == "email" else {"text": text}
    with hub.session() as s, s.begin():
        count = s.scalar(select(func.count()).select_from(MessageTemplate)) or 0
        template = MessageTemplate(name=name or f"Template {count + 1}", channel=channel, variants={"en": variant},
                                   default_locale="en")
        s.add(template)
        s.flush()
        return template.id  # type: ignore[return-value]


def make_campaign(hub: Hub, *, segment_id: int | None, template_ids: list[int], delays_days: list[float] | None = None,
                  schedule: bool = True, **fields: Any) -> int:
    steps = [{"template_id": t, "delay_minutes": int((delays_days or [0] * len(template_ids))[i] * 1440)}
             for i, t in enumerate(template_ids)]
    data = service.CampaignIn.model_validate({"name": fields.pop("name", "Spring sale"), "channel": "email",
                                              "segment_id": segment_id, "steps": steps, **fields})
    if schedule:
        email_set_up(hub)
    with hub.session() as s, s.begin():
        campaign = service.create_campaign(s, data=data)
        if schedule:
            service.schedule(s, campaign=campaign)
        return campaign.id  # type: ignore[return-value]


def mark_sent(hub: Hub, campaign_id: int) -> int:
    """Record the campaign's queued deliveries as sent, as a worker would (tests that run none); how many."""
    from hub import clock
    from hub.models import DeliveryStatus

    with hub.session() as s, s.begin():
        run_ids = select(CampaignRun.id).where(CampaignRun.campaign_id == campaign_id)
        return s.execute(update(Delivery).where(of_runs(run_ids),
                                                Delivery.status == DeliveryStatus.QUEUED)
                         .values(status=DeliveryStatus.SENT, sent_at=clock.now())).rowcount or 0


def campaign(hub: Hub, campaign_id: int) -> Campaign:
    with hub.session(read_only=True) as s:
        found = s.get(Campaign, campaign_id)
        assert found is not None
        return found


def deliveries(hub: Hub, campaign_id: int) -> list[Delivery]:
    with hub.session(read_only=True) as s:
        run_ids = select(CampaignRun.id).where(CampaignRun.campaign_id == campaign_id)
        return list(s.scalars(select(Delivery).where(of_runs(run_ids)).order_by(Delivery.id)).all())


def recipients(hub: Hub, campaign_id: int) -> list[CampaignRecipient]:
    with hub.session(read_only=True) as s:
        return list(s.scalars(select(CampaignRecipient).join(CampaignRun, CampaignRun.id == CampaignRecipient.run_id)
                              .where(CampaignRun.campaign_id == campaign_id)).all())


def run_count(hub: Hub, campaign_id: int) -> int:
    with hub.session(read_only=True) as s:
        return s.scalar(select(func.count()).select_from(CampaignRun).where(CampaignRun.campaign_id == campaign_id)) or 0


def act(hub: Hub, campaign_id: int, action: str) -> int:
    with hub.session() as s, s.begin():
        found = s.get(Campaign, campaign_id)
        return getattr(service, action)(s, campaign=found)


def tick(hub: Hub, now: datetime | None = None) -> None:
    runs.dispatch_due(hub, now=now)
    runs.materialise_due(hub, now=now, batch_size=7)
    decide.decide_due(hub, now=now)
    decide.send_winner(hub, now=now, batch_size=7)
    runs.advance_drips(hub, now=now)
    runs.finish_runs(hub, now=now)


def envelope_recipients(server: SmtpServer) -> list[str]:
    found = []
    for meta, _raw in server.received():
        found.extend(meta["rcpt_tos"])
    return found
