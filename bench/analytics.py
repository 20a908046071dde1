"""Analytics benchmark: the RFM grid and the cohort table rendered from the precomputed tables, and a
full RFM recompute against one hand-written SQL query computing the same quintiles, in the same run.

    .venv/bin/python -m bench.analytics --record                                   # 100k contacts, 2M events
    .venv/bin/python -m bench.analytics --contacts 10000 --events 200000 --record   # reduced scale

One run, on a PostgreSQL database of its own (dropped and created again, migrated):

1. fill: contacts (every fifth in one of contacts/50 accounts) and timeline events made by the
   database itself (`generate_series`): a quarter of them `order.completed` in RUB, shaped as
   hub.events writes them, with a skew (a few customers order a lot), spread over two years; the
   rest email, SMS, calls and notes, in and out. ANALYZE afterwards;
2. bare: the hand-written query (docs/analytics.md, "RFM") that computes every contact's R, F and M
   quintiles, run and fetched in full — the floor any recompute stands on;
3. hub: `analytics.rfm.recompute` — contacts and accounts, deleted and inserted again in one
   transaction, as the scheduler's job runs it; then the rest of the job (cohorts, months, channel
   volumes and the value model) timed for the record;
4. reads: `--samples` GETs of /analytics (the RFM grid) and /analytics/retention (the cohort
   table and its charts) through the whole app, signed in as a marketer; p50/p95 against the bare
   grouped query over the scores table.

Goals: each page's p95 < 500 ms; the recompute ≤ 3× the bare query. --record writes the "Analytics"
section of docs/benchmarks.md.
"""

from __future__ import annotations

import platform
import re
import statistics
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Annotated

import typer
from sqlalchemy import text

from bench.records import record_section
from bench.store import drop_database, fresh_database

SECTION = "## Analytics"
DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/hub_bench_analytics"
PASSWORD = "bench password 1234"
GOAL_P95_MS = 500.0
GOAL_RATIO = 3.0
# The hand-written RFM query: docs/analytics.md shows the same text.
BARE_RFM = """
WITH reports AS (
  SELECT c.id AS owner_id, e.occurred_at, (e.data->'order'->>'amount')::numeric AS amount,
         row_number() OVER (PARTITION BY e.contact_id, e.data->>'source', e.data->'order'->>'order_id'
                            ORDER BY e.occurred_at DESC, e.id DESC) AS nth
  FROM timeline_event e JOIN contact c ON c.id = e.contact_id
  WHERE e.channel = 'commerce' AND e.kind = 'order.completed' AND e.data->'order'->>'currency' = :currency
    AND c.merged_into IS NULL),
moves AS (
  SELECT owner_id, occurred_at, amount, 1 AS is_order FROM reports WHERE nth = 1
  UNION ALL
  SELECT c.id, e.occurred_at, -(e.data->'order'->>'amount')::numeric, 0
  FROM timeline_event e JOIN contact c ON c.id = e.contact_id
  WHERE e.channel = 'commerce' AND e.kind = 'order.refunded' AND e.data->'order'->>'currency' = :currency
    AND c.merged_into IS NULL),
owners AS (
  SELECT owner_id, max(occurred_at) FILTER (WHERE is_order = 1) AS last_order_at,
         sum(is_order) AS orders, sum(amount) AS revenue
  FROM moves GROUP BY owner_id HAVING sum(is_order) > 0)
SELECT owner_id,
       1 + 5 * (rank() OVER (ORDER BY last_order_at) - 1) / count(*) OVER () AS r,
       1 + 5 * (rank() OVER (ORDER BY orders) - 1) / count(*) OVER () AS f,
       1 + 5 * (rank() OVER (ORDER BY revenue) - 1) / count(*) OVER () AS m
FROM owners
"""
BARE_GRID = "SELECT cell, count(*), sum(revenue) FROM analytics_rfm_score WHERE owner_kind = 'contact' GROUP BY cell"

app = typer.Typer(add_completion=False, pretty_exceptions_show_locals=False)


