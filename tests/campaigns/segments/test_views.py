"""The segment pages without a browser: list, builder edits, live preview, save, errors, roles."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from campaigns.segments.models import Segment
from hub.models import Role
from tests.campaigns.segments.conftest import person
from tests.web.conftest import ORIGIN, login

H = {"Origin": ORIGIN}


def form(csrf: str, **fields: str) -> dict[str, str]:
    return {"csrf_token": csrf, **fields}


def test_marketer_builds_previews_and_saves_a_segment(web, hub):
    with hub.session() as s, s.begin():
        person(s, "Анна", locale="ru", tags=["vip"])
        person(s, "Ольга", locale="ru")
        person(s, "Bob", locale="en", tags=["vip"])
    csrf = login(web, hub, "m@example.com", role=Role.MARKETER)
    page = web.get("/segments/new")
    assert page.status_code == 200 and 'name="n:r.0:type"' in page.text
    assert "content-security-policy" in page.headers
    ru = {"n:r:type": "and", "n:r.0:type": "field", "n:r.0:field": "locale", "n:r.0:op": "eq", "n:r.0:value": "ru"}
    hx = {**H, "HX-Request": "true", "X-CSRF-Token": csrf}
    preview = web.post("/segments/preview", data=ru, headers=hx)
    assert preview.status_code == 200 and 'data-count="2"' in preview.text and "Ольга" in preview.text
    # Add a NOT tag vip condition through the builder's buttons, as the page does.
    added = web.post("/segments/builder", data={**ru, "action": "add-condition:r"}, headers=hx)
    assert 'name="n:r.1:type"' in added.text and 'hx-swap-oob="innerHTML"' in added.text
    vip = {**ru, "n:r.1:type": "tag", "n:r.1:op": "has", "n:r.1:tag": "vip"}
    negated = web.post("/segments/builder", data={**vip, "action": "not:r.1"}, headers=hx)
    assert 'name="n:r.1:type" value="not"' in negated.text and 'name="n:r.1.0:tag"' in negated.text
    assert 'data-count="1"' in negated.text  # the preview, swapped in out of band, follows the edit
    final = {**ru, "n:r.1:type": "not", "n:r.1.0:type": "tag", "n:r.1.0:op": "has", "n:r.1.0:tag": "vip"}
    assert 'data-count="1"' in web.post("/segments/preview", data=final, headers=hx).text
    saved = web.post("/segments/new", data=form(csrf, name="Русские без VIP", **final), headers=H,
                     follow_redirects=False)
    assert saved.status_code == 303
    with hub.session(read_only=True) as s:
        segment = s.scalars(select(Segment)).one()
    assert segment.definition == {"type": "and", "conditions": [
        {"type": "field", "field": "locale", "op": "eq", "value": "ru"},
        {"type": "not", "condition": {"type": "tag", "op": "has", "tag": "vip"}}]}
    listing = web.get("/segments")
    assert "Русские без VIP" in listing.text
    assert web.get(f"/segments/{segment.id}/count").text.strip() == "1"
    edit = web.get(saved.headers["location"])
    assert 'value="vip"' in edit.text and "Segment saved." in edit.text


def test_invalid_conditions_are_shown_and_nothing_is_saved(web, hub):
    csrf = login(web, hub, "m@example.com", role=Role.MARKETER)
    bad = {"n:r:type": "and", "n:r.0:type": "survey", "n:r.0:metric": "nps", "n:r.0:op": "lte", "n:r.0:value": "42"}
    hx = {**H, "HX-Request": "true", "X-CSRF-Token": csrf}
    preview = web.post("/segments/preview", data=bad, headers=hx)
    assert "NPS scores go from 0 to 10" in preview.text and "data-count" not in preview.text
    answer = web.post("/segments/new", data=form(csrf, name="Bad", **bad), headers=H)
    assert answer.status_code == 422 and "NPS scores go from 0 to 10" in answer.text
    nameless = web.post("/segments/new", data=form(csrf, name="  ", **{"n:r:type": "and"}), headers=H)
    assert nameless.status_code == 422
    with hub.session(read_only=True) as s:
        assert s.scalars(select(Segment)).all() == []


def test_agents_cannot_see_segments_and_forged_posts_are_refused(web, hub):
    login(web, hub, "agent@example.com", role=Role.AGENT)
    assert web.get("/segments").status_code == 403
    marketer = web.post("/segments/new", data={"name": "x", "n:r:type": "and"}, headers=H)
    assert marketer.status_code == 403
    with hub.session(read_only=True) as s:
        assert s.scalars(select(Segment)).all() == []


def test_delete_from_the_page(web, hub):
    csrf = login(web, hub, "m@example.com", role=Role.MARKETER)
    web.post("/segments/new", data=form(csrf, name="Gone", **{"n:r:type": "and"}), headers=H)
    with hub.session(read_only=True) as s:
        sid = s.scalars(select(Segment.id)).one()
    asked = web.post(f"/segments/{sid}/delete", data=form(csrf), headers=H, follow_redirects=False)
    assert asked.status_code == 200 and "Delete the segment “Gone”?" in asked.text  # asks first (hub.web.confirm)
    with hub.session(read_only=True) as s:
        assert s.scalars(select(Segment.id)).all() == [sid]
    assert web.post(f"/segments/{sid}/delete", data={**form(csrf), "confirmed": "yes"}, headers=H,
                    follow_redirects=False).status_code == 303
    with hub.session(read_only=True) as s:
        assert s.scalars(select(Segment)).all() == []


@pytest.mark.any_store
def test_pages_speak_russian(web, hub):
    login(web, hub, "m@example.com", role=Role.MARKETER, locale="ru")
    new = web.get("/segments/new").text
    assert "Новый сегмент" in new and "Все условия (И)" in new and "Сохранить сегмент" in new
    editor = web.get("/message-templates/new?channel=sms").text
    assert "Новый шаблон" in editor and "Отправить себе тест" not in editor  # no test send before saving
    assert "Шаблоны сообщений" in web.get("/message-templates").text
