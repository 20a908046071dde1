"""Signed tracking links: a click redirect per (delivery, URL) and an open pixel per delivery.

A click token signs the delivery's idempotency key AND the exact target URL, so the redirect goes
only to the URL signed for that message: the hub is no open redirect, and a token lifted from one
email cannot be re-pointed. The tokens carry no address and no sequential id.

`instrument_html` rewrites a rendered email's links with Python's own HTML tokenizer
(html.parser): everything that is not an <a href> is copied through byte for byte, so the markup
the marketer wrote is never re-serialised.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from html import escape
from itertools import accumulate
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from campaigns.tracking import replay
from hub.html import TextExtractor
from hub.signing import BadLink, sign, unsign

if TYPE_CHECKING:
    from hub.settings import Settings

CLICK = "track.click"
OPEN = "track.open"
MAX_URL = 2000
# Links the hub serves itself for the customer (unsubscribe, preferences) are not wrapped: a click
# on "unsubscribe" is not engagement, and those pages must work even if tracking is down.
OWN_PATHS = ("/u/", "/preferences/", "/t/")


@dataclass(frozen=True)
class Click:
    delivery_key: str
    url: str


def click_token(settings: Settings, *, delivery_key: str, url: str) -> str:
    return sign(settings, CLICK, {"k": delivery_key, "u": url})


def open_token(settings: Settings, *, delivery_key: str) -> str:
    return sign(settings, OPEN, {"k": delivery_key})


def click_url(settings: Settings, *, delivery_key: str, url: str) -> str:
    """The redirect URL that records a click and then goes to `url` (and nowhere else)."""
    return f"{settings.public_base_url}/t/c/{click_token(settings, delivery_key=delivery_key, url=url)}"


def open_pixel_url(settings: Settings, *, delivery_key: str) -> str:
    return f"{settings.public_base_url}/t/o/{open_token(settings, delivery_key=delivery_key)}.gif"


def read_click(settings: Settings, token: str) -> Click:
    """The delivery and URL a click token was signed for; BadLink otherwise."""
    payload = unsign(settings, CLICK, token)
    if not (isinstance(payload, dict) and isinstance(payload.get("k"), str) and isinstance(payload.get("u"), str)):
        raise BadLink("the link is not valid")
    if not trackable(payload["u"]):
        raise BadLink("the link is not valid")
    return Click(payload["k"], payload["u"])


def read_open(settings: Settings, token: str) -> str:
    """The delivery key an open token was signed for; BadLink otherwise."""
    payload = unsign(settings, OPEN, token)
    if not (isinstance(payload, dict) and isinstance(payload.get("k"), str)):
        raise BadLink("the link is not valid")
    return payload["k"]


def trackable(url: str) -> bool:
    """An absolute http(s) URL of sensible length (not mailto:, tel:, #anchor, javascript:, relative)."""
    if not url or len(url) > MAX_URL or any(c in url for c in "\r\n\t "):
        return False
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def _own(base: str, url: str) -> bool:
    return url.startswith(base + "/") and url[len(base):].startswith(OWN_PATHS)


@lru_cache(maxsize=1024)
def _tracked(base: str, href: str) -> bool:
    """Whether a link to `href` is wrapped in a click redirect: decided once per address, as a
    campaign's links are the same in every message (urlsplit was ~3 µs a link)."""
    return trackable(href) and not _own(base, href)


class _LinkFinder(TextExtractor):
    """Finds where each trackable <a> start tag and the </body> tag sit in the source, and reads
    the text on the way when asked (a campaign's plain-text part: one parse instead of two).

    Only positions are collected; the output is the source spliced at those spots, so everything
    else (entities, comments, conditional comments for Outlook, odd whitespace) stays as written.
    It is fed either by its own parse (`feed`) or by a replayed one (`start`, `end`, `data`:
    campaigns.tracking.replay).
    """

    def __init__(self, settings: Settings, delivery_key: str, *, read_text: bool) -> None:
        super().__init__(links=read_text)
        self.read_text = read_text
        self.settings = settings
        self.delivery_key = delivery_key
        self.edits: list[tuple[int, int, str]] = []  # (offset, length, replacement)
        self.body_end: int | None = None
        self._signed: tuple[str, str | None] | None = None  # (href, its click URL) of the last <a>
        self._line_starts: list[int] = [0]

    def feed(self, data: str) -> None:
        # Where each line starts (html.parser counts lines by "\n"), to turn its (line, column) into offsets.
        self._line_starts = list(accumulate((len(line) + 1 for line in data.split("\n")), initial=0))
        super().feed(data)

    def _offset(self) -> int:
        line, column = self.getpos()
        return self._line_starts[line - 1] + column

    def _click_url(self, attrs: list[tuple[str, str | None]]) -> str | None:
        """The tracked address of this <a>, or None when it is not tracked; signed once per tag."""
        names = [name for name, _ in attrs]
        if "href" not in names or "data-no-track" in names:
            return None
        href = (next(value for name, value in attrs if name == "href") or "").strip()
        if self._signed is None or self._signed[0] != href:
            tracked = _tracked(self.settings.public_base_url, href)
            self._signed = (href, click_url(self.settings, delivery_key=self.delivery_key, url=href) if tracked else None)
        return self._signed[1]

    def link_address(self, attrs: list[tuple[str, str | None]]) -> str | None:
        # The text part's link goes through the same redirect as the HTML's: a click is a click.
        return self._click_url(attrs) or super().link_address(attrs)

    def _link(self, attrs: list[tuple[str, str | None]], raw: str, offset: int) -> None:
        new = self._click_url(attrs)
        if new is None:
            return
        parts = ["<a"]
        for name, value in attrs:
            value = new if name == "href" else value
            parts.append(f" {name}" if value is None else f' {name}="{escape(value, quote=True)}"')
        parts.append(" />" if raw.rstrip().endswith("/>") else ">")
        self.edits.append((offset, len(raw), "".join(parts)))

    def start(self, tag: str, attrs: list[tuple[str, str | None]], raw: str, offset: int) -> None:
        TextExtractor.handle_starttag(self, tag, attrs)
        if tag == "a":
            self._link(attrs, raw, offset)

    def end(self, tag: str, offset: int) -> None:
        TextExtractor.handle_endtag(self, tag)
        if tag == "body" and self.body_end is None:
            self.body_end = offset

    def data(self, data: str) -> None:
        if self.read_text:
            TextExtractor.handle_data(self, data)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.start(tag, attrs, self.get_starttag_text() or "", self._offset())

    def handle_endtag(self, tag: str) -> None:
        self.end(tag, self._offset())

    def handle_data(self, data: str) -> None:
        self.data(data)


def _pixel(settings: Settings, delivery_key: str) -> str:
    src = escape(open_pixel_url(settings, delivery_key=delivery_key), quote=True)
    return (f'<img src="{src}" width="1" height="1" alt="" '
            'style="display:block;width:1px;height:1px;border:0;margin:0;padding:0">')


def instrument_html(settings: Settings, html: str, *, delivery_key: str) -> str:
    """`html` with every http(s) link turned into a signed click redirect and a 1×1 open pixel added
    (before </body>, or at the end of a fragment)."""
    return _instrument(settings, html, delivery_key=delivery_key, read_text=False)[0]


def instrument_html_and_text(settings: Settings, html: str, *, delivery_key: str,
                             chunks: Sequence[str] | None = None) -> tuple[str, str]:
    """instrument_html, and the plain text of `html` as hub.html.html_to_text reads it
    with links, from the same parse (a tracked link's address in the text is its click redirect).

    `chunks`, the pieces `html` was rendered from (render_message's html_chunks), let a campaign
    replay its template's parse instead of parsing every message (campaigns.tracking.replay)."""
    return _instrument(settings, html, delivery_key=delivery_key, read_text=True, chunks=chunks)


def _instrument(settings: Settings, html: str, *, delivery_key: str, read_text: bool,
                chunks: Sequence[str] | None = None) -> tuple[str, str]:
    if not delivery_key:
        raise ValueError("delivery_key is required")
    finder = _LinkFinder(settings, delivery_key, read_text=read_text)
    shape = replay.skeleton(chunks) if chunks is not None and "".join(chunks) == html else None
    the_plan = replay.plan(shape[0]) if shape is not None else None
    if the_plan is not None:
        replay.replay(the_plan, shape[1], finder)  # type: ignore[index]
    else:
        finder.feed(html)
        finder.close()
    edits = list(finder.edits)
    edits.append((finder.body_end if finder.body_end is not None else len(html), 0, _pixel(settings, delivery_key)))
    out, cursor = [], 0
    for start, length, text in sorted(edits, key=lambda e: e[0]):
        out.append(html[cursor:start])
        out.append(text)
        cursor = start + length
    out.append(html[cursor:])
    return "".join(out), finder.text() if read_text else ""


def instrumented(settings: Settings, content: dict[str, Any], *, delivery_key: str) -> dict[str, Any]:
    """An EmailContent dict with its HTML instrumented (text parts are left alone); a copy."""
    if not content.get("html"):
        return dict(content)
    return {**content, "html": instrument_html(settings, content["html"], delivery_key=delivery_key)}
