"""Telling the admin that the hub disabled an endpoint: a task for whoever added it (or for
everyone's open tasks), written in the same transaction as the disabling and its audit entry. The
webhooks page also shows a banner while any endpoint is disabled (webhooks.views)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hub.auth import SYSTEM
from hub.models import User
from hub.tasks import InvalidTask, create_task
from hub.web.i18n import N_, package_translations

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from hub.runtime import Hub
    from webhooks.models import WebhookEndpoint

TITLE = N_("Webhook endpoint disabled: %(url)s")
NOTES = N_("It kept failing for %(hours)s hours, so the hub stopped sending to it. %(reason)s\n\n"
           "Fix the receiver, then resume the endpoint and replay what it missed: %(link)s")


def endpoint_disabled(session: Session, hub: Hub, endpoint: WebhookEndpoint) -> Any:
    """The task that tells the admin (in the admin's language)."""
    owner = session.get(User, endpoint.created_by) if endpoint.created_by else None
    _ = package_translations((owner.locale if owner else None) or hub.settings.default_locale, "webhooks").gettext
    hours = hub.extensions["webhooks"].settings.disable_after_hours
    title = (_(TITLE) % {"url": endpoint.url})[:500]
    notes = _(NOTES) % {"hours": hours, "reason": endpoint.disabled_reason or "", "link": f"/admin/webhooks/{endpoint.id}"}
    try:
        return create_task(session, actor=SYSTEM, title=title, notes=notes, assignee_id=endpoint.created_by)
    except InvalidTask:  # the admin who added it has left: an unassigned task everyone sees
        return create_task(session, actor=SYSTEM, title=title, notes=notes)
