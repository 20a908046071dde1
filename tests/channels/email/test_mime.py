"""The outbound MIME writer: what mail clients and mailbox providers read back from our bytes."""

from __future__ import annotations

import email
import email.policy
import email.utils
from email.header import decode_header, make_header
from datetime import datetime, timezone

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from channels.email.mime import AttachmentRef, EmailContent, build_message, one_line
from channels.email.settings import EmailSettings

SETTINGS = EmailSettings(smtp_host="smtp.example.com", from_address="news@hub.example.com", from_name="Магазин «Ромашка»",
                         message_id_domain="hub.example.com")
DATE = datetime(2026, 1, 15, 9, 0, tzinfo=timezone.utc)
PDF = b"%PDF-1.4\n%%EOF\n"


def build(content: EmailContent, to: str = "anna@example.org") -> bytes:
    raw, _ = build_message(content, settings=SETTINGS, to_address=to, idempotency_key="k", date=DATE,
                           read_attachment=lambda ref: PDF)
    return raw


def parse(raw: bytes) -> email.message.EmailMessage:
    return email.message_from_bytes(raw, policy=email.policy.default)  # type: ignore[return-value]


def test_a_long_list_unsubscribe_url_stays_one_plain_url_not_rfc_2047_words():
    url = "https://hub.example.com/u/" + "a" * 180
    raw = build(EmailContent(subject="Sale", html="<p>Sale</p>", list_unsubscribe=url, list_unsubscribe_post=True))
    # What a mailbox provider reads: the header's raw value, not a decoded one.
    assert f"\r\nList-Unsubscribe: <{url}>\r\n".encode() in raw
    assert b"\r\nList-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n" in raw
    assert b"=?" not in raw.split(b"\r\nList-Unsubscribe:")[1].split(b"\r\n")[0]


def test_an_international_domain_goes_out_in_its_xn_form_and_a_utf8_local_part_is_refused():
    raw = build(EmailContent(subject="Привет", text="Текст", to_name="Анна"), to="anna@пример.рф")
    assert parse(raw)["To"].addresses[0].addr_spec == "anna@xn--e1afmkfd.xn--p1ai"
    with pytest.raises(ValueError, match="SMTPUTF8"):
        build(EmailContent(subject="Привет", text="Текст"), to="анна@пример.рф")


def test_a_long_non_ascii_file_name_is_split_into_rfc_2231_continuations():
    name = "Договор поставки и спецификация к нему, редакция от 15 января 2026 года.pdf"
    ref = AttachmentRef(filename=name, content_type="application/pdf", size=len(PDF), sha256="0" * 64)
    raw = build(EmailContent(subject="Договор", text="Во вложении.", attachments=[ref]))
    (attachment,) = parse(raw).iter_attachments()
    assert attachment.get_filename() == name and attachment.get_content() == PDF
    assert max(len(line) for line in raw.split(b"\r\n")) <= 78 and raw.isascii()


def test_an_ascii_subject_that_looks_like_an_encoded_word_is_encoded_so_it_reads_back_as_typed():
    subject = "=?utf-8?b?0J/RgNC40LLQtdGC?= is not a greeting"
    assert parse(build(EmailContent(subject=subject, text="x")))["Subject"] == subject


def test_a_message_can_name_its_own_from_address_and_keeps_the_channels_reply_to():
    parsed = parse(build(EmailContent(subject="Sale", text="x", from_name="Shop news", from_address="news@shop.example")))
    assert (parsed["From"].addresses[0].display_name, parsed["From"].addresses[0].addr_spec) == \
        ("Shop news", "news@shop.example")
    assert parsed["Reply-To"].addresses[0].addr_spec == "news@hub.example.com"
    assert parse(build(EmailContent(subject="Sale", text="x")))["From"].addresses[0].addr_spec == "news@hub.example.com"


@pytest.mark.any_store
def test_the_channel_refuses_a_from_address_it_may_not_send_as(hub):
    channel = hub.channel("email")
    content = {"subject": "Sale", "text": "x", "from_address": "ceo@elsewhere.example"}
    with pytest.raises(ValueError, match="sender_addresses under \\[channels.email\\]"):
        channel.validate_content(content)
    with pytest.raises(ValueError, match="from_address"):
        channel.validate_content({**content, "from_address": "not an address"})
    with pytest.raises(ValueError, match="from_address"):
        channel.validate_content({**content, "from_address": "a@b.example\r\nBcc: all@example.org"})
    channel.settings.sender_addresses = ["@elsewhere.example"]
    try:
        channel.validate_content(content)
    finally:
        channel.settings.sender_addresses = []


