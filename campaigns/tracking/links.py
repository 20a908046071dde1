"""Signed tracking links: a click redirect per (delivery, URL) and an open pixel per delivery.

A click token signs the delivery's idempotency key AND the exact target URL, so the redirect goes
only to the URL signed for that message: the hub is no open redirect, and a token lifted from one
email cannot be re-pointed. The tokens carry no address and no sequential id.

`instrument_html` rewrites a rendered email's links with Python's own HTML tokenizer
(html.parser): everything that is not an <a href> is copied through byte for byte, so the markup
the marketer wrote is never re-serialised.
"""

from __future__ import annotations

import re
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


# --- a skeleton's messages: links and text part without replaying every event -------------------
#
# A campaign's messages share their template's parse (replay.Plan). Their links are a few of its
# events; their text part is the template's text with the contact's values (and each link's address)
# put back, so it is read once per shape from a replay with a marker in place of every value, and
# filled in for each message. That holds only where a value cannot change what TextExtractor makes
# of the text around it, checked per message (else the message's events are replayed as before):
# - a value is one or more words with single spaces between and no "&" (nothing to collapse, strip,
#   split into lines, or unescape together with the template's text), and no text of the template
#   before a value ends in what could start a character reference;
# - no link's address is written out inside a blockquote, nor right before quoted text (a quoted
#   line's "> " depends on the piece before it, and the address may be left out);
# - a link's address is written out after its words unless the words already say it: decided per
#   message on the words filled in; the address has no white space.

_ADDRESS_OPEN, _ADDRESS_CLOSE, _LINK_OPEN, _LINK_CLOSE = "\ue002", "\ue003", "\ue004", "\ue005"
_OWN_MARKERS = re.compile("[\ue002-\ue005]")
_INERT_VALUE = re.compile(r"[^\s&]+(?: [^\s&]+)*")
_REFERENCE_START = re.compile(r"&[#\w]*\Z")
_NO_SPACE = re.compile(r"\S+")
_TEXT_PIECE = re.compile(f"{replay._OPEN}(\\d+){replay._CLOSE}|{_LINK_OPEN}(\\d+){_LINK_CLOSE}")


@dataclass
class _Shape:
    """What a plan's messages share: their <a> start events (offset, markers before, payload), the
    first </body> (offset, markers before), whether the text part can be filled in, and the text
    parts read so far, by which links have an address to write out (None: not fillable)."""

    anchors: list[tuple[int, int, Any]]
    body: tuple[int, int] | None
    fillable: bool
    texts: dict[tuple[bool, ...], tuple[tuple[Any, ...], list[tuple[int, replay.Pieces]]] | None]


def _shape(the_plan: replay.Plan) -> _Shape:
    found = the_plan.derived.get("links")
    if found is None:
        anchors: list[tuple[int, int, Any]] = []
        body, fillable = None, True
        for kind, offset, before, payload in the_plan.events:
            if kind == "start" and payload[0] == "a":
                anchors.append((offset, before, payload))
            elif kind == "end" and payload == "body" and body is None:
                body = (offset, before)
            elif kind == "data":
                pieces = payload[0] if isinstance(payload, tuple) else (payload,)
                if any(isinstance(p, str) and _OWN_MARKERS.search(p) for p in pieces) or any(
                        isinstance(p, str) and isinstance(q, int) and _REFERENCE_START.search(p)
                        for p, q in zip(pieces, pieces[1:])):
                    fillable = False
        found = the_plan.derived["links"] = _Shape(anchors, body, fillable, {})
    return found


class _TextReader(TextExtractor):
    """TextExtractor fed a replay with markers for values: the text part as pieces to fill in, each
    closed link's written-out address as a marker with the link's words kept beside it."""

    def __init__(self, linked: tuple[bool, ...]) -> None:
        super().__init__(links=True)
        self.linked = linked  # whether each <a> (in order) has an address to write out
        self.anchor = -1
        self.closed: list[tuple[int, replay.Pieces]] = []  # (which <a>, its words)
        self.fillable = True

    def start(self, tag: str, attrs: list[tuple[str, str | None]], raw: str, offset: int) -> None:
        if tag == "a":
            self.anchor += 1
        self.handle_starttag(tag, attrs)

    def end(self, tag: str, offset: int) -> None:
        self.handle_endtag(tag)

    def data(self, data: str) -> None:
        self.handle_data(data)

    def link_address(self, attrs: list[tuple[str, str | None]]) -> str | None:
        return f"{_ADDRESS_OPEN}{self.anchor}{_ADDRESS_CLOSE}" if self.linked[self.anchor] else None

    def handle_data(self, data: str) -> None:
        # A quoted line's "> " depends on the piece before: not a link's address, which may be left out.
        if self.quote_depth and not self.skipping and self.parts and self.parts[-1].endswith(_LINK_CLOSE):
            self.fillable = False
        super().handle_data(data)

    def _close_link(self) -> None:
        if self._pending_link is None:
            return
        address, start = self._pending_link
        self._pending_link = None
        if self.skipping:  # TextExtractor writes nothing then
            return
        if self.quote_depth:
            self.fillable = False
        self.closed.append((int(address[1:-1]), replay._split("".join(self.parts[start:]))))
        self.parts.append(f"{_LINK_OPEN}{len(self.closed) - 1}{_LINK_CLOSE}")


