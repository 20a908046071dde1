"""Handover: all of a manager's accounts move to another in one audited action, with the contacts the
manager owned in them and the open tasks about those contacts; the new owner is told; bad input
writes nothing."""

from __future__ import annotations

from sqlalchemy import func, select

from hub.accounts import create_account
from hub.auth import SYSTEM, create_user
from hub.contacts import create_contact
from hub.models import Account, AuditEntry, Contact, Role, Task, TaskStatus, User
from hub.tasks import create_task
from tests.web.conftest import ORIGIN, login


def _world(hub) -> dict[str, int]:
    with hub.session() as s, s.begin():
        old = create_user(s, email="old@example.com", password="x" * 12, role=Role.AGENT, display_name="Старый")
        new = create_user(s, email="new@example.com", password="x" * 12, role=Role.AGENT, display_name="Новый")
        other = create_user(s, email="other@example.com", password="x" * 12, role=Role.AGENT, display_name="Другой")
        mine = [create_account(s, actor=SYSTEM, name=f"Счёт {i}", owner_id=old.id, deputy_id=new.id) for i in range(2)]
        theirs = create_account(s, actor=SYSTEM, name="Чужой", owner_id=other.id)
        owned = create_contact(s, actor=SYSTEM, region="RU", display_name="Свой", account_id=mine[0].id, owner_id=old.id)
        kept = create_contact(s, actor=SYSTEM, region="RU", display_name="Чужого", account_id=mine[1].id,
                              owner_id=other.id)
        create_task(s, actor=SYSTEM, title="Позвонить", contact_id=owned.id, assignee_id=old.id)
        done = create_task(s, actor=SYSTEM, title="Было", contact_id=owned.id, assignee_id=old.id)
        done.status = TaskStatus.DONE
        return {"old": old.id, "new": new.id, "other": other.id, "theirs": theirs.id, "owned": owned.id,
                "kept": kept.id, "mine": [a.id for a in mine]}


def test_hand_over_moves_everything_in_one_action_and_tells_the_new_owner(web, hub):
    token = login(web, hub, "lead@example.com", role=Role.ADMIN)
    w = _world(hub)
    answer = web.post("/key-accounts/handover", data={"from_user_id": str(w["old"]), "to_user_id": str(w["new"]),
                                                      "csrf_token": token}, headers={"Origin": ORIGIN})
    assert answer.status_code == 200 and 'id="handover-done"' in answer.text
    with hub.session(read_only=True) as s:
        owners = dict(s.execute(select(Account.id, Account.owner_id)).all())
        assert [owners[a] for a in w["mine"]] == [w["new"], w["new"]] and owners[w["theirs"]] == w["other"]
        assert all(a.deputy_id is None for a in s.scalars(select(Account).where(Account.id.in_(w["mine"]))))
        assert s.get(Contact, w["owned"]).owner_id == w["new"] and s.get(Contact, w["kept"]).owner_id == w["other"]
        tasks = {t.title: t for t in s.scalars(select(Task))}
        assert tasks["Позвонить"].assignee_id == w["new"] and tasks["Было"].assignee_id == w["old"]
        notice = [t for t in tasks.values() if t.assignee_id == w["new"] and t.contact_id is None]
        assert len(notice) == 1 and "Старый" in notice[0].title
        assert s.scalar(select(func.count()).select_from(AuditEntry).where(AuditEntry.action == "account.handover")) == 2


def test_bad_handovers_write_nothing(web, hub):
    token = login(web, hub, "lead@example.com", role=Role.ADMIN)
    w = _world(hub)
    with hub.session() as s, s.begin():
        s.get(User, w["other"]).is_active = False
    for data in ({"from_user_id": str(w["old"]), "to_user_id": str(w["old"])},
                 {"from_user_id": str(w["old"]), "to_user_id": str(w["other"])},  # inactive
                 {"from_user_id": "4242", "to_user_id": str(w["new"])},
                 {"from_user_id": "", "to_user_id": str(w["new"])}):
        answer = web.post("/key-accounts/handover", data={**data, "csrf_token": token}, headers={"Origin": ORIGIN})
        assert answer.status_code == 422, data
    with hub.session(read_only=True) as s:
        assert {a.owner_id for a in s.scalars(select(Account).where(Account.id.in_(w["mine"])))} == {w["old"]}
        assert s.scalar(select(func.count()).select_from(AuditEntry).where(AuditEntry.action == "account.handover")) == 0
    nothing = web.post("/key-accounts/handover", data={"from_user_id": str(w["new"]), "to_user_id": str(w["old"]),
                                                       "csrf_token": token}, headers={"Origin": ORIGIN})
    assert nothing.status_code == 200 and "no accounts to hand over" in nothing.text


def test_the_managers_page_sums_each_managers_load_and_marks_the_cap(web, hub):
    from datetime import timedelta

    from hub import clock
    from hub.ingest import InboundEvent, ingest

    login(web, hub, "lead@example.com", role=Role.ADMIN)
    w = _world(hub)
    with hub.session() as s, s.begin():
        for a in w["mine"]:
            s.get(Account, a).is_key = True
    ingest(hub, InboundEvent(channel="commerce", kind="order.completed", direction="in", contact_id=w["owned"],
                             external_id="o1", occurred_at=clock.now() - timedelta(days=3),
                             data={"source": "shop", "order": {"order_id": "1", "amount": "1000.00", "currency": "RUB",
                                                               "margin": "400.00"}}))
    hub.extensions["keyaccounts"].settings.max_key_accounts_per_manager = 1
    try:
        page = web.get("/key-accounts/managers")
    finally:
        hub.extensions["keyaccounts"].settings.max_key_accounts_per_manager = 10
    assert page.status_code == 200
    row = page.text.split(f'data-manager="{w["old"]}"')[1].split("</tr>")[0]
    # margin 400 − two tasks × 10 min × 20 ₽ = 0; 20 min of agent time; one open task
    assert "2 / 2" in row and "0.00" in row and ">0.3<" in row and "over the cap" in row and ">1<" in row
    other = page.text.split(f'data-manager="{w["other"]}"')[1].split("</tr>")[0]
    assert "0 / 1" in other and "over the cap" not in other
