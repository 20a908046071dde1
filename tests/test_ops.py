"""Operations endpoints and logs: /healthz, /readyz (reachable and migrated), /metrics, JSON logs."""

from __future__ import annotations

import io
import json
import logging
import sys
from collections.abc import Iterator
from pathlib import Path

import re

import pytest
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry, Gauge
from pydantic import SecretStr

from hub import migrate
from hub.app import create_app
from hub.observability import CachedGauge, configure_logging
from hub.runtime import Hub
from hub.triggers import TriggerRegistry
from tests.conftest import make_settings, test_registry


def runtime(database_url: str, data_dir: Path) -> Hub:
    return Hub(make_settings(database_url, data_dir), registry=test_registry(), triggers=TriggerRegistry())


def test_healthz(client):
    response = client.get("/healthz")
    assert response.status_code == 200 and response.json() == {"status": "ok"}


def test_readyz_until_the_schema_is_migrated(tmp_path):
    hub = runtime(f"sqlite:///{tmp_path / 'fresh.db'}", tmp_path)
    try:
        with TestClient(create_app(hub, check_schema=False, start_worker=False)) as client:
            behind = client.get("/readyz")
            assert behind.status_code == 503
            assert behind.headers["content-type"].startswith("application/problem+json")
            problem = behind.json()
            assert problem["type"] == "/problems/schema-behind" and problem["status"] == 503
            assert "hub migrate" in problem["detail"]

            migrate.upgrade(hub.db.engine)
            ready = client.get("/readyz")
            assert ready.status_code == 200 and ready.json() == {"status": "ready"}
    finally:
        hub.close()


def test_readyz_when_the_database_is_unreachable(tmp_path):
    # Port 1 on loopback: nothing listens there, so the connection is refused at once.
    hub = runtime("postgresql://hub@127.0.0.1:1/hub", tmp_path)
    try:
        with TestClient(create_app(hub, check_schema=False, start_worker=False)) as client:
            response = client.get("/readyz")
        assert response.status_code == 503
        assert response.headers["content-type"].startswith("application/problem+json")
        assert "not reachable" in response.json()["detail"]
    finally:
        hub.close()


def test_the_app_refuses_to_start_on_a_schema_that_is_behind(tmp_path):
    hub = runtime(f"sqlite:///{tmp_path / 'fresh.db'}", tmp_path)
    try:
        with pytest.raises(migrate.SchemaBehind, match="hub migrate"):
            with TestClient(create_app(hub, start_worker=False)):
                pass
    finally:
        hub.close()


def sample(metrics: str, name: str, **labels: str) -> float | None:
    """The value of one Prometheus sample, or None when it is absent."""
    want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in metrics.splitlines():
        if line.startswith(f"{name}{{"):
            series, value = line.rsplit(" ", 1)
            got = ",".join(sorted(series[len(name) + 1:-1].split(",")))
            if got == want:
                return float(value)
    return None


@pytest.fixture
def local_client(app):  # type: ignore[no-untyped-def]
    """A client on this machine (Prometheus beside the hub), which may scrape without a token."""
    with TestClient(app, client=("127.0.0.1", 50000)) as test_client:
        yield test_client


def test_metrics_count_requests_by_route_template(local_client, api_key):
    client = local_client
    headers = api_key("tasks:read")
    before = client.get("/metrics").text
    client.get("/healthz")
    client.get("/api/v1/tasks/12345", headers=headers)
    client.get("/api/v1/tasks/67890", headers=headers)
    client.get("/no/such/page")
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    assert "# TYPE hub_http_requests_total counter" in text

    def grew(by: float, **labels: str) -> bool:
        return (sample(text, "hub_http_requests_total", **labels) or 0) - (
            sample(before, "hub_http_requests_total", **labels) or 0
        ) == by

    assert grew(1, method="GET", route="/healthz", status="200")
    # Ids do not explode the label space: both task lookups count under the template.
    assert grew(2, method="GET", route="/api/v1/tasks/{task_id}", status="404")
    assert grew(1, method="GET", route="unmatched", status="404")
    assert sample(text, "hub_outbox_rows", status="queued") == 0


TOKEN = "scrape-token-0123456789abcdef"


def test_metrics_without_a_token_setting_answer_only_this_machine(app, local_client):
    # TestClient's default peer ("testclient") stands for any remote address.
    with TestClient(app, client=("203.0.113.7", 40000)) as remote:
        assert remote.get("/metrics").status_code == 404
    assert local_client.get("/metrics").status_code == 200
    # Behind nginx every request comes from 127.0.0.1: a forwarded one is not local.
    forwarded = local_client.get("/metrics", headers={"X-Forwarded-For": "203.0.113.7"})
    assert forwarded.status_code == 404 and "hub_http_requests_total" not in forwarded.text


