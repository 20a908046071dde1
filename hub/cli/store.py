"""`hub store …`: move a store to PostgreSQL (`hub store copy --to postgresql://…`).

A team that started with `make run` on SQLite copies every row into an empty PostgreSQL database:
tables in dependency order, in batches, inside one target transaction (a failed copy leaves the target
empty, so it can simply be run again), sequences set past the copied ids, and the row counts of both
sides compared at the end. The source is read in one transaction, so it is one consistent snapshot.
Files stay where they are: rows name files in the data directory by their content hash, not by a
path in the database, so the PostgreSQL hub keeps using the same data directory.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Annotated, Any

import sqlalchemy as sa
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Connection, Engine

from hub.cli import err, fail, runtime

app = typer.Typer(help="The store itself: copy it into PostgreSQL when a team outgrows SQLite.", no_args_is_help=True)
out = Console()
VERSION_TABLE = "alembic_version"


class CopyRefused(RuntimeError):
    """The target cannot take the copy; the message says what to do."""


class CopyFailed(RuntimeError):
    """The target refused a row; the copy was rolled back whole."""


@dataclass
class CopyResult:
    source_counts: dict[str, int]
    target_counts: dict[str, int] = field(default_factory=dict)
    migrated_target: bool = False

    @property
    def mismatches(self) -> dict[str, tuple[int, int]]:
        return {name: (n, self.target_counts.get(name, -1)) for name, n in self.source_counts.items()
                if self.target_counts.get(name, -1) != n}


def postgres_url(url: str) -> str:
    """The SQLAlchemy URL of a PostgreSQL target (psycopg 3); CopyRefused for anything else."""
    url = url.strip()
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url.removeprefix(prefix)
    if url.startswith("postgresql+psycopg://"):
        return url
    raise CopyRefused("--to must be a PostgreSQL URL such as postgresql://hub@127.0.0.1:5432/hub")


def _tables() -> list[sa.Table]:
    from hub.schema import metadata

    return list(metadata().sorted_tables)  # parents before children


def _target_table(table: sa.Table, target_metadata: sa.MetaData) -> sa.Table:
    """The table as written to PostgreSQL: a Python None in a JSON column stays SQL NULL (not JSON null)."""
    copy = table.to_metadata(target_metadata)
    for column in copy.c:
        if isinstance(column.type, sa.JSON) or isinstance(getattr(column.type, "impl", None), sa.JSON):
            column.type = JSONB(none_as_null=True)
    return copy


def _counts(conn: Connection, tables: list[sa.Table]) -> dict[str, int]:
    return {t.name: conn.scalar(sa.select(sa.func.count()).select_from(t)) or 0 for t in tables}


def prepare_target(target: Engine, tables: list[sa.Table]) -> bool:
    """Migrate an empty target, or check that a migrated one holds no rows; True when it was migrated."""
    from hub.migrate import SchemaBehind, check_current, upgrade

    present = set(sa.inspect(target).get_table_names())
    if not present:
        upgrade(target)
        return True
    if VERSION_TABLE not in present:
        some = ", ".join(sorted(present)[:5])
        raise CopyRefused(f"the target database holds tables that are not the hub's ({some}…); "
                          "copy into a new, empty database: createdb -O hub hub")
    try:
        check_current(target)
    except SchemaBehind:
        raise CopyRefused("the target database has the hub's tables but an older schema; bring it up to date with "
                          "`HUB_DATABASE_URL=<the target URL> hub migrate`, or use a new, empty database") from None
    with target.connect() as conn:
        filled = {name: n for name, n in _counts(conn, tables).items() if n}
    if filled:
        listed = ", ".join(f"{name} ({n} rows)" for name, n in sorted(filled.items())[:5])
        raise CopyRefused(f"the target database is not empty: {listed}{' …' if len(filled) > 5 else ''}. "
                          "Nothing was copied: the copy only fills an empty database, so nothing there is overwritten. "
                          "Create a new database (createdb -O hub hub_new) and copy into that.")
    return False


def _batches(conn: Connection, table: sa.Table, size: int) -> Iterator[list[dict[str, Any]]]:
    result = conn.execution_options(yield_per=size).execute(sa.select(table).order_by(*table.primary_key.columns))
    for partition in result.partitions(size):
        yield [dict(row._mapping) for row in partition]


def _copy_table(source: Connection, target: Connection, table: sa.Table, written: sa.Table, *, batch_size: int,
                advance: Callable[[int], None]) -> None:
    # A column pointing into its own table (a merged contact's survivor may have a higher id) is
    # written empty first and filled in once every row of the table is there.
    self_refs = [fk.parent.name for fk in table.foreign_keys if fk.column.table is table]
    keys = [c.name for c in table.primary_key.columns]
    later: list[dict[str, Any]] = []
    for rows in _batches(source, table, batch_size):
        if self_refs:
            later += [{**{f"k_{k}": r[k] for k in keys}, **{f"v_{c}": r[c] for c in self_refs}} for r in rows
                      if any(r[c] is not None for c in self_refs)]
            rows = [{**r, **{c: None for c in self_refs}} for r in rows]
        target.execute(written.insert(), rows)
        advance(len(rows))
    where = sa.and_(*(written.c[k] == sa.bindparam(f"k_{k}") for k in keys))
    for start in range(0, len(later), batch_size):
        target.execute(written.update().where(where).values({c: sa.bindparam(f"v_{c}") for c in self_refs}),
                       later[start:start + batch_size])


def _set_sequences(target: Connection, tables: list[sa.Table]) -> None:
    """Every id sequence past the largest copied id, so the next insert does not collide."""
    for table in tables:
        pk = list(table.primary_key.columns)
        if len(pk) != 1 or not isinstance(pk[0].type, (sa.Integer, sa.BigInteger)) or pk[0].autoincrement is False:
            continue
        sequence = target.scalar(sa.text("SELECT pg_get_serial_sequence(:t, :c)"), {"t": table.name, "c": pk[0].name})
        if sequence is None:
            continue
        target.execute(sa.text(f'SELECT setval(:s, COALESCE((SELECT max("{pk[0].name}") FROM "{table.name}"), 1), '
                               f'(SELECT max("{pk[0].name}") FROM "{table.name}") IS NOT NULL)'), {"s": sequence})


def copy_store(source: Engine, target: Engine, *, batch_size: int = 1000,
               on_table: Callable[[str, int], None] = lambda name, rows: None,
               advance: Callable[[int], None] = lambda n: None,
               on_counted: Callable[[int], None] = lambda total: None) -> CopyResult:
    """Copy every row of every table from `source` into the empty PostgreSQL `target`, then count both."""
    if target.dialect.name != "postgresql":
        raise CopyRefused("the target must be a PostgreSQL database")
    tables = _tables()
    migrated = prepare_target(target, tables)
    written_metadata = sa.MetaData()
    written = {t.name: _target_table(t, written_metadata) for t in tables}
    # One read transaction over the whole copy: a consistent snapshot (SQLite in WAL mode, or
    # PostgreSQL's repeatable read), without taking SQLite's write lock.
    snapshot = {"isolation_level": "REPEATABLE READ"} if source.dialect.name == "postgresql" else {}
    with source.connect().execution_options(sqlite_begin="DEFERRED", **snapshot) as src:
        result = CopyResult(source_counts=_counts(src, tables), migrated_target=migrated)
        on_counted(sum(result.source_counts.values()))
        with target.begin() as dst:
            for table in tables:
                on_table(table.name, result.source_counts[table.name])
                if not result.source_counts[table.name]:
                    continue
                try:
                    _copy_table(src, dst, table, written[table.name], batch_size=batch_size, advance=advance)
                except sa.exc.DBAPIError as exc:
                    # SQLite does not enforce lengths or refuse NUL characters; PostgreSQL does.
                    first_line = str(exc.orig).strip().splitlines()[0] if exc.orig else type(exc).__name__
                    raise CopyFailed(f"PostgreSQL refused a row of {table.name}: {first_line}. Nothing was kept "
                                     "in the target (the copy is one transaction); fix that row in the source "
                                     "and run the copy again.") from None
            _set_sequences(dst, tables)
        src.rollback()
    with target.connect() as dst:
        result.target_counts = _counts(dst, tables)
    return result


def _where(url: str) -> str:
    return sa.engine.make_url(url).render_as_string(hide_password=True)


@app.command("copy")
def copy(
    to: Annotated[str, typer.Option("--to", metavar="postgresql://USER@HOST:PORT/DB",
                                    help="An empty PostgreSQL database (migrated here if it has no tables).")],
    batch_size: Annotated[int, typer.Option(min=1, max=100_000, help="Rows per INSERT batch.")] = 1000,
) -> None:
    """Copy everything from the configured store (SQLite) into an empty PostgreSQL database.

    Stop the hub first. The target is migrated when it has no tables; a target holding any row is
    refused. Row counts are compared at the end (exit 1 on a mismatch). Then set
    HUB_DATABASE_URL to the target and keep HUB_DATA_DIR: files stay in the data directory.
    """
    try:
        target_url = postgres_url(to)
    except CopyRefused as exc:
        raise fail(str(exc)) from None
    hub = runtime()
    from hub.migrate import SchemaBehind, check_current

    try:
        check_current(hub.db.engine)
    except SchemaBehind as exc:
        raise fail(f"the source store is not current: {exc}") from None
    if sa.engine.make_url(target_url) == sa.engine.make_url(hub.settings.sqlalchemy_url):
        raise fail("--to names the configured store itself; give a new, empty PostgreSQL database")
    target = sa.create_engine(target_url, connect_args={"connect_timeout": 10})
    err.print(f"Copying {_where(hub.settings.sqlalchemy_url)} → {_where(target_url)}")
    try:
        with Progress(TextColumn("[bold]{task.description:<28}"), BarColumn(), MofNCompleteColumn(),
                      TextColumn("rows"), TimeElapsedColumn(), console=err, transient=True) as bar:
            task = bar.add_task("counting", total=None)
            result = copy_store(
                hub.db.engine, target, batch_size=batch_size,
                on_counted=lambda total: bar.update(task, total=total),
                on_table=lambda name, rows: bar.update(task, description=name),
                advance=lambda n: bar.advance(task, n),
            )
            bar.update(task, description="done")
    except CopyRefused as exc:
        raise fail(str(exc)) from None
    except CopyFailed as exc:
        raise fail(str(exc), code=1) from None
    except sa.exc.OperationalError as exc:
        raise fail(f"cannot reach the target database: {str(exc.orig).strip().splitlines()[0]}") from None
    finally:
        target.dispose()
        hub.close()
    _report(result, hub.settings)
    if result.mismatches:
        raise fail("row counts differ (above): the copy is incomplete; drop the target database and run the copy again",
                   code=1)


def _report(result: CopyResult, settings: Any) -> None:
    table = Table(title="Rows copied", title_justify="left")
    table.add_column("table")
    table.add_column("source", justify="right")
    table.add_column("target", justify="right")
    for name, n in result.source_counts.items():
        got = result.target_counts.get(name, -1)
        if n or got:
            table.add_row(name, str(n), str(got) if got == n else f"[bold red]{got}[/]")
    out.print(table)
    total = sum(result.source_counts.values())
    out.print(f"[green]{total} rows in {len(result.source_counts)} tables[/]"
              + (" (the target was migrated first)" if result.migrated_target else ""))
    out.print(f"Next: set HUB_DATABASE_URL to the target and keep HUB_DATA_DIR={settings.data_dir} — attachments and "
              "raw messages stay there, named by their content hash.", soft_wrap=True)
    if settings.secret_key is None:
        out.print(f"[yellow]HUB_SECRET_KEY is not set: links already sent are signed with "
                  f"{settings.data_dir}/secret.key; keep that file (or set HUB_SECRET_KEY to its contents).[/]",
                  soft_wrap=True)
