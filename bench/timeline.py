"""Timeline read benchmark: the caller screen pop and deep keyset pages on a large PostgreSQL store.

Fills a dedicated database through COPY (100k contacts, 2M events, one contact holding 100k of them),
then times the hub's own read path (hub.timeline) against the same SQL sent raw through psycopg,
interleaved in one process so both feel the same machine load. Figures go to docs/benchmarks.md.
"""

from __future__ import annotations

import html
import json
import os
import platform
import random
import re
import shlex
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Annotated, Any

import phonenumbers
import psycopg
import typer
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from bench.records import DOCS, record_section

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/hub_bench"
SECTION = "## Timeline reads"
PAGE = 50
DEEP_PAGE = 1000
BIG_ID, SMALL_ID, SMALL_EVENTS = 1, 2, 10
REGION = "RU"
SEED = 15
SPAN = timedelta(days=730)

console = Console()

# Words for synthetic but realistically sized texts; each event draws from a pool built from these.
SENTENCES = {
    "ru": [
        "Спасибо за обращение, мы передали ваш вопрос в отдел логистики.",
        "Подтверждаем получение оплаты по счёту, закрывающие документы отправим в течение двух рабочих дней.",
        "Подскажите, пожалуйста, когда вам удобно поговорить по телефону на этой неделе?",
        "К сожалению, этого товара сейчас нет на складе, поставку ожидаем в конце месяца.",
        "При заказе от пятидесяти единиц готовы предложить скидку десять процентов.",
        "Курьер позвонит накануне доставки и согласует с вами удобное время.",
        "Договор подписан с нашей стороны, оригиналы отправили Почтой России.",
        "Две позиции в заказе собрали с ошибкой, замену отправим бесплатно.",
        "Встреча переносится на четверг, начало в одиннадцать по московскому времени.",
        "Клиент просил перезвонить после обеда, вопрос касается возврата средств.",
        "Возврат оформлен, деньги поступят на карту в течение пяти–десяти банковских дней.",
        "Спасибо за отзыв, ваше предложение мы передали команде продукта.",
    ],
    "en": [
        "Thanks for getting in touch, we have passed your question on to our logistics team.",
        "We confirm receipt of your payment; the closing documents will follow within two business days.",
        "Could you let me know a good time for a call this week?",
        "Unfortunately this item is out of stock at the moment; we expect a delivery at the end of the month.",
        "For orders of fifty units or more we can offer a ten percent discount.",
        "The courier will call the day before delivery to agree on a convenient time.",
        "The contract is signed on our side and the originals are in the post.",
        "Two items in the order were picked incorrectly; we will send replacements free of charge.",
        "The meeting moves to Thursday at eleven, London time.",
        "The customer asked for a call back after lunch about a refund.",
        "Your refund is on its way and should reach your card within five to ten business days.",
        "Thank you for the feedback; we have shared your suggestion with the product team.",
    ],
}
SUBJECTS = {
    "ru": ["Ваш заказ отправлен", "Счёт на оплату", "Вопрос по доставке", "Договор и документы",
           "Напоминание о встрече", "Re: возврат товара", "Коммерческое предложение", "Акт сверки"],
    "en": ["Your order has shipped", "Invoice", "Question about delivery", "Contract and documents",
           "Meeting reminder", "Re: return", "Our proposal", "Reconciliation statement"],
}
GREETINGS = {"ru": ["Добрый день!", "Здравствуйте!", "Коллеги, добрый вечер."], "en": ["Hello,", "Hi there,", "Good morning,"]}
SIGNATURES = {"ru": "С уважением,\nотдел по работе с клиентами", "en": "Best regards,\nCustomer care"}
CALLS = {"ru": ["Входящий звонок", "Исходящий звонок", "Пропущенный звонок"], "en": ["Inbound call", "Outbound call", "Missed call"]}
ORDERS = {
    "ru": "Заказ №{n} оформлен: {k} поз. на сумму {a} ₽. Статус: {s}.",
    "en": "Order #{n} placed: {k} items, {a} RUB in total. Status: {s}.",
}
ORDER_STATES = {"ru": ["оплачен", "собран", "передан в доставку", "доставлен"], "en": ["paid", "packed", "shipped", "delivered"]}
NAMES = {
    "ru": (["Иван", "Мария", "Алексей", "Ольга", "Дмитрий", "Анна", "Сергей", "Екатерина", "Николай", "Татьяна"],
           [("Петров", "petrov"), ("Смирнова", "smirnova"), ("Кузнецов", "kuznetsov"), ("Попова", "popova"),
            ("Соколов", "sokolov"), ("Лебедева", "lebedeva"), ("Новиков", "novikov"), ("Морозова", "morozova")]),
    "en": (["James", "Emma", "Oliver", "Sophia", "Harry", "Amelia", "Jack", "Grace"],
           [("Smith", "smith"), ("Jones", "jones"), ("Taylor", "taylor"), ("Brown", "brown"), ("Wilson", "wilson")]),
}
DOMAINS = ["mail.ru", "yandex.ru", "gmail.com", "outlook.com", "bk.ru", "company.example"]
# Channel mix of a typical small business; weights are shares of all events.
CHANNELS = {"email": 35, "sms": 25, "phone": 15, "note": 10, "commerce": 15}

