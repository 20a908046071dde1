"""Handing a key-account manager's accounts to another in one action, so a manager leaving changes
nothing: the accounts, their contacts the manager owned and the open tasks about those contacts move
to the new owner in one transaction, each account audited, and the new owner told by a task."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from hub import audit
from hub.auth import Principal
from hub.models import Account, Contact, Task, TaskStatus, User
from hub.tasks import create_task
from keyaccounts.caps import check_handover
from hub.web.i18n import N_, package_translations

NOTICE = N_("You now own %(num)d accounts handed over by %(name)s")


class HandoverRefused(ValueError):
    """The handover cannot happen as asked; `field` names the input at fault."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


@dataclass
class Handover:
    accounts: list[int] = field(default_factory=list)
    contacts: int = 0
    tasks: int = 0
    notice_task_id: int | None = None


def hand_over(session: Session, *, from_user_id: int, to_user_id: int, actor: Principal,
              default_locale: str = "ru", cap: int | None = None, override: bool = False) -> Handover:
    """Move every account `from_user_id` manages to `to_user_id` (in the caller's transaction).
    AccountRefused when the taker would hold more than `cap` key accounts, unless `override`."""
    if from_user_id == to_user_id:
        raise HandoverRefused("to_user_id", N_("Choose another manager to hand the accounts to."))
    giver, taker = session.get(User, from_user_id), session.get(User, to_user_id)
    if giver is None:
        raise HandoverRefused("from_user_id", N_("There is no such manager."))
    if taker is None or not taker.is_active:
        raise HandoverRefused("to_user_id", N_("The new manager must be an active user."))
    accounts = list(session.scalars(select(Account).where(Account.owner_id == from_user_id)
                                    .order_by(Account.id).with_for_update()))
    result = Handover(accounts=[a.id for a in accounts])  # type: ignore[misc]
    if not accounts:
        return result
    if cap is not None:
        check_handover(session, to_user_id=to_user_id, moving_keys=sum(1 for a in accounts if a.is_key), cap=cap,
                       override=override, actor=actor, account_ids=result.accounts)
    members = list(session.scalars(select(Contact.id).where(Contact.account_id.in_(result.accounts))))
    if members:
        result.contacts = session.execute(
            update(Contact).where(Contact.id.in_(members), Contact.owner_id == from_user_id)
            .values(owner_id=to_user_id)).rowcount or 0
        result.tasks = session.execute(
            update(Task).where(Task.contact_id.in_(members), Task.assignee_id == from_user_id,
                               Task.status == TaskStatus.OPEN).values(assignee_id=to_user_id)).rowcount or 0
    for account in accounts:
        account.owner_id = to_user_id
        if account.deputy_id == to_user_id:
            account.deputy_id = None  # the deputy became the owner
        audit.record(session, actor=actor, action="account.handover", entity="account", entity_id=account.id,
                     changes={"owner_id": [from_user_id, to_user_id]})
    _ = package_translations(taker.locale or default_locale, "keyaccounts").gettext
    notice = create_task(session, actor=actor, assignee_id=to_user_id,
                         title=(_(NOTICE) % {"num": len(accounts), "name": giver.display_name or giver.email})[:500],
                         notes="\n".join(f"/accounts/{a.id} {a.name}" for a in accounts))
    result.notice_task_id = notice.id
    session.flush()
    return result
