"""Key-account pages: an account's profitability with the rows behind each figure, and the page for
choosing key accounts (ranking, Pareto curve, the trap, the suggested set, flag and unflag)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from starlette.responses import Response

from hub import clock
from hub.accounts import AccountNotFound, get_account, set_key
from hub.web.i18n import N_
from hub.web.pages import Agent, PageError, get_hub, is_fragment, redirect, render, require
from keyaccounts import choosing
from keyaccounts.profit import account_profit, by_line
from keyaccounts.trace import trace

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
        profit = account_profit(db, account_id=account_id, since=since, until=until, rates=settings.rates())
        rows = trace(db, profit)
    template = "keyaccounts/_profit.html" if is_fragment(request) else "keyaccounts/profit.html"
    orders_by_event = {f"event:{o.event_id}": o for o in profit.orders}
    return render(request, agent, template, account=account, profit=profit, lines=by_line(profit), rows=rows,
                  orders_by_event=orders_by_event,
                  line_labels=LINE_LABELS, days=chosen, periods=PERIODS, since=since, until=until,
                  rates=settings.rates())


@router.get("/key-accounts")
def choosing_page(request: Request, agent: Reader, days: int | None = None) -> Response:
    hub = get_hub(request)
    settings = _settings(request)
    chosen, since, until = period(request, days)
    with hub.session(read_only=True) as db:
        board = choosing.board(db, since=since, until=until, rates=settings.rates(), key_share=settings.key_share)
    return render(request, agent, "keyaccounts/choosing.html", board=board, days=chosen, periods=PERIODS,
                  currency=settings.currency,
                  chart=choosing.pareto_svg(board, title=agent.package_gettext("keyaccounts")(PARETO_TITLE)))


def _flag(request: Request, agent: Agent, account_ids: list[int], is_key: bool, reason: str) -> None:
    hub = get_hub(request)
    with hub.session() as db:
        for account_id in sorted(set(account_ids)):
            try:
                account = get_account(db, account_id, lock=True)
            except AccountNotFound:
                raise PageError(404, NO_ACCOUNT) from None
            set_key(db, account=account, actor=agent.principal, is_key=is_key, reason=reason)
        db.commit()


@router.post("/key-accounts/accounts/{account_id}/flag")
def flag(request: Request, account_id: int, agent: Writer, back: Annotated[str, Form(max_length=200)] = "") -> Response:
    _flag(request, agent, [account_id], True, FLAGGED)
    return redirect(request, back if back.startswith("/key-accounts") else "/key-accounts")


@router.post("/key-accounts/accounts/{account_id}/unflag")
def unflag(request: Request, account_id: int, agent: Writer,
           back: Annotated[str, Form(max_length=200)] = "") -> Response:
    _flag(request, agent, [account_id], False, UNFLAGGED)
    return redirect(request, back if back.startswith("/key-accounts") else "/key-accounts")


@router.post("/key-accounts/accept")
def accept(request: Request, agent: Writer, account: Annotated[list[int], Form()] = [],  # noqa: B006
           back: Annotated[str, Form(max_length=200)] = "") -> Response:
    """Flag the suggested accounts the manager left ticked (the unticked ones are left as they are)."""
    _flag(request, agent, account, True, ACCEPTED)
    return redirect(request, back if back.startswith("/key-accounts") else "/key-accounts")



TREND_POINTS = 90


@router.get("/key-accounts/accounts/{account_id}/temperature")
def temperature_panel(request: Request, account_id: int, agent: Reader) -> Response:
    """The temperature trend, the latest score's parts and reasons, and any open cooling episode."""
    from sqlalchemy import select

    from keyaccounts.models import CoolingEpisode, TemperatureSnapshot
    from keyaccounts.temperature import SIGNAL_LABELS, WARM_PART

    hub = get_hub(request)
    with hub.session(read_only=True) as db:
        try:
            account = get_account(db, account_id)
        except AccountNotFound:
            raise PageError(404, NO_ACCOUNT) from None
        snapshots = list(reversed(db.scalars(
            select(TemperatureSnapshot).where(TemperatureSnapshot.account_id == account_id)
            .order_by(TemperatureSnapshot.computed_at.desc(), TemperatureSnapshot.id.desc()).limit(TREND_POINTS)).all()))
        episode = db.scalars(select(CoolingEpisode).where(CoolingEpisode.open_account_id == account_id)).first()
    latest = snapshots[-1] if snapshots else None
    _ = agent.package_gettext("keyaccounts")
    reasons = [] if latest is None else [
        _(part["template"]) % part["params"] for part in sorted(latest.signals.values(), key=lambda p: p["value"])
        if part.get("template") and part["value"] < WARM_PART]
    template = "keyaccounts/_temperature.html" if is_fragment(request) else "keyaccounts/temperature.html"
    return render(request, agent, template, account=account, latest=latest, reasons=reasons, episode=episode,
                  signal_labels=SIGNAL_LABELS,
                  chart=choosing.trend_svg([(s.computed_at, s.score) for s in snapshots], title=_(TREND_TITLE),
                                           fmt_date=agent.fmt.date))


TREND_TITLE = N_("Temperature over time")


@router.get("/key-accounts/handover")
def handover_form(request: Request, agent: Writer) -> Response:
    return _handover_page(request, agent)


def _handover_page(request: Request, agent: Agent, *, status: int = 200, error: str | None = None,
                   done: Any = None, values: dict[str, str] | None = None) -> Response:
    from sqlalchemy import func, select

    from hub.models import Account, User

    hub = get_hub(request)
    with hub.session(read_only=True) as db:
        users = list(db.scalars(select(User).order_by(User.display_name, User.id)))
        counts = dict(db.execute(select(Account.owner_id, func.count()).where(Account.owner_id.is_not(None))
                                 .group_by(Account.owner_id)).all())
    return render(request, agent, "keyaccounts/handover.html", status=status, users=users, counts=counts, error=error,
                  done=done, values=values or {})


@router.post("/key-accounts/handover")
def handover(request: Request, agent: Writer, from_user_id: Annotated[str, Form(max_length=20)] = "",
             to_user_id: Annotated[str, Form(max_length=20)] = "") -> Response:
    from keyaccounts.handover import HandoverRefused, hand_over

    values = {"from_user_id": from_user_id, "to_user_id": to_user_id}
    if not (from_user_id.isdigit() and to_user_id.isdigit()):
        return _handover_page(request, agent, status=422, error=HANDOVER_PICK, values=values)
    hub = get_hub(request)
    with hub.session() as db:
        try:
            done = hand_over(db, from_user_id=int(from_user_id), to_user_id=int(to_user_id), actor=agent.principal,
                             default_locale=hub.settings.default_locale)
        except HandoverRefused as exc:
            db.rollback()
            return _handover_page(request, agent, status=422, error=exc.message, values=values)
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
