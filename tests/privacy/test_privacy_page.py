"""The admin's page for data-subject requests: find, read, download, erase with a typed confirmation."""

from __future__ import annotations

import json

from sqlalchemy import func, select

from hub.auth import SYSTEM
from hub.contacts import IdentityIn, create_contact
from hub.models import Identity, Role
from tests.web.conftest import ORIGIN, login


def make_person(hub) -> int:  # type: ignore[no-untyped-def]
    with hub.session() as s, s.begin():
        return create_contact(s, actor=SYSTEM, region="RU", display_name="Ирина Волкова",
                              identities=[IdentityIn(kind="email", value="irina@example.org")],
                              attributes={"passport": "4510 123456"}).id


def identities(hub) -> int:  # type: ignore[no-untyped-def]
    with hub.session(read_only=True) as s:
        return s.scalar(select(func.count()).select_from(Identity))


def test_admin_finds_reads_downloads_and_erases(web, hub):
    cid = make_person(hub)
    token = login(web, hub, "admin@example.com", role=Role.ADMIN)
    home = web.get("/")
    assert 'href="/admin/privacy"' in home.text
    found = web.get("/admin/privacy", params={"q": "irina@"})
    assert found.status_code == 200 and f'href="/admin/privacy/{cid}"' in found.text
    assert "Nobody matches" in web.get("/admin/privacy", params={"q": "nobody-here"}).text

    page = web.get(f"/admin/privacy/{cid}")
    assert page.status_code == 200
    assert "Ирина Волкова" in page.text and "4510 123456" in page.text and "irina@example.org" in page.text
    download = web.get(f"/admin/privacy/{cid}/export.json")
    assert download.headers["content-disposition"].startswith("attachment;")
    assert json.loads(download.content)["contact_id"] == cid

    for wrong in ("", str(cid + 1), "yes"):
        refused = web.post(f"/admin/privacy/{cid}/erase", data={"confirm": wrong, "csrf_token": token},
                           headers={"Origin": ORIGIN}, follow_redirects=False)
        assert refused.status_code == 422 and "exactly as shown" in refused.text
    assert identities(hub) == 1
    # Without the CSRF token nothing happens either.
    assert web.post(f"/admin/privacy/{cid}/erase", data={"confirm": str(cid)}, headers={"Origin": ORIGIN},
                    follow_redirects=False).status_code == 403
    assert identities(hub) == 1

    done = web.post(f"/admin/privacy/{cid}/erase", data={"confirm": f"#{cid}", "csrf_token": token},
                    headers={"Origin": ORIGIN}, follow_redirects=False)
    assert done.status_code == 303 and done.headers["location"] == f"/admin/privacy/{cid}?erased=1"
    after = web.get(done.headers["location"])
    assert "was erased" in after.text and "Ирина" not in after.text and "4510 123456" not in after.text
    assert 'action="/admin/privacy/' not in after.text  # no second erase button on an erased person
    assert identities(hub) == 0
    assert web.get("/admin/privacy/999999").status_code == 404


def test_the_page_speaks_russian_and_is_admin_only(web, hub):
    cid = make_person(hub)
    login(web, hub, "admin@example.com", role=Role.ADMIN, locale="ru")
    page = web.get(f"/admin/privacy/{cid}")
    assert "Персональные данные" in page.text and "Удалить навсегда" in page.text
    web.cookies.clear()
    login(web, hub, "agent@example.com", role=Role.AGENT)
    assert web.get(f"/admin/privacy/{cid}").status_code == 403
    assert 'href="/admin/privacy"' not in web.get("/").text
