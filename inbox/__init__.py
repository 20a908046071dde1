"""The agents' inbox: conversations opened by inbound messages, assigned, answered in time."""

from inbox.extension import InboxExtension

__all__ = ["InboxExtension"]