def test_a_message_without_html_is_one_text_part():
    parsed = parse(build(EmailContent(subject="Hi", text="Line one\nline two")))
    assert parsed.get_content_type() == "text/plain" and not parsed.is_multipart()
    assert parsed.get_content() == "Line one\r\nline two\r\n"


def test_an_html_only_message_gets_a_text_part_that_keeps_each_links_address():
    html = ("<p>Your order shipped. <a href='https://shop.example.com/track?o=1&amp;x=2'>Track it</a>.</p>"
            "<blockquote>Questions? <a href='mailto:help@shop.example.com'>Write to us</a></blockquote>"
            "<p><a href='https://shop.example.com/'>https://shop.example.com/</a> "
            "<a href='tel:+74950000000'>call</a> <a href='https://shop.example.com/'><img src='cid:logo'></a></p>")
    parsed = parse(build(EmailContent(subject="Shipped", html=html)))
    text = parsed.get_body(preferencelist=("plain",)).get_content().replace("\r\n", "\n")
    assert text.strip() == ("Your order shipped. Track it (https://shop.example.com/track?o=1&x=2).\n\n"
                            "> Questions? Write to us (help@shop.example.com)\n\n"
                            "https://shop.example.com/ call https://shop.example.com/")


def test_inbound_text_derived_from_html_is_left_without_addresses():
    from hub.html import html_to_text

    html = "<p><a href='https://tracker.example.net/very/long/redirect'>Read more</a></p>"
    assert html_to_text(html) == "Read more"
    assert html_to_text(html, links=True) == "Read more (https://tracker.example.net/very/long/redirect)"


printable = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=300)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(subject=printable, name=printable, text=printable, html=printable)
def test_any_subject_name_and_body_read_back_as_written_from_7_bit_lines(subject, name, text, html):
    if not one_line(subject):
        return  # EmailContent refuses an empty subject
    content = EmailContent(subject=one_line(subject, limit=998), to_name=name, text=text, html=html)
    raw = build(content)
    assert raw.isascii() and all(len(line) <= 998 for line in raw.split(b"\r\n"))
    parsed = parse(raw)
    assert parsed["Subject"] == one_line(subject, limit=998)
    # Read as RFC 2047 says (adjacent encoded words join without a space; Python's address parser
    # keeps one between the words of a long display name, mail clients do not).
    to = str(make_header(decode_header(email.message_from_bytes(raw)["To"])))
    assert to == (f"{one_line(name)} <anna@example.org>" if one_line(name) else "anna@example.org") or \
        email.utils.parseaddr(to)[0] == one_line(name)
    normal = lambda s: s.replace("\r\n", "\n").replace("\r", "\n").rstrip("\n")  # noqa: E731
    assert normal(parsed.get_body(("plain",)).get_content()) == normal(text)
    assert normal(parsed.get_body(("html",)).get_content()) == normal(html)


def stdlib_header(name: str, value: str) -> str:
    """What `email.header` writes for an unstructured header: the output the direct encoder must equal."""
    from email.header import Header

    plain = value.isascii() and "=?" not in value
    return f"{name}: " + Header(value, "us-ascii" if plain else "utf-8", header_name=name).encode(linesep="\r\n")


def test_a_personalised_subject_is_encoded_without_email_header_and_as_email_header_writes_it():
    from channels.email.mime import _plain_value, _text, _utf8_words

    for subject in ["Анна, предложения недели", "Anna, this week's offers", "Zoë, =?not a word?=",
                    "Очень длинная тема письма, которая не помещается в одну строку заголовка никак"]:
        assert _text("Subject", subject) == stdlib_header("Subject", subject)
    # The common cases take the direct path (email.header re-encodes the value once per character).
    assert _utf8_words("Subject", "Анна, предложения недели") is not None
    assert _plain_value("Subject", "Anna, this week's offers") == "Anna, this week's offers"


@settings(max_examples=400, deadline=None)
@given(value=st.text(st.characters(blacklist_categories=("Cs",)), max_size=200)
       | st.text(st.sampled_from("aé =?_,;ж日\t😀\x85"), max_size=120),
       name=st.sampled_from(["Subject", "X", "Thread-Topic-Something-Long"]))
def test_the_direct_header_encoder_writes_what_email_header_writes(value, name):
    from channels.email.mime import _text

    assert _text(name, value) == stdlib_header(name, value)


def test_the_date_header_is_written_in_each_dates_own_zone_even_for_the_same_instant():
    from datetime import timedelta
    from email.utils import format_datetime

    from channels.email.mime import _date_value

    moscow = DATE.astimezone(timezone(timedelta(hours=3)))
    for date in (DATE, moscow, DATE.replace(microsecond=7), moscow, DATE.replace(tzinfo=None)):
        assert _date_value(date) == format_datetime(date.replace(microsecond=0))
