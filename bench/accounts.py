"""Key-accounts benchmark: a full recompute of profit and temperature against one hand-written SQL
query computing the same inputs in the same run, the memory it takes, and the key-account pages.

The store (PostgreSQL, a database of its own) is filled server-side with `generate_series`: `--contacts`
contacts in `--accounts` accounts (20% of them key), `--events` timeline events over the past year
(the customers' emails and SMS, agents' replies, calls with their talk time, notes, orders, survey
answers, completed meetings, campaign sends), plus one account of `--big-contacts` contacts holding
`--big-events` events for the account page. Then, in one process:

- baseline: one hand-written SQL statement computing the inputs both computations compute (per
  account: the cost lines and their time, tasks, sends, orders with each order's latest report; for
  key accounts the median inbound gap, the median reply time, the last ten survey scores, orders'
  count and value by window, open detractor tasks); the previous rounds' statement, which only counted,
  is timed beside it for comparison;
- recompute: `keyaccounts.figures.refresh_figures` (every account's profit and band, written) and
  `keyaccounts.watch.run` (every key account's temperature, snapshot and cooling check), timed apart
  (the message catalogs the alerts are written with are loaded before, as in a running worker);
- memory: the process's peak RSS above its RSS before the recompute;
- pages, signed in, inside the app: /key-accounts, and the account page of the big account with its
  two panels (temperature, profitability).

    python -m bench.accounts --contacts 10000 --accounts 2000 --events 200000 --record
"""

from __future__ import annotations

import os
import platform
import re
import resource
import shlex
import statistics
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Annotated, Any

import typer
from sqlalchemy import text

from bench.records import record_section
from bench.store import drop_database, fresh_database

SECTION = "## Key accounts"
DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/hub_bench_accounts"
PASSWORD = "benchmark password 1"
GOAL_RATIO, GOAL_MB, GOAL_P95_MS = 3.0, 150.0, 150.0

app = typer.Typer(add_completion=False, pretty_exceptions_show_locals=False)

# One row per event: g picks the contact and m what happened (see the module docstring). m turns with
# each round of the contacts (g / contacts), so every contact and every account gets a mix of events:
# with m = g % 20 a contact's events were all of one kind (its id modulo 20), and so were an account's,
# key accounts (every fifth) holding only inbound emails, SMS replies and orders: no survey, call,
# meeting or note, which left most of the temperature's signals without data.
FILL_EVENTS = """
INSERT INTO timeline_event (contact_id, occurred_at, channel, direction, kind, data, external_id, actor_user_id,
                            created_at)
SELECT :first_contact + (g % :contacts),
       now() - make_interval(secs => (g::bigint * 7919 % 31536000)),
       CASE WHEN m < 9 THEN 'email' WHEN m < 11 THEN 'sms' WHEN m < 13 THEN 'phone' WHEN m = 13 THEN 'note'
            WHEN m < 16 THEN 'commerce' WHEN m = 16 THEN 'surveys' WHEN m = 17 THEN 'meetings' ELSE 'email' END,
       CASE WHEN m < 6 OR m = 9 OR m = 11 OR m = 14 OR m = 15 OR m = 16 THEN 'in'
            WHEN m = 13 OR m = 17 THEN 'internal' ELSE 'out' END,
       CASE WHEN m < 11 THEN 'message' WHEN m < 13 THEN 'call' WHEN m = 13 THEN 'note'
            WHEN m < 16 THEN 'order.completed' WHEN m = 16 THEN 'survey.answered'
            WHEN m = 17 THEN 'meeting.completed' ELSE 'campaign.message' END,
       CASE WHEN m IN (11, 12) THEN jsonb_build_object('talk_seconds', 60 + g % 1200)
            WHEN m IN (14, 15) THEN jsonb_build_object('source', 'shop', 'order', jsonb_build_object(
                 'order_id', 'O' || g, 'amount', ((g % 500) * 10 + 990)::text || '.00', 'currency', 'RUB'))
            WHEN m = 16 THEN jsonb_build_object('nps', g % 11)
            WHEN m = 17 THEN jsonb_build_object('starts_at', '2026-06-01T10:00:00+00:00',
                                                'ends_at', '2026-06-01T11:00:00+00:00')
            ELSE '{}'::jsonb END,
       :prefix || g,
       CASE WHEN m IN (6, 7, 8, 10, 13) THEN :agent END,
       now()
FROM (SELECT g, (g + g / :contacts * 7) % 20 AS m FROM generate_series(1, :events) AS g) AS s
"""

