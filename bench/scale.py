"""Scale on one machine: 2 API and 2 worker processes on PostgreSQL run a large campaign while signed
webhooks and agents' timeline reads hit the API; what arrives is counted at the receiving servers.

    .venv/bin/python -m bench.scale --recipients 100000 --record
    .venv/bin/python -m bench.scale --recipients 5000              # a short run

One run, on a PostgreSQL database of its own (dropped and created again):

1. receivers: an SMTP sink (aiosmtpd, its own process) that writes the Message-ID of every message it
   accepts, and the local Twilio-compatible server (standins.twilio_local) that records every SMS;
2. one worker alone: a campaign to `--solo` contacts sent by ONE `hub worker` process: the baseline;
3. the scale run: `hub serve --no-worker` twice (two API processes on two ports) and `hub worker`
   twice; an email campaign to `--recipients` contacts and an SMS campaign to `--sms` contacts go out
   while this process sends signed inbound-SMS webhooks (`--webhook-rate` per second) and timeline
   reads with an API key (`--read-rate` per second), spread over both API processes, scheduled at
   fixed intervals (an open loop: latency counts from the scheduled time);
4. counting: every recipient's message must have arrived (zero losses), and a message may arrive
   twice only if it was in flight at a crash; nothing crashes here, so the bound is zero duplicates.

Reported: sends per second with 2 workers against 1, p50/p99 of webhook answers and timeline reads,
losses and duplicates at each receiver. --record writes the "Scale" section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
from sqlalchemy import create_engine, text
from twilio.request_validator import RequestValidator

from bench import campaign as cb
from bench.records import record_section

from bench.store import fresh_database

ROOT = Path(__file__).resolve().parent.parent
SECTION = "## Scale"
DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/hub_bench_scale"
ACCOUNT_SID = "AC" + "fedcba9876543210" * 2
AUTH_TOKEN = "scale-auth-token-" + "0" * 15
FROM_NUMBER = "+79580001122"
FIXTURES = ROOT / "channels" / "sms" / "fixtures"


# --- the SMTP sink that names what it received (its own process) -------------------------------

def sink(port: int, folder: Path) -> None:
    """Accept every message and append its Message-ID to folder/ids (one line each)."""
    from aiosmtpd.controller import Controller

    ids = (folder / "ids").open("a", buffering=1)
    lock = threading.Lock()

    class Naming:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            head = envelope.original_content.split(b"\r\n\r\n", 1)[0]
            message_id = next((line.split(b":", 1)[1].strip() for line in head.split(b"\r\n")
                               if line.lower().startswith(b"message-id:")), b"?")
            with lock:
                ids.write(message_id.decode(errors="replace") + "\n")
            return "250 OK"

    controller = Controller(Naming(), hostname="127.0.0.1", port=port, data_size_limit=10_000_000)
    controller.start()
    print("ready", flush=True)
    threading.Event().wait()


def received_ids(folder: Path) -> Counter[str]:
    path = folder / "ids"
    return Counter(path.read_text().split()) if path.exists() else Counter()


# --- processes -------------------------------------------------------------------------------------

def hub_env(url: str, *, smtp_port: int, twilio_url: str, public_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
    env.update({
        "PYTHONPATH": str(ROOT),
        "HUB_DATABASE_URL": url.replace("postgresql+psycopg://", "postgresql://"),
        "HUB_DATA_DIR": tempfile.mkdtemp(prefix="hub-scale-"),
        "HUB_PUBLIC_BASE_URL": public_url,
        "HUB_SECRET_KEY": "scale-" + "k" * 40,
        "HUB_EMBEDDED_WORKER": "false",
        "HUB_LIVE_BACKEND": "postgres",
        "HUB_LOG_LEVEL": "WARNING",
        "HUB_OUTBOX__BATCH_SIZE": "100",
        "HUB_OUTBOX__POLL_SECONDS": "0.2",
        "HUB_SENDING__QUIET_HOURS": "{}",  # measure the pipeline at any hour of the day
        "HUB_EXTENSIONS__CAMPAIGNS__TICK_SECONDS": "0.5",
        "HUB_EXTENSIONS__CAMPAIGNS__BATCH_SIZE": "500",
        "HUB_CHANNELS__EMAIL__SMTP_HOST": "127.0.0.1",
        "HUB_CHANNELS__EMAIL__SMTP_PORT": str(smtp_port),
        "HUB_CHANNELS__EMAIL__SMTP_SECURITY": "none",
        "HUB_CHANNELS__EMAIL__SMTP_CONNECTIONS": "4",
        "HUB_CHANNELS__EMAIL__FROM_ADDRESS": cb.FROM,
        "HUB_CHANNELS__EMAIL__MESSAGE_ID_DOMAIN": "bench.example.com",
        "HUB_CHANNELS__SMS__ACCOUNT_SID": ACCOUNT_SID,
        "HUB_CHANNELS__SMS__AUTH_TOKEN": AUTH_TOKEN,
        "HUB_CHANNELS__SMS__FROM_NUMBER": FROM_NUMBER,
        "HUB_CHANNELS__SMS__API_BASE_URL": twilio_url,
    })
    return env


def spawn(args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen([str(Path(sys.executable).with_name("hub")), *args], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def wait_http(port: int, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the API process on {port} exited with {proc.returncode}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"the API process on {port} did not become ready")


def stop_all(procs: list[subprocess.Popen[bytes]]) -> None:
    for proc in procs:
        proc.terminate()
    for proc in procs:
        try:
            proc.wait(timeout=120)
        except subprocess.TimeoutExpired:
            proc.kill()


# --- data --------------------------------------------------------------------------------------------

def add_sms_contacts(url: str, n: int, *, tag: str) -> None:
    from hub import clock
    from hub.models import Contact, ConsentRecord, Identity

    now = clock.now()
    engine = create_engine(url)
    with engine.begin() as conn:
        for start in range(0, n, 5000):
            chunk = range(start, min(n, start + 5000))
            ids = conn.execute(Contact.__table__.insert().returning(Contact.__table__.c.id), [
                {"display_name": f"Sms Bench{i}", "search_name": f"sms bench{i}", "locale": "ru", "tags": [tag],
                 "attributes": {}, "time_zone": "Europe/Moscow", "created_at": now, "updated_at": now}
                for i in chunk]).scalars().all()
            conn.execute(Identity.__table__.insert(), [
                {"contact_id": cid, "kind": "phone", "value": f"+7903{i:07d}", "is_primary": True, "created_at": now}
                for cid, i in zip(ids, chunk)])
            conn.execute(ConsentRecord.__table__.insert(), [
                {"contact_id": cid, "channel": "sms", "purpose": "marketing", "status": "granted",
                 "source": "bench", "occurred_at": now} for cid in ids])
    engine.dispose()


def make_sms_campaign(url: str, *, tag: str, name: str) -> int:
    from campaigns import service
    from campaigns.message_templates.models import MessageTemplate
    from campaigns.segments.models import Segment
    from hub.runtime import Hub

    hub = Hub(cb.build_settings(url, 25, 1, None, tempfile.mkdtemp(prefix="hub-scale-")))
    with hub.session() as s, s.begin():
        segment = Segment(name=f"{name} audience", definition={"type": "and", "conditions": [
            {"type": "tag", "op": "has", "tag": tag}]})
        template = MessageTemplate(name=f"{name} sms", channel="sms", default_locale="ru", variants={
            "ru": {"text": "{{ contact.first_name }}, скидка 20% до воскресенья: shop.example.com/sale"}})
        s.add_all([segment, template])
        s.flush()
        created = service.create_campaign(s, data=service.CampaignIn(
            name=name, channel="sms", segment_id=segment.id, steps=[service.StepIn(template_id=template.id)]))
        campaign_id = created.id
    hub.close()
    return campaign_id  # type: ignore[return-value]


def api_key(url: str) -> tuple[str, list[int]]:
    """A key that may read timelines, and some contact ids to read."""
    from hub.auth import create_api_key
    from hub.runtime import Hub

    hub = Hub(cb.build_settings(url, 25, 1, None, tempfile.mkdtemp(prefix="hub-scale-")))
    with hub.session() as s, s.begin():
        _, plain = create_api_key(s, name="scale bench", scopes=["contacts:read", "timeline:read"])
        ids = list(s.scalars(text("SELECT id FROM contact ORDER BY id LIMIT 2000")))
    hub.close()
    return plain, ids


def campaign_counts(url: str, campaign_ids: list[int]) -> tuple[int, int, int]:
    """(deliveries, sent, not yet final) over the given campaigns."""
    engine = create_engine(url)
    with engine.connect() as conn:
        row = conn.execute(text(
            "SELECT count(*), count(*) FILTER (WHERE d.status IN ('sent', 'delivered')), "
            "count(*) FILTER (WHERE d.status IN ('queued', 'sending')) FROM delivery d "
            "JOIN campaign_message m ON m.delivery_id = d.id WHERE m.campaign_id = ANY(:c)"), {"c": campaign_ids}).one()
    engine.dispose()
    return int(row[0]), int(row[1]), int(row[2])


def wait_sent(url: str, campaign_ids: list[int], expected: int, timeout: float) -> float:
    """Seconds until `expected` deliveries of the campaigns are recorded sent."""
    started = time.perf_counter()
    while True:
        total, sent, _ = campaign_counts(url, campaign_ids)
        if sent >= expected:
            return time.perf_counter() - started
        if time.perf_counter() - started > timeout:
            raise TimeoutError(f"{sent} of {expected} sent after {timeout:.0f} s ({total} queued)")
        time.sleep(0.5)


# --- load against the API -------------------------------------------------------------------------

@dataclass
class Load:
    ports: list[int]
    key: str
    contact_ids: list[int]
    webhook_ms: list[float] = field(default_factory=list)
    read_ms: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    n: int = 0

    def __post_init__(self) -> None:
        self.validator = RequestValidator(AUTH_TOKEN)
        self.inbound = json.loads((FIXTURES / "inbound_sms.json").read_text())

    def webhook(self) -> tuple[int, str, bytes, dict[str, str]]:
        self.n += 1
        port = self.ports[self.n % len(self.ports)]
        url = f"http://127.0.0.1:{port}/channels/sms/inbound"
        sid = f"SM{self.n:032x}"
        params = {**self.inbound, "MessageSid": sid, "SmsSid": sid, "SmsMessageSid": sid, "To": FROM_NUMBER,
                  "From": f"+7916{(self.n * 7919) % 5000:07d}", "AccountSid": ACCOUNT_SID,
                  "Body": f"Вопрос по заказу {self.n}"}
        # Each API process checks the signature against the URL it is reached at.
        signature = self.validator.compute_signature(url, params)
        return port, "/channels/sms/inbound", urlencode(params).encode(), {
            "X-Twilio-Signature": signature, "Content-Type": "application/x-www-form-urlencoded"}

    async def run(self, *, webhook_rate: float, read_rate: float, stop: asyncio.Event) -> None:
        clients = {p: httpx.AsyncClient(base_url=f"http://127.0.0.1:{p}", timeout=30,
                                        limits=httpx.Limits(max_connections=64)) for p in self.ports}
        tasks: set[asyncio.Task[None]] = set()

        async def timed(kind: str, coro: Any, scheduled: float) -> None:
            try:
                answer = await coro
                if answer.status_code >= 300:
                    self.errors.append(f"{kind} {answer.status_code}: {answer.text[:200]}")
            except httpx.HTTPError as exc:
                self.errors.append(f"{kind} {type(exc).__name__}")
            (self.webhook_ms if kind == "webhook" else self.read_ms).append((time.perf_counter() - scheduled) * 1000)

        async def ticker(rate: float, make: Any, kind: str) -> None:
            interval, start, i = 1 / rate, time.perf_counter(), 0
            while not stop.is_set():
                scheduled = start + i * interval
                await asyncio.sleep(max(0.0, scheduled - time.perf_counter()))
                task = asyncio.create_task(timed(kind, make(), scheduled))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
                i += 1

        def post_webhook() -> Any:
            port, path, body, headers = self.webhook()
            return clients[port].post(path, content=body, headers=headers)

        reads = 0

        def read_timeline() -> Any:
            nonlocal reads
            reads += 1
            port = self.ports[reads % len(self.ports)]
            contact = self.contact_ids[(reads * 31) % len(self.contact_ids)]
            return clients[port].get(f"/api/v1/contacts/{contact}/timeline?limit=30",
                                     headers={"Authorization": f"Bearer {self.key}"})

        await asyncio.gather(ticker(webhook_rate, post_webhook, "webhook"), ticker(read_rate, read_timeline, "read"))
        await asyncio.gather(*tasks)
        for client in clients.values():
            await client.aclose()


def percentiles(values: list[float]) -> tuple[float, float]:
    if len(values) < 2:
        return (values[0], values[0]) if values else (float("nan"), float("nan"))
    return statistics.median(values), statistics.quantiles(values, n=100, method="inclusive")[98]


# --- the run ---------------------------------------------------------------------------------------

@dataclass
class Figures:
    recipients: int
    sms: int
    solo: int
    solo_rate: float
    scale_rate: float
    scale_seconds: float
    webhooks: int
    webhook_p50: float
    webhook_p99: float
    reads: int
    read_p50: float
    read_p99: float
    errors: list[str]
    failed: int
    email_expected: int
    email_unique: int
    email_duplicates: int
    sms_expected: int
    sms_unique: int
    sms_duplicates: int

    @property
    def speedup(self) -> float:
        return self.scale_rate / self.solo_rate


def run(url: str, *, recipients: int, sms: int, solo: int, webhook_rate: float, read_rate: float) -> Figures:
    from standins.twilio_local.server import LocalTwilio

    folder = Path(tempfile.mkdtemp(prefix="hub-bench-scale-"))
    smtp_port = cb.free_port()
    print(f"preparing {recipients:,} email and {sms:,} SMS contacts (+{solo:,} for the one-worker run) …", flush=True)
    fresh_database(url)
    cb.add_contacts(url, solo, tag="solo", offset=10_000_000)
    cb.add_contacts(url, recipients, tag="main")
    add_sms_contacts(url, sms, tag="sms")
    key, contact_ids = api_key(url)

    sink_proc = subprocess.Popen([sys.executable, "-m", "bench.scale", "sink", "--port", str(smtp_port),
                                  "--dir", str(folder)], cwd=ROOT, stdout=subprocess.PIPE, text=True,
                                 env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert sink_proc.stdout is not None and sink_proc.stdout.readline().strip() == "ready"
    twilio = LocalTwilio(account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN, callback_mode="manual", contract_path=None).start()  # type: ignore[arg-type]
    twilio.add_number(FROM_NUMBER)
    ports = [cb.free_port(), cb.free_port()]
    procs: list[subprocess.Popen[bytes]] = []
    try:
        env = hub_env(url, smtp_port=smtp_port, twilio_url=twilio.url, public_url=f"http://127.0.0.1:{ports[0]}")
        # 1. one worker alone
        solo_id = cb.make_campaign(url, tag="solo", name="One worker")
        worker = spawn(["worker", "--name", "solo"], env)
        time.sleep(3)
        cb.schedule(url, solo_id)
        print(f"one worker: sending {solo:,} …", flush=True)
        solo_seconds = wait_sent(url, [solo_id], solo, timeout=3600)
        stop_all([worker])

        # 2. two API and two worker processes, with load on the API
        for port in ports:
            api_env = {**env, "HUB_PUBLIC_BASE_URL": f"http://127.0.0.1:{port}"}
            procs.append(spawn(["serve", "--no-worker", "--host", "127.0.0.1", "--port", str(port)], api_env))
        for port, proc in zip(ports, procs):
            wait_http(port, proc)
        procs += [spawn(["worker", "--name", f"scale-{n}"], env) for n in (1, 2)]
        time.sleep(3)
        email_id = cb.make_campaign(url, tag="main", name="Scale email")
        sms_id = make_sms_campaign(url, tag="sms", name="Scale SMS")
        load = Load(ports=ports, key=key, contact_ids=contact_ids)
        stop = asyncio.Event()
        outcome: dict[str, float] = {}

        async def drive() -> None:
            loader = asyncio.create_task(load.run(webhook_rate=webhook_rate, read_rate=read_rate, stop=stop))
            await asyncio.sleep(2)
            cb.schedule(url, email_id)
            cb.schedule(url, sms_id)
            print(f"two workers: sending {recipients + sms:,} under load …", flush=True)
            outcome["seconds"] = await asyncio.to_thread(wait_sent, url, [email_id, sms_id], recipients + sms, 7200)
            stop.set()
            await loader

        asyncio.run(drive())
        time.sleep(2)  # the last sends' answers reach the receivers
    finally:
        stop_all(procs)
        sink_proc.terminate()
        twilio.stop()

    ids = received_ids(folder)
    email_expected = solo + recipients
    to_numbers = Counter(str(m.get("to")) for m in twilio.messages.values())
    webhook_p50, webhook_p99 = percentiles(load.webhook_ms)
    read_p50, read_p99 = percentiles(load.read_ms)
    return Figures(
        recipients=recipients, sms=sms, solo=solo, solo_rate=solo / solo_seconds,
        scale_rate=(recipients + sms) / outcome["seconds"], scale_seconds=outcome["seconds"],
        webhooks=len(load.webhook_ms), webhook_p50=webhook_p50, webhook_p99=webhook_p99,
        reads=len(load.read_ms), read_p50=read_p50, read_p99=read_p99, errors=load.errors[:5], failed=len(load.errors),
        email_expected=email_expected, email_unique=len(ids), email_duplicates=sum(ids.values()) - len(ids),
        sms_expected=sms, sms_unique=len(to_numbers), sms_duplicates=sum(to_numbers.values()) - len(to_numbers),
    )


def section(f: Figures, command: str, webhook_rate: float, read_rate: float) -> str:
    load = os.getloadavg()[0]
    verdict = lambda ok: "PASS" if ok else "**MISS**"  # noqa: E731
    lost = (f.email_expected - f.email_unique) + (f.sms_expected - f.sms_unique)
    duplicates = f.email_duplicates + f.sms_duplicates
    return "\n".join([
        SECTION, "",
        f"Recorded {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} with:", "", "```", command, "```", "",
        f"- Machine: {os.cpu_count()} CPUs shared by PostgreSQL, 2 API processes, 2 workers, the SMTP sink, the "
        f"local Twilio server and the load generator; Python {platform.python_version()}; 1-minute load average "
        f"{load:.2f} at the end.",
        f"- One worker alone: {f.solo:,} personalised emails. Scale run: {f.recipients:,} emails and {f.sms:,} SMS "
        f"(two campaigns at once) by 2 `hub worker` processes, while signed inbound-SMS webhooks at "
        f"{webhook_rate:g}/s and timeline reads at {read_rate:g}/s (API key) went to 2 `hub serve --no-worker` "
        "processes in turn, scheduled at fixed intervals.",
        "- Counted at the receivers: Message-IDs the SMTP sink accepted, messages the Twilio-compatible server created.",
        "",
        "| Figure | Value |", "|---|---|",
        f"| one worker | {f.solo_rate:,.0f} messages/s |",
        f"| two workers, under API load | {f.scale_rate:,.0f} messages/s ({f.speedup:.2f}× one worker) |",
        f"| webhook answers ({f.webhooks:,}) | p50 {f.webhook_p50:.1f} ms, p99 {f.webhook_p99:.1f} ms |",
        f"| timeline reads ({f.reads:,}) | p50 {f.read_p50:.1f} ms, p99 {f.read_p99:.1f} ms |",
        f"| failed API requests | {f.failed} {'; '.join(f.errors[:2])} |",
        f"| email: expected / arrived / twice | {f.email_expected:,} / {f.email_unique:,} / {f.email_duplicates:,} |",
        f"| SMS: expected / arrived / twice | {f.sms_expected:,} / {f.sms_unique:,} / {f.sms_duplicates:,} |",
        "",
        "| Goal | Measured | Verdict |", "|---|---|---|",
        f"| zero losses | {lost} lost | {verdict(lost == 0)} |",
        f"| no duplicates beyond the bound (no crash here: bound 0) | {duplicates} | {verdict(duplicates == 0)} |",
        f"| every API request answered | {f.failed} failed | {verdict(f.failed == 0)} |",
        "",
    ])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="role")
    sink_args = sub.add_parser("sink", help="(internal) the SMTP sink process")
    sink_args.add_argument("--port", type=int, required=True)
    sink_args.add_argument("--dir", type=Path, required=True)
    parser.add_argument("--recipients", type=int, default=100_000, help="emails in the scale run")
    parser.add_argument("--sms", type=int, default=5_000, help="SMS in the scale run")
    parser.add_argument("--solo", type=int, default=10_000, help="emails sent by one worker alone (the baseline)")
    parser.add_argument("--webhook-rate", type=float, default=40.0, help="signed webhooks per second")
    parser.add_argument("--read-rate", type=float, default=20.0, help="timeline reads per second")
    parser.add_argument("--database-url", default=DEFAULT_PG)
    parser.add_argument("--record", action="store_true", help="write the figures into docs/benchmarks.md")
    args = parser.parse_args(argv)
    if args.role == "sink":
        sink(args.port, args.dir)
        return
    figures = run(args.database_url, recipients=args.recipients, sms=args.sms, solo=args.solo,
                  webhook_rate=args.webhook_rate, read_rate=args.read_rate)
    command = "python -m bench.scale " + shlex.join(a for a in (argv if argv is not None else sys.argv[1:]))
    text_ = section(figures, command.strip(), args.webhook_rate, args.read_rate)
    print(text_)
    if args.record:
        record_section(text_, heading=SECTION)


if __name__ == "__main__":
    main()
