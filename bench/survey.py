"""Survey page benchmark: GET and POST of /s/{token} against a pre-built string from the same app.

Starts uvicorn (1 worker, no access log, embedded worker off) on this module's `build_app` factory
in a subprocess, against a PostgreSQL database of its own, with one active survey and `--invitations`
sent invitations. Drives it over HTTP on 127.0.0.1 from this process, in alternating closed-loop
rounds of `--concurrency` requests in flight for `--duration` seconds:

- GET /s/{token} of a random invitation (the signed link checked, invitation, survey, contact and
  response read in one query, the page rendered in the contact's language), against
  GET /bench/prebuilt, which returns that same page as a string built once at start-up;
- POST /s/{token} of a complete answer (answers validated, the one response per invitation
  inserted or locked and updated, the timeline event posted or updated, a detractor's task opened,
  the commit, the 303), against POST /bench/prebuilt (the form body read, the string returned).

The ratios hub/baseline are what the page's own work costs over the least an answer in the same
process, server and connection pool must cost. Any unexpected status fails the run. --record
writes the "Survey page" section of docs/benchmarks.md.
"""

from __future__ import annotations

import asyncio
import os
import platform
import random
import shlex
import socket
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from fastapi import Request
from sqlalchemy import create_engine, text
from starlette.responses import HTMLResponse

from bench.records import DOCS, record_section
from bench.store import fresh_database
from bench.webhooks import Failed, start_server, stop_server

ROOT = Path(__file__).resolve().parent.parent
SECTION = "## Survey page"
DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/hub_bench_survey"
PREBUILT = "/bench/prebuilt"
GOAL_RATIO = 0.5
SECRET = "bench-" + "s" * 40

app = typer.Typer(add_completion=False, pretty_exceptions_show_locals=False)


