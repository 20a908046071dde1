"""Saving message templates, and sending a test of one to the marketer (audited; the caller commits)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from campaigns.message_templates.models import MessageTemplate
from campaigns.message_templates.rendering import (
    LOCALES,
    SAMPLE_CONTEXT,
    TemplateRenderError,
    channel_names,
    check_renders,
    contact_context,
    render_message,
    validate_variants,
)
from hub import audit, clock
from hub.auth import Principal
from hub.channel_hooks import identity_kind_of
from hub.identities import InvalidIdentity, normalize, normalize_email
from hub.models import Contact, Delivery, IdentityKind, Purpose, User
from hub.web.i18n import N_, TranslatableError

MAX_NAME = 200


class TemplateError(TranslatableError):
    """A refused change or send; `field` names the input, `status` the HTTP answer, `slug` the kind.
    One made `from_render` shows the render error's own words (part, line, reason)."""

    def __init__(self, message: str, *, field: str | None = None, status: int = 422, slug: str = "validation",
                 **params: Any) -> None:
        self.field = field
        self.status = status
        self.slug = slug
        self.cause: TemplateRenderError | None = None
        super().__init__(message, **params)

    @classmethod
    def from_render(cls, exc: TemplateRenderError) -> TemplateError:
        error = cls("%(detail)s", field="variants", slug="template-invalid", detail=str(exc))
        error.cause = exc
        return error

    def translated(self, gettext: Callable[[str], str]) -> str:
        return self.cause.translated(gettext) if self.cause is not None else super().translated(gettext)


def _clean_name(session: Session, name: Any, *, exclude_id: int | None = None) -> str:
    if not isinstance(name, str) or not " ".join(name.split()):
        raise TemplateError(N_("a template needs a name"), field="name")
    name = " ".join(name.split())
    if len(name) > MAX_NAME:
        raise TemplateError(N_("the name is longer than %(limit)s characters"), field="name", limit=MAX_NAME)
    taken = session.scalars(select(MessageTemplate.id).where(func.lower(MessageTemplate.name) == name.lower())).first()
    if taken is not None and taken != exclude_id:
        raise TemplateError(N_("a template named “%(name)s” already exists"), field="name", status=409, slug="conflict",
                            name=name)
    return name


def _variants(channel: str, variants: Any, default_locale: str) -> dict[str, dict[str, str]]:
    if default_locale not in LOCALES:
        raise TemplateError(f"default_locale must be one of {', '.join(LOCALES)}", field="default_locale")
    try:
        cleaned = validate_variants(channel, variants, default_locale=default_locale)
        check_renders(channel, cleaned, default_locale=default_locale)
    except TemplateRenderError as exc:
        raise TemplateError.from_render(exc) from None
    return cleaned


def create_template(session: Session, *, actor: Principal, name: str, channel: str,
                    variants: Mapping[str, Any], default_locale: str = "ru") -> MessageTemplate:
    """A new template, its variants checked (syntax errors name the part and line)."""
    if channel not in channel_names():
        raise TemplateError(f"channel must be one of {', '.join(channel_names())}", field="channel")
    now = clock.now()
    template = MessageTemplate(name=_clean_name(session, name), channel=channel, default_locale=default_locale,
                               variants=_variants(channel, variants, default_locale), created_by=actor.actor,
                               created_at=now, updated_at=now)
    session.add(template)
    session.flush()
    audit.record(session, actor=actor, action="message_template.create", entity="message_template",
                 entity_id=template.id, changes={"name": [None, template.name], "channel": [None, channel]})
    return template


def update_template(session: Session, *, template: MessageTemplate, actor: Principal,
                    changes: Mapping[str, Any]) -> MessageTemplate:
    """Change the name, variants or default language; the channel is fixed once created."""
    if "channel" in changes and changes["channel"] != template.channel:
        raise TemplateError(N_("a template's channel cannot change; make a new template"), field="channel")
    before = {"name": template.name, "variants": template.variants, "default_locale": template.default_locale}
    name = _clean_name(session, changes["name"], exclude_id=template.id) if "name" in changes else template.name
    default_locale = changes.get("default_locale") or template.default_locale
    variants = changes["variants"] if "variants" in changes else template.variants
    cleaned = _variants(template.channel, variants, default_locale)
    template.name, template.default_locale, template.variants = name, default_locale, cleaned
    after = {"name": template.name, "variants": template.variants, "default_locale": template.default_locale}
    diff = audit.diff(before, after)
    if diff:
        template.updated_at = clock.now()
        session.flush()
        audit.record(session, actor=actor, action="message_template.update", entity="message_template",
                     entity_id=template.id, changes={k: v for k, v in diff.items() if k != "variants"}
                     | ({"variants": "changed"} if "variants" in diff else {}))
    return template


def campaigns_using(session: Session, *, template_id: int) -> list[str]:
    """Names of campaigns that are not over and still have a step with this template."""
    try:
        from campaigns.models import Campaign, CampaignStatus, CampaignStep
    except ImportError:  # campaigns not installed: nothing can use a template
        return []
    over = [CampaignStatus.COMPLETED.value, CampaignStatus.CANCELLED.value]
    return list(session.scalars(
        select(Campaign.name).distinct().join(CampaignStep, CampaignStep.campaign_id == Campaign.id)
        .where(CampaignStep.template_id == template_id, Campaign.status.not_in(over)).order_by(Campaign.name)))


