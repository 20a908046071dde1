"""Segments select by the contact's account: its fields, key flag, profit band (kept on the account
row by keyaccounts.figures) and temperature (by the watch); the builder round-trips the condition;
bad conditions are clear errors."""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from campaigns.segments import builder
from campaigns.segments.compiler import count_contacts, iter_contact_ids
from campaigns.segments.definition import InvalidDefinition, parse_definition
from hub.accounts import create_account
from hub.auth import SYSTEM
from hub.contacts import create_contact
from hub.ingest import InboundEvent, ingest
from hub.models import Account
from keyaccounts.figures import band_of, refresh_figures
from keyaccounts.profit import Rates

NOW = datetime(2026, 6, 30, 12, tzinfo=timezone.utc)


@pytest.fixture
def accounts(hub, frozen_clock):
    """Five accounts of one contact each (four with sales, one without) and a contact with none."""
    frozen_clock.current = NOW
    ids: dict[str, int] = {}
    with hub.session() as s, s.begin():
        for name, is_key, attrs in (("Альфа", True, {"city": "Москва"}), ("Бета", False, {"city": "Казань"}),
                                    ("Гамма", True, {}), ("Дельта", False, {}), ("Эпсилон", False, {})):
            account = create_account(s, actor=SYSTEM, name=f"ООО {name}", is_key=is_key, attributes=attrs,
                                     kind="household" if name == "Дельта" else "company")
            ids[name] = create_contact(s, actor=SYSTEM, region="RU", display_name=f"{name} закупщик",
                                       account_id=account.id).id
        ids["alone"] = create_contact(s, actor=SYSTEM, region="RU", display_name="Сам по себе").id
    for name, amount in (("Альфа", 100_000), ("Бета", 40_000), ("Гамма", 1_000), ("Дельта", 20_000)):
        ingest(hub, InboundEvent(channel="commerce", kind="order.completed", direction="in", contact_id=ids[name],
                                 external_id=f"o-{name}", occurred_at=datetime(2026, 6, 1, tzinfo=timezone.utc),
                                 data={"source": "shop", "order": {"order_id": name, "amount": str(amount),
                                                                   "currency": "RUB"}}))
    # Гамма's small margin (250) is eaten by an hour-long call (1200): it loses money.
    ingest(hub, InboundEvent(channel="phone", kind="call", direction="in", contact_id=ids["Гамма"], external_id="c1",
                             occurred_at=datetime(2026, 6, 2, tzinfo=timezone.utc), data={"talk_seconds": 3600}))
    return ids


def _ids(hub, definition) -> set[int]:
    with hub.session(read_only=True) as s:
        return {i for batch in iter_contact_ids(s, definition, now=NOW) for i in batch}


def _where(*conditions) -> dict:
    return {"type": "and", "conditions": list(conditions)}


def test_bands_follow_the_ranking():
    assert [band_of(r, 1, p) for r, p in ((1, Decimal(5)), (2, Decimal(5)), (3, Decimal(0)), (4, Decimal(-1)))] == [
        "top", "profitable", "break_even", "loss"]


