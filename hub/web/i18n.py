"""Russian and English for every page: Babel catalogs compiled in memory, locale negotiation, and
locale-aware formatting of dates (in the agent's time zone), numbers and money.

The .po files under hub/web/locale are the only artifacts: they are compiled when first used, so no
.mo file is ever committed or goes stale. `python -m hub.web.i18n` re-extracts the messages from the
templates and this package and merges them into the catalogs.
"""

from __future__ import annotations

import importlib.util
import io
import re
from dataclasses import dataclass
from datetime import date as calendar_date
from datetime import datetime, timedelta
from decimal import Decimal
from functools import lru_cache
from gettext import GNUTranslations
from importlib.metadata import entry_points
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from babel import Locale
from babel import dates as babel_dates
from babel import numbers as babel_numbers
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

from hub.settings import HUB_TEMPLATES, PROJECT_ROOT
from hub.translatable import (  # noqa: F401  (the workspace's names for them)
    DEFAULT_LABEL,
    PYDANTIC_MESSAGES,
    UNKNOWN_PROBLEM,
    FieldError,
    N_,
    Translatable,
    TranslatableError,
    field_errors,
)

LOCALES = ("ru", "en")
LOCALE_DIR = Path(__file__).resolve().parent / "locale"
DOMAIN = "messages"
LANGUAGE_NAMES = {"ru": "Русский", "en": "English"}
# The messages refused input carries; they live below hub.web so core rules can raise them.
TEMPLATE_KINDS = ("ui", "public", "messages")  # templates/<kind>/<package>/…, in the root or a plug-in
CORE_MESSAGE_FILES = ("hub/translatable.py", "hub/contacts.py", "hub/identities.py", "hub/auth.py")


def catalog_path(locale: str) -> Path:
    return LOCALE_DIR / locale / "LC_MESSAGES" / f"{DOMAIN}.po"


@dataclass(frozen=True)
class PackageCatalog:
    """A package with catalogs of its own (channels/forms, campaigns/surveys, …): its Python files and
    its templates are extracted into <package>/locale/<locale>.po, so packages built side by side never
    edit one shared file. `root` is the plug-in's folder it belongs to (itself, or the plug-in it is
    nested in: campaigns/segments keeps its pages in campaigns/templates/ui/segments/)."""

    name: str
    folder: Path
    root: Path

    def path(self, locale: str) -> Path:
        return self.folder / "locale" / f"{locale}.po"

    def template_folders(self) -> list[Path]:
        """Its templates: templates/ inside the package, its folders in the plug-in's templates/<kind>/
        when it is nested in one, and any left in the root's templates/<kind>/<name>/."""
        candidates = [self.folder / "templates"]
        if self.root != self.folder:
            candidates += [self.root / "templates" / kind / self.name for kind in TEMPLATE_KINDS]
        candidates += [HUB_TEMPLATES / kind / self.name for kind in TEMPLATE_KINDS]
        return [folder for folder in candidates if folder.is_dir()]



def package_catalogs() -> list[PackageCatalog]:
    """Every package of an installed plug-in (or nested in one) that keeps a locale/ folder: the
    plug-ins declare their catalogs by shipping them, the hub names none."""
    from hub.plugin import plugin_folders

    found: list[PackageCatalog] = []
    for root in plugin_folders():
        for locale_dir in sorted(root.glob("**/locale")):
            package = locale_dir.parent
            if locale_dir.is_dir() and (package / "__init__.py").exists() and all(p.folder != package for p in found):
                found.append(PackageCatalog(package.name, package, root))
    return found