def delete_template(session: Session, *, template: MessageTemplate, actor: Principal) -> None:
    """Delete a template; one that a live campaign still uses is refused (status 409)."""
    name = template.name
    users = campaigns_using(session, template_id=template.id)  # type: ignore[arg-type]
    if users:
        raise TemplateError(N_("template “%(name)s” is used by the campaign(s) %(campaigns)s; change or cancel them first"),
                            status=409, slug="conflict", name=name, campaigns=", ".join(users))
    try:
        with session.begin_nested():
            session.delete(template)
            session.flush()
    except IntegrityError:
        raise TemplateError(N_("template “%(name)s” is used by a campaign; change the campaign first"),
                            status=409, slug="conflict", name=name) from None
    audit.record(session, actor=actor, action="message_template.delete", entity="message_template",
                 entity_id=template.id, changes={"name": [name, None]})


def list_templates(session: Session, *, channel: str | None = None, limit: int = 200) -> list[MessageTemplate]:
    stmt = select(MessageTemplate)
    if channel is not None:
        stmt = stmt.where(MessageTemplate.channel == channel)
    return list(session.scalars(stmt.order_by(func.lower(MessageTemplate.name), MessageTemplate.id).limit(limit)))


def preview(session: Session, *, template: MessageTemplate | Mapping[str, Any], contact_id: int | None,
            channel: str | None = None, default_locale: str | None = None,
            locale: str | None = None) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """(rendered content, the contact's context) for a real contact, or for the sample when none is given."""
    contact = None
    if contact_id is not None:
        contact = session.get(Contact, contact_id)
        if contact is None or contact.merged_into is not None:
            raise TemplateError(N_("contact %(id)s does not exist"), field="contact_id", status=404,
                                slug="not-found", id=contact_id)
    ctx = contact_context(session, contact) if contact is not None else dict(SAMPLE_CONTEXT)
    try:
        content = render_message(template, contact_context=ctx, locale=locale or ctx.get("locale"),
                                 channel=channel, default_locale=default_locale)
    except TemplateRenderError as exc:
        raise TemplateError.from_render(exc) from None
    return content, (ctx if contact is not None else None)


def send_test(session: Session, *, template: MessageTemplate, actor: Principal, contact_id: int | None = None,
              to: str | None = None, locale: str | None = None) -> Delivery:
    """Queue the template, rendered for a contact, to the marketer's own address (purpose transactional).

    Email goes only to the signed-in user's own address, so a test send cannot mail anyone else;
    an SMS goes to the number given (users keep no phone number in the hub).
    """
    hub = session.info.get("hub")
    if hub is None:
        raise RuntimeError("test_send needs a session from Hub.session()")
    channel = hub.channels.get(template.channel)
    if channel is None or not channel.configured:
        raise TemplateError(N_("the %(channel)s channel is not configured; an administrator sets it up under Channels"),
                            status=409, slug="channel-not-configured", channel=template.channel)
    address = _own_address(session, identity_kind_of(channel, IdentityKind.PHONE), actor=actor, to=to, region=hub.settings.default_region)
    content, _ctx = preview(session, template=template, contact_id=contact_id, locale=locale)
    content = {k: v for k, v in content.items() if v is not None}
    if content.get("subject"):
        content["subject"] = f"[TEST] {content['subject']}"[:998]
    try:
        delivery = _enqueue(session, channel=template.channel, address=address, content=content)
    except ValueError as exc:
        raise TemplateError(N_("the channel refused the message: %(reason)s"), field="variants", reason=str(exc),
                            slug="content-refused") from None
    audit.record(session, actor=actor, action="message_template.test_send", entity="message_template",
                 entity_id=template.id, changes={"to": address, "delivery_id": delivery.id, "contact_id": contact_id})
    return delivery


def _enqueue(session: Session, *, channel: str, address: str, content: dict[str, Any]) -> Delivery:
    from hub.outbox import enqueue

    return enqueue(session, channel=channel, address=address, content=content, purpose=Purpose.TRANSACTIONAL,
                   idempotency_key=f"template-test:{uuid.uuid4().hex}")


def _own_address(session: Session, kind: str, *, actor: Principal, to: str | None, region: str) -> str:
    """Where a test goes: the signed-in user's own email address, or the address given for another
    kind (a phone number, a Telegram user id)."""
    if kind == IdentityKind.EMAIL:
        user = session.get(User, actor.user_id) if actor.user_id is not None else None
        if user is None:
            raise TemplateError(N_("a test email goes to the signed-in user's own address; an API key has none"),
                                field="to")
        if to and _email_or_none(to) != user.email:
            raise TemplateError(N_("a test email can only go to your own address"), field="to", status=403,
                                slug="forbidden")
        return user.email
    if not to:
        raise TemplateError(N_("give the phone number to text the test to") if kind == IdentityKind.PHONE
                            else N_("give the address to send the test to"), field="to")
    try:
        return normalize(kind, to, region=region)
    except (InvalidIdentity, ValueError) as exc:
        raise TemplateError("%(detail)s", field="to", detail=str(exc)) from None


def _email_or_none(value: str) -> str | None:
    try:
        return normalize_email(value)
    except InvalidIdentity:
        return None
