"""Unsubscribe links through the real routes: the one-click POST (RFC 8058), the GET that changes
nothing, replays, forged tokens, cancellation of queued marketing, the preferences page."""

from __future__ import annotations

from sqlalchemy import func, select

from campaigns.unsubscribe import preferences_url, unsubscribe_url
from channels.email.mime import EmailContent
from hub import outbox
from hub.channel import MarketingContext
from hub.auth import SYSTEM
from hub.contacts import consent_status, create_contact, IdentityIn
from hub.models import ConsentRecord, Contact, Delivery, Purpose, TimelineEvent
from hub.worker import Worker
from tests.campaigns.unsubscribe.conftest import BASE

ONE_CLICK = {"List-Unsubscribe": "One-Click"}


def make_contact(hub, *, name: str = "Анна Петрова", email: str = "anna@example.com",  # type: ignore[no-untyped-def]
                 phone: str = "+79161234567", locale: str | None = "ru") -> int:
    with hub.session() as s, s.begin():
        contact = create_contact(s, actor=SYSTEM, display_name=name, locale=locale, region="RU",
                                 identities=[IdentityIn(kind="email", value=email), IdentityIn(kind="phone", value=phone)])
        return contact.id


def queue(hub, key: str, contact_id: int, *, channel: str = "fake", purpose: str = Purpose.MARKETING) -> int:  # type: ignore[no-untyped-def]
    address = "anna@example.com" if channel == "email" else "+79161234567"
    content = {"subject": "Hi", "text": "Sale"} if channel == "email" else {"text": "Sale"}
    with hub.session() as s, s.begin():
        return outbox.enqueue(s, channel=channel, address=address, content=content, idempotency_key=key,
                              contact_id=contact_id, purpose=purpose).id


def path_of(url: str) -> str:
    assert url.startswith(BASE + "/")
    return url.removeprefix(BASE)


def status(hub, delivery_id: int) -> str:  # type: ignore[no-untyped-def]
    with hub.session(read_only=True) as s:
        return s.get(Delivery, delivery_id).status


def consents(hub, contact_id: int) -> list[tuple[str, str, str]]:  # type: ignore[no-untyped-def]
    with hub.session(read_only=True) as s:
        rows = s.execute(select(ConsentRecord.channel, ConsentRecord.status, ConsentRecord.source)
                         .where(ConsentRecord.contact_id == contact_id).order_by(ConsentRecord.id)).all()
        return [tuple(r) for r in rows]


def events(hub, contact_id: int, kind: str) -> list[TimelineEvent]:  # type: ignore[no-untyped-def]
    with hub.session(read_only=True) as s:
        return list(s.scalars(select(TimelineEvent).where(TimelineEvent.contact_id == contact_id,
                                                          TimelineEvent.kind == kind)))


def test_one_click_post_unsubscribes_at_once_and_cancels_queued_marketing_on_that_channel(hub, public):
    contact = make_contact(hub)
    marketing = queue(hub, "m1", contact)
    receipt = queue(hub, "t1", contact, purpose=Purpose.TRANSACTIONAL)
    url = unsubscribe_url(hub.settings, contact_id=contact, channel="fake", campaign_id=3)

    response = public.post(path_of(url), data=ONE_CLICK)  # no cookies, no login, no CSRF token
    assert response.status_code == 200
    assert consents(hub, contact) == [("fake", "withdrawn", "list-unsubscribe")]
    assert status(hub, marketing) == "cancelled"
    assert status(hub, receipt) == "queued"  # order confirmations still go
    [event] = events(hub, contact, "campaign.unsubscribed")
    assert event.data["campaign_id"] == 3 and event.thread_key == "campaign:3"
    assert event.direction == "in"
    # And marketing queued later is stopped at send time.
    later = queue(hub, "m2", contact)
    Worker(hub).tick()
    assert status(hub, later) == "cancelled"
    assert status(hub, receipt) == "sent"


def test_one_click_also_works_as_multipart_and_leaves_other_channels_alone(hub, public):
    contact = make_contact(hub)
    email = queue(hub, "e1", contact, channel="email")
    fake = queue(hub, "f1", contact)
    url = unsubscribe_url(hub.settings, contact_id=contact, channel="email")
    response = public.post(path_of(url), files={"List-Unsubscribe": (None, "One-Click")})
    assert response.status_code == 200
    assert consents(hub, contact) == [("email", "withdrawn", "list-unsubscribe")]
    assert status(hub, email) == "cancelled" and status(hub, fake) == "queued"
    assert events(hub, contact, "campaign.unsubscribed")[0].data["campaign_id"] is None


