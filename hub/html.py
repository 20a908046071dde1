"""Inbound HTML made safe to show (nh3, the Rust ammonia sanitizer), and HTML turned into text.

Nothing in sanitized mail loads without the agent's consent: scripts, event handlers, forms,
frames, <base>, <style>, <link> are removed; a style attribute keeps only layout and text properties,
and is dropped whole when anything in it could run or fetch (expression(), url(), behavior,
-moz-binding, CSS escapes or comments that could hide them). Every
remote image keeps its address only in `data-blocked-src`, which the UI swaps into `src` when the
agent asks to load images. `cid:` images (parts of the same message) stay.
"""

from __future__ import annotations

import re
from functools import lru_cache
from html.parser import HTMLParser

import nh3

_TAGS = (set(nh3.ALLOWED_TAGS) | {"font", "span", "div", "center", "tfoot"}) - {"map", "area"}
_ATTRIBUTES = {
    **{tag: set(attrs) for tag, attrs in nh3.ALLOWED_ATTRIBUTES.items()},
    "*": {"style", "dir", "lang", "title", "align", "valign", "width", "height", "bgcolor"},
    "img": {"src", "alt", "width", "height", "align", "border"},
    "font": {"color", "face", "size"},
    "table": {"border", "cellpadding", "cellspacing", "summary", "align", "width"},
    "td": {"colspan", "rowspan", "align", "valign", "width", "nowrap"},
    "th": {"colspan", "rowspan", "align", "valign", "width", "scope"},
    "a": {"href", "name"},
    "blockquote": {"cite"},
    "ol": {"start", "type"},
}
# Classes mail clients put on quoted history and signatures: kept so the UI can fold them.
_QUOTE_CLASSES = {"gmail_quote", "gmail_attr", "gmail_signature", "moz-cite-prefix", "moz-signature",
                  "yahoo_quoted", "OutlookMessageHeader", "protonmail_quote", "quoted"}
_ALLOWED_CLASSES = {tag: _QUOTE_CLASSES for tag in ("div", "blockquote", "span", "p")}
# Layout and text style only: nothing that can name a URL (background, background-image,
# list-style-image, border-image, content, behavior) is on the list.
_STYLE_PROPERTIES = {
    "color", "background-color", "font", "font-family", "font-size", "font-style", "font-weight",
    "text-align", "text-decoration", "text-indent", "text-transform", "line-height", "letter-spacing",
    "white-space", "vertical-align", "direction", "margin", "margin-top", "margin-right",
    "margin-bottom", "margin-left", "padding", "padding-top", "padding-right", "padding-bottom",
    "padding-left", "border", "border-top", "border-right", "border-bottom", "border-left",
    "border-color", "border-style", "border-width", "border-collapse", "border-spacing",
    "border-radius", "width", "height", "max-width", "min-width", "display",
}
_URL_SCHEMES = {"http", "https", "mailto", "tel", "cid"}
_DROP_WITH_CONTENT = {"script", "style", "title", "head", "noscript", "template", "iframe", "object",
                      "embed", "applet", "frameset", "frame", "noembed", "svg", "math", "xml"}
_REMOTE_SRC = re.compile(r'(<img\b[^>]*?\s)src="((?:https?:)?//[^"]*)"', re.IGNORECASE)


# Each declaration of an inline style is kept only if its functions are colours: expression() (old
# IE), url() (fetches, or runs javascript:), image-set(), var() and the like are dropped, as are
# behavior and -moz-binding. Backslash escapes and comments, which let "expr\\65ssion(" or "url/**/("
# slip past any plain match, drop the whole attribute.
_CSS_FUNCTION = re.compile(r"([a-z0-9_-]*)\s*\(", re.IGNORECASE)
_CSS_SAFE_FUNCTIONS = {"rgb", "rgba", "hsl", "hsla"}
_CSS_HOSTILE = re.compile(r"@import|javascript:|vbscript:|behavior|binding|expression|[<>]", re.IGNORECASE)
_CSS_OPAQUE = re.compile(r"\\|/\*|\*/|&#")


def _safe_declaration(declaration: str) -> bool:
    if _CSS_HOSTILE.search(declaration):
        return False
    return all(name.lower() in _CSS_SAFE_FUNCTIONS for name in _CSS_FUNCTION.findall(declaration))


def safe_style(value: str) -> str | None:
    """The inline style without declarations that could run script or fetch; None when none is left."""
    if _CSS_OPAQUE.search(value):
        return None
    kept = [d.strip() for d in value.split(";") if d.strip() and _safe_declaration(d)]
    return ";".join(kept) or None


def _filter_attribute(tag: str, attr: str, value: str) -> str | None:
    if tag == "blockquote" and attr == "type":
        return "cite" if value.lower() == "cite" else None
    if attr == "style":
        return safe_style(value)
    return value


