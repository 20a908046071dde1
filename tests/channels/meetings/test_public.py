"""The public booking pages over HTTP: booking, the 50-request race, signed links, notice, bad input."""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from icalendar import Calendar
from sqlalchemy import func, select

from hub import clock
from hub.models import Contact, TimelineEvent
from hub.runtime import Hub
from hub.signing import sign
from channels.meetings.models import Meeting
from channels.meetings.notify import manage_token
from tests.channels.meetings.conftest import at, make_host, make_type

NOW = at("2026-06-01 07:30")  # Monday 10:30 Moscow
WED_9 = at("2026-06-03 06:00")  # Wednesday 09:00 Moscow
START = "2026-06-03T06:00:00Z"


@pytest.fixture
def site(hub: Hub, client, frozen_clock: clock.FrozenClock):  # type: ignore[no-untyped-def]
    frozen_clock.current = NOW
    host = make_host(hub, zone="Europe/Moscow")
    make_type(hub, host_ids=[host], duration_minutes=60, slot_step_minutes=60, min_notice_minutes=240)
    return hub, client, frozen_clock


def form(**kw: str) -> dict[str, str]:
    return {"start": START, "tz": "Europe/Berlin", "lang": "en", "name": "Ivan Petrov", "email": "ivan@example.com", **kw}


def meetings(hub: Hub) -> list[Meeting]:
    with hub.session() as session:
        return list(session.scalars(select(Meeting).order_by(Meeting.id)))


def test_the_page_shows_free_slots_in_the_visitors_zone(site) -> None:  # type: ignore[no-untyped-def]
    _hub, client, _clk = site
    moscow = client.get("/channels/meetings/consultation?tz=Europe/Moscow&lang=ru")
    assert moscow.status_code == 200 and moscow.headers["content-language"] == "ru"
    assert "Время" in moscow.text and "Europe/Moscow." in moscow.text and "понедельник, 1 июня" in moscow.text
    berlin = client.get("/channels/meetings/consultation?tz=Europe/Berlin&lang=en")
    starts = re.findall(r'data-start="([^"]+)"', berlin.text)
    # Monday: 4 hours of notice from 10:30 Moscow leaves 15:00 and 16:00 Moscow; then full days.
    assert starts[:3] == ["2026-06-01T12:00:00Z", "2026-06-01T13:00:00Z", "2026-06-02T06:00:00Z"]
    # Berlin is an hour behind Moscow in June: 09:00 Moscow shows as 8:00 AM.
    assert "8:00\u202fAM" in berlin.text and "Times are shown in Europe/Berlin." in berlin.text
    # No zone given, an unknown zone, an unknown type:
    assert client.get("/channels/meetings/consultation").status_code == 200
    assert client.get("/channels/meetings/consultation?tz=Mars/Base").status_code == 200
    assert client.get("/channels/meetings/no-such-type?lang=en").status_code == 404
    script = client.get("/channels/meetings/static/zone.js")
    assert script.status_code == 200 and script.headers["content-type"].startswith("text/javascript")


def test_booking_then_the_signed_links_move_and_cancel(site) -> None:  # type: ignore[no-untyped-def]
    hub, client, _clk = site
    chosen = client.get(f"/channels/meetings/consultation/book?start={START}&tz=Europe/Berlin&lang=en")
    assert chosen.status_code == 200 and "8:00\u202fAM" in chosen.text
    done = client.post("/channels/meetings/consultation/book", data=form(), follow_redirects=False)
    assert done.status_code == 303
    manage = done.headers["location"]
    [meeting] = meetings(hub)
    assert manage.startswith(f"/channels/meetings/m/{manage_token(hub.settings, meeting.uid)}")
    page = client.get(manage)
    assert "Your meeting is booked." in page.text and "Europe/Berlin" in page.text
    download = client.get(manage.split("?")[0] + "/invite.ics")
    assert download.status_code == 200 and download.headers["content-type"].startswith("text/calendar")
    [event] = Calendar.from_ical(download.content).walk("VEVENT")
    assert Calendar.from_ical(download.content)["METHOD"] == "PUBLISH" and str(event["UID"]) == meeting.uid
    assert event["DTSTART"].dt == WED_9
    moved = client.post(manage.split("?")[0] + "/reschedule", data={"start": "2026-06-04T07:00:00Z", "lang": "en"},
                        follow_redirects=False)
    assert moved.status_code == 303 and "done=moved" in moved.headers["location"]
    [meeting] = meetings(hub)
    assert meeting.starts_at == at("2026-06-04 07:00") and meeting.sequence == 1
    cancelled = client.post(manage.split("?")[0] + "/cancel", data={"lang": "ru", "reason": "заболел"}, follow_redirects=False)
    assert cancelled.status_code == 303
    [meeting] = meetings(hub)
    assert meeting.status == "cancelled" and meeting.sequence == 2
    again = client.post(manage.split("?")[0] + "/cancel", data={"lang": "en"})
    assert again.status_code == 409 and "no longer booked" in again.text
    with hub.session() as session:
        kinds = [e.kind for e in session.scalars(select(TimelineEvent).where(TimelineEvent.channel == "meetings").order_by(TimelineEvent.id))]
    assert kinds == ["meeting.booked", "meeting.rescheduled", "meeting.cancelled"]


