"""Marketers' pages: the campaign list, the editor, and a campaign's page with live progress and results."""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo, available_timezones

from fastapi import APIRouter, Depends, Request
from pydantic import ValidationError
from sqlalchemy import select
from starlette.responses import FileResponse, Response

from campaigns import service
from campaigns.models import Campaign, CampaignRun, CampaignStatus
from campaigns.results import campaign_results, chart_svg
from campaigns.runs import progress, steps_of
from campaigns.scheduling import REPEATS, WEEKDAY_NAMES, Picked, cron_of, in_words, picked
from campaigns.ab import decide as ab_decide
from campaigns.ab.results import ab_results
from campaigns.ab.split import LABELS
from campaigns.ab.variants import variants_of
from campaigns.waiting import waiting
from hub.web import confirm
from hub.web.i18n import N_
from hub.web.pages import Agent, PageError, get_hub, redirect, render, require

router = APIRouter()
Reader = Annotated[Agent, Depends(require("campaigns:read"))]
Writer = Annotated[Agent, Depends(require("campaigns:write"))]
STEP_ROWS = 3  # the editor offers this many steps; a drip rarely needs more (the API takes up to 20)
STATUS_LABELS = {
    "draft": N_("Draft"), "scheduled": N_("Scheduled"), "running": N_("Running"), "paused": N_("Paused"),
    "completed": N_("Completed"), "cancelled": N_("Cancelled"),
}
SCHEDULE_LABELS = {
    "now": N_("Now"), "at": N_("At a time"), "cron": N_("Recurring"), "trigger": N_("Triggered by an event"),
}
METRIC_LABELS = {
    "targeted": N_("Targeted"), "sent": N_("Sent"), "delivered": N_("Delivered"), "bounced": N_("Bounced"),
    "opened": N_("Opened"), "clicked": N_("Clicked"), "replied": N_("Replied"), "unsubscribed": N_("Unsubscribed"),
    "failed": N_("Failed"),
}
AB_METRICS = {"open": N_("Open rate"), "click": N_("Click rate"), "reply": N_("Reply rate"), "order": N_("Order rate")}
STATUS_TONES = {"draft": "neutral", "scheduled": "info", "running": "info", "paused": "warn", "completed": "ok",
                "cancelled": "neutral"}
RUN_STATUS_LABELS = {
    "pending": N_("Due"), "materialising": N_("Adding recipients"), "sending": N_("Sending"),
    "completed": N_("Completed"), "cancelled": N_("Cancelled"),
}
STATIC_DIR = Path(__file__).resolve().parent / "static"
STATIC = {"campaigns.css": "text/css", "editor.js": "text/javascript"}
# Events a campaign is commonly triggered by; an API client may name any other kind.
TRIGGER_KINDS = ("order.completed", "order.refunded", "form.submitted", "meeting.booked", "meeting.completed",
                 "meeting.no_show", "survey.answered", "message", "call.missed")
COMMON_ZONES = ("UTC", "Europe/Moscow", "Europe/Kaliningrad", "Europe/Samara", "Asia/Yekaterinburg", "Asia/Novosibirsk",
                "Asia/Vladivostok", "Europe/London", "Europe/Berlin", "America/New_York", "America/Los_Angeles")
ACTIONS = {"schedule": service.schedule, "run-now": service.run_now, "pause": service.pause,
           "resume": service.resume, "cancel": service.cancel}


def _choices(db: Any) -> tuple[list[Any], list[Any]]:
    from campaigns.message_templates.models import MessageTemplate
    from campaigns.segments.models import Segment

    segments = list(db.scalars(select(Segment).order_by(Segment.name)).all())
    templates = list(db.scalars(select(MessageTemplate).order_by(MessageTemplate.id)).all())
    return segments, templates


@router.get("/campaigns/static/{name}", include_in_schema=False)
def static_file(name: str) -> Response:
    """The campaign pages' stylesheet and the editor's script (files of this package, under the CSP)."""
    if name not in STATIC:
        raise PageError(404, N_("Not found"))
    return FileResponse(STATIC_DIR / name, media_type=STATIC[name], headers={"cache-control": "public, max-age=3600"})


