"""The dashboards over HTTP: each page in both languages, every table's CSV, the one-click segment of
an RFM cell, the REST twins, and bad parameters answered with a 4xx that changes nothing."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from analytics.compute import Options, recompute_scores
from analytics.dashboards import PAGES
from campaigns.segments.compiler import count_contacts
from campaigns.segments.models import Segment
from hub import clock
from hub.models import Role
from tests.analytics.factories import customer, order
from tests.web.conftest import ORIGIN, login


def seed(hub) -> dict[str, int]:
    now = clock.now()
    ids = {}
    for n in range(8):
        cid = ids[f"c{n}"] = customer(hub, f"Клиент {n}")
        for k in range(n % 4 + 1):
            order(hub, cid, now - timedelta(days=30 * k + 3 * n + 1), f"{100 * (n + 1)}.00", f"O{n}-{k}")
    with hub.session() as s, s.begin():
        recompute_scores(s, options=Options(), now=now)
    return ids


@pytest.mark.parametrize("locale", ["en", "ru"])
def test_every_dashboard_renders_in_both_languages(web, hub, locale):
    login(web, hub, "m@example.com", role=Role.MARKETER, locale=locale)
    seed(hub)
    words = {"en": ("Analytics", "Download CSV"), "ru": ("Аналитика", "Скачать CSV")}[locale]
    for page in PAGES:
        answer = web.get("/analytics" if page == "rfm" else f"/analytics/{page}")
        assert answer.status_code == 200, (page, answer.text[:500])
        assert all(w in answer.text for w in words), page
        assert "<svg" in answer.text or page == "value", page
    grid = web.get("/analytics").text
    assert 'id="rfm-total">8<' in grid


@pytest.mark.any_store
def test_each_table_exports_the_rows_the_page_shows(web, hub):
    login(web, hub, "m@example.com", role=Role.MARKETER)
    seed(hub)
    for page, table in [("rfm", "cells"), ("value", "customers"), ("value", "holdout"), ("acquisition", "sources"),
                        ("acquisition", "utm"), ("retention", "cohorts"), ("retention", "cohort_counts"),
                        ("retention", "movements"), ("growth", "months"), ("satisfaction", "months"),
                        ("satisfaction", "channels"), ("satisfaction", "cells"), ("activity", "channels"),
                        ("activity", "team")]:
        answer = web.get(f"/analytics/{page}/{table}.csv")
        assert answer.status_code == 200, (page, table)
        assert answer.headers["content-type"].startswith("text/csv")
        assert "attachment" in answer.headers["content-disposition"]
        rows = list(csv.reader(io.StringIO(answer.text)))
        assert rows[0], (page, table)
        assert f'href="/analytics/{page}/{table}.csv?' in web.get(f"/analytics/{page}" if page != "rfm" else "/analytics").text
    cells = {r[0]: r for r in csv.DictReader(io.StringIO(web.get("/analytics/rfm/cells.csv").text)).reader}
    assert sum(int(r[1]) for name, r in cells.items() if name != "cell") == 8


@pytest.mark.any_store
def test_a_cell_becomes_a_segment_in_one_click(web, hub):
    token = login(web, hub, "m@example.com", role=Role.MARKETER)
    seed(hub)
    rows = list(csv.DictReader(io.StringIO(web.get("/analytics/rfm/cells.csv").text)))
    cell, expected = next((r["cell"], int(r["customers"])) for r in rows if int(r["customers"]) > 0)
    assert f'action="/analytics/rfm/{cell}/segment"' in web.get("/analytics").text
    answer = web.post(f"/analytics/rfm/{cell}/segment", data={"csrf_token": token}, headers={"Origin": ORIGIN},
                      follow_redirects=False)
    assert answer.status_code == 303
    again = web.post(f"/analytics/rfm/{cell}/segment", data={"csrf_token": token}, headers={"Origin": ORIGIN},
                     follow_redirects=False)
    assert again.headers["location"] == answer.headers["location"]  # the same segment, not a second one
    with hub.session(read_only=True) as s:
        segment = s.scalars(select(Segment)).one()
        assert count_contacts(s, segment.definition, now=clock.now()) == expected
        others = count_contacts(s, {"type": "and", "conditions": [
            {"type": "rfm", "measure": "cell", "op": "ne", "value": cell}]}, now=clock.now())
        assert others == 8 - expected  # "is not" keeps the unscored too (none here: all eight bought)
        assert count_contacts(s, {"type": "and", "conditions": [
            {"type": "rfm", "measure": "r", "op": "gte", "value": 1}]}, now=clock.now()) == 8
    assert web.get(answer.headers["location"]).status_code == 200


@pytest.mark.any_store
def test_bad_parameters_get_a_4xx_and_change_nothing(web, hub):
    token = login(web, hub, "m@example.com", role=Role.MARKETER)
    seed(hub)
    for url in ["/analytics/acquisition?days=7", "/analytics/acquisition?days=abc", "/analytics/retention?months=5",
                "/analytics?kind=robots", "/analytics/growth?months=-1", "/analytics/satisfaction?segment_id=0"]:
        assert 400 <= web.get(url).status_code < 500, url
    assert web.get("/analytics/nowhere").status_code == 404
    assert web.get("/analytics/rfm/nothing.csv").status_code == 404
    assert web.get("/analytics/satisfaction?segment_id=999").status_code == 404
    answer = web.post("/analytics/rfm/royalty/segment", data={"csrf_token": token}, headers={"Origin": ORIGIN})
    assert answer.status_code == 404
    with hub.session(read_only=True) as s:
        assert s.scalar(select(func.count()).select_from(Segment)) == 0


@pytest.mark.any_store
def test_agents_without_the_scope_are_refused(web, hub):
    login(web, hub, "agent@example.com", role=Role.AGENT)
    assert web.get("/analytics").status_code == 403
    assert web.get("/analytics/rfm/cells.csv").status_code == 403


@pytest.mark.any_store
def test_the_api_gives_the_grid_and_any_table(client, hub, api_key):
    seed(hub)
    headers = api_key("analytics:read")
    grid = client.get("/api/v1/analytics/rfm", headers=headers).json()
    assert grid["customers"] == 8 and sum(c["customers"] for c in grid["cells"]) == 8
    assert sum(map(sum, grid["squares"])) == 8
    table = client.get("/api/v1/analytics/retention/cohorts", headers=headers, params={"months": 6}).json()
    assert table["columns"][:2] == ["cohort", "customers"] and len(table["rows"]) == 6
    assert client.get("/api/v1/analytics/retention/cohorts", headers=headers, params={"months": 5}).status_code == 422
    assert client.get("/api/v1/analytics/nowhere/x", headers=headers).status_code == 404
    missing = client.get("/api/v1/analytics/rfm/nothing", headers=headers)
    assert missing.status_code == 404 and missing.headers["content-type"].startswith("application/problem+json")
    assert client.get("/api/v1/analytics/rfm", headers=api_key("contacts:read")).status_code == 403
