"""The process-wide runtime: settings, store, live broker, triggers and channel adapters together."""

from __future__ import annotations

import gc
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from hub.db import Database
from hub.extensions import Extension, load_extensions
from hub.live import MemoryBroker, make_broker
from hub.notices import Catalogue, build_catalogue
from hub.registry import ChannelRegistry, default_registry
from hub.settings import Settings, get_settings
from hub.triggers import TriggerRegistry

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Receive, Scope, Send

    from hub.channel import Channel

# A served process's first requests import lazily loaded modules, compile statements and templates,
# fill the memo: ~20,000 objects that live as long as the process, walked by every full collection
# (11 ms of CPU each in bench/webhooks.py's open loop) until frozen.
WARM_REQUESTS = 1000


class Hub:
    """What every entry point (API, worker, CLI) builds once and passes around."""

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        registry: ChannelRegistry | None = None,
        triggers: TriggerRegistry | None = None,
        broker: MemoryBroker | None = None,
        db: Database | None = None,
        extensions: bool | None = None,
    ) -> None:
        self.settings = settings or get_settings()
        self.db = db or Database(self.settings)
        self.broker = broker or make_broker(self.settings.live_backend, self.settings.sqlalchemy_url)
        if triggers is None:
            triggers = TriggerRegistry()
            triggers.load_entry_points()
        self.triggers = triggers
        self.registry = registry or default_registry()
        self.channels: dict[str, Channel] = self.registry.instantiate(self)
        self.extensions: dict[str, Extension] = {} if extensions is not None and not extensions else load_extensions(self)
        for extension in self.extensions.values():
            extension.register_triggers(self.triggers)
        # The event catalogue: the core's notice types plus those extensions and channels declare;
        # listeners (the webhooks extension) subscribe to it, causes emit through hub.notices.emit.
        self.notices: Catalogue = build_catalogue([*self.extensions.values(), *self.channels.values()])
        for extension in self.extensions.values():
            extension.register_notice_listeners(self.notices)
        self.notices.install(self.triggers)

    def session(self, *, read_only: bool = False) -> Session:
        """A session whose writes can post timeline events (it knows this runtime)."""
        session = self.db.session(read_only=read_only)
        session.info["hub"] = self
        return session

    def channel(self, name: str) -> Channel:
        try:
            return self.channels[name]
        except KeyError:
            raise LookupError(f"no channel named {name!r}; installed: {sorted(self.channels)}") from None

    def extension(self, name: str) -> Extension:
        try:
            return self.extensions[name]
        except KeyError:
            raise LookupError(f"no extension named {name!r}; installed: {sorted(self.extensions)}") from None

    def close(self) -> None:
        self.broker.stop()
        self.db.dispose()


def freeze_startup_objects() -> None:
    """Move what is built by now out of the garbage collector's full passes (served and worker
    processes only).

    Modules, routes, the ORM's mappers and the templates live as long as the process; leaving them
    in the collector's reach makes every full collection walk them, which stalls requests under
    load (the webhook benchmark's tail latency) and cost a campaign worker two full passes of ~0.5 s
    in a 4,000-message run (docs/benchmarks.md, "Campaign"). Tests build many apps and must be able
    to collect them, so only `hub.asgi` (what `hub serve` runs) and `hub.worker.run_worker` (what
    `hub worker` runs) call this.
    """
    gc.collect()
    gc.freeze()


class FreezeWhenWarm:
    """ASGI middleware: freeze the heap again once the process has answered its first `after` requests,
    as a worker does once every job has run once (hub.worker)."""

    def __init__(self, app: ASGIApp, after: int = WARM_REQUESTS) -> None:
        self.app = app
        self.left = after

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)
        if self.left > 0 and scope["type"] == "http":
            self.left -= 1
            if self.left == 0:
                freeze_startup_objects()


def freeze_served_app(app: Any) -> None:
    """What a served process does with its FastAPI app once built: its start-up heap frozen now, what
    its first requests build frozen once it is warm (`hub.asgi`, and the benchmarks that serve it so)."""
    freeze_startup_objects()
    app.add_middleware(FreezeWhenWarm)
