"""Meeting scheduling: meeting types, availability, public booking pages, invitations and reminders."""

from channels.meetings.channel import MeetingsChannel

__all__ = ["MeetingsChannel"]
