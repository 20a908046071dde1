"""Hostile requests to what the internet can reach without signing in: Twilio webhooks carrying a
valid signature over garbage, and every public page (walked from app.routes) with random tokens,
query strings and form bodies. Nothing may answer 5xx or raise inside the app.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from channels.twilio_common.signature import sign as twilio_sign
from hub.app import create_app
from hub.runtime import Hub
from hub.triggers import TriggerRegistry
from tests.api.test_errors import api_routes
from tests.conftest import test_registry

ORIGIN = "http://testserver"
AUTH_TOKEN = "fuzz-twilio-token-31c9a0"
INBOUND_TOKEN = "fuzz-email-pipe-token-77d0"
EML = sorted(Path("/work/shared/corpora/eml").rglob("*.eml"))
ACCOUNT_SID = "AC" + "fedcba9876543210" * 2
ROOT = Path(__file__).resolve().parents[2]
RECORDED = [json.loads(p.read_text()) for folder in ("sms", "phone")
            for p in sorted((ROOT / "channels" / folder / "fixtures").rglob("*.json"))]
BOUNDED = settings(max_examples=40, derandomize=True, database=None, deadline=None,
                   suppress_health_check=list(HealthCheck))
WEBHOOKS = ("/channels/sms/inbound", "/channels/sms/status", "/channels/phone/voice", "/channels/phone/status")
AUTHENTICATED = {"current_principal", "current_agent"}
OPERATIONAL = {"/readyz", "/healthz", "/metrics"}  # 503 until migrated is their answer


@pytest.fixture
def public_client(hub):  # type: ignore[no-untyped-def]
    settings_ = hub.settings.model_copy(update={
        "public_base_url": ORIGIN,
        "channels": {
            "sms": {"account_sid": ACCOUNT_SID, "auth_token": AUTH_TOKEN, "from_number": "+15005550006",
                    "api_base_url": "http://127.0.0.1:9"},
            "phone": {"account_sid": ACCOUNT_SID, "auth_token": AUTH_TOKEN, "caller_id": "+15005550006",
                      "api_base_url": "http://127.0.0.1:9"},
            "email": {"from_address": "support@hub.example.com", "inbound_token": INBOUND_TOKEN},
        },
    })
    runtime = Hub(settings_, registry=test_registry(), triggers=TriggerRegistry(), db=hub.db)
    app = create_app(runtime, check_schema=False, start_worker=False)
    with TestClient(app, base_url=ORIGIN, raise_server_exceptions=False) as client:
        yield app, client


VALUES = st.one_of(st.text(max_size=60), st.sampled_from(["", "0", "-1", "99999999999999999999", "NaN", "\x00", "+7",
                                                          "completed", "received", "delivered", "ringing", "in-progress",
                                                          "SM" + "a" * 32, "CA" + "b" * 32, ACCOUNT_SID, "https://x"]))
KEYS = st.sampled_from(["From", "To", "Body", "MessageSid", "SmsSid", "SmsStatus", "MessageStatus", "NumMedia",
                        "MediaUrl0", "CallSid", "CallStatus", "Direction", "CallDuration", "ErrorCode", "AccountSid",
                        "Digits", "RecordingUrl", "Caller", "Called", "zz"])


@BOUNDED
@given(data=st.data())
def test_signed_garbage_to_twilio_webhooks_is_never_a_5xx(public_client, data):
    _, client = public_client
    path = data.draw(st.sampled_from(WEBHOOKS))
    base = dict(data.draw(st.sampled_from(RECORDED))) if data.draw(st.booleans()) else {}
    for key in data.draw(st.lists(st.sampled_from(sorted(base) or ["From"]), max_size=3)):
        base.pop(key, None)
    base.update(data.draw(st.dictionaries(KEYS, VALUES, max_size=6)))
    signature = twilio_sign(token=AUTH_TOKEN, url=ORIGIN + path, params=base)
    answer = client.post(path, data=base, headers={"X-Twilio-Signature": signature})
    assert answer.status_code < 500, (path, base, answer.status_code, answer.text[:300])
    assert answer.status_code != 403, "the signature was valid"


def public_routes(app: Any) -> list[tuple[str, str]]:
    found = []
    for route in api_routes(app):
        names: set[str] = set()

        def walk(dependant: Any) -> None:
            for dep in dependant.dependencies:
                names.add(getattr(dep.call, "__name__", ""))
                walk(dep)

        walk(route.dependant)
        if names & AUTHENTICATED or route.path in OPERATIONAL or route.path.startswith(("/api/v1/", "/channels/sms/", "/channels/phone/")):
            continue
        for method in sorted(route.methods or ()):
            if method in {"GET", "POST"}:
                found.append((method, route.path))
    return found


# Printable only: the HTTP client itself refuses control characters in a URL.
TOKENS = st.one_of(st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=0x44F, exclude_characters="/?#%\x7f",
                                                  exclude_categories=("Cc", "Cs", "Zs")), min_size=1, max_size=80),
                   st.sampled_from(["1", "0", "-1", "a.b", "a.b.c", "x" * 3000, "..", "%2e%2e", "null"]))
FORM = st.dictionaries(st.text(max_size=12), st.one_of(st.text(max_size=80), st.just("\x00")), max_size=6)


@settings(max_examples=100, derandomize=True, database=None, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_every_public_page_survives_random_tokens_and_forms(public_client, data):
    app, client = public_client
    routes = public_routes(app)
    assert len(routes) >= 5, routes
    method, path = data.draw(st.sampled_from(routes))
    url = re.sub(r"\{[^}]+\}", lambda _: data.draw(TOKENS).replace(" ", "_") or "x", path)
    params = data.draw(st.dictionaries(st.sampled_from(["q", "lang", "next", "url", "date", "tz", "slot", "page"]),
                                       st.text(max_size=40), max_size=3))
    if method == "POST":
        answer = client.post(url, params=params, data=data.draw(FORM), headers={"Origin": ORIGIN},
                             follow_redirects=False)
    else:
        answer = client.get(url, params=params, follow_redirects=False)
    assert answer.status_code < 500, (method, url, params, answer.status_code, answer.text[:300])


@pytest.mark.skipif(not EML, reason="no email corpus")
@BOUNDED
@given(index=st.integers(min_value=0, max_value=max(len(EML) - 1, 0)),
       edits=st.lists(st.tuples(st.integers(min_value=0, max_value=1 << 20), st.integers(min_value=0, max_value=40),
                                st.one_of(st.binary(max_size=24), st.sampled_from([b"\x00", b"\r\n\r\n", b"=?utf-8?B?",
                                                                                   b"\xff\xfe", b"--"]))),
                      max_size=5))
def test_mutated_mail_through_the_pipe_is_stored_or_refused(public_client, index, edits):
    """The whole inbound path (parse, store files, write the event) on both stores: 2xx or 400, never 5xx."""
    _, client = public_client
    raw = bytearray(EML[index].read_bytes())
    for position, delete, insert in edits:
        at = position % (len(raw) + 1)
        raw[at:at + delete] = insert
    answer = client.post("/channels/email/inbound", content=bytes(raw),
                         headers={"Authorization": f"Bearer {INBOUND_TOKEN}"})
    assert answer.status_code in {200, 201, 400}, (EML[index].name, edits, answer.status_code, answer.text[:300])