# The previous rounds' baseline, kept for comparison: it counted what the recompute reads but did not
# compute several of its inputs (no tasks or sends, no gaps between inbound contacts nor their median,
# no reply times, one NPS instead of the last ten, no order values, no detractor tasks).
BASELINE_COUNTS = """
WITH ev AS (
  SELECT c.account_id,
         count(*) FILTER (WHERE e.channel = 'phone' AND e.kind = 'call') AS calls,
         sum(coalesce(nullif((e.data ->> 'talk_seconds')::numeric, 0), 0))
             FILTER (WHERE e.channel = 'phone' AND e.kind = 'call') AS call_seconds,
         sum(extract(epoch FROM ((e.data ->> 'ends_at')::timestamptz - (e.data ->> 'starts_at')::timestamptz)))
             FILTER (WHERE e.channel = 'meetings' AND e.kind = 'meeting.completed') AS meeting_seconds,
         count(*) FILTER (WHERE e.actor_user_id IS NOT NULL AND e.direction IN ('out', 'internal')
                          AND e.channel IN ('email', 'sms', 'note')) AS written
  FROM timeline_event e JOIN contact c ON c.id = e.contact_id
  WHERE e.occurred_at >= :since AND e.occurred_at < :until
  GROUP BY c.account_id),
orders AS (
  SELECT account_id, sum(amount) AS revenue, sum(round(amount * 0.25, 2)) AS margin FROM (
    SELECT c.account_id, (e.data -> 'order' ->> 'amount')::numeric AS amount,
           row_number() OVER (PARTITION BY c.account_id, e.data ->> 'source', e.data -> 'order' ->> 'order_id'
                              ORDER BY e.occurred_at DESC, e.id DESC) AS nth
    FROM timeline_event e JOIN contact c ON c.id = e.contact_id
    WHERE e.occurred_at >= :since AND e.occurred_at < :until AND e.channel = 'commerce'
      AND e.kind = 'order.completed') AS o
  WHERE nth = 1 GROUP BY account_id),
temp AS (
  SELECT c.account_id,
         count(*) FILTER (WHERE e.direction = 'in' AND e.channel IN ('email', 'sms', 'phone', 'forms')
                          AND e.occurred_at >= :until - interval '30 days') AS inbound_recent,
         count(*) FILTER (WHERE e.direction = 'in' AND e.channel IN ('email', 'sms', 'phone', 'forms')
                          AND e.occurred_at < :until - interval '30 days') AS inbound_before,
         max(e.occurred_at) FILTER (WHERE e.direction = 'in') AS last_inbound,
         count(*) FILTER (WHERE e.direction = 'out' AND e.channel IN ('email', 'sms')
                          AND e.occurred_at >= :until - interval '90 days') AS replies,
         count(*) FILTER (WHERE e.kind = 'order.completed' AND e.occurred_at >= :until - interval '90 days') AS orders_recent,
         max((e.data ->> 'nps')::numeric) FILTER (WHERE e.kind = 'survey.answered') AS nps
  FROM timeline_event e JOIN contact c ON c.id = e.contact_id JOIN account a ON a.id = c.account_id AND a.is_key
  WHERE e.occurred_at >= :until - interval '455 days'
  GROUP BY c.account_id)
SELECT count(*), sum(ev.calls), sum(orders.revenue), sum(temp.inbound_recent)
FROM ev FULL JOIN orders USING (account_id) FULL JOIN temp USING (account_id)
"""

