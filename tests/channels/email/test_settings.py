"""The [channels.email] section: validated at start-up, naming what is wrong."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from channels.email import EmailChannel
from hub.html import sanitize_html
from channels.email.settings import EmailSettings
from hub.registry import ChannelLoadError
from hub.runtime import Hub
from tests.conftest import test_registry

# What this checks does not depend on the store: it runs on SQLite only.
pytestmark = pytest.mark.any_store


def test_the_registry_builds_the_adapter_from_the_hub_settings(hub):
    settings = hub.settings.model_copy(update={"channels": {"email": {
        "smtp_host": "smtp.example.com", "from_address": "Support@Example.com", "smtp_security": "tls",
        "imap": [{"host": "imap.example.com", "username": "support", "password": "pw"}],
    }}})
    runtime = Hub(settings, registry=test_registry(), db=hub.db)
    channel = runtime.channel("email")
    assert isinstance(channel, EmailChannel) and channel.configured
    assert channel.settings.from_address == "support@example.com"
    assert channel.settings.effective_smtp_port == 465 and channel.settings.imap[0].effective_port == 993
    assert [job.id for job in channel.jobs()] == ["email.poll_imap"]
    runtime.broker.stop()


def test_an_unconfigured_adapter_says_so_and_polls_nothing(hub):
    channel = hub.channel("email")
    assert not channel.configured and channel.jobs() == []


@pytest.mark.parametrize("section,complaint", [
    ({"from_address": "not an address"}, "from_address"),
    ({"smtp_security": "ssl"}, "smtp_security"),
    ({"smtp_host": "smtp.example.com", "smtp_security": "none", "smtp_username": "u", "smtp_password": "p"},
     "plain text"),
    ({"imap": [{"host": "imap.example.com", "security": "none", "username": "u", "password": "p"}]}, "plain text"),
    ({"max_message_bytes": 10_000_000, "max_raw_bytes": 5_000_000}, "max_raw_bytes"),
    ({"from_name": "Support\r\nBcc: x@evil.example"}, "line breaks"),
    ({"smtp_colour": "red"}, "smtp_colour"),
    ({"sender_addresses": ["news@shop.example", "not an address"]}, "sender_addresses"),
    ({"sender_addresses": ["@not a domain"]}, "sender_addresses"),
])
def test_bad_settings_stop_start_up_naming_the_setting(hub, section, complaint):
    with pytest.raises(ValidationError, match=complaint):
        EmailSettings.model_validate(section)
    settings = hub.settings.model_copy(update={"channels": {"email": section}})
    with pytest.raises(ChannelLoadError, match="channel 'email'"):
        Hub(settings, registry=test_registry(), db=hub.db)


def test_plain_text_is_allowed_to_a_server_on_this_machine():
    settings = EmailSettings.model_validate({
        "smtp_host": "127.0.0.1", "smtp_security": "none", "smtp_username": "u", "smtp_password": "p",
        "imap": [{"host": "localhost", "security": "none", "username": "u", "password": "p"}],
    })
    assert settings.effective_smtp_port == 25 and settings.imap[0].effective_port == 143


def test_an_agents_outgoing_html_keeps_its_images_but_not_its_scripts():
    html = '<p onclick="x()">Hi</p><img src="https://cdn.example.com/logo.png"><script>x()</script>'
    assert sanitize_html(html, block_remote_images=False) == '<p>Hi</p><img src="https://cdn.example.com/logo.png">'


def test_sender_addresses_name_addresses_or_whole_domains(monkeypatch):
    settings = EmailSettings.model_validate({"from_address": "Support@Hub.example",
                                             "sender_addresses": ["News@Shop.example", " @Promo.Example "]})
    assert settings.sender_addresses == ["news@shop.example", "@promo.example"]
    allowed = ["support@hub.example", "news@shop.example", "deals@promo.example", "a.b@promo.example"]
    refused = ["sales@hub.example", "ceo@shop.example", "x@sub.promo.example", "x@evil-promo.example",
               "x@promo.example.org", "news@shop.example.evil"]
    assert [a for a in allowed + refused if settings.allows_sender(a)] == allowed
    # From the environment as one comma-separated value.
    from hub.settings import load_settings

    monkeypatch.setenv("HUB_CHANNELS__EMAIL__SENDER_ADDRESSES", "news@shop.example,@promo.example")
    section = load_settings().channels["email"]
    assert EmailSettings.model_validate(section).sender_addresses == ["news@shop.example", "@promo.example"]
