"""One confirmation step for every destructive action, served by the server.

A destructive button (cancel a campaign, delete a segment or template, revoke an API key, erase a
person) posts its form as usual. Without the `confirmed` field the route answers with a page that
asks the question and says what will be lost, whose own button posts the same action again with
`confirmed=yes`. No script and no inline handler is involved, so the step works under the CSP
(`script-src 'self'`) and with JavaScript off, and a stray click or a replayed form never destroys
anything on its own. Templates draw the first button with `confirm_button` in `_macros.html`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from starlette.responses import Response

from hub.web.pages import Agent, render

FIELD = "confirmed"
YES = "yes"


def confirmed(form: Mapping[str, Any]) -> bool:
    """Whether the form comes from the confirmation page (and not from the first click)."""
    return form.get(FIELD) == YES


def ask(request: Any, agent: Agent, *, action: str, title: str, question: str, button: str, back: str,
        detail: str | None = None, package: str | None = None, params: Mapping[str, Any] | None = None,
        fields: Mapping[str, str] | None = None) -> Response:
    """The confirmation page for posting `action`: msgids translated from `package`'s catalog (the
    hub's when None) with `params`; `back` is where "Keep it" leads; `fields` are posted along."""
    gettext = agent.package_gettext(package) if package else agent.gettext
    values = dict(params or {})

    def say(message: str | None) -> str | None:
        return gettext(message) % values if message and values else gettext(message) if message else None

    return render(request, agent, "confirm.html", action=action, title=say(title), question=say(question),
                  detail=say(detail), button=say(button), back=back, fields=dict(fields or {}),
                  confirm_field=FIELD, confirm_value=YES)


__all__ = ["FIELD", "YES", "ask", "confirmed"]