def _env(url: str, port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
    env.update({"HUB_DATABASE_URL": url, "HUB_PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
                "HUB_EMBEDDED_WORKER": "false", "HUB_LIVE_BACKEND": "memory", "HUB_LOG_LEVEL": "WARNING",
                "HUB_SECRET_KEY": SECRET})
    return env


def _invitations(env: dict[str, str], count: int, run: str) -> list[str]:
    """An active survey and `count` invitations marked sent; the token of each one's link."""
    import secrets

    from campaigns.surveys.links import token_for
    from campaigns.surveys.models import InvitationStatus, SurveyInvitation
    from campaigns.surveys.service import SurveyIn, create_survey
    from hub import clock
    from hub.auth import SYSTEM
    from hub.contacts import IdentityIn, create_contact
    from hub.models import IdentityKind
    from hub.runtime import Hub
    from hub.settings import load_settings

    runtime = Hub(load_settings(database_url=env["HUB_DATABASE_URL"], public_base_url=env["HUB_PUBLIC_BASE_URL"],
                                embedded_worker=False, live_backend="memory", secret_key=SECRET))
    questions = [
        {"key": "nps", "kind": "nps", "required": True,
         "text": {"ru": "Насколько вероятно, что вы порекомендуете нас друзьям?", "en": "How likely are you to recommend us?"}},
        {"key": "wrong", "kind": "text", "show_if": {"question": "nps", "max": 6},
         "text": {"ru": "Что пошло не так?", "en": "What went wrong?"}},
        {"key": "csat", "kind": "csat", "text": {"ru": "Довольны ли вы доставкой?", "en": "Happy with the delivery?"}},
        {"key": "liked", "kind": "multiple", "text": {"ru": "Что понравилось?", "en": "What did you like?"},
         "options": [{"key": "price", "text": {"ru": "Цена", "en": "Price"}},
                     {"key": "speed", "text": {"ru": "Скорость", "en": "Speed"}}]},
        {"key": "comment", "kind": "text", "text": {"ru": "Что улучшить?", "en": "What to improve?"}},
    ]
    tokens = []
    now = clock.now()
    with runtime.session() as session, session.begin():
        survey = create_survey(session, actor=SYSTEM, data=SurveyIn.model_validate({
            "name": f"bench {run}", "status": "active", "questions": questions, "cooldown_days": 0,
            "title": {"ru": "Как прошла покупка?", "en": "How was your purchase?"}}))
        for i in range(count):
            contact = create_contact(session, actor=SYSTEM, region="RU", display_name=f"Покупатель {run}-{i}",
                                     identities=[IdentityIn(kind=IdentityKind.EMAIL, value=f"b{run}-{i}@example.com")],
                                     locale="ru" if i % 3 else "en")
            invitation = SurveyInvitation(
                survey_id=survey.id, contact_id=contact.id, cause=f"bench:{run}", nonce=secrets.token_urlsafe(24),
                status=InvitationStatus.SENT.value, send_at=now, sent_at=now, channel="email",
                expires_at=now + timedelta(days=30))
            session.add(invitation)
            session.flush()
            tokens.append(token_for(runtime.settings, invitation))
    runtime.close()
    return tokens


def build_app() -> Any:
    """The hub's app from the environment's settings, plus the pre-built baseline (uvicorn --factory),
    served as `hub serve` serves hub.asgi (start-up objects out of the collector's full passes)."""
    from hub.app import create_app
    from hub.runtime import freeze_startup_objects
    from hub.runtime import Hub

    hub = Hub()
    application = create_app(hub, start_worker=False)
    page = {"html": ""}

    @application.get(PREBUILT, include_in_schema=False)
    async def prebuilt_get() -> HTMLResponse:
        return HTMLResponse(page["html"], headers={"cache-control": "no-store"})

    @application.post(PREBUILT, include_in_schema=False)
    async def prebuilt_post(request: Request) -> HTMLResponse:
        await request.form()  # read the answer as the real route does, then answer with the string
        return HTMLResponse(page["html"], headers={"cache-control": "no-store"})

    @application.put(PREBUILT, include_in_schema=False)
    async def prebuilt_set(request: Request) -> HTMLResponse:
        page["html"] = (await request.body()).decode()
        return HTMLResponse("ok")

    freeze_startup_objects()
    return application


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Traffic:
    def __init__(self, tokens: list[str], seed: int = 1) -> None:
        self.tokens = tokens
        self.rng = random.Random(seed)
        self.posts = 0

    def get(self) -> tuple[str, str, dict[str, str] | None, int]:
        return "GET", f"/s/{self.rng.choice(self.tokens)}", None, 200

    def post(self) -> tuple[str, str, dict[str, str] | None, int]:
        self.posts += 1
        score = self.rng.randint(0, 10)
        form = {"q_nps": str(score), "q_csat": str(self.rng.randint(1, 5)), "q_liked": "price",
                "q_comment": "Всё хорошо, спасибо", "action": "submit"}
        if score <= 6:
            form["q_wrong"] = "Курьер опоздал"
        return "POST", f"/s/{self.rng.choice(self.tokens)}", form, 303

    @staticmethod
    def prebuilt_get() -> tuple[str, str, dict[str, str] | None, int]:
        return "GET", PREBUILT, None, 200

    @staticmethod
    def prebuilt_post() -> tuple[str, str, dict[str, str] | None, int]:
        return "POST", PREBUILT, {"q_nps": "9", "q_csat": "5", "q_liked": "price", "action": "submit"}, 200


async def _closed_loop(client: httpx.AsyncClient, make: Any, *, concurrency: int, duration: float) -> tuple[float, list[float]]:
    """(requests per second, latencies in ms) with `concurrency` requests in flight for `duration` seconds."""
    latencies: list[float] = []
    deadline = time.perf_counter() + duration

    async def lane() -> None:
        while time.perf_counter() < deadline:
            method, path, form, expected = make()
            sent = time.perf_counter()
            answer = await client.request(method, path, data=form)
            if answer.status_code != expected:
                raise Failed(f"{method} {path} answered {answer.status_code}, not {expected}: {answer.text[:300]}")
            latencies.append((time.perf_counter() - sent) * 1000)

    started = time.perf_counter()
    await asyncio.gather(*(lane() for _ in range(concurrency)))
    return len(latencies) / (time.perf_counter() - started), latencies


def _server_cpu(pid: int | None) -> float:
    """CPU seconds the server process has used (user + system, from /proc); 0 without a pid."""
    if pid is None:
        return 0.0
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _run(base: str, traffic: Traffic, *, concurrency: int, duration: float, rounds: int,
               server_pid: int | None = None) -> dict[str, Any]:
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=30) as client:
        page = await client.get(f"/s/{traffic.tokens[0]}")
        await client.put(PREBUILT, content=page.text.encode())
        warm = min(2.0, duration)
        for make in (traffic.get, traffic.prebuilt_get, traffic.post, traffic.prebuilt_post):
            await _closed_loop(client, make, concurrency=concurrency, duration=warm)
        result: dict[str, Any] = {name: [] for name in ("get", "raw_get", "post", "raw_post")}
        lat: dict[str, list[float]] = {"get": [], "post": []}
        # Server CPU per request, a measure a busy machine moves less than the rates: [seconds, requests].
        cpu: dict[str, list[float]] = {name: [0.0, 0] for name in result}
        for r in range(rounds):
            for name, make in (("get", traffic.get), ("raw_get", traffic.prebuilt_get), ("post", traffic.post),
                               ("raw_post", traffic.prebuilt_post)):
                used = _server_cpu(server_pid)
                rate, latencies = await _closed_loop(client, make, concurrency=concurrency, duration=duration)
                cpu[name][0] += _server_cpu(server_pid) - used
                cpu[name][1] += len(latencies)
                result[name].append(rate)
                if name in lat:
                    lat[name].extend(latencies)
            print(f"round {r + 1}: GET {result['get'][-1]:.0f}/s vs {result['raw_get'][-1]:.0f}/s, "
                  f"POST {result['post'][-1]:.0f}/s vs {result['raw_post'][-1]:.0f}/s", file=sys.stderr)
    result["latencies"] = lat
    result["cpu_ms"] = {name: seconds / max(n, 1) * 1000 for name, (seconds, n) in cpu.items()}
    if server_pid is not None:
        print("server CPU per request: " + ", ".join(f"{name} {ms:.2f} ms" for name, ms in result["cpu_ms"].items()),
              file=sys.stderr)
    return result


