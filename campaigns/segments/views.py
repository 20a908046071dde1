"""Marketers' pages: the segment list and the builder with a live count and sample (htmx, no custom JS)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import FileResponse, Response

from campaigns.segments import builder
from campaigns.segments.compiler import count_contacts, sample_contacts
from campaigns.segments.definition import BLANK_TYPES, InvalidDefinition, parse_definition
from campaigns.segments.models import Segment
from campaigns.segments.service import SegmentError, create_segment, delete_segment, list_segments, update_segment
from hub import clock
from hub.web import confirm
from hub.web.i18n import N_
from hub.web.pages import Agent, PageError, get_hub, redirect, render, require
from hub.web.security import PAGE_CSP

router = APIRouter()
Reader = Annotated[Agent, Depends(require("campaigns:read"))]
Writer = Annotated[Agent, Depends(require("campaigns:write"))]
STYLESHEET = Path(__file__).resolve().parent / "static" / "builder.css"
SAMPLE_SIZE = 8


def page(request: Request, agent: Agent | None, template: str, *, status: int = 200, **values: Any) -> Response:
    """`render` with the workspace's CSP (the hub adds it only to its own modules' pages)."""
    response = render(request, agent, template, status=status, **values)
    response.headers["content-security-policy"] = PAGE_CSP
    return response


def _choices() -> dict[str, Any]:
    return {"labels": builder, "condition_types": list(builder.CONDITION_LABELS)}


def _segment_or_404(db: Any, segment_id: int) -> Segment:
    segment = db.get(Segment, segment_id)
    if segment is None:
        raise PageError(404, N_("There is no such segment."))
    return segment


async def _form_tree(request: Request, agent: Agent) -> tuple[Any, dict[str, Any]]:
    form = await request.form()
    tree = builder.tree_from_form(form.multi_items(), tz=agent.fmt.tz)
    action = form.get("action")
    if isinstance(action, str) and action:
        tree = builder.apply_action(tree, action)
    return form, tree


def _validate(tree: dict[str, Any], agent: Agent, *, blanks: bool = True,
              ) -> tuple[Any, dict[str, list[str]], list[dict[str, str]]]:
    """(definition or None, messages by builder path, messages) in the marketer's language. While the
    marketer is still building (`blanks` False), inputs left blank are not errors yet: the preview
    waits for them instead of scolding before anything was typed."""
    try:
        return parse_definition(builder.definition_of(tree)), {}, []
    except InvalidDefinition as exc:
        gettext = agent.package_gettext("segments")
        errors = [{"field": p.field, "message": p.translated(gettext)} for p, raw in zip(exc.problems, exc.errors)
                  if blanks or raw.get("type") not in BLANK_TYPES]
        return None, builder.error_paths(errors), errors


@router.get("/segments/builder.css", include_in_schema=False)
def stylesheet() -> Response:
    return FileResponse(STYLESHEET, media_type="text/css", headers={"cache-control": "public, max-age=3600"})


@router.get("/segments")
def segment_list(request: Request, agent: Reader) -> Response:
    with get_hub(request).session(read_only=True) as db:
        segments = list_segments(db)
    return page(request, agent, "segments/list.html", segments=segments)


@router.get("/segments/new")
def new_segment(request: Request, agent: Writer) -> Response:
    tree = {"type": "and", "conditions": [dict(builder.DEFAULT_CONDITION)]}
    return page(request, agent, "segments/edit.html", segment=None, tree=tree, values={"name": "", "description": ""},
                errors={}, node_errors={}, **_choices())


@router.get("/segments/{segment_id}/count")
def segment_count(request: Request, segment_id: int, agent: Reader) -> Response:
    with get_hub(request).session(read_only=True) as db:
        segment = _segment_or_404(db, segment_id)
        try:
            count: int | None = count_contacts(db, segment.definition, now=clock.now())
        except InvalidDefinition:
            count = None
    return page(request, agent, "segments/_count.html", count=count)


@router.get("/segments/{segment_id}")
def edit_segment(request: Request, segment_id: int, agent: Reader) -> Response:
    with get_hub(request).session(read_only=True) as db:
        segment = _segment_or_404(db, segment_id)
    return page(request, agent, "segments/edit.html", segment=segment, tree=builder.tree_for_editing(segment.definition),
                values={"name": segment.name, "description": segment.description}, errors={}, node_errors={},
                **_choices())


@router.post("/segments/builder")
async def builder_fragment(request: Request, agent: Reader) -> Response:
    """The builder again, after an edit (add, group, NOT, remove) or a change of a condition's kind,
    with the live preview swapped in out of band (so it reflects the edited tree, not the old one)."""
    _form, tree = await _form_tree(request, agent)
    definition, node_errors, errors = _validate(tree, agent, blanks=False)
    count, sample = await run_in_threadpool(_count_and_sample, request, definition)
    return page(request, agent, "segments/_builder.html", tree=tree, node_errors=node_errors, oob_preview=True,
                count=count, sample=sample, errors=errors, **_choices())


def _count_and_sample(request: Request, definition: Any) -> tuple[int | None, list[Any]]:
    if definition is None:
        return None, []
    with get_hub(request).session(read_only=True) as db:
        now = clock.now()
        return count_contacts(db, definition, now=now), sample_contacts(db, definition, now=now, limit=SAMPLE_SIZE)


@router.post("/segments/preview")
async def preview_fragment(request: Request, agent: Reader) -> Response:
    """The live count and a sample for what the builder holds now (saved or not)."""
    _form, tree = await _form_tree(request, agent)
    definition, _node_errors, errors = _validate(tree, agent, blanks=False)
    count, sample = await run_in_threadpool(_count_and_sample, request, definition)
    return page(request, agent, "segments/_preview.html", count=count, sample=sample, errors=errors)


async def _save(request: Request, agent: Agent, segment_id: int | None) -> Response:
    form, tree = await _form_tree(request, agent)
    values = {"name": str(form.get("name") or ""), "description": str(form.get("description") or "")}
    definition, node_errors, _errors = _validate(tree, agent)

    def work() -> tuple[int | None, dict[str, str], Segment | None]:
        with get_hub(request).session() as db:
            segment = _segment_or_404(db, segment_id) if segment_id is not None else None
            if definition is None:
                return None, {"_form": N_("Fix the conditions marked below, then save.")}, segment
            try:
                if segment is None:
                    segment = create_segment(db, actor=agent.principal, name=values["name"],
                                             description=values["description"], definition=definition)
                else:
                    update_segment(db, segment=segment, actor=agent.principal,
                                   changes={**values, "definition": definition})
            except SegmentError as exc:
                db.rollback()
                field = exc.field or "_form"
                message = N_("A segment with this name already exists.") if exc.status == 409 else (
                    N_("Give the segment a name.") if field == "name" else str(exc))
                return None, {"name" if exc.status == 409 else field: message}, segment
            db.commit()
            return segment.id, {}, segment

    saved_id, errors, segment = await run_in_threadpool(work)
    if saved_id is not None:
        return redirect(request, f"/segments/{saved_id}?saved=1")
    return page(request, agent, "segments/edit.html", status=422, segment=segment, tree=tree, values=values,
                errors=errors, node_errors=node_errors, **_choices())


@router.post("/segments/new")
async def create(request: Request, agent: Writer) -> Response:
    return await _save(request, agent, None)


@router.post("/segments/{segment_id}")
async def save(request: Request, segment_id: int, agent: Writer) -> Response:
    return await _save(request, agent, segment_id)


@router.post("/segments/{segment_id}/delete")
async def delete(request: Request, segment_id: int, agent: Writer) -> Response:
    if not confirm.confirmed(await request.form()):
        with get_hub(request).session(read_only=True) as db:
            name = _segment_or_404(db, segment_id).name
        return confirm.ask(request, agent, action=f"/segments/{segment_id}/delete", package="segments",
                           title=N_("Delete segment"), question=N_("Delete the segment “%(name)s”?"),
                           detail=N_("It cannot be brought back. A segment that a campaign uses is kept."),
                           button=N_("Delete segment"), back=f"/segments/{segment_id}", params={"name": name})
    with get_hub(request).session() as db:
        segment = _segment_or_404(db, segment_id)
        try:
            delete_segment(db, segment=segment, actor=agent.principal)
        except SegmentError:
            db.rollback()
            raise PageError(409, N_("A campaign uses this segment; change the campaign first.")) from None
        db.commit()
    return redirect(request, "/segments")