EVENT_COLUMNS = ("id", "contact_id", "occurred_at", "channel", "direction", "kind", "subject", "text", "html",
                 "data", "external_id", "thread_key", "status", "actor_user_id", "created_at")
IDENTITY_SQL = "SELECT contact_id FROM identity WHERE kind = 'phone' AND value = %s"


def page_sql(limit: int, *, after: bool = False) -> str:
    """The raw baseline of one timeline page (one more row than shown, to know if there is a next)."""
    keyset = "AND (occurred_at, id) < (%s, %s) " if after else ""
    return (f"SELECT {', '.join(EVENT_COLUMNS)} FROM timeline_event WHERE contact_id = %s {keyset}"
            f"ORDER BY occurred_at DESC, id DESC LIMIT {limit + 1}")


@dataclass(frozen=True)
class DataSet:
    contacts: int
    events: int
    big: int

    @property
    def deep_page(self) -> int:
        """Page 1,000 when the big contact has that many pages, else its last full page."""
        return min(DEEP_PAGE, self.big // PAGE)

    def marker(self, revision: str | None) -> dict[str, Any]:
        return {"bench": "timeline", "contacts": self.contacts, "events": self.events, "big": self.big,
                "revision": revision}


# ---------------------------------------------------------------- the database and the fill


def psycopg_url(url: str) -> str:
    return re.sub(r"^(postgresql\+psycopg|postgres)://", "postgresql://", url)


def ensure_database(url: str) -> bool:
    """Create the database named in `url` when the server lacks it; True when it was created."""
    name = conninfo_to_dict(url).get("dbname")
    if not name:
        raise typer.BadParameter("the URL must name a database, e.g. …/hub_bench", param_hint="--database-url")
    with psycopg.connect(make_conninfo(url, dbname="postgres"), autocommit=True) as admin:
        if admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            return False
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(str(name))))
        return True


def read_marker(conn: psycopg.Connection) -> dict[str, Any] | None:
    row = conn.execute(
        "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = current_database()"
    ).fetchone()
    try:
        marker = json.loads(row[0]) if row and row[0] else None
    except ValueError:
        return None
    return marker if isinstance(marker, dict) and marker.get("bench") == "timeline" else None


def reuse_problem(conn: psycopg.Connection, ds: DataSet, revision: str | None) -> str | None:
    """Why the database cannot be reused for `ds` (None when it can)."""
    marker = read_marker(conn)
    if marker != ds.marker(revision):
        held = "no benchmark data set" if marker is None else ", ".join(f"{k} {v}" for k, v in marker.items() if k != "bench")
        return f"it holds {held}"
    counts = conn.execute(
        "SELECT (SELECT count(*) FROM contact), (SELECT count(*) FROM timeline_event),"
        " (SELECT count(*) FROM timeline_event WHERE contact_id = %s),"
        " (SELECT count(*) FROM timeline_event WHERE contact_id = %s)", (BIG_ID, SMALL_ID)
    ).fetchone()
    if counts != (ds.contacts, ds.events, ds.big, SMALL_EVENTS):
        return f"its row counts {counts} do not match the marker"
    return None


def esc(value: str) -> str:
    """A value in COPY's text format."""
    return value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


