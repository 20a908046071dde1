"""Stored files are served as downloads with safe types: never HTML or script a browser would run inline."""

from __future__ import annotations

from email.message import EmailMessage

import pytest
from sqlalchemy import select

from channels.email.inbound import receive
from channels.email.models import EmailAttachment
from tests.channels.email.conftest import configure

HOSTILE = [
    ("page.html", "text/html", b"<script>alert(document.cookie)</script>"),
    ("image.svg", "image/svg+xml", b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>'),
    ("x.js", "application/javascript", b"alert(1)"),
    ("x.xml", "text/xml", b"<?xml version='1.0'?><x/>"),
    ("sniff.txt", "text/plain", b"<html><script>alert(1)</script></html>"),
    ('evil"; filename=".bashrc\r\nSet-Cookie: a=b', "application/pdf", b"%PDF-1.4"),
    ("../../etc/passwd", "application/octet-stream", b"root:x:0:0"),
    ("Отчёт за март.pdf", "application/pdf", b"%PDF-1.4 cyrillic"),
]
ACTIVE = {"text/html", "image/svg+xml", "application/javascript", "text/javascript", "text/xml", "application/xml",
          "application/xhtml+xml"}


def check_download(answer, name: str) -> None:  # type: ignore[no-untyped-def]
    assert answer.status_code == 200, answer.text
    media = answer.headers["content-type"].split(";")[0].strip().lower()
    assert media not in ACTIVE, f"{name} served as {media}"
    disposition = answer.headers["content-disposition"]
    assert disposition.startswith("attachment;"), disposition
    assert "\r" not in disposition and "\n" not in disposition
    assert answer.headers["x-content-type-options"] == "nosniff"
    assert "sandbox" in answer.headers.get("content-security-policy", "")
    assert "a=b" not in answer.headers.get("set-cookie", "")  # no header smuggled in through the name
    fallback = disposition.split('filename="', 1)[1].split('"', 1)[0]
    assert "/" not in fallback and "\\" not in fallback


@pytest.mark.parametrize(("name", "media", "data"), HOSTILE, ids=[h[0][:12] for h in HOSTILE])
def test_uploaded_files_come_back_as_safe_downloads(hub, client, api_key, name, media, data):
    configure(hub)
    headers = api_key("timeline:read", "timeline:write")
    uploaded = client.post("/channels/email/attachments", headers=headers, files={"file": (name, data, media)})
    assert uploaded.status_code == 201, uploaded.text
    answer = client.get(f"/channels/email/attachments/{uploaded.json()['id']}", headers=headers)
    check_download(answer, name)
    assert answer.content == data


def test_files_that_came_by_email_come_back_as_safe_downloads(hub, client, api_key):
    channel = configure(hub)
    msg = EmailMessage()
    msg["From"] = "Mallory <mallory@example.org>"
    msg["Subject"] = "invoice"
    msg["Message-ID"] = "<evil-1@example.org>"
    msg.set_content("see attached")
    for name, media, data in HOSTILE:
        maintype, subtype = media.split("/")
        # The email library refuses CR/LF in a header; a sender's raw bytes are fuzzed in tests/fuzz.
        msg.add_attachment(data, maintype=maintype, subtype=subtype, filename=name.replace("\r\n", " "))
    with hub.session() as s, s.begin():
        receive(s, channel=channel, raw=msg.as_bytes(), origin={"test": True})
    headers = api_key("timeline:read")
    with hub.session(read_only=True) as s:
        rows = list(s.scalars(select(EmailAttachment)))
    assert len(rows) >= len(HOSTILE) - 1
    for row in rows:
        assert "/" not in row.filename and not row.filename.startswith(".."), row.filename
        check_download(client.get(f"/channels/email/attachments/{row.id}", headers=headers), row.filename)
    # Without the scope, or signed out, nothing is served.
    assert client.get(f"/channels/email/attachments/{rows[0].id}", headers=api_key("contacts:read")).status_code == 403
    assert client.get(f"/channels/email/attachments/{rows[0].id}").status_code == 401
