"""Signed unsubscribe and preferences links (what a channel makes of them is its own business:
hub.channel.Channel.decorate_marketing).

Tokens are hub.signing tokens (a purpose per kind of link) and never expire: an unsubscribe link in
a two-year-old email must still work. They carry ids only, never an address.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from hub.signing import BadLink, sign, unsign

if TYPE_CHECKING:
    from hub.settings import Settings

UNSUBSCRIBE = "unsubscribe"
PREFERENCES = "unsubscribe.preferences"


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
