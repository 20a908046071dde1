"""Finding channel adapters: the entry-point group `hub.channels`, plus ones tests register."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import ValidationError

from hub.channel import Channel
from hub.plugin import CHANNELS_GROUP, PluginLoadError, load_group
from hub.settings import section_problems

if TYPE_CHECKING:
    from hub.runtime import Hub

ENTRY_POINT_GROUP = CHANNELS_GROUP


class ChannelLoadError(RuntimeError):
    """An adapter that cannot be loaded or configured stops start-up, naming it."""


class ChannelRegistry:
    def __init__(self) -> None:
        self._classes: dict[str, type[Channel]] = {}

    def register(self, cls: type[Channel]) -> type[Channel]:
        if not (isinstance(cls, type) and issubclass(cls, Channel)):
            raise ChannelLoadError(f"{cls!r} is not a hub.channel.Channel subclass")
        name = getattr(cls, "name", None)
        if not name or not name.replace("_", "").isalnum() or name != name.lower():
            raise ChannelLoadError(f"adapter {cls.__qualname__} needs a lowercase name of letters, digits and _")
        if name in self._classes and self._classes[name] is not cls:
            raise ChannelLoadError(f"two adapters are named {name!r}: {self._classes[name]!r} and {cls!r}")
        self._classes[name] = cls
        return cls

    def load_entry_points(self) -> ChannelRegistry:
        try:
            classes = load_group(ENTRY_POINT_GROUP, what="channel adapter", check=_named)
        except PluginLoadError as exc:
            raise ChannelLoadError(str(exc)) from exc
        for cls in classes.values():
            self.register(cls)
        return self

    @property
    def names(self) -> list[str]:
        return sorted(self._classes)

    def instantiate(self, hub: Hub) -> dict[str, Channel]:
        """Build every registered adapter with its validated section of the settings."""
        sections = hub.settings.channels
        unknown = set(sections) - set(self._classes)
        if unknown:
            raise ChannelLoadError(
                f"settings name unknown channels {sorted(unknown)}; installed adapters: {self.names}"
            )
        channels = {}
        for name, cls in sorted(self._classes.items()):
            try:
                settings = cls.Settings(**sections.get(name, {}))
            except ValidationError as exc:
                problems = section_problems(exc)
                raise ChannelLoadError(f"settings of channel {name!r} are invalid: {problems}") from None
            channels[name] = cls(settings, hub)
        return channels


def default_registry() -> ChannelRegistry:
    return ChannelRegistry().load_entry_points()


def _named(name: str, cls: object) -> str | None:
    if getattr(cls, "name", None) != name:
        return f"points at an adapter named {getattr(cls, 'name', None)!r}"
    return None
