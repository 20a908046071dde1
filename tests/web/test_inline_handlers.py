"""No page template carries what the CSP (`script-src 'self'`) blocks: an inline event handler
(`onsubmit="…"`, `onclick="…"`) or a `javascript:` URL. Such a handler does nothing in the browser
but log a violation (the campaign page's cancel confirmation did), so a destructive action uses the
server's confirmation step instead (hub.web.confirm)."""

from __future__ import annotations

import re

from hub.settings import PROJECT_ROOT

HANDLER = re.compile(r"""<[^>]*\son[a-z]+\s*=\s*["']|javascript:""", re.IGNORECASE)
# E-mail bodies are not pages under the CSP (and carry no scripts either way).
SKIP = (PROJECT_ROOT / "templates" / "messages",)


def test_no_template_has_an_inline_handler_or_a_javascript_url():
    folders = [PROJECT_ROOT / "templates", *PROJECT_ROOT.glob("channels/*/templates"), *PROJECT_ROOT.glob("campaigns/**/templates")]
    found = []
    for folder in folders:
        for path in folder.rglob("*.html"):
            if any(path.is_relative_to(skip) for skip in SKIP):
                continue
            for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
                if HANDLER.search(line):
                    found.append(f"{path.relative_to(PROJECT_ROOT)}:{number}: {line.strip()[:120]}")
    assert not found, "\n".join(found)
