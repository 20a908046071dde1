"""The customer's page through the real app: good, expired, tampered and reused links; bad input."""

from __future__ import annotations

from contextlib import contextmanager
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from campaigns.surveys.links import token_for
from campaigns.surveys.models import SurveyInvitation, SurveyResponse
from hub.models import Contact, Task, TimelineEvent
from hub.signing import sign
from tests.campaigns.surveys.conftest import invite_now, make_contact, make_survey

REFUSED = ("This link is not valid", "Ссылка недействительна", "This link has expired", "Срок действия ссылки истёк")


def count(hub, model, *where) -> int:  # type: ignore[no-untyped-def]
    with hub.session(read_only=True) as session:
        return session.scalar(select(func.count()).select_from(model).where(*where))


@pytest.fixture
def invited(hub, frozen_clock, email_ready):  # type: ignore[no-untyped-def]
    survey = make_survey(hub, delay_minutes=0, expiry_days=7)
    contact = make_contact(hub)
    invitation, token = invite_now(hub, survey, contact)
    return survey, contact, invitation, token


def test_the_page_speaks_the_contacts_language_and_is_accessible(client, invited):
    survey, contact, _, token = invited
    page = client.get(f"/s/{token}")
    assert page.status_code == 200
    assert page.headers["cache-control"] == "no-store" and page.headers["referrer-policy"] == "no-referrer"
    html = page.text
    assert '<html lang="ru">' in html and "Порекомендуете ли вы нас друзьям?" in html
    assert html.count("<fieldset") == 5 and html.count("<legend>") == 5  # every group of choices is labelled
    assert '<label for="f-wrong"' in html  # the free text has its label
    english = client.get(f"/s/{token}?lang=en")
    assert '<html lang="en">' in english.text and "How likely are you to recommend us?" in english.text
    assert client.get("/s/assets/survey.js").status_code == 200


def test_a_score_link_from_the_email_fills_the_score_in_without_saving(client, hub, invited):
    _, _, _, token = invited
    page = client.get(f"/s/{token}?score=4")
    assert 'value="4" checked' in page.text
    assert count(hub, SurveyResponse) == 0  # following a link records nothing (mail scanners follow links)


def test_answer_come_back_and_edit(client, hub, invited):
    _, contact, _, token = invited
    sent = client.post(f"/s/{token}", data={"q_nps": "2", "q_wrong": "Курьер опоздал", "action": "submit"},
                       follow_redirects=False)
    assert sent.status_code == 303
    thanks = client.get(sent.headers["location"])
    assert "Курьер опоздал" in thanks.text and "Изменить ответы" in thanks.text
    edit = client.get(f"/s/{token}?edit=1")
    assert 'value="2" checked' in edit.text and "Курьер опоздал" in edit.text
    again = client.post(f"/s/{token}", data={"q_nps": "10", "action": "submit"}, follow_redirects=False)
    assert again.status_code == 303
    with hub.session(read_only=True) as session:
        response = session.scalars(select(SurveyResponse)).one()
        event = session.scalars(select(TimelineEvent).where(TimelineEvent.kind == "survey.answered")).one()
    assert response.nps == 10 and response.edits == 1 and event.data["nps"] == 10
    assert event.contact_id == contact.id
    assert count(hub, Task) == 1  # opened by the first, low answer, and only once


