"""Settings: defaults from config/hub.toml, HUB_* overrides, clear errors naming the setting."""

from __future__ import annotations

import pytest

from hub.settings import SettingsError, load_settings


def test_defaults_use_sqlite_in_the_data_dir(monkeypatch, tmp_path):
    monkeypatch.delenv("HUB_DATABASE_URL", raising=False)
    settings = load_settings(data_dir=tmp_path)
    assert settings.sqlalchemy_url == f"sqlite:///{tmp_path.resolve() / 'hub.db'}"
    assert settings.default_region == "RU" and not settings.is_postgres


def test_environment_switches_to_postgresql(monkeypatch):
    monkeypatch.setenv("HUB_DATABASE_URL", "postgresql://hub@db.internal:5432/hub")
    monkeypatch.setenv("HUB_OUTBOX__MAX_ATTEMPTS", "3")
    settings = load_settings()
    assert settings.sqlalchemy_url == "postgresql+psycopg://hub@db.internal:5432/hub"
    assert settings.is_postgres and settings.outbox.max_attempts == 3


@pytest.mark.parametrize(
    ("env", "value", "named"),
    [
        ("HUB_DEFAULT_REGION", "XX", "default_region"),
        ("HUB_DEFAULT_TIMEZONE", "Mars/Olympus", "default_timezone"),
        ("HUB_DATABASE_URL", "mysql://x", "database_url"),
        ("HUB_OUTBOX__MAX_ATTEMPTS", "0", "outbox.max_attempts"),
        ("HUB_PUBLIC_BASE_URL", "hub.example.com", "public_base_url"),
        ("HUB_EMBEDDED_WORKER", "perhaps", "embedded_worker"),
    ],
)
def test_invalid_setting_names_itself(monkeypatch, env, value, named):
    monkeypatch.setenv(env, value)
    with pytest.raises(SettingsError) as info:
        load_settings()
    assert named in str(info.value) and env.split("__")[0] in str(info.value)


def test_secret_key_is_secret_and_generated_once(tmp_path):
    settings = load_settings(data_dir=tmp_path, secret_key=None)
    key = settings.signing_key()
    assert len(key) > 40 and settings.signing_key() == key
    assert oct((tmp_path / "secret.key").stat().st_mode)[-3:] == "600"
    shown = load_settings(data_dir=tmp_path, secret_key="s3cr3t-value")
    assert "s3cr3t-value" not in repr(shown)


@pytest.mark.any_store
def test_page_templates_are_not_reread_from_disk_unless_asked(hub):
    """Off by default: a page does not stat its template files on every request."""
    from hub.app import create_app
    from hub.web import pages

    create_app(hub, check_schema=False, start_worker=False)
    assert pages.ENV.auto_reload is False
    hub.settings.templates_reload = True
    try:
        create_app(hub, check_schema=False, start_worker=False)
        assert pages.ENV.auto_reload is True
    finally:
        hub.settings.templates_reload = False
        create_app(hub, check_schema=False, start_worker=False)
    assert load_settings(templates_reload="true").templates_reload is True