def test_segments_select_by_the_accounts_fields_flag_band_and_temperature(hub, accounts):
    written = refresh_figures(hub, rates=Rates(), period_days=365, key_share=0.2)
    assert written == 5
    with hub.session() as s, s.begin():
        s.get(Account, 1).temperature, s.get(Account, 3).temperature = 80, 30
    with hub.session(read_only=True) as s:
        bands = {a.name: (a.profit_band, a.profit) for a in s.query(Account)}
    # 6 in the base (5 accounts + none for the lone contact, who had no figures): the top 20% is 1.
    assert bands["ООО Альфа"] == ("top", Decimal("25000.00"))
    assert bands["ООО Бета"][0] == "profitable" and bands["ООО Гамма"] == ("loss", Decimal("-950.00"))
    assert bands["ООО Эпсилон"] == ("break_even", Decimal("0.00"))
    a = accounts
    assert _ids(hub, _where({"type": "account", "field": "is_key", "op": "eq", "value": True})) == {a["Альфа"], a["Гамма"]}
    assert _ids(hub, _where({"type": "account", "field": "profit_band", "op": "in", "value": ["top", "profitable"]})) == {
        a["Альфа"], a["Бета"], a["Дельта"]}
    assert _ids(hub, _where({"type": "account", "field": "profit_band", "op": "eq", "value": "loss"})) == {a["Гамма"]}
    assert _ids(hub, _where({"type": "account", "field": "temperature", "op": "lt", "value": 40})) == {a["Гамма"]}
    assert _ids(hub, _where({"type": "account", "field": "temperature", "op": "is_empty"})) == {
        a["Бета"], a["Дельта"], a["Эпсилон"]}
    assert _ids(hub, _where({"type": "account", "field": "any", "op": "is_empty"})) == {a["alone"]}
    assert _ids(hub, _where({"type": "account", "field": "name", "op": "contains", "value": "бет"})) == {a["Бета"]}
    assert _ids(hub, _where({"type": "account", "field": "kind", "op": "eq", "value": "household"})) == {a["Дельта"]}
    assert _ids(hub, _where({"type": "account", "field": "attribute", "key": "city", "op": "eq",
                             "value": "Москва"})) == {a["Альфа"]}
    # Key accounts that lose money: the brief's trap, as a campaign audience.
    trap = _where({"type": "account", "field": "is_key", "op": "eq", "value": True},
                  {"type": "account", "field": "profit_band", "op": "eq", "value": "loss"})
    with hub.session(read_only=True) as s:
        assert count_contacts(s, trap, now=NOW) == 1
    not_key = _where({"type": "not", "condition": {"type": "account", "field": "is_key", "op": "eq", "value": True}})
    assert a["alone"] in _ids(hub, not_key) and a["Альфа"] not in _ids(hub, not_key)


@pytest.mark.any_store
@pytest.mark.parametrize("condition", [
    {"type": "account", "field": "profit_band", "op": "eq", "value": "rich"},
    {"type": "account", "field": "temperature", "op": "lt", "value": 150},
    {"type": "account", "field": "temperature", "op": "contains", "value": 5},
    {"type": "account", "field": "is_key", "op": "eq", "value": "yes"},
    {"type": "account", "field": "attribute", "op": "eq", "value": "x"},
    {"type": "account", "field": "name", "op": "eq", "key": "city", "value": "x"},
    {"type": "account", "field": "any", "op": "is_set", "value": 1},
])
def test_bad_account_conditions_are_refused_clearly(condition):
    with pytest.raises(InvalidDefinition) as caught:
        parse_definition(_where(condition))
    assert caught.value.errors and all(e["message"] for e in caught.value.errors)


@pytest.mark.any_store
def test_the_builder_round_trips_an_account_condition():
    tz = ZoneInfo("Europe/Moscow")
    form = [("n:r:type", "and"), ("n:r.0:type", "account"), ("n:r.0:field", "profit_band"), ("n:r.0:op", "in"),
            ("n:r.0:value", "top, loss"), ("n:r.1:type", "account"), ("n:r.1:field", "temperature"),
            ("n:r.1:op", "lt"), ("n:r.1:value", "40"), ("n:r.2:type", "account"), ("n:r.2:field", "is_key"),
            ("n:r.2:op", "eq"), ("n:r.2:value", "true")]
    tree = builder.tree_from_form(form, tz=tz)
    definition = parse_definition(builder.definition_of(tree))
    assert definition.to_json()["conditions"] == [
        {"type": "account", "field": "profit_band", "op": "in", "value": ["top", "loss"]},
        {"type": "account", "field": "temperature", "op": "lt", "value": 40},
        {"type": "account", "field": "is_key", "op": "eq", "value": True}]


def test_the_builder_page_offers_account_conditions_and_previews_them(web, hub, accounts):
    from hub.models import Role
    from tests.web.conftest import ORIGIN, login

    refresh_figures(hub, rates=Rates(), period_days=365, key_share=0.2)
    csrf = login(web, hub, "m@example.com", role=Role.MARKETER, locale="ru")
    hx = {"Origin": ORIGIN, "HX-Request": "true", "X-CSRF-Token": csrf}
    band = {"n:r:type": "and", "n:r.0:type": "account", "n:r.0:field": "profit_band", "n:r.0:op": "eq",
            "n:r.0:value": "loss", "n:r.0:shape": "account:profit_band"}
    built = web.post("/segments/builder", data=band, headers=hx)
    assert built.status_code == 200 and 'name="n:r.0:field"' in built.text
    assert "Диапазон прибыли" in built.text and "в убытке" in built.text  # in the marketer's language
    preview = web.post("/segments/preview", data=band, headers=hx)
    assert 'data-count="1"' in preview.text and "Гамма закупщик" in preview.text
