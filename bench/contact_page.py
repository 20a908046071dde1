"""Contact page render benchmark: the server time of GET /contacts/{id} for a contact with 10k events.

Fills a store of its own through the hub's one write path (post_event) with a customer whose card is
complete (identities, tags, attributes, consent, orders, a survey answer, open tasks) and whose
timeline holds `--events` events across email, SMS, calls and notes, with threads and delivery
statuses. Then, signed in as an agent, it times the whole request inside the app (ASGI, no network):
session, card, first timeline page, filter facets, recent-contacts write and the Jinja2 render; and,
for comparison, the fragments the page loads next (an older timeline page, the screen pop).
Figures go to the "Contact page render" section of docs/benchmarks.md with --record.
"""

from __future__ import annotations

import os
import platform
import re
import shlex
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Annotated

import typer
from sqlalchemy import text
from sqlmodel import SQLModel

from bench.records import DOCS, record_section
from bench.store import fresh_database
from hub.web.timeline_view import FACET_WINDOW

SECTION = "## Contact page render"
DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/hub_bench_web"
GOAL_P95_MS = 150.0
# A short history beside the long one: the page's time should not depend on the history's length.
SMALL_EVENTS = 100
PASSWORD = "benchmark password 1"

app = typer.Typer(add_completion=False, pretty_exceptions_show_locals=False)


def _runtime(database_url: str, data_dir: Path):  # type: ignore[no-untyped-def]
    from hub.web import models as _web_models  # noqa: F401  (the workspace's tables)
    from hub.runtime import Hub
    from hub.settings import load_settings
    from hub.triggers import TriggerRegistry

    settings = load_settings(database_url=database_url, data_dir=data_dir, secret_key="bench-" + "k" * 40,
                             embedded_worker=False, live_backend="memory")
    runtime = Hub(settings, triggers=TriggerRegistry())
    SQLModel.metadata.create_all(runtime.db.engine)
    return runtime


def _agent(runtime) -> int:  # type: ignore[no-untyped-def]
    from hub.auth import create_user
    from hub.models import Role

    with runtime.session() as session, session.begin():
        return create_user(session, email="agent@bench.example", password=PASSWORD, role=Role.AGENT,
                           display_name="Bench Agent", locale="ru", time_zone="Europe/Moscow").id


def _fill(runtime, events: int, *, agent_id: int, n: int) -> int:  # type: ignore[no-untyped-def]
    """Contact number `n` with a complete card and `events` events; returns its id."""
    from hub.auth import SYSTEM
    from hub.contacts import IdentityIn, create_contact, record_consent
    from hub.events import BusinessEvent, record_business_event
    from hub.ingest import InboundEvent, post_event
    from hub.models import ConsentStatus, IdentityKind
    from hub.tasks import create_task

    now = datetime.now(timezone.utc)
    email = f"maria{n}@bench.example"
    with runtime.session() as session, session.begin():
        contact = create_contact(
            session, actor=SYSTEM, region="RU", display_name=f"Мария Соколова {n}", owner_id=agent_id,
            identities=[IdentityIn(kind=IdentityKind.EMAIL, value=email),
                        IdentityIn(kind=IdentityKind.PHONE, value=f"+7 916 555-12-{30 + n:02d}")],
            tags=["VIP", "Moscow"], attributes={"city": "Москва", "loyalty_card": "GOLD-1"},
        )
        cid = contact.id
        for channel, status in (("email", ConsentStatus.GRANTED), ("sms", ConsentStatus.WITHDRAWN)):
            record_consent(session, contact=contact, actor=SYSTEM, channel=channel, status=status, source="bench")
        create_task(session, actor=SYSTEM, title="Call back", due_at=now + timedelta(hours=2), assignee_id=agent_id,
                    contact_id=cid)
        post_event(session, event=InboundEvent(contact_id=cid, channel="surveys", kind="survey.answered",
                                               subject="Delivery NPS", data={"score": 9, "scale": 10},
                                               occurred_at=now - timedelta(days=1)))
    kinds = (("email", "email"), ("sms", "sms"), ("phone", "call.completed"), ("note", "note"))
    statuses = ("delivered", "read", "sent", "failed", None)
    batch = 1000
    for first in range(0, events, batch):
        with runtime.session() as session, session.begin():
            for i in range(first, min(first + batch, events)):
                channel, kind = kinds[i % len(kinds)]
                if i % 97 == 0:
                    record_business_event(session, actor=SYSTEM, event=BusinessEvent.model_validate({
                        "event_id": f"order-{cid}-{i}", "type": "order.completed", "source": "shop",
                        "occurred_at": (now - timedelta(minutes=3 * i + 1)).isoformat(),
                        "contact": {"email": email},
                        "order": {"order_id": f"A-{cid}-{i}", "amount": "1990.00", "currency": "RUB",
                                  "items": [{"name": "Coffee", "quantity": 1, "unit_price": "1990.00"}]}}))
                    continue
                outbound = i % 2 == 0
                post_event(session, event=InboundEvent(
                    contact_id=cid, channel=channel, kind=kind, direction="out" if outbound else "in",
                    external_id=f"bench:{cid}:{i}", occurred_at=now - timedelta(minutes=3 * i),
                    subject=f"Заказ A-{i // 10}: вопрос по доставке" if channel == "email" else None,
                    text=f"Сообщение {i}: курьер позвонит накануне доставки и согласует удобное время.",
                    html="<p>Здравствуйте!</p><p>Курьер позвонит накануне.</p>" if channel == "email" and not outbound
                    else None,
                    thread_key=f"{channel}:{cid}:thread-{i // 6}" if channel in ("email", "sms") else None,
                    status=statuses[i % len(statuses)] if outbound and channel in ("email", "sms") else None,
                ))
    return cid


