"""Fixtures for the workspace: a real uvicorn server per test (on the `hub` fixture's backend), one
headless Chromium for the session (Debian's, driven by Playwright), and signed-in pages."""

from __future__ import annotations

import os
import re
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from hub.auth import create_user
from hub.models import Role, User
from hub.runtime import Hub

# Debian's Chromium headless shell when it is installed (scripts/test-services.sh installs it): the same
# build and Blink as /usr/bin/chromium, without the full browser's headless mode. Measured on this VM
# (launch, 10 pages, close; every process counted): 1.75-2.07 s CPU against 6.1-7.4 s for the full
# browser, whose per-page processes outlive their parent and were not counted by `time` either.
CHROMIUM_BUILDS = ("/usr/bin/chromium-headless-shell", "/usr/bin/chromium")


def chromium() -> str:
    """HUB_TEST_CHROMIUM, else the first of CHROMIUM_BUILDS installed (the full browser's path if none is)."""
    return os.environ.get("HUB_TEST_CHROMIUM") or next(
        (path for path in CHROMIUM_BUILDS if Path(path).exists()), CHROMIUM_BUILDS[-1])


CHROMIUM = chromium()
# Assertions wait as long as actions do (10 s, below): with four workers on two cores a page can take
# seconds to answer, and Playwright's 5 s default then fails a test that is not wrong.
expect.set_options(timeout=10_000)
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-quic"]
PASSWORD = "correct horse battery staple"
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


@dataclass
class LiveServer:
    url: str
    hub: Hub
    app: Any

    def user(self, email: str = "agent@example.com", *, role: Role = Role.AGENT, name: str = "Anna Agent",
             locale: str | None = "en", time_zone: str | None = "Europe/Moscow") -> User:
        with self.hub.session() as session, session.begin():
            user = create_user(session, email=email, password=PASSWORD, role=role, display_name=name, locale=locale,
                               time_zone=time_zone)
            session.expunge(user)
        return user


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def serve(hub: Hub) -> Iterator[LiveServer]:
    """The app under a real uvicorn server in a background thread, on a free port."""
    import uvicorn

    from hub.app import create_app

    app = create_app(hub, check_schema=False, start_worker=False)
    port = _free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on",
                            timeout_graceful_shutdown=1, ws="none")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="uvicorn-test", daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.02)
    try:
        yield LiveServer(url=f"http://127.0.0.1:{port}", hub=hub, app=app)
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture
def live_server(hub: Hub) -> Iterator[LiveServer]:
    with serve(hub) as server:
        yield server


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Debian's Chromium, headless, launched once per test module.

    Not once per run: Playwright's sync API keeps an event loop running in the main thread while
    it is open, and later tests that call asyncio.run() (the worker, the broker) would fail."""
    if not Path(CHROMIUM).exists():
        reason = f"{CHROMIUM} is missing (scripts/test-services.sh installs Debian's chromium-headless-shell)"
        if IN_CI:
            pytest.fail(reason)
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield instance
        instance.close()


@pytest.fixture
def new_page(browser: Any, live_server: LiveServer) -> Iterator[Any]:
    """new_page(**context options) -> a page on the live server; closed after the test."""
    contexts = []

    def make(**options: Any) -> Any:
        options.setdefault("viewport", {"width": 1366, "height": 900})
        options.setdefault("locale", "en-US")
        context = browser.new_context(base_url=live_server.url, **options)
        context.set_default_timeout(10_000)
        contexts.append(context)
        return context.new_page()

    yield make
    for context in contexts:
        context.close()


def sign_in(page: Any, email: str, password: str = PASSWORD, next_path: str = "/") -> None:
    """Sign in through the form, as a person would."""
    page.goto(f"/login?next={next_path}")
    page.get_by_label(re.compile("^(Email|Эл. почта)$")).fill(email)
    page.get_by_label(re.compile("^(Password|Пароль)$")).fill(password)
    page.get_by_role("button", name=re.compile("^(Sign in|Войти)$")).click()
    page.wait_for_url(lambda url: "/login" not in url)


def click_until_posted(page: Any, button: Any, path_end: str, *, wait_ms: int = 5_000) -> None:
    """Click `button` (a Locator, found again on each click) and wait for the POST to a URL ending in
    `path_end` to go out; if none did within `wait_ms`, click once more (then a miss fails the test).

    It waits for the request, not its answer: on a loaded machine an answer can take longer than
    any short wait, and a second click after a slow answer clicks the next thing (CI, stop 29: the
    first Resolve's answer came late, the retry found no open card left). A click that made no
    request -- it landed on an element the page's live refresh was replacing, as a person's click
    would -- is clicked again. Callers then wait for what the page shows, with a long timeout."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    for attempt in range(2):
        try:
            with page.expect_request(lambda r: r.method == "POST" and r.url.endswith(path_end), timeout=wait_ms):
                button.click()
            return
        except PlaywrightTimeout:
            if attempt:
                raise


@pytest.fixture
def agent_page(new_page: Any, live_server: LiveServer) -> Any:
    """A page signed in as an agent (English, Moscow time)."""
    live_server.user()
    page = new_page()
    sign_in(page, "agent@example.com")
    return page


ORIGIN = "http://testserver"


def csrf_of(html: str) -> str:
    """The CSRF token a page carries (in its forms and in hx-headers)."""
    match = re.search(r'name="csrf_token" value="([^"]+)"', html) or re.search(r'"X-CSRF-Token": "([^"]+)"', html)
    assert match, "the page carries no CSRF token"
    return match.group(1)


def login(client: Any, hub: Hub, email: str = "agent@example.com", *, role: Role = Role.AGENT,
          create: bool = True, locale: str | None = "en") -> str:
    """Sign a TestClient in through the form; returns the session's CSRF token."""
    if create:
        with hub.session() as session, session.begin():
            create_user(session, email=email, password=PASSWORD, role=role, display_name=email.split("@")[0],
                        locale=locale)
    token = csrf_of(client.get("/login").text)
    answer = client.post("/login", data={"email": email, "password": PASSWORD, "csrf_token": token},
                         headers={"Origin": ORIGIN}, follow_redirects=False)
    assert answer.status_code == 303, answer.text
    return csrf_of(client.get("/account").text)


@pytest.fixture
def web(app: Any) -> Iterator[Any]:
    """A TestClient for the pages (a browser-like client without JavaScript)."""
    from fastapi.testclient import TestClient

    with TestClient(app, base_url=ORIGIN) as client:
        yield client
