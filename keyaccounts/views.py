"""Key-account pages: an account's profitability with the rows behind each figure, and the page for
choosing key accounts (ranking, Pareto curve, the trap, the suggested set, flag and unflag)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Query, Request
from starlette.responses import Response

from hub import clock
from hub.accounts import AccountNotFound, AccountRefused, get_account, set_key
from hub.web import confirm
from hub.web.i18n import N_
from hub.web.pages import Agent, PageError, get_hub, is_fragment, redirect, render, require
from keyaccounts import choosing
from keyaccounts.profit import account_panel, by_line
from keyaccounts.trace import SHOWN_PER_LINE, trace

router = APIRouter()
Reader = Annotated[Agent, Depends(require("contacts:read"))]
Writer = Annotated[Agent, Depends(require("contacts:write"))]
PERIODS = (30, 90, 180, 365)
LINE_LABELS = {"calls": N_("Calls"), "meetings": N_("Meetings"), "emails": N_("Emails written"),
               "sms": N_("SMS written"), "notes": N_("Notes"), "tasks": N_("Tasks"),
               "marketing": N_("Marketing sends")}
NO_ACCOUNT = N_("There is no such account.")
PARETO_TITLE = N_("Cumulative share of profit by account, most profitable first")
# Why the flag changed, kept on the audit log and shown translated on the account page.
FLAGGED, UNFLAGGED, ACCEPTED = (N_("flagged on the key accounts page"), N_("unflagged on the key accounts page"),
                                N_("suggested set accepted"))


def _settings(request: Request) -> Any:
    return get_hub(request).extensions["keyaccounts"].settings


def period(request: Request, days: int | None) -> tuple[int, datetime, datetime]:
    """The days asked for (one of PERIODS, else the configured default) ending now."""
    chosen = days if days in PERIODS else _settings(request).period_days
    until = clock.now()
    return chosen, until - timedelta(days=chosen), until


@router.get("/key-accounts/accounts/{account_id}/profit")
def profit_panel(request: Request, account_id: int, agent: Reader, days: int | None = None) -> Response:
    hub = get_hub(request)
    settings = _settings(request)
    chosen, since, until = period(request, days)
    with hub.session(read_only=True) as db:
        try:
            account = get_account(db, account_id)
        except AccountNotFound:
            raise PageError(404, NO_ACCOUNT) from None
        profit, newest = account_panel(db, account_id=account_id, since=since, until=until, rates=settings.rates(),
                                       newest=SHOWN_PER_LINE)
        rows = trace(db, newest)
    template = "keyaccounts/_profit.html" if is_fragment(request) else "keyaccounts/profit.html"
    orders_by_event = {f"event:{o.event_id}": o for o in newest.orders}
    return render(request, agent, template, account=account, profit=profit, lines=by_line(profit), rows=rows,
                  orders_by_event=orders_by_event,
                  line_labels=LINE_LABELS, days=chosen, periods=PERIODS, since=since, until=until,
                  rates=settings.rates())


@router.get("/key-accounts")
def choosing_page(request: Request, agent: Reader, days: int | None = None,
                  page: Annotated[int, Query(ge=1, le=100_000)] = 1) -> Response:
    hub = get_hub(request)
    settings = _settings(request)
    chosen, since, until = period(request, days)
    with hub.session(read_only=True) as db:
        # The configured period is the one the figures job ranks: read its figures, sum nothing.
        board = choosing.stored_board(db, period_days=chosen, key_share=settings.key_share) \
            if chosen == settings.period_days else None
        if board is None:
            board = choosing.board(db, since=since, until=until, rates=settings.rates(), key_share=settings.key_share)
    return render(request, agent, "keyaccounts/choosing.html", board=board, days=chosen, periods=PERIODS,
                  currency=settings.currency, every_hours=settings.figures_minutes / 60,
                  page=min(page, board.pages), listed=choosing.LISTED,
                  chart=choosing.pareto_svg(board, title=agent.package_gettext("keyaccounts")(PARETO_TITLE)))


def _flag(request: Request, agent: Agent, account_ids: list[int], is_key: bool, reason: str,
          override: bool = False) -> None:
    """Flag or unflag the accounts in one transaction (AccountRefused leaves every one as it was)."""
    hub = get_hub(request)
    with hub.session() as db:
        for account_id in sorted(set(account_ids)):
            try:
                account = get_account(db, account_id, lock=True)
            except AccountNotFound:
                raise PageError(404, NO_ACCOUNT) from None
            set_key(db, account=account, actor=agent.principal, is_key=is_key, reason=reason, override=override)
        db.commit()


def _back(back: str) -> str:
    return back if back.startswith("/key-accounts") else "/key-accounts"


def _over_cap(request: Request, agent: Agent, exc: AccountRefused, *, action: str, back: str,
              fields: dict[str, str]) -> Response:
    """The confirm step of going over a manager's cap: what the rule says, and "flag anyway"."""
    return confirm.ask(request, agent, action=action, title=OVER_CAP_TITLE, question=exc.translated(agent.gettext),
                       button=FLAG_ANYWAY, back=_back(back), package="keyaccounts", fields={"back": back, **fields})


