"""Factories for segment tests: contacts, timeline events, consent, orders (plain functions)."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta
from typing import Any

import campaigns.message_templates.models  # noqa: F401  (tables, until the extension imports them)
import campaigns.segments.models  # noqa: F401
from hub.auth import SYSTEM
from hub.contacts import IdentityIn, create_contact, record_consent
from hub.ingest import InboundEvent, post_event
from hub.models import ConsentStatus, Contact, Purpose

_ids = itertools.count(1)


def person(session, name: str, *, email: str | None = None, phone: str | None = None, **fields: Any) -> Contact:
    idents = []
    if email:
        idents.append(IdentityIn(kind="email", value=email))
    if phone:
        idents.append(IdentityIn(kind="phone", value=phone))
    return create_contact(session, actor=SYSTEM, region="RU", display_name=name, identities=idents, **fields)


def event(session, contact: Contact, *, kind: str, channel: str, at: datetime, direction: str = "in",
          data: dict | None = None, thread_key: str | None = None) -> None:
    post_event(session, event=InboundEvent(channel=channel, kind=kind, direction=direction, contact_id=contact.id,
                                           occurred_at=at, data=data or {}, thread_key=thread_key,
                                           external_id=f"test:{next(_ids)}"))


def order(session, contact: Contact, *, amount: str, at: datetime, order_id: str | None = None,
          currency: str = "RUB", kind: str = "order.completed", source: str = "shop") -> None:
    oid = order_id or f"o{next(_ids)}"
    event(session, contact, kind=kind, channel="commerce", at=at,
          data={"source": source, "event_id": f"e{next(_ids)}",
                "order": {"order_id": oid, "amount": amount, "currency": currency, "items": []}, "data": {}})


def consent(session, contact: Contact, status: str, *, at: datetime, channel: str = "email") -> None:
    record_consent(session, contact=contact, actor=SYSTEM, channel=channel, status=ConsentStatus(status),
                   purpose=Purpose.MARKETING, occurred_at=at)


def ago(now: datetime, **delta: float) -> datetime:
    return now - timedelta(**delta)


import pytest  # noqa: E402


@pytest.fixture
def web(app):  # type: ignore[no-untyped-def]
    """A TestClient for the pages (as tests/web/conftest.py has it)."""
    from fastapi.testclient import TestClient

    from tests.web.conftest import ORIGIN

    with TestClient(app, base_url=ORIGIN) as client:
        yield client
