"""Public links (survey, booking, form, unsubscribe) follow the address the hub serves on while
public_base_url is unset: the request's address on pages, `hub serve`'s --host/--port elsewhere."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from campaigns.surveys.links import url_for
from campaigns.surveys.models import SurveyInvitation
from campaigns.unsubscribe.links import unsubscribe_url
from channels.forms.demo import demo as forms_demo
from hub.cli import app as cli, served_url
from hub.models import Role
from hub.runtime import Hub
from hub.settings import DEFAULT_PUBLIC_BASE_URL, get_settings, load_settings
from hub.triggers import TriggerRegistry
from tests.conftest import make_settings, test_registry
from tests.web.conftest import ORIGIN, login


def test_links_follow_the_served_port_unless_public_base_url_is_set(tmp_path: Path) -> None:
    served = load_settings(data_dir=tmp_path, serve_url="http://127.0.0.1:8123", secret_key="k" * 48)
    assert served.public_base_url == "http://127.0.0.1:8123" and not served.public_base_url_set
    invitation = SurveyInvitation(id=1, survey_id=2, contact_id=3, nonce="n")
    assert url_for(served, invitation).startswith("http://127.0.0.1:8123/s/")
    assert unsubscribe_url(served, contact_id=3, channel="email").startswith("http://127.0.0.1:8123/u/")
    configured = load_settings(data_dir=tmp_path, serve_url="http://127.0.0.1:8123",
                               public_base_url="https://hub.example.com/", secret_key="k" * 48)
    assert configured.public_base_url == "https://hub.example.com" and configured.public_base_url_set
    assert url_for(configured, invitation).startswith("https://hub.example.com/s/")
    assert load_settings(data_dir=tmp_path).public_base_url == DEFAULT_PUBLIC_BASE_URL
    with pytest.raises(Exception, match="serve_url"):
        load_settings(data_dir=tmp_path, serve_url="ftp://x")


def test_a_wildcard_interface_is_reached_on_loopback() -> None:
    assert served_url("127.0.0.1", 8123) == "http://127.0.0.1:8123"
    assert served_url("0.0.0.0", 9000) == "http://127.0.0.1:9000"
    assert served_url("::1", 9000) == "http://[::1]:9000"
    assert served_url("hub.lan", 80) == "http://hub.lan:80"


def test_hub_serve_points_the_links_at_its_own_port(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HUB_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("HUB_SECRET_KEY", "k" * 48)
    monkeypatch.delenv("HUB_PUBLIC_BASE_URL", raising=False)
    monkeypatch.delenv("HUB_SERVE_URL", raising=False)
    get_settings.cache_clear()
    ran: dict[str, Any] = {}

    def fake_run(app: str, **options: Any) -> None:
        ran.update(options, public_base_url=get_settings().public_base_url, env=os.environ.get("HUB_SERVE_URL"),
                   demo=get_settings().demo.active, smtp=os.environ.get("HUB_CHANNELS__EMAIL__SMTP_HOST"))

    monkeypatch.setattr("uvicorn.run", fake_run)
    try:
        runner = CliRunner()
        assert runner.invoke(cli, ["migrate"]).exit_code == 0
        done = runner.invoke(cli, ["serve", "--port", "8123"])
        assert done.exit_code == 0, done.output
    finally:
        os.environ.pop("HUB_SERVE_URL", None)  # serve sets it for the API processes it starts
        get_settings.cache_clear()
    assert ran["port"] == 8123
    assert not ran["demo"] and ran["smtp"] is None  # no stand-in outside the demo
    assert ran["public_base_url"] == ran["env"] == "http://127.0.0.1:8123"
    assert (tmp_path / "served-url").read_text().strip() == "http://127.0.0.1:8123"


def test_pages_show_links_at_the_address_the_browser_used(hub: Hub, tmp_path: Path) -> None:
    from hub.app import create_app

    with TestClient(create_app(hub, check_schema=False, start_worker=False), base_url=ORIGIN) as web:
        login(web, hub, "admin@example.com", role=Role.ADMIN)
        line = forms_demo(hub, seed=7)
        assert "http://127.0.0.1:8000/channels/forms/f/" in line  # outside a request: the served address
        form_id = re.search(r'href="/forms/(\d+)"', web.get("/forms").text).group(1)  # type: ignore[union-attr]
        page = web.get(f"/forms/{form_id}").text
        assert f"{ORIGIN}/channels/forms/f/" in page and "127.0.0.1:8000" not in page
    settings = make_settings(str(hub.settings.database_url), tmp_path, public_base_url="http://hub.example.com:8443")
    configured = Hub(settings, registry=test_registry(), triggers=TriggerRegistry(), db=hub.db)
    with TestClient(create_app(configured, check_schema=False, start_worker=False), base_url=ORIGIN) as web:
        login(web, configured, "admin2@example.com", role=Role.ADMIN)
        page = web.get(f"/forms/{form_id}").text
        assert "http://hub.example.com:8443/channels/forms/f/" in page
    configured.broker.stop()


def test_the_surveys_page_opens_a_demo_customers_survey_link(hub: Hub) -> None:
    from datetime import timedelta

    from campaigns.surveys.demo import DEFINITION
    from campaigns.surveys.models import InvitationStatus
    from campaigns.surveys.service import SurveyIn, create_survey
    from hub import clock
    from hub.auth import SYSTEM
    from tests.web.test_pages import _contact

    from hub.app import create_app

    contact_id = _contact(hub, "Demo Customer", email="demo.customer@example.com")
    with hub.session() as session, session.begin():
        survey = create_survey(session, actor=SYSTEM, data=SurveyIn.model_validate(DEFINITION))
        survey_id = survey.id
        now = clock.now()
        for cause in ("manual:real-customer", "demo:42"):
            session.add(SurveyInvitation(survey_id=survey_id, contact_id=contact_id, cause=cause, nonce=cause,
                                         status=InvitationStatus.SENT.value, send_at=now, sent_at=now,
                                         channel="email", expires_at=now + timedelta(days=14), created_at=now))
    with TestClient(create_app(hub, check_schema=False, start_worker=False), base_url=ORIGIN) as web:
        login(web, hub, "marketer@example.com", role=Role.MARKETER)
        page = web.get("/surveys").text
        links = re.findall(r'href="(http://testserver/s/[^"]+)"', page)
        assert len(links) == 1 and "Open as a customer would" in page
        survey_page = web.get(links[0].removeprefix(ORIGIN))
        assert survey_page.status_code == 200 and "How likely" in survey_page.text or "Насколько" in survey_page.text
    with hub.session() as session, session.begin():
        session.query(SurveyInvitation).filter(SurveyInvitation.cause == "demo:42").delete()
    with TestClient(create_app(hub, check_schema=False, start_worker=False), base_url=ORIGIN) as web:
        login(web, hub, "marketer@example.com", create=False)
        page = web.get("/surveys").text
        assert "/s/" not in page  # a real customer's link is never offered
        assert f'href="/surveys/{survey_id}/preview"' in page


def test_other_commands_on_the_data_directory_follow_the_last_served_address(tmp_path: Path) -> None:
    load_settings(data_dir=tmp_path, serve_url="http://127.0.0.1:8123").remember_served_url()
    beside = load_settings(data_dir=tmp_path)  # `hub worker`, `hub campaigns run` in another process
    assert beside.public_base_url == "http://127.0.0.1:8123" and not beside.public_base_url_set
    assert load_settings(data_dir=tmp_path, public_base_url="https://hub.example.com").public_base_url == \
        "https://hub.example.com"
    (tmp_path / "served-url").write_text("javascript:alert(1)")
    assert load_settings(data_dir=tmp_path).public_base_url == DEFAULT_PUBLIC_BASE_URL


def test_hub_serve_demo_starts_the_stand_ins_and_stops_them_with_the_hub(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    monkeypatch.setenv("HUB_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("HUB_SECRET_KEY", "k" * 48)
    monkeypatch.delenv("HUB_PUBLIC_BASE_URL", raising=False)
    monkeypatch.setattr("hub.cli.demo.load_with_progress", lambda hub, **kw: None)  # no 300 contacts here
    get_settings.cache_clear()
    before = dict(os.environ)
    ran: dict[str, Any] = {}

    def fake_run(app: str, **options: Any) -> None:
        settings = get_settings()
        runtime = Hub(settings)
        try:
            ran.update(configured={n: runtime.channel(n).configured for n in ("email", "sms", "phone")},
                       mailbox=settings.demo.mailbox, twilio=settings.demo.twilio_url,
                       smtp=(settings.channels["email"]["smtp_host"], int(settings.channels["email"]["smtp_port"])))
            with socket.create_connection(ran["smtp"], timeout=5) as conn:
                ran["greeting"] = conn.recv(100)
        finally:
            runtime.close()

    monkeypatch.setattr("uvicorn.run", fake_run)
    try:
        runner = CliRunner()
        assert runner.invoke(cli, ["migrate"]).exit_code == 0
        done = runner.invoke(cli, ["serve", "--demo", "--port", "8124"])
        assert done.exit_code == 0, done.output
    finally:
        for name in set(os.environ) - set(before):  # what serve set for its API processes
            del os.environ[name]
        get_settings.cache_clear()
    assert ran["configured"] == {"email": True, "sms": True, "phone": True}
    assert ran["greeting"].startswith(b"220")
    assert ran["mailbox"] == (tmp_path / "demo" / "mailbox").resolve()
    assert "Local SMTP server at smtp://127.0.0.1:" in done.output and "Local Twilio at http://127.0.0.1:" in done.output
    assert "http://127.0.0.1:8124/admin/test-mailbox" in done.output
    with pytest.raises(OSError):  # stopped with the hub
        socket.create_connection(ran["smtp"], timeout=2).close()


def test_the_demo_prints_a_survey_link_a_customer_can_answer(hub: Hub) -> None:
    from hub.app import create_app
    from hub.demo import load_demo

    # 8 contacts, as tests/test_demo.py's packaged load: the survey's customers come from the packages'
    # demos (16 invitations, 12 answers with 8 contacts or 30), the link is the same kind either way.
    summary = load_demo(hub, contacts=8, long_history=0)
    line = next(line for line in summary.extras if line.startswith("surveys:"))
    link = re.search(r"answer it as a customer: (http://127\.0\.0\.1:8000/s/\S+)", line)
    assert link, line
    with TestClient(create_app(hub, check_schema=False, start_worker=False)) as client:
        page = client.get(link.group(1).removeprefix("http://127.0.0.1:8000"))
    assert page.status_code == 200 and 'name="q_nps"' in page.text
