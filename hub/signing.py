"""Signed, unguessable tokens for every link a customer follows (survey, unsubscribe, booking,
tracking, form embeds): no public endpoint is ever addressed by a sequential id.

A token is itsdangerous' URL-safe signature over a small JSON payload, with a salt per purpose
so a token minted for one kind of link is worthless for another. Tokens are compact (they go into
emails and SMS) and optionally expire. `unsign` raises `BadLink` for a token that is forged,
truncated, minted for another purpose or expired; pages answer it with one plain message that
reveals nothing else.
"""

from __future__ import annotations

import hashlib
import hmac
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import orjson
from itsdangerous import BadData, Serializer, SignatureExpired, URLSafeSerializer, URLSafeTimedSerializer
from itsdangerous.encoding import base64_encode, want_bytes
from itsdangerous.signer import HMACAlgorithm, Signer
from itsdangerous.timed import TimestampSigner

if TYPE_CHECKING:
    from hub.settings import Settings

_SALT_PREFIX = "hub.link."


class BadLink(ValueError):
    """The token is not one this hub signed for this purpose (or it expired)."""

    def __init__(self, message: str, *, expired: bool = False) -> None:
        super().__init__(message)
        self.expired = expired


class _OneShotHMAC(HMACAlgorithm):
    """itsdangerous' HMAC-SHA1 by OpenSSL: the same bytes. Given hashlib's constructor, `hmac.new`
    takes Python's own HMAC path, which cost a campaign message as much as its four signatures' JSON.

    The keyed state is made once per key and copied per signature: `hmac.digest(key, value, "sha1")`
    looks the digest up and keys it on every call, and lets go of the GIL around that, so a
    materialising thread waited to get it back once per link (4 a message) behind the worker's sends."""

    def __init__(self) -> None:
        super().__init__(hashlib.sha1)
        self._keyed: dict[bytes, Any] = {}

    def get_signature(self, key: bytes, value: bytes) -> bytes:
        keyed = self._keyed.get(key)
        if keyed is None:
            if len(self._keyed) > 64:  # keys are per purpose and secret: a handful; never unbounded
                self._keyed.clear()
            keyed = self._keyed[key] = hmac.new(key, digestmod="sha1")
        mac = keyed.copy()
        mac.update(value)
        return mac.digest()


_SIGNER = {"algorithm": _OneShotHMAC()}


class _KeyOnce:
    """Derives each secret key once (itsdangerous hashes salt and key again on every signature and
    check); the same derived bytes, so tokens are unchanged. Mixed into both signers."""

    secret_keys: list[bytes]

    def derive_key(self, secret_key: str | bytes | None = None) -> bytes:
        cache: dict[bytes, bytes] = self.__dict__.setdefault("_derived", {})
        index = self.secret_keys[-1] if secret_key is None else want_bytes(secret_key)  # signing uses the last
        if index not in cache:
            cache[index] = super().derive_key(index)  # type: ignore[misc]
        return cache[index]


class _Signer(_KeyOnce, Signer):
    pass


class _TimestampSigner(_KeyOnce, TimestampSigner):
    pass


class _Compact(URLSafeSerializer):
    """Compresses only payloads long enough to gain from it: zlib on the usual few dozen bytes
    costs as much as the signature and never wins. Tokens read the same either way.

    itsdangerous makes a new signer (and derives its key) for every token; one per salt is kept
    here instead, so a campaign run derives each purpose's key once (four links per message)."""

    default_signer = _Signer

    def make_signer(self, salt: str | bytes | None = None) -> Signer:
        signers = self.__dict__.setdefault("_signers", {})
        salt = self.salt if salt is None else salt
        if salt not in signers:
            signers[salt] = super().make_signer(salt)
        return signers[salt]

    def dump_payload(self, obj: Any) -> bytes:
        json = _flat_json(obj) or Serializer.dump_payload(self, obj)
        return super().dump_payload(obj) if len(json) > _COMPRESS_ABOVE else base64_encode(json)

    def dumps(self, obj: Any, salt: str | bytes | None = None) -> str:
        """itsdangerous' token, byte for byte, without its layers per call (a campaign signs four a
        message): the payload, the configured signer's HMAC of it, joined by its separator."""
        if salt is not None or self.fallback_signers:
            return super().dumps(obj, salt)  # type: ignore[no-any-return]
        payload = self.dump_payload(obj)
        signer = self.make_signer()
        if type(signer) is not _Signer:  # the timed signer adds its timestamp: its own path
            return signer.sign(payload).decode("utf-8")
        return (payload + signer.sep + base64_encode(signer.algorithm.get_signature(signer.derive_key(), payload))
                ).decode("utf-8")


def _flat_json(obj: Any) -> bytes | None:
    """The JSON itsdangerous writes (compact, UTF-8 as it is) for a flat object of strings and small
    integers, by orjson, which writes exactly those the same way; None for anything else."""
    if type(obj) is not dict:
        return None
    for key, value in obj.items():
        if type(key) is not str or not (type(value) is str or (type(value) is int and -2**53 < value < 2**53)):
            return None
    try:
        return orjson.dumps(obj)
    except orjson.JSONEncodeError:  # a lone surrogate, which the standard encoder writes escaped
        return None


class _CompactTimed(_Compact, URLSafeTimedSerializer):
    default_signer = _TimestampSigner


_COMPRESS_ABOVE = 200


def _serializer(settings: Settings, purpose: str, *, timed: bool) -> URLSafeSerializer:
    if not purpose or not purpose.replace(".", "").replace("_", "").isalnum():
        raise ValueError(f"purpose must be a dotted name, not {purpose!r}")
    return _made(settings.signing_key(), purpose, timed)


@lru_cache(maxsize=256)
def _made(key: bytes, purpose: str, timed: bool) -> URLSafeSerializer:
    # Built once per key and purpose: a campaign signs four links per message.
    return (_CompactTimed if timed else _Compact)(key, salt=_SALT_PREFIX + purpose, signer_kwargs=_SIGNER)


def sign(settings: Settings, purpose: str, payload: Any, *, timed: bool = False) -> str:
    """A token carrying `payload` (JSON-able, keep it small); `timed` ones can be given a max age."""
    return _serializer(settings, purpose, timed=timed).dumps(payload)


def unsign(settings: Settings, purpose: str, token: str, *, max_age: int | None = None) -> Any:
    """The payload of a token this hub signed for `purpose`; BadLink otherwise.

    `max_age` (seconds) only applies to tokens made with `timed=True`.
    """
    if not token or len(token) > 2048:
        raise BadLink("empty or oversized token")
    try:
        if max_age is not None:
            return _serializer(settings, purpose, timed=True).loads(token, max_age=max_age)
        return _serializer(settings, purpose, timed=False).loads(token)
    except SignatureExpired as exc:
        raise BadLink("the link has expired", expired=True) from exc
    except (BadData, UnicodeError, ValueError) as exc:
        raise BadLink("the link is not valid") from exc
