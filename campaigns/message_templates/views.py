"""Marketers' pages: the template list, and the editor with per-language variants, a live preview for a
real contact picked by search, and a test send to the marketer's own address or number."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.responses import Response

from campaigns.message_templates.models import MessageTemplate
from campaigns.message_templates.channels import ChannelOption, channel_options
from campaigns.message_templates.rendering import LOCALES, VARIABLES
from campaigns.message_templates.service import (
    TemplateError,
    create_template,
    delete_template,
    list_templates,
    preview,
    send_test,
    update_template,
)
from campaigns.segments.views import page
from hub.contacts import search_contacts
from hub.models import Contact
from hub.web import confirm
from hub.web.i18n import N_
from hub.web.pages import Agent, PageError, get_hub, redirect, require
from hub.web.security import email_document

router = APIRouter()
Reader = Annotated[Agent, Depends(require("campaigns:read"))]
Writer = Annotated[Agent, Depends(require("campaigns:write"))]
MAX_FIELD = 200_000


def _options(request: Request) -> dict[str, ChannelOption]:
    return channel_options(get_hub(request).channels)


def _chosen(request: Request, channel: Any) -> ChannelOption | None:
    """The installed channel the form or the link names; None when it names none."""
    return _options(request).get(str(channel or ""))


def _template_or_404(db: Any, template_id: int) -> MessageTemplate:
    template = db.get(MessageTemplate, template_id)
    if template is None:
        raise PageError(404, N_("There is no such template."))
    return template


def _variants_from(form: FormData, channel: ChannelOption) -> dict[str, dict[str, str]]:
    """The languages the marketer filled in (a variant with every part empty is left out)."""
    variants: dict[str, dict[str, str]] = {}
    for locale in LOCALES:
        parts = {}
        for part in channel.parts:
            value = form.get(f"v:{locale}:{part.name}")
            parts[part.name] = value[:MAX_FIELD + 1] if isinstance(value, str) else ""
        if any(v.strip() for v in parts.values()):
            variants[locale] = parts
    return variants


def _editor(request: Request, agent: Agent, *, template: MessageTemplate | None, channel: ChannelOption,
            values: dict[str, Any], errors: dict[str, str] | None = None, status: int = 200) -> Response:
    return page(request, agent, "message_templates/edit.html", status=status, message_template=template,
                channel=channel, values=values, errors=errors or {}, locales=LOCALES, variables=VARIABLES)


@router.get("/message-templates")
def template_list(request: Request, agent: Reader) -> Response:
    with get_hub(request).session(read_only=True) as db:
        templates = list_templates(db)
    return page(request, agent, "message_templates/list.html", templates=templates, channels=_options(request))


@router.get("/message-templates/new")
def new_template(request: Request, agent: Writer, channel: str = "email") -> Response:
    chosen = _chosen(request, channel)
    if chosen is None:
        raise PageError(404, N_("There is no such channel."))
    return _editor(request, agent, template=None, channel=chosen,
                   values={"name": "", "default_locale": agent.locale, "variants": {}})


@router.get("/message-templates/contact-options")
def contact_options(request: Request, agent: Reader, q: Annotated[str, Query(max_length=200)] = "") -> Response:
    """Contacts matching a search, as the options of the preview's contact picker."""
    hub = get_hub(request)
    with hub.session(read_only=True) as db:
        found = search_contacts(db, query=q.strip(), region=hub.settings.default_region, limit=10).items if q.strip() else []
    response = page(request, agent, "message_templates/_contact_options.html", contacts=found, q=q)
    response.headers["HX-Trigger-After-Swap"] = "mt-contact-changed"
    return response


@router.post("/message-templates/preview")
async def preview_fragment(request: Request, agent: Reader) -> Response:
    """The message as it would look for the picked contact (or a sample person), from the unsaved form."""
    form = await request.form()
    chosen = _chosen(request, form.get("channel"))
    if chosen is None:
        raise PageError(422, N_("There is no such channel."))
    channel = chosen.name
    variants = _variants_from(form, chosen)
    default_locale = str(form.get("default_locale") or "ru")
    contact_raw = str(form.get("contact_id") or "")
    contact_id = int(contact_raw) if contact_raw.isdigit() else None
    force = str(form.get("preview_locale") or "") or None

    def work() -> tuple[dict[str, Any] | None, str | None, str | None]:
        if not variants:
            return None, None, N_("Write the message to see it here.")
        with get_hub(request).session(read_only=True) as db:
            contact = db.get(Contact, contact_id) if contact_id is not None else None
            try:
                content, ctx = preview(db, template=variants, contact_id=contact.id if contact else None,
                                       channel=str(channel), default_locale=default_locale,
                                       locale=force if force in LOCALES else None)
            except TemplateError as exc:
                return None, None, exc.translated(agent.package_gettext("message_templates"))
            return content, (ctx or {}).get("name"), None

    content, contact_name, error = await run_in_threadpool(work)
    document = email_document(content["html"]) if content and content.get("html") else None
    return page(request, agent, "message_templates/_preview.html", content=content, error=error, document=document,
                contact_name=contact_name, channel=chosen)