def text_pools(rng: random.Random, size: int = 1500) -> dict[tuple[str, str], list[tuple[str, str, str]]]:
    """Escaped (subject, text, html) triples per (channel, language), of each channel's usual length."""
    pools: dict[tuple[str, str], list[tuple[str, str, str]]] = {}
    nul = r"\N"
    for lang, sentences in SENTENCES.items():
        def said(lo: int, hi: int) -> str:
            return " ".join(rng.choices(sentences, k=rng.randint(lo, hi)))
        email, sms, phone, note, commerce = [], [], [], [], []
        for _ in range(size):
            paragraphs = [rng.choice(GREETINGS[lang])] + [said(1, 4) for _ in range(rng.randint(1, 5))]
            if rng.random() < 0.2:  # a reply quoting the earlier letter
                paragraphs += ["> " + said(3, 12)]
            paragraphs.append(SIGNATURES[lang])
            body = "\n\n".join(paragraphs)
            markup = "".join(f"<p>{html.escape(p)}</p>" for p in paragraphs) if rng.random() < 0.5 else None
            email.append((esc(rng.choice(SUBJECTS[lang])), esc(body), esc(markup) if markup else nul))
            sms.append((nul, esc(said(1, 2)[:300]), nul))
            call = f"{rng.choice(CALLS[lang])}, {rng.randint(0, 25)}:{rng.randint(0, 59):02d}."
            phone.append((nul, esc(f"{call} {said(1, 3)}"), nul))
            note.append((nul, esc(said(1, 6)), nul))
            line = ORDERS[lang].format(n=rng.randint(10_000, 999_999), k=rng.randint(1, 12),
                                       a=f"{rng.randint(300, 90_000):,}".replace(",", " "), s=rng.choice(ORDER_STATES[lang]))
            commerce.append((esc(line.split(":")[0]), esc(line + (" " + said(0, 1) if rng.random() < 0.5 else "")), nul))
        for channel, pool in zip(CHANNELS, (email, sms, phone, note, commerce)):
            pools[(channel, lang)] = pool
    return pools


def event_counts(rng: random.Random, ds: DataSet) -> list[int]:
    """Events per contact id: the big and small contacts exactly, the rest long-tailed (Pareto)."""
    counts = [0] * (ds.contacts + 1)
    counts[BIG_ID], counts[SMALL_ID] = ds.big, SMALL_EVENTS
    rest, others = ds.events - ds.big - SMALL_EVENTS, range(SMALL_ID + 1, ds.contacts + 1)
    cap = ds.big // 2  # nobody else comes near the big contact
    weights = [rng.paretovariate(1.5) for _ in others]
    scale = rest / sum(weights) if weights else 0.0
    for cid, weight in zip(others, weights):
        counts[cid] = min(cap, int(weight * scale))
    left = rest - sum(counts[SMALL_ID + 1:])
    while left > 0:
        cid = rng.randrange(SMALL_ID + 1, ds.contacts + 1)
        if counts[cid] < cap:
            counts[cid] += 1
            left -= 1
    return counts


def contact_lines(rng: random.Random, ds: DataSet, locales: list[str], created: str) -> Iterator[str]:
    for cid in range(1, ds.contacts + 1):
        lang = locales[cid]
        first, (last, _) = rng.choice(NAMES[lang][0]), rng.choice(NAMES[lang][1])
        name = f"{first} {last}"
        zone = "Europe/Moscow" if lang == "ru" else "Europe/London"
        yield f"{cid}\t{esc(name)}\t{esc(name.casefold())}\t{lang}\t{zone}\t{{}}\t[]\t\\N\tcustomer\t\\N\t{created}\t{created}\n"


def identity_lines(rng: random.Random, ds: DataSet, locales: list[str], created: str) -> Iterator[str]:
    """A mobile phone (E.164) for every contact and an email for most; ids follow the rows."""
    mobiles = rng.sample(range(10**9), ds.contacts)  # distinct +79XXXXXXXXX numbers
    ident = 0
    for cid in range(1, ds.contacts + 1):
        ident += 1
        yield f"{ident}\t{cid}\tphone\t+79{mobiles[cid - 1]:09d}\tmobile\tt\t{created}\n"
        if rng.random() < 0.85:
            ident += 1
            translit = rng.choice(NAMES[locales[cid]][1])[1]
            yield f"{ident}\t{cid}\temail\t{translit}.{cid}@{rng.choice(DOMAINS)}\twork\tf\t{created}\n"


def event_lines(rng: random.Random, ds: DataSet, locales: list[str], start: float) -> Iterator[str]:
    """Events in time order (ids rise with time, contacts interleaved as a live hub writes them)."""
    counts = event_counts(rng, ds)
    owners = [cid for cid, n in enumerate(counts) for _ in range(n)]
    rng.shuffle(owners)
    stamps = sorted(rng.random() for _ in range(ds.events))
    span = SPAN.total_seconds()
    channels = rng.choices(list(CHANNELS), weights=list(CHANNELS.values()), k=ds.events)
    pools = text_pools(rng)
    utc, nul, rand, choice = timezone.utc, r"\N", rng.random, rng.choice
    for i in range(ds.events):
        eid, cid, channel = i + 1, owners[i], channels[i]
        at = datetime.fromtimestamp(start + stamps[i] * span, utc).isoformat()
        subject, text, markup = choice(pools[(channel, locales[cid])])
        thread, status = nul, nul
        if channel == "email":
            direction, kind = ("in" if rand() < 0.5 else "out"), "message"
            data = f'{{"message_id": "<{eid}.{cid}@mail.bench.example>"}}'
            thread = f"email:{cid}:{eid % 5}"
        elif channel == "sms":
            direction, kind = ("in" if rand() < 0.3 else "out"), "message"
            data = f'{{"segments": {1 + len(text) // 70}}}'
        elif channel == "phone":
            direction, kind = ("in" if rand() < 0.6 else "out"), "call"
            data = f'{{"duration_seconds": {int(rand() * 900)}, "recorded": false}}'
        elif channel == "note":
            direction, kind, data = "internal", "note", "{}"
        else:
            direction, kind = "internal", ("order" if rand() < 0.6 else "payment")
            data = f'{{"order_id": {eid}, "currency": "RUB"}}'
        if direction == "out":
            status = "read" if rand() < 0.4 else "delivered"
        yield (f"{eid}\t{cid}\t{at}\t{channel}\t{direction}\t{kind}\t{subject}\t{text}\t{markup}\t{data}\t"
               f"{channel}:{eid}\t{thread}\t{status}\t{nul}\t{at}\n")


