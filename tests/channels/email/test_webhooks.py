"""The email routes through the real app: the pipe endpoint, downloads, compose and suppressions."""

from __future__ import annotations

import base64
import email
import email.policy
import json

from sqlalchemy import func, select

from channels.email.models import EmailAttachment, EmailRawMessage, EmailSuppression
from hub.models import Delivery, TimelineEvent
from hub.worker import Worker
from tests.channels.email.conftest import CORPUS, FIXTURES, configure
from tests.channels.email.test_parse import msg
from tests.channels.email.test_send import make_contact

TOKEN = "pipe-token-" + "k" * 32


def pipe(client, raw: bytes, token: str | None = TOKEN):  # type: ignore[no-untyped-def]
    headers = {"Content-Type": "message/rfc822"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return client.post("/channels/email/inbound", content=raw, headers=headers)


def count(hub, model) -> int:  # type: ignore[no-untyped-def]
    with hub.session(read_only=True) as s:
        return s.scalar(select(func.count()).select_from(model))


def stored_files(hub) -> list:  # type: ignore[no-untyped-def]
    base = hub.channel("email").files.base
    return [p for p in base.rglob("*") if p.is_file()] if base.exists() else []


def fixture_raw(name: str) -> bytes:
    return base64.b64decode(json.loads((FIXTURES / name).read_text())["raw"])


def test_the_pipe_records_a_message_once(hub, client):
    configure(hub, inbound_token=TOKEN)
    raw = fixture_raw("reply_windows1251.json")
    first = pipe(client, raw)
    assert first.status_code == 201, first.text
    body = first.json()
    assert body["created"] is True and body["kind"] == "message"
    again = pipe(client, raw)
    assert again.status_code == 200 and again.json() == {**body, "created": False}
    with hub.session(read_only=True) as s:
        event = s.get(TimelineEvent, body["event_id"])
    assert event.subject == "Re: Заказ №4521 — доставка" and event.text.endswith("Адрес тот же.")


def test_a_wrong_or_missing_token_is_refused_and_writes_nothing(hub, client):
    configure(hub, inbound_token=TOKEN)
    raw = fixture_raw("html_koi8r_attachment.json")
    for token in (None, "", "wrong", TOKEN + "x", TOKEN[:-1]):
        answer = pipe(client, raw, token)
        assert answer.status_code == 403, token
        assert answer.headers["content-type"] == "application/problem+json"
    basic = client.post("/channels/email/inbound", content=raw, headers={"Authorization": f"Basic {TOKEN}"})
    assert basic.status_code == 403
    assert count(hub, TimelineEvent) == 0 and count(hub, EmailAttachment) == 0 and stored_files(hub) == []


def test_without_a_configured_token_the_pipe_is_off(hub, client):
    configure(hub)
    answer = pipe(client, fixture_raw("reply_windows1251.json"), token="anything")
    assert answer.status_code == 403 and "inbound_token" in answer.json()["detail"]
    assert count(hub, TimelineEvent) == 0


def test_empty_and_oversized_bodies_are_refused_and_write_nothing(hub, client):
    configure(hub, inbound_token=TOKEN, max_message_bytes=65536, max_raw_bytes=65536)
    assert pipe(client, b"").status_code == 400
    big = pipe(client, msg("From: a@example.org\nSubject: big", "x" * 100_000))
    assert big.status_code == 413
    assert count(hub, TimelineEvent) == 0 and stored_files(hub) == []


def test_bytes_no_parser_can_read_are_kept_raw_with_the_reason(hub, client):
    configure(hub, inbound_token=TOKEN)
    raw = b"just some words, no headers"
    kept = pipe(client, raw)
    assert kept.status_code == 201, kept.text
    with hub.session(read_only=True) as s:
        row = s.get(EmailRawMessage, kept.json()["raw_id"])
        event = s.get(TimelineEvent, kept.json()["event_id"])
        assert row.reason == "malformed" and row.event_id == event.id
        assert "no header fields" in " ".join(event.data["defects"])
    assert hub.channel("email").files.raw.read(row.sha256) == raw


BAD_FIRST_LINE = (
    b"Fro :uMmlti Sender <a@b.example>\r\n"
    b"To: support@hub.example.com\r\n"
    b"Subject: =?utf-8?b?0KHRh9GR0YIg0L3QtSDQv9GA0LjRiNGR0Ls=?=\r\n"
    b"Message-ID: <bad-first-line-1@b.example>\r\n"
    b"MIME-Version: 1.0\r\n"
    b'Content-Type: multipart/alternative; boundary="b1"\r\n'
    b"\r\n"
    b"--b1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nThe invoice has not arrived.\r\n"
    b"--b1\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p>The invoice has <b>not</b> arrived.</p>\r\n"
    b"--b1--\r\n"
)


def test_a_malformed_first_header_line_is_salvaged_and_kept_raw(hub, client):
    configure(hub, inbound_token=TOKEN)
    answer = pipe(client, BAD_FIRST_LINE)
    # It was a 400 ("not an RFC 822 message") and the message was kept nowhere.
    assert answer.status_code == 201, answer.text
    with hub.session(read_only=True) as s:
        event = s.get(TimelineEvent, answer.json()["event_id"])
        row = s.get(EmailRawMessage, answer.json()["raw_id"])
        # The fields after the bad line are read, as other mail readers read them.
        assert event.subject == "Счёт не пришёл" and event.data["message_id"] == "bad-first-line-1@b.example"
        assert event.data["to"] == ["support@hub.example.com"] and event.text == "The invoice has not arrived."
        assert "<b>not</b>" in event.html
        assert any("Fro :uMmlti" in d for d in event.data["defects"])
        assert row.reason == "malformed" and row.message_id == "bad-first-line-1@b.example"
    assert hub.channel("email").files.raw.read(row.sha256) == BAD_FIRST_LINE
    assert pipe(client, BAD_FIRST_LINE).status_code == 200  # once


def test_every_corpus_message_goes_through_the_pipe(hub, client):
    configure(hub, inbound_token=TOKEN)
    for path in sorted(CORPUS.rglob("*.eml")):
        answer = pipe(client, path.read_bytes())
        assert answer.status_code == 201, (path, answer.text)


def test_attachments_download_only_for_signed_in_readers(hub, client, api_key):
    configure(hub, inbound_token=TOKEN)
    event_id = pipe(client, fixture_raw("html_koi8r_attachment.json")).json()["event_id"]
    with hub.session(read_only=True) as s:
        event = s.get(TimelineEvent, event_id)
    (info,) = event.data["attachments"]
    assert info["filename"] == "Счёт №7781.pdf"
    url = f"/channels/email/attachments/{info['id']}"

    assert client.get(url).status_code == 401
    assert client.get(url, headers=api_key("contacts:read")).status_code == 403
    answer = client.get(url, headers=api_key("timeline:read"))
    assert answer.status_code == 200
    assert answer.content.startswith(b"%PDF-1.4") and len(answer.content) == info["size"]
    assert answer.headers["content-type"] == "application/pdf"
    assert answer.headers["content-disposition"] == (
        "attachment; filename=\"____ _7781.pdf\"; filename*=UTF-8''%D0%A1%D1%87%D1%91%D1%82%20%E2%84%967781.pdf")
    assert answer.headers["x-content-type-options"] == "nosniff"
    assert "sandbox" in answer.headers["content-security-policy"]
    assert client.get("/channels/email/attachments/999999", headers=api_key("timeline:read")).status_code == 404


def test_an_html_attachment_is_served_as_opaque_bytes(hub, client, api_key):
    configure(hub, inbound_token=TOKEN)
    raw = msg("""
From: a@example.org
Subject: page
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="b"
""", "--b\r\nContent-Type: text/plain\r\n\r\nsee\r\n--b\r\nContent-Type: text/html\r\n"
         "Content-Disposition: attachment; filename=page.html\r\n\r\n<script>alert(1)</script>\r\n--b--\r\n")
    event_id = pipe(client, raw).json()["event_id"]
    with hub.session(read_only=True) as s:
        attachment_id = s.get(TimelineEvent, event_id).data["attachments"][0]["id"]
    answer = client.get(f"/channels/email/attachments/{attachment_id}", headers=api_key("timeline:read"))
    assert answer.headers["content-type"] == "application/octet-stream"
    assert answer.headers["content-disposition"].startswith("attachment;")


def test_a_message_kept_raw_can_be_downloaded(hub, client, api_key):
    configure(hub, inbound_token=TOKEN)
    raw = (CORPUS / "thirdparty" / "005.eml").read_bytes()
    event_id = pipe(client, raw).json()["event_id"]
    with hub.session(read_only=True) as s:
        raw_id = s.get(TimelineEvent, event_id).data["raw"]["id"]
        assert s.get(EmailRawMessage, raw_id).reason == "malformed"
    assert client.get(f"/channels/email/raw/{raw_id}").status_code == 401
    answer = client.get(f"/channels/email/raw/{raw_id}", headers=api_key("timeline:read"))
    assert answer.status_code == 200 and answer.content == raw


def test_compose_with_an_attachment_through_the_api(hub, client, api_key, smtp_server):
    configure(hub, **smtp_server.settings())
    contact = make_contact(hub, "ivan@example.org", "Иван")
    agent = api_key("timeline:read", "timeline:write")
    up = client.post("/channels/email/attachments", headers=agent,
                     files={"file": ("../../договор.pdf", b"%PDF-1.4 contract", "application/pdf")})
    assert up.status_code == 201, up.text
    assert up.json()["filename"] == "договор.pdf"
    sent = client.post("/channels/email/messages", headers=agent, json={
        "contact_id": contact, "subject": "Договор", "text": "Договор во вложении.",
        "attachment_ids": [up.json()["id"]], "client_id": "draft-1"})
    assert sent.status_code == 202, sent.text
    assert sent.json()["to"] == "ivan@example.org"
    retried = client.post("/channels/email/messages", headers=agent, json={
        "contact_id": contact, "subject": "Договор", "text": "Договор во вложении.",
        "attachment_ids": [up.json()["id"]], "client_id": "draft-1"})
    assert retried.json()["delivery_id"] == sent.json()["delivery_id"]
    Worker(hub).tick()
    ((meta, raw),) = smtp_server.received()
    (attachment,) = email.message_from_bytes(raw, policy=email.policy.default).iter_attachments()
    assert attachment.get_filename() == "договор.pdf" and attachment.get_content() == b"%PDF-1.4 contract"
    with hub.session(read_only=True) as s:
        event = s.get(TimelineEvent, sent.json()["event_id"])
        assert event.status == "sent" and event.data["attachments"][0]["filename"] == "договор.pdf"
        assert s.get(EmailAttachment, up.json()["id"]).event_id == event.id


def test_compose_refusals_write_nothing(hub, client, api_key, smtp_server):
    configure(hub, **smtp_server.settings())
    contact = make_contact(hub, "ivan@example.org", "Иван")
    agent = api_key("timeline:read", "timeline:write")
    cases = [
        ({"contact_id": contact, "subject": "a\r\nBcc: x@evil.example", "text": "x"}, 422),
        ({"contact_id": contact, "subject": "s", "text": "x", "to": "stranger@example.org"}, 422),
        ({"contact_id": contact, "subject": "s", "text": "x", "attachment_ids": [424242]}, 404),
        ({"contact_id": 999999, "subject": "s", "text": "x"}, 404),
        ({"contact_id": contact, "text": "no subject and no reply"}, 422),
        ({"contact_id": contact, "subject": "s", "text": "x", "reply_to_event_id": 999999}, 404),
    ]
    for body, status in cases:
        answer = client.post("/channels/email/messages", headers=agent, json=body)
        assert answer.status_code == status, (body, answer.text)
    assert client.post("/channels/email/messages", headers=api_key("timeline:read"),
                       json={"contact_id": contact, "subject": "s", "text": "x"}).status_code == 403
    assert count(hub, Delivery) == 0


def test_the_suppression_list_through_the_api(hub, client, api_key):
    configure(hub)
    contact = make_contact(hub, "mila@example.org")
    writer = api_key("contacts:read", "contacts:write")
    assert client.post("/channels/email/suppressions", headers=writer, json={"address": "not an address"}).status_code == 422
    added = client.post("/channels/email/suppressions", headers=writer, json={"address": "Mila@Example.org", "detail": "asked by phone"})
    assert added.status_code == 201 and added.json()["reason"] == "manual"
    listed = client.get(f"/channels/email/suppressions?contact_id={contact}", headers=api_key("contacts:read")).json()
    assert [(i["address"], i["reason"]) for i in listed["items"]] == [("mila@example.org", "manual")]
    assert listed["items"][0]["suppressed_at"]
    assert client.delete("/channels/email/suppressions/mila@example.org", headers=api_key("contacts:read")).status_code == 403
    assert client.delete("/channels/email/suppressions/mila@example.org", headers=writer).status_code == 204
    assert client.delete("/channels/email/suppressions/mila@example.org", headers=writer).status_code == 404
    assert count(hub, EmailSuppression) == 0
    with hub.session(read_only=True) as s:
        kinds = s.scalars(select(TimelineEvent.kind).where(TimelineEvent.contact_id == contact)
                          .order_by(TimelineEvent.id)).all()
    assert kinds == ["suppressed", "unsuppressed"]


def test_admins_see_the_kept_mail_with_the_reason(hub, app, client):
    from fastapi.testclient import TestClient

    from hub.models import Role
    from tests.web.conftest import ORIGIN, login

    configure(hub, inbound_token=TOKEN)
    salvaged = pipe(client, BAD_FIRST_LINE).json()
    garbage = pipe(client, b"just some words, no headers").json()
    pipe(client, fixture_raw("reply_windows1251.json"))  # read whole: not kept
    with TestClient(app, base_url=ORIGIN) as web:
        login(web, hub, "admin@example.com", role=Role.ADMIN)
        page = web.get("/admin/email/kept")
        assert page.status_code == 200
        assert page.text.count('<tr id="kept-') == 2
        assert "Счёт не пришёл" in page.text and "bad-first-line-1@b.example" in page.text
        assert "Fro :uMmlti" in page.text and "no header fields" in page.text
        assert page.text.count("Could not be read whole") == 2
        assert f'href="/channels/email/raw/{salvaged["raw_id"]}"' in page.text
        assert 'href="/admin/email/kept"' in page.text  # in the admin's navigation
        download = web.get(f"/channels/email/raw/{garbage['raw_id']}")
        assert download.status_code == 200 and download.content == b"just some words, no headers"
        ru = web.get("/admin/email/kept", headers={"Accept-Language": "ru"})
        assert ru.status_code == 200
    with TestClient(app, base_url=ORIGIN) as web:
        login(web, hub, "agent@example.com", role=Role.AGENT)
        assert web.get("/admin/email/kept").status_code == 403
        assert 'href="/admin/email/kept"' not in web.get("/").text
