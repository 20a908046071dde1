"""Parsing real-world mail (pure: bytes in, event out): charsets, encoded words, RFC 2231 names,
hostile HTML, quoted history, References caps, auto-replies and delivery status notifications."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from channels.email import EmailChannel
from hub.html import sanitize_html
from channels.email.parse import UNKNOWN_SENDER, ParseLimits, parse_message, safe_filename, salvage_header_block
from channels.email.quotes import fold
from tests.channels.email.conftest import CORPUS, FIXTURES

CORPUS_FILES = sorted(CORPUS.rglob("*.eml"))


def msg(headers: str, body: bytes | str = b"Hello\r\n") -> bytes:
    head = headers.strip("\n").replace("\n", "\r\n").encode("utf-8") + b"\r\n\r\n"
    return head + (body.encode() if isinstance(body, str) else body)


def test_the_corpus_is_there():
    assert len(CORPUS_FILES) >= 30, f"expected the shared corpus at {CORPUS}"


@pytest.mark.parametrize("path", CORPUS_FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_corpus_message_parses(path: Path):
    raw = path.read_bytes()
    parsed = parse_message(raw)
    event = parsed.event
    assert event.channel == "email" and event.identities
    assert event.external_id and len(event.external_id) <= 300
    # Everything the store receives must be storable: no NUL, no lone surrogates, JSON-clean data.
    dumped = json.dumps(event.model_dump(mode="json"), ensure_ascii=False)
    assert "\\u0000" not in dumped
    dumped.encode("utf-8")
    assert parse_message(raw) == parsed  # pure


def test_recorded_fixtures_round_trip_through_parse():
    for path in sorted(FIXTURES.glob("*.json")):
        payload = json.loads(path.read_text())
        assert EmailChannel.parse(payload) == EmailChannel.parse(payload)


@pytest.mark.parametrize("garbage", [None, 42, "text", [], {"unexpected": True}, {"raw": "%%%not base64"},
                                     {"raw": base64.b64encode(b"hello world").decode()}])
def test_garbage_payloads_raise_value_error(garbage):
    with pytest.raises(ValueError):
        EmailChannel.parse(garbage)


@pytest.mark.parametrize("charset,codec", [("koi8-r", "koi8_r"), ("windows-1251", "cp1251"), ("utf-7", "utf_7")])
def test_body_and_encoded_word_subject_in_any_charset(charset: str, codec: str):
    text = "Добрый день! Заказ 5 готов, ёлка."
    subject = "Счёт и доставка"
    encoded_subject = f"=?{charset}?B?{base64.b64encode(subject.encode(codec)).decode()}?="
    raw = msg(f"""
From: =?{charset}?B?{base64.b64encode("Пётр Иванов".encode(codec)).decode()}?= <petr@example.org>
To: support@hub.example.com
Subject: {encoded_subject}
Message-ID: <{charset}-1@example.org>
MIME-Version: 1.0
Content-Type: text/plain; charset="{charset}"
Content-Transfer-Encoding: base64
""", base64.encodebytes(text.encode(codec)))
    event = parse_message(raw).event
    assert event.subject == subject
    assert event.text == text
    assert event.display_name == "Пётр Иванов"
    assert [i.value for i in event.identities] == ["petr@example.org"]


def test_8bit_body_without_charset_is_read_as_utf8_and_unknown_charsets_do_not_fail():
    raw = msg("""
From: a@example.org
Subject: =?x-unknown-charset?Q?caf=E9?=
Content-Type: text/plain; charset=x-made-up
""", "Привет\r\n".encode())
    event = parse_message(raw).event
    assert event.text == "Привет"
    assert event.subject  # decoded somehow, never an exception


def test_rfc2231_and_encoded_word_filenames_become_safe_names():
    boundary = "b1"
    raw = msg(f"""
