"""Plain functions that put customers and orders in the store for the analytics tests (and the bench)."""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import insert

from hub.auth import SYSTEM
from hub.contacts import create_contact
from hub.ingest import InboundEvent, ingest
from hub.models import Contact, TimelineEvent


def customer(hub: Any, name: str, **extra: Any) -> int:
    with hub.session() as s, s.begin():
        return create_contact(s, actor=SYSTEM, region="RU", display_name=name, **extra).id


def order(hub: Any, contact_id: int, at: datetime, amount: str | Decimal, order_id: str, *, currency: str = "RUB",
          kind: str = "order.completed", source: str = "shop", n: int | None = None) -> None:
    """One order event, as hub.events records it (the external id may repeat an order: a re-report)."""
    ingest(hub, InboundEvent(channel="commerce", kind=kind, direction="in", contact_id=contact_id,
                             external_id=f"{source}:{order_id}:{kind}:{n if n is not None else at.isoformat()}",
                             occurred_at=at,
                             data={"source": source, "order": {"order_id": order_id, "amount": str(amount),
                                                               "currency": currency, "items": []}}))


def bulk_customers(session: Any, count: int, *, created_at: datetime, prefix: str = "c") -> list[int]:
    """`count` contacts inserted in one statement (for volume: no identities, no audit)."""
    rows = [{"display_name": f"{prefix}{i}", "search_name": f"{prefix}{i}", "attributes": {}, "tags": [],
             "lifecycle_stage": "customer", "created_at": created_at, "updated_at": created_at} for i in range(count)]
    return list(session.scalars(insert(Contact).returning(Contact.id), rows))


def bulk_orders(session: Any, orders: list[tuple[int, datetime, Decimal]], *, prefix: str = "o") -> None:
    """Order events inserted in batches, shaped as hub.events writes them (volume fixtures only)."""
    rows = [{"contact_id": cid, "occurred_at": at, "channel": "commerce", "direction": "in", "kind": "order.completed",
             "external_id": f"{prefix}:{i}", "created_at": at,
             "data": {"source": prefix, "order": {"order_id": f"{prefix}{i}", "amount": f"{amount:.2f}",
                                                  "currency": "RUB", "items": []}}}
            for i, (cid, at, amount) in enumerate(orders)]
    for start in range(0, len(rows), 5000):
        session.execute(insert(TimelineEvent), rows[start:start + 5000])


def bgnbd_history(rng: random.Random, *, customers: list[int], start: datetime, end: datetime, r: float = 0.8,
                  alpha: float = 8.0, a: float = 0.6, b: float = 2.5, value: float = 1500.0
                  ) -> list[tuple[int, datetime, Decimal]]:
    """Orders drawn from the BG/NBD story itself (weekly rates from Gamma(r, alpha), a drop-out chance
    after each order from Beta(a, b)) and Gamma order values: data the model should describe well."""
    orders = []
    span = (end - start).total_seconds() / 86400 / 7
    for cid in customers:
        rate = rng.gammavariate(r, 1 / alpha)
        p = rng.betavariate(a, b)
        mean_value = rng.gammavariate(4.0, value / 4.0)
        t = rng.uniform(0, span * 0.5)  # first order in the first half of the period
        while t < span:
            orders.append((cid, start + timedelta(weeks=t), Decimal(str(round(rng.gammavariate(6.0, mean_value / 6.0), 2)))))
            if rng.random() < p:
                break
            t += rng.expovariate(rate) if rate > 0 else span
    return orders


def survey_answer(hub: Any, contact_id: int, *, channel: str | None, at: datetime, nps: int | None = None,
                  csat: int | None = None, survey_id: int | None = None) -> int:
    """A completed survey response and its invitation, as campaigns.surveys stores them; returns the survey id."""
    import secrets

    from campaigns.surveys.models import Survey, SurveyInvitation, SurveyResponse

    with hub.session() as s, s.begin():
        if survey_id is None:
            survey = Survey(name="After the order")
            s.add(survey)
            s.flush()
            survey_id = survey.id
        invitation = SurveyInvitation(survey_id=survey_id, contact_id=contact_id, cause=f"manual:{secrets.token_hex(4)}",
                                      nonce=secrets.token_hex(16), status="answered", send_at=at, sent_at=at,
                                      channel=channel)
        s.add(invitation)
        s.flush()
        s.add(SurveyResponse(invitation_id=invitation.id, survey_id=survey_id, contact_id=contact_id, completed=True,
                             nps=nps, csat=csat, submitted_at=at))
    return survey_id  # type: ignore[return-value]
