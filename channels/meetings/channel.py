"""The meetings adapter: what the registry loads (its routes, jobs and pages live beside it)."""

from __future__ import annotations

from channels.base import Capability, Channel


class MeetingsChannel(Channel):
    name = "meetings"
    label = "Meeting"
    capabilities: frozenset[Capability] = frozenset()