def sanitize_html(html: str, *, block_remote_images: bool = True) -> str:
    """HTML that cannot run code, nor fetch anything until the agent consents.

    An agent's own outgoing HTML keeps its remote images (`block_remote_images=False`): the
    customer's mail client asks its own consent.
    """
    if not html or not html.strip():
        return ""
    cleaned = nh3.clean(
        html,
        tags=_TAGS,
        clean_content_tags=_DROP_WITH_CONTENT,
        attributes={**_ATTRIBUTES, "blockquote": _ATTRIBUTES["blockquote"] | {"type"}},
        attribute_filter=_filter_attribute,
        url_schemes=_URL_SCHEMES,
        url_relative="deny",
        allowed_classes=_ALLOWED_CLASSES,
        filter_style_properties=_STYLE_PROPERTIES,
        link_rel="noopener noreferrer nofollow",
        strip_comments=True,
    )
    # nh3's output is normalised (double-quoted attributes, `"` escaped inside values), so this
    # rename only ever touches a real src attribute of an img tag.
    if block_remote_images:
        cleaned = _REMOTE_SRC.sub(r'\1data-blocked-src="\2"', cleaned)
    return cleaned


_BLOCK = {"p", "div", "br", "tr", "li", "h1", "h2", "h3", "h4", "h5", "h6", "table", "blockquote",
          "pre", "hr", "ul", "ol", "dl", "dt", "dd", "section", "article", "header", "footer"}
_SKIP = {"script", "style", "head", "title", "noscript", "template", "svg"}


_LINK_SCHEMES = ("http://", "https://", "mailto:")
_SPACES = re.compile(r"[ \t\r\n\f\xa0]+")
_BLANK_LINES = re.compile(r"\n{3,}")


@lru_cache(maxsize=4096)
def _collapsed(data: str) -> str:
    """Runs of whitespace as one space. Cached: a campaign's messages are the same template text
    around each contact's values, so most of the pieces its text parts are read from repeat."""
    return _SPACES.sub(" ", data)


class TextExtractor(HTMLParser):
    """Collects readable text as it parses (campaigns' link tracking parses with it too: one pass).

    With `links=True` a link's address follows its words, "Shop now (https://…)", as a plain-text
    reader needs it to follow the link (or to unsubscribe); the address alone when the words are
    the address already. Only http(s) and mailto: addresses are written out.
    """

    def __init__(self, *, links: bool = False) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skipping = 0
        self.quote_depth = 0
        self.links = links
        self._pending_link: tuple[str, int] | None = None  # (address, where its words start in parts)

    def link_address(self, attrs: list[tuple[str, str | None]]) -> str | None:
        """The address to write after a link's words (subclasses may give another: a tracked one)."""
        href = (dict(attrs).get("href") or "").strip()
        return href if href.lower().startswith(_LINK_SCHEMES) and not any(c.isspace() for c in href) else None

    def _open_link(self, attrs: list[tuple[str, str | None]]) -> None:
        self._close_link()  # an <a> inside an <a> ends the first
        address = self.link_address(attrs) if self.links and not self.skipping else None
        self._pending_link = (address, len(self.parts)) if address else None

    def _close_link(self) -> None:
        if self._pending_link is None:
            return
        address, start = self._pending_link
        self._pending_link = None
        words = " ".join("".join(self.parts[start:]).split())
        shown = address[len("mailto:"):] if address.lower().startswith("mailto:") else address
        if shown not in words:
            TextExtractor.handle_data(self, f" ({shown})" if words else shown)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self._open_link(attrs)
        if tag in _SKIP:
            self.skipping += 1
        elif tag == "blockquote":
            self.quote_depth += 1
            self.parts.append("\n")
        elif tag == "li":
            self.parts.append("\n- ")
        elif tag in _BLOCK:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag == "a":
            self._close_link()
        if tag in _SKIP:
            self.skipping = max(0, self.skipping - 1)
        elif tag == "blockquote":
            self.quote_depth = max(0, self.quote_depth - 1)
            self.parts.append("\n")
        elif tag in _BLOCK and tag != "li":
            self.parts.append("\n")

    def text(self) -> str:
        """What was read so far, blocks on their own lines."""
        self._close_link()  # a link left open at the end of the document
        text = "\n".join(line.strip() for line in "".join(self.parts).splitlines())
        # The pattern has no literal prefix to search for, so re tries it at every position (~15 µs
        # on a campaign's 660-character text part): skipped when there is no run to fold.
        return (_BLANK_LINES.sub("\n\n", text) if "\n\n\n" in text else text).strip()

    def handle_data(self, data: str) -> None:
        if self.skipping:
            return
        text = _collapsed(data) if len(data) <= 512 else _SPACES.sub(" ", data)
        if self.quote_depth:
            text = text.replace("\n", "\n" + "> " * self.quote_depth)
            if not self.parts or self.parts[-1].endswith("\n"):
                text = "> " * self.quote_depth + text.lstrip()
        self.parts.append(text)


def html_to_text(html: str, *, links: bool = False) -> str:
    """Readable plain text from HTML (blocks on their own lines, quoted blocks prefixed with '>');
    with `links`, each link's address after its words (for the text part of a message we send)."""
    if not html:
        return ""
    parser = TextExtractor(links=links)
    try:
        parser.feed(html)
        parser.close()
    except Exception:  # noqa: BLE001 - html.parser gives up on some broken markup; keep what it read
        pass
    return parser.text()
