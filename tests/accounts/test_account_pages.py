"""Account pages without a browser: the list and its search, creating and editing an account (bad
input writes nothing), linking a contact from its edit page, and the account page's merged timeline."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from sqlalchemy import select

from hub.accounts import create_account
from hub.auth import SYSTEM
from hub.contacts import create_contact
from hub.ingest import InboundEvent, ingest
from hub.models import Account, AuditEntry, Contact
from tests.web.conftest import ORIGIN, login

HX = {"HX-Request": "true"}


def _post(web, token: str, url: str, data: dict):
    return web.post(url, data={**data, "csrf_token": token}, headers={"Origin": ORIGIN}, follow_redirects=False)


def _account(hub, name: str, **fields) -> int:
    with hub.session() as s, s.begin():
        return create_account(s, actor=SYSTEM, name=name, **fields).id


def _contact(hub, name: str, account_id: int | None = None) -> int:
    with hub.session() as s, s.begin():
        return create_contact(s, actor=SYSTEM, region="RU", display_name=name, account_id=account_id).id


FORM = {"name": "", "kind": "company", "owner_id": "", "deputy_id": "", "expected_profit": "", "cooperation_until": "",
        "fallback_plan": "", "interaction_notes": "", "attributes": ""}


def test_create_an_account_from_the_form_and_find_it(web, hub):
    token = login(web, hub)
    answer = _post(web, token, "/accounts/new", {**FORM, "name": "ООО Вектор", "is_key": "on",
                                                 "expected_profit": "1 200 000,50", "cooperation_until": "2027-06-30",
                                                 "attributes": "INN: 7701234567\ndomain: vector.ru",
                                                 "interaction_notes": "Только по почте"})
    assert answer.status_code == 303, answer.text
    page = web.get(answer.headers["location"])
    assert page.status_code == 200
    assert "ООО Вектор" in page.text and "7701234567" in page.text and "Key account" in page.text
    with hub.session(read_only=True) as s:
        account = s.scalars(select(Account)).one()
        assert str(account.expected_profit) == "1200000.50" and account.is_key
        assert account.attributes == {"INN": "7701234567", "domain": "vector.ru"}
    listing = web.get("/accounts", params={"q": "вектор"})
    assert f'href="/accounts/{account.id}"' in listing.text
    assert "ООО Вектор" not in web.get("/accounts", params={"q": "нет такого"}).text


def test_bad_form_input_is_shown_and_writes_nothing(web, hub):
    token = login(web, hub)
    for bad in ({"name": ""}, {"name": "X", "expected_profit": "много"}, {"name": "X", "cooperation_until": "завтра"},
                {"name": "X", "attributes": "no colon here"}, {"name": "X", "kind": "tribe"}):
        answer = _post(web, token, "/accounts/new", {**FORM, **bad})
        assert answer.status_code == 422, bad
        assert 'role="alert"' in answer.text
    with hub.session(read_only=True) as s:
        assert s.scalars(select(Account)).all() == []
    assert web.get("/accounts/999").status_code == 404
    assert web.get("/accounts", params={"cursor": "nonsense"}).status_code == 400


def test_link_a_contact_from_its_edit_page(web, hub):
    token = login(web, hub)
    aid = _account(hub, "Семья Ивановых", kind="household")
    cid = _contact(hub, "Ольга Иванова")
    form = web.get(f"/contacts/{cid}/edit").text
    assert f'<option value="{aid}">Семья Ивановых</option>' in form
    answer = _post(web, token, f"/contacts/{cid}/edit", {"display_name": "Ольга Иванова", "lifecycle_stage": "lead",
                                                         "account_id": str(aid)})
    assert answer.status_code == 303, answer.text
    with hub.session(read_only=True) as s:
        assert s.get(Contact, cid).account_id == aid
    assert f'href="/accounts/{aid}"' in web.get(f"/contacts/{cid}").text  # the card links to it
    bad = _post(web, token, f"/contacts/{cid}/edit", {"display_name": "Ольга Иванова", "lifecycle_stage": "lead",
                                                      "account_id": "424242"})
    assert bad.status_code == 422
    with hub.session(read_only=True) as s:
        assert s.get(Contact, cid).account_id == aid


def test_account_page_merges_its_contacts_timelines_in_pages(web, hub):
    login(web, hub)
    aid = _account(hub, "ООО Лес")
    first, second, outsider = _contact(hub, "Первый", aid), _contact(hub, "Вторая", aid), _contact(hub, "Чужой")
    start = datetime(2026, 2, 1, 9, tzinfo=timezone.utc)
    for i in range(60):  # 40 of them the account's: more than a page
        ingest(hub, InboundEvent(channel="note", kind="note", direction="internal",
                                 contact_id=(first, second, outsider)[i % 3], external_id=f"p{i}",
                                 text=f"заметка {i:02d}", occurred_at=start + timedelta(hours=i)))
    page = web.get(f"/accounts/{aid}")
    assert page.status_code == 200
    assert "заметка 59" not in page.text  # the outsider's (i % 3 == 2)
    assert "заметка 58" in page.text and "заметка 57" in page.text and "заметка 01" not in page.text
    assert f'href="/contacts/{first}"' in page.text and f'href="/contacts/{second}"' in page.text
    more = page.text.split('hx-get="/accounts/')[1].split('"')[0].replace("&amp;", "&")
    older = web.get(f"/accounts/{more}", headers=HX)
    assert older.status_code == 200 and "<html" not in older.text
    assert "заметка 01" in older.text and "Beginning of the timeline" in older.text
    assert "заметка 00" in older.text and "заметка 02" not in older.text  # the outsider's
    assert web.get(f"/accounts/{aid}/timeline", params={"cursor": "bad"}, headers=HX).status_code == 400


def test_edit_records_one_audit_entry_and_the_key_flag_separately(web, hub):
    token = login(web, hub)
    aid = _account(hub, "ООО Старт")
    answer = _post(web, token, f"/accounts/{aid}/edit", {**FORM, "name": "ООО Старт+", "is_key": "on"})
    assert answer.status_code == 303
    with hub.session(read_only=True) as s:
        actions = [e.action for e in s.scalars(select(AuditEntry).where(AuditEntry.entity == "account")
                                               .order_by(AuditEntry.id))]
    assert actions == ["account.create", "account.update", "account.key"]
    assert "flagged as key" in web.get(f"/accounts/{aid}").text
