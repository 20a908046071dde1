"""Campaign benchmark: a personalised email campaign through the whole pipeline against a bare
aiosmtplib loop, to the same real SMTP server in its own process.

    .venv/bin/python -m bench.campaign --recipients 100000 --record
    .venv/bin/python -m bench.campaign --recipients 2000 --rate-seconds 10     # a short run

One run, on a PostgreSQL database of its own (dropped and created again):

1. an SMTP sink (aiosmtpd, `python -m bench.campaign sink`) starts in its own process and counts
   what it accepts;
2. bare: the campaign's N messages are rendered and serialised up front (by the hub, in a scratch
   database, so they are the same messages: tracked links, text part, List-Unsubscribe), then sent
   by a plain aiosmtplib loop over `--connections` connections (the same number the hub's email
   channel uses): the ceiling;
3. hub: N contacts, a segment, a personalised template (Jinja2 sandbox, per-contact subject and
   body, tracked links, List-Unsubscribe) and a campaign "now"; `--workers` `hub worker` processes
   (`python -m bench.campaign worker`, as docs/deploy.md runs them) share the work: one holds the
   campaigns job and materialises the run in checkpointed batches, rendering every message into
   the outbox, while all of them claim, send and record. The SMTP connections are split between
   them, so the hub uses as many as the bare loop. Timed from scheduling until the last delivery
   is recorded sent; idle and peak RSS come from /proc (VmRSS, VmHWM), summed over the workers;
   the row versions (HOT among them) and WAL bytes each table wrote in it are printed per message
   (pg_stat_user_tables, pg_walinspect);
4. rate limit: a second campaign, fully queued beforehand (so nothing but the limiter holds it
   back), sent by the same workers with `sending.rate_per_second.email = --rate` (by default half the rate
   the hub just reached, so the limiter and not the pipeline sets the pace), counted by the sink
   over `--rate-seconds` (60 in the full run) after a warm-up.

Goals (issue 24): the hub's CPU per message (its workers plus the PostgreSQL backends serving the
bench's database) at most 2.5× the bare client's CPU per message in the same run; hub ≥ 0.5× the
bare rate (on a 2-core machine the sink and PostgreSQL share the workers' cores); peak RSS ≤ 150 MB
above idle (and the same at 10k and 100k: run both and compare); the rate within 5% of the limit.
PostgreSQL runs with autovacuum on, as it ships (`--autovacuum as-is` keeps the cluster's setting):
the bench switches it on with ALTER SYSTEM for its run and puts the setting back afterwards.
--record writes the "Campaign" section.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import shlex
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text
from sqlalchemy.exc import DBAPIError

from bench.store import drop_database, fresh_database

ROOT = Path(__file__).resolve().parent.parent
SECTION = "## Campaign"
DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/hub_bench_campaign"
GOAL_RATIO = 0.5
GOAL_CPU_RATIO = 2.5  # hub (workers + PostgreSQL) / bare client, CPU per message
GOAL_MEMORY_MB = 150.0
GOAL_RATE_ERROR = 0.05
FROM = "news@bench.example.com"


# --- the SMTP sink (its own process) --------------------------------------------------------

def sink(port: int, counter: Path) -> None:
    """Accept every message, count it, and write the count to `counter` twice a second."""
    from aiosmtpd.controller import Controller

    class Counting:
        count = 0
        size = 0

        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            Counting.count += 1
            Counting.size += len(envelope.original_content or b"")
            return "250 OK"

    controller = Controller(Counting(), hostname="127.0.0.1", port=port, data_size_limit=10_000_000)
    controller.start()
    print("ready", flush=True)
    try:
        while True:
            tmp = counter.with_suffix(".tmp")
            tmp.write_text(f"{Counting.count} {Counting.size}")
            os.replace(tmp, counter)
            time.sleep(0.5)
    finally:
        controller.stop()


def read_count(counter: Path) -> int:
    return read_counter(counter)[0]


def read_counter(counter: Path) -> tuple[int, int]:
    """(messages, bytes) the sink has accepted so far."""
    try:
        count, size = counter.read_text().split()
        return int(count), int(size)
    except (FileNotFoundError, ValueError):
        return 0, 0


def wait_count(counter: Path, target: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while read_count(counter) < target:
        if time.monotonic() > deadline:
            raise TimeoutError(f"the sink has {read_count(counter)} of {target} messages after {timeout}s")
        time.sleep(0.2)


# --- the hub worker (its own process) ----------------------------------------------------------

def build_settings(url: str, smtp_port: int, connections: int, rate: float | None, data_dir: str,
                   live: str = "memory") -> Any:
    from hub.settings import load_settings

    sending: dict[str, Any] = {"quiet_hours": {}}
    if rate:
        sending["rate_per_second"] = {"email": rate}
    return load_settings(
        database_url=url, data_dir=Path(data_dir), secret_key="bench-secret-key-" + "x" * 32,
        public_base_url="https://hub.bench.example.com", embedded_worker=False, live_backend=live,
        outbox={"batch_size": 500, "poll_seconds": 0.2},
        channels={"email": {"smtp_host": "127.0.0.1", "smtp_port": smtp_port, "smtp_security": "none",
                            "smtp_connections": connections, "from_address": FROM, "from_name": "Bench Shop",
                            "message_id_domain": "bench.example.com"}},
        extensions={"campaigns": {"tick_seconds": 0.5, "batch_size": 500}},
        sending=sending,
    )


def worker(url: str, smtp_port: int, connections: int, rate: float | None, live: str = "memory") -> None:
    from hub.runtime import Hub
    from hub.worker import run_worker

    hub = Hub(build_settings(url, smtp_port, connections, rate, tempfile.mkdtemp(prefix="hub-bench-"), live))
    print("ready", flush=True)
    run_worker(hub, name="bench")


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU the processes have used so far, from /proc (gone ones count 0)."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
    return total / os.sysconf("SC_CLK_TCK")


class DatabaseCpu:
    """CPU the PostgreSQL backends serving one database use (client backends and autovacuum workers,
    from pg_stat_activity and /proc). Other databases on the same cluster (tests running beside the
    bench) are not counted; neither are the cluster's shared WAL writer and checkpointer.

    Backends come and go, so `poll()` is called while the work runs: each one's CPU counts from the
    first time it is seen (or from zero, for one that started during the run) to the last. The
    autovacuum workers' share is kept apart too: it is PostgreSQL's work on the run's dead and new
    row versions, not a statement's, and levers on statements do not move it."""

    def __init__(self, url: str) -> None:
        self.engine = create_engine(url, pool_size=1)
        self.conn = self.engine.connect()
        self.own = self.conn.execute(text("SELECT pg_backend_pid()")).scalar_one()
        self.name = self.conn.execute(text("SELECT current_database()")).scalar_one()
        self.first: dict[int, float] = {}
        self.last: dict[int, float] = {}
        self.vacuuming: set[int] = set()  # autovacuum workers' pids
        self.started = False

    def poll(self) -> None:
        rows = self.conn.execute(text("SELECT pid, backend_type FROM pg_stat_activity WHERE datname = :d AND pid <> :own"),
                                 {"d": self.name, "own": self.own}).all()
        self.conn.commit()
        for pid, backend_type in rows:
            used = cpu_seconds([pid])
            if not used:
                continue
            self.first.setdefault(pid, used if not self.started else 0.0)
            self.last[pid] = used
            if backend_type == "autovacuum worker":
                self.vacuuming.add(pid)
        self.started = True

    def seconds(self) -> float:
        return sum(self.last[pid] - self.first[pid] for pid in self.last)

    def autovacuum_seconds(self) -> float:
        """The part of seconds() the autovacuum workers used."""
        return sum(self.last[pid] - self.first[pid] for pid in self.vacuuming)

    def close(self) -> None:
        self.conn.close()
        self.engine.dispose()


