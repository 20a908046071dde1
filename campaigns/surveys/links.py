"""The signed link of an invitation: which invitation, whose, of which survey, and its secret."""

from __future__ import annotations

from typing import TYPE_CHECKING

from hub.signing import BadLink, sign, unsign

if TYPE_CHECKING:
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


def url_for(settings: Settings, invitation: SurveyInvitation, *, score: int | None = None) -> str:
    """The absolute link a customer follows (`score` prefills the first NPS question)."""
    base = f"{settings.public_base_url.rstrip('/')}/s/{token_for(settings, invitation)}"
    return base if score is None else f"{base}?score={score}"