From: a@example.org
Subject: files
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="{boundary}"
""", (
        f"--{boundary}\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n"
        f"--{boundary}\r\nContent-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n"
        "Content-Disposition: attachment;\r\n filename*0*=utf-8''%D0%A1%D1%87%D1%91%D1%82;\r\n filename*1*=%20%E2%84%961.pdf\r\n\r\n"
        f"{base64.b64encode(b'%PDF-1.4').decode()}\r\n"
        f"--{boundary}\r\nContent-Type: text/plain; name=\"=?utf-8?B?{base64.b64encode('../../etc/отчёт.txt'.encode()).decode()}?=\"\r\n"
        "Content-Disposition: attachment\r\n\r\nreport\r\n"
        f"--{boundary}\r\nContent-Type: application/octet-stream\r\n"
        "Content-Disposition: attachment; filename=\"evil\\u202egnp.exe\"\r\n\r\nxx\r\n"
        f"--{boundary}--\r\n"
    ))
    parsed = parse_message(raw)
    names = [a.filename for a in parsed.attachments]
    assert names[0] == "Счёт №1.pdf"
    assert names[1] == "отчёт.txt"  # no path survives
    assert all("/" not in n and "\\" not in n and "\u202e" not in n for n in names)
    assert parsed.attachments[0].data == b"%PDF-1.4" and parsed.attachments[0].content_type == "application/pdf"
    assert parsed.event.text == "see attached"


def test_safe_filename_edge_cases():
    assert safe_filename("..", "application/pdf", 3) == "attachment-3.pdf"
    assert safe_filename("C:\\Users\\x\\report.doc", "application/msword", 1) == "report.doc"
    assert safe_filename("a\r\nb.txt", "text/plain", 1) == "a__b.txt"
    assert len(safe_filename("x" * 500 + ".pdf", "application/pdf", 1)) <= 150
    assert safe_filename("x" * 500 + ".pdf", "application/pdf", 1).endswith(".pdf")


HOSTILE = """<html><head><base href="https://evil.example/"><style>body{background:url(https://evil.example/bg)}</style>
<link rel="stylesheet" href="https://evil.example/a.css"><script>alert(1)</script></head>
<body onload="alert(2)"><p onclick="alert(3)" style="color:red;background-image:url(https://evil.example/x)">Hi</p>
<img src="https://tracker.example/pixel.gif" onerror="alert(4)"><img src="cid:logo@x">
<a href="javascript:alert(5)">pay</a><a href="  JaVaScRiPt:alert(6)">pay2</a><a href="https://shop.example/ok">ok</a>
<svg onload="alert(7)"><script>alert(8)</script></svg><iframe src="https://evil.example/f"></iframe>
<form action="https://evil.example/steal"><input name="pw"></form><object data="x.swf"></object>
<meta http-equiv="refresh" content="0;url=https://evil.example/"></body></html>"""


def test_hostile_html_is_sanitized():
    clean = sanitize_html(HOSTILE)
    lowered = clean.lower()
    for bad in ("<script", "onload", "onclick", "onerror", "javascript:", "<base", "<style", "<link", "<svg",
                "<iframe", "<form", "<input", "<object", "<meta", "url(", "evil.example"):
        assert bad not in lowered, f"{bad!r} survived: {clean}"
    # Remote images keep their address only where nothing loads it; cid: images stay.
    assert 'data-blocked-src="https://tracker.example/pixel.gif"' in clean
    assert ' src="https://tracker.example' not in clean
    assert 'src="cid:logo@x"' in clean
    assert 'href="https://shop.example/ok"' in clean and "color:red" in clean


HOSTILE_STYLES = [
    'style="width:expression(alert())"',
    'style="width:expression(alert()"',  # unbalanced, as the issue found it
    'style="width: EXPRESSION (alert(1))"',
    'style="width:expr\\65ssion(alert(1))"',  # a CSS escape spelling "expression"
    'style="width:expr/**/ession(alert(1))"',
    'style="background-color:url(javascript:alert(1))"',
    'style="color:red;behavior:url(#default#time2)"',
    'style="color:red;-moz-binding:url(https://evil.example/x.xml#x)"',
    'style="width:var(--x)"',
    'style="width:calc(100px);color:image-set(url(https://evil.example/i))"',
    'style="font-family:&#101;xpression(alert(1))"',
]


@pytest.mark.parametrize("style", HOSTILE_STYLES)
def test_dangerous_css_is_dropped(style):
    clean = sanitize_html(f'<div {style}>x</div><p style="color:rgb(1,2,3);width:100px">y</p>').lower()
    for bad in ("expression", "expr", "url(", "javascript", "behavior", "binding", "var(", "image-set", "\\", "/*"):
        assert bad not in clean, f"{bad!r} survived: {clean}"
    # The harmless style beside it stays.
    assert "color:rgb(1, 2, 3);width:100px" in clean


def test_safe_declarations_beside_a_hostile_one_stay():
    clean = sanitize_html('<p style="color:red; width:expression(alert()); text-align:center">x</p>')
    assert "expression" not in clean and "color:red" in clean and "text-align:center" in clean


def test_hostile_html_message_is_stored_sanitized_with_text_derived():
    raw = msg("""
From: a@example.org
Subject: offer
Content-Type: text/html; charset=utf-8
""", HOSTILE)
    event = parse_message(raw).event
    assert "<script" not in event.html and "onload" not in event.html
    assert "Hi" in event.text and "alert" not in event.text


def test_quoted_history_and_signature_are_folded():
    folded = fold(
        "Thanks, Thursday works.\n\n-- \nAnna Smirnova\nACME\n\n"
        "On Mon, 12 Jan 2026 at 10:00, Hub Support <support@hub.example.com> wrote:\n> Does Thursday suit you?\n"
    )
    assert folded.text == "Thanks, Thursday works."
    assert folded.signature == "Anna Smirnova\nACME"
    assert folded.quoted.startswith("On Mon, 12 Jan 2026") and "> Does Thursday" in folded.quoted

    russian = fold("Спасибо, получила.\n\n12.01.2026 10:00, Hub Support пишет:\n> Отправили заказ.\n")
    assert russian.text == "Спасибо, получила." and "Отправили" in russian.quoted

    outlook = fold("Yes please.\n\n________________________________\nFrom: Hub <s@hub.example.com>\nSent: Monday\n"
                   "To: me\nSubject: Re: x\n\nold text")
    assert outlook.text == "Yes please." and "old text" in outlook.quoted

    inline = fold("> question one?\nanswer one\n> question two?\nanswer two")
    assert "answer two" in inline.text and "answer one" in inline.text

    only_quote = fold("> everything is quoted")
    assert only_quote.text == "> everything is quoted"


def test_thousands_of_references_are_capped():
    refs = " ".join(f"<ref{i}@example.org>" for i in range(5000))
    raw = msg(f"""
From: a@example.org
Subject: long thread
Message-ID: <last@example.org>
In-Reply-To: <ref4999@example.org>
References: {refs}
""")
    parsed = parse_message(raw, limits=ParseLimits(max_references=50))
    assert len(parsed.event.data["references"]) == 50
    assert parsed.event.data["references"][-1] == "ref4999@example.org"
    assert len(parsed.thread_candidates) <= 52
    assert parsed.thread_candidates[0] == "ref4999@example.org"  # the direct parent comes first


@pytest.mark.parametrize("headers,reason", [
    ("Auto-Submitted: auto-replied", "Auto-Submitted"),
    ("X-Autoreply: yes", "X-Autoreply"),
    ("X-Autorespond: Out of office", "X-Autorespond"),
    ("Precedence: auto_reply", "Precedence: auto_reply"),
])
def test_auto_replies_are_flagged(headers: str, reason: str):
    raw = msg(f"""
From: anna@example.org
Subject: Out of Office: Re: your order
{headers}
""", "I am away until Monday.")
    event = parse_message(raw).event
    assert event.kind == "auto_reply" and event.data["auto_reply"] is True
    assert reason in event.data["auto_reply_reason"]


def test_vacation_subject_with_bulk_precedence_is_an_auto_reply_but_a_newsletter_is_not():
    vacation = parse_message(msg("From: a@example.org\nSubject: Автоответ: Re: заказ\nPrecedence: bulk")).event
    assert vacation.kind == "auto_reply"
    newsletter = parse_message(msg("From: news@example.org\nSubject: Our January news\nPrecedence: bulk")).event
    assert newsletter.kind == "message"
    human = parse_message(msg("From: a@example.org\nSubject: Re: заказ\nAuto-Submitted: no")).event
    assert human.kind == "message"


def dsn(recipients: list[tuple[str, str, str]], original: str = "<orig-1@hub.example.com>") -> bytes:
    blocks = "".join(
        f"Final-Recipient: rfc822; {addr}\r\nAction: {action}\r\nStatus: {status}\r\n"
        f"Diagnostic-Code: smtp; {status[0]}50 {status} something about {addr}\r\n\r\n"
        for addr, action, status in recipients
    )
    return msg("""
From: MAILER-DAEMON@mx.example.net
To: bounces@hub.example.com
Subject: Delivery Status Notification
Message-ID: <dsn-{n}@mx.example.net>
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="r"
""".replace("{n}", str(abs(hash(blocks)))), (
        "--r\r\nContent-Type: text/plain\r\n\r\nYour message could not be delivered.\r\n"
        "--r\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example.net\r\n\r\n"
        f"{blocks}"
        f"--r\r\nContent-Type: text/rfc822-headers\r\n\r\nMessage-ID: {original}\r\nSubject: hi\r\n\r\n"
        "--r--\r\n"
    ))


def test_dsn_is_read_per_recipient():
    parsed = parse_message(dsn([
        ("gone@example.org", "failed", "5.1.1"),
        ("full@example.org", "failed", "4.2.2"),
        ("slow@example.org", "delayed", "4.4.7"),
    ]))
    assert parsed.event.kind == "bounce"
    report = parsed.report
    assert report is not None and report.original_message_id == "<orig-1@hub.example.com>"
    by = {r.address: r for r in report.recipients}
    assert by["gone@example.org"].hard and by["gone@example.org"].failed
    assert by["full@example.org"].failed and not by["full@example.org"].hard
    assert not by["slow@example.org"].failed and not by["slow@example.org"].hard
    # The event belongs to the people the mail failed for, not to MAILER-DAEMON.
    assert [i.value for i in parsed.event.identities] == ["gone@example.org", "full@example.org"]
    assert parsed.thread_candidates[0] == "orig-1@hub.example.com"


def test_a_sender_that_is_no_address_goes_to_the_unknown_sender():
    event = parse_message(msg("From: Whomever\nSubject: hi")).event
    assert [(i.kind, i.value) for i in event.identities] == [("external", UNKNOWN_SENDER)]
    assert event.data["sender_unverified"] is True


def test_header_injection_in_inbound_names_stays_in_one_field():
    raw = b"From: =?utf-8?q?Bob=0D=0ABcc=3A_x=40evil?= <bob@example.org>\r\nSubject: =?utf-8?q?a=0D=0AX-Evil=3A_1?=\r\n\r\nhi\r\n"
    event = parse_message(raw).event
    assert "\n" not in (event.display_name or "") and "\r" not in (event.display_name or "")
    assert "\n" not in (event.subject or "")


def test_deeply_nested_multiparts_are_read_to_a_limit():
    depth = 200
    body = "".join(f"--b{i}\r\nContent-Type: multipart/mixed; boundary=\"b{i + 1}\"\r\n\r\n" for i in range(depth))
    body += "--b%d\r\nContent-Type: text/plain\r\n\r\ndeep inside\r\n" % depth
    body += "".join(f"--b{i}--\r\n" for i in range(depth, -1, -1))
    raw = msg('From: a@example.org\nSubject: deep\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary="b0"', body)
    parsed = parse_message(raw, limits=ParseLimits(max_depth=30))
    assert parsed.event.kind == "message"
    assert any("nesting deeper than 30" in d for d in parsed.defects)


def test_fields_after_a_bad_header_line_are_read():
    raw = (b"Subject: first\r\nX-Bad line without a colon\r\nFrom: Ann <ann@example.org>\r\n"
           b"To: support@hub.example.com\r\nSubject2 :\tobsolete form\r\n  folded on\r\n"
           b"Message-ID: <mid-bad@example.org>\r\n\r\nThe body.\r\n")
    parsed = parse_message(raw)
    assert parsed.event.subject == "first" and parsed.message_id == "mid-bad@example.org"
    assert parsed.event.data["from"] == "ann@example.org" and parsed.event.text == "The body."
    assert any("X-Bad line" in d for d in parsed.defects) and any("Subject2 :" in d for d in parsed.defects)
    mended, _ = salvage_header_block(raw)
    assert b"Subject2: obsolete form\r\n  folded on\r\n" in mended and b"X-Bad" not in mended


def test_lines_after_the_last_field_stay_the_body_and_sound_mail_is_untouched():
    # A sender that forgot the blank line: Python reads the rest as body, and so does the salvage.
    assert salvage_header_block(b"Subject: x\nTo: a@example.org\nHello there\nsecond line\n\nmore") is None
    mended, defects = salvage_header_block(b"bad first line\nSubject: x\nHello there\n\nmore")
    assert mended == b"Subject: x\n\nHello there\n\nmore" and len(defects) == 1
    assert parse_message(b"bad first line\nSubject: x\nHello there\n\nmore").event.text.startswith("Hello there")
    assert salvage_header_block(b"just words\nno fields\n") is None
    for path in CORPUS_FILES:  # nothing in the corpus needs mending, so nothing in it changes
        raw = path.read_bytes()
        assert salvage_header_block(raw) is None or parse_message(raw).message_id