class TableWrites:
    """What the hub phase wrote, per table of the bench's database: row versions from
    pg_stat_user_tables (inserted, updated, of those HOT — heap-only, no new index entries — and
    deleted) and WAL bytes from pg_walinspect over the phase's LSN range, counted for this database's
    relations only (heap, TOAST and index records; commit records carry no relation). Issue 24's
    "rows and bytes per message": an update that is not HOT writes an entry into every index of the
    table whose condition the new version meets."""

    _COUNTS = text("SELECT relname, n_tup_ins, n_tup_upd, n_tup_hot_upd, n_tup_del FROM pg_stat_user_tables")
    _WAL = text(
        "SELECT CAST(w.rel[2] AS oid) AS node, sum(w.record_length) AS bytes "
        "FROM (SELECT record_length, regexp_match(block_ref, 'rel \\d+/(\\d+)/(\\d+)') AS rel "
        "      FROM pg_get_wal_records_info(CAST(:a AS pg_lsn), CAST(:b AS pg_lsn))) AS w "
        "WHERE CAST(w.rel[1] AS oid) = (SELECT oid FROM pg_database WHERE datname = current_database()) "
        "GROUP BY 1")
    # Each relation file as (table, part): a table's heap, its indexes, its TOAST table and that one's index.
    _PARTS = text(
        "SELECT c.relfilenode AS node, coalesce(o.relname, b.relname) AS table_name, "
        "CASE WHEN o.oid IS NOT NULL THEN 'toast' WHEN c.relkind = 'i' THEN 'index' ELSE 'heap' END AS part "
        "FROM pg_class c LEFT JOIN pg_index i ON i.indexrelid = c.oid "
        "JOIN pg_class b ON b.oid = coalesce(i.indrelid, c.oid) LEFT JOIN pg_class o ON o.reltoastrelid = b.oid")

    def __init__(self, url: str) -> None:
        self.engine = create_engine(url, isolation_level="AUTOCOMMIT", pool_size=1)
        with self.engine.connect() as conn:
            self.walinspect = conn.execute(text(
                "SELECT 1 FROM pg_available_extensions WHERE name = 'pg_walinspect'")).first() is not None
            if self.walinspect:  # PostgreSQL 15's contrib; without it only the row counts are shown
                conn.execute(text("CREATE EXTENSION IF NOT EXISTS pg_walinspect"))
            self.before = self._counts(conn)
            self.lsn = conn.execute(text("SELECT pg_current_wal_lsn()")).scalar_one()

    def _counts(self, conn: Any) -> dict[str, tuple[int, ...]]:
        conn.execute(text("SELECT pg_stat_clear_snapshot()"))
        return {r[0]: tuple(r[1:]) for r in conn.execute(self._COUNTS)}

    def report(self, n: int) -> str:
        """Per message: each busy table's row versions, and the WAL its heap, TOAST and indexes wrote."""
        with self.engine.connect() as conn:
            after = self._counts(conn)
            # Flushed, not written: pg_walinspect reads no further than what is on disk.
            lsn = conn.execute(text("SELECT pg_current_wal_flush_lsn()")).scalar_one()
            cluster = conn.execute(text("SELECT pg_wal_lsn_diff(CAST(:b AS pg_lsn), CAST(:a AS pg_lsn))"),
                                   {"a": self.lsn, "b": lsn}).scalar_one()
            missing = "" if self.walinspect else "pg_walinspect is not installed"
            try:
                wal = conn.execute(self._WAL, {"a": self.lsn, "b": lsn}).all() if self.walinspect else []
            except DBAPIError as exc:  # e.g. a checkpoint recycled the run's first segments (a busy cluster)
                wal, missing = [], str(exc.orig).splitlines()[0]
            parts = {r.node: (r.table_name, r.part) for r in conn.execute(self._PARTS)} if wal else {}
        self.engine.dispose()
        written: dict[tuple[str, str], float] = {}
        for r in wal:
            if r.node in parts:
                written[parts[r.node]] = written.get(parts[r.node], 0) + r.bytes
        lines = [f"rows and WAL per message (this database; cluster WAL {cluster / n:,.0f} B/msg, other databases included):",
                 "  table: inserted / updated (HOT) / deleted; WAL heap + TOAST + indexes"]

        def wal_of(table: str, part: str) -> float:
            return written.get((table, part), 0) / n

        busy = sorted(after, key=lambda t: -sum(v for (table, _), v in written.items() if table == t))
        for table in busy:
            old = self.before.get(table, (0, 0, 0, 0))
            ins, upd, hot, dele = (a - b for a, b in zip(after[table], old))
            if not (ins or upd or dele):
                continue
            lines.append(f"  {table}: {ins / n:.2f} / {upd / n:.2f} ({hot / n:.2f}) / {dele / n:.2f}; "
                         f"WAL {wal_of(table, 'heap'):,.0f} + {wal_of(table, 'toast'):,.0f} + {wal_of(table, 'index'):,.0f} B")
        total = sum(written.values())
        lines.append(f"  all tables: WAL {total / n:,.0f} B/msg" + (f" (WAL by table unavailable: {missing})" if missing else ""))
        return "\n".join(lines)


