"""A campaign template's HTML parsed once, its parse replayed for every contact.

A rendered HTML part is the template's own text with the contact's escaped values between
(`render_message(..., html_chunks=...)` gives the pieces: Markup for values, str for template text).
Its skeleton, the template text with a marker where each value goes, is parsed once with
html.parser and the events are kept; a message replays them with its values put back. The replay
is used only where it cannot differ from parsing the message itself:

- a marker may sit only inside text (not script or style) or inside a quoted attribute value,
  and not right after "<" (where a value's first letter would open a tag);
- a value may hold none of < > " ' (autoescaped values never do; a `|safe` value with markup
  sends the message through the full parse);
- text and attribute values are unescaped from the message's own raw text, as html.parser does.

Anything else (no plan, a value that does not qualify) falls back to parsing the message.
"""

from __future__ import annotations

import re
from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from html import unescape
from html.parser import HTMLParser, attrfind_tolerant, tagfind_tolerant  # type: ignore[attr-defined]
from itertools import accumulate
from typing import Any

from markupsafe import Markup

_OPEN, _CLOSE = "\ue000", "\ue001"
_MARKER = re.compile(f"{_OPEN}(\\d+){_CLOSE}")
_UNSAFE_VALUE = re.compile(f"[<>\"'{_OPEN}{_CLOSE}]")

Pieces = tuple[Any, ...]  # str for skeleton text, int for a value's index


@dataclass(frozen=True)
class Plan:
    """A skeleton's events: (kind, offset in the skeleton, how many markers come before, payload).
    Payloads: "start" (tag, attrs, raw tag text), "end" the tag, "data" the text, "other" None (a
    comment, a declaration); where a value goes, the raw text and attribute values are Pieces and
    a data payload is (Pieces,), unescaped once filled in."""

    events: list[tuple[str, int, int, Any]]
    marker_lengths: list[int]
    # What a caller derives from the plan once (campaigns.tracking.links: its links and text part).
    derived: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)


