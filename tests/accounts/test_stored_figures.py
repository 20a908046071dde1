"""What the figures job stores and the pages read instead of summing every timeline per request: the Key
accounts page shows the stored ranking for the configured period (and computes other periods now),
and the account's Profitability panel sums in SQL while listing only a bounded page of rows."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from sqlalchemy import func, select

from hub import clock
from hub.ingest import InboundEvent, ingest
from hub.models import Account, Contact
from keyaccounts.figures import refresh_figures
from keyaccounts.models import StoredFigure
from keyaccounts.profit import account_panel, account_profit
from tests.accounts.test_key_account_pages import seed_base
from tests.accounts.test_profit import RATES, SINCE, UNTIL, world  # noqa: F401  (the fixture)
from tests.web.conftest import login


def _refresh(hub) -> int:
    settings = hub.extensions["keyaccounts"].settings
    return refresh_figures(hub, rates=settings.rates(), period_days=settings.period_days, key_share=settings.key_share)


def _ranking(page: str) -> str:
    return page.split('id="ranking"')[1].split("</table>")[0]


def test_the_panel_totals_equal_the_hand_computed_figure_and_list_a_bounded_page(hub, world):  # noqa: F811
    with hub.session(read_only=True) as s:
        totals, newest = account_panel(s, account_id=world["account"], since=SINCE, until=UNTIL, rates=RATES, newest=1)
        every_row = account_profit(s, account_id=world["account"], since=SINCE, until=UNTIL, rates=RATES)
    # The figures of test_profit's hand computation: margin 3,750 − cost to serve 2,344.10.
    assert (totals.revenue, totals.margin, totals.cost_to_serve, totals.profit) == (
        Decimal("13000.00"), Decimal("3750.00"), Decimal("2344.10"), Decimal("1405.90"))
    assert {n: (line.count, line.minutes, line.cost) for n, line in totals.lines.items()} == {
        n: (line.count, line.minutes, line.cost) for n, line in every_row.lines.items()}
    # O1, O2 (its latest report) and the refund count; the EUR order is skipped, as row by row.
    assert (totals.order_count, totals.skipped_count) == (3, 1) == (every_row.order_count, len(every_row.skipped_orders))
    assert totals.orders == [] and all(not line.refs for line in totals.lines.values())  # no row read to sum
    # The listing: each source's newest row only (the written emails, SMS and notes are one source).
    assert len(newest.orders) + newest.skipped_count == 1
    assert all(len(line.refs) <= 1 for line in newest.lines.values())
    assert sum(len(line.refs) for line in newest.lines.values()) == 5  # calls, meetings, written, tasks, sends


def test_an_empty_account_has_empty_figures(hub, world):  # noqa: F811
    from hub.accounts import create_account
    from hub.auth import SYSTEM

    with hub.session() as s, s.begin():
        empty = create_account(s, actor=SYSTEM, name="Пусто").id
    with hub.session(read_only=True) as s:
        totals, newest = account_panel(s, account_id=empty, since=SINCE, until=UNTIL, rates=RATES, newest=50)
    assert totals.profit == 0 and totals.order_count == 0 and newest.orders == []


def test_the_job_stores_one_ranking_and_replaces_it(hub, world):  # noqa: F811
    assert _refresh(hub) == 1
    assert _refresh(hub) == 1  # again: the rows are replaced, not added
    with hub.session(read_only=True) as s:
        rows = {(f.owner_kind, f.owner_id): f for f in s.scalars(select(StoredFigure))}
        account = s.get(Account, world["account"])
    assert set(rows) == {("account", world["account"]), ("contact", world["lone"])}
    mine = rows[("account", world["account"])]
    # The job's period is 365 days: test_profit's 90-day figures plus the older order O0 (99,999 at 25%).
    assert (mine.profit, mine.margin, mine.cost_to_serve, mine.revenue) == (
        Decimal("26405.65"), Decimal("28749.75"), Decimal("2344.10"), Decimal("112999.00"))
    assert mine.rank == 1 and mine.band == "top" and rows[("contact", world["lone"])].band == "loss"
    assert (account.profit, account.profit_band, account.figures_at) == (Decimal("26405.65"), "top", mine.computed_at)



def test_the_ranking_is_written_in_batches_with_every_row_and_rank(hub, monkeypatch):
    """The ranking goes out RANKING_BATCH rows a statement (the rows and their JSON of 20,000 owners at
    once were the job's peak memory), and the batches together are the whole ranking, ranked in order."""
    from sqlalchemy import event

    import keyaccounts.figures as figures

    ids = seed_base(hub)  # ten accounts
    monkeypatch.setattr(figures, "RANKING_BATCH", 4)
    inserts = []

    def count(_conn, _cursor, statement, *_args):
        if statement.lstrip().upper().startswith("INSERT INTO ACCOUNT_FIGURE"):
            inserts.append(statement)

    event.listen(hub.db.engine, "before_cursor_execute", count)
    try:
        assert _refresh(hub) == 10
    finally:
        event.remove(hub.db.engine, "before_cursor_execute", count)
    assert len(inserts) == 3  # 4 + 4 + 2
    with hub.session(read_only=True) as s:
        stored = s.scalars(select(StoredFigure).order_by(StoredFigure.rank)).all()
    assert [f.rank for f in stored] == list(range(1, 11))
    assert {f.owner_id for f in stored} == set(ids.values())
    assert [f.profit for f in stored] == sorted((f.profit for f in stored), reverse=True)
    assert stored[0].owner_id == ids["Тихий завод"] and stored[-1].owner_id == ids["Газпромбанк VIP"]

def test_the_key_accounts_page_reads_the_stored_figures_for_the_configured_period(web, hub):
    login(web, hub)
    ids = seed_base(hub)
    computed = web.get("/key-accounts")
    assert computed.status_code == 200 and 'id="figures-at"' not in computed.text  # nothing stored yet: computed now
    _refresh(hub)
    stored = web.get("/key-accounts")
    assert 'id="figures-at"' in stored.text
    assert _ranking(stored.text) == _ranking(computed.text)  # the same ranking, read instead of summed
    # A large order after the run: the stored ranking does not move until the next run ...
    with hub.session(read_only=True) as s:
        small = s.scalar(select(Contact.id).where(Contact.account_id == ids["Малый 7"]))
    ingest(hub, InboundEvent(channel="commerce", kind="order.completed", direction="in", contact_id=small,
                             external_id="big-order", occurred_at=clock.now() - timedelta(days=1),
                             data={"source": "shop", "order": {"order_id": "BIG", "amount": "8000000",
                                                               "currency": "RUB", "margin": "2000000"}}))
    assert _ranking(web.get("/key-accounts").text) == _ranking(computed.text)
    # ... another period is computed now and sees it; the next run stores it.
    ninety = _ranking(web.get("/key-accounts?days=90").text)
    assert ninety.index("Малый 7") < ninety.index("Тихий завод")
    _refresh(hub)
    again = _ranking(web.get("/key-accounts").text)
    assert again.index("Малый 7") < again.index("Тихий завод")


def test_a_new_account_ranks_at_zero_until_the_next_run(web, hub):
    from hub.accounts import create_account
    from hub.auth import SYSTEM

    login(web, hub)
    seed_base(hub)
    _refresh(hub)
    with hub.session() as s, s.begin():
        create_account(s, actor=SYSTEM, name="Новая компания")
    page = web.get("/key-accounts")
    assert page.status_code == 200 and "Новая компания" in _ranking(page.text)


def test_a_bad_period_is_refused_and_changes_nothing(web, hub):
    login(web, hub)
    seed_base(hub)
    _refresh(hub)
    with hub.session(read_only=True) as s:
        before = s.scalar(select(func.count()).select_from(StoredFigure))
    assert web.get("/key-accounts?days=abc").status_code == 422
    assert web.get("/key-accounts/accounts/1/profit?days=-x").status_code == 422
    with hub.session(read_only=True) as s:
        assert s.scalar(select(func.count()).select_from(StoredFigure)) == before


def test_the_ranking_is_paged_and_the_lists_bounded(web, hub, monkeypatch):
    from keyaccounts import choosing

    monkeypatch.setattr(choosing, "RANKING_ROWS", 4)
    monkeypatch.setattr(choosing, "LISTED", 1)
    login(web, hub)
    seed_base(hub)
    first = web.get("/key-accounts")
    assert _ranking(first.text).count("<tr") == 1 + 4 and "Тихий завод" in _ranking(first.text)
    assert 'rel="next"' in first.text and 'rel="prev"' not in first.text and "Page 1 of 3" in first.text
    last = web.get("/key-accounts?page=3")
    assert _ranking(last.text).count("<tr") == 1 + 2 and "Газпромбанк VIP" in _ranking(last.text)
    assert web.get("/key-accounts?page=99").text.count("Page 3 of 3") == 1  # past the end: the last page
    assert web.get("/key-accounts?page=0").status_code == 422
    suggested = first.text.split('id="suggested"')[1].split("</form>")[0]
    assert suggested.count('name="account"') == 1 and "and 1 more" in suggested
