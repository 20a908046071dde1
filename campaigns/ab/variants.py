"""An A/B test as the API and the editor submit it, its checks, and its variants as the sender uses them."""

from __future__ import annotations

import re
import secrets
from datetime import datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import select
from sqlalchemy.orm import Session

from campaigns.ab.split import LABELS
from campaigns.models import CampaignVariant
from hub.channel_hooks import contact_channels
from hub.web.i18n import N_

if TYPE_CHECKING:
    from campaigns.models import Campaign, CampaignStep

_CLOCK = re.compile(r"^([01][0-9]|2[0-3]):[0-5][0-9]$")
MIN_SHARE, MAX_SHARE = 5, 95
MIN_WAIT, MAX_WAIT = 60, 30 * 24 * 60


class Metric(StrEnum):
    OPEN = "open"
    CLICK = "click"
    REPLY = "reply"
    ORDER = "order"


def _error(message: str, **params: Any) -> Exception:
    from campaigns.service import CampaignError

    return CampaignError(message, **params)


class VariantIn(BaseModel):
    """One variant of the first step; a blank field is as the step has it."""

    model_config = ConfigDict(extra="forbid")

    template_id: int | None = Field(None, ge=1, description="The variant's template (blank: the first step's)")
    subject: str | None = Field(None, max_length=300, description="Replaces the template's subject in every language")
    send_time: str | None = Field(None, description="HH:MM in the campaign's time zone: the variant goes at "
                                                    "the first such time after the run starts")

    @field_validator("subject")
    @classmethod
    def _subject(cls, value: str | None) -> str | None:
        value = " ".join((value or "").split())
        return value or None

    @field_validator("send_time")
    @classmethod
    def _time(cls, value: str | None) -> str | None:
        if value in (None, ""):
            return None
        if not _CLOCK.match(value):
            raise _error(N_("Write a variant's send time as a time of day like 09:00."))
        return value


class ABTestIn(BaseModel):
    """An A/B test of the first step: 2–4 variants, a test share, the winner's metric and the wait."""

    model_config = ConfigDict(extra="forbid")

    share_percent: int = Field(20, description=f"The share of the audience in the test, {MIN_SHARE}–{MAX_SHARE} %")
    metric: Metric = Field(Metric.OPEN, description="What picks the winner: open, click, reply or order rate")
    wait_minutes: int = Field(24 * 60, description="How long after the test messages go out the winner is "
                                                   f"picked, {MIN_WAIT}–{MAX_WAIT} minutes")
    seed: int | None = Field(None, ge=0, le=2**62, description="The split's seed (blank: a random one, kept)")
    variants: list[VariantIn] = Field(description="Two to four variants, labelled A, B, C, D in order")

    @field_validator("share_percent")
    @classmethod
    def _share(cls, value: int) -> int:
        if not MIN_SHARE <= value <= MAX_SHARE:
            raise _error(N_("The test share must be between %(low)s%% and %(high)s%% of the audience (the rest "
                            "gets the winner)."), low=MIN_SHARE, high=MAX_SHARE)
        return value

    @field_validator("wait_minutes")
    @classmethod
    def _wait(cls, value: int) -> int:
        if not MIN_WAIT <= value <= MAX_WAIT:
            raise _error(N_("The winner is picked between 1 hour and 30 days after the test messages go out."))
        return value

    @field_validator("variants")
    @classmethod
    def _count(cls, value: list[VariantIn]) -> list[VariantIn]:
        if not 2 <= len(value) <= len(LABELS):
            raise _error(N_("An A/B test needs two to four variants; this one has %(count)s."), count=len(value))
        return value


def check(session: Session, data: Any) -> None:
    """Refuse a test that cannot work with the campaign's schedule, channel and templates (CampaignError)."""
    from campaigns.message_templates.models import MessageTemplate
    from campaigns.models import ScheduleKind

    test: ABTestIn | None = data.ab_test
    if test is None:
        return
    if data.schedule_kind not in (ScheduleKind.NOW, ScheduleKind.AT):
        raise _error(N_("An A/B test needs a one-off campaign (now or at a time): a recurring or triggered "
                        "campaign has no “rest of the audience” to send the winner to."), field="ab_test")
    # What the channel's messages carry decides: opens and clicks are tracked in HTML, a subject is a part.
    parts = {part.name: part for part in getattr(contact_channels().get(data.channel), "parts", ())}
    if not any(part.html for part in parts.values()) and test.metric in (Metric.OPEN, Metric.CLICK):
        raise _error(N_("Opens and clicks are tracked in email only; pick the winner of an SMS test by replies "
                        "or orders."), field="ab_test.metric")
    seen: set[tuple[Any, ...]] = set()
    for i, variant in enumerate(test.variants):
        field = f"ab_test.variants.{i}"
        if variant.subject and "subject" not in parts:
            raise _error(N_("An SMS has no subject; variant %(label)s differs by its template or send time "
                            "instead."), field=f"{field}.subject", label=LABELS[i])
        if variant.template_id is not None:
            template = session.get(MessageTemplate, variant.template_id)
            if template is None:
                raise _error(N_("There is no message template %(id)s."), field=f"{field}.template_id",
                             id=variant.template_id)
            if getattr(template, "channel", data.channel) != data.channel:
                raise _error(N_("Template %(id)s is for %(template_channel)s, not %(channel)s."),
                             field=f"{field}.template_id", id=variant.template_id,
                             template_channel=template.channel, channel=data.channel)
        shape = (variant.template_id or data.steps[0].template_id, variant.subject, variant.send_time)
        if shape in seen:
            raise _error(N_("Variant %(label)s is the same as an earlier one; change its template, subject or "
                            "send time."), field=field, label=LABELS[i])
        seen.add(shape)