def _fill(engine, contacts: int, events: int) -> dict[str, int]:  # type: ignore[no-untyped-def]
    orders = events // 4
    accounts = max(1, contacts // 50)
    with engine.begin() as conn:
        conn.execute(text("""
            INSERT INTO account (name, search_name, kind, attributes, is_key, created_at, updated_at)
            SELECT 'Account ' || g, 'account ' || g, 'company', '{}', false, now(), now()
            FROM generate_series(1, :n) g"""), {"n": accounts})
        first_account = conn.scalar(text("SELECT min(id) FROM account"))
        conn.execute(text("""
            INSERT INTO contact (display_name, search_name, locale, attributes, tags, lifecycle_stage, created_at,
                                 updated_at, account_id)
            SELECT 'Customer ' || g, 'customer ' || g, 'ru', '{}', '[]', 'customer',
                   now() - random() * interval '730 days', now(),
                   CASE WHEN g % 5 = 0 THEN :a0 + (g / 5) % :na END
            FROM generate_series(1, :n) g"""), {"n": contacts, "a0": first_account, "na": accounts})
        first = conn.scalar(text("SELECT min(id) FROM contact"))
        # Orders: contact ids skewed toward the low ones (random()^2), two years back, in RUB.
        conn.execute(text("""
            INSERT INTO timeline_event (contact_id, occurred_at, channel, direction, kind, subject, data, external_id,
                                        created_at)
            SELECT :c0 + floor(:n * random() ^ 2)::int, now() - random() * interval '730 days', 'commerce', 'in',
                   'order.completed', 'Order ' || g || ' completed',
                   jsonb_build_object('source', 'bench', 'event_id', g::text,
                                      'order', jsonb_build_object('order_id', 'B' || g,
                                                                  'amount', round((200 + random() * 9800)::numeric, 2)::text,
                                                                  'currency', 'RUB', 'items', '[]'::jsonb)),
                   'bench:' || g, now()
            FROM generate_series(1, :orders) g"""), {"c0": first, "n": contacts, "orders": orders})
        conn.execute(text("""
            INSERT INTO timeline_event (contact_id, occurred_at, channel, direction, kind, subject, data, external_id,
                                        created_at, actor_user_id)
            SELECT :c0 + floor(:n * random())::int, now() - random() * interval '730 days',
                   (ARRAY['email', 'sms', 'phone', 'note'])[1 + g % 4],
                   (ARRAY['in', 'out', 'in', 'internal'])[1 + g % 4],
                   (ARRAY['message', 'message', 'call', 'note'])[1 + g % 4], 'Bench', '{}'::jsonb, 'other:' || g, now(),
                   NULL
            FROM generate_series(1, :rest) g"""), {"c0": first, "n": contacts, "rest": events - orders})
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("ANALYZE"))
    return {"contacts": contacts, "accounts": accounts, "orders": orders, "events": events}


def _runtime(database_url: str, data_dir: Path):  # type: ignore[no-untyped-def]
    from hub.runtime import Hub
    from hub.settings import load_settings
    from hub.triggers import TriggerRegistry

    settings = load_settings(database_url=database_url, data_dir=data_dir, secret_key="bench-" + "k" * 40,
                             embedded_worker=False, live_backend="memory")
    return Hub(settings, triggers=TriggerRegistry())


def _timed(fn) -> float:  # type: ignore[no-untyped-def]
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


