"""Outbound webhooks: other systems learn what happens in the hub, signed, retried and replayable."""

from webhooks.extension import WebhooksExtension

__all__ = ["WebhooksExtension"]
