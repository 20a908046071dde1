"""Workspace pages for forms: the list, create and edit (fields, mapping, consent wording, what follows
a submission), the embed snippet to copy, and the submissions. `forms:read` views, `forms:write` edits."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Depends, Request
from pydantic import ValidationError
from sqlalchemy import select
from starlette.responses import Response

from hub.models import Contact, User
from hub.timeline import InvalidCursor
from hub.web import i18n
from hub.web.card import display_names
from hub.web.i18n import N_
from hub.web.pages import ENV, Agent, PageError, get_hub, redirect, render, require

from channels.forms import spam
from channels.forms.definitions import MAPPINGS, FieldType, FormDefinition, parse_fields
from channels.forms.models import Form
from channels.forms.public import PREFIX, form_url
from channels.forms.service import (
    create_form, definition_of, export_submissions, list_forms, list_submissions, update_form,
)

if TYPE_CHECKING:
    from channels.forms.channel import FormsChannel

Reader = Annotated[Agent, Depends(require("forms:read"))]
Writer = Annotated[Agent, Depends(require("forms:write"))]
BLANK_ROWS = 3
FIELD_KEYS = ("name", "type", "label", "help", "options", "wording", "consent_channel", "maps_to", "max_length")


def _rows(data: dict[str, list[str]]) -> list[dict[str, Any]]:
    """Field rows f-<i>-<key> of the edit page, in the order of their position numbers."""
    indexes = sorted({int(k.split("-")[1]) for k in data if k.startswith("f-") and k.split("-")[1].isdigit()})
    rows = []
    for i in indexes:
        def get(key: str, i: int = i) -> str:
            return (data.get(f"f-{i}-{key}") or [""])[-1].strip()

        if get("remove") or (not get("name") and not get("label")):
            continue
        row: dict[str, Any] = {"name": get("name"), "type": get("type") or "text", "label": get("label"),
                               "required": bool(get("required")), "help": get("help"),
                               "multiline": bool(get("multiline")), "maps_to": get("maps_to") or None}
        if row["type"] == FieldType.CHOICE:
            options = []
            for line in get("options").splitlines():
                if line.strip():
                    value, sep, label = line.partition("=")
                    options.append({"value": value.strip(), "label": (label if sep else value).strip()})
            row["options"] = options
        if row["type"] == FieldType.CONSENT:
            row["wording"] = get("wording")
            row["consent_channel"] = get("consent_channel") or "email"
        if row["type"] == FieldType.TEXT and get("max_length").isdigit():
            row["max_length"] = int(get("max_length"))
        try:
            position = float(get("position") or i)
        except ValueError:
            position = float(i)
        rows.append((position, i, row))
    return [row for _p, _i, row in sorted(rows, key=lambda r: (r[0], r[1]))]


def definition_from(data: dict[str, list[str]]) -> FormDefinition:
    """The edit page's fields as a FormDefinition (ValidationError names what is wrong)."""
    def one(key: str) -> str:
        return (data.get(key) or [""])[-1].strip()

    assignee = one("task_assignee_id")
    return FormDefinition.model_validate({
        "name": one("name"), "title": one("title"), "description": one("description"),
        "fields": _rows(data), "submit_label": one("submit_label"), "locale": one("locale") or None,
        "thank_you": one("thank_you"),
        "redirect_url": one("redirect_url") or None,
        "allowed_origins": [line for line in one("allowed_origins").split() if line],
        "tags": [t for t in one("tags").split(",") if t.strip()],
        "task_assignee_id": int(assignee) if assignee.isdigit() else None,
        "task_title": one("task_title"), "is_active": bool(one("is_active")),
    })


# The edit page's labels, naming a field in the messages of a form that was not saved.
FORM_LABELS = {"name": N_("Name"), "title": N_("Heading"), "description": N_("Introduction"),
               "submit_label": N_("Button text"), "locale": N_("Language of the form"),
               "thank_you": N_("Thank-you message"),
               "redirect_url": N_("Or redirect to"), "allowed_origins": N_("Allowed origins"),
               "tags": N_("Tags to add"), "task_title": N_("Task title"), "task_assignee_id": N_("Follow-up task for")}