@app.command()
def main(contacts: Annotated[int, typer.Option(help="Contacts to create")] = 100_000,
         events: Annotated[int, typer.Option(help="Timeline events (a quarter of them orders)")] = 2_000_000,
         samples: Annotated[int, typer.Option(help="GETs per page")] = 30,
         rounds: Annotated[int, typer.Option(help="Recompute / bare query rounds (the median counts)")] = 3,
         database_url: Annotated[str, typer.Option("--database-url")] = DEFAULT_PG,
         label: Annotated[str, typer.Option(help="How the run is labelled in docs/benchmarks.md")] = "",
         record: Annotated[bool, typer.Option("--record", help="Write the figures into docs/benchmarks.md.")] = False,
         ) -> None:
    from fastapi.testclient import TestClient

    from analytics import rfm, value
    from analytics.compute import Options, _channels, _cohorts, _months
    from hub import clock
    from hub.app import create_app
    from hub.auth import create_user
    from hub.models import Role

    fresh_database(database_url)
    data_dir = Path(tempfile.mkdtemp(prefix="bench-analytics-"))
    runtime = _runtime(database_url, data_dir)
    try:
        started = time.perf_counter()
        sizes = _fill(runtime.db.engine, contacts, events)
        fill_s = time.perf_counter() - started
        print(f"filled {sizes} in {fill_s:.1f} s")
        options = Options()
        bare, hub_rfm = [], []
        for _ in range(rounds):
            with runtime.db.engine.connect() as conn:
                bare.append(_timed(lambda: conn.execute(text(BARE_RFM), {"currency": "RUB"}).all()))  # noqa: B023
            with runtime.session() as session, session.begin():
                hub_rfm.append(_timed(lambda: rfm.recompute(session, currency="RUB", now=clock.now())))  # noqa: B023
        bare_s, hub_s = statistics.median(bare), statistics.median(hub_rfm)
        rest: dict[str, float] = {}
        now = clock.now()
        with runtime.session() as session, session.begin():
            rest["cohort table"] = _timed(lambda: _cohorts(session, "RUB"))
            rest["monthly movements"] = _timed(lambda: _months(session, "RUB", options.churn_days, now))
            rest["channel volumes"] = _timed(lambda: _channels(session, options.activity_months, now))
        with runtime.session() as session, session.begin():
            rest["value model (fit, hold-out, write)"] = _timed(lambda: value.refresh(session, options=options, now=now))
        with runtime.session() as session, session.begin():
            create_user(session, email="marketer@bench.example", password=PASSWORD, role=Role.MARKETER,
                        display_name="Bench Marketer", locale="ru")
        client = TestClient(create_app(runtime, check_schema=False, start_worker=False), base_url="http://bench")
        token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").text).group(1)  # type: ignore[union-attr]
        answer = client.post("/login", data={"email": "marketer@bench.example", "password": PASSWORD,
                                             "csrf_token": token}, headers={"Origin": "http://bench"},
                             follow_redirects=False)
        assert answer.status_code == 303, answer.text
        pages = {"RFM grid (/analytics)": "/analytics", "cohort table (/analytics/retention)": "/analytics/retention"}
        timings: dict[str, list[float]] = {name: [] for name in pages}
        grid_bare: list[float] = []
        for name, path in pages.items():
            assert client.get(path).status_code == 200  # warm-up
            for _ in range(samples):
                started = time.perf_counter()
                page = client.get(path)
                timings[name].append(time.perf_counter() - started)
                assert page.status_code == 200 and "<svg" in page.text
        with runtime.db.engine.connect() as conn:
            for _ in range(samples):
                grid_bare.append(_timed(lambda: conn.execute(text(BARE_GRID)).all()))  # noqa: B023
        with runtime.session() as session:
            scored = session.scalar(text("SELECT count(*) FROM analytics_rfm_score WHERE owner_kind = 'contact'"))
            holdout = session.scalar(text("SELECT details->'holdout' FROM analytics_run WHERE kind = 'value' "
                                          "ORDER BY id DESC LIMIT 1"))
    finally:
        runtime.db.engine.dispose()
        drop_database(database_url)
    ratio = hub_s / bare_s
    rows = [(name, _percentile(v, 0.5) * 1000, _percentile(v, 0.95) * 1000) for name, v in timings.items()]
    bare_p95 = _percentile(grid_bare, 0.95) * 1000
    ok = ratio <= GOAL_RATIO and all(p95 < GOAL_P95_MS for _, _, p95 in rows)
    lines = [
        f"- data: {sizes['contacts']:,} contacts ({sizes['accounts']:,} accounts), {sizes['events']:,} timeline "
        f"events of which {sizes['orders']:,} orders; {scored:,} contacts scored; filled in {fill_s:.0f} s",
        f"- full RFM recompute (contacts and accounts, delete + INSERT…SELECT): median {hub_s * 1000:.0f} ms; "
        f"the hand-written quintile query alone: {bare_s * 1000:.0f} ms; **ratio {ratio:.2f}×** (goal ≤ {GOAL_RATIO:.0f}×)",
        *(f"- {name}: p50 {p50:.0f} ms, **p95 {p95:.0f} ms** (goal < {GOAL_P95_MS:.0f} ms)" for name, p50, p95 in rows),
        f"- bare grouped read of the scores table: p95 {bare_p95:.1f} ms",
        "- the rest of the scheduler's job: " + ", ".join(f"{k} {v * 1000:.0f} ms" for k, v in rest.items()),
        ("- value model hold-out on this (uniformly random, so memoryless) data: " + (
            f"{holdout['customers']:,.0f} customers, orders predicted {holdout['predicted_orders']:,.0f} vs "
            f"{holdout['actual_orders']:,.0f} actual (error {holdout['orders_error']:.1%}; naive past-rate forecast "
            f"{holdout['baseline_error']:.1%}), revenue error {holdout['revenue_error']:.1%}" if holdout else "not run")),
    ]
    for line in lines:
        print(line)
    print("goals met" if ok else "GOALS NOT MET")
    if record:
        heading = SECTION
        when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        section = (f"{heading}\n\n`python -m bench.analytics --contacts {contacts} --events {events}` on PostgreSQL, "
                   f"{when}, {platform.processor() or platform.machine()}, Python {platform.python_version()}"
                   f"{' — ' + label if label else ''}.\n\n" + "\n".join(lines)
                   + f"\n- goals {'met' if ok else 'NOT met'}\n")
        record_section(section, heading=heading)


if __name__ == "__main__":
    app()
