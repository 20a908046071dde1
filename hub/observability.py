"""Logs (plain or JSON) and Prometheus metrics."""

from __future__ import annotations

import hmac
import ipaddress
import json
import logging
import re
import sys
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

REGISTRY = CollectorRegistry(auto_describe=True)
HTTP_REQUESTS = Counter("hub_http_requests_total", "HTTP requests", ["method", "route", "status"], registry=REGISTRY)
HTTP_LATENCY = Histogram(
    "hub_http_request_seconds", "HTTP request latency", ["method", "route"], registry=REGISTRY,
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
EVENTS_INGESTED = Counter("hub_events_ingested_total", "Timeline events written", ["channel", "created"], registry=REGISTRY)
DELIVERIES = Counter("hub_deliveries_total", "Delivery attempts by outcome", ["channel", "outcome"], registry=REGISTRY)
OUTBOX_ROWS = Gauge("hub_outbox_rows", "Outbox rows by status", ["status"], registry=REGISTRY)


OUTBOX_STATUSES = ("queued", "sending", "sent", "delivered", "failed", "dead", "cancelled", "bounced")
# How long the outbox counts (a GROUP BY over every delivery) serve scrapes before they are counted
# again: a scrape every few seconds, or many scrapers, cost one count per window.
OUTBOX_COUNTS_MAX_AGE = 30.0


def render_metrics() -> tuple[bytes, str]:
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST


class CachedGauge:
    """Sets a labelled gauge from an expensive count at most once per `max_age` seconds."""

    def __init__(self, gauge: Gauge, count: Callable[[], Mapping[str, int]], *, labels: tuple[str, ...],
                 max_age: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.gauge, self.count, self.labels, self.max_age, self.clock = gauge, count, labels, max_age, clock
        self._counted_at: float | None = None
        self._lock = threading.Lock()

    def refresh(self) -> bool:
        """Count again if the last count is older than max_age; True if it counted."""
        with self._lock:
            now = self.clock()
            if self._counted_at is not None and now - self._counted_at < self.max_age:
                return False
            counts = self.count()
            for label in self.labels:
                self.gauge.labels(label).set(counts.get(label, 0))
            self._counted_at = now
            return True


def is_local_client(host: str | None, headers: Mapping[str, str]) -> bool:
    """A loopback peer that no proxy forwarded (behind nginx every request comes from 127.0.0.1)."""
    if any(name in headers for name in ("x-forwarded-for", "forwarded", "x-real-ip")):
        return False
    try:
        return host is not None and ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def bearer_matches(authorization: str | None, token: str) -> bool:
    scheme, _, given = (authorization or "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode())


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key.startswith("hub_"):
                entry[key[4:]] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


# A signed link's token (hub.signing: payload[.timestamp].signature, base64url) in a logged URL path.
_TOKEN_IN_PATH = re.compile(r"/(?:[A-Za-z0-9_-]+\.){1,2}[A-Za-z0-9_-]{20,}")


def redact(message: str) -> str:
    """The message with signed-link tokens cut out of URL paths (access logs name every path)."""
    return _TOKEN_IN_PATH.sub("/[token]", message)


class RedactTokens(logging.Filter):
    """Keeps customers' link tokens out of every log line (they unlock a survey or an unsubscribe)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


def configure_logging(*, level: str = "INFO", json_logs: bool = False) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if json_logs else logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactTokens())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("apscheduler", "httpx", "alembic"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLevelName(level)))
