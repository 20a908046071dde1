"""X-Twilio-Signature on every webhook: Twilio's own validator over the URL Twilio called.

Twilio signs the full URL it requested (scheme, host, path, query) plus the sorted POST
parameters. Behind a reverse proxy the hub sees another URL, so the signed one is rebuilt from the
hub's public_base_url, or from X-Forwarded-Proto/Host when, and only when, the request came from a
configured proxy: anyone else could send those headers to make a forged URL match.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any
from urllib.parse import parse_qsl, urlparse

from starlette.requests import Request
from twilio.request_validator import RequestValidator, add_port, compare, remove_port

from hub.channel import SignatureError

Params = dict[str, str | list[str]]
SIGNATURE_HEADER = "x-twilio-signature"


class FormParams(Mapping[str, Any]):
    """POST parameters keeping every value of a repeated key, in the shape RequestValidator reads."""

    def __init__(self, pairs: Iterable[tuple[str, str]]) -> None:
        self._values: dict[str, list[str]] = {}
        for key, value in pairs:
            self._values.setdefault(key, []).append(value)

    @classmethod
    def of(cls, params: Mapping[str, Any]) -> FormParams:
        """From a mapping whose values are strings or lists of strings (a recorded payload)."""
        if isinstance(params, FormParams):
            return params
        pairs = []
        for key, value in params.items():
            values = value if isinstance(value, list) else [value]
            pairs += [(str(key), "" if v is None else str(v)) for v in values]
        return cls(pairs)

    def getlist(self, key: str) -> list[str]:
        return list(self._values.get(key, []))

    def __getitem__(self, key: str) -> str | list[str]:
        values = self._values[key]
        return values[0] if len(values) == 1 else list(values)

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def as_dict(self) -> Params:
        return {key: self[key] for key in self._values}


def parse_form(body: bytes) -> FormParams:
    """An application/x-www-form-urlencoded body, repeated keys kept."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError("the form body is not UTF-8") from None
    return FormParams(parse_qsl(text, keep_blank_values=True))


def _first(value: str | None) -> str:
    return (value or "").split(",")[0].strip()


def is_trusted(peer: str | None, proxies: Sequence[Any]) -> bool:
    if not peer or not proxies:
        return False
    try:
        address = ipaddress.ip_address(peer)
    except ValueError:
        return False
    return any(address in ipaddress.ip_network(str(net), strict=False) for net in proxies)


def webhook_url(
    *,
    path: str,
    query: str,
    headers: Mapping[str, str],
    peer: str | None,
    public_base_url: str,
    trusted_proxies: Sequence[Any],
) -> str:
    """The URL Twilio signed: the public base URL (or a trusted proxy's forwarded one) plus path and query."""
    base = public_base_url.rstrip("/")
    if is_trusted(peer, trusted_proxies):
        host = _first(headers.get("x-forwarded-host"))
        if host:
            proto = _first(headers.get("x-forwarded-proto")) or base.split("://", 1)[0]
            prefix = _first(headers.get("x-forwarded-prefix")).rstrip("/")
            base = f"{proto}://{host}{prefix}"
    url = base + path
    return f"{url}?{query}" if query else url


def request_url(request: Request, *, public_base_url: str, trusted_proxies: Sequence[Any]) -> str:
    """webhook_url for a Starlette request (the path relative to the app, the raw query string)."""
    path = request.scope.get("path", "")
    root = request.scope.get("root_path", "")
    if root and path.startswith(root):
        path = path[len(root):]
    return webhook_url(
        path=path,
        query=request.scope.get("query_string", b"").decode("latin-1"),
        headers=request.headers,
        peer=request.client.host if request.client else None,
        public_base_url=public_base_url,
        trusted_proxies=trusted_proxies,
    )


def check_signature(*, token: str, url: str, params: Mapping[str, Any], signature: str | None) -> None:
    """Raise SignatureError unless `signature` is Twilio's for this URL and these parameters."""
    if not token:
        raise SignatureError("no Twilio auth token is configured, so no webhook can be verified")
    if not signature:
        raise SignatureError("the request carries no X-Twilio-Signature")
    # What RequestValidator.validate accepts (the URL with or without its port: Twilio is not
    # consistent), but the URL as the hub knows it first and the other form only if that fails:
    # validate computes both HMACs on every request, on the event loop (issue 24).
    validator, form, parsed = RequestValidator(token), FormParams.of(params), urlparse(url)
    for candidate in dict.fromkeys((url, remove_port(parsed), add_port(parsed))):
        if compare(validator.compute_signature(candidate, form), signature):
            return
    raise SignatureError("X-Twilio-Signature does not match this URL and these parameters")


def sign(*, token: str, url: str, params: Mapping[str, Any]) -> str:
    """The X-Twilio-Signature Twilio would send (the local server and tests sign with it)."""
    return RequestValidator(token).compute_signature(url, FormParams.of(params))


def header(headers: Mapping[str, str], name: str) -> str | None:
    """A header from Starlette's case-insensitive headers or a plain dict."""
    value = headers.get(name)
    if value is None:
        for key, candidate in headers.items():
            if key.lower() == name:
                return candidate
    return value