def test_form_errors_are_shown_beside_the_fields_and_nothing_is_stored(site) -> None:  # type: ignore[no-untyped-def]
    hub, client, _clk = site
    no_contact = client.post("/channels/meetings/consultation/book", data=form(email="", lang="ru"))
    assert no_contact.status_code == 422 and 'id="email-error"' in no_contact.text and "Укажите адрес почты" in no_contact.text
    bad_email = client.post("/channels/meetings/consultation/book", data=form(email="nope"))
    assert bad_email.status_code == 422 and "That is not a valid email address." in bad_email.text
    no_name = client.post("/channels/meetings/consultation/book", data=form(name="  "))
    assert no_name.status_code == 422 and 'id="name-error"' in no_name.text
    assert client.post("/channels/meetings/consultation/book", data=form(start="yesterday")).status_code == 422
    assert client.post("/channels/meetings/consultation/book", data=form(start="2026-06-06T08:00:00Z")).status_code == 422
    inside_notice = client.post("/channels/meetings/consultation/book", data=form(start="2026-06-01T09:00:00Z"))
    assert inside_notice.status_code == 422
    assert meetings(hub) == []
    with hub.session() as session:
        assert session.scalar(select(func.count()).select_from(Contact)) == 0


def test_forged_and_tampered_links_change_nothing(site) -> None:  # type: ignore[no-untyped-def]
    hub, client, _clk = site
    client.post("/channels/meetings/consultation/book", data=form())
    [meeting] = meetings(hub)
    token = manage_token(hub.settings, meeting.uid)
    tampered = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    other_purpose = sign(hub.settings, "surveys.answer", {"u": meeting.uid})
    for bad in (tampered, other_purpose, "not-a-token", "x" * 3000):
        assert client.get(f"/channels/meetings/m/{bad}?lang=en").status_code == 404
        assert client.get(f"/channels/meetings/m/{bad}/invite.ics").status_code == 404
        refused = client.post(f"/channels/meetings/m/{bad}/cancel", data={"lang": "en"})
        assert refused.status_code == 404 and "This link is not valid" in refused.text
        assert client.post(f"/channels/meetings/m/{bad}/reschedule", data={"start": "2026-06-04T07:00:00Z"}).status_code == 404
    [after] = meetings(hub)
    assert (after.status, after.sequence, after.starts_at) == ("booked", 0, WED_9)


def test_customer_links_respect_the_minimum_notice(site) -> None:  # type: ignore[no-untyped-def]
    hub, client, clk = site
    client.post("/channels/meetings/consultation/book", data=form())
    [meeting] = meetings(hub)
    token = manage_token(hub.settings, meeting.uid)
    clk.current = WED_9 - timedelta(hours=3)  # 4 hours of notice are needed
    page = client.get(f"/channels/meetings/m/{token}?lang=en")
    assert "can no longer be changed online" in page.text and 'id="cancel"' not in page.text
    assert client.get(f"/channels/meetings/m/{token}/reschedule?lang=en").status_code == 409
    assert client.post(f"/channels/meetings/m/{token}/cancel", data={"lang": "en"}).status_code == 409
    assert client.post(f"/channels/meetings/m/{token}/reschedule", data={"start": "2026-06-04T07:00:00Z"}).status_code == 409
    [after] = meetings(hub)
    assert (after.status, after.sequence) == ("booked", 0)


