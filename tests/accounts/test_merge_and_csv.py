"""Account merge (contacts, figures and history move to the survivor, audited, confirm step) and
CSV import/export of accounts (bad rows reported by line, nothing half-imported, round trip)."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from sqlalchemy import func, select

from hub.accounts import create_account
from hub.auth import SYSTEM, create_user
from hub.contacts import create_contact
from hub.models import Account, AuditEntry, Contact, Role
from keyaccounts.models import AccountThreshold, CoolingEpisode, TemperatureSnapshot
from tests.web.conftest import ORIGIN, csrf_of, login

NOW = datetime(2026, 6, 30, 12, tzinfo=timezone.utc)


@pytest.fixture
def auth(api_key):
    return api_key("contacts:read", "contacts:write", "timeline:read")


@pytest.fixture
def pair(hub, frozen_clock):
    """«Кедр» (survivor, 1 contact) and «Кедр ООО» (duplicate: key, 2 contacts, an owner, history)."""
    frozen_clock.current = NOW
    with hub.session() as s, s.begin():
        kam = create_user(s, email="kam@example.com", password="x" * 12, role=Role.AGENT, display_name="KAM").id
        survivor = create_account(s, actor=SYSTEM, name="Кедр", attributes={"inn": "7700000001"}).id
        duplicate = create_account(s, actor=SYSTEM, name="Кедр ООО", is_key=True, owner_id=kam,
                                   attributes={"inn": "7700000002", "city": "Тверь"},
                                   fallback_plan="Позвонить директору").id
        people = [create_contact(s, actor=SYSTEM, region="RU", display_name=n, account_id=a).id
                  for n, a in (("Анна", survivor), ("Борис", duplicate), ("Вера", duplicate))]
        s.add(TemperatureSnapshot(account_id=duplicate, computed_at=NOW, score=35, signals={}, explanation=""))
        s.add(CoolingEpisode(account_id=duplicate, open_account_id=duplicate, reason="cold", started_at=NOW))
        s.add(AccountThreshold(account_id=duplicate, cold_below=30))
    return {"survivor": survivor, "duplicate": duplicate, "people": people, "kam": kam}


def test_merge_moves_contacts_figures_and_history_to_the_survivor(client, auth, hub, pair):
    s_id, d_id = pair["survivor"], pair["duplicate"]
    assert client.post(f"/api/v1/accounts/{s_id}/merge", json={"duplicate_id": s_id}, headers=auth).status_code == 422
    assert client.post(f"/api/v1/accounts/{s_id}/merge", json={"duplicate_id": 4242}, headers=auth).status_code == 404
    assert client.post(f"/api/v1/accounts/{s_id}/merge", json={"duplicate": d_id}, headers=auth).status_code == 422
    answer = client.post(f"/api/v1/accounts/{s_id}/merge", json={"duplicate_id": d_id}, headers=auth)
    assert answer.status_code == 200, answer.text
    merged = answer.json()
    assert merged["contacts"] == 3 and merged["is_key"] is True and merged["owner_id"] == pair["kam"]
    assert merged["attributes"] == {"inn": "7700000001", "city": "Тверь"}  # the survivor's value wins a clash
    assert merged["fallback_plan"] == "Позвонить директору" and merged["name"] == "Кедр"
    with hub.session(read_only=True) as s:
        assert s.get(Account, d_id) is None
        assert {c.account_id for c in s.scalars(select(Contact))} == {s_id}
        assert s.scalars(select(TemperatureSnapshot.account_id)).all() == [s_id]
        episode = s.scalars(select(CoolingEpisode)).one()
        assert (episode.account_id, episode.open_account_id) == (s_id, s_id)
        assert s.get(AccountThreshold, s_id).cold_below == 30
        entry = s.scalars(select(AuditEntry).where(AuditEntry.action == "account.merge")).one()
        assert entry.entity_id == str(s_id) and entry.changes["duplicate"]["name"] == "Кедр ООО"
        assert entry.changes["contacts"] == pair["people"][1:]
    timeline = client.get(f"/api/v1/accounts/{s_id}/contacts", headers=auth).json()
    assert sorted(c["display_name"] for c in timeline) == ["Анна", "Борис", "Вера"]


def test_the_merge_page_asks_first_and_the_confirmed_post_merges(web, hub, pair):
    token = login(web, hub, "lead@example.com", role=Role.ADMIN, locale="ru")
    s_id, d_id = pair["survivor"], pair["duplicate"]
    page = web.get(f"/accounts/{s_id}/merge")
    assert page.status_code == 200 and f'value="{d_id}"' in page.text and f'value="{s_id}"' not in page.text
    asked = web.post(f"/accounts/{s_id}/merge", data={"csrf_token": token, "duplicate_id": str(d_id)},
                     headers={"Origin": ORIGIN})
    assert asked.status_code == 200 and 'id="confirm-form"' in asked.text and "Кедр ООО" in asked.text
    with hub.session(read_only=True) as s:
        assert s.get(Account, d_id) is not None  # asking changes nothing
    bad = web.post(f"/accounts/{s_id}/merge", data={"csrf_token": token, "duplicate_id": ""}, headers={"Origin": ORIGIN})
    assert bad.status_code == 422
    done = web.post(f"/accounts/{s_id}/merge", data={"csrf_token": csrf_of(asked.text), "duplicate_id": str(d_id),
                                                      "confirmed": "yes"}, headers={"Origin": ORIGIN},
                    follow_redirects=False)
    assert done.status_code == 303 and done.headers["location"].endswith(f"/accounts/{s_id}")
    with hub.session(read_only=True) as s:
        assert s.get(Account, d_id) is None


def _upload(client, auth, text: str):
    return client.post("/api/v1/accounts/import", files={"file": ("accounts.csv", text.encode(), "text/csv")},
                       headers=auth)


def test_csv_import_reports_bad_rows_by_line_and_writes_nothing(client, auth, hub, pair):
    before = {a.id: a.name for a in _accounts(hub)}
    bad = ("name,kind,is_key,owner_email,expected_profit,cooperation_until,attr:inn\n"
           "Сосна,company,yes,kam@example.com,1500000,2027-12-31,7700000003\n"
           "Ель,factory,no,,,,\n"  # line 3: no such kind
           "Пихта,company,maybe,nobody@example.com,много,31.12.2027,\n"  # line 4: four errors
           ",company,no,,,,\n")  # line 5: no name
    answer = _upload(client, auth, bad)
    assert answer.status_code == 422
    problem = answer.json()
    lines = {(e["line"], e["column"]) for e in problem["errors"]}
    assert {(3, "kind"), (4, "is_key"), (4, "owner_email"), (4, "expected_profit"), (4, "cooperation_until"),
            (5, "name")} <= lines and problem["rejected"] == 3 and problem["rows"] == 4
    assert {a.id: a.name for a in _accounts(hub)} == before  # not even the good first row
    assert _upload(client, auth, "title\nСосна\n").status_code == 422  # unknown column
    empty_key = _upload(client, auth, "name,attr:\nСосна,x\n")  # read as contacts' headers are
    assert empty_key.status_code == 422 and "attr:city" in empty_key.text
    assert {a.id: a.name for a in _accounts(hub)} == before


def _accounts(hub) -> list[Account]:
    with hub.session(read_only=True) as s:
        return list(s.scalars(select(Account).order_by(Account.id)))


def test_csv_round_trip_creates_updates_and_exports(client, auth, hub, pair):
    good = ("name;is_key;owner_email;expected_profit;attr:inn\n"
            "Сосна;да;kam@example.com;1500000;7700000003\n"
            "Кедр;no;;;7700000009\n")  # the one account named «Кедр»: updated, not created
    answer = _upload(client, auth, good)
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"rows": 2, "created": 1, "updated": 1, "unchanged": 0}
    with hub.session(read_only=True) as s:
        pine = s.scalars(select(Account).where(Account.name == "Сосна")).one()
        assert pine.is_key and pine.owner_id == pair["kam"] and str(pine.expected_profit) == "1500000.00"
        assert s.get(Account, pair["survivor"]).attributes["inn"] == "7700000009"
        assert s.scalar(select(func.count()).select_from(AuditEntry).where(AuditEntry.action == "accounts.import")) == 1
    exported = client.get("/api/v1/accounts/export.csv", headers=auth)
    assert exported.status_code == 200 and exported.headers["content-type"].startswith("text/csv")
    lines = exported.text.splitlines()
    assert lines[0].startswith("id,name,kind,is_key,owner_email") and "attr:city" in lines[0]
    assert len(lines) == 1 + 3
    again = _upload(client, auth, exported.text)  # an export imports again, changing nothing
    assert again.status_code == 200 and again.json()["unchanged"] == 3


def test_the_import_page_lists_the_bad_lines(web, hub, pair):
    token = login(web, hub, "lead@example.com", role=Role.ADMIN, locale="ru")
    page = web.post("/accounts/import", data={"csrf_token": token},
                    files={"file": ("a.csv", "name,kind\nЕль,factory\n".encode(), "text/csv")},
                    headers={"Origin": ORIGIN})
    assert page.status_code == 422 and 'id="import-errors"' in page.text and "Строка 2" in page.text
    ok = web.post("/accounts/import", data={"csrf_token": token},
                  files={"file": ("a.csv", "name\nЕль\n".encode(), "text/csv")}, headers={"Origin": ORIGIN})
    assert ok.status_code == 200 and 'id="import-done"' in ok.text
    assert web.get("/accounts/export.csv").text.count("Ель") == 1