async def _save(request: Request, agent: Agent, template_id: int | None) -> Response:
    form = await request.form()
    chosen = _chosen(request, form.get("channel"))
    if chosen is None:
        raise PageError(422, N_("There is no such channel."))
    channel = chosen.name
    variants = _variants_from(form, chosen)
    default_locale = str(form.get("default_locale") or "ru")
    if default_locale not in variants and len(variants) == 1:
        default_locale = next(iter(variants))  # one language written: it is the default, whatever was picked
    values = {"name": str(form.get("name") or ""), "default_locale": default_locale, "variants": variants}

    def work() -> tuple[int | None, dict[str, str], MessageTemplate | None]:
        with get_hub(request).session() as db:
            template = _template_or_404(db, template_id) if template_id is not None else None
            try:
                if template is None:
                    template = create_template(db, actor=agent.principal, name=values["name"], channel=channel,
                                               variants=variants, default_locale=values["default_locale"])
                else:
                    update_template(db, template=template, actor=agent.principal,
                                    changes={"name": values["name"], "variants": variants,
                                             "default_locale": values["default_locale"]})
            except TemplateError as exc:
                db.rollback()
                if exc.field == "name":
                    message = N_("A template with this name already exists.") if exc.status == 409 else N_("Give the template a name.")
                    return None, {"name": message}, template
                return None, {"_form": exc.translated(agent.package_gettext("message_templates"))}, template
            db.commit()
            return template.id, {}, template

    saved_id, errors, template = await run_in_threadpool(work)
    if saved_id is not None:
        return redirect(request, f"/message-templates/{saved_id}?saved=1")
    return _editor(request, agent, template=template, channel=chosen, values=values, errors=errors, status=422)


@router.post("/message-templates/new")
async def create(request: Request, agent: Writer) -> Response:
    return await _save(request, agent, None)


@router.get("/message-templates/{template_id}")
def edit_template(request: Request, template_id: int, agent: Reader) -> Response:
    with get_hub(request).session(read_only=True) as db:
        template = _template_or_404(db, template_id)
    chosen = _chosen(request, template.channel)
    if chosen is None:  # its channel was uninstalled since
        raise PageError(409, N_("The channel of this template is not installed."))
    return _editor(request, agent, template=template, channel=chosen,
                   values={"name": template.name, "default_locale": template.default_locale,
                           "variants": template.variants})


@router.post("/message-templates/{template_id}")
async def save(request: Request, template_id: int, agent: Writer) -> Response:
    return await _save(request, agent, template_id)


@router.post("/message-templates/{template_id}/test-send")
async def test_send_fragment(request: Request, template_id: int, agent: Writer) -> Response:
    """Queue the saved template to the marketer: their own email, or the number they typed."""
    form = await request.form()
    to = str(form.get("to") or "").strip() or None
    contact_raw = str(form.get("contact_id") or "")
    contact_id = int(contact_raw) if contact_raw.isdigit() else None

    def work() -> tuple[str | None, str | None]:
        with get_hub(request).session() as db:
            template = _template_or_404(db, template_id)
            try:
                delivery = send_test(db, template=template, actor=agent.principal, contact_id=contact_id, to=to)
            except TemplateError as exc:
                db.rollback()
                return None, exc.translated(agent.package_gettext("message_templates"))
            db.commit()
            return delivery.address, None

    address, error = await run_in_threadpool(work)
    return page(request, agent, "message_templates/_test_result.html", status=200 if address else 422,
                address=address, error=error)


@router.post("/message-templates/{template_id}/delete")
async def delete(request: Request, template_id: int, agent: Writer) -> Response:
    if not confirm.confirmed(await request.form()):
        with get_hub(request).session(read_only=True) as db:
            name = _template_or_404(db, template_id).name
        return confirm.ask(request, agent, action=f"/message-templates/{template_id}/delete",
                           package="message_templates", title=N_("Delete template"),
                           question=N_("Delete the template “%(name)s”?"),
                           detail=N_("It cannot be brought back. A template that a campaign uses is kept."),
                           button=N_("Delete template"), back=f"/message-templates/{template_id}",
                           params={"name": name})
    with get_hub(request).session() as db:
        template = _template_or_404(db, template_id)
        try:
            delete_template(db, template=template, actor=agent.principal)
        except TemplateError:
            db.rollback()
            raise PageError(409, N_("A campaign uses this template; change the campaign first.")) from None
        db.commit()
    return redirect(request, "/message-templates")