def _p(values: list[float]) -> tuple[float, float]:
    q = statistics.quantiles(values, n=100, method="inclusive")
    return statistics.median(values), q[98]


def _section(result: dict[str, Any], *, command: str, concurrency: int, duration: float, rounds: int,
             invitations: int, load: tuple[float, float], pg_version: str) -> str:
    mean = {k: statistics.mean(result[k]) for k in ("get", "raw_get", "post", "raw_post")}
    ratios = {"GET": mean["get"] / mean["raw_get"], "POST": mean["post"] / mean["raw_post"]}
    rows = []
    for label, hub_key, raw_key in (("GET /s/{token}", "get", "raw_get"), ("POST /s/{token}", "post", "raw_post")):
        p50, p99 = _p(result["latencies"][hub_key])
        rows.append(f"| {label} | {', '.join(f'{r:.0f}' for r in result[hub_key])} | {mean[hub_key]:.0f} | "
                    f"{', '.join(f'{r:.0f}' for r in result[raw_key])} | {mean[raw_key]:.0f} | "
                    f"{mean[hub_key] / mean[raw_key]:.2f}× | {p50:.1f} / {p99:.1f} |")
    lines = [
        SECTION, "", f"Recorded {time.strftime('%Y-%m-%d %H:%M', time.gmtime())} UTC with:", "", "```", command, "```", "",
        f"- Machine: {os.cpu_count()} CPUs shared by the server and the load generator, Python "
        f"{platform.python_version()}, PostgreSQL {pg_version}, uvicorn 1 worker, no access log, embedded worker "
        f"off; 1-minute load average {load[0]:.2f} before and {load[1]:.2f} after.",
        f"- {invitations:,} sent invitations of one active five-question survey (NPS, a branch, CSAT, a multiple "
        "choice, free text), contacts in Russian and English. GETs open a random invitation's link; POSTs send a "
        "complete answer to a random invitation (first answers and edits mixed, detractors open tasks). "
        f"The baseline is `{PREBUILT}` in the same app: GET returns the survey page as a string built once, "
        "POST reads the form and returns it.",
        f"- Closed loop, {concurrency} requests in flight, {rounds} rounds of {duration:g} s per endpoint, "
        "alternating (hub GET, baseline GET, hub POST, baseline POST).",
        "",
        "| Request | Hub req/s per round | Hub mean | Baseline req/s per round | Baseline mean | Ratio | Hub p50 / p99 ms |",
        "|---|---|---|---|---|---|---|",
        *rows,
        "",
        "| Goal | Measured | Verdict |",
        "|---|---|---|",
        *[f"| {name} at least {GOAL_RATIO}× the pre-built string | {ratio:.2f}× | "
          f"{'PASS' if ratio >= GOAL_RATIO else '**MISS**'} |" for name, ratio in ratios.items()],
        "",
    ]
    return "\n".join(lines)


