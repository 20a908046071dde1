"""Packages that extend the hub without being a channel: campaigns, surveys.

An extension is a subclass of `Extension` registered under the entry-point group `hub.extensions`
(the name of the entry point is the extension's name). The hub builds each one with its validated
section of the settings (`[extensions.<name>]`) and asks it for its routers, jobs, triggers and
navigation. Importing the extension's module must register its tables (as an adapter's does), so
`hub.schema.metadata()` sees them. Like the channels, the hub imports no extension by name.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel, ConfigDict, ValidationError

from hub.settings import section_problems

if TYPE_CHECKING:
    from fastapi import APIRouter

    from channels.base import PeriodicJob
    from hub.notices import Catalogue, NoticeType
    from hub.runtime import Hub
    from hub.sending import SendGate
    from hub.triggers import TriggerRegistry

ENTRY_POINT_GROUP = "hub.extensions"


class ExtensionLoadError(RuntimeError):
    """An extension that cannot be loaded or configured stops start-up, naming it."""


class ExtensionSettings(BaseModel):
    """An extension's section of the config (`[extensions.<name>]`); extensions subclass it."""

    model_config = ConfigDict(extra="forbid")


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


class Extension:
    """Base class: every hook is optional and returns nothing by default."""

    name: ClassVar[str]
    Settings: ClassVar[type[ExtensionSettings]] = ExtensionSettings

    def __init__(self, settings: ExtensionSettings, hub: Hub) -> None:
        self.settings = settings
        self.hub = hub

    def register_triggers(self, triggers: TriggerRegistry) -> None:
        """React to timeline events (`order.completed` schedules a survey, say)."""

    def notice_types(self) -> list[NoticeType]:
        """Notice types this extension adds to the event catalogue (hub.notices); channels may declare them too."""
        return []

    def register_notice_listeners(self, notices: Catalogue) -> None:
        """Listen to emitted notices (`notices.listen(fn)`), called inside the cause's transaction."""

    def api_router(self) -> APIRouter | None:
        """REST endpoints, mounted under /api/v1 (OpenAPI-documented, problem-details errors)."""
        return None

    def web_router(self) -> APIRouter | None:
        """Workspace pages, mounted at the site root behind the sign-in and CSRF checks."""
        return None

    def public_router(self) -> APIRouter | None:
        """Pages and endpoints for customers (survey, unsubscribe, tracking), mounted at the site root
        with no session and no CSRF check: they authenticate by signed tokens (hub.signing)."""
        return None

    def nav(self) -> list[NavEntry]:
        return []

    def jobs(self) -> list[PeriodicJob]:
        return []

    def account_panels(self) -> list[AccountPanel]:
        """Sections of the account page this extension fills (profitability, temperature)."""
        return []

    def send_gates(self) -> list[SendGate]:
        """Checks the worker runs on each claimed delivery before it is sent (hub.sending)."""
        return []

    def body_limits(self) -> Mapping[str, int]:
        """Path regex -> largest request body, where the API's default does not fit."""
        return {}


def load_extensions(hub: Hub) -> dict[str, Extension]:
    """Every installed extension, built with its validated settings section."""
    sections: Mapping[str, Mapping[str, Any]] = hub.settings.extensions
    classes: dict[str, type[Extension]] = {}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            cls = ep.load()
        except Exception as exc:
            raise ExtensionLoadError(f"extension {ep.name!r} ({ep.value}) failed to load: {exc}") from exc
        if not (isinstance(cls, type) and issubclass(cls, Extension)) or getattr(cls, "name", None) != ep.name:
            raise ExtensionLoadError(f"entry point {ep.name!r} ({ep.value}) is not an Extension named {ep.name!r}")
        classes[ep.name] = cls
    unknown = set(sections) - set(classes)
    if unknown:
        raise ExtensionLoadError(f"settings name unknown extensions {sorted(unknown)}; installed: {sorted(classes)}")
    built: dict[str, Extension] = {}
    for name, cls in sorted(classes.items()):
        try:
            settings = cls.Settings(**sections.get(name, {}))
        except ValidationError as exc:
            problems = section_problems(exc)
            raise ExtensionLoadError(f"settings of extension {name!r} are invalid: {problems}") from None
        built[name] = cls(settings, hub)
    return built


def import_all() -> None:
    """Import every installed extension's module (so its tables are registered)."""
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            ep.load()
        except Exception as exc:
            raise ExtensionLoadError(f"extension {ep.name!r} ({ep.value}) failed to load: {exc}") from exc