class _Recorder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.events: list[list[Any]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.events.append(["start", self.getpos(), (tag, attrs, self.get_starttag_text() or "")])

    def handle_endtag(self, tag: str) -> None:
        self.events.append(["end", self.getpos(), tag])

    def handle_data(self, data: str) -> None:
        self.events.append(["data", self.getpos(), (data, self.cdata_elem is not None)])

    def _other(self, *_: Any) -> None:
        self.events.append(["other", self.getpos(), None])

    handle_comment = handle_decl = handle_pi = unknown_decl = handle_entityref = handle_charref = _other


def skeleton(chunks: Sequence[str]) -> tuple[str, list[str]] | None:
    """The template text with a marker per value, and the values; None when a piece cannot be replayed."""
    parts, values = [], []
    for chunk in chunks:
        if isinstance(chunk, Markup):
            if _UNSAFE_VALUE.search(chunk):
                return None
            parts.append(f"{_OPEN}{len(values)}{_CLOSE}")
            values.append(str(chunk))
        elif _OPEN in chunk or _CLOSE in chunk:
            return None
        else:
            parts.append(chunk)
    return "".join(parts), values


def _split(text: str) -> Pieces:
    """`text` as skeleton text and value indexes."""
    pieces: list[Any] = []
    cursor = 0
    for m in _MARKER.finditer(text):
        pieces += [text[cursor:m.start()], int(m.group(1))]
        cursor = m.end()
    pieces.append(text[cursor:])
    return tuple(pieces)


def fill(pieces: Pieces, values: Sequence[str]) -> str:
    return "".join(values[p] if isinstance(p, int) else p for p in pieces)


def _raw_attrs(raw: str) -> list[tuple[str, str | None, bool]] | None:
    """A start tag's attributes as html.parser reads them, before unescaping: (name, value, quoted)."""
    m = tagfind_tolerant.match(raw, 1)
    if not m:
        return None
    k, out = m.end(), []
    while k < len(raw):
        m = attrfind_tolerant.match(raw, k)
        if not m:
            break
        name, rest, value = m.group(1, 2, 3)
        quoted = bool(rest) and value[:1] in ("'", '"') and value[:1] == value[-1:]
        out.append((name.lower(), (value[1:-1] if quoted else value) if rest else None, quoted))
        k = m.end()
    return out


def _start_payload(tag: str, attrs: list[tuple[str, str | None]], raw: str) -> Any:
    if _OPEN not in raw:
        return (tag, attrs, raw)
    found = _raw_attrs(raw)
    if found is None or [(n, unescape(v) if v else v) for n, v, _ in found] != attrs:
        return None
    filled: list[tuple[str, Any]] = []
    for name, value, quoted in found:
        if _OPEN in name or (value and _OPEN in value and not quoted):
            return None
        filled.append((name, _split(value) if value and _OPEN in value else (unescape(value) if value else value)))
    # Every marker of the tag must be inside one of its quoted values.
    if raw.count(_OPEN) != sum(v.count(_OPEN) for _, v, _ in found if v):
        return None
    return (tag, filled, _split(raw))


@lru_cache(maxsize=64)
def plan(text: str) -> Plan | None:
    """The replayable parse of a skeleton; None when a marker sits where a value could change the parse."""
    if f"<{_OPEN}" in text:  # a value's first letter would open a tag there
        return None
    recorder = _Recorder()
    try:
        recorder.feed(text)
        recorder.close()
    except Exception:  # noqa: BLE001 - the full parse of each message decides what happens then
        return None
    line_starts = list(accumulate((len(line) + 1 for line in text.split("\n")), initial=0))
    offsets = [line_starts[pos[0] - 1] + pos[1] for _, pos, _ in recorder.events]
    markers = [(m.start(), m.end()) for m in _MARKER.finditer(text)]
    marker_starts = [start for start, _ in markers]
    # Where each event's text ends: where the next one starts (<br/> is a start and an end at one spot).
    ends, following = [0] * len(offsets), len(text)
    for i in range(len(offsets) - 1, -1, -1):
        ends[i] = following
        if i and offsets[i - 1] < offsets[i]:
            following = offsets[i]
    events: list[tuple[str, int, int, Any]] = []
    for i, (kind, _, payload) in enumerate(recorder.events):
        start = offsets[i]
        raw = text[start:ends[i]]
        if kind == "start":
            tag_text = payload[2]
            payload = _start_payload(*payload)
            if payload is None or _OPEN in raw[len(tag_text):]:
                return None
        elif kind == "end" and events and events[-1][0] == "start" and events[-1][1] == start:
            pass  # <br/>: its start tag was checked
        elif kind == "data" and _OPEN in raw:
            data, cdata = payload
            # Not script or style, no "<" (a lone one, or a broken tag read as text) and nothing html.parser skipped.
            if cdata or "<" in raw or unescape(raw) != data:
                return None
            payload = (_split(raw),)
        elif kind == "data":
            payload = payload[0]
        elif _OPEN in raw:  # in an end tag, a comment, a declaration
            return None
        events.append((kind, start, bisect_left(marker_starts, start), payload))
    if markers and (not offsets or markers[0][0] < offsets[0]):
        return None
    return Plan(events, [end - start for start, end in markers])


def shifts(the_plan: Plan, values: Sequence[str]) -> list[int]:
    """How far the filled-in HTML has moved from the skeleton after each marker (by markers before)."""
    return list(accumulate((len(v) - n for v, n in zip(values, the_plan.marker_lengths)), initial=0))


def start_tag(payload: Any, values: Sequence[str]) -> tuple[str, list[tuple[str, str | None]], str]:
    """A start event's (tag, attrs, raw tag text) with the values put back."""
    tag, attrs, raw = payload
    if isinstance(raw, tuple):
        attrs = [(n, unescape(fill(v, values)) if isinstance(v, tuple) else v) for n, v in attrs]
        raw = fill(raw, values)
    return tag, attrs, raw


def replay(the_plan: Plan, values: Sequence[str], handler: Any) -> None:
    """Call `handler.start(tag, attrs, raw, offset)`, `.end(tag, offset)` and `.data(text)` as a
    parse of the filled-in HTML would, offsets in the filled-in HTML."""
    shift = shifts(the_plan, values)
    for kind, offset, before, payload in the_plan.events:
        at = offset + shift[before]
        if kind == "start":
            handler.start(*start_tag(payload, values), at)
        elif kind == "end":
            handler.end(payload, at)
        elif kind == "data" and not isinstance(payload, tuple):
            handler.data(payload)
        elif kind == "data" and (text := fill(payload[0], values)):  # html.parser reports no empty text
            handler.data(unescape(text))