def settle(pids: list[int], *, most: float = 60.0) -> None:
    """Wait until the workers are idle: their start (imports, the first run of every scheduled job)
    is not work per message, and on a loaded machine it lasts longer than any fixed pause."""
    deadline = time.monotonic() + most
    time.sleep(3)
    used = cpu_seconds(pids)
    while time.monotonic() < deadline:
        time.sleep(1.0)
        now = cpu_seconds(pids)
        if now - used < 0.05 * len(pids):
            return
        used = now


@dataclass
class Cpu:
    """CPU seconds spent on one phase, by party."""

    sender: float  # the bare loop's process, or the hub's workers
    sink: float
    database: float = 0.0
    autovacuum: float = 0.0  # of `database`, the autovacuum workers'

    def hub_ms(self, n: int) -> float:
        """What the issue's goal weighs: the sender's CPU (the hub's workers) plus PostgreSQL's, per message."""
        return (self.sender + self.database) / n * 1000

    def per_message_ms(self, n: int) -> str:
        parts = [f"{self.sender / n * 1000:.2f}", f"sink {self.sink / n * 1000:.2f}"]
        if self.database:
            parts.append(f"PostgreSQL {self.database / n * 1000:.2f}"
                         + (f" (autovacuum {self.autovacuum / n * 1000:.2f})" if self.autovacuum else ""))
        return " + ".join(parts) + f" = {(self.sender + self.sink + self.database) / n * 1000:.2f} ms"


