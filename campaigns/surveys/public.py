"""The customer's page: /s/{token}. No login; the signed link is the key to one invitation.

Phone-first and light: one query finds the invitation, its survey, contact and response; the page
is plain HTML that works without JavaScript (a small script only hides the branch question until a
low score is chosen, and keeps a draft as the customer goes). A bad or expired link gets one plain
sentence and nothing about the survey or the person.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import FileResponse, HTMLResponse, RedirectResponse, Response

from campaigns.surveys.answers import (AnswersInvalid, Link, LinkProblem, LinkRefused, check_answers, open_link,
                                       write_answers, writes_once)
from campaigns.surveys.models import QuestionKind
from campaigns.surveys.questions import describe, localized, visible
from hub.db import transaction_again, without_transaction
from hub.runtime import Hub
from hub.threads import run_db_call
from hub.web import i18n
from hub.web.public import public_locale, render_public

router = APIRouter(include_in_schema=False)
STATIC = Path(__file__).resolve().parent / "static"
MAX_FORM_FIELDS = 400
ASSET_HEADERS = {"cache-control": "public, max-age=86400"}
STATUS = {LinkProblem.INVALID: 404, LinkProblem.EXPIRED: 410, LinkProblem.CLOSED: 410}


@router.get("/s/assets/survey.js")
def survey_js() -> Response:
    return FileResponse(STATIC / "survey.js", media_type="text/javascript", headers=ASSET_HEADERS)


@router.get("/s/assets/survey.css")
def survey_css() -> Response:
    return FileResponse(STATIC / "survey.css", media_type="text/css", headers=ASSET_HEADERS)


def _hub(request: Request) -> Hub:
    return request.app.state.hub


def _refused(request: Request, problem: LinkProblem) -> HTMLResponse:
    locale = public_locale(request)
    return render_public(request, "public/surveys/refused.html", locale=locale, status=STATUS[problem],
                         problem=problem.value)


def _page(request: Request, link: Link, *, locale: str, status: int = 200, answers: dict[str, Any] | None = None,
          errors: dict[str, str] | None = None, editing: bool = False, saved: bool = False) -> HTMLResponse:
    response = link.response
    if answers is None:
        answers = dict(response.answers) if response is not None else {}
        score = request.query_params.get("score", "")
        first = link.questions[0]
        if not answers and first.kind == QuestionKind.NPS and score.isdigit() and int(score) in first.scores():
            answers[first.key] = int(score)  # a score link from the email: filled in, not yet saved
    done = response is not None and response.completed and not editing and not errors
    asked = request.query_params.get("lang")
    # The draft goes where the answers go, in the language the page is shown in: a draft saved
    # without `?lang=` would record the contact's language for a page the customer read in another.
    kept = f"?lang={asked}" if asked in i18n.LOCALES else ""
    action = f"/s/{request.path_params['token']}"
    return render_public(
        request, "public/surveys/survey.html", locale=locale, status=status, time_zone=link.contact.time_zone,
        survey=link.survey, questions=link.questions, answers=answers, errors=errors or {}, done=done,
        saved=saved, editable=link.editable, completed=response is not None and response.completed,
        title=localized(link.survey.title, locale) or link.survey.name,
        intro=localized(link.survey.intro, locale), thanks=localized(link.survey.thanks, locale),
        summary=describe(link.questions, answers, locale) if done else [], action=action + kept,
        draft_action=f"{action}/draft{kept}",
        visible=lambda q: visible(q, answers),
    )


def _open(hub: Hub, token: str) -> Link:
    with hub.session(read_only=True) as session:
        without_transaction(session)
        link = open_link(session, hub.settings, token)
        session.expunge_all()
    return link


def _locale(request: Request, link: Link) -> str:
    """`?lang=` first, then the language the answers were given in (reopening an answered link must
    not switch language), then the contact's, then the browser's."""
    return public_locale(request, (link.response.locale if link.response is not None else None) or link.contact.locale)


@router.get("/s/{token}")
async def survey_page(request: Request, token: str) -> Response:
    hub = _hub(request)
    try:
        link = await run_db_call(_open, hub, token)
    except LinkRefused as exc:
        return _refused(request, exc.problem)
    locale = _locale(request, link)
    editing = request.query_params.get("edit") == "1" and link.editable
    return _page(request, link, locale=locale, editing=editing, saved=request.query_params.get("saved") == "1")


async def _form(request: Request) -> dict[str, list[str]] | None:
    try:
        form = await request.form(max_fields=MAX_FORM_FIELDS, max_files=0)
    except Exception:  # a malformed or oversized body: answered as a bad request
        return None
    values: dict[str, list[str]] = {}
    for key, value in form.multi_items():
        if isinstance(value, str):
            values.setdefault(key, []).append(value)
    return values


def _save(hub: Hub, token: str, form: dict[str, list[str]], complete: bool, request: Request,
          *, draft: bool = False) -> tuple[Link, AnswersInvalid] | None:
    """Save the form atomically; when answers need attention, the errors and the link for the page
    that shows them (detached: the link is read once per POST).

    The link is read outside a transaction where it can be (PostgreSQL): an edit is then one
    statement that commits on its own, two round trips in all; anything more is one transaction.
    Reading first and writing after is what one transaction at READ COMMITTED did as well: the
    upsert, not the read, decides what a concurrent save finds.
    """
    with hub.session() as session:
        outside = without_transaction(session)
        link = open_link(session, hub.settings, token)
        if draft and link.response is not None and link.response.completed:
            return None  # an answer already sent changes only when the customer sends the edit
        locale = _locale(request, link)  # the language the page was shown in
        try:
            answers = check_answers(link, form, complete=complete)
        except AnswersInvalid as exc:  # nothing was written
            session.expunge_all()
            return link, exc
        if outside and not writes_once(session, link=link, answers=answers):
            # The writes below are one transaction, on the connection that read the link (a commit
            # here cost a pool check-in and check-out, ~5% of a first answer's CPU: docs/benchmarks.md,
            # "Survey page", session 15).
            transaction_again(session)
        write_answers(session, link=link, answers=answers, locale=locale)
        session.commit()
    return None


@router.post("/s/{token}")
async def submit(request: Request, token: str) -> Response:
    """Save the answers: `action=submit` sends them (required ones checked), `action=save` keeps a draft."""
    hub = _hub(request)
    form = await _form(request)
    if form is None:
        return HTMLResponse("Bad request", status_code=400)
    complete = (form.get("action") or ["submit"])[0] != "save"
    asked = request.query_params.get("lang")
    try:
        invalid = await run_db_call(_save, hub, token, form, complete, request)
    except LinkRefused as exc:
        return _refused(request, exc.problem)
    if invalid is not None:
        link, exc = invalid
        locale = _locale(request, link)
        return _page(request, link, locale=locale, status=422, answers=exc.answers, errors=exc.errors,
                     editing=True)
    target = f"/s/{token}?" + ("saved=1" if not complete else "done=1")
    if asked in i18n.LOCALES:
        target += f"&lang={asked}"
    return RedirectResponse(target, status_code=303)


@router.post("/s/{token}/draft")
async def draft(request: Request, token: str) -> Response:
    """Keep the answers so far (the page's script posts here as the customer goes); 204, or 4xx."""
    hub = _hub(request)
    form = await _form(request)
    if form is None:
        return Response(status_code=400)
    try:
        invalid = await run_db_call(_save, hub, token, form, False, request, draft=True)
    except LinkRefused as exc:
        return Response(status_code=STATUS[exc.problem])
    if invalid is not None:
        return Response(status_code=422)
    return Response(status_code=204, headers={"cache-control": "no-store"})