def test_an_edit_through_the_page_is_two_round_trips_on_postgres(client, hub, invited):
    """The link read outside a transaction, then one statement that saves the edit and updates its event."""
    from sqlalchemy import event

    if hub.db.engine.dialect.name != "postgresql":
        pytest.skip("SQLite takes its write lock in a transaction of its own")
    _, _, _, token = invited
    outside: list[bool] = []

    def autocommit(conn, *_args):  # type: ignore[no-untyped-def]
        outside.append(conn.connection.dbapi_connection.autocommit)

    event.listen(hub.db.engine, "before_cursor_execute", autocommit)
    try:
        first = client.post(f"/s/{token}", data={"q_nps": "9", "action": "submit"}, follow_redirects=False)
    finally:
        event.remove(hub.db.engine, "before_cursor_execute", autocommit)
    assert first.status_code == 303
    # A first answer (the event, the links between rows) is one transaction: only the read is outside it.
    assert outside[0] and len(outside) > 2 and not any(outside[1:])
    sent: list[str] = []

    def record(_conn, _cursor, statement, *_args):  # type: ignore[no-untyped-def]
        sent.append(statement.split()[0])

    def commands(conn):  # type: ignore[no-untyped-def]
        from psycopg.pq import TransactionStatus

        # SQLAlchemy calls commit either way; psycopg sends it only if a transaction is open.
        if conn.connection.dbapi_connection.info.transaction_status != TransactionStatus.IDLE:
            sent.append("COMMIT")

    event.listen(hub.db.engine, "before_cursor_execute", record)
    event.listen(hub.db.engine, "commit", commands)
    try:
        again = client.post(f"/s/{token}", data={"q_nps": "10", "q_liked": "speed", "action": "submit"},
                            follow_redirects=False)
    finally:
        event.remove(hub.db.engine, "before_cursor_execute", record)
        event.remove(hub.db.engine, "commit", commands)
    assert again.status_code == 303
    assert sent == ["SELECT", "WITH"]
    with hub.session(read_only=True) as session:
        response = session.scalars(select(SurveyResponse)).one()
        answered = session.scalars(select(TimelineEvent).where(TimelineEvent.kind == "survey.answered")).one()
    assert response.edits == 1 and response.answers["liked"] == ["speed"]
    assert answered.data["answers"] == response.answers and answered.data["edits"] == 1
    assert "10" in answered.text and "Скорость" in answered.text


def test_the_draft_keeps_the_language_the_page_is_shown_in(client, hub, invited):
    _, _, _, token = invited  # a Russian-speaking contact reading the page in English
    page = client.get(f"/s/{token}?lang=en")
    assert f'data-draft="/s/{token}/draft?lang=en"' in page.text and f'action="/s/{token}?lang=en"' in page.text
    assert client.post(f"/s/{token}/draft?lang=en", data={"q_csat": "4"}).status_code == 204
    with hub.session(read_only=True) as session:
        assert session.scalars(select(SurveyResponse)).one().locale == "en"
    assert f'data-draft="/s/{token}/draft"' in client.get(f"/s/{token}").text


def test_a_draft_is_kept_and_required_answers_are_checked(client, hub, invited):
    _, _, _, token = invited
    assert client.post(f"/s/{token}/draft", data={"q_csat": "4"}).status_code == 204
    missing = client.post(f"/s/{token}", data={"q_csat": "4", "action": "submit"})
    assert missing.status_code == 422 and 'aria-invalid="true"' in missing.text
    assert 'id="error-summary"' in missing.text
    with hub.session(read_only=True) as session:
        response = session.scalars(select(SurveyResponse)).one()
    assert response.answers == {"csat": 4} and not response.completed
    assert count(hub, TimelineEvent, TimelineEvent.kind == "survey.answered") == 0
    later = client.post(f"/s/{token}", data={"q_csat": "4", "action": "save"}, follow_redirects=False)
    assert later.status_code == 303 and "saved=1" in later.headers["location"]
    assert 'value="4" checked' in client.get(f"/s/{token}").text


@pytest.mark.parametrize("form", [
    {"q_nps": "11"}, {"q_nps": "seven"}, {"q_nps": "5", "q_channel": "moon"}, {"q_nps": "5", "q_liked": "free"},
    {"q_nps": "5", "q_stars": "6"}, {"q_nps": "3", "q_wrong": "x" * 5001},
])
def test_bad_answers_are_422_and_change_nothing(client, hub, invited, form):
    _, _, _, token = invited
    answer = client.post(f"/s/{token}", data={**form, "action": "submit"})
    assert answer.status_code == 422
    assert count(hub, SurveyResponse) == 0 and count(hub, Task) == 0
    assert client.post(f"/s/{token}/draft", data=form).status_code == 422
    assert count(hub, SurveyResponse) == 0
    if len(form.get("q_wrong", "")) > 5000:
        assert "x" * 5001 in answer.text  # shown back to be shortened, not lost