OVER_CAP_TITLE, FLAG_ANYWAY = N_("Over the manager's cap"), N_("Flag anyway (recorded on the audit log)")


@router.post("/key-accounts/accounts/{account_id}/flag")
async def flag(request: Request, account_id: int, agent: Writer) -> Response:
    form = await request.form()
    back = str(form.get("back", ""))[:200]
    try:
        _flag(request, agent, [account_id], True, FLAGGED, override=confirm.confirmed(form))
    except AccountRefused as exc:
        return _over_cap(request, agent, exc, action=f"/key-accounts/accounts/{account_id}/flag", back=back, fields={})
    return redirect(request, _back(back))


@router.post("/key-accounts/accounts/{account_id}/unflag")
def unflag(request: Request, account_id: int, agent: Writer,
           back: Annotated[str, Form(max_length=200)] = "") -> Response:
    _flag(request, agent, [account_id], False, UNFLAGGED)
    return redirect(request, _back(back))


@router.post("/key-accounts/accept")
async def accept(request: Request, agent: Writer) -> Response:
    """Flag the suggested accounts the manager left ticked (the unticked ones are left as they are)."""
    form = await request.form()
    back = str(form.get("back", ""))[:200]
    raw = [str(v) for v in form.getlist("account")] + str(form.get("ids", "")).split(",")
    ids = [int(v) for v in raw if v.strip().isdigit()]
    try:
        _flag(request, agent, ids, True, ACCEPTED, override=confirm.confirmed(form))
    except AccountRefused as exc:
        return _over_cap(request, agent, exc, action="/key-accounts/accept", back=back,
                         fields={"ids": ",".join(map(str, ids))})
    return redirect(request, _back(back))



TREND_POINTS = 90


@router.get("/key-accounts/accounts/{account_id}/temperature")
def temperature_panel(request: Request, account_id: int, agent: Reader) -> Response:
    """The temperature trend, the latest score's parts and reasons, and any open cooling episode."""
    return _temperature(request, agent, account_id)


def _temperature(request: Request, agent: Agent, account_id: int, *, status: int = 200, error: str | None = None,
                 values: dict[str, str] | None = None, fragment: bool | None = None) -> Response:
    from sqlalchemy import select

    from keyaccounts.models import CoolingEpisode, TemperatureSnapshot
    from keyaccounts.temperature import SIGNAL_LABELS, WARM_PART
    from keyaccounts.thresholds import own_thresholds
    from keyaccounts.watch import thresholds_for

    hub = get_hub(request)
    base = _settings(request).thresholds()
    with hub.session(read_only=True) as db:
        try:
            account = get_account(db, account_id)
        except AccountNotFound:
            raise PageError(404, NO_ACCOUNT) from None
        snapshots = list(reversed(db.scalars(
            select(TemperatureSnapshot).where(TemperatureSnapshot.account_id == account_id)
            .order_by(TemperatureSnapshot.computed_at.desc(), TemperatureSnapshot.id.desc()).limit(TREND_POINTS)).all()))
        episode = db.scalars(select(CoolingEpisode).where(CoolingEpisode.open_account_id == account_id)).first()
        effective = thresholds_for(db, account_id=account_id, base=base)
        own = own_thresholds(db, account_id=account_id)
    latest = snapshots[-1] if snapshots else None
    _ = agent.package_gettext("keyaccounts")
    reasons = [] if latest is None else [
        _(part["template"]) % part["params"] for part in sorted(latest.signals.values(), key=lambda p: p["value"])
        if part.get("template") and part["value"] < WARM_PART]
    fragment = is_fragment(request) if fragment is None else fragment
    template = "keyaccounts/_temperature.html" if fragment else "keyaccounts/temperature.html"
    if values is None:
        values = {k: "" if v is None else str(v) for k, v in own.model_dump().items()}
    return render(request, agent, template, status=status, account=account, latest=latest, reasons=reasons,
                  episode=episode, signal_labels=SIGNAL_LABELS, effective=effective, base=base, values=values,
                  error=error,
                  chart=choosing.trend_svg([(s.computed_at, s.score) for s in snapshots], title=_(TREND_TITLE),
                                           fmt_date=agent.fmt.date))


