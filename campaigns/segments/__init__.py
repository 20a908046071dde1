"""Segments: saved filters over contacts, compiled to SQL and streamed (see compiler.py)."""

from campaigns.segments import models  # noqa: F401  (registers the segment table)
from hub.extensions import NavEntry
from hub.web.i18n import N_

NAV = [NavEntry(N_("Segments"), "/segments", "campaigns:read", "filter")]  # "users" is the admin's Users

__all__ = ["NAV"]