ROW_LABELS = {"name": N_("Field name"), "type": N_("Type"), "label": N_("Label"), "maps_to": N_("Maps to"),
              "options": N_("Options (choice)"), "wording": N_("Exact consent wording (consent)"),
              "help": N_("Help text"), "consent_channel": N_("Consent for"), "max_length": N_("Max length")}


def _messages(exc: ValidationError, agent: Agent) -> list[str]:
    """What is wrong, in the admin's language, each field named by its label on the edit page."""
    gettext = agent.package_gettext("forms")
    out = []
    for err in exc.errors():
        loc = [str(p) for p in err.get("loc", ())]
        if len(loc) >= 2 and loc[0] == "fields" and loc[1].isdigit():
            problem = i18n.field_errors([{**err, "loc": tuple(loc[2:])}], ROW_LABELS)[0]
            out.append(gettext("Field %(number)s: %(problem)s") % {"number": int(loc[1]) + 1,
                                                                    "problem": problem.translated(gettext)})
        else:
            out.append(i18n.field_errors([err], FORM_LABELS)[0].translated(gettext))
    return out


def embed_snippet(hub: Any, form: Form, *, locale: str, base: str | None = None) -> str:
    """The HTML a site owner pastes: a plain form posting to the hub, plus the optional inline script."""
    translations = i18n.package_translations(locale, "forms")
    base = (base or hub.settings.public_base_url).rstrip("/")
    return ENV.get_template("public/forms/embed.html").render(
        _=translations.gettext, gettext=translations.gettext, ngettext=translations.ngettext, locale=locale,
        form=form, fields=parse_fields(form.fields), key=form.key, action=form_url(base, form.key),
        token=spam.embed_token(hub.settings, form.key), honeypot=spam.HONEYPOT,
        script=f"{base}/static/forms-embed.js",
    ).strip()