def test_fifty_concurrent_requests_for_one_slot_give_one_booking(site) -> None:  # type: ignore[no-untyped-def]
    hub, client, _clk = site
    hub.channel("meetings").settings.booking_rate_limit = 100  # the race, not the per-address limit

    def attempt(i: int) -> int:
        response = client.post("/channels/meetings/consultation/book", follow_redirects=False,
                               data=form(name=f"Visitor {i}", email=f"visitor{i}@example.com"))
        if response.status_code == 409:
            assert "just been booked by someone else" in response.text
        return response.status_code

    with ThreadPoolExecutor(max_workers=50) as pool:
        statuses = list(pool.map(attempt, range(50)))
    assert sorted(statuses) == [303] + [409] * 49
    [meeting] = meetings(hub)
    assert meeting.starts_at == WED_9
    with hub.session() as session:
        # The losers' contacts and timeline events were rolled back with their bookings.
        assert session.scalar(select(func.count()).select_from(Contact)) == 1
        assert session.scalar(select(func.count()).select_from(TimelineEvent).where(TimelineEvent.kind == "meeting.booked")) == 1


def test_one_address_gets_429_after_its_booking_attempts_until_the_window_refills(site) -> None:  # type: ignore[no-untyped-def]
    from hub import throttle

    hub, client, clk = site
    settings = hub.channel("meetings").settings
    settings.booking_rate_limit, settings.booking_rate_window_seconds = 3, 600
    bad = form(start="not-a-time")  # refused as 422: still an attempt, and nothing is written
    assert [client.post("/channels/meetings/consultation/book", data=bad).status_code for _ in range(3)] == [422] * 3
    limited = client.post("/channels/meetings/consultation/book", data=form(lang="ru"), follow_redirects=False)
    assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1
    assert "Слишком много" in limited.text
    assert meetings(hub) == []
    clk.advance(seconds=200)  # a third of the window: one attempt back
    assert client.post("/channels/meetings/consultation/book", data=form(), follow_redirects=False).status_code == 303
    clk.advance(seconds=601)
    assert throttle.purge_idle(hub, "meetings.book", idle_seconds=600) == 1


def test_times_a_fall_back_day_repeats_carry_their_offset(hub: Hub, client, frozen_clock: clock.FrozenClock) -> None:  # type: ignore[no-untyped-def]
    # New York falls back on Sunday 2026-11-01: 01:00–01:59 happens first in EDT, then in EST.
    frozen_clock.current = at("2026-10-30 12:00")
    host = make_host(hub, zone="America/New_York", hours={6: [(0, 4 * 60)]})
    make_type(hub, host_ids=[host], slug="night", duration_minutes=30, slot_step_minutes=30, min_notice_minutes=0)
    for lang, edt, est in (("en", "GMT-04:00", "GMT-05:00"), ("ru", "GMT-04:00", "GMT-05:00")):
        page = client.get(f"/channels/meetings/night?tz=America/New_York&lang={lang}&day=2026-11-01")
        assert page.status_code == 200
        labels = [re.sub(r"<[^>]+>", "", m).split() for m in re.findall(r'data-start="[^"]+">(.*?)</a>', page.text)]
        texts = [" ".join(label) for label in labels]
        starts = re.findall(r'data-start="([^"]+)"', page.text)
        # 00:00 EDT (04:00Z) to 04:00 EST (09:00Z): five hours of half-hour slots, two at each repeated time.
        assert starts[0] == "2026-11-01T04:00:00Z" and len(starts) == 10
        assert len(set(texts)) == len(texts), f"two slots read the same: {texts}"
        one_thirty = [t for t in texts if t.startswith(("1:30", "01:30"))]
        assert len(one_thirty) == 2 and one_thirty[0].endswith(edt) and one_thirty[1].endswith(est)
        # Times that happen once carry no offset.
        assert not any("GMT" in t for t in texts if not t.startswith(("1:", "01:")))
    # The chosen time on the next step says which 1:30 it is, too.
    form = client.get("/channels/meetings/night/book?start=2026-11-01T06:30:00Z&tz=America/New_York&lang=en")
    assert form.status_code == 200
    chosen = re.search(r'id="chosen-time"><strong>(.*?)</strong>', form.text).group(1)
    assert "1:30\u202fAM GMT-05:00" in chosen
