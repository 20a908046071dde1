"""Historic calls from any PBX: Asterisk's CDR file (cdr_csv's Master.csv) onto the timeline.

Master.csv has no header; each row is
  accountcode, src, dst, dcontext, clid, channel, dstchannel, lastapp, lastdata,
  start, answer, end, duration, billsec, disposition, amaflags[, uniqueid[, userfield]]
with times in the PBX's local time. The side that is an extension (a short number, or "s") is the
agent; the other side is the customer, who becomes a contact if the number is new. Rows are
imported one by one: a bad row is reported with its line and reason and the rest still go in, and
re-importing the file (or a longer one) adds only what is new, because each call's external id is
the row's uniqueid (or a digest of the row when the PBX does not log one).
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, TextIO
from zoneinfo import ZoneInfo

from channels.phone.calls import CHANNEL, CallOutcome, describe, thread_key
from channels.phone.settings import PhoneSettings
from hub.identities import InvalidIdentity, normalize_phone
from hub.ingest import IdentityRef, InboundEvent, post_event
from hub.models import Direction, IdentityKind

if TYPE_CHECKING:
    from hub.runtime import Hub

COLUMNS = ("accountcode", "src", "dst", "dcontext", "clid", "channel", "dstchannel", "lastapp", "lastdata",
           "start", "answer", "end", "duration", "billsec", "disposition", "amaflags", "uniqueid", "userfield")
MIN_COLUMNS, MAX_COLUMNS = 16, 20  # some builds append sequence and linkedid
DISPOSITIONS = {
    "ANSWERED": CallOutcome.ANSWERED,
    "NO ANSWER": CallOutcome.MISSED,
    "BUSY": CallOutcome.BUSY,
    "FAILED": CallOutcome.FAILED,
    "CONGESTION": CallOutcome.FAILED,
}
INBOUND_CONTEXTS = re.compile(r"from[-_](trunk|pstn|external|did|provider)|incoming|inbound", re.IGNORECASE)
CHANNEL_PEER = re.compile(r"^[A-Za-z0-9]+/([^-@/]+)")  # SIP/1002-0000001a → 1002
Progress = Callable[[int, int], None]  # (rows done, rows in all)


class CdrRowError(ValueError):
    """Why one row cannot be imported."""


@dataclass(frozen=True)
class Rejected:
    line: int
    reason: str
    raw: str


@dataclass
class CdrReport:
    rows: int = 0
    imported: int = 0
    already: int = 0  # rows an earlier import already put on the timeline
    rejected: list[Rejected] = field(default_factory=list)


def _extension(value: str, max_digits: int) -> bool:
    return value == "s" or (value.isdigit() and 0 < len(value) <= max_digits)


def _time(value: str, zone: ZoneInfo, column: str) -> datetime:
    try:
        return datetime.strptime(value.strip(), "%Y-%m-%d %H:%M:%S").replace(tzinfo=zone)
    except ValueError:
        raise CdrRowError(f"{column} {value!r} is not a time like 2026-01-15 09:30:00") from None


def _seconds(value: str, column: str) -> int:
    if not value.strip().isdigit():
        raise CdrRowError(f"{column} {value!r} is not a whole number of seconds")
    return int(value)


def parse_row(cells: list[str], *, settings: PhoneSettings, region: str, zone: ZoneInfo,
              source: str) -> InboundEvent:
    """One Master.csv row as a call event (pure); CdrRowError says what is wrong with it."""
    if not MIN_COLUMNS <= len(cells) <= MAX_COLUMNS:
        raise CdrRowError(f"{len(cells)} columns; Master.csv rows have {MIN_COLUMNS} to {MAX_COLUMNS}")
    row = dict(zip(COLUMNS, cells, strict=False))  # rows may stop before uniqueid
    src, dst = row["src"].strip(), row["dst"].strip()
    max_digits = settings.extension_max_digits
    src_internal, dst_internal = _extension(src, max_digits), _extension(dst, max_digits)
    if src_internal and dst_internal:
        raise CdrRowError(f"an internal call between extensions {src} and {dst}, with no customer on it")
    if src_internal:
        inbound, customer, extension = False, dst, src
    elif dst_internal or INBOUND_CONTEXTS.search(row["dcontext"]):
        inbound, customer, extension = True, src, dst if dst_internal else ""
    else:
        raise CdrRowError(f"neither {src!r} nor {dst!r} is an extension, so the customer is unknown")
    if not customer:
        raise CdrRowError("the customer's number is empty (a withheld caller id?)")
    try:
        number = normalize_phone(customer, region)
    except InvalidIdentity as exc:
        raise CdrRowError(str(exc)) from None
    disposition = row["disposition"].strip().upper()
    if disposition not in DISPOSITIONS:
        raise CdrRowError(f"disposition {row['disposition']!r} is not one of {', '.join(DISPOSITIONS)}")
    start = _time(row["start"], zone, "start")
    duration, billsec = _seconds(row["duration"], "duration"), _seconds(row["billsec"], "billsec")
    outcome = DISPOSITIONS[disposition]
    if row["lastapp"].strip().lower() == "voicemail" and outcome in (CallOutcome.ANSWERED, CallOutcome.MISSED):
        outcome = CallOutcome.VOICEMAIL
    if inbound and not extension:
        peer = CHANNEL_PEER.match(row["dstchannel"].strip())
        extension = peer.group(1) if peer and _extension(peer.group(1), max_digits) else ""
    agent = settings.agent_by_extension(extension) if extension and extension != "s" else None
    uniqueid = row.get("uniqueid", "").strip()
    key = uniqueid or hashlib.sha256("|".join(cells[:16]).encode()).hexdigest()[:32]
    data = {
        "source": f"cdr:{source}", "direction": "in" if inbound else "out",
        "from": number if inbound else (extension or src), "to": (extension or dst) if inbound else number,
        "outcome": outcome.value, "answered": outcome == CallOutcome.ANSWERED or None,
        "duration_seconds": duration, "talk_seconds": billsec, "extension": extension or None,
        "agent_user_id": agent.user_id if agent else None, "agent_label": (agent.label or None) if agent else None,
        "disposition": disposition, "uniqueid": uniqueid or None, "clid": row["clid"] or None,
    }
    return InboundEvent(
        channel=CHANNEL,
        kind="call",
        direction=Direction.IN if inbound else Direction.OUT,
        external_id=f"cdr:{source}:{key}",
        occurred_at=start,
        identities=[IdentityRef(kind=IdentityKind.PHONE, value=number)],
        subject="Incoming call" if inbound else "Outgoing call",
        text=describe(data),
        thread_key=thread_key(f"pbx:{source}", number),
        status=outcome.value,
        data={k: v for k, v in data.items() if v is not None},
        actor_user_id=agent.user_id if agent else None,
    )


def _raw(cells: list[str]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer).writerow(cells)
    return buffer.getvalue().rstrip("\r\n")


def _rows(stream: TextIO) -> Iterator[tuple[int, list[str], str]]:
    """(line where the row starts, cells, the row as CSV) for each non-empty row; [] for unreadable ones."""
    reader = csv.reader(stream)
    while True:
        start = reader.line_num + 1
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield start, [], f"unreadable CSV: {exc}"
            continue
        if any(c.strip() for c in cells):
            yield start, cells, _raw(cells)


def count_rows(path: Path) -> int:
    with open(path, encoding="utf-8", errors="replace", newline="") as stream:
        return sum(1 for _ in _rows(stream))


def import_cdr(hub: Hub, path: Path, *, source: str = "asterisk", time_zone: str | None = None,
               batch_size: int = 200, progress: Progress | None = None) -> CdrReport:
    """Import a Master.csv; valid rows are added (once), invalid ones reported with line and reason."""
    if not re.fullmatch(r"[a-z0-9][a-z0-9_.\-]{0,39}", source):
        raise ValueError("source must be a short lowercase name such as asterisk or office-pbx")
    settings: PhoneSettings = hub.channel(CHANNEL).settings  # type: ignore[assignment]
    zone = ZoneInfo(time_zone or settings.time_zone or hub.settings.default_timezone)
    region = hub.settings.default_region
    total = count_rows(path)
    report = CdrReport()
    with open(path, encoding="utf-8", errors="replace", newline="") as stream, hub.session() as session:
        pending = 0
        session.begin()
        for line, cells, raw in _rows(stream):
            report.rows += 1
            try:
                if not cells:
                    raise CdrRowError(raw)
                event = parse_row(cells, settings=settings, region=region, zone=zone, source=source)
                with session.begin_nested():
                    result = post_event(session, event=event)
            except (CdrRowError, InvalidIdentity) as exc:
                report.rejected.append(Rejected(line, str(exc), raw))
            else:
                if result.created:
                    report.imported += 1
                else:
                    report.already += 1
            pending += 1
            if pending >= batch_size:
                session.commit()
                session.begin()
                pending = 0
            if progress is not None:
                progress(report.rows, total)
        session.commit()
    return report


def write_rejects(report: CdrReport, path: Path) -> None:
    """The rejected rows as CSV (line, reason, row), to fix and import again."""
    with open(path, "w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["line", "reason", "row"])
        for rejected in report.rejected:
            writer.writerow([rejected.line, rejected.reason, rejected.raw])
