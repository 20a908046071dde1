"""Answering through the link: partial saves, one response per invitation, edits, the loop closed once."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import event, func, select

from campaigns.surveys.answers import LinkProblem, LinkRefused, open_link, save_answers
from campaigns.surveys.models import InvitationStatus, SurveyInvitation, SurveyResponse
from hub.auth import create_user
from hub.models import Role, Task, TimelineEvent
from tests.campaigns.surveys.conftest import invitations, invite_now, make_contact, make_survey


def count(hub, model, *where) -> int:  # type: ignore[no-untyped-def]
    with hub.session(read_only=True) as session:
        return session.scalar(select(func.count()).select_from(model).where(*where))


def answer(hub, token, form, *, complete=True):  # type: ignore[no-untyped-def]
    with hub.session() as session:
        link = open_link(session, hub.settings, token)
        response = save_answers(session, link=link, form=form, complete=complete, locale="ru")
        session.commit()
        return response


def test_partial_then_complete_then_edit_keeps_one_response_and_one_event(hub, frozen_clock, email_ready):
    survey = make_survey(hub, delay_minutes=0)
    with hub.session() as session, session.begin():
        owner = create_user(session, email="owner@example.com", password="long enough pw", role=Role.AGENT)
        owner_id = owner.id
    contact = make_contact(hub, owner_id=owner_id)
    invitation, token = invite_now(hub, survey, contact)

    answer(hub, token, {"q_nps": ["3"]}, complete=False)  # a draft: no timeline event, no task yet
    assert count(hub, TimelineEvent, TimelineEvent.kind == "survey.answered") == 0
    assert count(hub, Task) == 0

    response = answer(hub, token, {"q_nps": ["3"], "q_wrong": ["Долго везли"], "q_csat": ["2"],
                                   "q_liked": ["price", "staff"]})
    assert (response.nps, response.csat, response.completed) == (3, 2, True)
    assert response.answers["liked"] == ["price", "staff"]
    with hub.session(read_only=True) as session:
        event = session.scalars(select(TimelineEvent).where(TimelineEvent.kind == "survey.answered")).one()
        task = session.scalars(select(Task)).one()
    assert event.contact_id == contact.id and event.data["nps"] == 3 and event.data["csat"] == 2
    assert event.data["survey_id"] == survey.id
    assert "Долго везли" in event.text
    assert task.assignee_id == owner_id and task.contact_id == contact.id and "Долго везли" in task.notes
    assert task.source_event_id == event.id

    frozen_clock.advance(hours=1)
    edited = answer(hub, token, {"q_nps": ["9"], "q_wrong": ["ignored: the branch is hidden now"]})
    assert edited.id == response.id and edited.edits == 1 and edited.nps == 9
    assert "wrong" not in edited.answers  # a hidden question keeps no stale answer
    assert count(hub, SurveyResponse) == 1
    assert count(hub, TimelineEvent, TimelineEvent.kind == "survey.answered") == 1
    with hub.session(read_only=True) as session:
        event = session.scalars(select(TimelineEvent).where(TimelineEvent.kind == "survey.answered")).one()
    assert event.data["nps"] == 9 and event.data["edits"] == 1 and event.data["response_id"] == response.id
    assert event.data["survey_id"] == survey.id and event.data["answers"] == edited.answers
    assert "Долго везли" not in event.text  # the text tells the answer in force
    answer(hub, token, {"q_nps": ["1"]})  # a detractor again: the task is not opened twice
    assert count(hub, Task) == 1
    assert invitations(hub)[0].status == InvitationStatus.ANSWERED


def test_a_promoter_edited_into_a_detractor_opens_the_task_then(hub, email_ready):
    survey = make_survey(hub, delay_minutes=0, detractor_csat_max=1)
    _, token = invite_now(hub, survey, make_contact(hub))
    answer(hub, token, {"q_nps": ["10"], "q_csat": ["2"]})  # CSAT 2 is not a detractor with threshold 1
    assert count(hub, Task) == 0
    answer(hub, token, {"q_nps": ["10"], "q_csat": ["1"]})
    assert count(hub, Task) == 1


def test_an_edit_reads_the_link_once_and_writes_twice(hub, email_ready):
    """The page's hot path stays lean: the link read, the response upserted, the event updated."""
    survey = make_survey(hub, delay_minutes=0)
    _, token = invite_now(hub, survey, make_contact(hub))
    answer(hub, token, {"q_nps": ["9"]})
    statements: list[str] = []

    def record(_conn, _cursor, statement, *_args):  # type: ignore[no-untyped-def]
        statements.append(statement.split()[0])

    event.listen(hub.db.engine, "before_cursor_execute", record)
    try:
        edited = answer(hub, token, {"q_nps": ["10"]})
    finally:
        event.remove(hub.db.engine, "before_cursor_execute", record)
    # (SQLite's BEGIN IMMEDIATE is sent as a statement of its own; PostgreSQL's is not.) PostgreSQL
    # updates the event in the upsert's own statement (a data-modifying CTE).
    expected = ["SELECT", "WITH"] if hub.db.engine.dialect.name == "postgresql" else ["SELECT", "INSERT", "UPDATE"]
    assert [s for s in statements if s != "BEGIN"] == expected
    assert edited.edits == 1 and edited.nps == 10
    with hub.session(read_only=True) as session:
        answered = session.scalars(select(TimelineEvent).where(TimelineEvent.kind == "survey.answered")).one()
    assert answered.data["nps"] == 10 and answered.data["edits"] == 1 and answered.data["response_id"] == edited.id


