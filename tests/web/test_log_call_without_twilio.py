"""Logging a call made from any phone is a note of a call: it needs no Twilio account."""

from __future__ import annotations

import re

from sqlalchemy import select

from hub.models import TimelineEvent
from tests.web.conftest import login
from tests.web.test_pages import HX, _contact, _post


def test_a_call_is_logged_with_the_phone_channel_not_configured(web, hub):
    assert not hub.channel("phone").configured  # no account_sid, no auth_token
    token = login(web, hub)
    contact_id = _contact(hub, "Desk Phone", phone="+7 916 123-45-67")
    page = web.get(f"/contacts/{contact_id}").text
    assert re.search(r'id="tab-phone"[^>]*class="tab"', page)  # enabled
    assert f'hx-get="/contacts/{contact_id}/compose/phone"' in page
    # A panel that stays off names its channel, not its tab ("the Log call channel").
    assert "The Email channel is not configured yet" in page
    assert "Log call channel" not in page and "Book meeting channel" not in page
    logged = _post(web, token, f"/contacts/{contact_id}/compose/phone",
                   {"direction": "out", "outcome": "answered", "minutes": "3", "notes": "Called from the desk phone",
                    "client_id": "desk-1"}, **HX)
    assert logged.status_code == 200 and "Call logged" in logged.text
    with hub.session(read_only=True) as session:
        event = session.scalars(select(TimelineEvent).where(TimelineEvent.channel == "phone")).one()
    assert (event.kind, event.status, event.data["source"]) == ("call", "answered", "manual")


def test_the_tab_reads_log_call_in_russian(web, hub):
    login(web, hub, locale="ru")
    contact_id = _contact(hub, "Настольный телефон", phone="+7 916 123-45-67")
    page = web.get(f"/contacts/{contact_id}").text
    assert "Записать звонок" in page
    assert "Канал «Записать звонок»" not in page
