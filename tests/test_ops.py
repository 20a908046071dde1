"""Operations endpoints and logs: /healthz, /readyz (reachable and migrated), /metrics, JSON logs."""

from __future__ import annotations

import io
import json
import logging
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from hub import migrate
from hub.app import create_app
from hub.observability import configure_logging
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


def test_metrics_count_requests_by_route_template(client, api_key):
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
