"""No secret or token in any log: representative flows run with every logger at DEBUG (SQLAlchemy's
statements and parameters included), then the captured records are searched for each secret.
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from channels.twilio_common.signature import sign as twilio_sign
from hub import signing
from hub.app import create_app
from hub.auth import Role, create_api_key
from hub.observability import RedactTokens, configure_logging, redact
from hub.runtime import Hub
from hub.triggers import TriggerRegistry
from tests.conftest import test_registry
from tests.web.conftest import ORIGIN, PASSWORD, login

AUTH_TOKEN = "twilio-auth-token-9c1e77b2a4"
INBOUND_TOKEN = "email-pipe-token-0f3a91c2d8e7"
ACCOUNT_SID = "AC" + "0123456789abcdef" * 2
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def wired(hub):  # type: ignore[no-untyped-def]
    """The app with SMS (Twilio auth token) and the email pipe (bearer token) configured."""
    settings = hub.settings.model_copy(update={
        "public_base_url": ORIGIN,
        "channels": {
            "sms": {"account_sid": ACCOUNT_SID, "auth_token": AUTH_TOKEN, "from_number": "+15005550006",
                    "api_base_url": "http://127.0.0.1:9"},
            "email": {"from_address": "support@hub.example.com", "inbound_token": INBOUND_TOKEN},
        },
    })
    runtime = Hub(settings, registry=test_registry(), triggers=TriggerRegistry(), db=hub.db)
    with TestClient(create_app(runtime, check_schema=False, start_worker=False), base_url=ORIGIN) as client:
        yield runtime, client


def test_no_secret_reaches_the_logs(wired, caplog):
    hub, client = wired
    caplog.set_level(logging.DEBUG)  # the root: every logger, SQLAlchemy's statements and parameters too
    for name in ("sqlalchemy.engine", "hub", "channels", "campaigns", "httpx", "uvicorn"):
        caplog.set_level(logging.DEBUG, logger=name)  # restored after the test: later tests must not log SQL
    secrets: dict[str, str] = {"password": PASSWORD, "twilio auth token": AUTH_TOKEN,
                               "email pipe token": INBOUND_TOKEN, "secret key": hub.settings.secret_key.get_secret_value()
                               if hasattr(hub.settings.secret_key, "get_secret_value") else str(hub.settings.secret_key)}

    # Sign-in (the password travels in a form), a wrong password, the session cookie afterwards.
    token = login(client, hub, "admin@example.com", role=Role.ADMIN)
    client.post("/login", data={"email": "admin@example.com", "password": PASSWORD + "-wrong", "csrf_token": token},
                headers={"Origin": ORIGIN})
    secrets["wrong password"] = PASSWORD + "-wrong"
    for name, value in client.cookies.items():
        secrets[f"cookie {name}"] = value
    secrets["csrf token"] = token
    assert client.get("/").status_code == 200

    # An API key: made, used, and a wrong one presented.
    with hub.session() as s, s.begin():
        _, plain = create_api_key(s, name="shop", scopes=["admin"])
    secrets["api key"] = plain
    assert client.get("/api/v1/contacts", headers={"Authorization": f"Bearer {plain}"}).status_code == 200
    assert client.get("/api/v1/contacts", headers={"X-API-Key": plain}).status_code == 200
    wrong_key = plain[:-6] + "zzzzzz"
    secrets["wrong api key"] = wrong_key
    assert client.get("/api/v1/contacts", headers={"Authorization": f"Bearer {wrong_key}"}).status_code == 401
    made = client.post("/admin/api-keys", data={"name": "crm", "scopes": ["contacts:read"], "csrf_token": token},
                       headers={"Origin": ORIGIN})
    assert made.status_code in {200, 201, 303}
    shown = re.findall(r"hub_[A-Za-z0-9]+_[A-Za-z0-9_-]{16,}", made.text)
    assert shown, "the new key is shown once on the page"
    secrets["api key made on the page"] = shown[0]

    # A Twilio webhook, signed with the auth token, and one with a forged signature.
    params = json.loads((ROOT / "channels" / "sms" / "fixtures" / "inbound_sms.json").read_text())
    url = f"{ORIGIN}/channels/sms/inbound"
    signature = twilio_sign(token=AUTH_TOKEN, url=url, params=params)
    secrets["twilio signature"] = signature
    answer = client.post("/channels/sms/inbound", data=params, headers={"X-Twilio-Signature": signature})
    assert answer.status_code == 200, answer.text
    assert client.post("/channels/sms/inbound", data=params,
                       headers={"X-Twilio-Signature": signature[:-4] + "AAA="}).status_code == 403

    # The email pipe with its bearer token, and with a wrong one.
    raw = b"From: Anna <anna@example.org>\r\nSubject: hi\r\nMessage-ID: <log1@example.org>\r\n\r\nHello\r\n"
    assert client.post("/channels/email/inbound", content=raw,
                       headers={"Authorization": f"Bearer {INBOUND_TOKEN}"}).status_code in {200, 201}
    assert client.post("/channels/email/inbound", content=raw,
                       headers={"Authorization": f"Bearer {INBOUND_TOKEN}x"}).status_code == 403

    # Signed links: a token for every public page that takes one (valid for its purpose or not).
    link = signing.sign(hub.settings, "unsubscribe", {"c": 1, "ch": "email"})
    timed = signing.sign(hub.settings, "zz.some.link", {"id": 1}, timed=True)
    secrets["signed link"], secrets["timed link"] = link, timed
    for path in ("/u/{t}", "/preferences/{t}", "/t/c/{t}", "/t/o/{t}.gif", "/s/{t}", "/channels/meetings/m/{t}"):
        for value in (link, timed):
            client.get(path.format(t=value), follow_redirects=False)

    # What the configured handler would write: every record through its filters (the HTTP client's
    # request lines stand in for the server's access log, which names every path).
    for record in caplog.records:
        RedactTokens().filter(record)
    text = "\n".join(_record_text(r) for r in caplog.records)
    assert len(caplog.records) > 50, "DEBUG logging captured almost nothing: the check would prove nothing"
    leaked = {name: value for name, value in secrets.items() if value and value in text}
    where = {name: sorted({f"{r.name}: {r.getMessage()[:160]}" for r in caplog.records if value in _record_text(r)})[:3]
             for name, value in leaked.items()}
    assert not leaked, f"secrets found in the logs: {where}"
    # The API key's random part alone is a secret too (the prefix may name the key). It is URL-safe
    # base64 and may itself hold "_": split after "hub_<prefix>_", never at the last underscore.
    random_part = plain.split("_", 2)[2]
    assert len(random_part) >= 40 and random_part not in text


@pytest.mark.any_store
def test_the_configured_handler_cuts_tokens_out_of_access_log_lines(hub):
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        configure_logging(level="INFO")
        (handler,) = root.handlers
    finally:
        root.handlers[:], _ = saved[0], root.setLevel(saved[1])
    token = signing.sign(hub.settings, "unsubscribe", {"c": 7, "ch": "email"})
    timed = signing.sign(hub.settings, "surveys.invitation", [1, 2, 3, "n"], timed=True)
    for path in (f"/u/{token}", f"/t/o/{token}.gif", f"/s/{timed}?x=1", f"/channels/meetings/m/{timed}/cancel"):
        # How uvicorn's access logger writes a request line.
        record = logging.LogRecord("uvicorn.access", logging.INFO, __file__, 1, '%s - "%s %s HTTP/%s" %d',
                                   ("127.0.0.1:5555", "GET", path, "1.1", 200), None)
        assert handler.filter(record)
        line = handler.format(record)
        assert token not in line and timed not in line and "[token]" in line, line
        assert "127.0.0.1:5555" in line and "HTTP/1.1" in line
    # Ordinary paths are left alone.
    for path in ("/contacts/42", "/segments/builder.css", "/api/v1/contacts?q=anna@example.org", "/s/assets/survey.js"):
        assert redact(path) == path


def _record_text(record: logging.LogRecord) -> str:
    # What a handler formats: the message, the traceback, and extra fields (JsonFormatter writes hub_*);
    # not the `message` attribute pytest cached before the filter ran.
    extra = {k: v for k, v in record.__dict__.items() if k not in {"message", "msg", "args"}}
    parts: list[Any] = [record.getMessage(), record.exc_text or "", extra]
    return " ".join(repr(p) for p in parts)
