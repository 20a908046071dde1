"""Optional hooks a channel adapter implements for what only it knows, read by features that use
channels without knowing them (campaigns, the contact page).

They are Protocols, checked with isinstance, so an adapter opts in by defining the member and the
core never names a channel. (The plug-in contract itself is being moved into the core; these join it.)
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from typing import Any, Protocol, runtime_checkable


@runtime_checkable
class AddressedByIdentity(Protocol):
    """A channel whose delivery address is a contact identity of one kind (hub.models.IdentityKind)."""

    identity_kind: str


@runtime_checkable
class ComposeSlot(Protocol):
    """A channel with a compose panel on the contact page (its template ui/compose/<name>.html)."""

    compose_label: str  # a msgid, translated where it is shown
    compose_icon: str  # a name from templates/ui/_icons.html


def identity_kind_of(channel: object, default: str) -> str:
    """The identity kind `channel` addresses by, or `default` when it does not say."""
    return channel.identity_kind if isinstance(channel, AddressedByIdentity) else default


def sends_to_contacts(channel: object) -> bool:
    """Whether `channel` (an adapter or its class) sends to a contact's identity: what campaigns,
    surveys and message templates may use."""
    from hub.channel import Capability

    return Capability.SEND in getattr(channel, "capabilities", ()) and isinstance(getattr(channel, "identity_kind", None), str)


def contact_channels(channels: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The channels that send to contacts, by name: among `channels` (a hub's adapters), or among the
    installed adapter classes when none are given (validation that has no hub at hand)."""
    if channels is None:
        return dict(_installed_contact_channels())
    return {name: channel for name, channel in sorted(channels.items()) if sends_to_contacts(channel)}


def consent_channels(channels: Mapping[str, Any]) -> list[str]:
    """The channels among `channels` that a contact's consent is recorded for, by name."""
    return sorted(name for name, channel in channels.items()
                  if (asks if (asks := getattr(channel, "asks_consent", None)) is not None else sends_to_contacts(channel)))


def conversation_channels() -> tuple[str, ...]:
    """The installed channels a contact writes on and an agent answers on, as a conversation (email,
    SMS, Telegram): they receive, and send to the contact's identity."""
    from hub.channel import Capability

    return tuple(name for name, cls in _installed_contact_channels() if Capability.RECEIVE in cls.capabilities)


@lru_cache(maxsize=1)
def _installed_contact_channels() -> tuple[tuple[str, Any], ...]:
    """Read once per process, as hub.plugin.installed() is: rendering asks for every message."""
    from hub.plugin import installed

    return tuple((cls.name, cls) for cls in sorted(installed(), key=lambda cls: cls.name) if sends_to_contacts(cls))