def test_tampered_and_foreign_links_reveal_nothing(client, hub, invited):
    survey, _, invitation, token = invited
    other = make_contact(hub, "boris@example.com", name="Борис")
    forged_for_other = sign(hub.settings, "surveys.invitation",
                            [invitation.id, other.id, survey.id, invitation.nonce])
    wrong_nonce = sign(hub.settings, "surveys.invitation", [invitation.id, invitation.contact_id, survey.id, "guess"])
    other_purpose = sign(hub.settings, "unsubscribe", [invitation.id, invitation.contact_id, survey.id,
                                                       invitation.nonce])
    for bad in (token[:-2] + ("AA" if not token.endswith("AA") else "BB"), "x", forged_for_other, wrong_nonce,
                other_purpose, token + "x"):
        page = client.get(f"/s/{bad}")
        assert page.status_code == 404, bad
        assert "Ссылка недействительна" in page.text
        assert "Как прошла покупка" not in page.text and "Анна" not in page.text
        assert client.post(f"/s/{bad}", data={"q_nps": "1"}).status_code == 404
    assert count(hub, SurveyResponse) == 0


def test_an_expired_link_says_so_and_takes_no_answer(client, hub, frozen_clock, invited):
    _, _, _, token = invited
    frozen_clock.advance(days=7, seconds=1)
    page = client.get(f"/s/{token}")
    assert page.status_code == 410 and "Срок действия ссылки истёк" in page.text
    assert "Как прошла покупка" not in page.text
    assert client.post(f"/s/{token}", data={"q_nps": "9"}).status_code == 410
    assert count(hub, SurveyResponse) == 0


def test_a_reused_link_edits_the_one_response_until_the_survey_closes(client, hub, frozen_clock, email_ready):
    survey = make_survey(hub, delay_minutes=0, expiry_days=3,
                         closes_at=(frozen_clock.current + timedelta(days=10)).isoformat())
    invitation, token = invite_now(hub, survey, make_contact(hub))
    assert client.post(f"/s/{token}", data={"q_nps": "7"}, follow_redirects=False).status_code == 303
    frozen_clock.advance(days=5)  # past the link's expiry, but answered: still editable while the survey is open
    assert client.post(f"/s/{token}", data={"q_nps": "8"}, follow_redirects=False).status_code == 303
    frozen_clock.advance(days=6)  # the survey has closed: the answer shows, and stays as it is
    page = client.get(f"/s/{token}")
    assert page.status_code == 200 and "8/10" in page.text and "Изменить ответы" not in page.text
    assert client.post(f"/s/{token}", data={"q_nps": "1"}).status_code == 410
    with hub.session(read_only=True) as session:
        assert session.scalars(select(SurveyResponse.nps)).one() == 8
    assert count(hub, SurveyResponse) == 1


def test_a_link_for_an_invitation_not_yet_sent_is_invalid(client, hub, frozen_clock, email_ready):
    survey = make_survey(hub, delay_minutes=60)
    contact = make_contact(hub)
    from campaigns.surveys.service import schedule_invitation
    from campaigns.surveys.models import Survey

    with hub.session() as session, session.begin():
        invitation = schedule_invitation(session, survey=session.get(Survey, survey.id), contact_id=contact.id,
                                         cause="later", send_at=frozen_clock.current + timedelta(hours=1))
        token = token_for(hub.settings, invitation)
    assert client.get(f"/s/{token}").status_code == 404
    assert count(hub, SurveyInvitation) == 1


