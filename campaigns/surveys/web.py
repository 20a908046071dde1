"""Marketers' pages: build, preview, send and read the results of surveys.

The builder is a plain form (no script needed): "Add a question" posts the form back and renders
it with one more blank question, nothing is saved until "Save". Questions keep their keys across
edits, so answers already given stay attached to their question.
"""

from __future__ import annotations

import uuid
from datetime import datetime, time, timezone
from itertools import permutations
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from pydantic import ValidationError
from sqlalchemy import select
from starlette.responses import FileResponse, Response, StreamingResponse

from campaigns.surveys.answers import Link
from campaigns.surveys.charts import distribution_svg, trend_svg
from campaigns.surveys.links import sample_links
from campaigns.surveys.models import QuestionKind, Survey, SurveyInvitation, SurveyStatus
from campaigns.surveys.questions import localized, parse_questions, visible
from campaigns.surveys.results import export_csv, survey_results
from campaigns.surveys.service import (
    InvalidSurvey, SurveyIn, counts_by_status, create_survey, send_to_contacts, survey_in,
    update_survey,
)
from hub import clock
from hub.channel_hooks import contact_channels
from hub.models import Contact, User
from hub.web.i18n import N_
from hub.web.pages import Agent, PageError, get_hub, redirect, render
from hub.web.pages import require as page_require
from hub.web.public import render_public

router = APIRouter()
Reader = Annotated[Agent, Depends(page_require("surveys:read"))]
Writer = Annotated[Agent, Depends(page_require("surveys:write"))]
STATIC = Path(__file__).resolve().parent / "static"
MAX_FORM_QUESTIONS = 30
KINDS = [(QuestionKind.NPS, N_("NPS (0–10)")), (QuestionKind.CSAT, N_("Satisfaction, CSAT (1–5)")),
         (QuestionKind.RATING, N_("Rating (stars)")), (QuestionKind.SINGLE, N_("One choice")),
         (QuestionKind.MULTIPLE, N_("Several choices")), (QuestionKind.TEXT, N_("Free text"))]
TRIGGERS = [("", N_("Manual sends only")), ("order.completed", N_("A sale (order.completed)")),
            ("meeting.completed", N_("A completed meeting")), ("task.completed", N_("A closed task"))]
EITHER, ONLY, ELSE = N_("%(first)s, else %(second)s"), N_("%(channel)s only"), N_(", else ")
CAUSES = {"manual": N_("Manual send"), "order.completed": N_("A sale"), "meeting.completed": N_("A completed meeting"),
          "task.completed": N_("A closed task")}
STATUSES = [(SurveyStatus.DRAFT, N_("Draft")), (SurveyStatus.ACTIVE, N_("Active")), (SurveyStatus.CLOSED, N_("Closed"))]


@router.get("/surveys/assets/surveys.css")
def survey_ui_css(agent: Reader) -> Response:
    return FileResponse(STATIC / "surveys-ui.css", media_type="text/css", headers={"cache-control": "private, max-age=3600"})


def _survey(db: Any, survey_id: int) -> Survey:
    survey = db.get(Survey, survey_id)
    if survey is None:
        raise PageError(404, N_("There is no such survey."))
    return survey


@router.get("/surveys")
def list_page(request: Request, agent: Reader) -> Response:
    hub = get_hub(request)
    with hub.session(read_only=True) as db:
        surveys = list(db.scalars(select(Survey).order_by(Survey.id.desc()).limit(200)))
        counts = {s.id: counts_by_status(db, survey_id=s.id) for s in surveys}
        samples = sample_links(db, hub.settings, [s.id for s in surveys], now=clock.now(),
                               base_url=hub.settings.public_url(request))
    return render(request, agent, "surveys/list.html", surveys=surveys, counts=counts, samples=samples,
                  triggers=dict(TRIGGERS), statuses=dict(STATUSES))


# --- the builder -----------------------------------------------------------------------------

def _blank_question(n: int, kind: str = QuestionKind.TEXT) -> dict[str, Any]:
    return {"key": f"q{n}", "kind": kind, "required": False, "text": {"ru": "", "en": ""}, "options": [],
            "scale": 5, "show_if": None}


