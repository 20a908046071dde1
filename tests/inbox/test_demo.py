"""The inbox's demo: teams, agents with presence, conversations in every state the brief names,
resolved history the reports can measure, canned responses in both languages; idempotent; and the
inbox page of the demo's agent shows it."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, select

from hub import clock
from hub.auth import create_user
from hub.models import AuditEntry, Role, TimelineEvent
from inbox import jobs, reports
from inbox.demo import DESK, MAIL, demo
from inbox.models import AgentState, CannedResponse, Conversation, Escalation, Team
from inbox.sla import state
from tests.inbox.conftest import PASSWORD
from tests.web.conftest import ORIGIN, csrf_of


def _login(web, email: str) -> None:  # type: ignore[no-untyped-def]
    token = csrf_of(web.get("/login").text)
    answer = web.post("/login", data={"email": email, "password": PASSWORD, "csrf_token": token},
                      headers={"Origin": ORIGIN}, follow_redirects=False)
    assert answer.status_code == 303, answer.text


def test_the_demo_fills_a_living_inbox_once_and_the_page_shows_it(web, hub, frozen_clock):
    with hub.session() as s, s.begin():  # the core demo's agent, as `hub serve --demo` has made her
        create_user(s, email="agent@example.com", password=PASSWORD, role=Role.AGENT,
                    display_name="Мария Операторова", locale="ru")
    assert "/inbox" in demo(hub, seed=7)
    now = clock.now()
    with hub.session(read_only=True) as s:
        convs = list(s.scalars(select(Conversation)))
        assert {t.name for t in s.scalars(select(Team))} == {DESK, MAIL}
        presence = Counter(a.presence for a in s.scalars(select(AgentState)))
        shortcuts = {(c.locale, c.owner_id is None) for c in s.scalars(select(CannedResponse))}
        counts = {"events": s.scalar(select(func.count()).select_from(TimelineEvent)),
                  "audit": s.scalar(select(func.count()).select_from(AuditEntry))}
        report = reports.build(s, group="agent", since=now - timedelta(days=30), until=now, zone=ZoneInfo("Europe/Moscow"))
    unresolved = [c for c in convs if c.status != "resolved"]
    states = Counter(state(c, now, warn_minutes=15) for c in unresolved if c.status == "open")
    assert states["breached"] == 1 and states["near"] == 1 and states["ok"] >= 2
    assert Counter(c.status for c in unresolved) == {"open": 7, "waiting": 1, "snoozed": 1}
    assert {c.channel for c in unresolved} == {"sms", "phone", "forms", "email"}
    assert sum(c.assignee_id is None for c in unresolved) == 3  # the email desk's agent is away
    assert presence == {"online": 2, "away": 1}
    assert shortcuts == {("ru", True), ("en", True), ("ru", False)}
    resolved = [c for c in convs if c.status == "resolved"]
    assert len(resolved) >= 10 and all(c.first_response_at and c.resolved_at < now for c in resolved)
    assert sum(r.resolved for r in report.rows) == len(resolved)
    assert all(r.first_median is not None and r.resolution_median for r in report.rows if r.resolved)
    assert counts["audit"] > 0  # every step went through the service, on the audit log

    # A second run adds nothing.
    assert "already there" in demo(hub, seed=7)
    with hub.session(read_only=True) as s:
        assert s.scalar(select(func.count()).select_from(Conversation)) == len(convs)
        assert s.scalar(select(func.count()).select_from(TimelineEvent)) == counts["events"]

    # The scheduler's first tick escalates the breach and the near breach, each once.
    jobs.escalate_due(hub)
    with hub.session(read_only=True) as s:
        first = Counter((e.conversation_id, e.level) for e in s.scalars(select(Escalation)))
    jobs.escalate_due(hub)
    with hub.session(read_only=True) as s:
        again = Counter((e.conversation_id, e.level) for e in s.scalars(select(Escalation)))
    assert again == first and sum(level == "breach" for _c, level in first) == 1
    assert len({c for c, _l in first}) == 2  # the breached one and the one near breach

    _login(web, "agent@example.com")
    mine = web.get("/inbox?view=mine")
    assert mine.status_code == 200 and "Дмитрий Соколов" in mine.text and "Ольга Лебедева" in mine.text
    unassigned = web.get("/inbox?view=unassigned")
    assert unassigned.text.count('class="conv-row') == 3 and "Charlotte Evans" in unassigned.text
    assert web.get("/inbox/reports?group=channel&days=30").status_code == 200
