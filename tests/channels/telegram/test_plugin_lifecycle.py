"""The plug-in's tables come and go with it: `hub plugins remove telegram` downgrades its branch,
`hub migrate` (the plug-in installed again) brings them back."""

from __future__ import annotations

from sqlalchemy import create_engine, inspect

from hub.migrate import check_current, current_revision, downgrade, head_revision, plugin_locations, upgrade
from tests.cli import cli_invoker


def tables(url: str) -> set[str]:
    engine = create_engine(url)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_downgrade_then_upgrade_drops_and_recreates_its_tables(tmp_path) -> None:
    assert "telegram" in plugin_locations()
    engine = create_engine(f"sqlite:///{tmp_path / 'hub.db'}")
    upgrade(engine)
    check_current(engine)  # the core head is implied by the plug-in's (depends_on), not stored beside it
    assert "telegram_poll_state" in set(inspect(engine).get_table_names())
    downgrade(engine, "telegram@base")
    names = set(inspect(engine).get_table_names())
    assert "telegram_poll_state" not in names and {"contact", "timeline_event"} <= names
    assert current_revision(engine) != head_revision()  # with the plug-in still installed, migrate is due
    upgrade(engine)
    assert "telegram_poll_state" in set(inspect(engine).get_table_names())
    assert current_revision(engine) == head_revision()
    engine.dispose()


def test_hub_plugins_remove_drops_the_tables_and_says_how_to_uninstall(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'hub.db'}"
    with cli_invoker({"HUB_DATABASE_URL": url, "HUB_DATA_DIR": str(tmp_path)}) as invoke:
        assert invoke("migrate").exit_code == 0
        assert "telegram_poll_state" in tables(url)
        listed = invoke("plugins", "list")
        assert "hub-telegram" in listed.output and "hub.migrations: telegram" in listed.output
        removed = invoke("plugins", "remove", "telegram")
        assert removed.exit_code == 0, removed.output
        assert "pip uninstall -y hub-telegram" in removed.output
        assert "telegram_poll_state" not in tables(url) and "contact" in tables(url)
        unknown = invoke("plugins", "remove", "fax")
        assert unknown.exit_code == 2 and "no installed plug-in" in unknown.output
        assert invoke("migrate").exit_code == 0
    assert "telegram_poll_state" in tables(url)
