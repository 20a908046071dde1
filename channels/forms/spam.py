"""Keeping bots out: a honeypot field, a minimum fill time from a signed render stamp, and a
per-address rate limit kept in the database (so it holds across every API process).

A bot caught by the honeypot or the fill time gets the same answer a person gets, and nothing is
stored: telling it why would teach it to adapt. Only the rate limit answers differently (429), because
a person who hits it should know to wait.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from hub import clock
from hub.signing import BadLink, sign, unsign

from channels.forms.models import FormHit

if TYPE_CHECKING:
    from hub.settings import Settings

# The field a person never sees (hidden with CSS, out of the tab order); bots fill every input.
HONEYPOT = "_hp"
TOKEN = "_token"
PURPOSE = "forms.render"
# A stamp signed without a time: the static embed snippet cannot carry a fresh one (see docs/forms.md).
EMBED = "embed"


def render_token(settings: Settings, form_key: str) -> str:
    """A stamp for a page (or a script) about to show the form: which form, and when."""
    return sign(settings, PURPOSE, {"f": form_key, "t": int(clock.now().timestamp())})


def embed_token(settings: Settings, form_key: str) -> str:
    """The stamp baked into the static embed snippet: proves the form came from this hub, no time."""
    return sign(settings, PURPOSE, {"f": form_key, "t": EMBED})


@dataclass(frozen=True)
class Verdict:
    spam: bool
    reason: str = ""


def judge(settings: Settings, *, form_key: str, raw: dict[str, Any], min_fill_seconds: float,
          max_age_seconds: float) -> Verdict:
    """Whether a submission looks like a bot's (honeypot filled, stamp missing, forged or too fresh)."""
    trap = raw.get(HONEYPOT)
    if isinstance(trap, list):
        trap = "".join(str(t) for t in trap)
    if trap not in (None, "", False):
        return Verdict(True, "honeypot")
    token = raw.get(TOKEN)
    if not isinstance(token, str) or not token:
        return Verdict(True, "no stamp")
    try:
        payload = unsign(settings, PURPOSE, token)
    except BadLink:
        return Verdict(True, "bad stamp")
    if not isinstance(payload, dict) or payload.get("f") != form_key:
        return Verdict(True, "stamp of another form")
    stamped = payload.get("t")
    if stamped == EMBED:
        return Verdict(False)
    if not isinstance(stamped, int):
        return Verdict(True, "bad stamp")
    age = clock.now().timestamp() - stamped
    if age < min_fill_seconds:
        return Verdict(True, "too fast")
    if age > max_age_seconds:
        return Verdict(True, "stale stamp")
    return Verdict(False)


def rate_limited(session: Session, *, address: str, limit: int, window: timedelta) -> timedelta | None:
    """How long `address` must wait before submitting again, or None; counts this attempt when allowed."""
    now = clock.now()
    counted = (
        select(FormHit.occurred_at)
        .where(FormHit.address == address, FormHit.occurred_at > now - window)
        .order_by(FormHit.occurred_at.desc())
        .limit(limit)
    ).subquery()
    count, oldest = session.execute(select(func.count(), func.min(counted.c.occurred_at))).one()
    if count >= limit:
        return max(oldest + window - now, timedelta(seconds=1))
    session.add(FormHit(address=address[:64], occurred_at=now))
    # Forget what no window can count any more (cheap: the index is on occurred_at).
    session.execute(delete(FormHit).where(FormHit.occurred_at < now - max(window, timedelta(hours=1))))
    return None