def rss_mb(pid: int) -> tuple[float, float]:
    """(current, peak) resident memory of a process in MB, from /proc."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        fields[key] = value.strip()
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


# --- set-up ----------------------------------------------------------------------------------------

def add_contacts(url: str, n: int, *, tag: str, offset: int = 0) -> None:
    """n contacts with one email each, inserted in bulk (the benchmark is about sending, not importing)."""
    from hub.models import Contact, Identity

    from hub import clock

    now = clock.now()
    engine = create_engine(url)
    first_names = ["Anna", "Boris", "Vera", "Gleb", "Daria", "Egor", "Zoya", "Ivan", "Kira", "Lev"]
    with engine.begin() as conn:
        for start in range(0, n, 5000):
            chunk = range(offset + start, offset + min(n, start + 5000))
            ids = conn.execute(
                Contact.__table__.insert().returning(Contact.__table__.c.id),
                [{"display_name": f"{first_names[i % 10]} Bench{i}", "search_name": f"bench{i}",
                  "locale": "ru" if i % 3 else "en", "tags": [tag], "attributes": {"city": "Moscow"},
                  "created_at": now, "updated_at": now} for i in chunk],
            ).scalars().all()
            conn.execute(Identity.__table__.insert(), [
                {"contact_id": cid, "kind": "email", "value": f"bench{i}@sink.example.com", "is_primary": True,
                 "created_at": now}
                for cid, i in zip(ids, chunk)])
    engine.dispose()


def make_campaign(url: str, *, tag: str, name: str) -> int:
    """A segment for `tag`, a personalised bilingual template, and a draft campaign sending to it."""
    from campaigns import service
    from campaigns.message_templates.models import MessageTemplate
    from campaigns.segments.models import Segment
    from hub.runtime import Hub

    hub = Hub(build_settings(url, 25, 1, None, tempfile.mkdtemp(prefix="hub-bench-")))
    with hub.session() as s, s.begin():
        segment = Segment(name=f"{name} audience", definition={"type": "and", "conditions": [
            {"type": "tag", "op": "has", "tag": tag}]})
        html = ("<h1>{{ contact.first_name }}, {{ campaign.name }}</h1><p>Dear {{ contact.name }} from "
                "{{ contact.attributes.city }}, this week's offers are picked for you.</p>"
                "<p><a href=\"https://shop.example.com/sale?c={{ contact.id }}\">See the sale</a> · "
                "<a href=\"https://shop.example.com/new\">What's new</a></p>" + "<p>Lorem ipsum dolor sit amet. </p>" * 10)
        template = MessageTemplate(name=f"{name} mail", channel="email", default_locale="ru", variants={
            "ru": {"subject": "{{ contact.first_name }}, предложения недели", "html": html, "text": ""},
            "en": {"subject": "{{ contact.first_name }}, this week's offers", "html": html, "text": ""},
        })
        s.add_all([segment, template])
        s.flush()
        campaign = service.create_campaign(s, data=service.CampaignIn(
            name=name, channel="email", segment_id=segment.id, steps=[service.StepIn(template_id=template.id)]))
        campaign_id = campaign.id
    hub.close()
    return campaign_id  # type: ignore[return-value]


def schedule(url: str, campaign_id: int) -> None:
    from campaigns import service
    from campaigns.models import Campaign
    from hub.runtime import Hub

    hub = Hub(build_settings(url, 25, 1, None, tempfile.mkdtemp(prefix="hub-bench-")))
    with hub.session() as s, s.begin():
        service.schedule(s, campaign=s.get(Campaign, campaign_id))
    hub.close()


def materialise(url: str, campaign_id: int) -> None:
    """Queue every message of a campaign here, so the rate-limit check measures the limiter alone."""
    from campaigns import runs

    schedule(url, campaign_id)
    from hub.runtime import Hub

    hub = Hub(build_settings(url, 25, 1, None, tempfile.mkdtemp(prefix="hub-bench-")))
    runs.dispatch_due(hub)
    runs.materialise_due(hub, batch_size=500)
    hub.close()


def sent_count(conn: Any, campaign_id: int) -> tuple[int, int]:
    """(deliveries of the campaign, of which recorded as sent), read on `conn`."""
    row = conn.execute(text(
        "SELECT count(*), count(*) FILTER (WHERE d.status = 'sent') FROM delivery d "
        "JOIN campaign_message m ON m.delivery_id = d.id WHERE m.campaign_id = :c"), {"c": campaign_id}).one()
    conn.commit()
    return int(row[0]), int(row[1])


# --- the bare loop ---------------------------------------------------------------------------------

def prerender(url: str, n: int) -> list[tuple[str, bytes]]:
    """The campaign's own N messages, finished (rendered, tracked, serialised) up front, so the loop
    below only talks SMTP and the sink receives the same bytes from both sides.

    They are made by the hub itself in a database of their own (`<name>_bare`, dropped afterwards):
    the same contacts, template and campaign, queued in the outbox, then serialised by the email
    channel's MIME writer as its worker does. Only the Date header and the signed tokens differ
    (same lengths)."""
    from channels.email.mime import EmailContent, build_message
    from hub import clock
    from hub.runtime import Hub

    bare_url = url + "_bare"
    fresh_database(bare_url)
    add_contacts(bare_url, n, tag="main")
    materialise(bare_url, make_campaign(bare_url, tag="main", name="Weekly offers"))
    hub = Hub(build_settings(bare_url, 25, 1, None, tempfile.mkdtemp(prefix="hub-bench-")))
    email_settings = hub.channel("email").settings  # type: ignore[attr-defined]

    def no_attachments(ref: Any) -> bytes:
        raise AssertionError("the bench template has no attachments")

    out = []
    engine = create_engine(hub.settings.sqlalchemy_url)
    with engine.connect() as conn:
        rows = conn.execution_options(stream_results=True, yield_per=2000).execute(text(
            "SELECT address, idempotency_key, content FROM delivery WHERE status = 'queued' ORDER BY id"))
        for address, key, content in rows:
            data, _ = build_message(EmailContent.model_validate(content), settings=email_settings, to_address=address,
                                    idempotency_key=key, date=clock.now(), read_attachment=no_attachments)
            out.append((address, data))
    engine.dispose()
    hub.close()
    drop_database(bare_url)
    if len(out) != n:
        raise RuntimeError(f"the hub queued {len(out)} messages for {n} contacts")
    return out


async def bare_send(port: int, messages: list[tuple[str, bytes]], connections: int) -> float:
    import aiosmtplib

    async def lane(share: list[tuple[str, bytes]]) -> None:
        client = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, use_tls=False, start_tls=False)
        await client.connect()
        for rcpt, raw in share:
            await client.sendmail(FROM, [rcpt], raw)
        await client.quit()

    started = time.perf_counter()
    await asyncio.gather(*(lane(messages[i::connections]) for i in range(connections)))
    return time.perf_counter() - started


def on_workers_loop(coro: Any) -> Any:
    """Run `coro` on the kind of event loop the hub's worker sends on (uvloop where installed)."""
    from hub.worker import new_event_loop

    loop = new_event_loop()
    try:
        return loop.run_until_complete(coro)
    finally:
        loop.close()


