"""`hub users …` and `hub apikeys …`: people who sign in, and keys integrations use."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy import select

from hub.models import ApiKey, Role, User

app = typer.Typer(help="Users who sign in: admins, agents, marketers.", no_args_is_help=True)
apikeys_app = typer.Typer(help="API keys for integrations (stored hashed; shown once).", no_args_is_help=True)

PasswordStdin = Annotated[
    bool, typer.Option("--password-stdin", help="Read the password from the first line of standard input.")
]


def _password(from_stdin: bool) -> str:
    if from_stdin:
        return typer.get_text_stream("stdin").readline().rstrip("\r\n")
    return typer.prompt("Password", hide_input=True, confirmation_prompt=True)


def _table(*columns: str) -> Table:
    table = Table(*columns)
    for column in table.columns:
        column.overflow = "fold"
    return table


@app.command("create")
def create(
    email: Annotated[str, typer.Option(help="Sign-in address.")],
    role: Annotated[Role, typer.Option(help="What the user may do.")] = Role.AGENT,
    name: Annotated[str, typer.Option(help="Name shown to colleagues (default: the email).")] = "",
    password_stdin: PasswordStdin = False,
) -> None:
    """Create a user; asks for the password twice unless --password-stdin."""
    from hub import audit
    from hub.auth import SYSTEM, create_user
    from hub.cli import err, fail, runtime

    password = _password(password_stdin)
    hub = runtime()
    try:
        with hub.session() as session, session.begin():
            user = create_user(session, email=email, password=password, role=role, display_name=name)
            audit.record(session, actor=SYSTEM, action="user.created", entity="user", entity_id=user.id,
                         changes={"email": [None, user.email], "role": [None, user.role]})
    except ValueError as exc:  # a taken or invalid email, a short password
        raise fail(str(exc)) from None
    finally:
        hub.close()
    err.print(f"[green]Created[/] {user.role} {user.email} (id {user.id})")


@app.command("list")
def list_users() -> None:
    """List users with their roles and whether they may sign in."""
    from hub.cli import runtime

    hub = runtime()
    try:
        with hub.session(read_only=True) as session:
            users = list(session.scalars(select(User).order_by(User.id)))
    finally:
        hub.close()
    table = _table("id", "email", "name", "role", "active")
    for user in users:
        table.add_row(str(user.id), user.email, user.display_name, user.role, "yes" if user.is_active else "no")
    Console().print(table)


@app.command("set-password")
def set_password(
    email: Annotated[str, typer.Argument(help="The user's sign-in address.")],
    password_stdin: PasswordStdin = False,
) -> None:
    """Set a user's password (their other sessions end)."""
    from hub import audit
    from hub.auth import SYSTEM, change_password
    from hub.cli import err, fail, runtime
    from hub.identities import InvalidIdentity, normalize_email

    try:
        address = normalize_email(email)
    except InvalidIdentity as exc:
        raise fail(str(exc)) from None
    password = _password(password_stdin)
    hub = runtime()
    try:
        with hub.session() as session, session.begin():
            user = session.scalars(select(User).where(User.email == address)).first()
            if user is None:
                raise fail(f"no user has the email {address}; see `hub users list`", code=1)
            change_password(session, user, password)
            audit.record(session, actor=SYSTEM, action="user.password_changed", entity="user", entity_id=user.id)
    except ValueError as exc:
        raise fail(str(exc)) from None
    finally:
        hub.close()
    err.print(f"[green]Password changed[/] for {address}")


@apikeys_app.command("create")
def create_key(
    name: Annotated[str, typer.Option(help="Which integration uses it (also the default event source).")],
    scope: Annotated[list[str], typer.Option("--scope", help="A permission; repeat for several.")],
) -> None:
    """Create an API key and print it once (only its hash is kept)."""
    from hub import audit
    from hub.auth import SYSTEM, create_api_key
    from hub.cli import err, fail, runtime

    hub = runtime()
    try:
        with hub.session() as session, session.begin():
            key, plain = create_api_key(session, name=name, scopes=scope)
            audit.record(session, actor=SYSTEM, action="api_key.created", entity="api_key", entity_id=key.id,
                         changes={"name": [None, key.name], "scopes": [None, key.scopes]})
    except ValueError as exc:
        raise fail(str(exc)) from None
    finally:
        hub.close()
    # The key alone on stdout, so `KEY=$(hub apikeys create …)` works; the advice goes to stderr.
    typer.echo(plain)
    err.print(f"[green]Created[/] key {key.prefix} ({', '.join(key.scopes)}). Store it now: it is not shown again.")


@apikeys_app.command("list")
def list_keys() -> None:
    """List API keys by prefix (never the keys themselves)."""
    from hub.cli import runtime

    hub = runtime()
    try:
        with hub.session(read_only=True) as session:
            keys = list(session.scalars(select(ApiKey).order_by(ApiKey.id)))
    finally:
        hub.close()
    table = _table("prefix", "name", "scopes", "created", "revoked")
    for key in keys:
        table.add_row(key.prefix, key.name, " ".join(key.scopes), f"{key.created_at:%Y-%m-%d %H:%M}",
                      f"{key.revoked_at:%Y-%m-%d %H:%M}" if key.revoked_at else "")
    Console().print(table)


@apikeys_app.command("revoke")
def revoke_key(
    prefix: Annotated[str, typer.Argument(help="The key's prefix (from `hub apikeys list`) or the key.")],
) -> None:
    """Revoke an API key at once; it stays listed as revoked."""
    from hub import audit
    from hub.auth import KEY_PREFIX, SYSTEM, revoke_api_key
    from hub.cli import err, fail, runtime

    wanted = prefix.strip().removeprefix(KEY_PREFIX).split("_", 1)[0]
    hub = runtime()
    try:
        with hub.session() as session, session.begin():
            key = session.scalars(select(ApiKey).where(ApiKey.prefix == wanted)).first()
            if key is None:
                raise fail(f"no API key has the prefix {wanted!r}; see `hub apikeys list`", code=1)
            already = key.revoked_at is not None
            revoke_api_key(session, key)
            if not already:
                audit.record(session, actor=SYSTEM, action="api_key.revoked", entity="api_key", entity_id=key.id)
    finally:
        hub.close()
    err.print(f"Key {wanted} ({key.name}) {'was already' if already else 'is now'} revoked")
