"""Signed links (hub.signing) cannot be forged, re-purposed, extended or enumerated."""

from __future__ import annotations

import base64
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hub import signing
from hub.signing import BadLink
from tests.conftest import make_settings

PURPOSES = ["unsubscribe", "unsubscribe.preferences", "surveys.invitation", "tracking.click", "meetings.manage",
            "forms.embed"]


@pytest.fixture(scope="module")
def keys(tmp_path_factory):  # type: ignore[no-untyped-def]
    folder = tmp_path_factory.mktemp("links")
    mine = make_settings(f"sqlite:///{folder}/a.db", folder)
    other = mine.model_copy(update={"secret_key": type(mine.secret_key)("another-secret-key-" + "y" * 32)})
    return mine, other


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


@pytest.mark.parametrize("purpose", PURPOSES)
def test_a_token_opens_only_its_own_purpose_on_its_own_hub(keys, purpose):
    mine, other = keys
    token = signing.sign(mine, purpose, {"c": 42})
    assert signing.unsign(mine, purpose, token) == {"c": 42}
    for wrong in PURPOSES:
        if wrong != purpose:
            with pytest.raises(BadLink):
                signing.unsign(mine, wrong, token)
    with pytest.raises(BadLink):
        signing.unsign(other, purpose, token)  # another installation's secret


@pytest.mark.parametrize("purpose", PURPOSES)
def test_the_next_id_cannot_be_made_from_a_known_token(keys, purpose):
    """Knowing the link for contact 42 gives nothing for 43: the payload is visible, the signature is not."""
    mine, _ = keys
    token = signing.sign(mine, purpose, {"c": 42})
    payload, signature = token.rsplit(".", 1)
    assert json.loads(base64.urlsafe_b64decode(payload + "==")) == {"c": 42}
    for forged_payload in ({"c": 43}, {"c": 42, "admin": True}, [42], 43):
        forged = _b64(json.dumps(forged_payload, separators=(",", ":")).encode()) + "." + signature
        with pytest.raises(BadLink):
            signing.unsign(mine, purpose, forged)
    neighbours = {signing.sign(mine, purpose, {"c": n}).rsplit(".", 1)[1] for n in range(40, 50)}
    assert len(neighbours) == 10  # no shared or sequential signature to guess from


@settings(max_examples=300, derandomize=True, database=None, deadline=None,
          suppress_health_check=list(HealthCheck))
@given(position=st.integers(min_value=0, max_value=10_000), replacement=st.characters(codec="ascii"))
def test_any_single_character_change_is_refused(keys, position, replacement):
    mine, _ = keys
    token = signing.sign(mine, "unsubscribe", {"c": 42, "ch": "email"})
    at = position % len(token)
    if token[at] == replacement:
        return
    tampered = token[:at] + replacement + token[at + 1:]
    try:
        value = signing.unsign(mine, "unsubscribe", tampered)
    except BadLink:
        return
    # base64 padding bits can make two spellings decode to the same bytes: then it is the same token.
    assert value == {"c": 42, "ch": "email"}


@settings(max_examples=200, derandomize=True, database=None, deadline=None, suppress_health_check=list(HealthCheck))
@given(garbage=st.text(max_size=3000))
def test_garbage_is_refused_with_bad_link_only(keys, garbage):
    mine, _ = keys
    with pytest.raises(BadLink):
        signing.unsign(mine, "unsubscribe", garbage)


def test_expired_truncated_and_oversized_tokens_are_refused(keys):
    mine, _ = keys
    timed = signing.sign(mine, "surveys.invitation", [1, 2], timed=True)
    assert signing.unsign(mine, "surveys.invitation", timed, max_age=3600) == [1, 2]
    with pytest.raises(BadLink) as expired:
        signing.unsign(mine, "surveys.invitation", timed, max_age=-1)
    assert expired.value.expired
    untimed = signing.sign(mine, "surveys.invitation", [1, 2])
    with pytest.raises(BadLink):  # a never-expiring token cannot stand in where a timed one is required
        signing.unsign(mine, "surveys.invitation", untimed, max_age=3600)
    for cut in range(1, len(timed)):
        with pytest.raises(BadLink):
            signing.unsign(mine, "surveys.invitation", timed[:cut], max_age=3600)
    with pytest.raises(BadLink):
        signing.unsign(mine, "surveys.invitation", "a" * 5000)
    with pytest.raises(ValueError):
        signing.sign(mine, "bad purpose!", 1)


