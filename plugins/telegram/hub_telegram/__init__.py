"""hub-telegram: a Telegram bot as a channel of the hub, shipped as a distribution of its own.

The hub finds it through entry points only (pyproject.toml beside this package): the adapter
(`hub.channels`), its tables' migrations (`hub.migrations`) and the local Bot API the demo starts
(`hub.stand_ins`); its templates/ and locale/ are found beside its class, as every plug-in's are.
"""

from hub_telegram import models  # noqa: F401  (its tables join the metadata when the adapter loads)
from hub_telegram.channel import TelegramChannel
from hub_telegram.settings import TelegramSettings

__all__ = ["TelegramChannel", "TelegramSettings"]
