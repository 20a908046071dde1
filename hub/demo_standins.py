"""What `hub serve --demo` starts beside the hub so that email, SMS and calls really go somewhere.

Each stand-in is a package's `hub.stand_ins` entry point, `stand_in(settings, *, hub_url) -> StandIn`:
it starts a local server (an SMTP server, a Twilio-compatible API) on a free port of this machine
and names the HUB_* settings that point the hub's channels at it. The hub imports no channel, and
nothing here runs outside the demo.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from hub.plugin import load_group

if TYPE_CHECKING:
    from hub.settings import Settings

log = logging.getLogger("hub.demo")

ENTRY_POINT_GROUP = "hub.stand_ins"


@dataclass
class StandIn:
    """One running local server and the settings that send a channel's traffic to it."""

    name: str
    label: str
    url: str
    env: dict[str, str] = field(default_factory=dict)
    stop: Callable[[], None] = lambda: None
    note: str = ""


def start_stand_ins(settings: Settings, *, hub_url: str) -> list[StandIn]:
    """Start every installed stand-in; if one fails, stop those already started and raise."""
    started: list[StandIn] = []
    for name, start in load_group(ENTRY_POINT_GROUP, what="stand-in").items():
        try:
            started.append(start(settings, hub_url=hub_url))
        except Exception as exc:
            stop_stand_ins(started)
            raise RuntimeError(f"the demo's stand-in {name!r} did not start: {exc}") from exc
    return started


def stop_stand_ins(stand_ins: list[StandIn]) -> None:
    for each in reversed(stand_ins):
        try:
            each.stop()
        except Exception:  # noqa: BLE001 - stopping the rest matters more
            log.exception("stopping the stand-in %s failed", each.name)


def environment(stand_ins: list[StandIn]) -> dict[str, str]:
    """The HUB_* variables of every stand-in together."""
    env: dict[str, str] = {}
    for each in stand_ins:
        env.update(each.env)
    return env
