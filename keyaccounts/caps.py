"""The cap on key accounts per manager (`max_key_accounts_per_manager`), enforced where accounts are
given to a manager: flagging an account key, changing a key account's owner (the core's account
rules, `Extension.account_rules`), and the handover. A refusal names the manager and the cap; the
same action with an explicit override goes through and is recorded on the audit log."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from hub import audit
from hub.accounts import OVERRIDE_ACTION, AccountRefused
from hub.auth import Principal
from hub.models import Account, User
from hub.web.i18n import N_

RULE = "keyaccounts.manager_cap"
OVER_CAP = N_("%(name)s would manage %(count)d key accounts; the cap is %(cap)d per manager. "
              "Choose another manager, or go over the cap (it is recorded on the audit log).")


def key_accounts_of(session: Session, *, user_id: int) -> int:
    """How many key accounts the user owns now (this transaction's changes included)."""
    return session.scalar(select(func.count()).select_from(Account)
                          .where(Account.owner_id == user_id, Account.is_key.is_(True))) or 0


def refusal(session: Session, *, user_id: int, count: int, cap: int) -> AccountRefused:
    user = session.get(User, user_id)
    name = (user.display_name or user.email) if user else f"#{user_id}"
    return AccountRefused(OVER_CAP, rule=RULE, name=name, count=count, cap=cap, user_id=user_id)


def cap_rule(cap: int) -> Callable[[Any, Any, frozenset[str]], None]:
    """The account rule: a key account given to a manager must leave them at most `cap` key accounts."""

    def rule(session: Session, account: Account, changed: frozenset[str]) -> None:
        if not account.is_key or account.owner_id is None or not changed & {"is_key", "owner_id"}:
            return
        count = key_accounts_of(session, user_id=account.owner_id)
        if count > cap:
            raise refusal(session, user_id=account.owner_id, count=count, cap=cap)

    return rule


def check_handover(session: Session, *, to_user_id: int, moving_keys: int, cap: int, override: bool,
                   actor: Principal, account_ids: list[int]) -> None:
    """Refuse a handover that puts the taker past the cap, or record the override on the audit log."""
    if not moving_keys:
        return
    count = key_accounts_of(session, user_id=to_user_id) + moving_keys
    if count <= cap:
        return
    refused = refusal(session, user_id=to_user_id, count=count, cap=cap)
    if not override:
        raise refused
    audit.record(session, actor=actor, action=OVERRIDE_ACTION, entity="user", entity_id=to_user_id,
                 changes={"rule": RULE, "refused": str(refused), "accounts": account_ids})
