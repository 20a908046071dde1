"""Hypothesis over the inbound parsers: hostile input either parses or is refused with the documented
error (ValueError), never anything else; a refused CSV import writes nothing.

Bounded and derandomized (a fixed number of examples, no example database), so CI runs are
repeatable and take seconds.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from sqlmodel import SQLModel

from channels.email.parse import ParsedMessage, parse_message
from channels.phone import PhoneChannel
from channels.sms import SmsChannel
from hub.auth import SYSTEM
from hub.csvio import import_contacts
from hub.ingest import InboundEvent

CORPUS = Path("/work/shared/corpora/eml")
EML = sorted(CORPUS.rglob("*.eml")) if CORPUS.is_dir() else []
ROOT = Path(__file__).resolve().parents[2]
SMS_FIXTURES = sorted((ROOT / "channels" / "sms" / "fixtures").rglob("*.json"))
PHONE_FIXTURES = sorted((ROOT / "channels" / "phone" / "fixtures").rglob("*.json"))

FAST = settings(max_examples=150, derandomize=True, database=None, deadline=None,
                suppress_health_check=list(HealthCheck))
STORE = settings(max_examples=25, derandomize=True, database=None, deadline=None,
                 suppress_health_check=list(HealthCheck))


# --- email MIME ----------------------------------------------------------------------------------

def _mutate(data: bytes, edits: list[tuple[int, int, bytes]]) -> bytes:
    """Apply (position, delete-count, insert) edits to a real message."""
    out = bytearray(data)
    for position, delete, insert in edits:
        at = position % (len(out) + 1)
        out[at:at + delete] = insert
    return bytes(out)


HOSTILE_CHUNKS = st.sampled_from([
    b"\r\n\r\n", b"\n", b"\x00", b"=?utf-8?B?", b"=?koi8-r?Q?=F0=D2?=", b"Content-Type: multipart/mixed; boundary=\"",
    b"--", b"Content-Transfer-Encoding: base64\r\n", b"Content-Transfer-Encoding: quoted-printable\r\n",
    b"charset=\"unknown-8bit\"", b"\xff\xfe", b"Subject: " + b"A" * 2000, b"Message-ID: <<>>", b"Date: Feb 30 99999",
    b"From: \"\" <@>", b"filename*=UTF-8''..%2F..%2Fetc%2Fpasswd", b"Content-Type: message/rfc822\r\n\r\n",
    b"\xd0\x9f\xd1\x80\xd0\xb8\xd0\xb2\xd0\xb5\xd1\x82",
])


def _check_email(raw: bytes) -> None:
    try:
        parsed = parse_message(raw)
    except ValueError:
        return  # the documented refusal
    assert isinstance(parsed, ParsedMessage)
    for text in (parsed.event.subject, parsed.event.text):
        assert text is None or "\x00" not in text
    for attachment in parsed.attachments:
        assert "/" not in attachment.filename and "\\" not in attachment.filename and ".." != attachment.filename


@FAST
@given(raw=st.binary(max_size=4096))
def test_arbitrary_bytes_parse_or_are_refused_with_value_error(raw: bytes) -> None:
    _check_email(raw)


@pytest.mark.skipif(not EML, reason=f"no corpus at {CORPUS}")
@FAST
@given(index=st.integers(min_value=0, max_value=max(len(EML) - 1, 0)),
       edits=st.lists(st.tuples(st.integers(min_value=0, max_value=1 << 20), st.integers(min_value=0, max_value=64),
                                st.one_of(HOSTILE_CHUNKS, st.binary(max_size=32))), min_size=1, max_size=6))
def test_mutated_real_messages_parse_or_are_refused_with_value_error(index: int, edits: list[Any]) -> None:
    _check_email(_mutate(EML[index].read_bytes(), edits))


@pytest.mark.skipif(not EML, reason=f"no corpus at {CORPUS}")
def test_every_truncation_of_a_real_multipart_message_is_handled() -> None:
    raw = max(EML, key=lambda p: p.stat().st_size if p.stat().st_size < 64_000 else 0).read_bytes()
    for cut in range(0, len(raw), max(1, len(raw) // 200)):
        _check_email(raw[:cut])


# --- Twilio form bodies ----------------------------------------------------------------------------

def _fixture_payloads(paths: list[Path]) -> list[dict[str, str]]:
    return [json.loads(p.read_text()) for p in paths]


SMS_PAYLOADS = _fixture_payloads(SMS_FIXTURES)
PHONE_PAYLOADS = _fixture_payloads(PHONE_FIXTURES)
TEXT = st.one_of(st.text(max_size=40), st.sampled_from(["", "0", "-1", "999999999999", "1e9", "NaN", "+",
                                                        "+7916", "received", "completed", "in-progress", "\x00",
                                                        "SM" + "0" * 32, "CA" + "f" * 32, "http://x/y", "ftp:///"]))


def _mutated_payload(base: dict[str, str], drops: list[int], sets: dict[str, str]) -> dict[str, str]:
    keys = sorted(base)
    dropped = {d % max(len(keys), 1) for d in drops}
    payload = {k: base[k] for i, k in enumerate(keys) if i not in dropped}
    for key, value in sets.items():
        payload[key if key not in {"_"} else keys[len(value) % len(keys)]] = value
    return payload


def _check_parser(parse: Any, payload: Any) -> None:
    try:
        events = parse(payload)
    except ValueError:
        return
    assert all(isinstance(e, InboundEvent) for e in events)
    for event in events:
        assert event.external_id, "an event from a provider needs its provider id"


KEYS = st.sampled_from(["From", "To", "Body", "MessageSid", "SmsSid", "SmsStatus", "MessageStatus", "NumMedia",
                        "MediaUrl0", "MediaContentType0", "CallSid", "CallStatus", "Direction", "CallDuration",
                        "ErrorCode", "AccountSid", "Caller", "Called", "_"])


@pytest.mark.parametrize(("parse", "payloads"), [(SmsChannel.parse, SMS_PAYLOADS), (PhoneChannel.parse, PHONE_PAYLOADS)],
                         ids=["sms", "phone"])
@FAST
@given(data=st.data())
def test_mutated_twilio_payloads_parse_or_are_refused(parse: Any, payloads: list[dict[str, str]], data: Any) -> None:
    assert payloads, "no recorded payloads"
    base = data.draw(st.sampled_from(payloads))
    payload = _mutated_payload(base, data.draw(st.lists(st.integers(min_value=0, max_value=40), max_size=4)),
                               data.draw(st.dictionaries(KEYS, TEXT, max_size=5)))
    _check_parser(parse, payload)


@pytest.mark.parametrize("parse", [SmsChannel.parse, PhoneChannel.parse], ids=["sms", "phone"])
@FAST
@given(body=st.one_of(st.binary(max_size=400), st.dictionaries(st.text(max_size=12), st.text(max_size=30)).map(
    lambda d: urlencode(d).encode())))
def test_raw_form_bodies_parse_or_are_refused(parse: Any, body: bytes) -> None:
    """What a webhook route builds from any body: a mapping of the form's fields (or garbage types)."""
    _check_parser(parse, dict(parse_qsl(body.decode("latin-1"), keep_blank_values=True)))
    for garbage in (None, [], "From=+7", 42, {"From": ["+7", "+8"]}):
        _check_parser(parse, garbage)