def test_get_only_shows_a_confirmation_page_and_changes_nothing(hub, public):
    contact = make_contact(hub)
    marketing = queue(hub, "m1", contact)
    url = unsubscribe_url(hub.settings, contact_id=contact, channel="fake", campaign_id=3)
    for _ in range(3):  # a link scanner following the URL, repeatedly
        page = public.get(path_of(url))
        assert page.status_code == 200
        assert 'method="post"' in page.text and "Отписаться" in page.text  # the contact's language
        assert page.headers["cache-control"] == "no-store"
        assert page.headers["referrer-policy"] == "no-referrer"
    assert consents(hub, contact) == []
    assert status(hub, marketing) == "queued"
    assert events(hub, contact, "campaign.unsubscribed") == []
    english = public.get(path_of(url) + "?lang=en")
    assert "Unsubscribe" in english.text and "Отписаться" not in english.text


def test_the_confirmation_button_unsubscribes_with_its_own_source(hub, public):
    contact = make_contact(hub, locale="en")
    url = unsubscribe_url(hub.settings, contact_id=contact, channel="email", campaign_id=5)
    page = public.get(path_of(url))
    assert "Do you want to stop receiving our mailings by email?" in page.text
    done = public.post(path_of(url), data={})
    assert done.status_code == 200 and "You are unsubscribed" in done.text
    assert consents(hub, contact) == [("email", "withdrawn", "unsubscribe-page")]
    again = public.get(path_of(url))
    assert "already unsubscribed" in again.text and 'method="post"' not in again.text


def test_a_replayed_unsubscribe_records_nothing_more(hub, public):
    contact = make_contact(hub)
    url = unsubscribe_url(hub.settings, contact_id=contact, channel="fake", campaign_id=3)
    for _ in range(3):
        assert public.post(path_of(url), data=ONE_CLICK).status_code == 200
    assert len(consents(hub, contact)) == 1
    assert len(events(hub, contact, "campaign.unsubscribed")) == 1


def test_forged_and_tampered_tokens_get_a_page_that_reveals_nothing_and_change_nothing(hub, public):
    contact = make_contact(hub)
    marketing = queue(hub, "m1", contact)
    good = path_of(unsubscribe_url(hub.settings, contact_id=contact, channel="fake"))
    payload, signature = good.removeprefix("/u/").split(".")
    tampered_signature = good[:-2] + ("AA" if not good.endswith("AA") else "BB")
    other_contact = "/u/" + "eyJjIjoyLCJjaCI6ImZha2UifQ" + "." + signature  # someone else's id, old signature
    wrong_purpose = path_of(preferences_url(hub.settings, contact_id=contact)).replace("/preferences/", "/u/")
    for path in (tampered_signature, other_contact, wrong_purpose, "/u/not-a-token", "/u/" + payload):
        for response in (public.get(path), public.post(path, data=ONE_CLICK)):
            assert response.status_code == 404, path
            assert "Анна" not in response.text and "anna@" not in response.text and "Unsubscribe" not in response.text
    assert consents(hub, contact) == []
    assert status(hub, marketing) == "queued"


def test_a_link_for_an_erased_contact_is_just_invalid(hub, public):
    url = unsubscribe_url(hub.settings, contact_id=999_999, channel="fake")
    assert public.get(path_of(url)).status_code == 404
    assert public.post(path_of(url), data=ONE_CLICK).status_code == 404


# --- preferences -------------------------------------------------------------------------------

def test_preferences_page_switches_marketing_per_channel_and_the_language(hub, public):
    contact = make_contact(hub)
    path = path_of(preferences_url(hub.settings, contact_id=contact))
    page = public.get(path)
    assert page.status_code == 200
    assert 'value="email" checked' in page.text and 'value="fake" checked' in page.text
    assert "Ваши настройки" in page.text

    marketing = queue(hub, "e1", contact, channel="email")
    saved = public.post(path, data={"marketing": ["fake", "sms"], "locale": "en"})
    assert saved.status_code == 200 and "Your preferences are saved." in saved.text  # now in English
    assert 'value="email" checked' not in saved.text and 'value="fake" checked' in saved.text
    assert consents(hub, contact) == [("email", "withdrawn", "preferences-page")]
    assert status(hub, marketing) == "cancelled"
    with hub.session(read_only=True) as s:
        assert s.get(Contact, contact).locale == "en"
    assert len(events(hub, contact, "preferences.updated")) == 1

    public.post(path, data={"marketing": ["fake", "email", "sms"], "locale": "en"})
    with hub.session(read_only=True) as s:
        assert consent_status(s, contact_id=contact, channel="email", purpose=Purpose.MARKETING) == "granted"
    # Saving the same choices again changes nothing and posts nothing.
    public.post(path, data={"marketing": ["fake", "email", "sms"], "locale": "en"})
    assert len(consents(hub, contact)) == 2
    assert len(events(hub, contact, "preferences.updated")) == 2


