"""Unsubscribe: signed one-click links (RFC 8058), a confirmation page link scanners cannot trigger,
and a preferences page per contact. Each channel words its own opt-out (hub.channel.MarketingContext
hands it the link).

What other packages call: `unsubscribe_url`, `preferences_url` (campaigns.unsubscribe.links) and the
public routes in `campaigns.unsubscribe.routes.router`.
"""

from campaigns.unsubscribe.links import preferences_url, unsubscribe_url

__all__ = ["preferences_url", "unsubscribe_url"]