def test_metrics_with_a_token_setting_need_the_token(app, hub, monkeypatch):
    monkeypatch.setattr(hub, "settings", hub.settings.model_copy(update={"metrics_token": SecretStr(TOKEN)}))
    with TestClient(app, client=("203.0.113.7", 40000)) as remote:
        refused = remote.get("/metrics")
        assert refused.status_code == 401 and refused.headers["www-authenticate"] == "Bearer"
        assert "hub_http_requests_total" not in refused.text
        assert remote.get("/metrics", headers={"Authorization": "Bearer wrong-token-0123456789"}).status_code == 401
        assert remote.get("/metrics", headers={"Authorization": f"Basic {TOKEN}"}).status_code == 401
        granted = remote.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
        assert granted.status_code == 200 and "hub_outbox_rows" in granted.text
    with TestClient(app, client=("127.0.0.1", 40000)) as local:  # the token is asked of everyone then
        assert local.get("/metrics").status_code == 401


def test_outbox_counts_are_not_recounted_on_every_scrape():
    counted: list[int] = []
    now = [100.0]
    gauge = Gauge("test_outbox_rows", "test", ["status"], registry=CollectorRegistry())

    def count() -> dict[str, int]:
        counted.append(1)
        return {"queued": len(counted)}

    cached = CachedGauge(gauge, count, labels=("queued", "sent"), max_age=30, clock=lambda: now[0])
    assert cached.refresh() is True
    assert [cached.refresh() for _ in range(50)] == [False] * 50
    assert len(counted) == 1 and gauge.labels("queued")._value.get() == 1 and gauge.labels("sent")._value.get() == 0
    now[0] += 30
    assert cached.refresh() is True and gauge.labels("queued")._value.get() == 2


def test_the_app_scrape_uses_the_cached_counts(app, local_client):
    gauge = app.state.outbox_gauge
    local_client.get("/metrics")
    assert gauge.refresh() is False  # counted by the scrape just now: not again within max_age


def test_nginx_denies_metrics():
    conf = (Path(__file__).resolve().parent.parent / "config" / "deploy" / "nginx-hub.conf").read_text()
    block = re.search(r"location\s*=\s*/metrics\s*\{([^}]*)\}", conf)
    assert block is not None, "nginx-hub.conf has no exact location for /metrics"
    assert re.search(r"^\s*(deny all|return 404);", block.group(1), re.MULTILINE), block.group(1)


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def test_json_logs_are_one_object_per_line(restore_logging, monkeypatch):
    stream = io.StringIO()
    monkeypatch.setattr(sys, "stderr", stream)  # configure_logging writes to the stderr of the moment
    configure_logging(level="INFO", json_logs=True)
    log = logging.getLogger("hub.test")
    log.info("contact %s opened", 42, extra={"hub_contact_id": 42, "hub_request_id": "r-1"})
    log.debug("not at INFO")
    try:
        raise ValueError("boom\nwith a second line")
    except ValueError:
        log.exception("failed:\n%s", "multi-line message")
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2
    first, second = (json.loads(line) for line in lines)
    assert first["message"] == "contact 42 opened" and first["level"] == "info" and first["logger"] == "hub.test"
    assert first["contact_id"] == 42 and first["request_id"] == "r-1"
    assert first["time"].endswith("Z")
    assert second["level"] == "error" and second["message"] == "failed:\nmulti-line message"
    assert "ValueError: boom" in second["exception"]


def test_plain_logs_stay_plain(restore_logging, monkeypatch):
    stream = io.StringIO()
    monkeypatch.setattr(sys, "stderr", stream)
    configure_logging(level="WARNING", json_logs=False)
    logging.getLogger("hub.test").warning("plain words")
    line = stream.getvalue().strip()
    assert line.endswith("WARNING hub.test: plain words")
    with pytest.raises(json.JSONDecodeError):
        json.loads(line)


def test_body_limit_follows_the_route(hub, client, api_key):
    """JSON routes keep the API limit; a channel's routes and the CSV import may declare more."""
    from hub.app import BodyLimit

    limit = next(m for m in client.app.user_middleware if m.cls is BodyLimit)
    middleware = BodyLimit(lambda *a: None, **limit.kwargs)
    assert middleware.limit_for("/api/v1/contacts") == hub.settings.api.max_body_bytes
    assert middleware.limit_for("/api/v1/contacts/import") == hub.settings.api.max_upload_bytes
    assert middleware.limit_for("/channels/email/inbound") == hub.channels["email"].settings.max_raw_bytes
    assert middleware.limit_for("/contacts/12/compose/email") == hub.channels["email"].settings.max_raw_bytes
    assert middleware.limit_for("/contacts/12/compose/sms") == hub.settings.api.max_body_bytes
    big = b"x" * (hub.settings.api.max_body_bytes + 10)
    assert client.post("/api/v1/contacts", content=big, headers=api_key()).status_code == 413
    # Over the JSON limit but under the pipe's: the email route answers itself (403 without its token).
    assert client.post("/channels/email/inbound", content=big).status_code == 403
