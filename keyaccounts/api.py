"""REST routes of key-account management: an account's profitability with the rows behind it."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field

from hub import clock
from hub.accounts import AccountNotFound, get_account
from hub.api.deps import HubDep, SessionDep, require
from hub.api.problems import Problem
from hub.auth import Principal
from keyaccounts.profit import LINES, account_profit

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
