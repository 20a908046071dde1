"""`hub demo …` commands: load a realistic data set so a newcomer sees a living timeline at once."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from hub.cli import fail, runtime

if TYPE_CHECKING:
    from hub.demo import DemoSummary
    from hub.runtime import Hub

app = typer.Typer(help="Demo data: contacts, months of history, orders, and demo users to sign in with.",
                  no_args_is_help=True)
out = Console()


@app.command("load")
def load(
    contacts: Annotated[int, typer.Option(min=1, max=5000, help="How many contacts to create.")] = 300,
    seed: Annotated[int, typer.Option(help="Random seed; the same seed gives the same people and history.")] = 7,
    long_history: Annotated[int, typer.Option(min=0, max=20_000,
                                              help="Events on the first contact, to show endless scrolling (0: none).")] = 1500,
) -> None:
    """Load demo contacts and their history (safe to repeat: rows already loaded are left alone)."""
    from hub.migrate import SchemaBehind, check_current

    hub = runtime()
    try:
        check_current(hub.db.engine)
    except SchemaBehind as exc:
        raise fail(f"{exc} (run `hub migrate` first)") from None
    try:
        summary = load_with_progress(hub, contacts=contacts, seed=seed, long_history=long_history)
    finally:
        hub.close()
    print_summary(summary, console=out)


def load_with_progress(hub: Hub, *, if_empty: bool = False, **options: Any) -> DemoSummary | None:
    """Load the demo set behind a progress bar; with if_empty, only into a store without contacts."""
    from hub.demo import load_demo, load_demo_if_empty, store_is_empty

    if if_empty and not store_is_empty(hub):
        return None  # no progress bar stuck at 0 on every later start
    loader = load_demo_if_empty if if_empty else load_demo
    with Progress(TextColumn("[bold]Loading demo data"), BarColumn(), MofNCompleteColumn(), TextColumn("contacts"),
                  TimeElapsedColumn(), console=out, transient=False) as bar:
        task = bar.add_task("demo", total=options.get("contacts", 300))
        return loader(hub, progress=lambda done, total: bar.update(task, completed=done, total=total), **options)


def print_summary(summary: DemoSummary, *, console: Console | None = None) -> None:
    """Show what a demo load wrote and the demo users' logins."""
    console = console or out
    table = Table(title="Demo data", show_header=False, title_justify="left")
    for label, value in (
        ("contacts in the demo set", summary.contacts),
        ("contacts created", summary.contacts_created),
        ("timeline events created", summary.events_created),
        ("events already there", summary.events_existing),
        ("orders created", summary.orders_created),
        ("consent records created", summary.consents_created),
        ("tasks created", summary.tasks_created),
    ):
        table.add_row(label, str(value))
    console.print(table)
    # Below the table, unwrapped: these lines carry the links to open (a form, the booking page).
    for line in summary.extras:
        package, _, what = line.partition(": ")
        console.print(f"[bold]{package}[/]: {what}", soft_wrap=True)
    logins = Table(title="Demo users (password for all: " + summary.password + ")", title_justify="left")
    logins.add_column("email")
    logins.add_column("role")
    logins.add_column("")
    for email, role in summary.logins:
        logins.add_row(email, role, "created now" if email in summary.users_created else "already there")
    console.print(logins)
    console.print("[yellow]These accounts use a published password: never load demo data into a real installation.[/]")


def print_links(hub: Hub, stand_ins: list[Any], *, console: Console | None = None) -> None:
    """Show the local servers the demo started and where the hub sends what (every start)."""
    console = console or out
    if not stand_ins:
        return
    console.print("[bold]Demo stand-ins[/]: email, SMS and calls go to these local servers, never out")
    for each in stand_ins:
        console.print(f"  [bold]{each.label}[/] at {each.url}: {each.note}", soft_wrap=True)
    console.print(f"Test mailbox (sign in as admin@example.com): {hub.settings.public_base_url}/admin/test-mailbox",
                  soft_wrap=True)
