"""The forms adapter: what the registry loads (its routes, limits and jobs live beside it)."""

from __future__ import annotations

from channels.base import Capability, Channel


class FormsChannel(Channel):
    name = "forms"
    label = "Web form"
    capabilities: frozenset[Capability] = frozenset()