def copy_rows(cur: psycopg.Cursor, statement: str, lines: Iterator[str], progress: Progress, task: Any) -> None:
    chunk: list[str] = []
    with cur.copy(statement) as copy:
        for line in lines:
            chunk.append(line)
            if len(chunk) == 5000:
                copy.write("".join(chunk).encode())
                progress.advance(task, len(chunk))
                chunk.clear()
        copy.write("".join(chunk).encode())
        progress.advance(task, len(chunk))


def fill(url: str, ds: DataSet, revision: str | None) -> float:
    """Replace the data set in the benchmark database; the seconds it took."""
    began = time.perf_counter()
    rng = random.Random(SEED)
    start = (datetime.now(timezone.utc) - SPAN).timestamp()
    created = datetime.fromtimestamp(start, timezone.utc).isoformat()
    locales = ["ru"] + ["ru" if rng.random() < 0.7 else "en" for _ in range(ds.contacts)]
    with psycopg.connect(url) as conn:
        if conn.execute("SELECT EXISTS (SELECT 1 FROM contact)").fetchone()[0] and read_marker(conn) is None:  # type: ignore[index]
            raise typer.BadParameter(f"{conn.info.dbname} holds contacts and is not a benchmark database; "
                                     "point --database-url at an empty one", param_hint="--database-url")
        superuser = conn.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user").fetchone()[0]  # type: ignore[index]
        if superuser:
            # The generated rows are consistent, so the per-row foreign-key triggers are skipped.
            conn.execute("SET LOCAL session_replication_role = replica")
        # Truncating in the same transaction lets COPY write frozen rows: no hint-bit writes or
        # vacuum freeze later, which would otherwise land in the middle of the measurements.
        conn.execute("TRUNCATE contact, identity, timeline_event RESTART IDENTITY CASCADE")
        columns = [TextColumn("{task.description:<11}"), BarColumn(), MofNCompleteColumn(),
                   TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn()]
        with conn.cursor() as cur, Progress(*columns, console=console) as progress:
            for table, total, cols, lines in (
                ("contact", ds.contacts, "id, display_name, search_name, locale, time_zone, attributes, tags, "
                 "owner_id, lifecycle_stage, merged_into, created_at, updated_at", contact_lines(rng, ds, locales, created)),
                ("identity", None, "id, contact_id, kind, value, label, is_primary, created_at",
                 identity_lines(rng, ds, locales, created)),
                ("timeline_event", ds.events, ", ".join(EVENT_COLUMNS), event_lines(rng, ds, locales, start)),
            ):
                task = progress.add_task(table, total=total)
                copy_rows(cur, f"COPY {table} ({cols}) FROM STDIN WITH (FREEZE)", lines, progress, task)
                progress.update(task, total=progress.tasks[task].completed)
        for table in ("contact", "identity", "timeline_event"):
            conn.execute(sql.SQL("SELECT setval(pg_get_serial_sequence({t}, 'id'), (SELECT max(id) FROM {i}))")
                         .format(t=sql.Literal(table), i=sql.Identifier(table)))
        conn.execute(sql.SQL("COMMENT ON DATABASE {} IS {}").format(
            sql.Identifier(conn.info.dbname), sql.Literal(json.dumps(ds.marker(revision)))))
        conn.commit()
        conn.autocommit = True
        with console.status("VACUUM (ANALYZE) so autovacuum does not start during the measurements"):
            conn.execute("VACUUM (ANALYZE) contact, identity, timeline_event")
    return time.perf_counter() - began


# ---------------------------------------------------------------- measuring


@dataclass
class Timing:
    ns: list[int] = field(default_factory=list)

    def ms(self, pct: int) -> float:
        """The pct-th percentile in milliseconds."""
        if len(self.ns) < 2:
            return self.ns[0] / 1e6 if self.ns else float("nan")
        return statistics.quantiles(self.ns, n=100, method="inclusive")[pct - 1] / 1e6


