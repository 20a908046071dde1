"""Security headers for the pages, and inbound HTML made inert for display.

Inbound email HTML passes three independent walls before an agent sees it: it is sanitized again
here with nh3 (whatever the adapter stored), rendered in an <iframe sandbox> with no script
permission and an opaque origin (srcdoc), and that document carries its own Content-Security-Policy
that allows no network at all, on top of the page's policy it inherits.
"""

from __future__ import annotations

import base64
import hashlib
from html import escape

import nh3
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# The only styling an email document gets: allowed by hash, so no other inline style applies.
EMAIL_FRAME_CSS = (
    "html{color-scheme:light}body{margin:0;padding:12px 14px;font:14px/1.5 system-ui,-apple-system,'Segoe UI',"
    "Roboto,sans-serif;color:#1f2933;background:#fff;overflow-wrap:anywhere}img{max-width:100%;height:auto}"
    "table{border-collapse:collapse;max-width:100%}td,th{padding:2px 6px;vertical-align:top}"
    "blockquote{margin:0 0 0 4px;padding-left:10px;border-left:3px solid #cbd2d9;color:#52606d}"
    "a{color:#1d4ed8}pre{white-space:pre-wrap}.blocked{color:#7b8794;font-size:12px}"
)
EMAIL_FRAME_CSS_HASH = "sha256-" + base64.b64encode(hashlib.sha256(EMAIL_FRAME_CSS.encode()).digest()).decode()
EMAIL_FRAME_CSP = f"default-src 'none'; img-src data:; style-src '{EMAIL_FRAME_CSS_HASH}'; form-action 'none'"

PAGE_CSP = "; ".join([
    "default-src 'none'",
    "script-src 'self'",
    f"style-src 'self' '{EMAIL_FRAME_CSS_HASH}'",
    "img-src 'self' data:",
    "font-src 'self'",
    "connect-src 'self'",
    "manifest-src 'self'",
    "form-action 'self'",
    "frame-src 'none'",
    "frame-ancestors 'none'",
    "base-uri 'none'",
    "object-src 'none'",
])
COMMON_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"x-frame-options", b"DENY"),
]

_EMAIL_TAGS = {
    "a", "abbr", "b", "blockquote", "br", "caption", "center", "cite", "code", "col", "colgroup", "dd", "del",
    "div", "dl", "dt", "em", "font", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i", "img", "ins", "kbd", "li",
    "mark", "ol", "p", "pre", "q", "s", "small", "span", "strike", "strong", "sub", "sup", "table", "tbody",
    "td", "tfoot", "th", "thead", "tr", "tt", "u", "ul",
}
_EMAIL_ATTRIBUTES = {
    "*": {"title", "lang", "dir"},
    "a": {"href"},
    "img": {"src", "alt", "width", "height"},
    "td": {"colspan", "rowspan", "align", "valign"},
    "th": {"colspan", "rowspan", "align", "valign"},
    "table": {"summary"},
    "ol": {"start"},
}


def _attribute_filter(tag: str, attribute: str, value: str) -> str | None:
    # Remote images are tracking pixels: only images embedded in the message itself are kept.
    if tag == "img" and attribute == "src" and not value.startswith("data:image/"):
        return None
    return value


def sanitize_email_html(html: str) -> str:
    """Email HTML with nothing that can run, navigate on its own or fetch from the network."""
    return nh3.clean(
        html,
        tags=_EMAIL_TAGS,
        attributes=_EMAIL_ATTRIBUTES,
        url_schemes={"http", "https", "mailto", "tel", "data"},
        link_rel="noopener noreferrer nofollow",
        attribute_filter=_attribute_filter,
        strip_comments=True,
    )


def email_document(html: str, *, lang: str = "") -> str:
    """A complete, inert document for an iframe's srcdoc."""
    lang_attr = f' lang="{escape(lang)}"' if lang else ""
    return (
        f'<!doctype html><html{lang_attr}><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{EMAIL_FRAME_CSP}">'
        f"<style>{EMAIL_FRAME_CSS}</style></head><body>{sanitize_email_html(html)}</body></html>"
    )


# Pages come from the workspace and from the packages that add pages to it (channels' and
# extensions' views); FastAPI's own API docs are left alone.
_PAGE_MODULES = ("hub.web", "campaigns.", "channels.", "keyaccounts.", "analytics.")


def _is_page(scope: Scope) -> bool:
    endpoint = scope.get("endpoint")
    module = getattr(endpoint, "__module__", "") or ""
    return module.startswith(_PAGE_MODULES) or scope.get("path", "").startswith("/static/")


class SecurityHeaders:
    """Adds the common headers to every response, and the pages' CSP to the workspace's pages."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                headers += [(name, value) for name, value in COMMON_HEADERS if name not in present]
                if _is_page(scope) and b"content-security-policy" not in present:
                    headers.append((b"content-security-policy", PAGE_CSP.encode()))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, with_headers)
