"""Cron as a marketer reads it: crontab weekdays mean what crontab says, the common cases are said in
words (English and Russian), and the editor's picker makes and reads back their expressions."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from campaigns.scheduling import cron_of, in_words, next_cron_time, picked
from hub.web import i18n


def test_crontab_weekdays_count_from_sunday():
    after = datetime(2026, 12, 6, tzinfo=timezone.utc)  # a Sunday
    assert next_cron_time("0 10 * * 1", "Europe/Moscow", after=after).strftime("%A %H:%M") == "Monday 07:00"
    assert next_cron_time("0 10 * * 0", "UTC", after=after + timedelta(days=1)).strftime("%A") == "Sunday"
    assert next_cron_time("0 10 * * 7", "UTC", after=after + timedelta(days=1)).strftime("%A") == "Sunday"
    moment, days = after, set()
    for _ in range(10):
        moment = next_cron_time("0 9 * * 1-5", "UTC", after=moment)
        days.add(moment.strftime("%a"))
    assert days == {"Mon", "Tue", "Wed", "Thu", "Fri"}
    moment, days = after, set()
    for _ in range(14):
        moment = next_cron_time("0 9 * * 0-6", "UTC", after=moment)
        days.add(moment.strftime("%a"))
    assert len(days) == 7


@pytest.mark.parametrize(("expr", "english", "russian"), [
    ("0 10 * * 1", "every Monday at 10:00, Europe/Moscow", "каждый понедельник в 10:00, Europe/Moscow"),
    ("0 10 * * 3", "every Wednesday at 10:00, Europe/Moscow", "каждую среду в 10:00, Europe/Moscow"),
    ("30 9 * * *", "every day at 09:30, Europe/Moscow", "каждый день в 09:30, Europe/Moscow"),
    ("0 8 15 * *", "on day 15 of every month at 08:00, Europe/Moscow", "15-го числа каждого месяца в 08:00, Europe/Moscow"),
    ("0 9 * * 1-5", "every weekday (Monday to Friday) at 09:00, Europe/Moscow",
     "по будним дням (с понедельника по пятницу) в 09:00, Europe/Moscow"),
])
def test_common_schedules_are_said_in_words(expr, english, russian):
    assert in_words(expr, "Europe/Moscow", i18n.package_translations("en", "campaigns").gettext) == english
    assert in_words(expr, "Europe/Moscow", i18n.package_translations("ru", "campaigns").gettext) == russian


def test_an_unusual_expression_is_not_guessed_at():
    assert in_words("*/5 * * * *", "UTC", str) is None
    assert picked("*/5 * * * *").every == "custom"


@pytest.mark.parametrize(("every", "fields", "expr"), [
    ("daily", {"at": "07:05"}, "5 7 * * *"),
    ("weekly", {"weekday": 1, "at": "10:00"}, "0 10 * * 1"),
    ("weekly", {"weekday": 0, "at": "10:00"}, "0 10 * * 0"),
    ("monthly", {"monthday": 31, "at": "23:59"}, "59 23 31 * *"),
])
def test_the_picker_makes_an_expression_and_reads_it_back(every, fields, expr):
    assert cron_of(every, **fields) == expr
    back = picked(expr)
    assert back.every == every and back.at == fields["at"]


def test_the_picker_refuses_what_is_not_a_time():
    assert cron_of("daily", at="25:00") is None
    assert cron_of("custom", at="10:00") is None