@dataclass(frozen=True)
class Scenario:
    key: str
    label: str
    hub: Callable[[int], list[int]]
    raw: Callable[[int], list[int]]


def scenarios(hub: Any, conn: psycopg.Connection, auto: psycopg.Connection, ds: DataSet, rounds: int) -> list[Scenario]:
    """The reads to time, each as (hub, raw) callables that return the event ids they read. The screen
    pop (a) reads outside a transaction on both paths (`auto` is an autocommit connection), as
    the hub's /pop does; the pages (b...) end a transaction every time on both."""
    from hub.db import without_transaction
    from hub.timeline import decode_cursor, lookup_caller, timeline_page

    e164 = [r[0] for r in conn.execute(
        "SELECT value FROM identity WHERE kind = 'phone' ORDER BY random() LIMIT %s", (rounds,))]
    conn.rollback()
    # The caller's number as a Russian phone shows it, "8 (916) 123-45-67": the hub must normalize.
    national = [phonenumbers.format_number(phonenumbers.parse(v), phonenumbers.PhoneNumberFormat.NATIONAL) for v in e164]

    deep = ds.deep_page
    cursor = None
    with hub.session(read_only=True) as s, Progress(console=console, transient=True) as progress:
        task = progress.add_task(f"walking to page {deep} through the hub", total=deep - 1)
        for _ in range(deep - 1):
            cursor = timeline_page(s, contact_id=BIG_ID, limit=PAGE, cursor=cursor).next_cursor
            progress.advance(task)
    if cursor is None:
        raise RuntimeError(f"the big contact has fewer than {deep} pages")
    at, last_id = decode_cursor(cursor)
    boundary = conn.execute(
        "SELECT occurred_at, id FROM timeline_event WHERE contact_id = %s ORDER BY occurred_at DESC, id DESC "
        "OFFSET %s LIMIT 1", (BIG_ID, (deep - 1) * PAGE - 1)).fetchone()
    conn.rollback()
    at = datetime.fromisoformat(str(at))
    if boundary != (at, last_id):
        raise RuntimeError(f"the hub's cursor for page {deep} points at {at, last_id}, SQL says {boundary}")

    def hub_caller(i: int) -> list[int]:
        with hub.session(read_only=True) as s:
            without_transaction(s)
            contact = lookup_caller(s, phone=national[i % len(national)], region=REGION)
            return [e.id for e in timeline_page(s, contact_id=contact.id, limit=PAGE).items]

    def raw_caller(i: int) -> list[int]:
        with auto.cursor() as cur:
            cur.execute(IDENTITY_SQL, (e164[i % len(e164)],))
            contact_id = cur.fetchone()[0]  # type: ignore[index]
            cur.execute(page_sql(PAGE), (contact_id,))
            rows = cur.fetchall()
        return [r[0] for r in rows[:PAGE]]

    def hub_page(contact_id: int, after: str | None, limit: int = PAGE) -> Callable[[int], list[int]]:
        def run(_: int) -> list[int]:
            with hub.session(read_only=True) as s:
                return [e.id for e in timeline_page(s, contact_id=contact_id, limit=limit, cursor=after).items]
        return run

    def raw_page(contact_id: int, after: tuple[datetime, int] | None, limit: int = PAGE) -> Callable[[int], list[int]]:
        statement, params = page_sql(limit, after=after is not None), (contact_id, *(after or ()))

        def run(_: int) -> list[int]:
            with conn.cursor() as cur:
                cur.execute(statement, params)
                rows = cur.fetchall()
            conn.rollback()
            return [r[0] for r in rows[:limit]]
        return run

    return [
        Scenario("caller", "(a) caller lookup + page 1", hub_caller, raw_caller),
        Scenario("deep", f"(b) big contact, page {deep:,}", hub_page(BIG_ID, cursor), raw_page(BIG_ID, (at, last_id))),
        Scenario("big", "big contact, page 1", hub_page(BIG_ID, None), raw_page(BIG_ID, None)),
        Scenario("small", f"{SMALL_EVENTS}-event contact, page 1", hub_page(SMALL_ID, None), raw_page(SMALL_ID, None)),
        # The small contact's page holds 10 rows; the same number from the big one isolates history size.
        Scenario("big_few", f"big contact, newest {SMALL_EVENTS}", hub_page(BIG_ID, None, SMALL_EVENTS),
                 raw_page(BIG_ID, None, SMALL_EVENTS)),
    ]


