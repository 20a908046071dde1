"""What a plug-in is, and the one loader that finds every kind of plug-in.

A plug-in is a class the hub finds through an entry point: a channel adapter (`hub.channels`,
`hub.channel.Channel`) or a feature that is not a channel (`hub.extensions`, `hub.extensions.Extension`:
campaigns, surveys, key accounts). Both derive from `Plugin`, whose hooks are all optional: pages and
API routers, navigation, periodic jobs, triggers, send gates. Besides behaviour, a plug-in *declares*
what the core shows or checks on its behalf, as class data the core reads without naming it:

- `permissions`: the scopes it defines and the roles that hold them (admins hold every scope);
- `timeline_channels` and `event_kinds`: how its timeline rows are labelled and drawn;
- its folder (the package of its class): translations (`locale/`), templates (`templates/`), and the
  routes it mounts, which get the workspace's security headers.

Other entry-point groups carry functions rather than classes (`hub.demo`, `hub.stand_ins`,
`hub.commands`, `hub.jobs`, `hub.triggers`, `hub.migrations`); `load_group` loads every group the same
way: sorted by name, failures named, none skipped in silence.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from fastapi import APIRouter

    from hub.notices import Catalogue, NoticeType
    from hub.runtime import Hub
    from hub.sending import SendGate
    from hub.triggers import TriggerRegistry

CHANNELS_GROUP = "hub.channels"
EXTENSIONS_GROUP = "hub.extensions"


class PluginLoadError(RuntimeError):
    """A plug-in that cannot be loaded stops start-up, naming it and its entry point."""


def load_group(group: str, *, what: str, check: Callable[[str, Any], str | None] | None = None) -> dict[str, Any]:
    """Every entry point of `group`, loaded, by name (in name order). `check(name, obj)` returns a
    problem to refuse an object with; a failure to import is reported with the entry point's target."""
    loaded: dict[str, Any] = {}
    for ep in sorted(entry_points(group=group), key=lambda ep: ep.name):
        obj = _load(ep, what)
        problem = check(ep.name, obj) if check else None
        if problem:
            raise PluginLoadError(f"{what} {ep.name!r} ({ep.value}) {problem}")
        loaded[ep.name] = obj
    return loaded


def _load(ep: EntryPoint, what: str) -> Any:
    try:
        return ep.load()
    except Exception as exc:
        raise PluginLoadError(f"{what} {ep.name!r} ({ep.value}) failed to load: {exc}") from exc


@dataclass(frozen=True)
class PeriodicJob:
    """A tick the scheduler runs; `once` ticks hold a cluster-wide lock so one process runs them."""

    id: str  # dotted, e.g. "email.poll_imap"
    func: Callable[[Hub], None]
    seconds: float | None = None
    cron: str | None = None
    once: bool = True


@dataclass(frozen=True)
class NavEntry:
    """A page in the workspace's left navigation, shown to principals holding `scope`."""

    label: str  # an N_() message, translated where it is shown
    path: str
    scope: str
    icon: str = "dot"


@dataclass(frozen=True)
class AccountPanel:
    """A section of the account page, loaded from `path` (with "{account_id}" filled in) as a fragment."""

    label: str  # an N_() message, translated where it is shown
    path: str
    scope: str


@dataclass(frozen=True)
class ContactPanel:
    """A section of the contact page, loaded from `path` (with "{contact_id}" filled in) as a fragment.

    Fragments carry no scripts (htmx runs none: allowScriptTags is off), so a panel that needs one
    names it in `script` (a same-origin URL) and the page loads it; `stylesheet` likewise."""

    label: str  # an N_() message, translated where it is shown
    path: str
    scope: str
    script: str | None = None
    stylesheet: str | None = None


@dataclass(frozen=True)
class TimelineChannel:
    """How rows of one timeline channel ("meetings", "campaigns") are drawn: a label and an icon
    of static/icons.svg."""

    name: str
    label: str  # an N_() message
    icon: str = "dot"


@dataclass(frozen=True)
class EventKind:
    """How one kind of timeline row ("meeting.booked") is labelled. `score` marks kinds whose data
    carries a numeric "score" (a survey answer): the contact card shows the latest one."""

    kind: str
    label: str  # an N_() message
    score: bool = False


