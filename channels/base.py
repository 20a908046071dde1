"""Moved to the core: the channel contract is `hub.channel` (and `hub.plugin` for what every plug-in
shares). This name stays for plug-ins written against it; new code imports `hub.channel`."""

from hub.channel import (  # noqa: F401
    Capability,
    Channel,
    ChannelLimits,
    ChannelSettings,
    OutboundMessage,
    PermanentSendError,
    SendError,
    SendResult,
    SignatureError,
    StatusUpdate,
    TransientSendError,
)
from hub.plugin import NavEntry, PeriodicJob  # noqa: F401