def measure(runs: list[Scenario], samples: int, warmup: int) -> dict[str, dict[str, Timing]]:
    """Interleave hub and raw runs of every scenario in a shuffled order each round."""
    for sc in runs:  # both paths must read the same page, or the comparison means nothing
        for i in range(3):
            hub_ids, raw_ids = sc.hub(i), sc.raw(i)
            if hub_ids != raw_ids or not hub_ids:
                raise RuntimeError(f"{sc.label}: the hub read {hub_ids[:5]}…, raw SQL read {raw_ids[:5]}…")
    timings = {sc.key: {"hub": Timing(), "raw": Timing()} for sc in runs}
    steps = [(sc.key, path, getattr(sc, path)) for sc in runs for path in ("hub", "raw")]
    order = random.Random(SEED)
    clock = time.perf_counter_ns
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console, transient=True) as progress:
        task = progress.add_task("warming up", total=warmup + samples)
        for rnd in range(warmup + samples):
            if rnd == warmup:
                progress.update(task, description="measuring")
            order.shuffle(steps)
            for key, path, run in steps:
                began = clock()
                run(rnd)
                took = clock() - began
                if rnd >= warmup:
                    timings[key][path].ns.append(took)
            progress.advance(task)
    return timings


# ---------------------------------------------------------------- reporting


@dataclass(frozen=True)
class Goal:
    name: str
    measured: str
    met: bool | None  # None: shown for context, not judged

    @property
    def verdict(self) -> str:
        return "—" if self.met is None else "PASS" if self.met else "MISS"


def goals(t: dict[str, dict[str, Timing]], ds: DataSet) -> list[Goal]:
    """Each goal of the issue with its figure; ratios at p50, the raw baseline's own ratio beside."""
    def p50(key: str, path: str = "hub") -> float:
        return t[key][path].ms(50)

    def ratio(a: str, b: str, path: str) -> float:
        return p50(a, path) / p50(b, path)

    def spread(a: str, b: str, path: str) -> float:
        return max(ratio(a, b, path), ratio(b, a, path))

    def pair(value: float, raw: float) -> str:
        return f"{value:.2f}× (raw {raw:.2f}×)"

    caller_p99 = t["caller"]["hub"].ms(99)
    hub_raw = {key: p50(key) / p50(key, "raw") for key in ("caller", "deep")}
    deep = ratio("deep", "big", "hub")
    few = spread("big_few", "small", "hub")
    return [
        Goal("(a) caller lookup + page 1: hub p99 under 20 ms", f"{caller_p99:.2f} ms", caller_p99 < 20),
        Goal("(a) hub/raw at p50 at most 2", f"{hub_raw['caller']:.2f}×", hub_raw["caller"] <= 2),
        Goal("(b) hub/raw at p50 at most 2", f"{hub_raw['deep']:.2f}×", hub_raw["deep"] <= 2),
        Goal(f"page {ds.deep_page:,} within 1.5× of page 1 (big contact)", pair(deep, ratio("deep", "big", "raw")),
             deep <= 1.5),
        Goal(f"{SMALL_EVENTS}-event and {ds.big:,}-event contacts within 1.5× ({SMALL_EVENTS} rows each)",
             pair(few, spread("big_few", "small", "raw")), few <= 1.5),
        Goal(f"(not a goal) page 1 of each, {PAGE} rows against {SMALL_EVENTS}",
             pair(spread("big", "small", "hub"), spread("big", "small", "raw")), None),
    ]


def rows(t: dict[str, dict[str, Timing]], runs: list[Scenario]) -> list[list[str]]:
    out = []
    for sc in runs:
        for path in ("hub", "raw"):
            timing = t[sc.key][path]
            ratio = f"{timing.ms(50) / t[sc.key]['raw'].ms(50):.2f}×" if path == "hub" else ""
            out.append([sc.label if path == "hub" else "", path] + [f"{timing.ms(p):.2f}" for p in (50, 95, 99)] + [ratio])
    return out


HEADERS = ["Read", "Path", "p50 ms", "p95 ms", "p99 ms", "hub/raw p50"]
BUSY = ("Other processes competed for the CPUs: that slows the hub's path, which spends most of its time "
        "in Python, more than the raw one, which mostly waits on the server, so hub/raw and p99 read high. "
        "Run on a quiet machine for representative figures.")


def environment(conn: psycopg.Connection) -> dict[str, str]:
    """The machine and store the figures came from."""
    def first(path: str, prefix: str) -> str:
        try:
            return next(line.split(":", 1)[1].strip() for line in Path(path).read_text().splitlines()
                        if line.startswith(prefix))
        except (OSError, StopIteration):
            return "unknown"

    ram = first("/proc/meminfo", "MemTotal")
    ram = f"{int(ram.split()[0]) / 2**20:.1f} GiB" if ram != "unknown" else ram
    pg, size = conn.execute(
        "SELECT current_setting('server_version'), pg_size_pretty(pg_total_relation_size('timeline_event'))"
    ).fetchone()  # type: ignore[misc]
    conn.rollback()
    return {"cpus": str(len(os.sched_getaffinity(0))), "ram": ram, "cpu": first("/proc/cpuinfo", "model name"),
            "postgres": str(pg), "python": platform.python_version(), "events_size": str(size)}


