"""Russian and English for every page: Babel catalogs compiled in memory, locale negotiation, and
locale-aware formatting of dates (in the agent's time zone), numbers and money.

The .po files under hub/web/locale are the only artifacts: they are compiled when first used, so no
.mo file is ever committed or goes stale. `python -m hub.web.i18n` re-extracts the messages from the
templates and this package and merges them into the catalogs.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from datetime import date as calendar_date
from datetime import datetime, timedelta
from decimal import Decimal
from functools import lru_cache
from gettext import GNUTranslations
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from babel import dates as babel_dates
from babel import numbers as babel_numbers
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

from hub.settings import PROJECT_ROOT

LOCALES = ("ru", "en")
LOCALE_DIR = Path(__file__).resolve().parent / "locale"
DOMAIN = "messages"
LANGUAGE_NAMES = {"ru": "Русский", "en": "English"}


def N_(message: str) -> str:
    """Mark a message for extraction where it is defined; it is translated where it is shown."""
    return message


def catalog_path(locale: str) -> Path:
    return LOCALE_DIR / locale / "LC_MESSAGES" / f"{DOMAIN}.po"


@lru_cache(maxsize=len(LOCALES))
def translations(locale: str) -> GNUTranslations:
    """The compiled catalog of one supported locale (compiled once per process)."""
    if locale not in LOCALES:
        raise ValueError(f"unsupported locale {locale!r}; the hub speaks {', '.join(LOCALES)}")
    with catalog_path(locale).open("rb") as handle:
        catalog = read_po(handle, locale=locale, domain=DOMAIN)
    buffer = io.BytesIO()
    # Fuzzy entries are guesses left by a merge: showing them would show wrong text.
    write_mo(buffer, catalog, use_fuzzy=False)
    buffer.seek(0)
    return GNUTranslations(buffer)


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


@dataclass(frozen=True)
class Formatter:
    """Formats values for one agent: their locale, their time zone."""

    locale: str
    tz: ZoneInfo

    def local(self, value: datetime) -> datetime:
        return value.astimezone(self.tz)

    def datetime(self, value: datetime | None, format: str = "medium") -> str:
        if value is None:
            return ""
        return babel_dates.format_datetime(value, format, tzinfo=self.tz, locale=self.locale)

    def short_datetime(self, value: datetime | None) -> str:
        """Day and time without seconds: "15 янв., 12:00" / "Jan 15, 12:00 PM"."""
        if value is None:
            return ""
        day = babel_dates.format_skeleton("MMMd", value, tzinfo=self.tz, locale=self.locale)
        return f"{day}, {babel_dates.format_time(value, 'short', tzinfo=self.tz, locale=self.locale)}"

    def date(self, value: datetime | calendar_date | None, format: str = "medium") -> str:
        if value is None:
            return ""
        if isinstance(value, datetime):
            value = value.astimezone(self.tz).date()
        return babel_dates.format_date(value, format, locale=self.locale)

    def time(self, value: datetime | None, format: str = "short") -> str:
        if value is None:
            return ""
        return babel_dates.format_time(value, format, tzinfo=self.tz, locale=self.locale)

    def iso(self, value: datetime | None) -> str:
        return "" if value is None else value.isoformat()

    def relative(self, value: datetime | None, now: datetime) -> str:
        """"5 minutes ago" / "in 2 hours", in the agent's language."""
        if value is None:
            return ""
        return babel_dates.format_timedelta(value - now, add_direction=True, threshold=1, locale=self.locale)

    def duration(self, seconds: float | int | None) -> str:
        if seconds is None:
            return ""
        return babel_dates.format_timedelta(timedelta(seconds=seconds), threshold=1, locale=self.locale,
                                            format="short")

    def number(self, value: int | float | Decimal | None) -> str:
        return "" if value is None else babel_numbers.format_decimal(value, locale=self.locale)

    def money(self, amount: int | float | Decimal | str | None, currency: str) -> str:
        if amount is None:
            return ""
        text = babel_numbers.format_currency(Decimal(str(amount)), currency, locale=self.locale)
        symbol = babel_numbers.get_currency_symbol(currency, locale=self.locale)
        # English writes a code without a sign glued to the number ("RUB25.00"); keep them apart.
        if symbol.isalpha() and text.startswith(symbol) and not text[len(symbol):len(symbol) + 1].isspace():
            text = f"{symbol}\xa0{text[len(symbol):]}"
        return text

    def percent(self, value: float | None) -> str:
        return "" if value is None else babel_numbers.format_percent(value, locale=self.locale)


def update_catalogs() -> list[str]:
    """Extract messages from templates/ui, hub/web and the channels' panels and merge them into each catalog."""
    from babel.messages.catalog import Catalog
    from babel.messages.extract import extract_from_dir
    from babel.messages.pofile import write_po

    template = Catalog(domain=DOMAIN, project="hub", charset="utf-8")
    keywords = {"_": None, "gettext": None, "ngettext": (1, 2), "N_": None}
    sources = [
        (PROJECT_ROOT / "templates" / "ui", [("**.html", "jinja2")]),
        (Path(__file__).resolve().parent, [("**.py", "python")]),
        # The channels' compose panels (channels/<name>/panel.py) speak through these catalogs too.
        (PROJECT_ROOT / "channels", [("**/panel.py", "python")]),
    ]
    for folder, method_map in sources:
        for filename, lineno, message, comments, _context in extract_from_dir(
            str(folder), method_map=method_map, keywords=keywords,
            options_map={"**.html": {"extensions": "", "trimmed": "true"}},
        ):
            template.add(message, None, [(str(Path(folder.name) / filename), lineno)], auto_comments=comments)
    written = []
    for locale in LOCALES:
        path = catalog_path(locale)
        if path.exists():
            with path.open("rb") as handle:
                catalog = read_po(handle, locale=locale, domain=DOMAIN)
            catalog.update(template, no_fuzzy_matching=True)
        else:
            catalog = Catalog(locale=locale, domain=DOMAIN, project="hub", charset="utf-8")
            catalog.update(template, no_fuzzy_matching=True)
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("wb") as handle:
            write_po(handle, catalog, width=100, omit_header=False, ignore_obsolete=True, sort_output=False)
        written.append(str(path))
    return written


if __name__ == "__main__":
    for written_path in update_catalogs():
        print(written_path)