@router.get("/campaigns")
def campaign_list(request: Request, agent: Reader, status: str | None = None) -> Response:
    hub = get_hub(request)
    status = status if status in STATUS_LABELS else None
    with hub.session(read_only=True) as db:
        found = service.list_campaigns(db, status=status, limit=200)
        figures = {c.id: progress(db, campaign_id=c.id) for c in found}  # type: ignore[arg-type]
    gettext = agent.package_gettext("campaigns")
    cron_words = {c.id: in_words(c.cron, c.time_zone, gettext) for c in found if c.schedule_kind == "cron"}
    return render(request, agent, "campaigns/list.html", campaigns=found, figures=figures, current=status,
                  status_labels=STATUS_LABELS, schedule_labels=SCHEDULE_LABELS, status_tones=STATUS_TONES,
                  cron_words=cron_words)


def _form_values(form: Any) -> dict[str, Any]:
    """The editor's fields in CampaignIn's shape (blank inputs become None)."""
    def text(name: str) -> str | None:
        value = (form.get(name) or "").strip()
        return value or None

    values: dict[str, Any] = {
        "name": form.get("name") or "",
        "then": "schedule" if form.get("instead") == "now" else form.get("then") or "",
        "channel": text("channel") or "email",
        "segment_id": text("segment_id"),
        "sender": form.get("sender") or "",
        # "Send now instead", offered beside a send time that has passed: now, and scheduled on save.
        "schedule_kind": "now" if form.get("instead") == "now" else text("schedule_kind") or "now",
        "cron": text("cron"),
        "time_zone": text("time_zone") or "UTC",
        "trigger_kind": text("trigger_kind"),
        "quiet_hours_start": text("quiet_hours_start"),
        "quiet_hours_end": text("quiet_hours_end"),
        "frequency_cap_max": text("frequency_cap_max"),
        "frequency_cap_days": text("frequency_cap_days"),
    }
    every = text("repeat_every") or "custom"
    if values["schedule_kind"] == "cron" and every != "custom":
        made = cron_of(every, weekday=_int(text("repeat_weekday"), 1), monthday=_int(text("repeat_monthday"), 1),
                       at=text("repeat_at") or "")
        values["cron"] = made or f"{every} {text('repeat_at') or ''}".strip()  # refused below, with the reason
    hours = text("trigger_delay_hours") or "0"
    values["trigger_delay_minutes"] = round(float(hours) * 60) if _number(hours) else hours
    send_at = text("send_at")
    values["send_at"] = None
    if send_at:
        try:
            local = datetime.fromisoformat(send_at)
            values["send_at"] = local if local.tzinfo else local.replace(tzinfo=ZoneInfo(values["time_zone"]))
        except Exception:  # noqa: BLE001 - a bad date or zone is reported by validation below
            values["send_at"] = send_at
    steps = []
    for i in range(1, STEP_ROWS + 1):
        template_id = text(f"step{i}_template_id")
        if template_id is None:
            continue
        days = text(f"step{i}_delay_days") or "0"
        steps.append({"template_id": template_id,
                      "delay_minutes": int(float(days) * 24 * 60) if _number(days) else days,
                      "skip_if_replied": form.get(f"step{i}_skip_if_replied") == "on"})
    values["steps"] = steps
    values["ab_test"] = _ab_form_values(form, text) if form.get("ab_enabled") == "on" else None
    return values


def _ab_form_values(form: Any, text: Any) -> dict[str, Any]:
    """The A/B fieldset in ABTestIn's shape: variant A always, B–D when any of their fields is filled."""
    hours = text("ab_wait_hours") or "24"
    variants = []
    for label in LABELS:
        row = {"template_id": text(f"ab_{label}_template_id"), "subject": text(f"ab_{label}_subject"),
               "send_time": text(f"ab_{label}_send_time")}
        if label == "A" or any(row.values()):
            variants.append(row)
    return {"share_percent": text("ab_share_percent") or "20", "metric": text("ab_metric") or "open",
            "wait_minutes": round(float(hours) * 60) if _number(hours) else hours, "seed": text("ab_seed"),
            "variants": variants}


def _int(value: str | None, default: int) -> int:
    return int(value) if value and value.isdigit() else default


def _number(value: str | None) -> bool:
    try:
        float(value or "")
        return True
    except ValueError:
        return False


