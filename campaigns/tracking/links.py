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
from html import escape
from itertools import accumulate
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

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


def _own(settings: Settings, url: str) -> bool:
    base = settings.public_base_url
    return url.startswith(base + "/") and url[len(base):].startswith(OWN_PATHS)


class _LinkFinder(TextExtractor):
    """Finds where each trackable <a> start tag and the </body> tag sit in the source, and reads
    the text on the way when asked (a campaign's plain-text part: one parse instead of two).

    Only positions are collected; the output is the source spliced at those spots, so everything
    else (entities, comments, conditional comments for Outlook, odd whitespace) stays as written.
    """

    def __init__(self, settings: Settings, delivery_key: str, *, read_text: bool) -> None:
        super().__init__(links=read_text)
        self.read_text = read_text
        self.settings = settings
        self.delivery_key = delivery_key
        self.edits: list[tuple[tuple[int, int], int, str]] = []  # ((line, column), length, replacement)
        self.body_end: tuple[int, int] | None = None
        self._signed: tuple[str, str | None] | None = None  # (href, its click URL) of the last <a>

    def _click_url(self, attrs: list[tuple[str, str | None]]) -> str | None:
        """The tracked address of this <a>, or None when it is not tracked; signed once per tag."""
        names = [name for name, _ in attrs]
        if "href" not in names or "data-no-track" in names:
            return None
        href = (next(value for name, value in attrs if name == "href") or "").strip()
        if self._signed is None or self._signed[0] != href:
            tracked = trackable(href) and not _own(self.settings, href)
            self._signed = (href, click_url(self.settings, delivery_key=self.delivery_key, url=href) if tracked else None)
        return self._signed[1]

    def link_address(self, attrs: list[tuple[str, str | None]]) -> str | None:
        # The text part's link goes through the same redirect as the HTML's: a click is a click.
        return self._click_url(attrs) or super().link_address(attrs)

    def _link(self, attrs: list[tuple[str, str | None]], raw: str) -> None:
        new = self._click_url(attrs)
        if new is None:
            return
        parts = ["<a"]
        for name, value in attrs:
            value = new if name == "href" else value
            parts.append(f" {name}" if value is None else f' {name}="{escape(value, quote=True)}"')
        parts.append(" />" if raw.rstrip().endswith("/>") else ">")
        self.edits.append((self.getpos(), len(raw), "".join(parts)))

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        super().handle_starttag(tag, attrs)
        if tag == "a":
            self._link(attrs, self.get_starttag_text() or "")

    def handle_endtag(self, tag: str) -> None:
        super().handle_endtag(tag)
        if tag == "body" and self.body_end is None:
            self.body_end = self.getpos()

    def handle_data(self, data: str) -> None:
        if self.read_text:
            super().handle_data(data)


def _pixel(settings: Settings, delivery_key: str) -> str:
    src = escape(open_pixel_url(settings, delivery_key=delivery_key), quote=True)
    return (f'<img src="{src}" width="1" height="1" alt="" '
            'style="display:block;width:1px;height:1px;border:0;margin:0;padding:0">')


def instrument_html(settings: Settings, html: str, *, delivery_key: str) -> str:
    """`html` with every http(s) link turned into a signed click redirect and a 1×1 open pixel added
    (before </body>, or at the end of a fragment)."""
    return _instrument(settings, html, delivery_key=delivery_key, read_text=False)[0]


def instrument_html_and_text(settings: Settings, html: str, *, delivery_key: str) -> tuple[str, str]:
    """instrument_html, and the plain text of `html` as hub.html.html_to_text reads it
    with links, from the same parse (a tracked link's address in the text is its click redirect)."""
    return _instrument(settings, html, delivery_key=delivery_key, read_text=True)


def _instrument(settings: Settings, html: str, *, delivery_key: str, read_text: bool) -> tuple[str, str]:
    if not delivery_key:
        raise ValueError("delivery_key is required")
    finder = _LinkFinder(settings, delivery_key, read_text=read_text)
    finder.feed(html)
    finder.close()
    # Where each line starts (html.parser counts lines by "\n"), to turn its (line, column) into offsets.
    line_starts = list(accumulate((len(line) + 1 for line in html.split("\n")), initial=0))

    def offset(pos: tuple[int, int]) -> int:
        return line_starts[pos[0] - 1] + pos[1]

    edits = [(offset(pos), length, text) for pos, length, text in finder.edits]
    pixel_at = offset(finder.body_end) if finder.body_end is not None else len(html)
    edits.append((pixel_at, 0, _pixel(settings, delivery_key)))
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