def _starter() -> dict[str, Any]:
    """A new survey starts as the common post-sale pair: NPS, then "what went wrong?" after a low score."""
    return {
        "name": "", "status": "draft", "title": {"ru": "", "en": ""}, "intro": {"ru": "", "en": ""},
        "thanks": {"ru": "", "en": ""}, "trigger_kind": "order.completed", "delay_minutes": 3 * 24 * 60,
        "channels": ["email", "sms"], "reminder_days": 3, "expiry_days": 14, "cooldown_days": 30,
        "detractor_nps_max": 6, "detractor_csat_max": 2, "follow_up_user_id": None, "closes_at": None,
        "questions": [
            {**_blank_question(1, QuestionKind.NPS), "required": True,
             "text": {"ru": "Насколько вероятно, что вы порекомендуете нас друзьям?",
                      "en": "How likely are you to recommend us to a friend?"}},
            {**_blank_question(2), "show_if": {"question": "q1", "max": 6},
             "text": {"ru": "Что пошло не так?", "en": "What went wrong?"}},
        ],
    }


def _lines(value: str) -> list[str]:
    return [line.strip() for line in (value or "").splitlines() if line.strip()]


def _int(value: str | None, default: int | None = None) -> int | None:
    try:
        return int(str(value).strip()) if value not in (None, "") else default
    except ValueError:
        return -1  # out of every range: the model refuses it, naming the field


def _from_form(form: dict[str, list[str]]) -> tuple[dict[str, Any], bool]:
    """The survey definition the builder's fields describe; whether "Add a question" was pressed."""
    first = {k: v[0] if v else "" for k, v in form.items()}
    questions = []
    count = min(_int(first.get("question_count"), 0) or 0, MAX_FORM_QUESTIONS)
    for i in range(count):
        p = f"q{i}_"
        if first.get(p + "remove"):
            continue
        kind = first.get(p + "kind") or QuestionKind.TEXT
        ru, en = _lines(first.get(p + "options_ru", "")), _lines(first.get(p + "options_en", ""))
        options = [{"key": f"o{n + 1}", "text": {"ru": ru[n] if n < len(ru) else "", "en": en[n] if n < len(en) else ""}}
                   for n in range(max(len(ru), len(en)))] if kind in ("single", "multiple") else []
        show_if = None
        if first.get(p + "show_if"):
            show_if = {"question": first[p + "show_if"], "max": _int(first.get(p + "show_max"), 6)}
        questions.append({
            "key": first.get(p + "key") or f"q{uuid.uuid4().hex[:6]}", "kind": kind,
            "required": bool(first.get(p + "required")),
            "text": {"ru": first.get(p + "text_ru", "").strip(), "en": first.get(p + "text_en", "").strip()},
            "options": options, "scale": _int(first.get(p + "scale"), 5), "show_if": show_if,
        })
    adding = first.get("op") == "add"
    if adding:
        used = {q["key"] for q in questions}
        n = len(questions) + 1
        while f"q{n}" in used:
            n += 1
        questions.append(_blank_question(n))
    closes = first.get("closes_at", "").strip()
    closes_at = None
    if closes:
        try:
            closes_at = datetime.combine(datetime.fromisoformat(closes).date(), time(23, 59), tzinfo=timezone.utc).isoformat()
        except ValueError:
            closes_at = "not a date"
    hours = _int(first.get("delay_hours"), 0)
    data = {
        "name": first.get("name", "").strip(), "status": first.get("status") or "draft",
        "title": {"ru": first.get("title_ru", "").strip(), "en": first.get("title_en", "").strip()},
        "intro": {"ru": first.get("intro_ru", "").strip(), "en": first.get("intro_en", "").strip()},
        "thanks": {"ru": first.get("thanks_ru", "").strip(), "en": first.get("thanks_en", "").strip()},
        "questions": questions, "trigger_kind": first.get("trigger_kind") or None,
        "delay_minutes": hours * 60 if hours is not None and hours >= 0 else -1,
        "channels": [c for c in (first.get("channels") or "email,sms").split(",") if c],
        "reminder_days": _int(first.get("reminder_days")), "expiry_days": _int(first.get("expiry_days"), 14),
        "cooldown_days": _int(first.get("cooldown_days"), 30),
        "detractor_nps_max": _int(first.get("detractor_nps_max"), 6),
        "detractor_csat_max": _int(first.get("detractor_csat_max"), 2),
        "follow_up_user_id": _int(first.get("follow_up_user_id")), "closes_at": closes_at,
    }
    return data, adding


