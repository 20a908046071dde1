"""Segment definitions compiled to SQL, on SQLite and PostgreSQL: every condition, groups, streaming."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from campaigns.segments.compiler import (
    InvalidDefinition,
    SegmentDefinition,
    contact_ids_query,
    count_contacts,
    iter_contact_ids,
    parse_definition,
    sample_contacts,
)
from hub.merge import merge_contacts
from hub.auth import SYSTEM
from tests.campaigns.segments.conftest import ago, consent, event, order, person

NOW = datetime(2026, 1, 15, 9, 0, tzinfo=timezone.utc)


def ids(hub, *conditions, kind="and") -> set[int]:
    definition = {"type": kind, "conditions": list(conditions)}
    with hub.session(read_only=True) as s:
        found = {cid for batch in iter_contact_ids(s, definition, now=NOW) for cid in batch}
        assert count_contacts(s, definition, now=NOW) == len(found)
    return found


@pytest.fixture
def crowd(hub, frozen_clock):
    """Anna (ru, vip, Moscow, email+phone), Boris (en, email), Vera (no locale, phone only)."""
    frozen_clock.current = ago(NOW, days=100)
    with hub.session() as s, s.begin():
        anna = person(s, "Анна Смирнова", email="anna@example.com", phone="+79161234567", locale="ru",
                      time_zone="Europe/Moscow", tags=["vip", "newsletter"],
                      attributes={"city": "Москва", "age": 34, "score": "7.5", "beta": True},
                      lifecycle_stage="customer")
        frozen_clock.current = ago(NOW, days=10)
        boris = person(s, "Boris Ivanov", email="boris@example.com", locale="en", tags=["newsletter"],
                       attributes={"city": "Kazan", "age": 19, "beta": False})
        vera = person(s, "Вера", phone="+79031112233", attributes={"nickname": "vv"})
        people = {"anna": anna.id, "boris": boris.id, "vera": vera.id}
    frozen_clock.current = NOW
    return people


def test_contact_fields(hub, crowd):
    a, b, v = crowd["anna"], crowd["boris"], crowd["vera"]
    assert ids(hub, {"type": "field", "field": "locale", "op": "eq", "value": "ru"}) == {a}
    assert ids(hub, {"type": "field", "field": "locale", "op": "ne", "value": "ru"}) == {b, v}
    assert ids(hub, {"type": "field", "field": "locale", "op": "is_empty"}) == {v}
    assert ids(hub, {"type": "field", "field": "locale", "op": "in", "value": ["ru", "en"]}) == {a, b}
    assert ids(hub, {"type": "field", "field": "display_name", "op": "contains", "value": "СМИРН"}) == {a}
    assert ids(hub, {"type": "field", "field": "time_zone", "op": "eq", "value": "Europe/Moscow"}) == {a}
    assert ids(hub, {"type": "field", "field": "lifecycle_stage", "op": "eq", "value": "customer"}) == {a}
    assert ids(hub, {"type": "field", "field": "created_at", "op": "within_days", "value": 30}) == {b, v}
    assert ids(hub, {"type": "field", "field": "created_at", "op": "older_than_days", "value": 30}) == {a}
    assert ids(hub, {"type": "field", "field": "created_at", "op": "before",
                     "value": "2025-12-01T00:00:00+03:00"}) == {a}
    assert ids(hub, {"type": "field", "field": "owner_id", "op": "is_empty"}) == {a, b, v}


def test_tags_and_attributes(hub, crowd):
    a, b, v = crowd["anna"], crowd["boris"], crowd["vera"]
    assert ids(hub, {"type": "tag", "op": "has", "tag": "vip"}) == {a}
    assert ids(hub, {"type": "tag", "op": "has_not", "tag": "newsletter"}) == {v}
    attr = lambda op, value=None, key="city": {"type": "attribute", "key": key, "op": op,  # noqa: E731
                                               **({} if value is None else {"value": value})}
    assert ids(hub, attr("eq", "Kazan")) == {b}
    assert ids(hub, attr("ne", "Kazan")) == {a, v}
    assert ids(hub, attr("contains", "моск")) == {a}
    assert ids(hub, attr("exists")) == {a, b}
    assert ids(hub, attr("not_exists")) == {v}
    assert ids(hub, attr("gte", 30, key="age")) == {a}
    assert ids(hub, attr("lt", 30, key="age")) == {b}
    assert ids(hub, attr("eq", 19, key="age")) == {b}
    assert ids(hub, attr("gt", 7, key="score")) == {a}  # a number written as text still compares
    assert ids(hub, attr("eq", True, key="beta")) == {a}
    assert ids(hub, attr("eq", False, key="beta")) == {b}


def test_consent_latest_record_wins_and_none_means_never_decided(hub, crowd):
    a, b, v = crowd["anna"], crowd["boris"], crowd["vera"]
    with hub.session() as s, s.begin():
        from hub.models import Contact
        consent(s, s.get(Contact, a), "granted", at=ago(NOW, days=5))
        consent(s, s.get(Contact, a), "withdrawn", at=ago(NOW, days=1))
        consent(s, s.get(Contact, b), "withdrawn", at=ago(NOW, days=5))
        consent(s, s.get(Contact, b), "granted", at=ago(NOW, days=2))
    c = lambda status: {"type": "consent", "channel": "email", "purpose": "marketing", "status": status}  # noqa: E731
    assert ids(hub, c("granted")) == {b}
    assert ids(hub, c("withdrawn")) == {a}
    assert ids(hub, c("none")) == {v}
    assert ids(hub, {"type": "consent", "channel": "sms", "status": "none"}) == {a, b, v}


def test_identities(hub, crowd):
    a, b, v = crowd["anna"], crowd["boris"], crowd["vera"]
    assert ids(hub, {"type": "identity", "kind": "email", "has": True}) == {a, b}
    assert ids(hub, {"type": "identity", "kind": "phone", "has": False}) == {b}


def test_activity_in_the_last_days(hub, crowd):
    a, b, v = crowd["anna"], crowd["boris"], crowd["vera"]
    with hub.session() as s, s.begin():
        from hub.models import Contact
        order(s, s.get(Contact, a), amount="100.00", at=ago(NOW, days=3))
        order(s, s.get(Contact, b), amount="100.00", at=ago(NOW, days=40))
        event(s, s.get(Contact, v), kind="form.submitted", channel="forms", at=ago(NOW, days=1))
        event(s, s.get(Contact, v), kind="form.submitted", channel="forms", at=ago(NOW, days=2))
    assert ids(hub, {"type": "activity", "kind": "order.completed", "days": 30}) == {a}
    assert ids(hub, {"type": "activity", "kind": "order.completed"}) == {a, b}
    assert ids(hub, {"type": "activity", "channel": "forms", "min_count": 2}) == {v}
    assert ids(hub, {"type": "activity", "channel": "forms", "min_count": 3}) == set()


def test_orders_count_total_recency_and_top_spenders(hub, crowd):
    a, b, v = crowd["anna"], crowd["boris"], crowd["vera"]
    with hub.session() as s, s.begin():
        from hub.models import Contact
        anna, boris = s.get(Contact, a), s.get(Contact, b)
        order(s, anna, amount="1000.00", at=ago(NOW, days=90), order_id="A1")
        order(s, anna, amount="1500.00", at=ago(NOW, days=89), order_id="A1")  # the same order re-reported
        order(s, anna, amount="500.50", at=ago(NOW, days=60), order_id="A2")
        order(s, anna, amount="200.00", at=ago(NOW, days=59), order_id="A2", kind="order.refunded")
        order(s, anna, amount="99.00", at=ago(NOW, days=10), order_id="A3", currency="EUR")
        order(s, boris, amount="300.00", at=ago(NOW, days=5), order_id="B1")
    o = lambda metric, op, value, **kw: {"type": "orders", "metric": metric, "op": op, "value": value, **kw}  # noqa: E731
    assert ids(hub, o("count", "gte", 3)) == {a}
    assert ids(hub, o("count", "eq", 1)) == {b}
    assert ids(hub, o("count", "eq", 0)) == {v}
    # Anna: 1500 (latest report of A1) + 500.50 - 200 refunded = 1800.50 RUB.
    assert ids(hub, o("total", "gt", "1800", currency="RUB")) == {a}
    assert ids(hub, o("total", "gt", "1800.50", currency="RUB")) == set()
    assert ids(hub, o("total", "lt", "500", currency="RUB")) == {b, v}
    assert ids(hub, o("total", "gte", "99", currency="EUR")) == {a}
    assert ids(hub, o("days_since_last", "lte", 30)) == {a, b}  # Anna's EUR order, 10 days ago
    assert ids(hub, o("days_since_last", "gt", 7)) == {a}
    assert ids(hub, {"type": "top_spenders", "percent": 50, "currency": "RUB"}) == {a}
    assert ids(hub, {"type": "top_spenders", "percent": 100, "currency": "RUB"}) == {a, b}


def test_survey_scores_use_the_latest_answer(hub, crowd):
    a, b, v = crowd["anna"], crowd["boris"], crowd["vera"]
    with hub.session() as s, s.begin():
        from hub.models import Contact
        event(s, s.get(Contact, a), kind="survey.answered", channel="surveys", at=ago(NOW, days=20), data={"nps": 3})
        event(s, s.get(Contact, a), kind="survey.answered", channel="surveys", at=ago(NOW, days=2), data={"nps": 9})
        event(s, s.get(Contact, b), kind="survey.answered", channel="surveys", at=ago(NOW, days=2), data={"nps": 5})
        event(s, s.get(Contact, v), kind="survey.answered", channel="surveys", at=ago(NOW, days=2), data={"csat": 2})
    assert ids(hub, {"type": "survey", "metric": "nps", "op": "lte", "value": 6}) == {b}
    assert ids(hub, {"type": "survey", "metric": "nps", "op": "gte", "value": 9}) == {a}
    assert ids(hub, {"type": "survey", "metric": "csat", "op": "lte", "value": 2}) == {v}


def test_campaign_engagement_and_replies(hub, crowd):
    a, b, v = crowd["anna"], crowd["boris"], crowd["vera"]
    with hub.session() as s, s.begin():
        from hub.models import Contact
        anna, boris, vera = s.get(Contact, a), s.get(Contact, b), s.get(Contact, v)

        def camp(contact, kind, cid, days):
            event(s, contact, kind=kind, channel="campaigns", direction="out", at=ago(NOW, days=days),
                  data={"campaign_id": cid}, thread_key=f"campaign:{cid}")

        for person_ in (anna, boris, vera):
            camp(person_, "campaign.message", 7, 10)
        camp(anna, "campaign.opened", 7, 9)
        camp(anna, "campaign.clicked", 7, 9)
        camp(boris, "campaign.opened", 7, 9)
        camp(vera, "campaign.unsubscribed", 7, 8)
        # Anna answers campaign 7 by email; Boris replied before his latest campaign (8) only.
        event(s, anna, kind="message", channel="email", at=ago(NOW, days=8))
        event(s, boris, kind="message", channel="email", at=ago(NOW, days=6))
        camp(boris, "campaign.message", 8, 5)
    c = lambda cid, ev: {"type": "campaign", "campaign_id": cid, "event": ev}  # noqa: E731
    assert ids(hub, c(7, "received")) == {a, b, v}
    assert ids(hub, c(7, "opened")) == {a, b}
    assert ids(hub, c(7, "opened_not_clicked")) == {b}
    assert ids(hub, c(7, "clicked")) == {a}
    assert ids(hub, c(7, "unsubscribed")) == {v}
    assert ids(hub, c(7, "replied")) == {a, b}
    assert ids(hub, c(8, "received")) == {b}
    assert ids(hub, {"type": "last_campaign", "replied": False}) == {b, v}
    assert ids(hub, {"type": "last_campaign", "replied": True}) == {a}


def test_and_or_not_groups(hub, crowd):
    a, b, v = crowd["anna"], crowd["boris"], crowd["vera"]
    ru = {"type": "field", "field": "locale", "op": "eq", "value": "ru"}
    en = {"type": "field", "field": "locale", "op": "eq", "value": "en"}
    vip = {"type": "tag", "tag": "vip"}
    assert ids(hub, ru, en, kind="or") == {a, b}
    assert ids(hub, ru, en) == set()
    assert ids(hub, {"type": "not", "condition": {"type": "or", "conditions": [ru, en]}}) == {v}
    assert ids(hub, {"type": "or", "conditions": [{"type": "and", "conditions": [ru, vip]}, en]}) == {a, b}
    assert ids(hub) == {a, b, v}  # an empty AND matches everyone
    assert ids(hub, kind="or") == set()  # an empty OR matches no one


def test_merged_contacts_are_left_out(hub, crowd):
    with hub.session() as s, s.begin():
        merge_contacts(s, survivor_id=crowd["anna"], merged_id=crowd["vera"], actor=SYSTEM)
    assert ids(hub) == {crowd["anna"], crowd["boris"]}


def test_streamed_in_keyset_batches_and_sampled(hub, frozen_clock):
    with hub.session() as s, s.begin():
        made = [person(s, f"Person {i}", tags=["batch"] if i % 2 else []).id for i in range(25)]
    definition = {"type": "and", "conditions": [{"type": "tag", "tag": "batch"}]}
    with hub.session(read_only=True) as s:
        batches = list(iter_contact_ids(s, definition, now=NOW, batch_size=5))
        assert [len(b) for b in iter_contact_ids(s, definition, now=NOW, batch_size=4)] == [4, 4, 4]
        sample = sample_contacts(s, definition, now=NOW, limit=3)
    assert [len(b) for b in batches] == [5, 5, 2]
    flat = [cid for batch in batches for cid in batch]
    assert flat == sorted(made[1::2]) and len(set(flat)) == 12
    assert [c.id for c in sample] == sorted(made[1::2], reverse=True)[:3]


def test_query_is_one_column_select_accepting_a_model_or_json():
    definition = SegmentDefinition(type="and", conditions=[])
    query = contact_ids_query(definition, now=NOW)
    assert len(query.selected_columns) == 1
    assert str(contact_ids_query({"type": "or", "conditions": []}, now=NOW)) != str(query)
    with pytest.raises(ValueError):
        contact_ids_query(definition, now=datetime(2026, 1, 1))


@pytest.mark.parametrize("bad, field", [
    ({"type": "xor", "conditions": []}, "type"),
    ({"conditions": [{"type": "field", "field": "locale", "op": "eq", "value": "de"}]}, "conditions.0"),
    ({"conditions": [{"type": "field", "field": "created_at", "op": "eq", "value": "x"}]}, "conditions.0"),
    ({"conditions": [{"type": "tag", "tag": ""}]}, "conditions.0.tag"),
    ({"conditions": [{"type": "tag", "tag": "vip", "colour": "red"}]}, "conditions.0.colour"),
    ({"conditions": [{"type": "attribute", "key": "a.b", "op": "exists"}]}, "conditions.0.key"),
    ({"conditions": [{"type": "attribute", "key": "age", "op": "gt", "value": "old"}]}, "conditions.0"),
    ({"conditions": [{"type": "orders", "metric": "total", "op": "gt", "value": 5}]}, "conditions.0"),
    ({"conditions": [{"type": "survey", "metric": "csat", "op": "eq", "value": 9}]}, "conditions.0"),
    ({"conditions": [{"type": "not", "condition": {"type": "nope"}}]}, "conditions.0.condition"),
])
def test_invalid_definitions_are_refused_naming_the_field(bad, field):
    with pytest.raises(InvalidDefinition) as caught:
        parse_definition(bad)
    assert caught.value.errors[0]["field"] == field, caught.value.errors


def test_depth_and_size_are_bounded():
    deep: dict = {"type": "tag", "tag": "x"}
    for _ in range(7):
        deep = {"type": "not", "condition": deep}
    with pytest.raises(InvalidDefinition, match="nested"):
        parse_definition({"conditions": [deep]})
    wide = {"conditions": [{"type": "or", "conditions": [{"type": "tag", "tag": "x"}] * 50}] * 3}
    with pytest.raises(InvalidDefinition, match="at most 100"):
        parse_definition(wide)
