"""X-Twilio-Signature: Twilio's validator over the URL Twilio called, every repeated value included."""

from __future__ import annotations

from urllib.parse import urlparse

import pytest
from twilio.request_validator import RequestValidator

from hub.channel import SignatureError
from channels.twilio_common.signature import (
    FormParams,
    check_signature,
    parse_form,
    sign,
    webhook_url,
)

TOKEN = "12345"
URL = "https://hub.example.com/channels/phone/status?ref=dial:abc"


def test_repeated_keys_are_all_signed() -> None:
    params = parse_form(b"CallSid=CA1&StatusCallbackEvent=initiated&StatusCallbackEvent=completed")
    assert params.getlist("StatusCallbackEvent") == ["initiated", "completed"]
    signature = sign(token=TOKEN, url=URL, params=params)
    # The SDK's own validator, given a multi-dict, agrees.
    assert RequestValidator(TOKEN).validate(URL, params, signature)
    check_signature(token=TOKEN, url=URL, params=params.as_dict(), signature=signature)
    dropped = FormParams([("CallSid", "CA1"), ("StatusCallbackEvent", "initiated")])
    with pytest.raises(SignatureError, match="does not match"):
        check_signature(token=TOKEN, url=URL, params=dropped, signature=signature)


def test_the_query_string_and_the_host_are_part_of_the_signature() -> None:
    params = {"CallSid": "CA1"}
    signature = sign(token=TOKEN, url=URL, params=params)
    for other in (URL.replace("abc", "abd"), URL.replace("hub.example.com", "evil.example.com"),
                  URL.replace("https", "http")):
        with pytest.raises(SignatureError):
            check_signature(token=TOKEN, url=other, params=params, signature=signature)
    with pytest.raises(SignatureError, match="carries no"):
        check_signature(token=TOKEN, url=URL, params=params, signature=None)
    with pytest.raises(SignatureError, match="no Twilio auth token"):
        check_signature(token="", url=URL, params=params, signature=signature)


def test_the_signed_url_uses_forwarded_headers_only_from_trusted_proxies() -> None:
    forwarded = {"x-forwarded-proto": "https", "x-forwarded-host": "hub.example.com, internal:8000",
                 "x-forwarded-prefix": "/crm"}
    common = dict(path="/channels/sms/inbound", query="", headers=forwarded, public_base_url="http://10.0.0.5:8000")
    assert webhook_url(peer="10.1.2.3", trusted_proxies=["10.1.0.0/16"], **common) == \
        "https://hub.example.com/crm/channels/sms/inbound"
    assert webhook_url(peer="203.0.113.9", trusted_proxies=["10.1.0.0/16"], **common) == \
        "http://10.0.0.5:8000/channels/sms/inbound"
    assert webhook_url(peer="10.1.2.3", trusted_proxies=[], **common) == "http://10.0.0.5:8000/channels/sms/inbound"
    assert webhook_url(peer=None, trusted_proxies=["10.1.0.0/16"], **{**common, "query": "step=2"}) == \
        "http://10.0.0.5:8000/channels/sms/inbound?step=2"


@pytest.mark.parametrize("url", [URL, "http://127.0.0.1:8000/channels/sms/inbound", "https://hub.example.com:443/x"])
def test_a_genuine_request_costs_one_hmac_and_either_form_of_the_url_still_verifies(url, monkeypatch) -> None:
    """Twilio signs the URL with or without its port; the one the hub knows is tried first, so a
    genuine request is one HMAC on the event loop, not the SDK validator's two (issue 24)."""
    params = {"MessageSid": "SM1", "Body": "Привет"}
    parsed = urlparse(url)
    other = (url.replace(f":{parsed.port}", "", 1) if parsed.port
             else url.replace(parsed.netloc, f"{parsed.netloc}:{443 if parsed.scheme == 'https' else 80}", 1))
    computed = []
    compute = RequestValidator.compute_signature
    monkeypatch.setattr(RequestValidator, "compute_signature",
                        lambda self, *args, **kwargs: computed.append(args[0]) or compute(self, *args, **kwargs))
    check_signature(token=TOKEN, url=url, params=params, signature=sign(token=TOKEN, url=url, params=params))
    assert computed == [url, url]  # signing it, then checking it once
    check_signature(token=TOKEN, url=url, params=params, signature=sign(token=TOKEN, url=other, params=params))
    with pytest.raises(SignatureError, match="does not match"):
        check_signature(token=TOKEN, url=url, params=params,
                        signature=sign(token=TOKEN, url=url.replace(parsed.path, "/elsewhere"), params=params))
