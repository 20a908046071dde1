"""REST routes of key-account management: an account's profitability with the rows behind it."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, ConfigDict, Field

from hub import clock
from hub.accounts import AccountNotFound, AccountRefused, get_account
from hub.api.deps import HubDep, SessionDep, require
from hub.api.problems import Problem
from hub.auth import Principal
from keyaccounts.handover import HandoverRefused, hand_over
from keyaccounts.profit import LINES, account_profit
from keyaccounts.thresholds import ThresholdsIn, own_thresholds, set_thresholds
from keyaccounts.watch import thresholds_for

router = APIRouter(tags=["accounts"])
ReadAccounts = Annotated[Principal, Depends(require("contacts:read"))]


class LinePublic(BaseModel):
    name: str = Field(description="calls, meetings, emails, sms, notes, tasks or marketing")
    count: int
    minutes: Decimal = Field(description="Agent time (0 for marketing sends)")
    cost: Decimal
    refs: list[str] = Field(description="The rows behind it: event:<id>, task:<id>, delivery:<id>")


class OrderPublic(BaseModel):
    event_id: int
    order_id: str
    occurred_at: datetime
    revenue: Decimal
    margin: Decimal
    margin_source: str = Field(description="shop (sent with the order) or default (the configured rate)")
    refunded: bool


class ProfitPublic(BaseModel):
    account_id: int
    currency: str
    since: datetime
    until: datetime
    revenue: Decimal
    margin: Decimal
    cost_to_serve: Decimal
    profit: Decimal
    orders: list[OrderPublic]
    skipped_orders: list[int] = Field(description="Order events not counted: another currency, or no amount")
    lines: list[LinePublic]


@router.get("/accounts/{account_id}/profit", summary="The account's profit over a period, and what makes it",
            response_model=ProfitPublic, responses={404: {"description": "No such account"}})
def profit(account_id: int, hub: HubDep, session: SessionDep, _: ReadAccounts,
           days: Annotated[int | None, Query(ge=1, le=3650, description="The period ending now")] = None,
           ) -> ProfitPublic:
    settings = hub.extensions["keyaccounts"].settings
    try:
        get_account(session, account_id)
    except AccountNotFound as exc:
        raise Problem(404, str(exc)) from None
    until = clock.now()
    since = until - timedelta(days=days or settings.period_days)  # type: ignore[attr-defined]
    rates = settings.rates()  # type: ignore[attr-defined]
    figure = account_profit(session, account_id=account_id, since=since, until=until, rates=rates)
    return ProfitPublic(
        account_id=account_id, currency=rates.currency, since=since, until=until, revenue=figure.revenue,
        margin=figure.margin, cost_to_serve=figure.cost_to_serve, profit=figure.profit,
        orders=[OrderPublic(**vars(o)) for o in figure.orders], skipped_orders=figure.skipped_orders,
        lines=[LinePublic(name=n, count=figure.lines[n].count, minutes=figure.lines[n].minutes,
                          cost=figure.lines[n].cost, refs=figure.lines[n].refs) for n in LINES],
    )


WriteAccounts = Annotated[Principal, Depends(require("contacts:write"))]
_PROBLEM = {"content": {"application/problem+json": {}}}


def _account(session: Any, account_id: int) -> Any:
    try:
        return get_account(session, account_id, lock=True)
    except AccountNotFound as exc:
        raise Problem(404, str(exc)) from None


class ThresholdsPublic(ThresholdsIn):
    effective_cold_below: int = Field(description="What the watch uses: the account's own, else the setting")
    effective_sharp_drop: int


def _thresholds_public(hub: Any, session: Any, account_id: int) -> ThresholdsPublic:
    base = hub.extensions["keyaccounts"].settings.thresholds()
    effective = thresholds_for(session, account_id=account_id, base=base)
    return ThresholdsPublic(**own_thresholds(session, account_id=account_id).model_dump(),
                            effective_cold_below=effective.cold_below, effective_sharp_drop=effective.sharp_drop)


@router.get("/accounts/{account_id}/thresholds", summary="The account's own cooling thresholds",
            response_model=ThresholdsPublic, responses={404: {"description": "No such account", **_PROBLEM}})
def read_thresholds(account_id: int, hub: HubDep, session: SessionDep, _: ReadAccounts) -> ThresholdsPublic:
    _account(session, account_id)
    return _thresholds_public(hub, session, account_id)


@router.put("/accounts/{account_id}/thresholds", summary="Set the account's own cooling thresholds",
            description="Null means the setting's (`[extensions.keyaccounts] cold_below`, `sharp_drop`). "
                        "Each change is an `account.thresholds` audit entry.",
            response_model=ThresholdsPublic, responses={404: {"description": "No such account", **_PROBLEM}})
def write_thresholds(account_id: int, body: ThresholdsIn, hub: HubDep, session: SessionDep,
                     principal: WriteAccounts) -> ThresholdsPublic:
    account = _account(session, account_id)
    set_thresholds(session, account=account, actor=principal, values=body)
    session.commit()
    return _thresholds_public(hub, session, account_id)


class HandoverIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    from_user_id: int = Field(description="The manager whose accounts move")
    to_user_id: int = Field(description="The manager (or the deputy) who takes them")


class HandoverPublic(BaseModel):
    accounts: list[int]
    contacts: int = Field(description="Contacts in them the old manager owned, now the new one's")
    tasks: int = Field(description="Open tasks about those contacts, now the new manager's")
    notice_task_id: int | None = Field(description="The task telling the new manager")


@router.post("/key-accounts/handover", summary="Hand every account of one manager to another",
             response_model=HandoverPublic,
             responses={422: {"description": "The same manager, an unknown one, or an inactive taker", **_PROBLEM},
                        409: {"description": "The taker would be past `max_key_accounts_per_manager`; "
                                             "`?override=true` goes over it, audited", **_PROBLEM}})
def handover(body: HandoverIn, hub: HubDep, session: SessionDep, principal: WriteAccounts,
             override: Annotated[bool, Query(description="Go over the manager's cap (recorded on the audit log)")]
             = False) -> HandoverPublic:
    settings = hub.extensions["keyaccounts"].settings
    try:
        done = hand_over(session, from_user_id=body.from_user_id, to_user_id=body.to_user_id, actor=principal,
                         default_locale=hub.settings.default_locale,
                         cap=settings.max_key_accounts_per_manager, override=override)  # type: ignore[attr-defined]
    except HandoverRefused as exc:
        raise Problem(422, exc.message, slug="validation",
                      errors=[{"field": exc.field, "in": "body", "message": exc.message, "type": "value_error"}]) from None
    except AccountRefused as exc:
        raise Problem(409, str(exc), slug="account-rule", rule=exc.rule) from None
    session.commit()
    return HandoverPublic(**vars(done))
