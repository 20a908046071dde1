"""Demo data: a "VIP customers" segment, a bilingual newsletter template and a weekly campaign
scheduled on Mondays at 10:00 Moscow time (idempotent: a second run finds them and adds nothing)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import select

from campaigns import service
from campaigns.models import Campaign

if TYPE_CHECKING:
    from hub.runtime import Hub

SEGMENT = "VIP customers"
TEMPLATE = "Weekly VIP news"
CAMPAIGN = "Weekly VIP news"


def demo(hub: Hub, *, seed: int) -> str:
    """Create the example segment, template and scheduled campaign unless they exist."""
    from campaigns.message_templates.models import MessageTemplate
    from campaigns.segments.models import Segment

    with hub.session() as session, session.begin():
        if session.scalars(select(Campaign).where(Campaign.name == CAMPAIGN)).first() is not None:
            return f"campaign {CAMPAIGN!r} already there"
        segment = session.scalars(select(Segment).where(Segment.name == SEGMENT)).first()
        if segment is None:
            segment = Segment(name=SEGMENT, description="Customers tagged vip who can be emailed",
                              definition={"type": "and", "conditions": [{"type": "tag", "op": "has", "tag": "vip"}]})
            session.add(segment)
        template = session.scalars(select(MessageTemplate).where(MessageTemplate.name == TEMPLATE)).first()
        if template is None:
            template = MessageTemplate(name=TEMPLATE, channel="email", default_locale="ru", variants={
                "ru": {"subject": "{{ contact.first_name }}, новинки недели для вас",
                       "html": "<p>Здравствуйте, {{ contact.first_name }}!</p><p>Для постоянных клиентов — "
                               "<a href=\"https://shop.example.com/vip\">закрытая распродажа</a>.</p>",
                       "text": "Здравствуйте, {{ contact.first_name }}! Закрытая распродажа: https://shop.example.com/vip"},
                "en": {"subject": "{{ contact.first_name }}, this week's picks for you",
                       "html": "<p>Hello {{ contact.first_name }},</p><p>A <a href=\"https://shop.example.com/vip\">"
                               "private sale</a> for our regulars.</p>",
                       "text": "Hello {{ contact.first_name }}! Private sale: https://shop.example.com/vip"},
            })
            session.add(template)
        session.flush()
        campaign = service.create_campaign(session, data=service.CampaignIn(
            name=CAMPAIGN, channel="email", segment_id=segment.id, schedule_kind="cron", cron="0 10 * * 1",
            time_zone="Europe/Moscow", quiet_hours_start="09:00", quiet_hours_end="21:00",
            steps=[service.StepIn(template_id=template.id)],  # type: ignore[arg-type]
        ))
        if not service.channel_can_send(hub, "email"):
            return f"campaign {CAMPAIGN!r} left as a draft: the email channel is not set up"
        service.schedule(session, campaign=campaign)
        when = campaign.next_run_at
    return f"campaign {CAMPAIGN!r} scheduled for {when:%Y-%m-%d %H:%M} UTC, every Monday 10:00 Moscow time"