def _errors(exc: ValidationError, agent: Agent) -> dict[str, str]:
    """Each field's first problem, in the marketer's language where the hub wrote it."""
    out: dict[str, str] = {}
    for err in exc.errors():
        loc = [str(p) for p in err.get("loc", ())]
        key = "steps" if loc and loc[0] == "steps" else (loc[0] if loc else "form")
        if key == "ab_test" and len(loc) > 1:  # the fieldset shows them all, each named by its field
            key = ".".join(loc[:4])
        cause = (err.get("ctx") or {}).get("error")
        out.setdefault(key, cause.translated(agent.package_gettext("campaigns")) if isinstance(cause, service.CampaignError)
                       else err.get("msg", ""))
    return out


def _editor(request: Request, agent: Agent, *, values: dict[str, Any], errors: dict[str, str],
            campaign: Campaign | None, status: int = 200) -> Response:
    hub = get_hub(request)
    with hub.session(read_only=True) as db:
        segments, templates = _choices(db)
    from hub.channel_hooks import contact_channels

    channels = list(contact_channels(hub.channels))
    trigger_kinds = list(TRIGGER_KINDS)
    if values.get("trigger_kind") and values["trigger_kind"] not in trigger_kinds:
        trigger_kinds.append(values["trigger_kind"])  # one an API client chose stays choosable
    zone = values.get("time_zone") or "UTC"
    send_at = values.get("send_at")
    if isinstance(send_at, datetime):  # shown in the campaign's zone, as the label says
        try:
            send_at = send_at.astimezone(ZoneInfo(zone)).strftime("%Y-%m-%dT%H:%M")
        except (ValueError, KeyError):
            send_at = send_at.strftime("%Y-%m-%dT%H:%M")
    try:
        words = in_words(values.get("cron"), zone, agent.package_gettext("campaigns"))
    except KeyError:
        words = None
    return render(request, agent, "campaigns/edit.html", status=status, values=values, errors=errors,
                  campaign=campaign, segments=segments, templates=templates, sending_channels=channels,
                  set_up={name: service.channel_can_send(hub, name) for name in channels},
                  schedule_labels=SCHEDULE_LABELS, step_rows=STEP_ROWS, repeat=picked(values["cron"]) if values.get("cron") else Picked("weekly"),
                  repeats=REPEATS, weekday_names=WEEKDAY_NAMES, trigger_kinds=trigger_kinds,
                  common_zones=COMMON_ZONES, all_zones=_zones(), zone=zone, send_at_local=send_at or "",
                  cron_words=words, ab=_ab_rows(values.get("ab_test")), ab_labels=LABELS, ab_metrics=AB_METRICS,
                  ab_errors={k: v for k, v in errors.items() if k.startswith("ab_test")})


def _ab_rows(test: Any) -> dict[str, Any] | None:
    """The A/B fieldset's values, each variant row by its label (blank rows for the ones not in use)."""
    if not test:
        return None
    variants = list(test.get("variants") or [])
    blank = {"template_id": None, "subject": None, "send_time": None}
    rows = {label: {**blank, **(variants[i] if i < len(variants) else {})} for i, label in enumerate(LABELS)}
    wait = test.get("wait_minutes")
    return {**test, "rows": rows, "wait_hours": (wait / 60 if isinstance(wait, int | float) else wait)}


@lru_cache(maxsize=1)
def _zones() -> list[str]:
    return sorted(z for z in available_timezones() if "/" in z and not z.startswith(("Etc/", "SystemV/", "posix/", "right/")))


def _blank() -> dict[str, Any]:
    return {"name": "", "channel": "email", "segment_id": None, "sender": "", "schedule_kind": "now", "send_at": None,
            "cron": "", "time_zone": "UTC", "trigger_kind": "order.completed", "trigger_delay_minutes": 0,
            "quiet_hours_start": None, "quiet_hours_end": None, "frequency_cap_max": None, "frequency_cap_days": None,
            "steps": [], "ab_test": None}


@router.get("/campaigns/new")
def new_form(request: Request, agent: Writer) -> Response:
    return _editor(request, agent, values=_blank(), errors={}, campaign=None)


