"""REST: /templates CRUD, a preview rendered for a contact, and a test send to the caller."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Response
from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy.orm import Session

from campaigns.message_templates.models import MessageTemplate
from campaigns.message_templates.rendering import channel_names
from campaigns.message_templates.service import (
    TemplateError,
    create_template,
    delete_template,
    list_templates,
    preview,
    send_test,
    update_template,
)
from hub.api.deps import SessionDep, require
from hub.api.problems import Problem
from hub.auth import Principal

router = APIRouter(tags=["message templates"])
Reader = Annotated[Principal, Depends(require("campaigns:read"))]
Writer = Annotated[Principal, Depends(require("campaigns:write"))]
Locale = Literal["ru", "en"]


# One language's parts, as its channel declares them (GET /templates/channels): subject, html and text
# for email; text for SMS and Telegram (Jinja2, sandboxed). Each part's own limit is checked on save.
Variant = dict[Annotated[str, Field(max_length=40)], Annotated[str | None, Field(max_length=200_000)]]


def _installed_channel(value: str) -> str:
    names = channel_names()
    if value not in names:
        raise ValueError(f"{value!r} is not an installed channel that sends to contacts; installed: {', '.join(names)}")
    return value


class TemplateCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    channel: str = Field(min_length=1, max_length=40, description="An installed channel that sends to contacts "
                         "(GET /templates/channels): email, sms, telegram…")
    default_locale: Locale = "ru"
    variants: dict[Locale, Variant] = Field(min_length=1)

    _channel = field_validator("channel")(_installed_channel)


class TemplateUpdate(BaseModel):
    """Only the fields sent change; the channel is fixed."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=200)
    default_locale: Locale | None = None
    variants: dict[Locale, Variant] | None = Field(default=None, min_length=1)


class TemplatePublic(BaseModel):
    id: int
    name: str
    channel: str
    default_locale: str
    variants: dict[str, dict[str, str]]
    created_by: str | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, t: MessageTemplate) -> TemplatePublic:
        return cls(id=t.id, name=t.name, channel=t.channel, default_locale=t.default_locale,  # type: ignore[arg-type]
                   variants=t.variants, created_by=t.created_by, created_at=t.created_at, updated_at=t.updated_at)


class TemplateList(BaseModel):
    items: list[TemplatePublic]


class PartPublic(BaseModel):
    name: str
    label: str
    max_chars: int | None
    html: bool
    one_line: bool


class ChannelParts(BaseModel):
    name: str
    label: str
    parts: list[PartPublic]


class ChannelList(BaseModel):
    items: list[ChannelParts]


class PreviewRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    contact_id: int | None = Field(default=None, description="A real contact; omitted: a built-in sample")
    locale: Locale | None = Field(default=None, description="Force a variant; default: the contact's locale")


class RenderedPreview(BaseModel):
    locale_used: str | None
    content: dict[str, Any]
    contact: dict[str, Any] | None


class TestSendRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    contact_id: int | None = Field(default=None, description="Render for this contact (default: a sample)")
    to: str | None = Field(default=None, max_length=320,
                           description="SMS: the number to text. Email always goes to your own address.")
    locale: Locale | None = None


class TestSendResult(BaseModel):
    delivery_id: int
    channel: str
    address: str
    status: str


def _variants(variants: dict[str, Variant]) -> dict[str, dict[str, Any]]:
    return {locale: {name: value for name, value in v.items() if value is not None} for locale, v in variants.items()}


def _problem(exc: TemplateError) -> Problem:
    if exc.status in (404, 403, 409):
        return Problem(exc.status, str(exc), slug=exc.slug)
    return Problem(exc.status, f"{exc.field}: {exc}" if exc.field else str(exc), slug=exc.slug,
                   errors=[{"field": exc.field or "", "in": "body", "message": str(exc), "type": "value_error"}])


def _template(session: Session, template_id: int) -> MessageTemplate:
    template = session.get(MessageTemplate, template_id)
    if template is None:
        raise Problem(404, f"template {template_id} does not exist")
    return template


