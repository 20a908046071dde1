"""The manager's cap on key accounts is enforced where accounts are given (flag, owner change,
handover) with a clear refusal naming the manager and the cap, and an explicit override that goes
on the audit log; a key account's own cooling thresholds change when it alerts."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from hub.accounts import create_account
from hub.auth import SYSTEM, create_user
from hub.models import Account, AuditEntry, Role
from keyaccounts.models import AccountThreshold
from keyaccounts.watch import Thresholds, run
from tests.accounts.test_temperature import key_account  # noqa: F401  (the fixture)
from tests.web.conftest import ORIGIN, csrf_of, login

CAP = 2


@pytest.fixture
def capped(hub):
    """Cap 2; "Анна" holds two key accounts already, "Борис" one key account and one ordinary."""
    ext = hub.extensions["keyaccounts"]
    ext.settings = ext.settings.model_copy(update={"max_key_accounts_per_manager": CAP})
    with hub.session() as s, s.begin():
        anna = create_user(s, email="anna@example.com", password="x" * 12, role=Role.AGENT, display_name="Анна")
        boris = create_user(s, email="boris@example.com", password="x" * 12, role=Role.AGENT, display_name="Борис")
        full = [create_account(s, actor=SYSTEM, name=f"Анны {i}", is_key=True, owner_id=anna.id).id for i in range(2)]
        b_key = create_account(s, actor=SYSTEM, name="Бориса ключевой", is_key=True, owner_id=boris.id).id
        b_plain = create_account(s, actor=SYSTEM, name="Бориса обычный", owner_id=boris.id).id
    return {"anna": anna.id, "boris": boris.id, "full": full, "b_key": b_key, "b_plain": b_plain}


def _count(hub, model, *where) -> int:
    with hub.session(read_only=True) as s:
        return s.scalar(select(func.count()).select_from(model).where(*where))


def _overrides(hub) -> int:
    return _count(hub, AuditEntry, AuditEntry.action == "account.override")


@pytest.fixture
def auth(api_key):
    return api_key("contacts:read", "contacts:write")


def test_the_api_refuses_a_key_account_past_the_cap_and_overrides_it_audited(client, auth, hub, capped):
    before = _count(hub, Account)
    answer = client.post("/api/v1/accounts", json={"name": "Третий", "is_key": True, "owner_id": capped["anna"]},
                         headers=auth)
    assert answer.status_code == 409 and answer.headers["content-type"].startswith("application/problem+json")
    problem = answer.json()
    assert "Анна" in problem["detail"] and "3 key accounts" in problem["detail"] and "cap is 2" in problem["detail"]
    assert problem["rule"] == "keyaccounts.manager_cap"
    assert _count(hub, Account) == before and _overrides(hub) == 0  # nothing written
    # Flagging an ordinary account of hers, or giving her a key account, is refused the same way.
    plain = client.post("/api/v1/accounts", json={"name": "Обычный", "owner_id": capped["anna"]}, headers=auth).json()
    assert client.patch(f"/api/v1/accounts/{plain['id']}", json={"is_key": True}, headers=auth).status_code == 409
    assert client.patch(f"/api/v1/accounts/{capped['b_key']}", json={"owner_id": capped["anna"]},
                        headers=auth).status_code == 409
    with hub.session(read_only=True) as s:
        assert s.get(Account, plain["id"]).is_key is False and s.get(Account, capped["b_key"]).owner_id == capped["boris"]
    # Editing what the rule is not about is never refused, even for a manager at the cap.
    assert client.patch(f"/api/v1/accounts/{capped['full'][0]}", json={"name": "Анны 0 (ООО)"},
                        headers=auth).status_code == 200
    forced = client.post("/api/v1/accounts?override=true", json={"name": "Третий", "is_key": True,
                                                                 "owner_id": capped["anna"]}, headers=auth)
    assert forced.status_code == 201 and _overrides(hub) == 1
    with hub.session(read_only=True) as s:
        entry = s.scalars(select(AuditEntry).where(AuditEntry.action == "account.override")).one()
        assert entry.entity_id == str(forced.json()["id"]) and entry.changes["rule"] == "keyaccounts.manager_cap"


def test_the_handover_respects_the_cap_unless_overridden(client, auth, hub, capped):
    body = {"from_user_id": capped["boris"], "to_user_id": capped["anna"]}
    refused = client.post("/api/v1/key-accounts/handover", json=body, headers=auth)
    assert refused.status_code == 409 and "Анна" in refused.json()["detail"] and "cap is 2" in refused.json()["detail"]
    assert _count(hub, Account, Account.owner_id == capped["boris"]) == 2  # nothing moved
    bad = client.post("/api/v1/key-accounts/handover", json={**body, "to_user_id": capped["boris"]}, headers=auth)
    assert bad.status_code == 422
    done = client.post("/api/v1/key-accounts/handover?override=true", json=body, headers=auth)
    assert done.status_code == 200 and sorted(done.json()["accounts"]) == sorted([capped["b_key"], capped["b_plain"]])
    assert _count(hub, Account, Account.owner_id == capped["anna"]) == 4 and _overrides(hub) == 1
    assert client.post("/api/v1/key-accounts/handover", json=body, headers=api_key_reader(client, hub)).status_code == 403


def api_key_reader(client, hub) -> dict[str, str]:
    from hub.auth import create_api_key

    with hub.session() as s, s.begin():
        _, plain = create_api_key(s, name="reader", scopes=["contacts:read"])
    return {"Authorization": f"Bearer {plain}"}


def test_pages_say_why_and_offer_the_override(web, hub, capped):
    token = login(web, hub, "lead@example.com", role=Role.ADMIN, locale="ru")
    plain = capped["b_plain"]
    with hub.session() as s, s.begin():
        s.get(Account, plain).owner_id = capped["anna"]
    asked = web.post(f"/key-accounts/accounts/{plain}/flag", data={"csrf_token": token, "back": "/key-accounts"},
                     headers={"Origin": ORIGIN})
    assert asked.status_code == 200 and 'id="confirm-form"' in asked.text
    assert "Анна" in asked.text and "не больше 2" in asked.text
    assert _count(hub, Account, Account.id == plain, Account.is_key.is_(True)) == 0
    done = web.post(f"/key-accounts/accounts/{plain}/flag",
                    data={"csrf_token": csrf_of(asked.text), "back": "/key-accounts", "confirmed": "yes"},
                    headers={"Origin": ORIGIN}, follow_redirects=False)
    assert done.status_code == 303 and _count(hub, Account, Account.id == plain, Account.is_key.is_(True)) == 1
    assert _overrides(hub) == 1
    form = {"csrf_token": token, "name": "Бориса ключевой", "kind": "company", "owner_id": str(capped["anna"]),
            "deputy_id": "", "is_key": "on", "expected_profit": "", "cooperation_until": "", "fallback_plan": "",
            "interaction_notes": "", "attributes": ""}
    refused = web.post(f"/accounts/{capped['b_key']}/edit", data=form, headers={"Origin": ORIGIN})
    assert refused.status_code == 409 and 'id="a-override"' in refused.text and "Анна" in refused.text
    saved = web.post(f"/accounts/{capped['b_key']}/edit", data={**form, "override": "on"}, headers={"Origin": ORIGIN},
                     follow_redirects=False)
    assert saved.status_code == 303 and _overrides(hub) == 2
    handover = web.post("/key-accounts/handover", data={"csrf_token": token, "from_user_id": str(capped["anna"]),
                                                        "to_user_id": str(capped["boris"])}, headers={"Origin": ORIGIN})
    assert handover.status_code == 409 and 'id="h-override"' in handover.text and "Борис" in handover.text


def test_an_accounts_own_threshold_decides_when_it_alerts(hub, key_account, frozen_clock, client, api_key):
    auth = api_key("contacts:read", "contacts:write")
    aid = key_account["account"]
    assert run(hub, thresholds=Thresholds()).opened == []  # warm against the setting's 40
    url = f"/api/v1/accounts/{aid}/thresholds"
    assert client.put(url, json={"cold_below": 150}, headers=auth).status_code == 422
    assert client.put(url, json={"cold_below": 99, "colder": 1}, headers=auth).status_code == 422
    assert client.put("/api/v1/accounts/4242/thresholds", json={}, headers=auth).status_code == 404
    assert _count(hub, AccountThreshold) == 0
    answer = client.put(url, json={"cold_below": 99}, headers=auth)
    assert answer.status_code == 200
    assert answer.json() == {"cold_below": 99, "sharp_drop": None, "effective_cold_below": 99, "effective_sharp_drop": 20}
    frozen_clock.advance(hours=2)
    opened = run(hub, thresholds=Thresholds())
    assert opened.opened == [aid]  # the same warm score is below this account's own threshold
    assert _count(hub, AuditEntry, AuditEntry.action == "account.thresholds") == 1
    cleared = client.put(url, json={"cold_below": None}, headers=auth).json()
    assert cleared["effective_cold_below"] == 40 and _count(hub, AccountThreshold) == 0
    assert client.get(url, headers=auth).json()["cold_below"] is None
