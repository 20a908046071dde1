"""The channels a marketer can write for, as pages show them: every installed channel that sends to
contacts, with the parts its messages carry (hub.channel.Channel.parts)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from hub.channel import ContentPart
from hub.channel_hooks import contact_channels


@dataclass(frozen=True)
class ChannelOption:
    name: str
    label: str  # a msgid (or a name, which translates to itself)
    icon: str  # a name from templates/ui/_icons.html
    identity_kind: str  # where a test goes: "email" to the marketer's own address, else an address typed in
    parts: tuple[ContentPart, ...]

    @property
    def html(self) -> bool:
        return any(part.html for part in self.parts)

    @property
    def text_limit(self) -> int | None:
        """The longest text a message on it may carry, when only a text carries it (SMS, Telegram)."""
        return self.parts[0].max_chars if len(self.parts) == 1 else None


def channel_options(channels: Mapping[str, Any]) -> dict[str, ChannelOption]:
    """Among a hub's adapters, those a template or a campaign can use, by name."""
    return {name: ChannelOption(name=name, label=channel.label or name,
                                icon=getattr(channel, "compose_icon", None) or name,
                                identity_kind=channel.identity_kind, parts=channel.parts)
            for name, channel in contact_channels(channels).items()}
