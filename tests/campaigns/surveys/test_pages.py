"""The marketers' pages through the app: build (with branching), preview, results, CSV, send."""

from __future__ import annotations

import csv
import io

from sqlalchemy import func, select

from campaigns.surveys.models import Survey, SurveyResponse
from hub.models import Role
from tests.campaigns.surveys.conftest import invite_now, make_contact, make_survey
from tests.web.conftest import ORIGIN, login, web  # noqa: F401  (the fixture)


def builder_form(csrf: str, **extra: str) -> dict[str, str]:
    form = {
        "csrf_token": csrf, "name": "NPS после доставки", "status": "active", "title_ru": "Как вам доставка?",
        "title_en": "How was the delivery?", "question_count": "3",
        "q0_key": "q1", "q0_kind": "nps", "q0_required": "1", "q0_text_ru": "Порекомендуете нас?",
        "q0_text_en": "Would you recommend us?",
        "q1_key": "q2", "q1_kind": "text", "q1_text_ru": "Что пошло не так?", "q1_text_en": "What went wrong?",
        "q1_show_if": "q1", "q1_show_max": "6",
        "q2_key": "q3", "q2_kind": "single", "q2_text_ru": "Откуда узнали?", "q2_text_en": "How did you hear of us?",
        "q2_options_ru": "Реклама\nДрузья", "q2_options_en": "Ads\nFriends",
        "trigger_kind": "order.completed", "delay_hours": "72", "channels": "email,sms", "reminder_days": "3",
        "expiry_days": "14", "cooldown_days": "30", "detractor_nps_max": "6", "detractor_csat_max": "2",
        "follow_up_user_id": "", "closes_at": "",
    }
    form.update(extra)
    return form


def count(hub) -> int:  # type: ignore[no-untyped-def]
    with hub.session(read_only=True) as s:
        return s.scalar(select(func.count()).select_from(Survey))


def test_a_marketer_builds_a_survey_with_a_branch(web, hub):
    csrf = login(web, hub, "marketer@example.com", role=Role.MARKETER)
    page = web.get("/surveys/new")
    assert page.status_code == 200 and "q1_show_if" in page.text
    added = web.post("/surveys/new", data=builder_form(csrf, op="add"), headers={"Origin": ORIGIN})
    assert added.status_code == 200 and 'name="question_count" value="4"' in added.text and count(hub) == 0
    saved = web.post("/surveys/new", data=builder_form(csrf, op="save"), headers={"Origin": ORIGIN},
                     follow_redirects=False)
    assert saved.status_code == 303, saved.text[:2000]
    with hub.session(read_only=True) as s:
        survey = s.scalars(select(Survey)).one()
    assert survey.delay_minutes == 72 * 60 and survey.trigger_kind == "order.completed"
    assert survey.questions[1]["show_if"] == {"question": "q1", "max": 6}
    assert [o["text"]["en"] for o in survey.questions[2]["options"]] == ["Ads", "Friends"]
    preview = web.get(f"/surveys/{survey.id}/preview?lang=en")
    assert preview.status_code == 200 and "Would you recommend us?" in preview.text and 'action="#"' in preview.text
    assert "Порекомендуете нас?" in web.get(f"/surveys/{survey.id}/preview?lang=ru").text
    edited = web.post(f"/surveys/{survey.id}", data=builder_form(csrf, op="save", q2_remove="1", status="closed"),
                      headers={"Origin": ORIGIN}, follow_redirects=False)
    assert edited.status_code == 303
    with hub.session(read_only=True) as s:
        survey = s.get(Survey, survey.id)
    assert [q["key"] for q in survey.questions] == ["q1", "q2"] and survey.status == "closed"


def test_an_invalid_survey_is_422_and_not_saved(web, hub):
    csrf = login(web, hub, "marketer@example.com", role=Role.MARKETER)
    for bad in ({"name": ""}, {"q2_options_ru": "Одна", "q2_options_en": ""}, {"q1_show_if": "q3"},
                {"expiry_days": "0"}, {"delay_hours": "-5"}, {"channels": "pigeon"}):
        answer = web.post("/surveys/new", data=builder_form(csrf, op="save", **bad), headers={"Origin": ORIGIN})
        assert answer.status_code == 422, bad
        assert 'role="alert"' in answer.text
    assert count(hub) == 0


