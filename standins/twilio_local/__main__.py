"""Run the local Twilio-compatible server for the demo, and text or call the hub through it."""

from __future__ import annotations

import time
from typing import Annotated

import httpx
import typer
from rich.console import Console

import hub.cli  # noqa: F401 - the hub's --help conventions (a flag shows no "<bool>" type)

from standins.twilio_local.server import DEMO_ACCOUNT_SID, DEMO_AUTH_TOKEN, LocalTwilio

app = typer.Typer(help="A local stand-in for Twilio: try the hub's SMS and phone channels without an account.",
                  no_args_is_help=True)
out = Console()
DEFAULT_NUMBER = "+15005550006"


@app.command()
def serve(
    hub_url: Annotated[str, typer.Option(help="The hub's public base URL (its webhooks live under it).")] = "http://127.0.0.1:8000",
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8099,
    number: Annotated[list[str], typer.Option(help="The account's phone numbers (repeat for more).")] = [DEFAULT_NUMBER],  # noqa: B006
    agent: Annotated[list[str], typer.Option(help="Numbers or client:name that answer when the hub rings them.")] = [],  # noqa: B006
) -> None:
    """Serve the fake Twilio API and point its numbers at the hub's webhooks."""
    server = LocalTwilio(account_sid=DEMO_ACCOUNT_SID, auth_token=DEMO_AUTH_TOKEN)
    hub_url = hub_url.rstrip("/")
    for each in number:
        server.add_number(each, sms_url=f"{hub_url}/channels/sms/inbound", voice_url=f"{hub_url}/channels/phone/voice",
                          voice_status_callback=f"{hub_url}/channels/phone/status")
    for each in agent:
        server.answering[each] = "answer"
    server.start(host, port)
    out.print(f"[bold green]Local Twilio is running at {server.url}/[/] (open it to text or call the hub)")
    out.print("Put this in the hub's config/hub.toml (or HUB_CONFIG_FILE), then restart the hub:\n")
    out.print(
        f'[channels.sms]\naccount_sid = "{DEMO_ACCOUNT_SID}"\nauth_token = "{DEMO_AUTH_TOKEN}"\n'
        f'api_base_url = "{server.url}"\nfrom_number = "{number[0]}"\n\n'
        f'[channels.phone]\naccount_sid = "{DEMO_ACCOUNT_SID}"\nauth_token = "{DEMO_AUTH_TOKEN}"\n'
        f'api_base_url = "{server.url}"\ncaller_id = "{number[0]}"\n',
        markup=False, highlight=False,
    )
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        server.stop()


@app.command()
def sms(
    body: Annotated[str, typer.Argument(help="The message text.")],
    sender: Annotated[str, typer.Option("--from", help="The customer's number.")] = "+15005550009",
    to: Annotated[str, typer.Option(help="The hub's number.")] = DEFAULT_NUMBER,
    server: Annotated[str, typer.Option(help="The local server's URL.")] = "http://127.0.0.1:8099",
) -> None:
    """Text the hub as a customer."""
    answer = httpx.post(f"{server}/_local/sms", data={"from": sender, "to": to, "body": body}).json()
    out.print(f"the hub answered {answer['status_code'] or answer['error']}")


@app.command()
def call(
    sender: Annotated[str, typer.Option("--from", help="The customer's number.")] = "+15005550009",
    to: Annotated[str, typer.Option(help="The hub's number.")] = DEFAULT_NUMBER,
    voicemail_seconds: Annotated[int, typer.Option(help="How long a message the caller leaves (0: none).")] = 7,
    server: Annotated[str, typer.Option(help="The local server's URL.")] = "http://127.0.0.1:8099",
) -> None:
    """Call the hub as a customer (the agents' screens pop the caller's timeline)."""
    answer = httpx.post(f"{server}/_local/calls",
                        data={"from": sender, "to": to, "voicemail_seconds": str(voicemail_seconds)}).json()
    out.print(f"call {answer['call_sid']} placed")


if __name__ == "__main__":
    app()