# --- CSV imports ---------------------------------------------------------------------------------

def counts(session: Any) -> dict[str, int]:
    return {t.name: session.scalar(select(func.count()).select_from(t)) for t in SQLModel.metadata.sorted_tables}


GOOD_ROW = st.fixed_dictionaries({
    "name": st.text(alphabet=st.characters(categories=["L"], max_codepoint=0x44F), min_size=1, max_size=12),
    "email": st.from_regex(r"[a-z]{1,8}@example\.org", fullmatch=True),
    "tags": st.sampled_from(["", "vip", "vip;b2b"]),
})
BAD_CELL = st.sampled_from(["not-an-email", "a@@b", "@", "x" * 400, "+7 12", "Mars/Phobos", "zz_ZZ", "\x00"])
CELL = st.one_of(st.text(max_size=20), BAD_CELL, st.just(""), st.just("\"quoted, \"\"comma\"\"\""))
HEADER = st.lists(st.sampled_from(["name", "email", "phone", "tags", "locale", "time_zone", "owner_email",
                                   "lifecycle_stage", "attr:city", "bogus", "", "email"]), min_size=1, max_size=6)


def _import(hub: Any, text: str) -> tuple[Any, dict[str, int], dict[str, int]]:
    with hub.session() as session:
        before = counts(session)
        try:
            result = import_contacts(session, stream=io.StringIO(text), actor=SYSTEM, region=hub.settings.default_region)
        except Exception:
            session.rollback()
            raise
        after = counts(session)  # flushed by autoflush: what a commit would write
        session.rollback()
    return result, before, after


