"""Which endpoint URLs the hub may call: HTTPS, and never a private, loopback, link-local or
metadata address, in any spelling, after DNS resolution (SSRF).

A host is checked twice: when an admin saves the URL (a clear refusal then), and before every
send, on the addresses DNS gives at that moment; the connection then goes to the checked address,
so a DNS answer that changes in between (rebinding) cannot steer it elsewhere. No redirect is
followed. Odd IPv4 spellings (`127.1`, `0x7f000001`, `2130706433`, `0177.0.0.1`) are read the way
the C resolver reads them (inet_aton), and IPv6 forms that carry an IPv4 address (`::ffff:127.0.0.1`,
6to4, Teredo, NAT64) are judged by the address they carry.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterable, Sequence
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from hub.translatable import N_, TranslatableError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_METADATA_NAMES = frozenset({"metadata", "metadata.google.internal", "metadata.goog", "instance-data",
                             "instance-data.ec2.internal"})


class UnsafeUrl(TranslatableError):
    """A URL the hub refuses to call; the message says why in plain words (translated where shown)."""

    def _param(self, key: str, value: Any, gettext: Callable[[str], str]) -> Any:
        return gettext(value) if key == "reason" else value


@dataclass(frozen=True)
class Target:
    """A checked URL: where to connect (`address`) and what to call it (Host header, TLS name)."""

    url: str
    scheme: str
    host: str
    port: int
    path: str
    address: str

    def connect_url(self) -> str:
        """The URL with the checked address in place of the name (IPv6 in brackets)."""
        literal = f"[{self.address}]" if ":" in self.address else self.address
        return f"{self.scheme}://{literal}:{self.port}{self.path}"

    def host_header(self) -> str:
        default = 443 if self.scheme == "https" else 80
        name = f"[{self.host}]" if ":" in self.host else self.host
        return name if self.port == default else f"{name}:{self.port}"


@dataclass(frozen=True)
class Policy:
    """The admin's settings: plain HTTP allowed (development only), hosts allowed to be private."""

    allow_http: bool = False
    allowed_hosts: tuple[str, ...] = ()

    def host_allowed(self, host: str, addresses: Iterable[IPAddress] = ()) -> bool:
        """Whether the allow-list names this host, or a network holding all its addresses."""
        name = host.lower().rstrip(".")
        networks = []
        for entry in self.allowed_hosts:
            entry = entry.strip().lower()
            if entry == name:
                return True
            try:
                networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                continue
        found = list(addresses)
        return bool(found) and bool(networks) and all(any(a in n for n in networks) for a in found)


def parse_ip(host: str) -> IPAddress | None:
    """The address a literal host stands for, in any spelling the resolver accepts; None for a name."""
    text = host.strip("[]")
    try:
        return ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        pass
    try:  # inet_aton reads 127.1, 0x7f000001, 2130706433, 0177.0.0.1 as the C library does
        return ipaddress.IPv4Address(socket.inet_aton(text))
    except (OSError, ValueError):
        return None


def carried(address: IPAddress) -> IPAddress:
    """The IPv4 address an IPv6 one carries (mapped, 6to4, Teredo, NAT64), else itself."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return address.ipv4_mapped
        if address.sixtofour is not None:
            return address.sixtofour
        if address.teredo is not None:
            return address.teredo[1]
        if address in _NAT64:
            return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return address


def forbidden(address: IPAddress) -> str | None:
    """Why an address may not be called (None: it is a public one)."""
    inner = carried(address)
    for candidate in (inner, address):
        if candidate.is_loopback:
            return N_("a loopback address")
        if candidate.is_link_local:
            return N_("a link-local address (cloud metadata lives there)")
        if candidate.is_private:
            return N_("a private network address")
        if candidate.is_multicast or candidate.is_unspecified or candidate.is_reserved:
            return N_("a reserved address")
        if not candidate.is_global:
            return N_("an address that is not public")
    return None


def split(url: str, policy: Policy) -> tuple[str, str, int, str]:
    """(scheme, host, port, path with query) of a well-formed endpoint URL, or UnsafeUrl."""
    url = (url or "").strip()
    if not url or len(url) > 2000:
        raise UnsafeUrl(N_("Enter the endpoint's URL (at most 2000 characters)."))
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise UnsafeUrl(N_("This is not a valid URL.")) from None
    scheme = parts.scheme.lower()
    if scheme != "https" and not (scheme == "http" and policy.allow_http):
        raise UnsafeUrl(N_("The URL must start with https:// (plain http is allowed only by a development setting)."))
    if parts.username is not None or parts.password is not None:
        raise UnsafeUrl(N_("The URL must not carry a user name or password."))
    host = (parts.hostname or "").rstrip(".")
    if not host or any(c.isspace() for c in url):
        raise UnsafeUrl(N_("This is not a valid URL."))
    if parts.fragment:
        raise UnsafeUrl(N_("The URL must not have a #fragment."))
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return scheme, host, port or (443 if scheme == "https" else 80), path


def check_addresses(host: str, addresses: Sequence[IPAddress], policy: Policy) -> None:
    """UnsafeUrl unless every address is public, or the host is allow-listed."""
    if policy.host_allowed(host, addresses):
        return
    if host.lower() in _METADATA_NAMES or host.lower() == "localhost" or host.lower().endswith(".localhost"):
        raise UnsafeUrl(N_("The host %(host)s is internal; the hub does not call it."), host=host)
    for address in addresses:
        why = forbidden(address)
        if why is not None:
            raise UnsafeUrl(N_("The host %(host)s is %(reason)s (%(address)s); the hub does not call it unless an "
                               "admin allow-lists the host."), host=host, reason=why, address=str(address))


def _parse_results(infos: Iterable[tuple]) -> list[IPAddress]:
    found: list[IPAddress] = []
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
        if address not in found:
            found.append(address)
    return found


def resolve(host: str, port: int) -> list[IPAddress]:
    """Every address the host resolves to (a literal, in any spelling, is itself)."""
    literal = parse_ip(host)
    if literal is not None:
        return [literal]
    try:
        return _parse_results(socket.getaddrinfo(host, port, type=socket.SOCK_STREAM))
    except (socket.gaierror, UnicodeError, ValueError) as exc:
        raise UnsafeUrl(N_("The host %(host)s cannot be resolved (%(error)s)."), host=host, error=str(exc)) from None


async def resolve_async(host: str, port: int) -> list[IPAddress]:
    literal = parse_ip(host)
    if literal is not None:
        return [literal]
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError, ValueError) as exc:
        raise UnsafeUrl(N_("The host %(host)s cannot be resolved (%(error)s)."), host=host, error=str(exc)) from None
    return _parse_results(infos)


def check_url(url: str, policy: Policy) -> Target:
    """The checked target of `url` (resolving its host now), or UnsafeUrl saying why not."""
    scheme, host, port, path = split(url, policy)
    addresses = resolve(host, port)
    check_addresses(host, addresses, policy)
    return Target(url.strip(), scheme, host, port, path, str(addresses[0]))


async def check_url_async(url: str, policy: Policy) -> Target:
    """check_url without blocking the event loop (the sender's check before every batch)."""
    scheme, host, port, path = split(url, policy)
    addresses = await resolve_async(host, port)
    check_addresses(host, addresses, policy)
    return Target(url.strip(), scheme, host, port, path, str(addresses[0]))
