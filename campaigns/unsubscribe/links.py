"""Signed unsubscribe and preferences links, the List-Unsubscribe fields, and SMS opt-out wording.

Tokens are hub.signing tokens (a purpose per kind of link) and never expire: an unsubscribe link in
a two-year-old email must still work. They carry ids only, never an address.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from hub.signing import BadLink, sign, unsign
from hub.web.i18n import N_, package_translations

if TYPE_CHECKING:
    from hub.settings import Settings

log = logging.getLogger("campaigns.unsubscribe")

UNSUBSCRIBE = "unsubscribe"
PREFERENCES = "unsubscribe.preferences"
OPT_OUT = N_("Reply STOP to opt out")


@dataclass(frozen=True)
class UnsubscribeLink:
    contact_id: int
    channel: str
    campaign_id: int | None


def _positive(value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise BadLink("the link is not valid")
    return value


def unsubscribe_token(settings: Settings, *, contact_id: int, channel: str, campaign_id: int | None = None) -> str:
    payload: dict[str, Any] = {"c": contact_id, "ch": channel}
    if campaign_id is not None:
        payload["k"] = campaign_id
    return sign(settings, UNSUBSCRIBE, payload)


def read_unsubscribe(settings: Settings, token: str) -> UnsubscribeLink:
    """What an unsubscribe token says; BadLink for anything this hub did not sign."""
    payload = unsign(settings, UNSUBSCRIBE, token)
    if not isinstance(payload, dict) or not isinstance(payload.get("ch"), str):
        raise BadLink("the link is not valid")
    campaign = payload.get("k")
    return UnsubscribeLink(_positive(payload.get("c")), payload["ch"],
                           _positive(campaign) if campaign is not None else None)


def read_preferences(settings: Settings, token: str) -> int:
    """The contact id a preferences token names; BadLink otherwise."""
    payload = unsign(settings, PREFERENCES, token)
    if not isinstance(payload, dict):
        raise BadLink("the link is not valid")
    return _positive(payload.get("c"))


def unsubscribe_url(settings: Settings, *, contact_id: int, channel: str, campaign_id: int | None = None) -> str:
    """The one-click unsubscribe URL for one contact and channel (campaign_id says which mailing it came from)."""
    return f"{settings.public_base_url}/u/{unsubscribe_token(settings, contact_id=contact_id, channel=channel, campaign_id=campaign_id)}"


def preferences_url(settings: Settings, *, contact_id: int) -> str:
    """The contact's preferences page (marketing per channel, language)."""
    return f"{settings.public_base_url}/preferences/{sign(settings, PREFERENCES, {'c': contact_id})}"


def email_unsubscribe_fields(settings: Settings, *, contact_id: int, campaign_id: int | None = None) -> dict[str, Any]:
    """`List-Unsubscribe` (HTTPS) and `List-Unsubscribe-Post` (RFC 8058) to merge into an EmailContent.

    Both headers need an https:// URL (RFC 8058; mailbox providers ignore anything else), so with a
    plain-http `public_base_url` (a development set-up) there are none, and a warning says why.
    """
    if not settings.public_base_url.startswith("https://"):
        log.warning("public_base_url %s is not https://: marketing email goes out without List-Unsubscribe",
                    settings.public_base_url)
        return {}
    return {
        "list_unsubscribe": unsubscribe_url(settings, contact_id=contact_id, channel="email", campaign_id=campaign_id),
        "list_unsubscribe_post": True,
    }


def sms_opt_out_text(locale: str | None) -> str:
    """The opt-out wording a marketing SMS ends with, in the contact's language (Russian by default)."""
    code = "en" if (locale or "").lower().startswith("en") else "ru"
    return package_translations(code, "unsubscribe").gettext(OPT_OUT)
