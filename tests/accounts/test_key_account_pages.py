"""The key-account pages without a browser: the profit panel with its rows, the choosing page's ranking,
Pareto share, trap and suggested set, and flagging as explicit, audited POST actions."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from sqlalchemy import select

from hub import clock
from hub.accounts import create_account
from hub.auth import SYSTEM, create_user
from hub.contacts import create_contact
from hub.ingest import InboundEvent, ingest
from hub.models import Account, AuditEntry, Role
from tests.web.conftest import ORIGIN, login

HX = {"HX-Request": "true"}


def _post(web, token: str, url: str, data: dict):
    return web.post(url, data={**data, "csrf_token": token}, headers={"Origin": ORIGIN}, follow_redirects=False)


def seed_base(hub) -> dict[str, int]:
    """Ten accounts: «Газпромбанк VIP» flagged key and tagged vip, losing money to long calls; «Тихий
    завод» profitable and not key; eight small ones (one of them key)."""
    at = clock.now() - timedelta(days=5)
    ids: dict[str, int] = {}
    with hub.session() as s, s.begin():
        agent = create_user(s, email="kam2@example.com", password="x" * 12, role=Role.AGENT, display_name="KAM").id
        specs = [("Газпромбанк VIP", True, 1000, 20 * 3600, ["vip"]), ("Тихий завод", False, 400_000, 0, []),
                 *((f"Малый {i}", i == 0, 20_000 + 1000 * i, 600, []) for i in range(8))]
        contacts = {}
        for name, key, margin, talk, tags in specs:
            account = create_account(s, actor=SYSTEM, name=name, is_key=key)
            contacts[name] = create_contact(s, actor=SYSTEM, region="RU", display_name=f"{name} контакт",
                                            account_id=account.id, tags=tags).id
            ids[name] = account.id
    for n, (name, _key, margin, talk, _tags) in enumerate(specs):
        ingest(hub, InboundEvent(channel="commerce", kind="order.completed", direction="in",
                                 contact_id=contacts[name], external_id=f"o{n}", occurred_at=at,
                                 data={"source": "shop", "order": {"order_id": f"O{n}", "amount": str(margin * 4),
                                                                   "currency": "RUB", "margin": str(margin)}}))
        if talk:
            ingest(hub, InboundEvent(channel="phone", kind="call", direction="in", contact_id=contacts[name],
                                     external_id=f"c{n}", occurred_at=at, data={"talk_seconds": talk},
                                     actor_user_id=agent))
    return ids


def test_the_profit_panel_shows_the_figure_and_the_rows_behind_it(web, hub):
    login(web, hub)
    ids = seed_base(hub)
    vip = ids["Газпромбанк VIP"]
    panel = web.get(f"/key-accounts/accounts/{vip}/profit", headers=HX)
    assert panel.status_code == 200 and "<html" not in panel.text
    # margin 1000 − 20 h × 1200 = −23 000
    assert 'id="profit-value"' in panel.text and "is-loss" in panel.text and "23,000" in panel.text
    assert "Order O0 completed" in panel.text or "#event-" in panel.text
    page = web.get(f"/accounts/{vip}")
    assert f'hx-get="/key-accounts/accounts/{vip}/profit"' in page.text  # the account page loads the panel
    full = web.get(f"/key-accounts/accounts/{vip}/profit?days=30")
    assert full.status_code == 200 and "<html" in full.text
    assert web.get("/key-accounts/accounts/999/profit").status_code == 404


def test_the_choosing_page_shows_the_trap_and_suggests_the_top_fifth(web, hub):
    login(web, hub)
    ids = seed_base(hub)
    page = web.get("/key-accounts")
    assert page.status_code == 200
    trap = page.text.split('id="costly-vips"')[1].split("</ul>")[0]
    assert "Газпромбанк VIP" in trap and "Тихий завод" not in trap
    overlooked = page.text.split('id="overlooked"')[1].split("</ul>")[0]
    assert "Тихий завод" in overlooked
    suggested = page.text.split('id="suggested"')[1].split("</form>")[0]
    assert f'value="{ids["Тихий завод"]}" checked' in suggested  # 2 of 10 are suggested
    assert "Газпромбанк" not in suggested and suggested.count('name="account"') == 2
    assert 'id="pareto-chart"' in page.text and 'id="pareto-share"' in page.text
    ranking = page.text.split('id="ranking"')[1]
    assert ranking.index("Тихий завод") < ranking.index("Малый 7") < ranking.index("Газпромбанк VIP")


def test_flag_unflag_and_accept_are_audited_posts(web, hub):
    token = login(web, hub)
    ids = seed_base(hub)
    vip, quiet, small = ids["Газпромбанк VIP"], ids["Тихий завод"], ids["Малый 7"]
    assert web.get(f"/key-accounts/accounts/{vip}/unflag").status_code == 405  # never a GET
    assert _post(web, token, f"/key-accounts/accounts/{vip}/unflag", {}).status_code == 303
    assert _post(web, token, "/key-accounts/accept", {"account": [str(quiet), str(small)]}).status_code == 303
    assert _post(web, token, "/key-accounts/accounts/4242/flag", {}).status_code == 404
    with hub.session(read_only=True) as s:
        assert {a.id for a in s.scalars(select(Account).where(Account.is_key))} == {ids["Малый 0"], quiet, small}
        entries = [(e.entity_id, e.changes["is_key"], e.changes.get("reason")) for e in s.scalars(
            select(AuditEntry).where(AuditEntry.action == "account.key", AuditEntry.actor_kind == "user")
            .order_by(AuditEntry.id))]
    assert entries == [(str(vip), [True, False], "unflagged on the key accounts page"),
                       (str(quiet), [False, True], "suggested set accepted"),
                       (str(small), [False, True], "suggested set accepted")]
    reader = web.get(f"/accounts/{quiet}")
    assert "suggested set accepted" in reader.text


def test_an_empty_base_says_so(web, hub):
    login(web, hub)
    page = web.get("/key-accounts")
    assert page.status_code == 200 and "No accounts and no orders" in page.text


def test_the_key_account_pages_carry_the_pages_csp(web, hub):
    login(web, hub)
    for url in ("/key-accounts", "/accounts"):
        csp = web.get(url).headers.get("content-security-policy", "")
        assert "script-src 'self'" in csp, url
