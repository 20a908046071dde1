"""One table shape for every dashboard table: the page renders it, the CSV export writes the same
rows, so an exported file always holds exactly the figures on the page."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

# Column kinds: how a page formats a value (the CSV keeps it plain: numbers with a dot, shares 0–1).
TEXT, INT, MONEY, SHARE, NUMBER = "text", "int", "money", "share", "number"


@dataclass(frozen=True)
class Column:
    key: str  # the CSV header
    label: str  # translated, for the page
    kind: str = TEXT


@dataclass
class Table:
    name: str  # the URL segment of its CSV: /analytics/<page>/<name>.csv
    title: str
    columns: list[Column]
    rows: list[list[Any]] = field(default_factory=list)
    links: list[str | None] = field(default_factory=list)  # a link per row (first column), optional

    def link(self, i: int) -> str | None:
        return self.links[i] if i < len(self.links) else None


def _plain(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4f}".rstrip("0").rstrip(".") if value == value else ""
    if isinstance(value, Decimal):
        return format(value, "f")
    text = str(value)
    # A cell starting with = + - @ is a formula to a spreadsheet: quote it (OWASP CSV injection).
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") and not _numeric(text) else text


def _numeric(text: str) -> bool:
    try:
        Decimal(text)
    except ArithmeticError:
        return False
    return True


def csv_lines(table: Table) -> Iterator[str]:
    """The table as CSV text (a header of column keys, then the rows), line by line."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow([c.key for c in table.columns])
    yield buffer.getvalue()
    for row in table.rows:
        buffer.seek(0)
        buffer.truncate()
        writer.writerow([_plain(v) for v in row])
        yield buffer.getvalue()
