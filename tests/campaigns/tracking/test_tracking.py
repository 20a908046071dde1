"""Open pixel and click redirects through the real routes: signed per delivery, a redirect only to the
URL signed for that message, one open per delivery, engagement on the contact's timeline."""

from __future__ import annotations

import base64
import json
import re

import pytest
from sqlalchemy import select

from campaigns.tracking import instrument_html
from campaigns.tracking.links import click_url, open_pixel_url
from hub import outbox
from hub.models import Purpose, TimelineEvent
from hub.signing import sign
from tests.campaigns.unsubscribe.conftest import BASE
from tests.campaigns.unsubscribe.test_unsubscribe import make_contact, path_of

SHOP = "https://shop.example.com/sale?utm=mail&x=1"


def queue(hub, key: str = "run-9:contact-1", *, campaign: bool = True) -> tuple[int, int]:  # type: ignore[no-untyped-def]
    contact = make_contact(hub)
    with hub.session() as s, s.begin():
        delivery = outbox.enqueue(
            s, channel="email", address="anna@example.com", content={"subject": "Sale", "html": "<p>Sale</p>"},
            idempotency_key=key, contact_id=contact, purpose=Purpose.MARKETING,
            event_kind="campaign.message" if campaign else "message",
            event_data={"campaign_id": 3, "campaign_run_id": 9} if campaign else None,
        )
        return contact, delivery.id


def engagement(hub, contact_id: int, kind: str) -> list[TimelineEvent]:  # type: ignore[no-untyped-def]
    with hub.session(read_only=True) as s:
        return list(s.scalars(select(TimelineEvent).where(TimelineEvent.contact_id == contact_id,
                                                          TimelineEvent.kind == kind).order_by(TimelineEvent.id)))


# --- rewriting -------------------------------------------------------------------------------

def test_instrument_html_wraps_web_links_and_adds_one_pixel_before_the_body_ends(hub):
    hub.settings.public_base_url = BASE
    html = (
        '<!doctype html><html><body><p>Hi &amp; welcome &copy;<!-- keep --></p>'
        '<A HREF="https://shop.example.com/sale?utm=mail&amp;x=1" class="btn">Shop</A> '
        '<a href="mailto:help@example.com">mail</a> <a href="#top">top</a> <a href="tel:+79161234567">call</a> '
        f'<a href="{BASE}/u/sometoken">unsubscribe</a> <a href="https://x.example.com/" data-no-track>raw</a>'
        '<!--[if mso]><a href="http://old.example.com/">old</a><![endif]--></body></html>'
    )
    out = instrument_html(hub.settings, html, delivery_key="k1")
    hrefs = re.findall(r'href="([^"]+)"', out, flags=re.I)
    assert hrefs[0] == click_url(hub.settings, delivery_key="k1", url=SHOP)  # the &amp; was read as &
    assert hrefs[1:] == ["mailto:help@example.com", "#top", "tel:+79161234567", f"{BASE}/u/sometoken",
                         "https://x.example.com/", "http://old.example.com/"]
    assert 'class="btn">Shop</A>' in out and "Hi &amp; welcome &copy;<!-- keep -->" in out
    assert '<a href="http://old.example.com/">' in out  # inside a comment: not a link, left alone
    pixel = open_pixel_url(hub.settings, delivery_key="k1")
    assert out.count(pixel) == 1 and out.endswith(f'padding:0"></body></html>')


def test_a_fragment_gets_its_pixel_at_the_end_and_single_quoted_links_are_wrapped(hub):
    out = instrument_html(hub.settings, "<p><a href='https://a.example.com/x' >go</a></p>", delivery_key="k")
    assert out.startswith('<p><a href="' + hub.settings.public_base_url + "/t/c/")
    assert out.endswith('padding:0">') and ">go</a></p>" in out


# --- clicks ------------------------------------------------------------------------------------

def test_a_click_redirects_to_the_signed_url_and_is_recorded_once_per_url(hub, public):
    contact, delivery = queue(hub)
    url = click_url(hub.settings, delivery_key="run-9:contact-1", url=SHOP)
    for _ in range(2):
        response = public.get(path_of(url))
        assert response.status_code == 302 and response.headers["location"] == SHOP
        assert response.headers["referrer-policy"] == "no-referrer"
    [click] = engagement(hub, contact, "campaign.clicked")
    assert click.data == {"campaign_id": 3, "campaign_run_id": 9, "delivery_id": delivery, "url": SHOP}
    assert click.thread_key == "campaign:3" and click.external_id.startswith(f"click:{delivery}:")
    # A click shows the mail was opened, even with images blocked.
    [opened] = engagement(hub, contact, "campaign.opened")
    assert opened.data["implied_by_click"] is True

    other = click_url(hub.settings, delivery_key="run-9:contact-1", url="https://shop.example.com/other")
    assert public.get(path_of(other)).headers["location"] == "https://shop.example.com/other"
    assert len(engagement(hub, contact, "campaign.clicked")) == 2


def test_a_tampered_url_or_forged_token_redirects_nowhere_and_records_nothing(hub, public):
    contact, _ = queue(hub)
    good = path_of(click_url(hub.settings, delivery_key="run-9:contact-1", url=SHOP))
    payload, signature = good.removeprefix("/t/c/").split(".")
    evil = base64.urlsafe_b64encode(json.dumps({"k": "run-9:contact-1", "u": "https://evil.example.net/"},
                                               separators=(",", ":")).encode()).decode().rstrip("=")
    unsafe = sign(hub.settings, "track.click", {"k": "run-9:contact-1", "u": "javascript:alert(1)"})
    other_purpose = sign(hub.settings, "unsubscribe", {"k": "run-9:contact-1", "u": SHOP})
    for path in (f"/t/c/{evil}.{signature}", good[:-2] + "xx", f"/t/c/{payload}", f"/t/c/{unsafe}",
                 f"/t/c/{other_purpose}", "/t/c/x"):
        response = public.get(path)
        assert response.status_code == 404, path
        assert "location" not in response.headers
    assert engagement(hub, contact, "campaign.clicked") == []