THRESHOLD_NUMBER = N_("Write whole numbers: the alert threshold 0–100, the sharp drop 1–100; leave blank for the setting.")


@router.post("/key-accounts/accounts/{account_id}/thresholds")
def thresholds(request: Request, account_id: int, agent: Writer,
               cold_below: Annotated[str, Form(max_length=10)] = "",
               sharp_drop: Annotated[str, Form(max_length=10)] = "") -> Response:
    """Set the account's own cooling thresholds (blank: the setting's), audited."""
    from pydantic import ValidationError

    from keyaccounts.thresholds import ThresholdsIn, set_thresholds

    values = {"cold_below": cold_below, "sharp_drop": sharp_drop}
    try:
        wanted = ThresholdsIn(**{k: (v.strip() or None) for k, v in values.items()})
    except ValidationError:
        return _temperature(request, agent, account_id, status=422, error=THRESHOLD_NUMBER, values=values,
                            fragment=False)
    hub = get_hub(request)
    with hub.session() as db:
        try:
            account = get_account(db, account_id, lock=True)
        except AccountNotFound:
            raise PageError(404, NO_ACCOUNT) from None
        set_thresholds(db, account=account, actor=agent.principal, values=wanted)
        db.commit()
    return redirect(request, f"/accounts/{account_id}")


TREND_TITLE = N_("Temperature over time")


@router.get("/key-accounts/handover")
def handover_form(request: Request, agent: Writer) -> Response:
    return _handover_page(request, agent)


def _handover_page(request: Request, agent: Agent, *, status: int = 200, error: str | None = None,
                   done: Any = None, values: dict[str, str] | None = None, refused: bool = False) -> Response:
    from sqlalchemy import func, select

    from hub.models import Account, User

    hub = get_hub(request)
    with hub.session(read_only=True) as db:
        users = list(db.scalars(select(User).order_by(User.display_name, User.id)))
        counts = dict(db.execute(select(Account.owner_id, func.count()).where(Account.owner_id.is_not(None))
                                 .group_by(Account.owner_id)).all())
    return render(request, agent, "keyaccounts/handover.html", status=status, users=users, counts=counts, error=error,
                  done=done, values=values or {}, refused=refused)


@router.post("/key-accounts/handover")
def handover(request: Request, agent: Writer, from_user_id: Annotated[str, Form(max_length=20)] = "",
             to_user_id: Annotated[str, Form(max_length=20)] = "",
             override: Annotated[str, Form(max_length=5)] = "") -> Response:
    from keyaccounts.handover import HandoverRefused, hand_over

    values = {"from_user_id": from_user_id, "to_user_id": to_user_id}
    if not (from_user_id.isdigit() and to_user_id.isdigit()):
        return _handover_page(request, agent, status=422, error=HANDOVER_PICK, values=values)
    hub = get_hub(request)
    with hub.session() as db:
        try:
            done = hand_over(db, from_user_id=int(from_user_id), to_user_id=int(to_user_id), actor=agent.principal,
                             default_locale=hub.settings.default_locale,
                             cap=_settings(request).max_key_accounts_per_manager, override=override == "on")
        except HandoverRefused as exc:
            db.rollback()
            return _handover_page(request, agent, status=422, error=exc.message, values=values)
        except AccountRefused as exc:
            db.rollback()
            return _handover_page(request, agent, status=409, error=exc.translated(agent.package_gettext("keyaccounts")),
                                  values=values, refused=True)
        db.commit()
    return _handover_page(request, agent, done=done)


HANDOVER_PICK = N_("Choose both managers.")


@router.get("/key-accounts/managers")
def managers_page(request: Request, agent: Reader, days: int | None = None) -> Response:
    """Per key-account manager: accounts, their profit and agent time, temperature, open tasks, the cap."""
    from keyaccounts.workload import workload

    hub = get_hub(request)
    settings = _settings(request)
    chosen, since, until = period(request, days)
    with hub.session(read_only=True) as db:
        rows = workload(db, since=since, until=until, rates=settings.rates(), cap=settings.max_key_accounts_per_manager)
    return render(request, agent, "keyaccounts/managers.html", rows=rows, days=chosen, periods=PERIODS,
                  currency=settings.currency, cap=settings.max_key_accounts_per_manager)
