"""`hub users …` and `hub apikeys …` against the test store, through typer's CliRunner."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from hub.auth import api_key_principal, authenticate
from hub.cli import app as cli
from hub.models import ApiKey, AuditEntry, User
from hub.settings import get_settings

PASSWORD = "correct horse battery"


@pytest.fixture
def run(hub, tmp_path) -> Iterator:  # type: ignore[no-untyped-def]
    """run(*args, input=None) -> Result, with the CLI pointed at this test's store."""
    env = {
        "HUB_DATABASE_URL": hub.settings.database_url,
        "HUB_SECRET_KEY": "test-secret-key-" + "x" * 32,
        "HUB_DATA_DIR": str(tmp_path),
        "HUB_LIVE_BACKEND": "memory",
        "HUB_EMBEDDED_WORKER": "false",
    }
    runner = CliRunner()

    def invoke(*args: str, input: str | None = None):  # type: ignore[no-untyped-def]
        get_settings.cache_clear()
        try:
            return runner.invoke(cli, list(args), env=env, input=input)
        finally:
            get_settings.cache_clear()

    yield invoke
    get_settings.cache_clear()


def test_create_user_prompts_twice_and_the_password_works(hub, run):
    result = run("users", "create", "--email", "Olga@Example.com", "--role", "marketer", "--name", "Ольга",
                 input=f"{PASSWORD}\n{PASSWORD}\n")
    assert result.exit_code == 0, result.output
    assert "Created" in result.stderr and PASSWORD not in result.output
    with hub.session() as s:
        user = s.scalars(select(User)).one()
        assert (user.email, user.role, user.display_name) == ("olga@example.com", "marketer", "Ольга")
        assert user.password_hash.startswith("$argon2")
        assert authenticate(s, email="olga@example.com", password=PASSWORD) is not None
        assert s.scalars(select(AuditEntry.action)).all() == ["user.created"]


def test_mismatched_prompts_ask_again(hub, run):
    result = run("users", "create", "--email", "a@example.com",
                 input=f"{PASSWORD}\nsomething else\n{PASSWORD}\n{PASSWORD}\n")
    assert result.exit_code == 0, result.output
    with hub.session() as s:
        assert s.scalars(select(User.role)).one() == "agent"  # the default role


def test_password_from_stdin(hub, run):
    result = run("users", "create", "--email", "bot@example.com", "--role", "admin", "--password-stdin",
                 input=f"{PASSWORD}\n")
    assert result.exit_code == 0, result.output
    with hub.session() as s:
        assert authenticate(s, email="bot@example.com", password=PASSWORD) is not None


@pytest.mark.parametrize(
    ("args", "stdin", "message"),
    [
        (("--email", "not-an-email"), PASSWORD, "not a valid email"),
        (("--email", "a@example.com"), "short", "at least 10 characters"),
        (("--email", "a@example.com", "--role", "boss"), PASSWORD, "boss"),
    ],
)
def test_bad_users_are_refused_and_nothing_is_written(hub, run, args, stdin, message):
    result = run("users", "create", *args, "--password-stdin", input=f"{stdin}\n")
    assert result.exit_code == 2
    assert message in result.output
    with hub.session() as s:
        assert s.scalars(select(User)).all() == []


def test_duplicate_user_is_refused(hub, run):
    assert run("users", "create", "--email", "a@example.com", "--password-stdin", input=f"{PASSWORD}\n").exit_code == 0
    again = run("users", "create", "--email", "A@example.com", "--password-stdin", input=f"{PASSWORD}\n")
    assert again.exit_code == 2 and "already exists" in again.output


def test_list_and_set_password(hub, run):
    run("users", "create", "--email", "a@example.com", "--name", "Анна", "--password-stdin", input=f"{PASSWORD}\n")
    listed = run("users", "list")
    assert listed.exit_code == 0
    assert "a@example.com" in listed.stdout and "Анна" in listed.stdout and "agent" in listed.stdout

    changed = run("users", "set-password", "A@Example.com", input="a brand new secret\na brand new secret\n")
    assert changed.exit_code == 0, changed.output
    with hub.session() as s:
        assert authenticate(s, email="a@example.com", password=PASSWORD) is None
        assert authenticate(s, email="a@example.com", password="a brand new secret") is not None
        assert s.scalars(select(User.session_version)).one() == 2
    missing = run("users", "set-password", "nobody@example.com", "--password-stdin", input=f"{PASSWORD}\n")
    assert missing.exit_code == 1 and "no user" in missing.output


def test_api_key_printed_once_listed_by_prefix_and_revoked(hub, run):
    created = run("apikeys", "create", "--name", "Shop", "--scope", "events:write", "--scope", "contacts:read")
    assert created.exit_code == 0, created.output
    plain = created.stdout.strip()
    assert plain.startswith("hub_") and "\n" not in plain
    with hub.session() as s:
        principal = api_key_principal(s, plain)
        key = s.scalars(select(ApiKey)).one()
    assert principal is not None and principal.scopes == {"events:write", "contacts:read"}
    assert plain not in (key.key_hash, key.prefix)

    listed = run("apikeys", "list")
    assert key.prefix in listed.stdout and "Shop" in listed.stdout and plain not in listed.stdout

    revoked = run("apikeys", "revoke", key.prefix)
    assert revoked.exit_code == 0, revoked.output
    with hub.session() as s:
        assert api_key_principal(s, plain) is None
        assert s.scalars(select(AuditEntry.action).order_by(AuditEntry.id)).all() == ["api_key.created", "api_key.revoked"]
    again = run("apikeys", "revoke", plain)  # the whole key names it too
    assert again.exit_code == 0 and "already" in again.output
    assert run("apikeys", "revoke", "ffffffff").exit_code == 1


def test_api_key_needs_known_scopes(hub, run):
    result = run("apikeys", "create", "--name", "x", "--scope", "root")
    assert result.exit_code == 2 and "unknown or missing scopes" in result.output
    assert run("apikeys", "create", "--name", "x").exit_code == 2  # at least one --scope
    with hub.session() as s:
        assert s.scalars(select(ApiKey)).all() == []