def test_a_click_for_a_delivery_that_is_gone_still_takes_the_customer_there(hub, public):
    url = click_url(hub.settings, delivery_key="no-such-delivery", url="https://ex.example.com/é?q=ü")
    response = public.get(path_of(url))
    assert response.status_code == 302
    assert response.headers["location"] == "https://ex.example.com/%C3%A9?q=%C3%BC"


# --- opens -------------------------------------------------------------------------------------

def test_the_pixel_records_one_open_per_delivery(hub, public):
    contact, delivery = queue(hub)
    pixel = path_of(open_pixel_url(hub.settings, delivery_key="run-9:contact-1"))
    for _ in range(3):
        response = public.get(pixel)
        assert response.status_code == 200 and response.headers["content-type"] == "image/gif"
        assert response.content.startswith(b"GIF89a") and "no-store" in response.headers["cache-control"]
    [opened] = engagement(hub, contact, "campaign.opened")
    assert opened.external_id == f"open:{delivery}" and opened.channel == "email"
    assert opened.data == {"campaign_id": 3, "campaign_run_id": 9, "delivery_id": delivery}
    assert opened.thread_key == "campaign:3"


def test_a_delivery_without_a_campaign_has_no_campaign_thread(hub, public):
    contact, delivery = queue(hub, "plain", campaign=False)
    public.get(path_of(open_pixel_url(hub.settings, delivery_key="plain")))
    [opened] = engagement(hub, contact, "campaign.opened")
    assert opened.thread_key is None and opened.data["campaign_id"] is None


def test_a_forged_pixel_is_refused_and_an_unknown_delivery_still_gets_its_image(hub, public):
    contact, _ = queue(hub)
    good = path_of(open_pixel_url(hub.settings, delivery_key="run-9:contact-1"))
    assert public.get(good.replace(".gif", "x.gif")).status_code == 404
    assert engagement(hub, contact, "campaign.opened") == []
    unknown = public.get(path_of(open_pixel_url(hub.settings, delivery_key="gone")))
    assert unknown.status_code == 200 and unknown.content.startswith(b"GIF")


def test_a_delivery_without_a_contact_still_serves_and_redirects_but_writes_nothing(hub, public):
    with hub.session() as s, s.begin():
        outbox.enqueue(s, channel="email", address="list@example.com", content={"subject": "s", "text": "t"},
                       idempotency_key="anonymous", purpose=Purpose.MARKETING)
    assert public.get(path_of(open_pixel_url(hub.settings, delivery_key="anonymous"))).status_code == 200
    assert public.get(path_of(click_url(hub.settings, delivery_key="anonymous", url=SHOP))).status_code == 302
    with hub.session(read_only=True) as s:
        assert s.scalars(select(TimelineEvent).where(TimelineEvent.kind.like("campaign.%"))).all() == []


@pytest.mark.parametrize("html", [
    "<p>Hi <b>Anna</b> &amp; co,</p><p><a href='https://shop.example.com/x'>See the sale</a><br/>bye</p>",
    "<html><head><title>T</title><style>p{}</style></head><body><ul><li>one</li><li>two</li></ul>"
    "<blockquote>quoted<br>lines</blockquote><script>var a='<a href=\"https://x.example.com\">';</script></body></html>",
    "plain text, no markup at all",
    "<table><tr><td>Цена:</td><td>1&nbsp;000 ₽</td></tr></table><a href=https://a.example.com/>go</a>",
])
def test_the_text_read_while_tracking_links_is_the_text_html_to_text_gives(hub, html):
    from campaigns.tracking.links import instrument_html_and_text
    from hub.html import html_to_text

    tracked, text = instrument_html_and_text(hub.settings, html, delivery_key="k1")
    assert tracked == instrument_html(hub.settings, html, delivery_key="k1")
    # The same text, except that a tracked link's address is its click redirect, as in the HTML.
    original = html_to_text(html, links=True)
    for url in re.findall(r"https://[a-z.]+example\.com/?x?", original):
        original = original.replace(url, click_url(hub.settings, delivery_key="k1", url=url))
    assert text == original


def test_the_text_part_keeps_every_links_address_and_tracks_what_the_html_tracks(hub):
    from campaigns.tracking.links import instrument_html_and_text

    unsubscribe = f"{hub.settings.public_base_url}/u/tok"
    html = (f"<p>Hi! <a href='{SHOP}'>See the sale</a>, <a href='mailto:help@shop.example.com'>write to us</a>"
            f" or <a href='https://blog.example.com/' data-no-track>https://blog.example.com/</a>.</p>"
            f"<p><a href='{unsubscribe}'>Unsubscribe</a> <a href='#top'>top</a> <a href='{SHOP}'><img src=x></a></p>")
    _, text = instrument_html_and_text(hub.settings, html, delivery_key="k2")
    redirect = click_url(hub.settings, delivery_key="k2", url=SHOP)
    assert text == (f"Hi! See the sale ({redirect}), write to us (help@shop.example.com) or https://blog.example.com/.\n\n"
                    f"Unsubscribe ({unsubscribe}) top {redirect}")