def test_preferences_ignore_channels_the_contact_cannot_be_reached_on_and_bad_languages(hub, public):
    contact = make_contact(hub)
    path = path_of(preferences_url(hub.settings, contact_id=contact))
    public.post(path, data={"marketing": ["fake", "email", "sms", "carrier-pigeon"], "locale": "xx"})
    assert consents(hub, contact) == []
    with hub.session(read_only=True) as s:
        assert s.get(Contact, contact).locale == "ru"
        assert s.scalar(select(func.count()).select_from(ConsentRecord)) == 0


def test_preferences_with_a_bad_token_reveal_nothing(hub, public):
    contact = make_contact(hub)
    good = path_of(preferences_url(hub.settings, contact_id=contact))
    for path in (good[:-3] + "xyz", good.replace("/preferences/", "/preferences/A"),
                 path_of(unsubscribe_url(hub.settings, contact_id=contact, channel="fake")).replace("/u/", "/preferences/")):
        assert public.get(path).status_code == 404
        response = public.post(path, data={"marketing": [], "locale": "en"})
        assert response.status_code == 404 and "Анна" not in response.text
    assert consents(hub, contact) == []


# --- what campaigns put into their messages (each channel decides, from the link they hand it) --------

def email_unsubscribe_fields(hub, *, contact_id: int, campaign_id: int | None = None) -> dict:  # type: ignore[no-untyped-def]
    """What the email channel adds to a marketing message for this link: the RFC 8058 fields."""
    url = unsubscribe_url(hub.settings, contact_id=contact_id, channel="email", campaign_id=campaign_id)
    content = hub.channel("email").decorate_marketing({"subject": "s", "text": "t"},
                                                      MarketingContext(locale="en", unsubscribe_url=url))
    return {key: content[key] for key in ("list_unsubscribe", "list_unsubscribe_post") if key in content}


def sms_opt_out_text(hub, locale: str | None) -> str:  # type: ignore[no-untyped-def]
    """The wording the SMS channel puts under a marketing text."""
    return hub.channel("sms").decorate_marketing({"text": ""}, MarketingContext(locale=locale or ""))["text"]


def test_email_fields_are_valid_rfc_8058_headers_for_an_https_hub(hub):
    hub.settings.public_base_url = BASE
    fields = email_unsubscribe_fields(hub, contact_id=7, campaign_id=2)
    assert fields["list_unsubscribe_post"] is True and fields["list_unsubscribe"].startswith(BASE + "/u/")
    content = EmailContent.model_validate({"subject": "s", "text": "t", **fields})
    assert content.list_unsubscribe == fields["list_unsubscribe"]


def test_the_fields_become_rfc_8058_headers_in_the_built_message(hub):
    from datetime import datetime, timezone

    from channels.email.mime import build_message
    from channels.email.settings import EmailSettings

    hub.settings.public_base_url = BASE
    fields = email_unsubscribe_fields(hub, contact_id=7, campaign_id=2)
    content = EmailContent.model_validate({"subject": "Sale", "html": "<p>Sale</p>", **fields})
    settings = EmailSettings(from_address="news@hub.example.com")
    raw, _ = build_message(content, settings=settings, to_address="anna@example.com", idempotency_key="k",
                           date=datetime(2026, 1, 15, tzinfo=timezone.utc), read_attachment=lambda ref: b"")
    # The raw header, as a mailbox provider reads it (no RFC 2047 words, which it would not decode).
    assert f"\r\nList-Unsubscribe: <{fields['list_unsubscribe']}>\r\n".encode() in raw
    assert b"\r\nList-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n" in raw


def test_no_list_unsubscribe_without_https(hub):
    hub.settings.public_base_url = "http://127.0.0.1:8000"
    assert email_unsubscribe_fields(hub, contact_id=7) == {}


def test_sms_opt_out_wording_in_both_languages(hub):
    assert sms_opt_out_text(hub, "en") == "Reply STOP to opt out"
    assert "STOP" in sms_opt_out_text(hub, "ru") and sms_opt_out_text(hub, "ru") != sms_opt_out_text(hub, "en")
    assert sms_opt_out_text(hub, None) == sms_opt_out_text(hub, "ru")


def test_a_link_of_a_merged_contact_unsubscribes_the_survivor(hub, public):
    from hub.merge import merge_contacts

    survivor = make_contact(hub)
    merged = make_contact(hub, name="Anna P.", email="anna.p@example.com", phone="+79160000002")
    url = unsubscribe_url(hub.settings, contact_id=merged, channel="fake")  # sent before the merge
    with hub.session() as s, s.begin():
        merge_contacts(s, survivor_id=survivor, merged_id=merged, actor=SYSTEM)
    assert public.post(path_of(url), data=ONE_CLICK).status_code == 200
    assert consents(hub, survivor) == [("fake", "withdrawn", "list-unsubscribe")]