@router.get("/templates/channels", summary="The channels a template can be written for, and each one's parts")
def get_template_channels(principal: Reader) -> ChannelList:
    from hub.channel_hooks import contact_channels

    return ChannelList(items=[
        ChannelParts(name=name, label=cls.label or name,
                     parts=[PartPublic(name=p.name, label=p.label, max_chars=p.max_chars, html=p.html,
                                       one_line=p.one_line) for p in cls.parts])
        for name, cls in contact_channels().items()])


@router.get("/templates", summary="List message templates")
def get_templates(session: SessionDep, principal: Reader, channel: str | None = None) -> TemplateList:
    return TemplateList(items=[TemplatePublic.of(t) for t in list_templates(session, channel=channel)])


@router.post("/templates", status_code=201, summary="Create a message template")
def post_template(body: TemplateCreate, session: SessionDep, principal: Writer) -> TemplatePublic:
    try:
        template = create_template(session, actor=principal, name=body.name, channel=body.channel,
                                   variants=_variants(body.variants), default_locale=body.default_locale)
    except TemplateError as exc:
        raise _problem(exc) from None
    session.commit()
    return TemplatePublic.of(template)


@router.get("/templates/{template_id}", summary="One message template")
def get_template(template_id: int, session: SessionDep, principal: Reader) -> TemplatePublic:
    return TemplatePublic.of(_template(session, template_id))


@router.patch("/templates/{template_id}", summary="Change a message template")
def patch_template(template_id: int, body: TemplateUpdate, session: SessionDep, principal: Writer) -> TemplatePublic:
    template = _template(session, template_id)
    changes: dict[str, Any] = {}
    for name in body.model_fields_set:
        value = getattr(body, name)
        if value is None:
            raise Problem(422, f"{name} cannot be null", slug="validation",
                          errors=[{"field": name, "in": "body", "message": "cannot be null", "type": "value_error"}])
        changes[name] = _variants(value) if name == "variants" else value
    try:
        update_template(session, template=template, actor=principal, changes=changes)
    except TemplateError as exc:
        session.rollback()
        raise _problem(exc) from None
    session.commit()
    return TemplatePublic.of(template)


@router.delete("/templates/{template_id}", status_code=204, summary="Delete a message template")
def remove_template(template_id: int, session: SessionDep, principal: Writer) -> Response:
    template = _template(session, template_id)
    try:
        delete_template(session, template=template, actor=principal)
    except TemplateError as exc:
        session.rollback()
        raise _problem(exc) from None
    session.commit()
    return Response(status_code=204)


@router.post("/templates/{template_id}/preview", summary="Render a template for a contact")
def post_preview(template_id: int, body: PreviewRequest, session: SessionDep, principal: Reader) -> RenderedPreview:
    template = _template(session, template_id)
    try:
        content, ctx = preview(session, template=template, contact_id=body.contact_id, locale=body.locale)
    except TemplateError as exc:
        raise _problem(exc) from None
    locale = body.locale or (ctx or {}).get("locale")
    used = locale if locale in template.variants else template.default_locale
    return RenderedPreview(locale_used=used, content=content,
                           contact=None if ctx is None else {k: ctx[k] for k in ("id", "name", "email", "phone", "locale")})


@router.post("/templates/{template_id}/test-send", status_code=202,
             summary="Send the rendered template to your own email address or phone")
def post_test_send(template_id: int, body: TestSendRequest, session: SessionDep, principal: Writer) -> TestSendResult:
    template = _template(session, template_id)
    try:
        delivery = send_test(session, template=template, actor=principal, contact_id=body.contact_id, to=body.to,
                             locale=body.locale)
    except TemplateError as exc:
        session.rollback()
        raise _problem(exc) from None
    session.commit()
    return TestSendResult(delivery_id=delivery.id, channel=delivery.channel, address=delivery.address,  # type: ignore[arg-type]
                          status=delivery.status)