def command_line() -> str:
    args = " ".join(shlex.quote(a) for a in sys.argv[1:])
    return re.sub(r"(://[^:/@]+:)[^@]+@", r"\1***@", f"python -m bench.timeline {args}".strip())


def markdown(t: dict[str, dict[str, Timing]], runs: list[Scenario], ds: DataSet, info: dict[str, str],
             context: dict[str, str]) -> str:
    def table(headers: list[str], body: list[list[str]]) -> str:
        lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
        return "\n".join(lines + ["| " + " | ".join(cell or " " for cell in row) + " |" for row in body])

    verdicts = [[g.name, g.measured, f"**{g.verdict}**" if g.met is False else g.verdict] for g in goals(t, ds)]
    return f"""{SECTION}

Recorded {context['date']} with:

```
{command_line()}
```

- Machine: {info['cpus']} CPUs ({info['cpu']}), {info['ram']} RAM, PostgreSQL {info['postgres']}
  (stock settings), Python {info['python']}; 1-minute load average {context['load']}.
- Data set: {ds.contacts:,} contacts, {ds.events:,} events over two years ({info['events_size']} with indexes);
  the big contact holds {ds.big:,}, the small one {SMALL_EVENTS}; {context['fill']}.
- {context['samples']} samples per read after {context['warmup']} warm-up rounds, hub and raw interleaved in
  shuffled order in one process.{context['busy']}

{table(HEADERS, rows(t, runs))}

{table(["Goal", "Measured", "Verdict"], verdicts)}

How to read it: *hub* is the hub's own read path (`hub.timeline.lookup_caller` and `timeline_page` in a
session from `Hub.session(read_only=True)`, pooled connection, ORM objects and all); *raw* is the same
SQL sent through one plain psycopg connection, given the number already in E.164. Read (a) is read
outside a transaction on both paths (the hub's `hub.db.without_transaction`, as its /pop does; an
autocommit connection for raw), two round trips each; the other reads end their transaction every
time on both paths. Read (a) is one screen pop: a random existing caller's number in national
notation ("8 (916) …") resolved to the contact, then its newest {PAGE} events. Read (b) is page
{ds.deep_page:,} of the big contact by keyset cursor (the cursor the hub handed out after walking there
once). Ratios are taken at p50; the raw baseline's own ratio beside a hub ratio shows what the store
itself does. hub/raw is the price of the hub's Python (SQLAlchemy ORM objects, the pool's pre-ping, phone
parsing) over the bare queries, and grows when other processes compete for the CPUs; page
{ds.deep_page:,} against page 1 and the big against the small contact show whether a long history slows
a page down, and hold on a busy machine too. The small contact
has only {SMALL_EVENTS} events, so its page 1 holds {SMALL_EVENTS} rows where the big contact's holds {PAGE}: the
history goal compares {SMALL_EVENTS} rows from each, and the row marked "not a goal" shows the page-1
comparison, whose gap the raw baseline shares, being the cost of five times the rows.
"""


# ---------------------------------------------------------------- command line

app = typer.Typer(add_completion=False, rich_markup_mode="rich", pretty_exceptions_show_locals=False)


HELP = "\n\n".join([
    "Time the hub's timeline read path against the same SQL sent raw through psycopg, on a large PostgreSQL store.",
    "Fills a benchmark database through COPY: contacts with E.164 phones and emails; events over two years on "
    "email, sms, phone, note and commerce, in Russian and English; contact 1 holds --big events, contact 2 "
    f"exactly {SMALL_EVENTS}. Then times, interleaved in one process: (a) a caller lookup by a phone written "
    f'"8 (916) …" plus the first page of {PAGE}; (b) page {DEEP_PAGE:,} of the big contact by keyset cursor; '
    "page 1 of the big and of the small contact. The tables give p50/p95/p99, hub/raw ratios and a verdict per goal.",
    "Try it small first: [bold]--contacts 2000 --events 50000 --big 5000[/]. The full default run fills 2M events "
    f"(a few minutes on 2 cores) into {DEFAULT_URL}, created when missing; --reuse skips the fill next time. "
    "A fill replaces contacts, identities and events, and refuses a database that holds contacts but was not "
    "filled by this benchmark.",
])


