"""Twilio's standard opt-out, opt-in and help keywords (pure: the local server uses them too)."""

from __future__ import annotations

from enum import StrEnum


class Keyword(StrEnum):
    OPT_OUT = "opt_out"
    OPT_IN = "opt_in"
    HELP = "help"


# Twilio's default keywords (REVOKE and OPTOUT joined in May 2025 for the FCC's rule). Twilio
# counts only a message that is exactly one of them ("STOP PLEASE" it passes on untouched), and
# confirms those itself; channels.sms.intent reads every other way of asking to stop.
KEYWORDS: dict[str, Keyword] = {
    **dict.fromkeys(("STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT"), Keyword.OPT_OUT),
    **dict.fromkeys(("START", "YES", "UNSTOP"), Keyword.OPT_IN),
    **dict.fromkeys(("HELP", "INFO"), Keyword.HELP),
}
# What a Messaging Service with Advanced Opt-Out reports in the OptOutType parameter.
OPT_OUT_TYPES = {"STOP": Keyword.OPT_OUT, "START": Keyword.OPT_IN, "HELP": Keyword.HELP}


def keyword(body: str | None, opt_out_type: str | None = None) -> Keyword | None:
    """The keyword an inbound body is, in any case and with surrounding spaces; None for other text."""
    if opt_out_type and opt_out_type.strip().upper() in OPT_OUT_TYPES:
        return OPT_OUT_TYPES[opt_out_type.strip().upper()]
    return KEYWORDS.get((body or "").strip().upper())
