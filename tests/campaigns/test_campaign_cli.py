"""`hub campaigns list` and `hub campaigns run ID --watch` against the test store (typer's CliRunner)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.campaigns.helpers import add_contacts, campaign, deliveries, make_campaign, make_segment, make_template
from tests.campaigns.helpers import smtp  # noqa: F401 - fixture
from tests.cli import cli_invoker


@pytest.fixture
def run(hub, tmp_path) -> Iterator:  # type: ignore[no-untyped-def]
    env = {
        "HUB_DATABASE_URL": hub.settings.database_url,
        "HUB_SECRET_KEY": "test-secret-key-" + "x" * 32,
        "HUB_DATA_DIR": str(tmp_path),
        "HUB_LIVE_BACKEND": "memory",
        "HUB_EMBEDDED_WORKER": "false",
        # A campaign on a channel that is not set up refuses to run: the CLI's hub has email set up.
        "HUB_CHANNELS__EMAIL__SMTP_HOST": "smtp.invalid",
        "HUB_CHANNELS__EMAIL__FROM_ADDRESS": "news@hub.example.com",
    }
    with cli_invoker(env) as invoke:
        yield invoke


def test_help_explains_the_commands(run):
    result = run("campaigns", "--help")
    assert result.exit_code == 0
    assert "list" in result.output and "run" in result.output and "--watch" in run("campaigns", "run", "--help").output


def test_run_materialises_a_draft_and_list_shows_its_progress(hub, run):
    add_contacts(hub, 4)
    cid = make_campaign(hub, segment_id=make_segment(hub), template_ids=[make_template(hub)], schedule=False,
                        name="CLI campaign")
    result = run("campaigns", "run", str(cid))
    assert result.exit_code == 0, result.output
    assert len(deliveries(hub, cid)) == 4
    assert campaign(hub, cid).status == "running"
    listed = run("campaigns", "list")
    assert listed.exit_code == 0 and "CLI" in listed.output and "running" in listed.output


def test_bad_ids_and_states_are_errors(hub, run):
    assert run("campaigns", "run", "4242").exit_code == 2
    assert run("campaigns", "list", "--status", "sleeping").exit_code == 2
    add_contacts(hub, 1)
    cid = make_campaign(hub, segment_id=make_segment(hub), template_ids=[make_template(hub)])
    from tests.campaigns.helpers import act

    act(hub, cid, "cancel")
    result = run("campaigns", "run", str(cid))
    assert result.exit_code == 2 and "cancelled" in result.output


def test_watch_shows_a_progress_bar_until_the_worker_has_sent_everything(hub, run, smtp):
    import threading

    from hub.worker import Worker

    add_contacts(hub, 5)
    cid = make_campaign(hub, segment_id=make_segment(hub), template_ids=[make_template(hub)], schedule=False)
    stop = threading.Event()
    worker = Worker(hub, name="cli-test")

    def work() -> None:
        while not stop.is_set():
            if not worker.tick():
                stop.wait(0.1)

    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    try:
        result = run("campaigns", "run", str(cid), "--watch", "--interval", "0.2")
    finally:
        stop.set()
        thread.join(timeout=30)
    assert result.exit_code == 0, result.output
    assert "5/5" in result.output and "sent 5" in result.output
    assert {d.status for d in deliveries(hub, cid)} == {"sent"}
