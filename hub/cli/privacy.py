"""`hub privacy …`: a data-subject request from the command line (export or erase one person)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(help="Data-subject requests: export or erase everything about one person.", no_args_is_help=True)


def _contact_id(session, value: str, region: str) -> int:  # type: ignore[no-untyped-def]
    """A contact id, or an email / phone that one of the contact's identities holds."""
    from sqlalchemy import select

    from hub.identities import InvalidIdentity, normalize
    from hub.models import Identity

    if value.isdigit():
        return int(value)
    kind = "email" if "@" in value else "phone"
    try:
        normalized = normalize(kind, value, region=region)
    except (InvalidIdentity, ValueError) as exc:
        raise ValueError(f"{value!r} is neither a contact id nor a valid email or phone: {exc}") from None
    found = session.scalar(select(Identity.contact_id).where(Identity.kind == kind, Identity.value == normalized))
    if found is None:
        raise LookupError(f"no contact has the {kind} {normalized}")
    return found


@app.command("export")
def export(
    contact: Annotated[str, typer.Argument(help="A contact id, email or phone number.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Where to write the JSON ('-' for standard output).")],
    with_files: Annotated[bool, typer.Option("--with-files", help="Embed stored files (base64) in the JSON.")] = False,
) -> None:
    """Write everything the hub holds about one person (merged duplicates included) as JSON."""
    from hub.cli import err, fail, runtime
    from hub.ingest import ContactNotFound
    from hub.privacy import export_person

    hub = runtime()
    try:
        with hub.session(read_only=True) as session:
            try:
                data = export_person(session, hub=hub, contact_id=_contact_id(session, contact, hub.settings.default_region),
                                     include_files=with_files)
            except (ContactNotFound, LookupError, ValueError) as exc:
                raise fail(str(exc), code=1) from None
    finally:
        hub.close()
    text = json.dumps(data, ensure_ascii=False, indent=2, default=str)
    if str(out) == "-":
        typer.echo(text)
    else:
        out.write_text(text + "\n", encoding="utf-8")
        rows = sum(len(v) for v in data["tables"].values())
        err.print(f"Wrote contact {data['contact_id']} ({rows} rows in {len(data['tables'])} tables, "
                  f"{len(data['files'])} files) to {out}")


@app.command("erase")
def erase(
    contact: Annotated[str, typer.Argument(help="A contact id, email or phone number.")],
    yes: Annotated[bool, typer.Option("--yes", help="Confirm: erasure cannot be undone.")] = False,
) -> None:
    """Erase one person: identities, timeline content, files; addresses kept only as hashes (idempotent)."""
    from hub.auth import SYSTEM
    from hub.cli import err, fail, runtime
    from hub.ingest import ContactNotFound
    from hub.privacy import erase_person

    if not yes:
        raise fail("erasure cannot be undone; run again with --yes to confirm")
    hub = runtime()
    try:
        with hub.session() as session:
            try:
                result = erase_person(session, hub=hub, contact_id=_contact_id(session, contact, hub.settings.default_region),
                                      actor=SYSTEM)
            except (ContactNotFound, LookupError, ValueError) as exc:
                raise fail(str(exc), code=1) from None
            session.commit()
    finally:
        hub.close()
    if result.already_erased and not result.changed:
        err.print(f"Contact {result.contact_id} was already erased; nothing changed.")
        return
    deleted = sum(result.rows_deleted.values())
    blanked = sum(result.rows_blanked.values())
    err.print(f"Erased contact {result.contact_id} (contacts {', '.join(map(str, result.contact_ids))}): "
              f"{deleted} rows deleted, {blanked} blanked, {result.identities_suppressed} addresses suppressed, "
              f"{result.deliveries_cancelled} deliveries cancelled, {result.files_deleted} files deleted.")