def test_tokens_minted_before_payloads_stopped_being_compressed_still_open(keys):
    """Short payloads are no longer zlib-compressed (it never shortened them); links already in
    customers' mailboxes, compressed or not, timed or not, must keep working."""
    from itsdangerous import URLSafeSerializer, URLSafeTimedSerializer

    mine, _other = keys
    key = mine.signing_key()
    repetitive = {"u": "https://shop.example.com/" + "sale/" * 60}
    for payload in ({"c": 42, "ch": "email"}, repetitive):
        old = URLSafeSerializer(key, salt="hub.link.unsubscribe").dumps(payload)
        assert signing.unsign(mine, "unsubscribe", old) == payload
        old_timed = URLSafeTimedSerializer(key, salt="hub.link.surveys.invitation").dumps(payload)
        assert signing.unsign(mine, "surveys.invitation", old_timed, max_age=60) == payload
    assert signing.sign(mine, "unsubscribe", repetitive).startswith(".")  # long ones still shrink
    assert not signing.sign(mine, "unsubscribe", {"c": 42}).startswith(".")


def test_tokens_are_itsdangerous_tokens_byte_for_byte(keys):
    """The one-shot HMAC is a faster path to the same signature: tokens equal plain itsdangerous'
    (timed ones too), so links minted before and after open alike, both ways."""
    from itsdangerous import URLSafeSerializer, URLSafeTimedSerializer

    mine, _other = keys
    key = mine.signing_key()
    for payload in ({"c": 42, "ch": "email"}, {"k": "run:1:0:7", "u": "https://shop.example.com/sale?c=7"}, {},
                    {"k": "ключ", "n": -7, "u": "https://магазин.example/?q=\u2028"}, {"n": 2**53 - 1}):
        assert signing.sign(mine, "tracking.click", payload) == \
            URLSafeSerializer(key, salt="hub.link.tracking.click").dumps(payload)
        timed = signing.sign(mine, "surveys.invitation", payload, timed=True)
        assert URLSafeTimedSerializer(key, salt="hub.link.surveys.invitation").loads(timed, max_age=60) == payload


def test_a_purpose_derives_its_key_once_however_many_tokens_it_signs_and_opens(keys, monkeypatch):
    """itsdangerous derives the signing key (a hash of salt and secret) for every token; a campaign
    signs four per message, so each purpose's signer keeps its derived key. The bytes are the same."""
    from itsdangerous.signer import Signer

    derived: list[bytes] = []
    original = Signer.derive_key

    def counting(self, secret_key=None):  # type: ignore[no-untyped-def]
        derived.append(self.salt)
        return original(self, secret_key)

    monkeypatch.setattr(Signer, "derive_key", counting)
    mine, _other = keys
    tokens = [signing.sign(mine, "derive.once", {"k": f"run:1:0:{i}"}) for i in range(20)]
    timed = [signing.sign(mine, "derive.once", {"k": f"run:1:0:{i}"}, timed=True) for i in range(20)]
    assert [signing.unsign(mine, "derive.once", t) for t in tokens] == [{"k": f"run:1:0:{i}"} for i in range(20)]
    assert signing.unsign(mine, "derive.once", timed[-1], max_age=60) == {"k": "run:1:0:19"}
    assert len(derived) <= 2  # once for the plain signer, once for the timed one


_FLAT = st.dictionaries(st.text(max_size=8), st.one_of(st.text(max_size=300), st.integers()), max_size=4)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(payload=st.one_of(_FLAT, st.lists(st.integers(), max_size=3), st.dictionaries(st.text(max_size=3), st.floats(allow_nan=False), max_size=2)))
def test_the_direct_signing_path_writes_itsdangerous_tokens_byte_for_byte(keys, payload):
    """sign() writes flat payloads with orjson and signs without itsdangerous' layers: the token is
    still exactly what itsdangerous writes under the hub's compression rule (zlib only past 200
    bytes), for any strings (surrogates, line separators, emoji) and integers of any size."""
    from itsdangerous import URLSafeSerializer
    from itsdangerous.encoding import base64_encode
    from itsdangerous.serializer import Serializer

    class Reference(URLSafeSerializer):
        def dump_payload(self, obj):  # type: ignore[no-untyped-def]
            raw = Serializer.dump_payload(self, obj)
            return super().dump_payload(obj) if len(raw) > 200 else base64_encode(raw)

    mine, _other = keys
    token = signing.sign(mine, "tracking.click", payload)
    assert token == Reference(mine.signing_key(), salt="hub.link.tracking.click").dumps(payload)
    assert signing.unsign(mine, "tracking.click", token) == json.loads(json.dumps(payload))