@lru_cache(maxsize=len(LOCALES))
def translations(locale: str) -> GNUTranslations:
    """The compiled catalog of one supported locale, with every package's merged in (once per process)."""
    if locale not in LOCALES:
        raise ValueError(f"unsupported locale {locale!r}; the hub speaks {', '.join(LOCALES)}")
    with catalog_path(locale).open("rb") as handle:
        catalog = read_po(handle, locale=locale, domain=DOMAIN)
    for package in package_catalogs():
        if package.path(locale).exists():
            with package.path(locale).open("rb") as handle:
                for message in read_po(handle, locale=locale, domain=DOMAIN):
                    if message.id and message.id not in catalog:
                        catalog[message.id] = message
    buffer = io.BytesIO()
    # Fuzzy entries are guesses left by a merge: showing them would show wrong text.
    write_mo(buffer, catalog, use_fuzzy=False)
    buffer.seek(0)
    return GNUTranslations(buffer)


@lru_cache(maxsize=64)
def package_translations(locale: str, name: str) -> GNUTranslations:
    """Package `name`'s own catalog first, then the merged one. The merged catalog keeps the first
    translation of a msgid, but packages may translate one word differently ("Completed": a meeting
    took place, a campaign finished): each package's pages and messages read its own words."""
    base = translations(locale)
    package = next((p for p in package_catalogs() if p.name == name), None)
    if package is None or not package.path(locale).exists():
        return base
    with package.path(locale).open("rb") as handle:
        catalog = read_po(handle, locale=locale, domain=DOMAIN)
    buffer = io.BytesIO()
    write_mo(buffer, catalog, use_fuzzy=False)
    buffer.seek(0)
    own = GNUTranslations(buffer)
    own.add_fallback(base)
    return own


def template_translations(locale: str, template: str) -> GNUTranslations:
    """The catalog a template speaks: templates/{ui,public,messages}/<package>/… their package's."""
    parts = template.split("/")
    folder = parts[1] if parts[0] in ("public", "messages") and len(parts) > 2 else parts[0] if len(parts) > 1 else ""
    return package_translations(locale, folder) if folder in _package_names() else translations(locale)


@lru_cache(maxsize=1)
def _package_names() -> frozenset[str]:
    return frozenset(p.name for p in package_catalogs())


_LANGUAGE_RANGE = re.compile(r"^\s*([A-Za-z]{1,8}(?:-[A-Za-z0-9]{1,8})*|\*)\s*(?:;\s*q\s*=\s*([0-9.]+))?\s*$")


def parse_accept_language(header: str | None) -> list[str]:
    """Language tags from an Accept-Language header, most preferred first (q=0 dropped)."""
    ranked: list[tuple[float, int, str]] = []
    for position, part in enumerate((header or "").split(",")[:20]):
        match = _LANGUAGE_RANGE.match(part)
        if not match:
            continue
        try:
            quality = float(match.group(2)) if match.group(2) else 1.0
        except ValueError:
            continue
        if quality > 0:
            ranked.append((-quality, position, match.group(1).lower()))
    return [tag for _q, _p, tag in sorted(ranked)]


def negotiate(preference: str | None, accept_language: str | None, default: str) -> str:
    """The user's own preference first, then the browser's languages, then the hub's default."""
    if preference in LOCALES:
        return preference  # type: ignore[return-value]
    for tag in parse_accept_language(accept_language):
        base = tag.split("-")[0]
        if base in LOCALES:
            return base
    return default if default in LOCALES else LOCALES[0]


def zone(name: str | None, fallback: str) -> ZoneInfo:
    """The named IANA zone, or the fallback when the name is empty or unknown."""
    for candidate in (name, fallback, "UTC"):
        if candidate:
            try:
                return ZoneInfo(candidate)
            except (ZoneInfoNotFoundError, ValueError):
                continue
    return ZoneInfo("UTC")


@lru_cache(maxsize=32)
def _babel_locale(tag: str) -> Locale:
    """Babel's locale object, parsed once: every format call would otherwise parse the tag again
    (a list of 50 rows spent more time there than in its query)."""
    return Locale.parse(tag)