def build_router(channel: FormsChannel) -> APIRouter:
    router = APIRouter()

    def users(db: Any) -> list[User]:
        return list(db.scalars(select(User).where(User.is_active.is_(True)).order_by(User.display_name)))

    def edit_page(request: Request, agent: Agent, *, form: Form | None, values: dict[str, Any],
                  errors: list[str] | None = None, status: int = 200) -> Response:
        with get_hub(request).session(read_only=True) as db:
            people = users(db)
        fields = list(values.get("fields") or [])
        return render(request, agent, "forms/edit.html", status=status, form=form, values=values,
                      rows=fields + [{} for _ in range(BLANK_ROWS)], errors=errors or [], users=people,
                      types=[t.value for t in FieldType], mappings=MAPPINGS)

    def load(db: Any, form_id: int) -> Form:
        form = db.get(Form, form_id)
        if form is None:
            raise PageError(404, N_("There is no such form."))
        return form

    @router.get("/forms")
    def forms_list(request: Request, agent: Reader) -> Response:
        with get_hub(request).session(read_only=True) as db:
            found = list_forms(db)
        return render(request, agent, "forms/list.html", forms=found, prefix=PREFIX)

    @router.get("/forms/new")
    def new_form(request: Request, agent: Writer) -> Response:
        starter = {"name": "", "is_active": True, "locale": agent.locale, "fields": [
            {"name": "name", "type": "text", "label": agent.gettext("Name"), "required": True, "maps_to": "display_name"},
            {"name": "email", "type": "email", "label": agent.gettext("Email"), "required": True},
        ]}
        return edit_page(request, agent, form=None, values=starter)

    async def _data(request: Request) -> dict[str, list[str]]:
        data: dict[str, list[str]] = {}
        for key, value in (await request.form()).multi_items():
            if isinstance(value, str):
                data.setdefault(key, []).append(value)
        return data

    def _values(data: dict[str, list[str]]) -> dict[str, Any]:
        """What the agent typed, to show again beside the errors."""
        one = {k: v[-1] for k, v in data.items()}
        rows = []
        try:
            rows = _rows(data)
        except ValueError:
            pass
        for row in rows:
            if "options" in row:
                row["options_text"] = "\n".join(f"{o['value']}={o['label']}" for o in row["options"])
        return {**one, "fields": rows, "is_active": bool(one.get("is_active"))}

    @router.post("/forms/new")
    async def create(request: Request, agent: Writer) -> Response:
        data = await _data(request)
        from starlette.concurrency import run_in_threadpool

        def work() -> Response:
            try:
                definition = definition_from(data)
            except ValidationError as exc:
                return edit_page(request, agent, form=None, values=_values(data), errors=_messages(exc, agent), status=422)
            with get_hub(request).session() as db:
                try:
                    form = create_form(db, actor=agent.principal, definition=definition)
                except ValueError as exc:
                    return edit_page(request, agent, form=None, values=_values(data), errors=[str(exc)], status=422)
                db.commit()
                form_id = form.id
            return redirect(request, f"/forms/{form_id}")

        return await run_in_threadpool(work)

    @router.get("/forms/{form_id}")
    def detail(request: Request, form_id: int, agent: Reader, cursor: str | None = None,
               lang: str | None = None) -> Response:
        hub = get_hub(request)
        with hub.session(read_only=True) as db:
            form = load(db, form_id)
            try:
                page = list_submissions(db, form_id=form_id, limit=50, cursor=cursor)
            except InvalidCursor:
                raise PageError(400, N_("That page of submissions has expired; reload the page.")) from None
            contacts = display_names(db, Contact, {s.contact_id for s in page.items if s.contact_id})
            assignee = db.get(User, form.task_assignee_id) if form.task_assignee_id else None
            db.expunge_all()
        snippet_locale = lang if lang in i18n.LOCALES else agent.locale
        return render(request, agent, "forms/detail.html", form=form, fields=parse_fields(form.fields),
                      submissions=page.items, next_cursor=page.next_cursor, contacts=contacts, assignee=assignee,
                      hosted_url=form_url(hub.settings.public_url(request), form.key),
                      snippet=embed_snippet(hub, form, locale=snippet_locale, base=hub.settings.public_url(request)),
                      snippet_locale=snippet_locale)

    @router.get("/forms/{form_id}/submissions.csv")
    def export(request: Request, form_id: int, agent: Reader) -> Response:
        with get_hub(request).session(read_only=True) as db:
            form = load(db, form_id)
            # Built whole: a form's submissions are modest, and the session closes before sending.
            body = "\ufeff" + "".join(export_submissions(db, form=form))  # the BOM lets Excel read UTF-8
        filename = f"form-{form_id}-submissions.csv"
        return Response(body, media_type="text/csv; charset=utf-8",
                        headers={"content-disposition": f'attachment; filename="{filename}"', "cache-control": "no-store"})

    @router.get("/forms/{form_id}/edit")
    def edit(request: Request, form_id: int, agent: Writer) -> Response:
        with get_hub(request).session(read_only=True) as db:
            form = load(db, form_id)
            db.expunge(form)
        values = definition_of(form).model_dump(mode="json")
        values["allowed_origins"] = "\n".join(values["allowed_origins"])
        values["tags"] = ", ".join(values["tags"])
        for row in values["fields"]:
            row["options_text"] = "\n".join(f"{o['value']}={o['label']}" for o in row.get("options") or [])
        return edit_page(request, agent, form=form, values=values)

    @router.post("/forms/{form_id}/edit")
    async def save(request: Request, form_id: int, agent: Writer) -> Response:
        data = await _data(request)
        from starlette.concurrency import run_in_threadpool

        def work() -> Response:
            with get_hub(request).session() as db:
                form = load(db, form_id)
                try:
                    definition = definition_from(data)
                    update_form(db, form=form, actor=agent.principal, definition=definition)
                except ValidationError as exc:
                    db.rollback()
                    return edit_page(request, agent, form=form, values=_values(data), errors=_messages(exc, agent), status=422)
                except ValueError as exc:
                    db.rollback()
                    return edit_page(request, agent, form=form, values=_values(data), errors=[str(exc)], status=422)
                db.commit()
            return redirect(request, f"/forms/{form_id}")

        return await run_in_threadpool(work)

    return router
