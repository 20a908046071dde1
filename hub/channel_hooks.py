"""Optional hooks a channel adapter implements for what only it knows, read by features that use
channels without knowing them (campaigns, the contact page).

They are Protocols, checked with isinstance, so an adapter opts in by defining the member and the
core never names a channel. (The plug-in contract itself is being moved into the core; these join it.)
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable


@runtime_checkable
class DecoratesMarketing(Protocol):
    """A channel that words its own marketing messages (opt-out wording, a stop button)."""

    def decorate_marketing(self, content: dict[str, Any], *, locale: str) -> dict[str, Any]:
        """`content` with what every marketing message on this channel must carry."""
        ...


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
