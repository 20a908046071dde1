"""The `hub` command: serve, worker, migrate, and the admin commands in the modules beside this one."""

from __future__ import annotations

import sys
from typing import Annotated

import typer
import typer.core
from rich.console import Console

from hub.settings import SettingsError, get_settings


def _flag_type(self: typer.core.TyperOption, ctx: typer.core._click.Context) -> str | None:
    """A flag takes no value, so its help shows no type. Typer 0.29's rich help prints one for every
    option (`--help <bool>`, `--no-worker <bool>`), which reads as if the flag wanted a value."""
    if self.is_flag and not self.count:
        return None
    return _option_type(self, ctx)


_option_type = typer.core.TyperOption.display_type_rich
typer.core.TyperOption.display_type_rich = _flag_type  # type: ignore[method-assign]

app = typer.Typer(
    name="hub",
    help="Omnichannel communication hub: one timeline per contact. Settings come from config/hub.toml "
    "and HUB_* environment variables (see config/example.env).",
    no_args_is_help=True,
    rich_markup_mode="rich",
    pretty_exceptions_show_locals=False,
)
err = Console(stderr=True)


def fail(message: str, code: int = 2) -> typer.Exit:
    """Print a red message saying what to do, and give the exit to raise."""
    err.print(f"[bold red]error:[/] {message}")
    return typer.Exit(code)


def runtime():  # type: ignore[no-untyped-def]
    """Build the process runtime, turning set-up errors into clear messages."""
    from hub.registry import ChannelLoadError
    from hub.runtime import Hub

    try:
        return Hub(get_settings())
    except (SettingsError, ChannelLoadError) as exc:
        raise fail(str(exc)) from None


@app.command()
def migrate() -> None:
    """Create or upgrade the database schema to this version (safe to run repeatedly)."""
    from hub.migrate import current_revision, head_revision, upgrade

    hub = runtime()
    before = current_revision(hub.db.engine)
    upgrade(hub.db.engine)
    after = head_revision()
    where = hub.settings.sqlalchemy_url.split("@")[-1]
    if before == after:
        err.print(f"[green]Schema already current[/] ({after}) at {where}")
    else:
        err.print(f"[green]Migrated[/] {before or 'empty database'} → {after} at {where}")


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    demo: Annotated[bool, typer.Option("--demo", help="Load demo data first if the store has no contacts, and "
                                       "send email, SMS and calls to local stand-ins started beside the hub.")] = False,
    workers: Annotated[int, typer.Option(help="API processes (PostgreSQL only; SQLite uses one).")] = 1,
    no_worker: Annotated[bool, typer.Option("--no-worker", help="Do not run the embedded outbox worker.")] = False,
) -> None:
    """Run the web app and API (with an embedded worker unless --no-worker)."""
    import os

    import uvicorn

    from hub.migrate import SchemaBehind, check_current

    # Links made outside a request (the worker's emails, the demo's printout) follow this address
    # while public_base_url is unset. The API processes read it from the environment.
    os.environ["HUB_SERVE_URL"] = served_url(host, port)
    if no_worker:
        os.environ["HUB_EMBEDDED_WORKER"] = "false"
    get_settings.cache_clear()
    get_settings().remember_served_url()
    stand_ins = start_demo_stand_ins() if demo else []
    try:
        hub = runtime()
        try:
            check_current(hub.db.engine)
        except SchemaBehind as exc:
            raise fail(str(exc)) from None
        if workers > 1 and not hub.settings.is_postgres:
            raise fail("several API processes need PostgreSQL; set HUB_DATABASE_URL=postgresql://… or use --workers 1")
        if demo:
            from hub.cli.demo import load_with_progress, print_links, print_summary

            summary = load_with_progress(hub, if_empty=True)
            if summary is not None:
                print_summary(summary)
            print_links(hub, stand_ins)
        hub.close()
        settings = get_settings()
        base = settings.public_base_url
        err.print(f"[bold green]The hub is running at http://{host}:{port}/[/]  (API docs: http://{host}:{port}/api/docs)")
        if base.rstrip("/") != served_url(host, port):
            err.print(f"Public links (emails, surveys, webhooks) use {base}")
        from hub.observability import configure_logging

        configure_logging(level=settings.log_level, json_logs=settings.log_json)
        uvicorn.run("hub.asgi:app", host=host, port=port, workers=workers, log_config=None, proxy_headers=True)
    finally:
        from hub.demo_standins import stop_stand_ins

        stop_stand_ins(stand_ins)


def served_url(host: str, port: int) -> str:
    """The address links made outside a request point at: a wildcard interface is reached on loopback."""
    shown = "127.0.0.1" if host in ("", "0.0.0.0", "::", "[::]") else host
    if ":" in shown and not shown.startswith("["):
        shown = f"[{shown}]"
    return f"http://{shown}:{port}"


def start_demo_stand_ins() -> list:  # type: ignore[type-arg]
    """Start the local SMTP and Twilio servers and point the channels at them (for this process and
    the API processes it starts, through the environment)."""
    import os

    from hub.demo_standins import environment, start_stand_ins

    settings = get_settings()
    try:
        stand_ins = start_stand_ins(settings, hub_url=settings.public_base_url)
    except RuntimeError as exc:
        raise fail(str(exc)) from None
    os.environ.update(environment(stand_ins))
    get_settings.cache_clear()
    return stand_ins


@app.command()
def worker(
    name: Annotated[str | None, typer.Option(help="Worker name in logs and claims (default: host:pid).")] = None,
) -> None:
    """Run an outbox worker and the scheduler's ticks (run several side by side on PostgreSQL)."""
    from hub.migrate import SchemaBehind, check_current
    from hub.observability import configure_logging
    from hub.worker import run_worker

    hub = runtime()
    try:
        check_current(hub.db.engine)
    except SchemaBehind as exc:
        raise fail(str(exc)) from None
    configure_logging(level=hub.settings.log_level, json_logs=hub.settings.log_json)
    run_worker(hub, name=name)


def main() -> None:
    try:
        app()
    except SettingsError as exc:
        err.print(f"[bold red]error:[/] {exc}")
        sys.exit(2)


def _add_groups() -> None:
    from hub.plugin import load_group

    from hub.cli import contacts, demo, plugins, privacy, store, users

    app.add_typer(contacts.app, name="contacts")
    app.add_typer(users.app, name="users")
    app.add_typer(users.apikeys_app, name="apikeys")
    app.add_typer(demo.app, name="demo")
    app.add_typer(privacy.app, name="privacy")
    app.add_typer(store.app, name="store")
    app.add_typer(plugins.app, name="plugins")
    # Packages add their own command groups (the phone adapter's `hub calls …`) through entry points,
    # so the hub imports no channel.
    for name, group in load_group("hub.commands", what="command group").items():
        app.add_typer(group, name=name)


_add_groups()