def _percentiles(values: list[float]) -> tuple[float, float, float]:
    ordered = sorted(values)
    q = statistics.quantiles(ordered, n=100, method="inclusive")
    return statistics.median(ordered), q[94], q[98]


def _measure(runtime, cid: int, small_cid: int, small_events: int, samples: int,  # type: ignore[no-untyped-def]
             warmup: int) -> dict[str, list[float]]:
    import random

    from fastapi.testclient import TestClient

    from hub.app import create_app

    client = TestClient(create_app(runtime, check_schema=False, start_worker=False), base_url="http://bench")
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").text).group(1)  # type: ignore[union-attr]
    answer = client.post("/login", data={"email": "agent@bench.example", "password": PASSWORD, "csrf_token": token},
                         headers={"Origin": "http://bench"}, follow_redirects=False)
    assert answer.status_code == 303, answer.text
    page = client.get(f"/contacts/{cid}")
    assert page.status_code == 200 and page.text.count('class="event ') == 30, "the page did not render fully"
    cursor = re.search(r"cursor=([^&\"]+)", page.text).group(1)  # type: ignore[union-attr]
    reads = {
        "contact page, long history": f"/contacts/{cid}",
        f"contact page, {small_events:,} events": f"/contacts/{small_cid}",
        "older timeline page (fragment)": f"/contacts/{cid}/timeline?cursor={cursor}",
        "screen pop (fragment)": f"/pop/{cid}",
    }
    timings: dict[str, list[float]] = {name: [] for name in reads}
    order = [name for name in reads for _ in range(samples + warmup)]
    random.Random(7).shuffle(order)
    seen = dict.fromkeys(reads, 0)
    for name in order:
        headers = {} if name.startswith("contact page") else {"HX-Request": "true"}  # fragments as htmx asks
        started = time.perf_counter()
        answer = client.get(reads[name], headers=headers)
        elapsed = (time.perf_counter() - started) * 1000
        assert answer.status_code == 200
        seen[name] += 1
        if seen[name] > warmup:
            timings[name].append(elapsed)
    return timings