@STORE
@given(header=HEADER, rows=st.lists(st.lists(CELL, max_size=7), max_size=6), delimiter=st.sampled_from([",", ";"]))
def test_arbitrary_csv_either_imports_or_writes_nothing(hub, header: list[str], rows: list[list[str]],
                                                        delimiter: str) -> None:
    lines = [delimiter.join(header)] + [delimiter.join(r) for r in rows]
    result, before, after = _import(hub, "\n".join(lines) + "\n")
    if not result.ok:
        assert after == before, "a refused import wrote rows"
        assert all(e.line >= 1 and e.message for e in result.errors)


@STORE
@given(good=st.lists(GOOD_ROW, min_size=1, max_size=8, unique_by=lambda r: r["email"]), bad=BAD_CELL,
       at=st.integers(min_value=0, max_value=8))
def test_one_bad_row_anywhere_writes_nothing(hub, good: list[dict[str, str]], bad: str, at: int) -> None:
    rows = [f"{r['name']},{r['email']},{r['tags']}" for r in good]
    position = at % (len(rows) + 1)
    rows.insert(position, f"Bad,{bad},")
    result, before, after = _import(hub, "name,email,tags\n" + "\n".join(rows) + "\n")
    assert not result.ok, f"{bad!r} was accepted as an email"
    assert [e.line for e in result.errors] == [position + 2]
    assert after == before


# --- form submissions ------------------------------------------------------------------------------

def _form_fields() -> list[Any]:
    definitions = pytest.importorskip("channels.forms.definitions")
    return definitions.parse_fields([
        {"name": "name", "type": "text", "label": "Name", "required": True, "max_length": 80, "maps_to": "display_name"},
        {"name": "email", "type": "email", "label": "Email"},
        {"name": "phone", "type": "phone", "label": "Phone"},
        {"name": "topic", "type": "choice", "label": "Topic", "options": [{"value": "a", "label": "A"},
                                                                          {"value": "b", "label": "B"}]},
        {"name": "news", "type": "consent", "label": "News", "wording": "Send me news"},
        {"name": "vip", "type": "checkbox", "label": "VIP", "maps_to": "tag:vip"},
    ])


ANY_VALUE = st.recursive(st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), st.text(max_size=400),
                                   st.sampled_from(["anna@example.org", "+7 916 123-45-67", "a", "on", "off", "\x00"])),
                         lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=5), inner,
                                                                                               max_size=3)),
                         max_leaves=6)


@FAST
@given(raw=st.dictionaries(st.sampled_from(["name", "email", "phone", "topic", "news", "vip", "zz", ""]), ANY_VALUE,
                           max_size=8))
def test_form_answers_are_checked_never_crash(raw: dict[str, Any]) -> None:
    definitions = pytest.importorskip("channels.forms.definitions")
    fields = _form_fields()
    answers = definitions.check_answers(fields, raw, region="RU")
    names = {f.name for f in fields}
    assert set(answers.errors) <= names and set(answers.values) <= names
    if answers.ok:
        assert answers.identities, "an accepted submission names an email or a phone"
    for kind, value in answers.identities:
        assert kind in {"email", "phone"} and value and "\x00" not in value