# The baseline: one hand-written statement computing the inputs the recompute computes, line by line
# (docs/accounts.md, "Benchmark", says what each part matches), each part summed to one value so that
# transfer costs nothing. The parts are independent scalar subqueries: FULL JOINs of the parts on the
# account made PostgreSQL take 2.5x the sum of the parts at full scale (22 s against 8.9 s, loaded). Profit of every account over the period: the cost lines (calls and their
# talk time, meetings and their length, agent-written emails, SMS and notes), tasks, marketing sends,
# and orders and refunds with each order's latest report, the shop's margin else the default rate.
# Temperature inputs of every key account: the median gap between its inbound contacts over 180 days,
# the last one, the counts of the last 30 days and the 180 before; the median time to our answer of
# each run of their emails and SMS over 90 days (unanswered past 72 h: infinite); its last ten survey
# scores; orders' count and value of the last 90 days and the 365 before; open detractor tasks.
BASELINE = """
WITH ev AS (
  SELECT c.account_id,
         count(*) FILTER (WHERE e.channel = 'phone' AND e.kind = 'call') AS calls,
         sum(greatest(coalesce(nullif((e.data ->> 'talk_seconds')::numeric, 0),
                               (e.data ->> 'duration_seconds')::numeric, 0), 0))
             FILTER (WHERE e.channel = 'phone' AND e.kind = 'call') AS call_seconds,
         count(*) FILTER (WHERE e.channel = 'meetings' AND e.kind = 'meeting.completed') AS meetings,
         sum(greatest(extract(epoch FROM ((e.data ->> 'ends_at')::timestamptz
                                          - (e.data ->> 'starts_at')::timestamptz)), 0))
             FILTER (WHERE e.channel = 'meetings' AND e.kind = 'meeting.completed') AS meeting_seconds,
         count(*) FILTER (WHERE e.actor_user_id IS NOT NULL AND e.direction = 'out' AND e.channel = 'email') AS emails,
         count(*) FILTER (WHERE e.actor_user_id IS NOT NULL AND e.direction = 'out' AND e.channel = 'sms') AS sms,
         count(*) FILTER (WHERE e.actor_user_id IS NOT NULL AND e.direction = 'internal'
                          AND e.channel = 'note') AS notes
  FROM timeline_event e JOIN contact c ON c.id = e.contact_id
  WHERE e.occurred_at >= :since AND e.occurred_at < :until
    AND (e.channel IN ('phone', 'meetings', 'note') OR e.actor_user_id IS NOT NULL)
  GROUP BY c.account_id),
tasks AS (
  SELECT c.account_id, count(*) AS n FROM task t JOIN contact c ON c.id = t.contact_id
  WHERE t.created_at >= :since AND t.created_at < :until GROUP BY c.account_id),
sends AS (
  SELECT c.account_id, d.channel, count(*) AS n FROM delivery d JOIN contact c ON c.id = d.contact_id
  WHERE d.purpose = 'marketing' AND d.sent_at >= :since AND d.sent_at < :until GROUP BY c.account_id, d.channel),
orders AS (
  SELECT account_id,
         sum(CASE WHEN kind = 'order.refunded' THEN -amount ELSE amount END) AS revenue,
         sum(CASE WHEN kind = 'order.refunded' THEN -1 ELSE 1 END * coalesce(margin, round(amount * 0.25, 2))) AS margin
  FROM (SELECT c.account_id, e.kind, (e.data -> 'order' ->> 'amount')::numeric AS amount,
               (e.data -> 'order' ->> 'margin')::numeric AS margin, e.data -> 'order' ->> 'currency' AS currency,
               row_number() OVER (PARTITION BY c.account_id, e.kind, e.data ->> 'source',
                                  e.data -> 'order' ->> 'order_id' ORDER BY e.occurred_at DESC, e.id DESC) AS nth
        FROM timeline_event e JOIN contact c ON c.id = e.contact_id
        WHERE e.occurred_at >= :since AND e.occurred_at < :until AND e.channel = 'commerce'
          AND e.kind IN ('order.completed', 'order.refunded')) AS o
  WHERE (nth = 1 OR kind = 'order.refunded') AND currency = 'RUB' GROUP BY account_id),
key_members AS NOT MATERIALIZED (
  SELECT c.id, c.account_id FROM contact c JOIN account a ON a.id = c.account_id AND a.is_key
  WHERE c.merged_into IS NULL),
inbound AS (
  SELECT m.account_id, e.occurred_at, e.occurred_at >= :until - interval '180 days' AS in_window,
         e.occurred_at - lag(e.occurred_at) OVER (
             PARTITION BY m.account_id, e.occurred_at >= :until - interval '180 days' ORDER BY e.occurred_at) AS gap
  FROM timeline_event e JOIN key_members m ON m.id = e.contact_id
  WHERE e.direction = 'in' AND e.channel IN ('email', 'sms', 'phone', 'forms')
    AND e.occurred_at >= :until - interval '210 days' AND e.occurred_at <= :until),
rhythm AS (
  SELECT account_id, max(occurred_at) AS last_inbound,
         count(*) FILTER (WHERE occurred_at >= :until - interval '30 days') AS recent,
         count(*) FILTER (WHERE occurred_at < :until - interval '30 days') AS before,
         percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM gap) / 86400)
             FILTER (WHERE in_window AND gap IS NOT NULL) AS median_gap_days
  FROM inbound GROUP BY account_id),
conversation AS (
  SELECT m.account_id, e.contact_id, e.occurred_at, e.direction,
         max(CASE WHEN e.direction = 'out' THEN e.occurred_at END) OVER (
             w ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS last_out,
         min(CASE WHEN e.direction = 'out' THEN e.occurred_at END) OVER (
             w ROWS BETWEEN 1 FOLLOWING AND UNBOUNDED FOLLOWING) AS next_out
  FROM timeline_event e JOIN key_members m ON m.id = e.contact_id
  WHERE e.channel IN ('email', 'sms') AND e.direction IN ('in', 'out')
    AND e.occurred_at >= :until - interval '90 days' AND e.occurred_at <= :until
  WINDOW w AS (PARTITION BY e.contact_id ORDER BY e.occurred_at, e.id)),
runs AS (  -- each run of their messages since our last answer: when it began, when we answered it
  SELECT account_id, min(occurred_at) AS asked, min(next_out) AS answered FROM conversation
  WHERE direction = 'in' GROUP BY account_id, contact_id, last_out),
replies AS (
  SELECT account_id, percentile_cont(0.5) WITHIN GROUP (ORDER BY
             CASE WHEN answered IS NOT NULL THEN extract(epoch FROM answered - asked) / 3600
                  WHEN :until - asked > interval '72 hours' THEN 'Infinity'::float8
                  ELSE extract(epoch FROM :until - asked) / 3600 END) AS median_reply_hours
  FROM runs GROUP BY account_id),
surveys AS (
  SELECT account_id, count(*) AS scores, avg(score) AS mean_score, max(score) FILTER (WHERE nth = 1) AS last_score
  FROM (SELECT m.account_id, coalesce((e.data ->> 'nps')::numeric / 10, ((e.data ->> 'csat')::numeric - 1) / 4) AS score,
               row_number() OVER (PARTITION BY m.account_id ORDER BY e.occurred_at DESC, e.id DESC) AS nth
        FROM timeline_event e JOIN key_members m ON m.id = e.contact_id
        WHERE e.kind IN ('survey.answered', 'survey.response', 'survey.completed') AND e.occurred_at <= :until) AS s
  WHERE nth <= 10 GROUP BY account_id),
key_orders AS (
  SELECT m.account_id,
         count(*) FILTER (WHERE e.occurred_at >= :until - interval '90 days') AS recent,
         sum((e.data -> 'order' ->> 'amount')::numeric) FILTER (WHERE e.occurred_at >= :until - interval '90 days') AS recent_value,
         count(*) FILTER (WHERE e.occurred_at < :until - interval '90 days') AS before,
         sum((e.data -> 'order' ->> 'amount')::numeric) FILTER (WHERE e.occurred_at < :until - interval '90 days') AS before_value
  FROM timeline_event e JOIN key_members m ON m.id = e.contact_id
  WHERE e.channel = 'commerce' AND e.kind = 'order.completed'
    AND e.occurred_at >= :until - interval '455 days' AND e.occurred_at <= :until
  GROUP BY m.account_id),
detractors AS (
  SELECT m.account_id, count(*) AS n FROM task t JOIN key_members m ON m.id = t.contact_id
  JOIN timeline_event e ON e.id = t.source_event_id
  WHERE t.status = 'open' AND e.kind IN ('survey.answered', 'survey.response', 'survey.completed')
  GROUP BY m.account_id)
SELECT (SELECT count(*) + sum(calls) FROM ev), (SELECT sum(revenue) FROM orders), (SELECT sum(n) FROM tasks),
       (SELECT sum(n) FROM sends), (SELECT sum(median_gap_days) FROM rhythm),
       (SELECT count(median_reply_hours) FROM replies), (SELECT sum(last_score) FROM surveys),
       (SELECT sum(recent_value) FROM key_orders), (SELECT sum(n) FROM detractors)
"""


