"""Email: SMTP out through the outbox, IMAP polling and an HTTP pipe in, threading, DSNs, suppression."""

from channels.email import models  # noqa: F401  (the tables join SQLModel.metadata with the adapter)
from channels.email.channel import EmailChannel

__all__ = ["EmailChannel"]