def _text_of(the_plan: replay.Plan, linked: tuple[bool, ...]) -> tuple[tuple[Any, ...], list[tuple[int, replay.Pieces]]] | None:
    """A plan's text part as pieces (text, a value's index, ("link", n)) and the closed links, or None."""
    reader = _TextReader(linked)
    replay.replay(the_plan, [f"{replay._OPEN}{i}{replay._CLOSE}" for i in range(len(the_plan.marker_lengths))], reader)
    reader._close_link()  # a link left open at the end, as text() closes it
    if not reader.fillable:
        return None
    text, pieces, cursor = "".join(reader.parts), [], 0
    for m in _TEXT_PIECE.finditer(text):
        pieces += [text[cursor:m.start()], int(m.group(1)) if m.group(1) is not None else ("link", int(m.group(2)))]
        cursor = m.end()
    pieces.append(text[cursor:])
    return tuple(pieces), reader.closed


class _Read:
    """What TextExtractor.text finishes: the text read, every link closed."""

    def __init__(self, text: str) -> None:
        self.parts = [text]

    def _close_link(self) -> None:
        pass


def _filled(finder: _LinkFinder, the_plan: replay.Plan, values: Sequence[str]) -> str | None:
    """Feed `finder` the message's links and </body>, and its text part filled in; None (and nothing
    to keep in `finder`) when the message does not qualify."""
    shape = _shape(the_plan)
    if not shape.fillable or not all(_INERT_VALUE.fullmatch(v) for v in values):
        return None
    shift = replay.shifts(the_plan, values)
    addresses: list[str | None] = []
    for offset, before, payload in shape.anchors:
        _tag, attrs, raw = replay.start_tag(payload, values)
        finder._link(attrs, raw, offset + shift[before])
        addresses.append(finder.link_address(attrs))
    if any(a is not None and not _NO_SPACE.fullmatch(a) for a in addresses):
        return None
    if shape.body is not None:
        finder.body_end = shape.body[0] + shift[shape.body[1]]
    linked = tuple(a is not None for a in addresses)
    if linked not in shape.texts:
        shape.texts[linked] = _text_of(the_plan, linked)
    text = shape.texts[linked]
    if text is None:
        return None
    pieces, closed = text
    out = []
    for piece in pieces:
        if isinstance(piece, str):
            out.append(piece)
        elif isinstance(piece, int):
            out.append(values[piece])
        else:
            anchor, words_pieces = closed[piece[1]]
            address = addresses[anchor]
            shown = address[len("mailto:"):] if address.lower().startswith("mailto:") else address  # type: ignore[union-attr]
            words = " ".join(replay.fill(words_pieces, values).split())
            if shown not in words:
                out.append(f" ({shown})" if words else shown)
    return TextExtractor.text(_Read("".join(out)))  # type: ignore[arg-type]


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
    plain = _filled(finder, the_plan, shape[1]) if the_plan is not None and read_text else None  # type: ignore[index]
    if plain is None and the_plan is not None:  # the message's own values: its events replayed
        finder = _LinkFinder(settings, delivery_key, read_text=read_text)
        replay.replay(the_plan, shape[1], finder)  # type: ignore[index]
    elif plain is None:
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
    if plain is None and read_text:
        plain = finder.text()
    return "".join(out), plain or ""


def instrumented(settings: Settings, content: dict[str, Any], *, delivery_key: str) -> dict[str, Any]:
    """An EmailContent dict with its HTML instrumented (text parts are left alone); a copy."""
    if not content.get("html"):
        return dict(content)
    return {**content, "html": instrument_html(settings, content["html"], delivery_key=delivery_key)}