@lru_cache(maxsize=32)
def _short_patterns(tag: str) -> tuple[str, str]:
    """short_datetime's patterns (this year's, another year's): the locale's best skeleton for the
    day ("MMMd" / "yMMMd"), ", " and its short time, as format_skeleton and format_time choose them."""
    loc = _babel_locale(tag)
    skeletons = loc.datetime_skeletons

    def day(skeleton: str) -> str:
        return str(skeletons[skeleton if skeleton in skeletons else babel_dates.match_skeleton(skeleton, skeletons)])

    clock_pattern = loc.time_formats["short"].pattern
    return f"{day('MMMd')}, {clock_pattern}", f"{day('yMMMd')}, {clock_pattern}"


@dataclass(frozen=True)
class Formatter:
    """Formats values for one agent: their locale, their time zone."""

    locale: str
    tz: ZoneInfo

    @property
    def _babel(self) -> Locale:
        return _babel_locale(self.locale)

    def local(self, value: datetime) -> datetime:
        return value.astimezone(self.tz)

    def datetime(self, value: datetime | None, format: str = "medium") -> str:
        if value is None:
            return ""
        return babel_dates.format_datetime(value, format, tzinfo=self.tz, locale=self._babel)

    def short_datetime(self, value: datetime | None) -> str:
        """Day and time without seconds: "15 янв., 12:00" / "Jan 15, 12:00 PM"; with the year when it
        is not this year's ("1 янв. 2020 г., 10:00"), so a date a year off does not pass for this one."""
        if value is None:
            return ""
        from hub import clock

        this_year = value.astimezone(self.tz).year == clock.now().astimezone(self.tz).year
        pattern = _short_patterns(self.locale)[0 if this_year else 1]
        return babel_dates.format_datetime(value, pattern, tzinfo=self.tz, locale=self._babel)

    def date(self, value: datetime | calendar_date | None, format: str = "medium") -> str:
        if value is None:
            return ""
        if isinstance(value, datetime):
            value = value.astimezone(self.tz).date()
        return babel_dates.format_date(value, format, locale=self._babel)

    def time(self, value: datetime | None, format: str = "short") -> str:
        if value is None:
            return ""
        return babel_dates.format_time(value, format, tzinfo=self.tz, locale=self._babel)

    def iso(self, value: datetime | None) -> str:
        return "" if value is None else value.isoformat()

    def relative(self, value: datetime | None, now: datetime) -> str:
        """"5 minutes ago" / "in 2 hours", in the agent's language."""
        if value is None:
            return ""
        return babel_dates.format_timedelta(value - now, add_direction=True, threshold=1, locale=self._babel)

    def duration(self, seconds: float | int | None) -> str:
        if seconds is None:
            return ""
        return babel_dates.format_timedelta(timedelta(seconds=seconds), threshold=1, locale=self._babel,
                                            format="short")

    def number(self, value: int | float | Decimal | None) -> str:
        return "" if value is None else babel_numbers.format_decimal(value, locale=self._babel)

    def money(self, amount: int | float | Decimal | str | None, currency: str) -> str:
        if amount is None:
            return ""
        text = babel_numbers.format_currency(Decimal(str(amount)), currency, locale=self._babel)
        symbol = babel_numbers.get_currency_symbol(currency, locale=self._babel)
        # English writes a code without a sign glued to the number ("RUB25.00"); keep them apart.
        if symbol.isalpha() and text.startswith(symbol) and not text[len(symbol):len(symbol) + 1].isspace():
            text = f"{symbol}\xa0{text[len(symbol):]}"
        return text

    def percent(self, value: float | None) -> str:
        return "" if value is None else babel_numbers.format_percent(value, locale=self._babel)


KEYWORDS = {"_": None, "gettext": None, "ngettext": (1, 2), "N_": None}


