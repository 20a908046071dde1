"""The hub: an omnichannel communication hub with one timeline per contact."""

__version__ = "0.1.0"