@app.command(help=HELP)
def main(
    database_url: Annotated[str, typer.Option(
        help="PostgreSQL database to fill and read (created when missing).")] = DEFAULT_URL,
    contacts: Annotated[int, typer.Option(min=3, help="Contacts to create.")] = 100_000,
    events: Annotated[int, typer.Option(min=1, help="Timeline events in all.")] = 2_000_000,
    big: Annotated[int, typer.Option(min=2 * PAGE, help=f"Events of the one big contact (page {DEEP_PAGE:,} "
                                     f"needs {DEEP_PAGE * PAGE:,}; fewer times its last full page).")] = 100_000,
    samples: Annotated[int, typer.Option(min=10, help="Timed runs of each read on each path.")] = 1000,
    warmup: Annotated[int, typer.Option(min=0, help="Untimed rounds first (caches, connection pool).")] = 100,
    reuse: Annotated[bool, typer.Option("--reuse", help="Skip the fill when the database already holds "
                                        "this data set (same sizes, same schema revision).")] = False,
    record_figures: Annotated[bool, typer.Option("--record", help="Write the figures into docs/benchmarks.md "
                                                 "(replacing the previous Timeline reads section).")] = False,
) -> None:
    """Fill the database, time the reads, print the table; --record keeps it in docs/benchmarks.md."""
    from hub.migrate import head_revision, upgrade
    from hub.registry import ChannelRegistry
    from hub.runtime import Hub
    from hub.settings import load_settings
    from hub.triggers import TriggerRegistry

    if not database_url.startswith(("postgresql", "postgres:")):
        raise typer.BadParameter("the timeline benchmark needs PostgreSQL", param_hint="--database-url")
    if not big + SMALL_EVENTS <= events <= big + SMALL_EVENTS + (contacts - 2) * (big // 2):
        raise typer.BadParameter(f"must be at least --big + {SMALL_EVENTS}, and leave no other contact more than "
                                 "half of --big", param_hint="--events")
    ds, url = DataSet(contacts, events, big), psycopg_url(database_url)
    if ensure_database(url):
        console.print(f"Created database [bold]{conninfo_to_dict(url)['dbname']}[/]")
    with tempfile.TemporaryDirectory() as data_dir:
        # Reads need neither adapters nor triggers; empty registries keep other code out of the timing.
        settings = load_settings(database_url=url, data_dir=Path(data_dir), embedded_worker=False, live_backend="memory")
        hub = Hub(settings, registry=ChannelRegistry(), triggers=TriggerRegistry())
        try:
            upgrade(hub.db.engine)
            revision = head_revision()
            with psycopg.connect(url) as conn:
                problem = reuse_problem(conn, ds, revision) if reuse else "--reuse not given"
                conn.rollback()
            if problem is None:
                fill_note = "the data set was reused from an earlier fill"
                console.print("Reusing the data set already in the database")
            else:
                if reuse:
                    console.print(f"Filling: cannot reuse the database, {problem}")
                took = fill(url, ds, revision)
                fill_note = f"filling it took {took:.0f} s"
                console.print(f"Filled in {took:.1f} s")
            load = [os.getloadavg()[0]]
            if load[0] > len(os.sched_getaffinity(0)):
                console.print(f"[yellow]Load average {load[0]:.1f} exceeds the CPUs.[/] {BUSY}")
            with psycopg.connect(url) as conn, psycopg.connect(url, autocommit=True) as auto:
                info = environment(conn)
                runs = scenarios(hub, conn, auto, ds, warmup + samples)
                timings = measure(runs, samples, warmup)
        finally:
            hub.close()
    load.append(os.getloadavg()[0])

    table = Table(title=f"Timeline reads — {samples} samples each, {ds.contacts:,} contacts, {ds.events:,} events")
    for header in HEADERS:
        table.add_column(header, justify="left" if header in ("Read", "Path") else "right")
    for row in rows(timings, runs):
        table.add_row(*row)
    console.print(table)
    verdicts = Table(title="Goals")
    for header in ("Goal", "Measured", "Verdict"):
        verdicts.add_column(header)
    for goal in goals(timings, ds):
        style = {True: "green", False: "bold red", None: "dim"}[goal.met]
        verdicts.add_row(goal.name, goal.measured, f"[{style}]{goal.verdict}[/]")
    console.print(verdicts)
    if record_figures:
        context = {"date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), "fill": fill_note,
                   "busy": f"\n- {BUSY}" if max(load) > int(info["cpus"]) else "",
                   "load": f"{load[0]:.2f} before measuring and {load[1]:.2f} after",
                   "samples": str(samples), "warmup": str(warmup)}
        record_section(markdown(timings, runs, ds, info, context), heading=SECTION)
        console.print(f"Recorded in {DOCS.relative_to(DOCS.parent.parent)}")


if __name__ == "__main__":
    app()