def _save(request: Request, agent: Agent, form: Any, campaign_id: int | None) -> Response:
    hub = get_hub(request)
    values = _form_values(form)
    existing = None
    if campaign_id is not None:
        with hub.session(read_only=True) as db:
            existing = _load(db, campaign_id)
    then = values.pop("then")
    try:
        data = service.CampaignIn.model_validate(values)
    except ValidationError as exc:
        return _editor(request, agent, values=values, errors=_errors(exc, agent), campaign=existing, status=422)
    with hub.session() as db:
        try:
            if campaign_id is None:
                campaign = service.create_campaign(db, data=data, created_by=agent.id)
            else:
                campaign = _load(db, campaign_id)
                service.update_campaign(db, campaign=campaign, data=data)
        except service.CampaignError as exc:
            db.rollback()
            return _editor(request, agent, values=values, errors={exc.field or "form": exc.translated(agent.package_gettext("campaigns"))},
                           campaign=existing, status=exc.status)
        db.commit()
        new_id = campaign.id
    if then == "schedule":  # "Save and schedule": a refusal leaves the saved draft, whose page says why
        with hub.session() as db:
            try:
                service.schedule(db, campaign=_load(db, new_id))
                db.commit()
            except service.CampaignError:
                db.rollback()
    return redirect(request, f"/campaigns/{new_id}")


@router.post("/campaigns/new")
async def create(request: Request, agent: Writer) -> Response:
    return _save(request, agent, await request.form(), None)


def _load(db: Any, campaign_id: int) -> Campaign:
    campaign = db.get(Campaign, campaign_id)
    if campaign is None:
        raise PageError(404, N_("There is no such campaign."))
    return campaign


@router.get("/campaigns/{campaign_id}/edit")
def edit_form(request: Request, campaign_id: int, agent: Writer) -> Response:
    hub = get_hub(request)
    with hub.session(read_only=True) as db:
        campaign = _load(db, campaign_id)
        values = service.as_input(db, campaign).model_dump()
    if campaign.status not in service.EDITABLE:
        raise PageError(409, N_("A campaign that has finished or been cancelled cannot change; duplicate it instead."))
    return _editor(request, agent, values=values, errors={}, campaign=campaign)


@router.post("/campaigns/{campaign_id}/edit")
async def update(request: Request, campaign_id: int, agent: Writer) -> Response:
    return _save(request, agent, await request.form(), campaign_id)


def _detail_values(request: Request, agent: Agent, campaign_id: int) -> dict[str, Any]:
    hub = get_hub(request)
    gettext = agent.package_gettext("campaigns")
    with hub.session(read_only=True) as db:
        campaign = _load(db, campaign_id)
        steps = steps_of(db, campaign_id)
        segments, templates = _choices(db)
        results = campaign_results(db, campaign_id=campaign_id)
        figures = progress(db, campaign_id=campaign_id)
        runs = db.scalars(select(CampaignRun).where(CampaignRun.campaign_id == campaign_id)
                          .order_by(CampaignRun.scheduled_for.desc(), CampaignRun.id.desc()).limit(20)).all()
        waits, skips = waiting(db, hub, campaign=campaign, fmt_time=agent.fmt.short_datetime)
        alpha, min_sent, _hours = ab_decide.thresholds(hub)
        ab = ab_results(db, campaign=campaign, alpha=alpha, min_sent=min_sent)
        ab_variants = variants_of(db, campaign_id) if ab else []
        not_ready = None
        if campaign.status == CampaignStatus.DRAFT:
            try:
                service.check_ready(db, campaign=campaign)
            except service.CampaignError as exc:
                not_ready = exc.translated(gettext)
    labels = {k: agent.gettext(v) for k, v in METRIC_LABELS.items()} | {"title": agent.gettext("Sent and engagement over time")}
    cron_words = in_words(campaign.cron, campaign.time_zone, gettext) if campaign.schedule_kind == "cron" else None
    return dict(campaign=campaign, steps=steps, segment_names={s.id: s.name for s in segments},
                waits=[(w.count, gettext(w.message) % w.params if w.params else gettext(w.message)) for w in waits],
                skips=[(w.count, gettext(w.message)) for w in skips], not_ready=not_ready, cron_words=cron_words,
                status_tones=STATUS_TONES, run_status_labels=RUN_STATUS_LABELS,
                template_names={t.id: getattr(t, "name", f"#{t.id}") for t in templates}, results=results,
                figures=figures, runs=runs, chart=chart_svg(results.series, labels=labels, fmt_time=agent.fmt.short_datetime),
                metric_labels=METRIC_LABELS, status_labels=STATUS_LABELS, schedule_labels=SCHEDULE_LABELS,
                live=campaign.status in (CampaignStatus.RUNNING, CampaignStatus.SCHEDULED) or figures["pending"] > 0,
                ab=ab, ab_variants=ab_variants, ab_metrics=AB_METRICS, ab_alpha=alpha, ab_min_sent=min_sent,
                ab_default_at=ab_decide.default_at(campaign, hub))