def channel_orders(hub: Any, current: list[str], gettext: Any) -> dict[str, str]:
    """The orders of preference a survey can choose among the installed channels that send to contacts:
    each pair ("Email, else SMS") and each one alone, and the survey's own order if it is none of them."""
    labels = {name: gettext(channel.label or name) for name, channel in contact_channels(hub.channels).items()}
    orders = {f"{a},{b}": gettext(EITHER) % {"first": labels[a], "second": labels[b]}
              for a, b in permutations(labels, 2)}
    orders.update({name: gettext(ONLY) % {"channel": label} for name, label in labels.items()})
    own = ",".join(current)
    if own and own not in orders:
        orders[own] = gettext(ELSE).join(labels.get(name, name) for name in current)
    return orders


def _errors(exc: ValidationError) -> list[str]:
    out = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err.get("loc", ()))
        message = str(err.get("msg", "")).removeprefix("Value error, ")
        out.append(f"{where}: {message}" if where else message)
    return out


def _builder(request: Request, agent: Agent, *, survey_id: int | None, data: dict[str, Any], status: int = 200,
             errors: list[str] | None = None) -> Response:
    hub = get_hub(request)
    with hub.session(read_only=True) as db:
        users = list(db.scalars(select(User).where(User.is_active.is_(True)).order_by(User.display_name)))
    return render(request, agent, "surveys/edit.html", status=status, survey_id=survey_id, data=data,
                  errors=errors or [], kinds=KINDS, triggers=TRIGGERS,
                  channel_orders=channel_orders(hub, data.get("channels") or [], agent.package_gettext("surveys")),
                  statuses=STATUSES, users=users)


async def _form(request: Request) -> dict[str, list[str]]:
    form = await request.form(max_fields=2000, max_files=0)
    values: dict[str, list[str]] = {}
    for key, value in form.multi_items():
        if isinstance(value, str):
            values.setdefault(key, []).append(value)
    return values


@router.get("/surveys/new")
def new_page(request: Request, agent: Writer) -> Response:
    return _builder(request, agent, survey_id=None, data=_starter())


@router.get("/surveys/{survey_id}")
def edit_page(request: Request, survey_id: int, agent: Reader) -> Response:
    hub = get_hub(request)
    with hub.session(read_only=True) as db:
        data = survey_in(_survey(db, survey_id)).model_dump(mode="json")
    return _builder(request, agent, survey_id=survey_id, data=data)


async def _save(request: Request, agent: Agent, survey_id: int | None) -> Response:
    hub = get_hub(request)
    data, adding = _from_form(await _form(request))
    if adding:
        return _builder(request, agent, survey_id=survey_id, data=data)
    try:
        definition = SurveyIn.model_validate(data)
    except ValidationError as exc:
        return _builder(request, agent, survey_id=survey_id, data=data, status=422, errors=_errors(exc))
    with hub.session() as db:
        try:
            if survey_id is None:
                survey = create_survey(db, actor=agent.principal, data=definition)
            else:
                survey = update_survey(db, survey=_survey(db, survey_id), actor=agent.principal, data=definition)
        except InvalidSurvey as exc:
            db.rollback()
            return _builder(request, agent, survey_id=survey_id, data=data, status=422,
                            errors=[f"{exc.field}: {exc}"])
        db.commit()
        new_id = survey.id
    return redirect(request, f"/surveys/{new_id}?saved=1")


@router.post("/surveys/new")
async def create_page(request: Request, agent: Writer) -> Response:
    return await _save(request, agent, None)


@router.post("/surveys/{survey_id}")
async def save_page(request: Request, survey_id: int, agent: Writer) -> Response:
    return await _save(request, agent, survey_id)


# --- preview, send, results ------------------------------------------------------------------