def test_a_detractors_task_is_written_as_rows_and_its_owner_read_once(hub, email_ready):
    """The follow-up task goes in through create_tasks: no ORM Task in the session (its construction
    and flush cost a quarter of the task's CPU), and the owner is read once, by create_tasks's check."""
    survey = make_survey(hub, delay_minutes=0)
    with hub.session() as session, session.begin():
        owner_id = create_user(session, email="owner2@example.com", password="long enough pw", role=Role.AGENT).id
    _, token = invite_now(hub, survey, make_contact(hub, owner_id=owner_id))
    users: list[str] = []

    def record(_conn, _cursor, statement, *_args):  # type: ignore[no-untyped-def]
        if "FROM user_account" in statement:
            users.append(statement)

    with hub.session() as session:
        link = open_link(session, hub.settings, token)
        event.listen(hub.db.engine, "before_cursor_execute", record)
        try:
            save_answers(session, link=link, form={"q_nps": ["2"]}, complete=True, locale="ru")
        finally:
            event.remove(hub.db.engine, "before_cursor_execute", record)
        assert not [o for o in session.identity_map.values() if isinstance(o, Task)]
        assert not session.new
        session.commit()
    assert len(users) == 1, users  # create_tasks's check that the owner is active, and no other read
    with hub.session(read_only=True) as session:
        task = session.scalars(select(Task)).one()
        answered = session.scalars(select(TimelineEvent).where(TimelineEvent.kind == "survey.answered")).one()
    assert task.assignee_id == owner_id and task.source_event_id == answered.id


def test_a_detractors_first_answer_posts_both_events_in_one_insert_answer_first(hub, email_ready):
    """The answer's event and the task's go in as one batch (one INSERT into timeline_event), and the
    answer's comes first: its id, and the order the triggers see them in."""
    survey = make_survey(hub, delay_minutes=0)
    _, token = invite_now(hub, survey, make_contact(hub))
    fired: list[str] = []
    hub.triggers.register("*", lambda session, *, event, contact: fired.append(event.kind))
    inserts: list[str] = []

    def record(_conn, _cursor, statement, *_args):  # type: ignore[no-untyped-def]
        if statement.lstrip().startswith("INSERT INTO timeline_event"):
            inserts.append(statement)

    event.listen(hub.db.engine, "before_cursor_execute", record)
    try:
        answer(hub, token, {"q_nps": ["3"]})
    finally:
        event.remove(hub.db.engine, "before_cursor_execute", record)
    assert len(inserts) == 1, inserts
    assert fired == ["survey.answered", "task.created"]
    with hub.session(read_only=True) as session:
        kinds = session.scalars(select(TimelineEvent.kind).order_by(TimelineEvent.id)).all()
        task = session.scalars(select(Task)).one()
        answered_id = session.scalar(select(TimelineEvent.id).where(TimelineEvent.kind == "survey.answered"))
    assert [k for k in kinds if k in ("survey.answered", "task.created")] == ["survey.answered", "task.created"]
    assert task.source_event_id == answered_id