def _rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _runtime(url: str, data_dir: Path) -> Any:
    from hub.runtime import Hub
    from hub.settings import load_settings
    from hub.triggers import TriggerRegistry

    settings = load_settings(database_url=url, data_dir=data_dir, secret_key="bench-" + "k" * 40,
                             embedded_worker=False, live_backend="memory")
    return Hub(settings, triggers=TriggerRegistry())


def _fill(hub: Any, *, contacts: int, accounts: int, events: int, big_contacts: int, big_events: int) -> int:
    """The data set, written server-side; the big account's id."""
    from hub.auth import create_user
    from hub.models import Role

    with hub.session() as s, s.begin():
        agent = create_user(s, email="kam@bench.example", password=PASSWORD, role=Role.AGENT,
                            display_name="Bench KAM", locale="ru").id
    with hub.db.engine.begin() as conn:
        conn.execute(text(
            "INSERT INTO account (name, search_name, kind, attributes, is_key, owner_id, created_at, updated_at) "
            "SELECT 'Компания ' || g, 'компания ' || g, 'company', '{}', g % 5 = 0, :agent, now(), now() "
            "FROM generate_series(1, :n) AS g"), {"n": accounts + 1, "agent": agent})
        first_account = conn.execute(text("SELECT min(id) FROM account")).scalar_one()
        big = first_account + accounts  # the last one: the account page's
        conn.execute(text("UPDATE account SET is_key = true, name = 'Большая компания', "
                          "search_name = 'большая компания' WHERE id = :big"), {"big": big})
        conn.execute(text(
            "INSERT INTO contact (display_name, search_name, attributes, tags, lifecycle_stage, account_id, "
            "created_at, updated_at) SELECT 'Контакт ' || g, 'контакт ' || g, '{}', '[]', 'customer', "
            "CASE WHEN g > :contacts THEN :big ELSE :first + (g % :accounts) END, now(), now() "
            "FROM generate_series(1, :total) AS g"),
            {"contacts": contacts, "accounts": accounts, "first": first_account, "big": big,
             "total": contacts + big_contacts})
        first_contact = conn.execute(text("SELECT min(id) FROM contact")).scalar_one()
        conn.execute(text(FILL_EVENTS), {"first_contact": first_contact, "contacts": contacts, "events": events,
                                         "prefix": "bench:", "agent": agent})
        conn.execute(text(FILL_EVENTS), {"first_contact": first_contact + contacts, "contacts": big_contacts,
                                         "events": big_events, "prefix": "big:", "agent": agent})
        conn.execute(text(
            "INSERT INTO task (contact_id, title, status, created_by, created_at) "
            "SELECT :first + (g * 13 % :contacts), 'Перезвонить', CASE WHEN g % 3 = 0 THEN 'open' ELSE 'done' END, "
            "'bench', now() - make_interval(secs => g * 631 % 31536000) FROM generate_series(1, :n) AS g"),
            {"first": first_contact, "contacts": contacts, "n": contacts // 5})
    with hub.db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE"))
    return big


def _timed(fn: Any) -> tuple[float, Any]:
    started = time.perf_counter()
    value = fn()
    return time.perf_counter() - started, value


def _pages(hub: Any, big: int, samples: int) -> dict[str, list[float]]:
    from fastapi.testclient import TestClient

    from hub.app import create_app

    client = TestClient(create_app(hub, check_schema=False, start_worker=False), base_url="http://bench")
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").text).group(1)  # type: ignore[union-attr]
    answer = client.post("/login", data={"email": "kam@bench.example", "password": PASSWORD, "csrf_token": token},
                         headers={"Origin": "http://bench"}, follow_redirects=False)
    assert answer.status_code == 303, answer.text
    reads = {"key-accounts page (/key-accounts)": ("/key-accounts", {}),
             "account page, big account": (f"/accounts/{big}", {}),
             "its temperature panel": (f"/key-accounts/accounts/{big}/temperature", {"HX-Request": "true"}),
             "its profitability panel": (f"/key-accounts/accounts/{big}/profit", {"HX-Request": "true"})}
    timings: dict[str, list[float]] = {name: [] for name in reads}
    for round_ in range(samples + 1):
        for name, (path, headers) in reads.items():
            started = time.perf_counter()
            answer = client.get(path, headers=headers)
            elapsed = (time.perf_counter() - started) * 1000
            assert answer.status_code == 200, (path, answer.status_code)
            if round_:  # the first round warms the caches
                timings[name].append(elapsed)
    return timings


def _plan(hub: Any, big: int) -> list[str]:
    """EXPLAIN ANALYZE of the big account's first timeline page as the account page reads it
    (`hub.timeline.timeline_page` over its members): the plan nodes, one line each."""
    import psycopg

    from hub.accounts import member_ids
    from hub.timeline import _merged_page

    with hub.session(read_only=True) as session:
        stmt = _merged_page(session, member_ids(session, account_id=big))
        compiled = stmt.compile(dialect=session.get_bind().dialect)
        params = {**compiled.params, "limit": 51}
        raw = session.connection().connection.dbapi_connection
        sql = psycopg.ClientCursor(raw).mogrify(str(compiled), params)  # type: ignore[arg-type]
        lines = [row[0] for row in session.connection().exec_driver_sql("EXPLAIN ANALYZE " + sql)]
    return [line.strip().lstrip("-> ").split("  (")[0] for line in lines if "Scan" in line or "Sort" in line
            or "Limit" in line or "Merge" in line or "Loop" in line] + [line.strip() for line in lines if "Execution" in line]


def _p(values: list[float], q: int) -> float:
    return statistics.quantiles(sorted(values), n=100, method="inclusive")[q - 1] if len(values) > 1 else values[0]


@app.command()
def main(
    url: Annotated[str, typer.Option(help="A PostgreSQL URL; the database is created and dropped")] = DEFAULT_PG,
    contacts: Annotated[int, typer.Option(help="Contacts in accounts")] = 100_000,
    accounts: Annotated[int, typer.Option(help="Accounts (every fifth is key)")] = 20_000,
    events: Annotated[int, typer.Option(help="Timeline events over the past year")] = 2_000_000,
    big_contacts: Annotated[int, typer.Option(help="Contacts of the account whose page is timed")] = 50,
    big_events: Annotated[int, typer.Option(help="Events of that account")] = 100_000,
    samples: Annotated[int, typer.Option(help="Timed requests per page")] = 20,
    record: Annotated[bool, typer.Option(help="Write the figures into docs/benchmarks.md")] = False,
    note: Annotated[str, typer.Option(help="A line recorded above the figures (the run's conditions)")] = "",
) -> None:
    from datetime import timedelta

    from hub import clock
    from keyaccounts.batch import JOB_WORK_MEM
    from keyaccounts.extension import KeyAccountsSettings
    from keyaccounts.figures import refresh_figures
    from keyaccounts.watch import run

    fresh_database(url)
    tmp = tempfile.TemporaryDirectory()
    hub = _runtime(url, Path(tmp.name))
    try:
        typer.echo(f"filling: {contacts:,} contacts in {accounts:,} accounts, {events:,} events …")
        fill_s, big = _timed(lambda: _fill(hub, contacts=contacts, accounts=accounts, events=events,
                                            big_contacts=big_contacts, big_events=big_events))
        settings = KeyAccountsSettings()
        until = clock.now()
        since = until - timedelta(days=settings.period_days)
        with hub.db.engine.connect() as conn:
            # The sort memory the recompute's transactions take (keyaccounts.batch): the same for both.
            conn.execute(text(f"SET work_mem = '{JOB_WORK_MEM}'"))
            conn.execute(text(BASELINE), {"since": since, "until": until}).one()  # warm the cache alike
            baseline_s, _ = _timed(lambda: conn.execute(text(BASELINE), {"since": since, "until": until}).one())
            counts_s, _ = _timed(lambda: conn.execute(text(BASELINE_COUNTS), {"since": since, "until": until}).one())
        # The alerts write in their owner's language: load the catalogs before timing, as the worker
        # that runs the job has (a one-off of ~0.2–0.6 s per process, not a cost of the recompute).
        from hub.web.i18n import package_translations

        for locale in {"ru", hub.settings.default_locale}:
            package_translations(locale, "keyaccounts")
        idle = _rss_mb()
        profit_s, written = _timed(lambda: refresh_figures(hub, rates=settings.rates(), period_days=settings.period_days,
                                                          key_share=settings.key_share))
        temperature_s, result = _timed(lambda: run(hub, thresholds=settings.thresholds()))
        above_idle = max(0.0, _peak_mb() - idle)
        pages = _pages(hub, big, samples)
        plan = _plan(hub, big)
        load = os.getloadavg()[0]
    finally:
        hub.close()
        drop_database(url)
        tmp.cleanup()
    ratio = (profit_s + temperature_s) / baseline_s
    rows = [f"| data set | {contacts:,} contacts in {accounts:,} accounts ({accounts // 5:,} key), "
            f"{events:,} events; + 1 account of {big_contacts} contacts with {big_events:,} events |",
            f"| fill (server-side) | {fill_s:.1f} s |",
            f"| baseline: one SQL statement computing the same inputs | {baseline_s:.2f} s |",
            f"| (the previous rounds' statement, counts only: not like with like) | {counts_s:.2f} s |",
            f"| profit of every account, bands written ({written:,} accounts) | {profit_s:.2f} s |",
            f"| temperature of every key account ({result.scored:,}; {len(result.opened):,} alerts opened) | "
            f"{temperature_s:.2f} s |",
            f"| recompute / baseline | {ratio:.2f}× |",
            f"| peak memory above the RSS before the recompute | {above_idle:.0f} MB |"]
    rows += [f"| {name} | p50 {statistics.median(v):.1f} ms, p95 {_p(v, 95):.1f} ms |" for name, v in pages.items()]
    rows.append(f"| account timeline read (EXPLAIN ANALYZE) | {'; '.join(plan)} |")
    account_p95 = _p(pages["account page, big account"], 95)
    verdicts = [f"| recompute within {GOAL_RATIO:.0f}× the baseline | {ratio:.2f}× | "
                f"{'PASS' if ratio <= GOAL_RATIO else '**MISS**'} |",
                f"| memory ≤ {GOAL_MB:.0f} MB above idle | {above_idle:.0f} MB | "
                f"{'PASS' if above_idle <= GOAL_MB else '**MISS**'} |",
                f"| account page p95 < {GOAL_P95_MS:.0f} ms | {account_p95:.1f} ms | "
                f"{'PASS' if account_p95 < GOAL_P95_MS else '**MISS**'} |"]
    command = "python -m bench.accounts " + shlex.join(sys.argv[1:])
    section = "\n".join([
        SECTION, "", f"Recorded {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC with:", "", "```", command, "```", "",
        *([f"- **{note}**"] if note else []),
        f"- Machine: {os.cpu_count()} CPUs, Python {platform.python_version()}, PostgreSQL; 1-minute load average "
        f"{load:.2f} at the end. Pages: {samples} requests each inside the app (ASGI, no network), signed in.",
        "", "| Figure | Value |", "|---|---|", *rows, "", "| Goal | Measured | Verdict |", "|---|---|---|",
        *verdicts, ""])
    typer.echo(section)
    if record:
        record_section(section, heading=SECTION)


if __name__ == "__main__":
    app()
