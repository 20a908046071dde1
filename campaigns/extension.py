"""What the hub loads from the `hub.extensions` entry point `campaigns`."""

from __future__ import annotations

from hub.extensions import Extension


class CampaignsExtension(Extension):
    name = "campaigns"