def test_a_detractors_task_skips_a_deactivated_owner(hub, email_ready):
    survey = make_survey(hub, delay_minutes=0)
    with hub.session() as session, session.begin():
        owner = create_user(session, email="gone@example.com", password="long enough pw", role=Role.AGENT)
        owner.is_active = False
        owner_id = owner.id
    _, token = invite_now(hub, survey, make_contact(hub, owner_id=owner_id))
    answer(hub, token, {"q_nps": ["1"]})
    with hub.session(read_only=True) as session:
        task = session.scalars(select(Task)).one()
    assert task.assignee_id is None  # nobody's: everyone's open tasks show it


def test_twenty_concurrent_submissions_give_one_response(hub, email_ready):
    survey = make_survey(hub, delay_minutes=0)
    _, token = invite_now(hub, survey, make_contact(hub))
    barrier = threading.Barrier(20)
    errors: list[BaseException] = []

    def submit(n: int) -> None:
        try:
            barrier.wait(timeout=30)
            answer(hub, token, {"q_nps": [str(n % 11)], "q_wrong": [f"ответ {n}"]})
        except BaseException as exc:  # noqa: BLE001 - collected and reported below
            errors.append(exc)

    threads = [threading.Thread(target=submit, args=(n,)) for n in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    assert count(hub, SurveyResponse) == 1
    assert count(hub, TimelineEvent, TimelineEvent.kind == "survey.answered") == 1
    with hub.session(read_only=True) as session:
        response = session.scalars(select(SurveyResponse)).one()
    assert response.edits == 19 and response.completed
    assert count(hub, Task) <= 1


def test_a_closed_survey_refuses_edits(hub, frozen_clock, email_ready):
    survey = make_survey(hub, delay_minutes=0, closes_at=(frozen_clock.current + timedelta(days=1)).isoformat())
    _, token = invite_now(hub, survey, make_contact(hub))
    answer(hub, token, {"q_nps": ["8"]})
    frozen_clock.advance(days=2)
    with hub.session() as session:
        link = open_link(session, hub.settings, token)  # an answered link still shows its answer
        assert not link.editable
    before = count(hub, SurveyResponse, SurveyResponse.nps == 8)
    try:
        answer(hub, token, {"q_nps": ["2"]})
    except LinkRefused as exc:
        assert exc.problem == LinkProblem.CLOSED
    else:
        raise AssertionError("an edit after the survey closed was accepted")
    assert before == count(hub, SurveyResponse, SurveyResponse.nps == 8) == 1


def test_the_agents_card_shows_the_answer_in_force(hub, email_ready):
    """The contact card's "last survey score" reads the hub's own answers (NPS out of 10, else CSAT
    out of 5), and follows an edit."""
    from hub.web.card import last_survey_score

    survey = make_survey(hub, delay_minutes=0)
    contact = make_contact(hub)
    _, token = invite_now(hub, survey, contact)

    def card_score():  # type: ignore[no-untyped-def]
        with hub.session(read_only=True) as session:
            found = last_survey_score(session, contact_id=contact.id)
            return None if found is None else (found.score, found.scale, found.tone, found.survey)

    assert card_score() is None
    answer(hub, token, {"q_nps": ["9"], "q_csat": ["4"]})
    assert card_score() == (9.0, 10, "ok", survey.name)
    with hub.session(read_only=True) as session:
        text = session.scalars(select(TimelineEvent.text).where(TimelineEvent.kind == "survey.answered")).one()
    assert text.startswith("Порекомендуете ли вы нас друзьям? 9") and "?:" not in text  # not "друзьям?: 9"
    answer(hub, token, {"q_nps": ["3"], "q_wrong": ["Долго"], "q_csat": ["2"]})
    assert card_score() == (3.0, 10, "bad", survey.name)

    # A survey without an NPS question writes "nps": null: the card shows its CSAT.
    from hub.ingest import InboundEvent, post_event
    from hub.models import Direction

    other = make_contact(hub, "boris@example.com", name="Борис")
    with hub.session() as session, session.begin():
        post_event(session, event=InboundEvent(
            channel="surveys", kind="survey.answered", direction=Direction.IN, contact_id=other.id,
            external_id="survey-response:csat-only", subject="CSAT only", data={"nps": None, "csat": 4}))
    with hub.session(read_only=True) as session:
        found = last_survey_score(session, contact_id=other.id)
    assert found is not None and (found.score, found.scale, found.tone) == (4.0, 5, "ok")


def test_an_edited_answer_reaches_the_agents_open_page(hub, email_ready, monkeypatch):
    survey = make_survey(hub, delay_minutes=0)
    contact = make_contact(hub)
    _invitation, token = invite_now(hub, survey, contact)
    answer(hub, token, {"q_nps": ["3"]})
    seen: list[dict] = []
    monkeypatch.setattr(hub.broker, "publish", lambda topic, message: seen.append({"topic": topic, **message}))
    answer(hub, token, {"q_nps": ["9"]})
    with hub.session(read_only=True) as session:
        event = session.scalars(select(TimelineEvent).where(TimelineEvent.kind == "survey.answered")).one()
    assert [(m["topic"], m["type"], m["event_id"]) for m in seen if m["type"] == "event.updated"] == \
        [(f"contact:{contact.id}", "event.updated", event.id)]


def test_a_draft_late_for_the_sent_answer_changes_nothing(hub, email_ready):
    """The page's draft request can reach the store after the answer it was typed toward (it read the
    link before that answer committed): the answer sent stands, with its language."""
    survey = make_survey(hub, delay_minutes=0)
    _, token = invite_now(hub, survey, make_contact(hub))
    with hub.session() as late:  # the draft's request: the link read while nothing was sent yet
        stale = open_link(late, hub.settings, token)
        late.commit()
        with hub.session() as session:  # the answer sent meanwhile, in English
            link = open_link(session, hub.settings, token)
            save_answers(session, link=link, form={"q_nps": ["9"], "q_csat": ["5"]}, complete=True, locale="en")
            session.commit()
        assert save_answers(late, link=stale, form={"q_nps": ["4"]}, complete=False, locale="ru") is None
        late.commit()
    with hub.session(read_only=True) as session:
        response = session.scalars(select(SurveyResponse)).one()
    assert (response.answers, response.locale, response.completed) == ({"nps": 9, "csat": 5}, "en", True)
    assert response.edits == 0


def test_the_link_is_read_as_rows_of_its_four_tables_without_loading_them_into_the_session(hub, email_ready):
    """Every page view and answer reads the link: one Core statement, no ORM object built (~0.3 ms of
    CPU less a read, docs/benchmarks.md "Survey page")."""
    survey_row = make_survey(hub, delay_minutes=0)
    contact_row = make_contact(hub)
    invitation_row, token = invite_now(hub, survey_row, contact_row)
    survey, contact, invitation = survey_row.id, contact_row.id, invitation_row.id
    with hub.session(read_only=True) as session:
        link = open_link(session, hub.settings, token)
        assert not list(session.identity_map.values())
        assert (link.invitation.id, link.invitation.survey_id, link.invitation.contact_id) == (invitation, survey, contact)
        assert (link.survey.id, link.contact.id, link.response) == (survey, contact, None)
        assert link.questions and link.editable and link.invitation.status == InvitationStatus.SENT
    answer(hub, token, {"q_nps": ["9"]}, complete=False)
    with hub.session(read_only=True) as session:
        link = open_link(session, hub.settings, token)
        assert not list(session.identity_map.values())
        assert (link.response.invitation_id, link.response.answers, link.response.completed) == (
            invitation, {"nps": 9}, False)
        assert link.contact.display_name and link.survey.name


def test_the_link_leaves_out_the_invitations_sending_and_the_surveys_scheduling(hub, email_ready):
    """No page view or answer reads how the invitation was sent or when the survey sends: those 20 of
    the statement's 65 columns (three JSON values among them) are not read, and the contact, which
    the answer's events hand to every trigger, is read whole."""
    from hub.models import Contact

    survey_row = make_survey(hub, delay_minutes=0)
    invitation_row, token = invite_now(hub, survey_row, make_contact(hub))
    with hub.session(read_only=True) as session:
        link = open_link(session, hub.settings, token)
    for unread in ("context", "channel", "address", "sent_at", "source_event_id"):
        assert not hasattr(link.invitation, unread)  # main read all of them
    for unread in ("channels", "reminder_days", "trigger_kind", "cooldown_days"):
        assert not hasattr(link.survey, unread)
    assert link.invitation.expires_at == invitation_row.expires_at and link.invitation.nonce == invitation_row.nonce
    assert (link.survey.status, link.survey.closes_at, link.survey.follow_up_user_id) == (
        survey_row.status, survey_row.closes_at, survey_row.follow_up_user_id)
    assert set(link.contact._fields) == {c.name for c in Contact.__table__.c}


def test_on_postgresql_the_link_is_read_on_the_drivers_cursor_with_the_same_values(hub, email_ready):
    """Every page view and answer reads the link: on PostgreSQL straight on the driver's cursor
    (hub.driver_reads), not through SQLAlchemy's execution, with the values SQLAlchemy's gives."""
    if hub.db.engine.dialect.name != "postgresql":
        pytest.skip("the driver-cursor read is PostgreSQL's; SQLite runs the statement through SQLAlchemy")
    from campaigns.surveys.answers import _LINK, _link_rows
    from campaigns.surveys.links import read_token

    _, token = invite_now(hub, make_survey(hub, delay_minutes=0), make_contact(hub))
    answer(hub, token, {"q_nps": ["9"]}, complete=False)
    executed: list[object] = []

    def through_sqlalchemy(_conn, clause, *_args):  # type: ignore[no-untyped-def]
        executed.append(clause)

    with hub.session(read_only=True) as session:
        connection = session.connection()
        event.listen(connection, "before_execute", through_sqlalchemy)
        try:
            link = open_link(session, hub.settings, token)
        finally:
            event.remove(connection, "before_execute", through_sqlalchemy)
        assert executed == []  # main: the link's statement went through SQLAlchemy's execution
        expected = _link_rows(session.execute(_LINK, {"invitation_id": read_token(hub.settings, token)[0]}).one())
    assert [tuple(part) for part in (link.invitation, link.survey, link.contact, link.response)] == [
        tuple(part) for part in expected]
    assert link.invitation.expires_at.utcoffset() == timedelta(0) and link.response.answers == {"nps": 9}
    assert isinstance(link.survey.questions, list) and link.questions
    with hub.session(read_only=True) as session, pytest.raises(LinkRefused):
        open_link(session, hub.settings, token[:-2] + ("AA" if not token.endswith("AA") else "BB"))


def test_on_postgresql_the_answers_own_statements_run_on_the_drivers_cursor(hub, email_ready):
    """The upsert and the statement that links the response to its event and task run on the driver's
    cursor too (an edit: no statement through SQLAlchemy's execution), and write what they did."""
    if hub.db.engine.dialect.name != "postgresql":
        pytest.skip("the driver-cursor statements are PostgreSQL's")
    survey = make_survey(hub, delay_minutes=0)
    _, token = invite_now(hub, survey, make_contact(hub))
    _, promoter = invite_now(hub, survey, make_contact(hub, "boris@example.com", name="Борис"))
    executed: list[str] = []

    def through_sqlalchemy(_conn, clause, *_args):  # type: ignore[no-untyped-def]
        executed.append(str(clause))

    event.listen(hub.db.engine, "before_execute", through_sqlalchemy)
    try:
        first = answer(hub, token, {"q_nps": ["3"]})  # a detractor's first answer: the task, both links
        mine = [s for s in executed if "survey_response" in s or "survey_invitation" in s]
        assert mine == []  # main: the upsert and the linking UPDATE went through SQLAlchemy
        promoted = answer(hub, promoter, {"q_nps": ["10"]})  # no task: the response's link alone
        executed.clear()
        edited = answer(hub, token, {"q_nps": ["4"]})
        assert executed == []  # the link's read and the upsert (with the event's update)
    finally:
        event.remove(hub.db.engine, "before_execute", through_sqlalchemy)
    assert (first.edits, edited.edits, edited.nps, edited.event_id) == (0, 1, 4, first.event_id)
    with hub.session(read_only=True) as session:
        responses = {r.id: r for r in session.scalars(select(SurveyResponse))}
        task = session.scalars(select(Task)).one()
        events = {e.id: e for e in session.scalars(select(TimelineEvent).where(TimelineEvent.kind == "survey.answered"))}
        statuses = set(session.scalars(select(SurveyInvitation.status)))
    assert responses[first.id].event_id == first.event_id and responses[first.id].follow_up_task_id == task.id
    assert task.source_event_id == first.event_id and events[first.event_id].data["nps"] == 4
    assert responses[promoted.id].event_id == promoted.event_id and responses[promoted.id].follow_up_task_id is None
    assert events[promoted.event_id].data["response_id"] == promoted.id and statuses == {InvitationStatus.ANSWERED}