def check_renders(session: Session, data: Any) -> None:
    """Each variant renders for the sample contact in every language (CampaignError if one cannot)."""
    from campaigns.message_templates.models import MessageTemplate
    from campaigns.message_templates.rendering import TemplateRenderError
    from campaigns.message_templates.rendering import check_renders as renders

    if data.ab_test is None:
        return
    for i, variant in enumerate(data.ab_test.variants):
        template = session.get(MessageTemplate, variant.template_id or data.steps[0].template_id)
        if template is None:
            continue
        try:
            renders(template.channel, source(template, variant.subject), default_locale=template.default_locale)
        except TemplateRenderError as exc:
            raise _error(N_("Variant %(label)s cannot be rendered (%(reason)s)."), field=f"ab_test.variants.{i}",
                         label=LABELS[i], reason=exc) from None


def source(template: Any, subject: str | None) -> dict[str, Any]:
    """The template's language variants, with the subject replaced in each when the variant has one."""
    if not subject:
        return dict(template.variants)
    return {locale: {**parts, "subject": subject} for locale, parts in template.variants.items()}


def write(session: Session, campaign: Campaign, test: ABTestIn | None) -> None:
    """Store the test's settings and variants on the campaign (replacing any), or remove the test."""
    for old in variants_of(session, campaign.id):  # type: ignore[arg-type]
        session.delete(old)
    session.flush()
    if test is None:
        campaign.ab_share_percent = campaign.ab_metric = campaign.ab_wait_minutes = None
        return
    campaign.ab_share_percent, campaign.ab_metric = test.share_percent, test.metric.value
    campaign.ab_wait_minutes = test.wait_minutes
    campaign.ab_seed = test.seed if test.seed is not None else campaign.ab_seed or secrets.randbelow(2**31)
    for label, variant in zip(LABELS, test.variants):
        session.add(CampaignVariant(campaign_id=campaign.id, label=label, template_id=variant.template_id,  # type: ignore[arg-type]
                                    subject=variant.subject, send_time=variant.send_time))
    session.flush()


def read(session: Session, campaign: Campaign) -> ABTestIn | None:
    """The campaign's test in the shape it was submitted in."""
    if campaign.ab_share_percent is None:
        return None
    return ABTestIn(share_percent=campaign.ab_share_percent, metric=Metric(campaign.ab_metric or "open"),
                    wait_minutes=campaign.ab_wait_minutes or MIN_WAIT, seed=campaign.ab_seed,
                    variants=[VariantIn(template_id=v.template_id, subject=v.subject, send_time=v.send_time)
                              for v in variants_of(session, campaign.id)])  # type: ignore[arg-type]


def variants_of(session: Session, campaign_id: int) -> list[CampaignVariant]:
    return list(session.scalars(select(CampaignVariant).where(CampaignVariant.campaign_id == campaign_id)
                                .order_by(CampaignVariant.label)).all())


def send_after(variant: CampaignVariant | None, *, zone: str, now: datetime) -> datetime | None:
    """When a variant's message may go: the next `send_time` in the campaign's zone (None: at once)."""
    if variant is None or not variant.send_time:
        return None
    from datetime import timezone

    from campaigns.scheduling import zone_of

    local = now.astimezone(zone_of(zone))
    hour, minute = (int(part) for part in variant.send_time.split(":"))
    moment = local.replace(hour=hour, minute=minute, second=0, microsecond=0)
    if moment < local:
        moment += timedelta(days=1)  # wall-clock days: a DST change keeps the local time
    return moment.astimezone(timezone.utc)


def step_template_id(step: CampaignStep, variant: CampaignVariant | None) -> int:
    return variant.template_id if variant is not None and variant.template_id else step.template_id


__all__ = ["ABTestIn", "Metric", "VariantIn", "check", "check_renders", "read", "send_after", "source", "write"]