def _section(results: dict[str, dict[str, list[float]]], *, events: int, samples: int, warmup: int, command: str,
             load: tuple[float, float], versions: dict[str, str]) -> str:
    lines = [SECTION, "", f"Recorded {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC with:", "", "```", command, "```", ""]
    lines += [
        f"- Machine: {os.cpu_count()} CPUs, Python {platform.python_version()}, "
        + ", ".join(f"{k} {v}" for k, v in versions.items())
        + f"; 1-minute load average {load[0]:.2f} before measuring and {load[1]:.2f} after.",
        f"- Data set: one contact with {events:,} timeline events (email, SMS, calls, notes, orders; threads "
        "and delivery statuses), a full card (identities, tags, attributes, consent, orders, survey score, "
        "open tasks), filled through `post_event`; beside it a contact with the same card and "
        f"{SMALL_EVENTS:,} events.",
        f"- {samples} timed requests of each kind after {warmup} warm-up rounds, interleaved in shuffled order; "
        "time from request to complete response inside the app (ASGI in process, no network), signed in as "
        "an agent: session check, card, the first 30 events, filter facets, the recent-contacts write and "
        "the Jinja2 render.",
        "",
        "| Store | Request | p50 ms | p95 ms | p99 ms |",
        "|---|---|---|---|---|",
    ]
    verdicts = []
    for store, timings in results.items():
        for name, values in timings.items():
            p50, p95, p99 = _percentiles(values)
            lines.append(f"| {store} | {name} | {p50:.1f} | {p95:.1f} | {p99:.1f} |")
            if name == "contact page, long history":
                verdicts.append(f"| {store}: contact page p95 under {GOAL_P95_MS:.0f} ms | {p95:.1f} ms | "
                                f"{'PASS' if p95 < GOAL_P95_MS else '**MISS**'} |")
    lines += ["", "| Goal | Measured | Verdict |", "|---|---|---|", *verdicts, ""]
    lines.append(
        f"\"Long history\" is the contact with {events:,} events. The page reads one keyset page of the timeline "
        "whatever the history's length; the gap to the short history is what length still costs: the filter "
        f"facets read the newest {FACET_WINDOW:,} events, and the order totals (`hub.events.order_totals`) and, "
        "for a contact who never answered a survey, the last-score lookup read all of the contact's events "
        "through the (contact, time) index. An index on (contact_id, kind) would bound those two as well."
    )
    return "\n".join(lines) + "\n"


@app.command()
def main(
    events: Annotated[int, typer.Option(min=100, help="Timeline events of the contact.")] = 10_000,
    samples: Annotated[int, typer.Option(min=10, help="Timed requests of each kind.")] = 200,
    warmup: Annotated[int, typer.Option(min=0, help="Untimed rounds first.")] = 20,
    database_url: Annotated[str, typer.Option(help="PostgreSQL database to create (dropped first).")] = DEFAULT_PG,
    sqlite: Annotated[bool, typer.Option(help="Also measure on SQLite.")] = True,
    record_figures: Annotated[bool, typer.Option("--record", help="Write the figures into docs/benchmarks.md.")] = False,
) -> None:
    """Time the contact page of a contact with a long history, on PostgreSQL (and SQLite)."""
    load_before = os.getloadavg()[0]
    results: dict[str, dict[str, list[float]]] = {}
    versions: dict[str, str] = {}
    fresh_database(database_url)
    stores = [("PostgreSQL", database_url)]
    scratch = Path(tempfile.mkdtemp(prefix="hub-bench-web-"))
    if sqlite:
        stores.append(("SQLite", f"sqlite:///{scratch / 'bench.db'}"))
    for store, url in stores:
        runtime = _runtime(url, scratch / store.lower())
        with runtime.db.engine.connect() as conn:
            versions[store] = str(conn.execute(text("SHOW server_version" if store == "PostgreSQL" else
                                                    "SELECT sqlite_version()")).scalar()).split(" ")[0]
        started = time.perf_counter()
        agent_id = _agent(runtime)
        cid = _fill(runtime, events, agent_id=agent_id, n=1)
        small_cid = _fill(runtime, SMALL_EVENTS, agent_id=agent_id, n=2)
        print(f"{store}: filled {events + SMALL_EVENTS:,} events in {time.perf_counter() - started:.0f} s",
              file=sys.stderr)
        results[store] = _measure(runtime, cid, small_cid, SMALL_EVENTS, samples, warmup)
        for name, values in results[store].items():
            p50, p95, p99 = _percentiles(values)
            print(f"{store:10} {name:32} p50 {p50:7.1f} ms  p95 {p95:7.1f} ms  p99 {p99:7.1f} ms")
        runtime.close()
    command = "python -m bench.contact_page " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    section = _section(results, events=events, samples=samples, warmup=warmup, command=command.strip(),
                       load=(load_before, os.getloadavg()[0]), versions=versions)
    if record_figures:
        record_section(section, heading=SECTION)
        print(f"recorded in {DOCS}", file=sys.stderr)


if __name__ == "__main__":
    app()
