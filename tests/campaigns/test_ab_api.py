"""A/B tests through the REST API and the pages: the fields on create and read, the results per
variant, the marketer's choice, and every bad case refused with a clear 422 (or 409) that changes
nothing; the editor without JavaScript, and the campaign page's results in both languages."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from sqlalchemy import func, select

from campaigns.models import Campaign, CampaignVariant
from tests.campaigns.ab_helpers import ab_campaign, by_variant, click
from tests.campaigns.helpers import add_contacts, email_set_up, make_segment, make_template, mark_sent, tick
from hub.auth import Role
from tests.campaigns.test_campaign_api import body, campaigns_in_store
from tests.web.conftest import ORIGIN, login, web  # noqa: F401 - fixture

H = {"Origin": ORIGIN}


def ab(**extra):  # type: ignore[no-untyped-def]
    return {"share_percent": 20, "metric": "click", "wait_minutes": 240,
            "variants": [{"subject": "Spring sale"}, {"subject": "Last days of the spring sale"}], **extra}


def test_an_ab_test_is_created_read_and_reported_per_variant(hub, client, api_key, frozen_clock):
    frozen_clock.current = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)
    email_set_up(hub)
    headers = api_key("campaigns:read", "campaigns:write")
    cid = ab_campaign(hub, 240, share=50, schedule=False)
    read = client.get(f"/api/v1/campaigns/{cid}", headers=headers).json()
    test = read["ab_test"]
    assert test["share_percent"] == 50 and test["metric"] == "click" and test["wait_minutes"] == 60
    assert [v["subject"] for v in test["variants"]] == ["Subject A", "Subject B"] and test["seed"] == 42
    assert test["outcome"] is None and test["winner"] is None
    early = client.post(f"/api/v1/campaigns/{cid}/ab-winner", json={"variant": "B"}, headers=headers)
    assert early.status_code == 409 and "not started" in early.json()["detail"]
    assert client.post(f"/api/v1/campaigns/{cid}/schedule", headers=headers).status_code == 200
    tick(hub)
    groups = by_variant(hub, cid)
    mark_sent(hub, cid)
    click(hub, cid, set(groups["A"][:20]) | set(groups["B"][:2]))
    results = client.get(f"/api/v1/campaigns/{cid}/results", headers=headers).json()["ab_test"]
    a, b = results["variants"]
    assert (a["variant"], a["recipients"], a["sent"], a["clicked"]) == ("A", len(groups["A"]), len(groups["A"]), 20)
    assert a["clicked_rate"] == pytest.approx(20 / len(groups["A"]))
    assert b["clicked"] == 2 and results["rest"]["recipients"] == len(groups[None]) and results["rest"]["sent"] == 0
    assert results["now"]["outcome"] == "winner" and results["now"]["leader"] == "A" and results["outcome"] is None
    bad = client.post(f"/api/v1/campaigns/{cid}/ab-winner", json={"variant": "E"}, headers=headers)
    assert bad.status_code == 422 and "A, B" in bad.json()["detail"]
    chosen = client.post(f"/api/v1/campaigns/{cid}/ab-winner", json={"variant": "b"}, headers=headers)
    assert chosen.status_code == 200 and chosen.json()["ab_test"]["winner"] == "B"
    assert chosen.json()["ab_test"]["winner_by"] == "marketer"
    again = client.post(f"/api/v1/campaigns/{cid}/ab-winner", json={"variant": "A"}, headers=headers)
    assert again.status_code == 409
    changed = client.put(f"/api/v1/campaigns/{cid}", json=body(make_segment(hub, name="x"), make_template(hub)),
                         headers=headers)
    assert changed.status_code == 409  # a test that started cannot change (nor be removed)


def test_bad_ab_tests_are_refused_with_clear_messages_and_write_nothing(hub, client, api_key):
    headers = api_key("campaigns:read", "campaigns:write")
    segment, template = make_segment(hub), make_template(hub)
    sms = make_template(hub, channel="sms", text="Hi")
    one = [{"subject": "Only one"}]
    five = [{"subject": f"S{i}"} for i in range(5)]
    cases = [
        (ab(variants=one), "two to four variants; this one has 1"),
        (ab(variants=five), "two to four variants; this one has 5"),
        (ab(share_percent=2), "between 5% and 95%"),
        (ab(share_percent=100), "between 5% and 95%"),
        (ab(metric="bounce"), "metric"),
        (ab(wait_minutes=10), "between 1 hour and 30 days"),
        (ab(wait_minutes=60 * 24 * 31), "between 1 hour and 30 days"),
        (ab(variants=[{"subject": "Same"}, {"subject": "Same"}]), "Variant B is the same as an earlier one"),
        (ab(variants=[{}, {"template_id": 424242}]), "There is no message template 424242"),
        (ab(variants=[{}, {"template_id": sms}]), "is for sms, not email"),
        (ab(variants=[{}, {"send_time": "25:00"}]), "time of day like 09:00"),
        (ab(variants=[{}, {"colour": "red"}]), "colour"),
    ]
    for test, words in cases:
        answer = client.post("/api/v1/campaigns", json=body(segment, template, ab_test=test), headers=headers)
        assert answer.status_code == 422, (words, answer.text)
        assert answer.headers["content-type"].startswith("application/problem+json")
        assert words in answer.text, (words, answer.text)
    recurring = client.post("/api/v1/campaigns", json=body(segment, template, ab_test=ab(), schedule_kind="cron",
                                                           cron="0 10 * * 1"), headers=headers)
    assert recurring.status_code == 422 and "one-off campaign" in recurring.json()["detail"]
    texts = client.post("/api/v1/campaigns", json={**body(segment, sms, ab_test=ab()), "channel": "sms"},
                        headers=headers)
    assert texts.status_code in (422,) and ("email only" in texts.text or "channel" in texts.text), texts.text
    assert campaigns_in_store(hub) == 0
    with hub.session(read_only=True) as s:
        assert s.scalar(select(func.count()).select_from(CampaignVariant)) == 0


def form(csrf: str, segment: int, template: int, **fields: str) -> dict[str, str]:
    return {"csrf_token": csrf, "name": "Spring", "channel": "email", "segment_id": str(segment),
            "schedule_kind": "now", "time_zone": "UTC", "step1_template_id": str(template),
            "step1_skip_if_replied": "on", **fields}


def test_the_editor_without_javascript_and_the_campaign_page_in_both_languages(hub, web, frozen_clock):
    frozen_clock.current = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)
    email_set_up(hub)
    csrf = login(web, hub, "mk@example.com", role=Role.MARKETER)
    add_contacts(hub, 20)
    segment, template = make_segment(hub), make_template(hub)
    page = web.get("/campaigns/new")
    assert page.status_code == 200 and 'name="ab_D_subject"' in page.text and "A/B" in page.text
    # Only B–D rows with something in them count: a test with only A is refused, in words.
    lonely = web.post("/campaigns/new", data=form(csrf, segment, template, ab_enabled="on", ab_A_subject="Hi"),
                      headers=H)
    assert lonely.status_code == 422 and "two to four variants; this one has 1" in lonely.text
    made = web.post("/campaigns/new", data=form(csrf, segment, template, ab_enabled="on", ab_share_percent="30",
                                                ab_metric="open", ab_wait_hours="2", ab_B_subject="Other subject",
                                                ab_D_send_time="18:00"), headers=H, follow_redirects=False)
    assert made.status_code == 303, made.text
    with hub.session(read_only=True) as s:
        c = s.scalars(select(Campaign)).one()
        variants = s.scalars(select(CampaignVariant).order_by(CampaignVariant.label)).all()
        assert (c.ab_share_percent, c.ab_metric, c.ab_wait_minutes) == (30, "open", 120) and c.ab_seed is not None
        assert [(v.label, v.subject, v.send_time) for v in variants] == [("A", None, None), ("B", "Other subject", None),
                                                                         ("C", None, "18:00")]
        cid = c.id
    edit = web.get(f"/campaigns/{cid}/edit")
    assert 'value="Other subject"' in edit.text and 'name="ab_enabled" id="f-ab-enabled" checked' in edit.text
    assert web.post(f"/campaigns/{cid}/schedule", data={"csrf_token": csrf}, headers=H,
                    follow_redirects=False).status_code == 303
    tick(hub)
    page = web.get(f"/campaigns/{cid}").text
    for word in ("A/B test", "Variant", "The rest", "The winner is picked at", "Too few recipients to tell"):
        assert word in page, word
    assert 'id="campaign-ab-table"' in page and f'action="/campaigns/{cid}/ab-winner"' in page
    chosen = web.post(f"/campaigns/{cid}/ab-winner", data={"csrf_token": csrf, "variant": "C"}, headers=H,
                      follow_redirects=False)
    assert chosen.status_code == 303
    assert "Variant C was chosen and goes to the rest of the audience." in web.get(f"/campaigns/{cid}").text
    login(web, hub, "ru@example.com", role=Role.MARKETER, locale="ru")
    page = web.get(f"/campaigns/{cid}").text
    for word in ("A/B-тест", "Вариант C выбран", "Остальные", "Мало получателей"):
        assert word in page, word
