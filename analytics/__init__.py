"""Analytics: the customer base at a glance (RFM, customer value, the four processes, channel activity)."""

from analytics.extension import AnalyticsExtension

__all__ = ["AnalyticsExtension"]
