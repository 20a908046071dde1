"""The signed link of an invitation: which invitation, whose, of which survey, and its secret."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from hub.signing import BadLink, sign, unsign

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from campaigns.surveys.models import SurveyInvitation
    from hub.settings import Settings

PURPOSE = "surveys.invitation"


def token_for(settings: Settings, invitation: SurveyInvitation) -> str:
    """The token of the invitation's link (stable: the same invitation always gets the same link)."""
    return sign(settings, PURPOSE, [invitation.id, invitation.contact_id, invitation.survey_id, invitation.nonce])


def read_token(settings: Settings, token: str) -> tuple[int, int, int, str]:
    """(invitation id, contact id, survey id, nonce) of a token this hub signed; BadLink otherwise."""
    payload = unsign(settings, PURPOSE, token)
    if not (isinstance(payload, list) and len(payload) == 4 and all(isinstance(p, int) for p in payload[:3])
            and isinstance(payload[3], str)):
        raise BadLink("unexpected payload")
    return payload[0], payload[1], payload[2], payload[3]


def url_for(settings: Settings, invitation: SurveyInvitation, *, score: int | None = None,
            base_url: str | None = None) -> str:
    """The absolute link a customer follows (`score` prefills the first NPS question); `base_url`
    is where this request reached the hub, for a link shown on a page."""
    base = f"{(base_url or settings.public_base_url).rstrip('/')}/s/{token_for(settings, invitation)}"
    return base if score is None else f"{base}?score={score}"


def sample_links(session: Session, settings: Settings, survey_ids: list[int], *, now: datetime,
                 base_url: str | None = None) -> dict[int, str]:
    """Per survey, the signed link of an open invitation of a demo contact (loaded by `hub demo load`),
    so the survey can be opened and answered as a customer would without touching a real one's."""
    from sqlalchemy import select

    from campaigns.surveys.models import InvitationStatus, SurveyInvitation

    if not survey_ids:
        return {}
    rows = session.scalars(select(SurveyInvitation).where(
        SurveyInvitation.survey_id.in_(survey_ids), SurveyInvitation.cause.startswith("demo:"),  # type: ignore[attr-defined]
        SurveyInvitation.status == InvitationStatus.SENT,
        (SurveyInvitation.expires_at.is_(None)) | (SurveyInvitation.expires_at > now),  # type: ignore[union-attr]
    ).order_by(SurveyInvitation.id.desc()))
    links: dict[int, str] = {}
    for invitation in rows:
        links.setdefault(invitation.survey_id, url_for(settings, invitation, base_url=base_url))
    return links
