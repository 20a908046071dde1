"""No page template carries what the CSP (`script-src 'self'`) blocks: an inline event handler
(`onsubmit="…"`, `onclick="…"`) or a `javascript:` URL. Such a handler does nothing in the browser
but log a violation (the campaign page's cancel confirmation did), so a destructive action uses the
server's confirmation step instead (hub.web.confirm)."""

from __future__ import annotations

import re

from hub.plugin import plugin_folders
from hub.settings import HUB_TEMPLATES

HANDLER = re.compile(r"""<[^>]*\son[a-z]+\s*=\s*["']|javascript:""", re.IGNORECASE)


def test_no_template_has_an_inline_handler_or_a_javascript_url():
    folders = [HUB_TEMPLATES, *(folder / "templates" for folder in plugin_folders())]
    assert sum(1 for folder in folders for _ in folder.rglob("*.html")) > 100, "the pages were not found"
    found = []
    for folder in folders:
        for path in folder.resolve().rglob("*.html"):
            if "messages" in path.relative_to(folder.resolve()).parts[:1]:
                continue  # e-mail bodies are not pages under the CSP (and carry no scripts either way)
            for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
                if HANDLER.search(line):
                    found.append(f"{path}:{number}: {line.strip()[:120]}")
    assert not found, "\n".join(found)