@app.command()
def main(
    duration: Annotated[float, typer.Option(min=1, max=120, help="Seconds per round and endpoint.")] = 10,
    concurrency: Annotated[int, typer.Option(min=1, max=256, help="Requests in flight.")] = 16,
    rounds: Annotated[int, typer.Option(min=1, max=10, help="Alternating rounds.")] = 2,
    invitations: Annotated[int, typer.Option(min=1, max=100_000, help="Invitations to answer.")] = 2000,
    database_url: Annotated[str, typer.Option(help="PostgreSQL database (created if missing).")] = DEFAULT_PG,
    record_figures: Annotated[bool, typer.Option("--record", help="Write the figures into docs/benchmarks.md.")] = False,
) -> None:
    """The survey page's GET and POST rates against a pre-built string from the same app."""
    load_before = os.getloadavg()[0]
    fresh_database(database_url)
    port = _free_port()
    env = _env(database_url, port)
    run = f"{int(time.time()) % 100_000:05d}"
    tokens = _invitations(env, invitations, run)
    engine = create_engine(f"postgresql+psycopg://{database_url.split('://', 1)[1]}")
    with engine.connect() as conn:
        pg_version = str(conn.execute(text("SHOW server_version")).scalar()).split(" ")[0]
    engine.dispose()
    server = start_server(env, port, target="bench.survey:build_app", factory=True)
    try:
        result = asyncio.run(_run(f"http://127.0.0.1:{port}", Traffic(tokens), concurrency=concurrency,
                                  duration=duration, rounds=rounds, server_pid=server.pid))
    finally:
        stop_server(server)
    for name in ("get", "post"):
        ratio = statistics.mean(result[name]) / statistics.mean(result[f"raw_{name}"])
        print(f"{name.upper()}: hub {statistics.mean(result[name]):.0f} req/s, pre-built "
              f"{statistics.mean(result[f'raw_{name}']):.0f} req/s, ratio {ratio:.2f} "
              f"(goal ≥ {GOAL_RATIO}: {'PASS' if ratio >= GOAL_RATIO else 'MISS'})")
    command = "python -m bench.survey " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    section = _section(result, command=command.strip(), concurrency=concurrency, duration=duration, rounds=rounds,
                       invitations=invitations, load=(load_before, os.getloadavg()[0]), pg_version=pg_version)
    if record_figures:
        record_section(section, heading=SECTION)
        print(f"recorded in {DOCS}", file=sys.stderr)


if __name__ == "__main__":
    app()
