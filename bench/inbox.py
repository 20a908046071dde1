"""Inbox benchmark: the agents' list pages on a large PostgreSQL store.

Fills a migrated database of its own with set-based SQL (generate_series): `--contacts` contacts,
`--events` timeline events, `--open` unresolved conversations (a third the benchmark agent's, a
third unassigned, the rest spread over 40 colleagues, with due times spread over a week) and as many
resolved ones. Then it times, interleaved in one process so all feel the same machine load:
- the bare baseline: the list's SQL sent raw through psycopg (`… ORDER BY due_at, id LIMIT 51`);
- the hub's read path (inbox.queries.page: the same query through SQLAlchemy, plus names);
- the whole page, signed in, inside the app (ASGI, no network): GET /inbox?view=mine and
  ?view=unassigned, session, query, names, Jinja2 render.
Ratios are against the baseline. `--record` writes the "Inbox" section of docs/benchmarks.md.
Full scale is the defaults (100k contacts, 2M events, 50k open); `--scale 0.1` runs a tenth.
"""

from __future__ import annotations

import os
import platform
import random
import re
import shlex
import statistics
import sys
import time
from datetime import datetime, timezone
from typing import Annotated

import psycopg
import typer

from bench.records import record_section
from bench.store import fresh_database

SECTION = "## Inbox"
DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/hub_bench_inbox"
PASSWORD = "benchmark password 1"
GOAL_P95_MS = 100.0
COLLEAGUES = 40
app = typer.Typer(add_completion=False, pretty_exceptions_show_locals=False)


def fill(url: str, *, contacts: int, events: int, open_count: int) -> None:
    """Users, contacts, events and conversations through set-based INSERTs (minutes at full scale)."""
    from hub.settings import load_settings

    dsn = load_settings(database_url=url).sqlalchemy_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("""INSERT INTO user_account (email, display_name, role, password_hash, is_active, session_version, created_at)
                        SELECT 'colleague' || g || '@bench.example', 'Colleague ' || g, 'agent', '', true, 1, now()
                        FROM generate_series(1, %s) g""", (COLLEAGUES,))
        conn.execute("""INSERT INTO inbox_agent (user_id, presence, open_count, updated_at)
                        SELECT id, 'online', 0, now() FROM user_account""")
        conn.execute("""INSERT INTO contact (display_name, search_name, attributes, tags, lifecycle_stage, created_at, updated_at)
                        SELECT 'Клиент ' || g, 'клиент ' || g, '{}', '[]', 'customer', now(), now()
                        FROM generate_series(1, %s) g""", (contacts,))
        conn.execute("""INSERT INTO timeline_event (contact_id, occurred_at, channel, direction, kind, text, data,
                                                    external_id, created_at)
                        SELECT 1 + (g %% %s), now() - (g || ' seconds')::interval,
                               (ARRAY['email','sms','phone','note'])[1 + g %% 4], (ARRAY['in','out'])[1 + g %% 2],
                               'message', 'Курьер позвонит накануне доставки и согласует удобное время.', '{}',
                               'bench:' || g, now()
                        FROM generate_series(1, %s) g""", (contacts, events))
        # Unresolved conversations: rows 1..open, every third the agent's (user 1: added below, so
        # "me" is the first colleague), every third unassigned; as many resolved ones beside them.
        conn.execute("""INSERT INTO inbox_conversation (contact_id, channel, open_key, status, priority, assignee_id,
                            key_account, subject, opened_at, last_inbound_at, due_at, first_response_due_at,
                            resolution_due_at, check_at, policy, breached, reopened, version, updated_at)
                        SELECT 1 + (g %% %(contacts)s), (ARRAY['email','sms'])[1 + (g / %(contacts)s) %% 2],
                               CASE WHEN g <= %(open)s AND g <= %(contacts)s * 2 THEN (ARRAY['email','sms'])[1 + (g / %(contacts)s) %% 2] END,
                               CASE WHEN g <= %(open)s AND g <= %(contacts)s * 2 THEN 'open' ELSE 'resolved' END,
                               (ARRAY['low','normal','high','urgent'])[1 + g %% 4],
                               CASE WHEN g %% 3 = 0 THEN 1 WHEN g %% 3 = 1 THEN NULL ELSE 2 + g %% %(colleagues)s END,
                               false, 'Вопрос по заказу ' || g, now() - (g || ' minutes')::interval, now(),
                               now() + ((g * 7919) %% 10080 || ' minutes')::interval,
                               now() + ((g * 7919) %% 10080 || ' minutes')::interval,
                               now() + interval '8 hours', now() + ((g * 7919) %% 10080 || ' minutes')::interval,
                               'standard', false, 0, 1, now()
                        FROM generate_series(1, %(total)s) g""",
                     {"contacts": contacts, "open": open_count, "total": open_count * 2, "colleagues": COLLEAGUES - 1})
        conn.execute("""UPDATE inbox_agent a SET open_count = c.n FROM (SELECT assignee_id, count(*) n
                        FROM inbox_conversation WHERE status <> 'resolved' AND assignee_id IS NOT NULL
                        GROUP BY assignee_id) c WHERE a.user_id = c.assignee_id""")
        for table in ("user_account", "contact", "timeline_event", "inbox_conversation", "inbox_agent"):
            conn.execute(f"ANALYZE {table}")


def _pct(values: list[float]) -> tuple[float, float]:
    q = statistics.quantiles(sorted(values), n=100, method="inclusive")
    return statistics.median(values), q[94]


