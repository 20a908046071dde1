"""Campaigns: segments, message templates, scheduled, recurring and triggered mailings, tracking."""

from campaigns.extension import CampaignsExtension

__all__ = ["CampaignsExtension"]
