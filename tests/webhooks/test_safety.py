"""SSRF: every spelling of a private, loopback, link-local or metadata address is refused, when an
endpoint is saved and again before each send (after DNS resolution)."""

from __future__ import annotations

import pytest

from hub.auth import SYSTEM
from webhooks import safety, service
from webhooks.models import WebhookEndpoint

pytestmark = pytest.mark.any_store

SPELLINGS = [
    "https://127.0.0.1/", "https://127.1/", "https://0x7f000001/", "https://2130706433/", "https://0177.0.0.1/",
    "https://0x7f.0.0.1/", "https://[::ffff:127.0.0.1]/", "https://[::ffff:7f00:1]/", "https://[::1]/",
    "https://169.254.169.254/latest/meta-data/", "https://[fe80::1]/", "https://[fd00:ec2::254]/",
    "https://10.0.0.1/", "https://172.16.5.4/", "https://192.168.1.1/", "https://100.100.100.200/",
    "https://0.0.0.0/", "https://0/", "https://[::]/", "https://[64:ff9b::a9fe:a9fe]/", "https://[2002:a9fe:a9fe::]/",
    "https://224.0.0.1/", "https://localhost/", "https://metadata.google.internal/",
    "https://127.0.0.1.:8443/hook", "https://2130706433:443/",
]


@pytest.mark.parametrize("url", SPELLINGS)
def test_every_spelling_is_refused(url):
    with pytest.raises(safety.UnsafeUrl):
        safety.check_url(url, safety.Policy())


@pytest.mark.parametrize("url", ["http://8.8.8.8/", "ftp://8.8.8.8/", "https://user:pw@8.8.8.8/", "https://8.8.8.8/#x",
                                 "https:///path", "not a url", "", "https://exa mple.com/"])
def test_malformed_or_plain_http_urls_are_refused(url):
    with pytest.raises(safety.UnsafeUrl):
        safety.check_url(url, safety.Policy())


def test_public_addresses_pass_and_keep_the_name_for_tls():
    target = safety.check_url("https://8.8.8.8:8443/in?x=1", safety.Policy())
    assert (target.address, target.port, target.path, target.host_header()) == ("8.8.8.8", 8443, "/in?x=1", "8.8.8.8:8443")


def test_a_name_resolving_to_a_private_address_is_refused_after_resolution():
    # "localhost" resolves (through /etc/hosts) to a loopback address; the check is on the address.
    with pytest.raises(safety.UnsafeUrl, match="internal|loopback"):
        safety.check_url("https://localhost:9/", safety.Policy())
    assert safety.resolve("localhost", 80)[0].is_loopback
    with pytest.raises(safety.UnsafeUrl, match="loopback"):
        safety.check_addresses("shop.example", safety.resolve("localhost", 80), safety.Policy())


def test_the_allow_list_admits_named_hosts_and_networks_only():
    policy = safety.Policy(allow_http=True, allowed_hosts=("127.0.0.1", "10.20.0.0/16", "erp.internal"))
    assert safety.check_url("http://127.0.0.1:9/", policy).address == "127.0.0.1"
    assert safety.check_url("https://10.20.3.4/", policy).address == "10.20.3.4"
    safety.check_addresses("erp.internal", [safety.parse_ip("192.168.0.5")], policy)
    with pytest.raises(safety.UnsafeUrl):
        safety.check_url("https://10.21.0.1/", policy)
    with pytest.raises(safety.UnsafeUrl):
        safety.check_url("https://169.254.169.254/", policy)
    with pytest.raises(safety.UnsafeUrl):  # 127.1 is not the allow-listed spelling's host
        safety.check_url("http://127.1:9/", safety.Policy(allow_http=True, allowed_hosts=("localhost",)))


def test_saving_an_unsafe_endpoint_writes_nothing(hub):
    for url in SPELLINGS[:6]:
        with hub.session() as session, session.begin():
            with pytest.raises(safety.UnsafeUrl):
                service.create_endpoint(session, hub=hub, actor=SYSTEM, url=url, event_types=["*"])
    with hub.session(read_only=True) as session:
        assert session.query(WebhookEndpoint).count() == 0


def test_the_check_before_sending_refuses_a_name_that_now_resolves_inside():
    import asyncio

    with pytest.raises(safety.UnsafeUrl):
        asyncio.run(safety.check_url_async("https://localhost/", safety.Policy()))
    with pytest.raises(safety.UnsafeUrl):
        asyncio.run(safety.check_url_async("https://0x7f000001/", safety.Policy()))