@app.command()
def main(
    scale: Annotated[float, typer.Option(min=0.001, max=1, help="Share of the full size (100k/2M/50k).")] = 1.0,
    samples: Annotated[int, typer.Option(min=10, max=5000)] = 200,
    database_url: Annotated[str, typer.Option(help="PostgreSQL database (dropped and created).")] = DEFAULT_PG,
    record_figures: Annotated[bool, typer.Option("--record", help="Write the figures into docs/benchmarks.md.")] = False,
) -> None:
    from fastapi.testclient import TestClient
    from sqlalchemy import select

    from hub import clock
    from hub.app import create_app
    from hub.auth import hash_password
    from hub.models import User
    from hub.runtime import Hub
    from hub.settings import load_settings
    from inbox import queries

    contacts, events, open_count = int(100_000 * scale), int(2_000_000 * scale), int(50_000 * scale)
    started = time.perf_counter()
    fresh_database(database_url)
    fill(database_url, contacts=contacts, events=events, open_count=open_count)
    filled = time.perf_counter() - started
    settings = load_settings(database_url=database_url, embedded_worker=False, live_backend="memory",
                             secret_key="bench-secret-key-" + "x" * 32)
    runtime = Hub(settings)
    with runtime.session() as s, s.begin():
        me = s.scalars(select(User).order_by(User.id).limit(1)).one()
        me.email, me.password_hash = "agent@bench.example", hash_password(PASSWORD)
    client = TestClient(create_app(runtime, check_schema=False, start_worker=False), base_url="http://bench")
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").text).group(1)  # type: ignore[union-attr]
    assert client.post("/login", data={"email": "agent@bench.example", "password": PASSWORD, "csrf_token": token},
                       headers={"Origin": "http://bench"}, follow_redirects=False).status_code == 303
    dsn = settings.sqlalchemy_url.replace("postgresql+psycopg://", "postgresql://")
    raw = psycopg.connect(dsn, autocommit=True)
    raw_sql = {"mine": "SELECT * FROM inbox_conversation WHERE status = 'open' AND assignee_id = %s ORDER BY due_at, id LIMIT 51",
               "unassigned": "SELECT * FROM inbox_conversation WHERE status = 'open' AND assignee_id IS NULL ORDER BY due_at, id LIMIT 51"}
    plans = {view: "\n".join(r[0] for r in raw.execute("EXPLAIN " + sql.replace("%s", str(me.id))).fetchall())
             for view, sql in raw_sql.items()}

    def run_raw(view: str) -> None:
        rows = raw.execute(raw_sql[view], (me.id,) if view == "mine" else None).fetchall()
        assert len(rows) == 51

    def run_query(view: str) -> None:
        with runtime.session(read_only=True) as db:
            page = queries.page(db, queries.Filters(view=view), user_id=me.id, now=clock.now(), warn_minutes=15)  # type: ignore[arg-type]
            assert len(page.items) == 50 and page.next_cursor

    def run_page(view: str) -> None:
        answer = client.get(f"/inbox?view={view}")
        assert answer.status_code == 200 and answer.text.count('class="conv-row') == 50

    kinds = {"raw SQL (baseline)": run_raw, "hub query (inbox.queries.page)": run_query, "whole page GET /inbox": run_page}
    timings: dict[tuple[str, str], list[float]] = {(k, v): [] for k in kinds for v in ("mine", "unassigned")}
    order = [key for key in timings for _ in range(samples + 10)]
    random.Random(3).shuffle(order)
    seen = dict.fromkeys(timings, 0)
    for key in order:
        t0 = time.perf_counter()
        kinds[key[0]](key[1])
        elapsed = (time.perf_counter() - t0) * 1000
        seen[key] += 1
        if seen[key] > 10:
            timings[key].append(elapsed)
    raw.close()
    load = os.getloadavg()[0]
    lines = [SECTION, "", f"Recorded {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC with:", "", "```",
             "python -m bench.inbox " + " ".join(shlex.quote(a) for a in sys.argv[1:]), "```", ""]
    label = "full scale" if scale >= 1 else "REDUCED SCALE, loaded machine — full run pending"
    lines += [f"- **{label}**: {contacts:,} contacts, {events:,} events, {open_count:,} open conversations "
              f"(+{open_count:,} resolved); filled in {filled:.0f} s.",
              f"- Machine: {os.cpu_count()} CPUs shared with other work (1-minute load {load:.2f}), Python "
              f"{platform.python_version()}; {samples} samples per row after 10 warm-up, interleaved at random.", "",
              "| What | View | p50 ms | p95 ms | p95 / baseline |", "|---|---|---|---|---|"]
    base = {v: _pct(timings[("raw SQL (baseline)", v)])[1] for v in ("mine", "unassigned")}
    for (kind, view), values in timings.items():
        p50, p95 = _pct(values)
        lines.append(f"| {kind} | {view} | {p50:.1f} | {p95:.1f} | {p95 / base[view]:.1f}× |")
    lines += ["", "| Goal | Measured | Verdict |", "|---|---|---|"]
    for view in ("mine", "unassigned"):
        p95 = _pct(timings[("whole page GET /inbox", view)])[1]
        lines.append(f"| inbox page ({view}) p95 < {GOAL_P95_MS:.0f} ms | {p95:.1f} ms | "
                     f"{'PASS' if p95 < GOAL_P95_MS else 'FAIL'}{'' if scale >= 1 else ' (reduced scale)'} |")
    lines += ["", "Plans (EXPLAIN) of the baseline queries:", "", "```", plans["mine"], "", plans["unassigned"], "```", ""]
    section = "\n".join(lines) + "\n"
    print(section)
    if record_figures:
        record_section(section, heading=SECTION)
    runtime.db.dispose()


if __name__ == "__main__":
    app()