def test_an_agent_cannot_reach_the_builder(web, hub):
    login(web, hub, "agent@example.com", role=Role.AGENT)
    assert web.get("/surveys/new").status_code == 403
    assert web.get("/surveys").status_code == 403


def test_results_page_and_csv(web, hub, email_ready):
    csrf = login(web, hub, "marketer@example.com", role=Role.MARKETER)
    survey = make_survey(hub, delay_minutes=0, cooldown_days=0)
    for n, score in enumerate((2, 9, 10)):
        _, token = invite_now(hub, survey, make_contact(hub, f"c{n}@example.com", name=f"Клиент {n}"),
                              cause=f"c{n}")
        web.post(f"/s/{token}", data={"q_nps": str(score), "q_csat": "4",
                                      "q_wrong": "=HYPERLINK(\"x\")" if score == 2 else ""})
    page = web.get(f"/surveys/{survey.id}/results")
    assert page.status_code == 200
    assert "<svg" in page.text and 'role="img"' in page.text
    assert "33.3" in page.text or "33,3" in page.text  # NPS: 2 promoters, 1 detractor of 3
    assert "HYPERLINK" in page.text
    exported = web.get(f"/surveys/{survey.id}/results.csv")
    assert exported.status_code == 200 and exported.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(exported.text.lstrip("\ufeff"))))
    assert sorted(r["nps"] for r in rows) == ["10", "2", "9"]
    assert any(r["wrong"].startswith("'=") for r in rows)  # no formula reaches a spreadsheet
    with hub.session(read_only=True) as s:
        assert s.scalar(select(func.count()).select_from(SurveyResponse)) == 3
    assert csrf


def test_send_to_a_segment_from_the_results_page_and_the_breakdown(web, hub, email_ready):
    from campaigns.segments.models import Segment
    from hub.models import AuditEntry

    csrf = login(web, hub, "marketer@example.com", role=Role.MARKETER)
    survey = make_survey(hub, delay_minutes=0, trigger_kind=None)
    russians = [make_contact(hub, f"ru{n}@example.com", name=f"Рус {n}", locale="ru").id for n in range(2)]
    make_contact(hub, "en@example.com", name="English", locale="en")
    with hub.session() as s, s.begin():
        segment = Segment(name="Говорят по-русски", definition={"type": "and", "conditions": [
            {"type": "field", "field": "locale", "op": "eq", "value": "ru"}]})
        s.add(segment)
        s.flush()
        segment_id = segment.id
    sent = web.post(f"/surveys/{survey.id}/send", data={"csrf_token": csrf, "segment_id": str(segment_id)},
                    headers={"Origin": ORIGIN}, follow_redirects=False)
    assert sent.status_code == 303 and "scheduled=2" in sent.headers["location"]
    with hub.session(read_only=True) as s:
        from campaigns.surveys.models import SurveyInvitation

        assert sorted(s.scalars(select(SurveyInvitation.contact_id))) == sorted(russians)
        assert s.scalars(select(AuditEntry.action).where(AuditEntry.action == "survey.sent")).one()
    assert web.post(f"/surveys/{survey.id}/send", data={"csrf_token": csrf, "segment_id": "0"},
                    headers={"Origin": ORIGIN}).status_code == 422
    assert web.post(f"/surveys/{survey.id}/send", data={"segment_id": str(segment_id)},
                    headers={"Origin": ORIGIN}).status_code == 403  # no CSRF token
    from campaigns.surveys.service import send_due

    send_due(hub)
    with hub.session(read_only=True) as s:
        from campaigns.surveys.links import token_for
        from campaigns.surveys.models import SurveyInvitation

        tokens = [token_for(hub.settings, i) for i in s.scalars(select(SurveyInvitation))]
    web.post(f"/s/{tokens[0]}", data={"q_nps": "10"})
    page = web.get(f"/surveys/{survey.id}/results")
    assert "Говорят по-русски" in page.text