def test_twenty_concurrent_posts_to_a_live_server_give_one_response(hub, email_ready):
    import threading

    import httpx

    from tests.web.conftest import serve

    survey = make_survey(hub, delay_minutes=0)
    _, token = invite_now(hub, survey, make_contact(hub))
    statuses: list[int] = []
    barrier = threading.Barrier(20)
    with serve(hub) as server:
        def post(n: int) -> None:
            with httpx.Client(base_url=server.url, timeout=60) as client:
                barrier.wait(timeout=30)
                statuses.append(client.post(f"/s/{token}", data={"q_nps": str(n % 11), "action": "submit"}).status_code)

        threads = [threading.Thread(target=post, args=(n,)) for n in range(20)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
    assert statuses == [303] * 20
    assert count(hub, SurveyResponse) == 1
    assert count(hub, TimelineEvent, TimelineEvent.kind == "survey.answered") == 1
    with hub.session(read_only=True) as session:
        assert session.scalars(select(SurveyResponse.edits)).one() == 19


@contextmanager
def listening(target, **handlers):  # type: ignore[no-untyped-def]
    """The engine's (or a class's) events heard by `handlers`, by event name, inside the block."""
    from sqlalchemy import event

    for name, handler in handlers.items():
        event.listen(target, name, handler)
    try:
        yield
    finally:
        for name, handler in handlers.items():
            event.remove(target, name, handler)


@contextmanager
def statements_sent(hub):  # type: ignore[no-untyped-def]
    """The SQL the engine sends inside the block."""
    from sqlalchemy import event

    sent: list[str] = []

    def record(_conn, _cursor, statement, *_args):  # type: ignore[no-untyped-def]
        sent.append(statement)

    event.listen(hub.db.engine, "before_cursor_execute", record)
    try:
        yield sent
    finally:
        event.remove(hub.db.engine, "before_cursor_execute", record)


def test_a_first_answer_is_read_and_written_on_one_connection_on_postgres(client, hub, invited):
    """The link read outside a transaction, then the writes as one transaction on the same connection:
    it is not handed back to the pool in between (a commit, a checkin and a checkout cost ~5% of a
    first answer's CPU), and the answer, its event and the detractor's task still commit together."""
    if hub.db.engine.dialect.name != "postgresql":
        pytest.skip("SQLite reads and writes in one transaction anyway")
    token = invited[3]
    checkouts: list[object] = []
    outside: list[bool] = []

    def checkout(dbapi_conn, _record, _proxy):  # type: ignore[no-untyped-def]
        checkouts.append(dbapi_conn)

    def autocommit(conn, *_args):  # type: ignore[no-untyped-def]
        outside.append(conn.connection.dbapi_connection.autocommit)

    with listening(hub.db.engine, checkout=checkout, before_cursor_execute=autocommit):
        sent = client.post(f"/s/{token}", data={"q_nps": "2", "q_wrong": "Курьер опоздал", "action": "submit"},
                           follow_redirects=False)
    assert sent.status_code == 303
    assert len(checkouts) == 1  # main: two (the read's connection went back to the pool)
    assert outside[0] and len(outside) > 2 and not any(outside[1:])
    assert count(hub, SurveyResponse, SurveyResponse.completed.is_(True)) == 1
    assert count(hub, TimelineEvent, TimelineEvent.kind == "survey.answered") == 1 and count(hub, Task) == 1
    with hub.db.engine.connect() as conn:  # the pool lends the connection out in transaction mode again
        assert conn.connection.dbapi_connection.autocommit is False


def test_a_first_answer_reads_the_contact_once_with_the_link_as_a_row(client, hub, invited):
    """The page and the POST read the link as plain rows; the POST hands the link's contact row to the
    answer's and the task's events (post_events' `contacts`), so they do not read it again, and no
    ORM Contact is built (~0.2 ms of CPU a POST)."""
    from sqlalchemy import event

    token = invited[3]
    built: list[object] = []

    def loaded(target, _context):  # type: ignore[no-untyped-def]
        built.append(target)

    event.listen(Contact, "load", loaded)
    try:
        with statements_sent(hub) as statements:
            sent = client.post(f"/s/{token}", data={"q_nps": "2", "q_wrong": "Курьер опоздал", "action": "submit"},
                               follow_redirects=False)
    finally:
        event.remove(Contact, "load", loaded)
    assert sent.status_code == 303
    assert built == []  # main read it as an ORM object in the link's statement
    reads = [s for s in statements if s.lstrip().startswith("SELECT") and "FROM survey_invitation" in s]
    assert len(reads) == 1
    contact_reads = [s for s in statements if s.lstrip().startswith("SELECT") and "contact.display_name" in s]
    assert contact_reads == reads  # the link's read, and no other
    assert count(hub, TimelineEvent, TimelineEvent.kind == "survey.answered") == 1 and count(hub, Task) == 1
