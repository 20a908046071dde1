"""Tracking: a signed open pixel and click redirects per delivery, and the engagement they record on
the contact's timeline (`campaign.opened`, `campaign.clicked`).

What other packages call: `instrument_html` (campaigns.tracking.links) on a rendered email before it
is enqueued, and the public routes in `campaigns.tracking.routes.router`.
"""

from campaigns.tracking.links import click_url, instrument_html, open_pixel_url

__all__ = ["click_url", "instrument_html", "open_pixel_url"]
