"""`hub campaigns …`: list campaigns, start one, and watch a run's progress."""

from __future__ import annotations

import threading
import time
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

app = typer.Typer(
    help="Campaigns: list them, start one now, and watch its progress with a live bar.\n\n"
    "Examples:\n\n  hub campaigns list --status running\n\n  hub campaigns run 12 --watch",
    no_args_is_help=True,
    rich_markup_mode="rich",
)
out = Console()
err = Console(stderr=True)


def _runtime():  # type: ignore[no-untyped-def]
    from hub.cli import runtime

    return runtime()


@app.command("list")
def list_command(
    status: Annotated[str | None, typer.Option(help="Only campaigns in this state: draft, scheduled, running, "
                                                     "paused, completed or cancelled.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="At most this many, newest first.")] = 50,
) -> None:
    """Show campaigns with their schedule, state and progress."""
    from campaigns.models import CampaignStatus
    from campaigns.runs import progress
    from campaigns.service import list_campaigns

    if status is not None and status not in set(CampaignStatus):
        err.print(f"[bold red]error:[/] unknown status {status!r}; choose from {', '.join(CampaignStatus)}")
        raise typer.Exit(2)
    hub = _runtime()
    with hub.session(read_only=True) as session:
        found = list_campaigns(session, status=status, limit=limit)
        table = Table("ID", "Name", "Channel", "Schedule", "Status", "Targeted", "Sent", "Next run")
        for c in found:
            figures = progress(session, campaign_id=c.id)  # type: ignore[arg-type]
            schedule = {"cron": f"cron {c.cron} ({c.time_zone})", "trigger": f"on {c.trigger_kind}"}.get(
                c.schedule_kind, c.schedule_kind)
            table.add_row(str(c.id), c.name, c.channel, schedule, c.status, str(figures["targeted"]),
                          str(figures["sent"]), c.next_run_at.isoformat(timespec="minutes") if c.next_run_at else "—")
    if not found:
        err.print("No campaigns." if status is None else f"No {status} campaigns.")
        return
    out.print(table)


@app.command("run")
def run_command(
    campaign_id: Annotated[int, typer.Argument(help="The campaign's id (see `hub campaigns list`).")],
    watch: Annotated[bool, typer.Option("--watch", help="Show a progress bar until every message is handled.")] = False,
    here: Annotated[bool, typer.Option(help="Also add the recipients from this process (otherwise a running "
                                            "`hub worker` or `hub serve` does it).")] = True,
    interval: Annotated[float, typer.Option(min=0.1, help="Seconds between progress updates.")] = 1.0,
) -> None:
    """Run a campaign now (a draft is scheduled first) and optionally watch it send.

    The messages themselves are sent by the worker (`hub worker`, or the one inside `hub serve`).
    Stopping the watch with Ctrl-C stops nothing: the run goes on in the background.
    """
    from campaigns import runs, service
    from campaigns.models import Campaign
    from hub.locks import once_lock

    hub = _runtime()
    with hub.session() as session:
        campaign = session.get(Campaign, campaign_id)
        if campaign is None:
            err.print(f"[bold red]error:[/] there is no campaign {campaign_id}")
            raise typer.Exit(2)
        try:
            service.run_now(session, campaign=campaign)
        except service.CampaignError as exc:
            err.print(f"[bold red]error:[/] {escape(str(exc))}")  # it may name a [channels.x] section
            raise typer.Exit(2) from None
        session.commit()
        name = campaign.name
        runs_before = runs.progress(session, campaign_id=campaign_id)["runs"]
    err.print(f"Campaign {campaign_id} ({name}) is due now.")
    def materialise() -> None:
        # The same cluster-wide lock as the worker's tick: if a worker is materialising, leave it be.
        with once_lock(hub, "job:campaigns.tick") as acquired:
            if acquired:
                runs.dispatch_due(hub)
                runs.materialise_due(hub)

    adding = threading.Thread(target=materialise, name="campaign-materialise") if here else None
    if adding is not None:
        adding.start()
        if not watch:
            adding.join()
    if watch:
        _watch(hub, campaign_id, interval, runs_before + 1)  # shows the recipients being added, then the sending
    if adding is not None:
        adding.join()


def _watch(hub, campaign_id: int, interval: float, runs_wanted: int) -> None:  # type: ignore[no-untyped-def]
    from campaigns.runs import progress

    columns = (TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("{task.fields[detail]}"), TimeElapsedColumn())
    try:
        with Progress(*columns, console=err, transient=False) as bar:
            task = bar.add_task(f"campaign {campaign_id}", total=None, detail="")
            while True:
                with hub.session(read_only=True) as session:
                    figures = progress(session, campaign_id=campaign_id)
                bar.update(task, total=max(figures["messages"], 1), completed=figures["done"],
                           detail=f"sent {figures['sent']} · failed {figures['failed']} · waiting {figures['pending']}")
                # Done once a run exists, every recipient is in and nothing waits (an empty segment too).
                if figures["runs"] >= runs_wanted and not figures["pending"] and not figures["materialising"]:
                    break
                time.sleep(interval)
    except KeyboardInterrupt:
        err.print("Stopped watching; the campaign goes on.")