# --- the run ---------------------------------------------------------------------------------------

@dataclass
class Figures:
    recipients: int
    connections: int
    bare_seconds: float
    hub_seconds: float
    idle_mb: float
    peak_mb: float
    rate_limit: float
    rate_seconds: float
    rate_observed: float
    workers: int = 1
    bare_cpu: Cpu | None = None
    hub_cpu: Cpu | None = None
    autovacuum: str = "?"
    bare_size: float = 0.0  # average bytes per message the sink received
    hub_size: float = 0.0
    live: str = "memory"  # the workers' live backend (docs/deploy.md runs postgres: NOTIFY per commit)

    @property
    def bare_rate(self) -> float:
        return self.recipients / self.bare_seconds

    @property
    def hub_rate(self) -> float:
        return self.recipients / self.hub_seconds

    @property
    def ratio(self) -> float:
        return self.hub_rate / self.bare_rate

    @property
    def cpu_ratio(self) -> float | None:
        """The hub's CPU per message (workers + PostgreSQL) over the bare client's, in this run."""
        if not (self.bare_cpu and self.hub_cpu and self.bare_cpu.sender):
            return None
        return self.hub_cpu.hub_ms(self.recipients) / (self.bare_cpu.sender / self.recipients * 1000)

    @property
    def memory_growth(self) -> float:
        return self.peak_mb - self.idle_mb

    @property
    def rate_error(self) -> float:
        return abs(self.rate_observed - self.rate_limit) / self.rate_limit


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(args: list[str]) -> subprocess.Popen[str]:
    proc = subprocess.Popen([sys.executable, "-m", "bench.campaign", *args], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.stdout is not None
    if proc.stdout.readline().strip() != "ready":
        proc.kill()
        raise RuntimeError(f"{args[0]} did not start")
    return proc


def stop(proc: subprocess.Popen[str]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()


def run(url: str, n: int, connections: int, rate: float, rate_seconds: float, workers: int = 1,
        live: str = "memory") -> Figures:
    folder = Path(tempfile.mkdtemp(prefix="hub-bench-campaign-"))
    counter = folder / "count"
    port = free_port()
    print(f"preparing {n} contacts on {url.split('@')[-1]} …", flush=True)
    fresh_database(url)
    add_contacts(url, n, tag="main")
    main = make_campaign(url, tag="main", name="Weekly offers")
    smtp = start(["sink", "--port", str(port), "--counter", str(counter)])
    try:
        print("bare aiosmtplib loop …", flush=True)
        messages = prerender(url, n)
        sink0, own0 = cpu_seconds([smtp.pid]), time.process_time()
        bare = on_workers_loop(bare_send(port, messages, connections))
        wait_count(counter, n, 60)
        bare_cpu = Cpu(time.process_time() - own0, cpu_seconds([smtp.pid]) - sink0)
        del messages
        wait_count(counter, n, 60)
        base, bare_bytes = read_counter(counter)

        print("hub pipeline …", flush=True)
        shares = [connections // workers + (1 if i < connections % workers else 0) for i in range(workers)]
        procs = [start(["worker", "--url", url, "--smtp-port", str(port), "--connections", str(share),
                        "--live", live])
                 for share in shares]
        try:
            settle([p.pid for p in procs])
            idle = sum(rss_mb(p.pid)[0] for p in procs)
            writes = TableWrites(url)
            database = DatabaseCpu(url)
            counting = create_engine(url, pool_size=1)
            watch = counting.connect()
            database.poll()
            before = (cpu_seconds([p.pid for p in procs]), cpu_seconds([smtp.pid]))
            started = time.perf_counter()
            schedule(url, main)
            while True:
                database.poll()
                total, sent = sent_count(watch, main)
                if total == n and sent == n:
                    break
                if any(p.poll() is not None for p in procs):
                    raise RuntimeError("a worker died")
                time.sleep(0.25)
            hub_seconds = time.perf_counter() - started
            database.poll()
            peak = sum(rss_mb(p.pid)[1] for p in procs)
            hub_cpu = Cpu(cpu_seconds([p.pid for p in procs]) - before[0], cpu_seconds([smtp.pid]) - before[1],
                          database.seconds(), database.autovacuum_seconds())
        finally:
            for p in procs:
                stop(p)
            if "database" in locals():
                database.close()
                watch.close()
                counting.dispose()
        wait_count(counter, base + n, 60)
        hub_bytes = read_counter(counter)[1] - bare_bytes
        print(writes.report(n), flush=True)

        if rate <= 0:  # a limit the pipeline can reach, so the limiter is what holds it back
            rate = max(1.0, round(n / hub_seconds / 2))
        print(f"rate limit at {rate}/s for {rate_seconds:.0f} s …", flush=True)
        add_contacts(url, int(rate * (rate_seconds + 10)), tag="limited", offset=n)
        limited = make_campaign(url, tag="limited", name="Rate limited")
        materialise(url, limited)
        base = read_count(counter)
        # The same workers, each with the limit: the bucket is shared, so together they keep to it.
        procs = [start(["worker", "--url", url, "--smtp-port", str(port), "--connections", str(share),
                        "--rate", str(rate), "--live", live]) for share in shares]
        try:
            wait_count(counter, base + int(rate * 3), 120)  # warm-up: the bucket's burst is spent
            first, t0 = read_count(counter), time.perf_counter()
            time.sleep(rate_seconds)
            last, t1 = read_count(counter), time.perf_counter()
        finally:
            for p in procs:
                stop(p)
        observed = (last - first) / (t1 - t0)
    finally:
        stop(smtp)
    return Figures(n, connections, bare, hub_seconds, idle, peak, rate, rate_seconds, observed, workers,
                   bare_cpu, hub_cpu, autovacuum(url), bare_bytes / n, hub_bytes / n, live)


def autovacuum(url: str) -> str:
    """The server's autovacuum setting, printed next to the figures: off, a 100k run works on tables
    full of dead rows and never analysed (PostgreSQL's default is on)."""
    engine = create_engine(url)
    with engine.connect() as conn:
        value = str(conn.execute(text("SHOW autovacuum")).scalar_one())
    engine.dispose()
    return value


@contextmanager
def autovacuum_set(url: str, wanted: str) -> Iterator[None]:
    """Autovacuum `wanted` ("on"/"off") for the run, or the cluster's own setting for "as-is"; the
    setting as it was is put back afterwards (it is reload-level: ALTER SYSTEM + pg_reload_conf)."""
    if wanted == "as-is":
        yield
        return
    from hub.settings import load_settings

    admin = create_engine(load_settings(database_url=url).sqlalchemy_url.rsplit("/", 1)[0] + "/postgres",
                          isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        # Set in postgresql.auto.conf by an earlier ALTER SYSTEM, or from the main file / the default.
        value, source = conn.execute(text(
            "SELECT setting, coalesce(sourcefile, '') FROM pg_settings WHERE name = 'autovacuum'")).one()
        conn.execute(text(f"ALTER SYSTEM SET autovacuum = {'on' if wanted == 'on' else 'off'}"))
        conn.execute(text("SELECT pg_reload_conf()"))
    try:
        time.sleep(0.5)  # the postmaster and the backends read the file on SIGHUP
        yield
    finally:
        with admin.connect() as conn:
            if source.endswith("postgresql.auto.conf"):
                conn.execute(text(f"ALTER SYSTEM SET autovacuum = {'on' if value == 'on' else 'off'}"))
            else:
                conn.execute(text("ALTER SYSTEM RESET autovacuum"))
            conn.execute(text("SELECT pg_reload_conf()"))
        admin.dispose()


def section(f: Figures, command: str) -> str:
    def verdict(ok: bool) -> str:
        return "pass" if ok else "miss"

    return (
        f"{SECTION}\n\n"
        f"`{command}` on {platform.node()} ({os.cpu_count()} CPUs, Python {platform.python_version()}), "
        f"PostgreSQL, aiosmtpd in its own process, {f.connections} SMTP connections "
        f"(the hub's split over {f.workers} worker process{'es' if f.workers > 1 else ''}); "
        f"PostgreSQL autovacuum {f.autovacuum}; live updates {f.live}.\n\n"
        "| figure | value | goal | |\n|---|---|---|---|\n"
        f"| recipients | {f.recipients:,} | | |\n"
        f"| bare aiosmtplib, pre-rendered | {f.bare_rate:,.0f} msg/s | | |\n"
        f"| message size at the sink, bare / hub | {f.bare_size / 1024:.2f} / {f.hub_size / 1024:.2f} KiB | | |\n"
        f"| hub: segment → render → outbox → SMTP | {f.hub_rate:,.0f} msg/s ({f.hub_seconds:,.1f} s) | | |\n"
        f"| hub / bare | {f.ratio:.2f}× | ≥ {GOAL_RATIO}× | {verdict(f.ratio >= GOAL_RATIO)} |\n"
        f"| worker RSS idle → peak{' (sum)' if f.workers > 1 else ''} | {f.idle_mb:.0f} → {f.peak_mb:.0f} MB (+{f.memory_growth:.0f}) | "
        f"≤ +{GOAL_MEMORY_MB:.0f} MB | {verdict(f.memory_growth <= GOAL_MEMORY_MB)} |\n"
        f"| rate limit {f.rate_limit:g}/s over {f.rate_seconds:.0f} s | {f.rate_observed:.1f}/s "
        f"({f.rate_error:.1%} off) | within 5% | {verdict(f.rate_error <= GOAL_RATE_ERROR)} |\n"
        + (f"| CPU per message, bare: client + sink | {f.bare_cpu.per_message_ms(f.recipients)} | | |\n"
           f"| CPU per message, hub: workers + sink + PostgreSQL | {f.hub_cpu.per_message_ms(f.recipients)} | | |\n"
           if f.bare_cpu and f.hub_cpu else "")
        + (f"| hub CPU per message (workers + PostgreSQL) / bare client's | "
           f"{f.hub_cpu.hub_ms(f.recipients):.2f} / {f.bare_cpu.sender / f.recipients * 1000:.2f} ms = "
           f"{f.cpu_ratio:.2f}× | ≤ {GOAL_CPU_RATIO}× | {verdict(f.cpu_ratio <= GOAL_CPU_RATIO)} |\n"
           if f.cpu_ratio is not None and f.bare_cpu and f.hub_cpu else "")
        + f"| PostgreSQL autovacuum | {f.autovacuum} | on, as PostgreSQL ships | |\n"
        + "\n"
        "Flat memory means the same growth at 10k and 100k recipients: run both and compare the "
        "`+MB` figures.\n"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command")
    p_sink = sub.add_parser("sink", help="(internal) the SMTP sink process")
    p_sink.add_argument("--port", type=int, required=True)
    p_sink.add_argument("--counter", type=Path, required=True)
    p_worker = sub.add_parser("worker", help="(internal) the hub worker process")
    p_worker.add_argument("--url", required=True)
    p_worker.add_argument("--smtp-port", type=int, required=True)
    p_worker.add_argument("--connections", type=int, default=4)
    p_worker.add_argument("--rate", type=float)
    p_worker.add_argument("--live", choices=["memory", "postgres"], default="memory")
    parser.add_argument("--recipients", type=int, default=100_000)
    parser.add_argument("--connections", type=int, default=4, help="SMTP connections, hub and bare alike")
    parser.add_argument("--workers", type=int, default=2,
                        help="hub worker processes sharing the connections (docs/deploy.md runs N of them)")
    parser.add_argument("--rate", type=float, default=0.0,
                        help="the email rate limit to check, per second (default: half the hub's measured rate)")
    parser.add_argument("--rate-seconds", type=float, default=60.0, help="how long to count the limited rate")
    parser.add_argument("--autovacuum", choices=["on", "off", "as-is"], default="on",
                        help="PostgreSQL's autovacuum for the run (on, as it ships; put back afterwards)")
    parser.add_argument("--live", choices=["memory", "postgres"], default="memory",
                        help="the workers' live backend: memory (the recorded runs) or postgres, as docs/deploy.md "
                             "deploys them (each commit's live messages as NOTIFY)")
    parser.add_argument("--database-url", default=os.environ.get("HUB_BENCH_PG_URL", DEFAULT_PG))
    parser.add_argument("--record", action="store_true", help="write the figures into docs/benchmarks.md")
    args = parser.parse_args(argv)
    if args.command == "sink":
        sink(args.port, args.counter)
        return
    if args.command == "worker":
        worker(args.url, args.smtp_port, args.connections, args.rate, args.live)
        return
    if not 1 <= args.workers <= args.connections:
        parser.error("--workers must be between 1 and --connections (each worker needs a connection)")
    with autovacuum_set(args.database_url, args.autovacuum):
        figures = run(args.database_url, args.recipients, args.connections, args.rate, args.rate_seconds,
                      args.workers, args.live)
    command = "python -m bench.campaign " + shlex.join(a for a in (argv if argv is not None else sys.argv[1:]))
    text_ = section(figures, command)
    print(text_)
    if args.record:
        from bench.records import record_section

        record_section(text_, heading=SECTION)


if __name__ == "__main__":
    main()
