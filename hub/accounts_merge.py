"""Merging two accounts of the same company: the duplicate's contacts, figures and history move to
the survivor in one transaction, and the duplicate row goes.

- Contacts: every contact of the duplicate (merged duplicates of contacts included) joins the survivor;
  their timelines come with them, so the survivor's account timeline holds both.
- Fields: the survivor keeps its own; a field it left empty takes the duplicate's (owner, deputy,
  expected profit, term, fallback, notes); attributes are united, the survivor's value winning on a
  clash; a key duplicate makes the survivor key (an `account.key` entry, rules checked).
- Figures and history kept by extensions (temperature snapshots, cooling episodes, thresholds) move
  through `Extension.merge_accounts`, before the duplicate's row (and its cascades) is deleted.
- The audit log gets one `account.merge` entry on the survivor, with the duplicate's fields and its
  contacts, so what was merged stays readable after the row is gone; the duplicate's own entries
  stay under its id.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from hub import audit, clock
from hub.accounts import EDITABLE, enforce_rules, fields_of, get_account, set_key
from hub.auth import Principal
from hub.models import Account, Contact
from hub.translatable import N_, TranslatableError

MERGE_ACTION = "account.merge"
SAME = N_("An account cannot be merged into itself: choose another one.")


class AccountMergeRefused(TranslatableError):
    pass


@dataclass
class AccountMergePreview:
    survivor: Account
    duplicate: Account
    contacts: int  # how many contacts move
    fields_taken: dict[str, Any] = field(default_factory=dict)  # survivor's empty fields filled from the duplicate
    becomes_key: bool = False


def _filled(survivor: Account, duplicate: Account) -> dict[str, Any]:
    taken = {}
    for name in EDITABLE:
        if name in ("name", "kind", "attributes"):
            continue
        if getattr(survivor, name) in (None, "") and getattr(duplicate, name) not in (None, ""):
            taken[name] = getattr(duplicate, name)
    added = {k: v for k, v in duplicate.attributes.items() if k not in survivor.attributes}
    if added:
        taken["attributes"] = {**survivor.attributes, **added}
    return taken


def preview_account_merge(session: Session, *, survivor_id: int, duplicate_id: int) -> AccountMergePreview:
    """What a merge would do (writes nothing); AccountNotFound / AccountMergeRefused as merge does."""
    if survivor_id == duplicate_id:
        raise AccountMergeRefused(SAME)
    survivor, duplicate = get_account(session, survivor_id), get_account(session, duplicate_id)
    moving = len(list(session.scalars(select(Contact.id).where(Contact.account_id == duplicate_id))))
    return AccountMergePreview(survivor, duplicate, moving, _filled(survivor, duplicate),
                               duplicate.is_key and not survivor.is_key)


def merge_accounts(session: Session, *, survivor_id: int, duplicate_id: int, actor: Principal,
                   override: bool = False) -> AccountMergePreview:
    """Merge the duplicate into the survivor (in the caller's transaction); what was done."""
    if survivor_id == duplicate_id:
        raise AccountMergeRefused(SAME)
    # Lock both rows in id order, so two merges of the same pair cannot deadlock or interleave.
    first, second = sorted((survivor_id, duplicate_id))
    get_account(session, first, lock=True)
    get_account(session, second, lock=True)
    done = preview_account_merge(session, survivor_id=survivor_id, duplicate_id=duplicate_id)
    survivor, duplicate = done.survivor, done.duplicate
    record = {"duplicate": {"id": duplicate.id, **fields_of(duplicate), "is_key": duplicate.is_key},
              "contacts": list(session.scalars(select(Contact.id).where(Contact.account_id == duplicate.id)
                                               .order_by(Contact.id)))}
    session.execute(update(Contact).where(Contact.account_id == duplicate.id).values(account_id=survivor.id))
    before = fields_of(survivor)
    for name, value in done.fields_taken.items():
        setattr(survivor, name, value)
    survivor.updated_at = clock.now()
    hub = session.info.get("hub")
    for _name, extension in sorted((hub.extensions if hub else {}).items()):
        extension.merge_accounts(session, survivor_id=survivor.id, duplicate_id=duplicate.id)
    session.flush()
    audit.record(session, actor=actor, action=MERGE_ACTION, entity="account", entity_id=survivor.id,
                 changes={**record, "fields": audit.diff(before, fields_of(survivor))})
    session.delete(duplicate)
    session.flush()
    changed = {n for n in ("owner_id",) if n in done.fields_taken}
    if done.becomes_key:
        set_key(session, account=survivor, actor=actor, is_key=True, reason=f"merged with account {duplicate_id}",
                check=False)
        changed.add("is_key")
    enforce_rules(session, account=survivor, actor=actor, changed=changed, override=override)
    return done
