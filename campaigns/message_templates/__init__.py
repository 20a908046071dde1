"""Message templates for any channel that sends to contacts, per language, rendered in a limited Jinja2 sandbox."""

from campaigns.message_templates import models  # noqa: F401  (registers the message_template table)
from hub.extensions import NavEntry
from hub.web.i18n import N_

NAV = [NavEntry(N_("Templates"), "/message-templates", "campaigns:read", "email")]

__all__ = ["NAV"]
