"""`hub contacts …`: import and export contacts as CSV."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

app = typer.Typer(help="Contacts: import and export as CSV.", no_args_is_help=True)


@app.command("import")
def import_file(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True,
                                         help="A UTF-8 CSV file with a header row (',' or ';' between fields).")],
) -> None:
    """Import contacts from CSV: all rows or, if any row is invalid, none (exit code 1, rejected lines listed).

    Columns: name, email, phone, tags, locale, time_zone, owner_email, lifecycle_stage, attr:<key>.
    A row whose email or phone is already known updates that contact."""
    from hub.auth import SYSTEM
    from hub.cli import err, runtime
    from hub.csvio import import_contacts

    hub = runtime()
    try:
        with (
            open(file, encoding="utf-8-sig", newline="") as stream,
            Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                     TimeElapsedColumn(), console=err, transient=False) as bar,
            hub.session() as session,
        ):
            task = bar.add_task("Checking rows", total=None)

            def progress(stage: str, done: int, total: int | None) -> None:
                if stage == "writing" and total is not None and bar.tasks[task].total != total:
                    bar.update(task, description="Importing", total=total)
                bar.update(task, completed=done)

            result = import_contacts(session, stream=stream, actor=SYSTEM, region=hub.settings.default_region,
                                     progress=progress, source=file.name)
            if result.ok:
                session.commit()
    finally:
        hub.close()

    if not result.ok:
        table = Table("line", "column", "problem", title=f"Rejected rows in {file.name}")
        table.columns[2].overflow = "fold"
        for error in result.errors:
            table.add_row(str(error.line), error.column or "", error.message)
        Console().print(table)
        err.print(f"[bold red]Nothing was imported:[/] {result.rejected} of {result.rows} rows are invalid. "
                  "Fix the lines above and run the import again.")
        raise typer.Exit(1)
    err.print(f"[green]Imported {result.rows} rows:[/] {result.created} created, {result.updated} updated, "
              f"{result.unchanged} unchanged.")


@app.command("export")
def export_file(
    file: Annotated[Path | None, typer.Argument(dir_okay=False, help="Where to write (default: standard output).")] = None,
    excel: Annotated[bool, typer.Option("--excel", help="';' between fields, a BOM and formula guards.")] = False,
) -> None:
    """Export every contact (merged duplicates excluded) as CSV that `hub contacts import` reads back."""
    from sqlalchemy import func, select

    from hub.cli import err, runtime
    from hub.csvio import export_contacts
    from hub.models import Contact

    hub = runtime()
    try:
        with hub.session(read_only=True) as session:
            out = open(file, "w", encoding="utf-8", newline="") if file else sys.stdout
            try:
                for chunk in export_contacts(session, excel=excel):
                    out.write(chunk)
            finally:
                if file:
                    out.close()
            count = session.scalar(select(func.count()).select_from(Contact).where(Contact.merged_into.is_(None)))
    finally:
        hub.close()
    if file:
        err.print(f"[green]Exported {count} contacts[/] to {file}")