@router.get("/surveys/{survey_id}/preview")
def preview(request: Request, survey_id: int, agent: Reader) -> Response:
    """The customer's page as it will look, in either language; it saves nothing."""
    hub = get_hub(request)
    with hub.session(read_only=True) as db:
        survey = _survey(db, survey_id)
        db.expunge(survey)
    locale = request.query_params.get("lang") if request.query_params.get("lang") in ("ru", "en") else agent.locale
    questions = parse_questions(survey.questions)
    link = Link(invitation=SurveyInvitation(survey_id=survey.id, contact_id=0, cause="preview", nonce="preview"),
                survey=survey, contact=Contact(display_name=""), response=None, questions=questions)
    answers: dict[str, Any] = {}
    return render_public(
        request, "public/surveys/survey.html", locale=locale, survey=survey, questions=link.questions,
        answers=answers, errors={}, done=False, saved=False, editable=True, completed=False, preview=True,
        title=localized(survey.title, locale) or survey.name, intro=localized(survey.intro, locale),
        thanks=localized(survey.thanks, locale), summary=[], action="#", draft_action="", visible=lambda q: visible(q, answers),
        headers={"content-security-policy": "default-src 'none'; style-src 'self'; script-src 'self'; "
                 "img-src 'self' data:; form-action 'none'; frame-ancestors 'self'; base-uri 'none'"},
    )


@router.post("/surveys/{survey_id}/send")
async def send_page(request: Request, survey_id: int, agent: Writer) -> Response:
    """Send the survey now to everyone in a saved segment (the N-day rule still applies)."""
    hub = get_hub(request)
    form = await _form(request)
    segment_id = _int((form.get("segment_id") or [""])[0])
    try:
        from campaigns.segments.compiler import iter_contact_ids
        from campaigns.segments.models import Segment
    except ImportError:
        raise PageError(409, N_("Segments are not installed.")) from None
    with hub.session() as db:
        survey = _survey(db, survey_id)
        segment = db.get(Segment, segment_id) if segment_id and segment_id > 0 else None
        if segment is None:
            raise PageError(422, N_("Choose a segment."))
        ids = [cid for batch in iter_contact_ids(db, segment.definition, now=clock.now()) for cid in batch]
        try:
            scheduled, skipped = send_to_contacts(db, survey=survey, contact_ids=ids, batch=uuid.uuid4().hex[:12],
                                                  actor=agent.principal)
        except InvalidSurvey:
            raise PageError(409, N_("Only an active survey can be sent.")) from None
        db.commit()
    return redirect(request, f"/surveys/{survey_id}/results?scheduled={scheduled}&skipped={skipped}")


@router.get("/surveys/{survey_id}/results")
def results_page(request: Request, survey_id: int, agent: Reader) -> Response:
    hub = get_hub(request)
    with hub.session(read_only=True) as db:
        survey = _survey(db, survey_id)
        results = survey_results(db, survey=survey, locale=agent.locale)
        try:
            from campaigns.segments.models import Segment

            segments = list(db.scalars(select(Segment).order_by(Segment.name).limit(200)))
        except ImportError:
            segments = []
        counts = counts_by_status(db, survey_id=survey.id)  # type: ignore[arg-type]
        partial_count = results.partial
    _ = agent.gettext
    return render(
        request, agent, "surveys/results.html", survey=survey, results=results, segments=segments, counts=counts,
        partial_count=partial_count,
        nps_chart=distribution_svg(results.nps, title=_("NPS answers by score")),
        csat_chart=distribution_svg(results.csat, title=_("CSAT answers by score")),
        trend_chart=trend_svg(results.trend, title=_("NPS and CSAT by week"), fmt=agent.fmt,
                              labels=(_("NPS"), _("CSAT, % satisfied"))),
        scheduled=request.query_params.get("scheduled"), skipped=request.query_params.get("skipped"),
        statuses=dict(STATUSES), localized=localized, causes=CAUSES,
    )


@router.get("/surveys/{survey_id}/results.csv")
def results_csv(request: Request, survey_id: int, agent: Reader) -> Response:
    hub = get_hub(request)
    with hub.session(read_only=True) as db:
        survey = _survey(db, survey_id)
        lines = list(export_csv(db, survey=survey, locale=agent.locale))
    return StreamingResponse(iter(["\ufeff", *lines]), media_type="text/csv; charset=utf-8",
                             headers={"content-disposition": f'attachment; filename="survey-{survey_id}.csv"',
                                      "cache-control": "no-store"})

