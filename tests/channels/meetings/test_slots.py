"""Free slots across DST changes (Europe/Berlin, America/New_York) and in a zone without DST
(Europe/Moscow), seen from visitors in other zones; notice, horizon, buffers, exceptions."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from channels.meetings.models import MeetingType
from channels.meetings.slots import HostCalendar, free_slots, group_by_day, local_day_bounds, wall_to_utc

UTC = timezone.utc
NINE_TO_FIVE = {d: [(9 * 60, 17 * 60)] for d in range(5)}


def mtype(**kw: object) -> MeetingType:
    base = dict(slug="t", name="T", host_ids=[1], duration_minutes=60, slot_step_minutes=60, min_notice_minutes=0,
                horizon_days=365, buffer_before_minutes=0, buffer_after_minutes=0)
    return MeetingType(**{**base, **kw})


def cal(zone: str, weekly: dict[int, list[tuple[int, int]]], **kw: object) -> HostCalendar:
    return HostCalendar(user_id=1, zone=ZoneInfo(zone), weekly=weekly, **kw)  # type: ignore[arg-type]


def day_slots(meeting_type: MeetingType, calendar: HostCalendar, day: date, *, seen_from: str,
              now: datetime = datetime(2026, 1, 1, tzinfo=UTC)) -> list[datetime]:
    zone = ZoneInfo(seen_from)
    start, end = local_day_bounds(day, zone)
    found = free_slots(meeting_type, [calendar], now=now, start=start, end=end)
    return [s.starts_at for s in found]


def local_times(instants: list[datetime], zone: str) -> list[str]:
    return [i.astimezone(ZoneInfo(zone)).strftime("%H:%M") for i in instants]


def test_berlin_host_keeps_nine_to_five_across_the_spring_change() -> None:
    berlin = cal("Europe/Berlin", NINE_TO_FIVE)
    before = day_slots(mtype(), berlin, date(2026, 3, 27), seen_from="Europe/Berlin")  # Friday, CET (+1)
    after = day_slots(mtype(), berlin, date(2026, 3, 30), seen_from="Europe/Berlin")  # Monday, CEST (+2)
    assert before[0] == datetime(2026, 3, 27, 8, tzinfo=UTC) and after[0] == datetime(2026, 3, 30, 7, tzinfo=UTC)
    assert len(before) == len(after) == 8
    assert local_times(before, "Europe/Berlin") == local_times(after, "Europe/Berlin") == [
        "09:00", "10:00", "11:00", "12:00", "13:00", "14:00", "15:00", "16:00"]
    # A visitor in New York (already on EDT since March 8) sees the hour move: 04:00, then 03:00.
    assert local_times(day_slots(mtype(), berlin, date(2026, 3, 27), seen_from="America/New_York"), "America/New_York")[0] == "04:00"
    assert local_times(day_slots(mtype(), berlin, date(2026, 3, 30), seen_from="America/New_York"), "America/New_York")[0] == "03:00"


def test_berlin_autumn_week() -> None:
    berlin = cal("Europe/Berlin", NINE_TO_FIVE)
    assert day_slots(mtype(), berlin, date(2026, 10, 23), seen_from="Europe/Berlin")[0] == datetime(2026, 10, 23, 7, tzinfo=UTC)
    assert day_slots(mtype(), berlin, date(2026, 10, 26), seen_from="Europe/Berlin")[0] == datetime(2026, 10, 26, 8, tzinfo=UTC)


def test_new_york_nights_of_23_and_25_hours_have_as_many_slots_as_real_hours() -> None:
    # Sunday 00:00-06:00 local: 5 real hours on March 8 (clocks skip 02:00-03:00), 7 on November 1.
    night = cal("America/New_York", {6: [(0, 6 * 60)]})
    half_hour = mtype(duration_minutes=30, slot_step_minutes=30)
    spring = day_slots(half_hour, night, date(2026, 3, 8), seen_from="America/New_York")
    autumn = day_slots(half_hour, night, date(2026, 11, 1), seen_from="America/New_York")
    assert len(spring) == 10 and len(autumn) == 14
    assert spring[0] == datetime(2026, 3, 8, 5, tzinfo=UTC) and spring[-1] == datetime(2026, 3, 8, 9, 30, tzinfo=UTC)
    assert autumn[0] == datetime(2026, 11, 1, 4, tzinfo=UTC) and autumn[-1] == datetime(2026, 11, 1, 10, 30, tzinfo=UTC)
    # Shown to the New York visitor, the repeated hour appears twice and the skipped one not at all.
    assert local_times(autumn, "America/New_York").count("01:00") == 2
    assert "02:00" not in local_times(spring, "America/New_York")


def test_new_york_weekdays_across_the_autumn_change() -> None:
    ny = cal("America/New_York", NINE_TO_FIVE)
    friday = day_slots(mtype(), ny, date(2026, 10, 30), seen_from="America/New_York")
    monday = day_slots(mtype(), ny, date(2026, 11, 2), seen_from="America/New_York")
    assert friday[0] == datetime(2026, 10, 30, 13, tzinfo=UTC) and monday[0] == datetime(2026, 11, 2, 14, tzinfo=UTC)
    # A Moscow visitor (no DST) sees 16:00 before and 17:00 after.
    assert local_times([friday[0]], "Europe/Moscow") == ["16:00"] and local_times([monday[0]], "Europe/Moscow") == ["17:00"]


def test_moscow_host_has_no_dst_but_berlin_visitors_see_the_shift() -> None:
    moscow = cal("Europe/Moscow", NINE_TO_FIVE)
    for day in (date(2026, 3, 27), date(2026, 3, 30), date(2026, 10, 23), date(2026, 10, 26)):
        found = day_slots(mtype(), moscow, day, seen_from="Europe/Moscow")
        assert found[0] == datetime.combine(day, datetime.min.time(), UTC) + timedelta(hours=6)
        assert local_times(found, "Europe/Moscow")[0] == "09:00" and len(found) == 8
    assert local_times(day_slots(mtype(), moscow, date(2026, 3, 27), seen_from="Europe/Berlin"), "Europe/Berlin")[0] == "07:00"
    assert local_times(day_slots(mtype(), moscow, date(2026, 3, 30), seen_from="Europe/Berlin"), "Europe/Berlin")[0] == "08:00"


def test_a_visitor_far_east_sees_slots_on_their_own_dates() -> None:
    # New York 17:00-18:00 on Monday is Tuesday morning in Tokyo.
    ny = cal("America/New_York", {0: [(17 * 60, 18 * 60)]})
    start, end = local_day_bounds(date(2026, 6, 2), ZoneInfo("Asia/Tokyo"))
    found = free_slots(mtype(), [ny], now=datetime(2026, 1, 1, tzinfo=UTC), start=start, end=end)
    days = group_by_day(found, ZoneInfo("Asia/Tokyo"))
    assert list(days) == [date(2026, 6, 2)] and days[date(2026, 6, 2)][0][1].strftime("%H:%M") == "06:00"


def test_wall_times_in_a_gap_move_forward() -> None:
    assert wall_to_utc(date(2026, 3, 29), 2 * 60 + 30, ZoneInfo("Europe/Berlin")) == datetime(2026, 3, 29, 1, 30, tzinfo=UTC)
    assert wall_to_utc(date(2026, 3, 29), 1440, ZoneInfo("Europe/Berlin")) == datetime(2026, 3, 29, 22, tzinfo=UTC)


def test_notice_horizon_buffers_and_bookings() -> None:
    moscow = cal("Europe/Moscow", NINE_TO_FIVE)
    now = datetime(2026, 6, 1, 7, 30, tzinfo=UTC)  # Monday 10:30 in Moscow
    monday = date(2026, 6, 1)
    # Two hours of notice: 13:00 Moscow is the first bookable slot.
    assert local_times(day_slots(mtype(min_notice_minutes=120), moscow, monday, seen_from="Europe/Moscow", now=now),
                       "Europe/Moscow")[0] == "13:00"
    # A 3-day horizon ends before Friday.
    assert day_slots(mtype(horizon_days=3), moscow, date(2026, 6, 5), seen_from="Europe/Moscow", now=now) == []
    # A booking 12:00-13:00 Moscow with 30-minute buffers blocks 11:00, 12:00 and 13:00.
    busy = cal("Europe/Moscow", NINE_TO_FIVE, busy=[(datetime(2026, 6, 2, 9, tzinfo=UTC), datetime(2026, 6, 2, 10, tzinfo=UTC))])
    found = local_times(day_slots(mtype(buffer_before_minutes=30, buffer_after_minutes=30), busy, date(2026, 6, 2),
                                  seen_from="Europe/Moscow", now=now), "Europe/Moscow")
    assert found == ["09:00", "10:00", "14:00", "15:00", "16:00"]


def test_holidays_hours_off_and_extra_hours() -> None:
    moscow = cal("Europe/Moscow", NINE_TO_FIVE, off={date(2026, 6, 12): [(None, None)], date(2026, 6, 11): [(12 * 60, 17 * 60)]},
                 extra={date(2026, 6, 13): [(10 * 60, 12 * 60)]})
    assert day_slots(mtype(), moscow, date(2026, 6, 12), seen_from="Europe/Moscow") == []
    assert local_times(day_slots(mtype(), moscow, date(2026, 6, 11), seen_from="Europe/Moscow"), "Europe/Moscow") == ["09:00", "10:00", "11:00"]
    assert local_times(day_slots(mtype(), moscow, date(2026, 6, 13), seen_from="Europe/Moscow"), "Europe/Moscow") == ["10:00", "11:00"]
