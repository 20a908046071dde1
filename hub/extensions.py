"""Plug-ins that are not channels: campaigns, surveys, key accounts (see hub.plugin).

An extension is a subclass of `Extension` registered under the entry-point group `hub.extensions`
(the name of the entry point is the extension's name). The hub builds each one with its validated
section of the settings (`[extensions.<name>]`) and asks it for its routers, jobs, triggers and
navigation. Importing the extension's module must register its tables (as an adapter's does), so
`hub.schema.metadata()` sees them. Like the channels, the hub imports no extension by name.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel, ConfigDict, ValidationError

from hub.plugin import (  # noqa: F401 - NavEntry, AccountPanel and PeriodicJob are part of this API
    EXTENSIONS_GROUP,
    AccountPanel,
    ContactPanel,
    NavEntry,
    PeriodicJob,
    Plugin,
    PluginLoadError,
    load_group,
)
from hub.settings import section_problems

if TYPE_CHECKING:
    from fastapi import APIRouter
    from sqlalchemy.orm import Session

    from hub.runtime import Hub

ENTRY_POINT_GROUP = EXTENSIONS_GROUP


class ExtensionLoadError(RuntimeError):
    """An extension that cannot be loaded or configured stops start-up, naming it."""


class ExtensionSettings(BaseModel):
    """An extension's section of the config (`[extensions.<name>]`); extensions subclass it."""

    model_config = ConfigDict(extra="forbid")


@dataclass(frozen=True)
class CardBadge:
    """A fact shown at a glance on the contact card and in the incoming-call screen pop, beside the
    contact's account (a key account's temperature, say). Texts are in the agent's language."""

    label: str
    value: str
    tone: str = ""  # "ok", "warn" or "bad": the colour it is drawn in
    hint: str = ""  # why, shown as the badge's title ("silent 37 days against a usual 7")
    href: str | None = None


# rule(session, account, changed): `changed` names the fields this change touched; the account is
# flushed, as it will be saved. Raise hub.accounts.AccountRefused to refuse the change.
AccountRule = Callable[[Any, Any, frozenset[str]], None]


class Extension(Plugin):
    """Base class: every hook is optional and returns nothing by default."""

    name: ClassVar[str]
    Settings: ClassVar[type[ExtensionSettings]] = ExtensionSettings

    def __init__(self, settings: ExtensionSettings, hub: Hub) -> None:
        super().__init__(settings, hub)

    def public_router(self) -> APIRouter | None:
        """Pages and endpoints for customers (survey, unsubscribe, tracking), mounted at the site root
        with no session and no CSRF check: they authenticate by signed tokens (hub.signing)."""
        return None

    def contact_panels(self) -> list[ContactPanel]:
        """Sections of the contact page this extension fills (its conversations, say)."""
        return []

    def account_panels(self) -> list[AccountPanel]:
        """Sections of the account page this extension fills (profitability, temperature)."""
        return []

    def account_rules(self) -> list[AccountRule]:
        """Rules an account must keep when it is created or its fields change (a manager's cap on key
        accounts, say): each raises `hub.accounts.AccountRefused`; see `hub.accounts.enforce_rules`."""
        return []

    def merge_accounts(self, session: Session, *, survivor_id: int, duplicate_id: int) -> None:
        """Move this extension's rows of the duplicate account to the survivor (hub.accounts_merge),
        before the duplicate's row is deleted; in the merge's transaction."""

    def card_badges(self, session: Session, *, contact_id: int, account_id: int | None,
                    locale: str) -> list[CardBadge]:
        """Facts about this contact (or its account) for its card and the screen pop; one cheap query."""
        return []

    def body_limits(self) -> Mapping[str, int]:
        """Path regex -> largest request body, where the API's default does not fit."""
        return {}


def load_extensions(hub: Hub) -> dict[str, Extension]:
    """Every installed extension, built with its validated settings section."""
    sections: Mapping[str, Mapping[str, Any]] = hub.settings.extensions
    try:
        classes = load_group(EXTENSIONS_GROUP, what="extension", check=_is_extension)
    except PluginLoadError as exc:
        raise ExtensionLoadError(str(exc)) from exc
    unknown = set(sections) - set(classes)
    if unknown:
        raise ExtensionLoadError(f"settings name unknown extensions {sorted(unknown)}; installed: {sorted(classes)}")
    built: dict[str, Extension] = {}
    for name, cls in classes.items():
        try:
            settings = cls.Settings(**sections.get(name, {}))
        except ValidationError as exc:
            problems = section_problems(exc)
            raise ExtensionLoadError(f"settings of extension {name!r} are invalid: {problems}") from None
        built[name] = cls(settings, hub)
    return built


def _is_extension(name: str, obj: Any) -> str | None:
    if not (isinstance(obj, type) and issubclass(obj, Extension)) or getattr(obj, "name", None) != name:
        return f"is not an Extension named {name!r}"
    return None


def import_all() -> None:
    """Import every installed extension's module (so its tables are registered)."""
    try:
        load_group(EXTENSIONS_GROUP, what="extension")
    except PluginLoadError as exc:
        raise ExtensionLoadError(str(exc)) from exc