@router.get("/campaigns/{campaign_id}")
def detail(request: Request, campaign_id: int, agent: Reader) -> Response:
    return render(request, agent, "campaigns/detail.html", **_detail_values(request, agent, campaign_id))


@router.get("/campaigns/{campaign_id}/progress")
def progress_fragment(request: Request, campaign_id: int, agent: Reader) -> Response:
    """The progress bar and figures, polled by the campaign's page while it sends."""
    return render(request, agent, "campaigns/_progress.html", **_detail_values(request, agent, campaign_id))


@router.post("/campaigns/{campaign_id}/duplicate")
def duplicate(request: Request, campaign_id: int, agent: Writer) -> Response:
    hub = get_hub(request)
    with hub.session() as db:
        original = _load(db, campaign_id)
        copy = service.duplicate(db, campaign=original, created_by=agent.id,
                                 name=f"{original.name} ({agent.gettext(N_('copy'))})")
        db.commit()
        new_id = copy.id
    return redirect(request, f"/campaigns/{new_id}/edit")


@router.post("/campaigns/{campaign_id}/ab-winner")
async def choose_winner(request: Request, campaign_id: int, agent: Writer) -> Response:
    """The marketer's choice of the variant the rest gets (a test that could not tell, or before it decides)."""
    form = await request.form()
    hub = get_hub(request)
    with hub.session() as db:
        campaign = _load(db, campaign_id)
        try:
            ab_decide.choose(db, campaign=campaign, label=str(form.get("variant") or "").upper(), actor=agent.principal)
        except service.CampaignError as exc:
            db.rollback()
            return render(request, agent, "campaigns/detail.html", status=exc.status,
                          problem=exc.translated(agent.package_gettext("campaigns")),
                          **_detail_values(request, agent, campaign_id))
        db.commit()
    return redirect(request, f"/campaigns/{campaign_id}")


@router.post("/campaigns/{campaign_id}/{action}")
async def act(request: Request, campaign_id: int, action: str, agent: Writer) -> Response:
    if action not in ACTIONS:
        raise PageError(404, N_("There is no such action."))
    form = await request.form()
    if action == "cancel" and not confirm.confirmed(form):
        return _ask_cancel(request, agent, campaign_id)
    func = ACTIONS[action]
    hub = get_hub(request)
    with hub.session() as db:
        campaign = _load(db, campaign_id)
        try:
            func(db, campaign=campaign)
        except service.CampaignError as exc:
            db.rollback()
            # The campaign's own page, with what was refused and why, rather than an error page.
            problem = exc.translated(agent.package_gettext("campaigns"))
            return render(request, agent, "campaigns/detail.html", status=exc.status, problem=problem,
                          **_detail_values(request, agent, campaign_id))
        db.commit()
    return redirect(request, f"/campaigns/{campaign_id}")


def _ask_cancel(request: Request, agent: Agent, campaign_id: int) -> Response:
    with get_hub(request).session(read_only=True) as db:
        campaign = _load(db, campaign_id)
        waiting = progress(db, campaign_id=campaign_id)["pending"]
    return confirm.ask(request, agent, action=f"/campaigns/{campaign_id}/cancel", package="campaigns",
                       title=N_("Cancel campaign"), question=N_("Cancel the campaign “%(name)s” for good?"),
                       detail=N_("Messages still waiting (%(waiting)s now) will not be sent, and a cancelled "
                                 "campaign cannot be resumed; duplicate it to send again."),
                       button=N_("Cancel campaign"), back=f"/campaigns/{campaign_id}",
                       params={"name": campaign.name, "waiting": waiting})


__all__ = ["router"]
