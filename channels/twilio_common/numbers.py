"""Which of a contact's phone numbers an agent's SMS or call goes to (shared by sms and phone)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.identities import normalize_phone
from hub.models import Identity, IdentityKind


class NumberRefused(ValueError):
    """The given number is not the contact's, or the contact has none; `field` is the form field to blame."""

    def __init__(self, message: str, *, field: str) -> None:
        super().__init__(message)
        self.field = field


def phone_numbers(session: Session, *, contact_id: int) -> list[str]:
    """The contact's phone numbers, primary first."""
    return list(session.scalars(
        select(Identity.value)
        .where(Identity.contact_id == contact_id, Identity.kind == IdentityKind.PHONE)
        .order_by(Identity.is_primary.desc(), Identity.id)
    ))


def choose_number(session: Session, *, contact_id: int, given: str | None, region: str) -> str:
    """The given number if it is the contact's (any notation), else the primary one.

    Raises InvalidIdentity for a number that cannot be read, NumberRefused otherwise."""
    numbers = phone_numbers(session, contact_id=contact_id)
    if given:
        number = normalize_phone(given, region)
        if number not in numbers:
            raise NumberRefused(f"{number} is not one of this contact's numbers; add it to the contact first",
                                field="to")
        return number
    if not numbers:
        raise NumberRefused("this contact has no phone number", field="contact_id")
    return numbers[0]