class Plugin:
    """What every plug-in may offer and declare; every hook is optional."""

    name: ClassVar[str]
    # Declarations the core reads (see the module's docstring).
    permissions: ClassVar[Mapping[str, Iterable[str]]] = {}  # scope -> roles holding it, besides admin
    timeline_channels: ClassVar[tuple[TimelineChannel, ...]] = ()
    event_kinds: ClassVar[tuple[EventKind, ...]] = ()
    # Other plug-ins this one builds on (as an Odoo module `depends` on another): the only ones whose
    # modules it may import; start-up stops when one is not installed.
    requires: ClassVar[tuple[str, ...]] = ()

    def __init__(self, settings: Any, hub: Hub) -> None:
        self.settings = settings
        self.hub = hub

    @classmethod
    def folder(cls) -> Path:
        """The folder of the package that defines this plug-in (its locale/ and templates/ live there)."""
        module = sys.modules[cls.__module__]
        path = Path(module.__file__ or "").resolve()
        return path.parent

    def register_triggers(self, triggers: TriggerRegistry) -> None:
        """React to timeline events (`order.completed` schedules a survey, say)."""

    def api_router(self) -> APIRouter | None:
        """REST endpoints, mounted under /api/v1 (API keys and scopes, problem details, OpenAPI)."""
        return None

    def web_router(self) -> APIRouter | None:
        """Workspace pages, mounted at the site root behind the sign-in and CSRF checks."""
        return None

    def nav(self) -> list[NavEntry]:
        """Workspace pages in the left navigation."""
        return []

    def jobs(self) -> list[PeriodicJob]:
        """Periodic jobs the scheduler runs."""
        return []

    def send_gates(self) -> list[SendGate]:
        """Checks the worker runs on each claimed delivery before it is sent (hub.sending)."""
        return []

    def notice_types(self) -> list[NoticeType]:
        """Notice types this plug-in adds to the event catalogue (hub.notices: what webhooks carry)."""
        return []

    def register_notice_listeners(self, notices: Catalogue) -> None:
        """Listen to emitted notices (`notices.listen(fn)`), called inside the cause's transaction."""


def _plugin_class(kind: str) -> Callable[[str, Any], str | None]:
    def check(name: str, obj: Any) -> str | None:
        if not (isinstance(obj, type) and issubclass(obj, Plugin)):
            return f"is not a {kind} class"
        if getattr(obj, "name", None) != name:
            return f"points at a {kind} named {getattr(obj, 'name', None)!r}, not {name!r}"
        return None

    return check


@lru_cache(maxsize=1)
def installed() -> tuple[type[Plugin], ...]:
    """Every installed plug-in class (channels, then extensions), loaded once per process."""
    channels = load_group(CHANNELS_GROUP, what="channel adapter", check=_plugin_class("channel adapter"))
    extensions = load_group(EXTENSIONS_GROUP, what="extension", check=_plugin_class("extension"))
    classes = (*channels.values(), *extensions.values())
    names = {cls.name for cls in classes}
    for cls in classes:
        missing = sorted(set(cls.requires) - names)
        if missing:
            raise PluginLoadError(f"plug-in {cls.name!r} requires {', '.join(map(repr, missing))}, which is not installed")
    return classes


def declared_permissions(classes: Iterable[type[Plugin]] | None = None) -> dict[str, frozenset[str]]:
    """Scope -> roles holding it, as the installed plug-ins declare them."""
    found: dict[str, set[str]] = {}
    for cls in installed() if classes is None else classes:
        for scope, roles in cls.permissions.items():
            found.setdefault(scope, set()).update(str(role) for role in roles)
    return {scope: frozenset(roles) for scope, roles in found.items()}


def plugin_folders() -> list[Path]:
    """The package folder of every installed plug-in, without duplicates, outermost first."""
    seen: list[Path] = []
    for cls in installed():
        folder = cls.folder()
        if folder not in seen:
            seen.append(folder)
    return sorted(seen, key=lambda p: (len(p.parts), str(p)))


def plugin_modules() -> tuple[str, ...]:
    """The dotted package of every installed plug-in ("channels.forms", "keyaccounts")."""
    return tuple(sorted({cls.__module__.rsplit(".", 1)[0] if not _is_package(cls) else cls.__module__
                         for cls in installed()}))


def _is_package(cls: type) -> bool:
    module = sys.modules[cls.__module__]
    return Path(module.__file__ or "").name == "__init__.py"