def _extract(sources: list[tuple[Path, str]], *, skip: tuple[Path, ...] = ()) -> list[tuple[str | tuple[str, str], str, int, list[str]]]:
    """(message, file, line, comments) from each (folder, method) source, leaving out `skip` folders."""
    from babel.messages.extract import extract_from_dir

    found = []
    for folder, method in sources:
        if not folder.is_dir():
            continue
        pattern = "**.html" if method == "jinja2" else "**.py"
        for filename, lineno, message, comments, _context in extract_from_dir(
            str(folder), method_map=[(pattern, method)], keywords=KEYWORDS,
            options_map={"**.html": {"extensions": "", "trimmed": "true"}},
        ):
            path = (folder / filename).resolve()  # the core's templates are reached through a link
            if any(path.is_relative_to(other.resolve()) for other in skip):
                continue
            found.append((message, str(path.relative_to(PROJECT_ROOT)), lineno, comments))
    return found


def hub_messages() -> list[tuple[str | tuple[str, str], str, int, list[str]]]:
    """What hub/web/locale holds: templates/ui, hub/web and the plug-ins that keep no catalog of their own."""
    from hub.plugin import plugin_folders

    packages = package_catalogs()
    owned = tuple(folder for p in packages for folder in [p.folder, *p.template_folders()])
    without = [(folder, "python") for folder in plugin_folders()
               if not any(folder.is_relative_to(p.folder) for p in packages)]
    without += [(folder / "templates", "jinja2") for folder, _ in without]
    messages = _extract([(HUB_TEMPLATES / "ui", "jinja2"), (HUB_TEMPLATES / "public", "jinja2"),
                         (Path(__file__).resolve().parent, "python")], skip=owned)
    messages += _extract(without, skip=owned)
    messages += [m for m in _extract([(PROJECT_ROOT / "hub", "python")]) if m[1] in CORE_MESSAGE_FILES]
    return messages


def package_messages(package: PackageCatalog) -> list[tuple[str | tuple[str, str], str, int, list[str]]]:
    """What one package's catalog holds (nested packages with catalogs of their own left out)."""
    nested = tuple(folder for p in package_catalogs() if p.folder != package.folder and p.folder.is_relative_to(package.folder)
                   for folder in (p.folder, *p.template_folders()))
    return _extract([(package.folder, "python"), *[(f, "jinja2") for f in package.template_folders()]], skip=nested)


def _write_catalogs(paths: dict[str, Path], messages: list[tuple[str | tuple[str, str], str, int, list[str]]]) -> list[str]:
    from babel.messages.catalog import Catalog
    from babel.messages.pofile import write_po

    template = Catalog(domain=DOMAIN, project="hub", charset="utf-8")
    for message, filename, lineno, comments in messages:
        template.add(message, None, [(filename, lineno)], auto_comments=comments)
    written = []
    for locale, path in paths.items():
        if path.exists():
            with path.open("rb") as handle:
                catalog = read_po(handle, locale=locale, domain=DOMAIN)
        else:
            catalog = Catalog(locale=locale, domain=DOMAIN, project="hub", charset="utf-8")
        catalog.update(template, no_fuzzy_matching=True)
        buffer = io.BytesIO()
        write_po(buffer, catalog, width=100, omit_header=False, ignore_obsolete=True, sort_output=False)
        if path.exists() and _without_dates(path.read_bytes()) == _without_dates(buffer.getvalue()):
            continue  # nothing but the extraction time would change: leave the file alone
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(buffer.getvalue())
        written.append(str(path))
    return written


def _without_dates(po: bytes) -> bytes:
    return re.sub(rb'"(POT-Creation-Date|PO-Revision-Date): [^"]*"', b"", po)


def update_catalogs() -> list[str]:
    """Re-extract messages into hub/web/locale and every package's own locale/ catalogs; the files changed."""
    written = _write_catalogs({locale: catalog_path(locale) for locale in LOCALES}, hub_messages())
    for package in package_catalogs():
        written += _write_catalogs({locale: package.path(locale) for locale in LOCALES}, package_messages(package))
    return written


if __name__ == "__main__":
    for written_path in update_catalogs():
        print(written_path)
