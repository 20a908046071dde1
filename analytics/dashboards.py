"""What each dashboard shows: its tables (analytics.tables, exported as CSV as they are) and charts,
built from the precomputed figures and the queries of analytics.processes / analytics.activity."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from babel import dates as babel_dates
from markupsafe import Markup
from sqlalchemy import select
from sqlalchemy.orm import Session

from analytics import activity, charts, processes, rfm
from analytics.compute import Options, latest_run
from analytics.models import RfmScore
from analytics.tables import INT, MONEY, NUMBER, SHARE, Column, Table
from hub.models import Account, Contact
from hub.web.i18n import N_

PAGES = ("rfm", "value", "acquisition", "retention", "growth", "satisfaction", "activity")
PAGE_TITLES = {"rfm": N_("RFM"), "value": N_("Customer value"), "acquisition": N_("Acquisition"),
               "retention": N_("Retention"), "growth": N_("Growth"), "satisfaction": N_("Satisfaction"),
               "activity": N_("Channels and team")}
DAYS = (30, 90, 180, 365, 730)
MONTHS = (6, 12, 24)
SOURCE_LABELS = {processes.NO_SOURCE: N_("Added by hand or imported"), "forms": N_("Form"), "email": N_("Email"),
                 "sms": N_("SMS"), "phone": N_("Phone"), "commerce": N_("Shop order"), "meetings": N_("Meeting"),
                 "note": N_("Note"), "surveys": N_("Survey")}


@dataclass
class Params:
    kind: str = "contact"
    days: int = 365
    months: int = 12
    segment_id: int | None = None


@dataclass
class Board:
    page: str
    tables: list[Table] = field(default_factory=list)
    charts: dict[str, Markup] = field(default_factory=dict)
    values: dict[str, Any] = field(default_factory=dict)

    def table(self, name: str) -> Table | None:
        return next((t for t in self.tables if t.name == name), None)


@dataclass(frozen=True)
class Speaker:
    """The agent's language for a board: gettext and a month's short name."""

    gettext: Callable[[str], str]
    locale: str

    def month(self, month: int) -> str:
        return babel_dates.format_date(date(month // 12, month % 12 + 1, 1), "LLL yy", locale=self.locale)


def build(page: str, session: Session, *, params: Params, options: Options, now: datetime, speaker: Speaker) -> Board:
    """The board of one dashboard page."""
    return _BUILDERS[page](session, params, options, now, speaker)


def _channel_name(speaker: Speaker, channel: str) -> str:
    label = SOURCE_LABELS.get(channel)
    return speaker.gettext(label) if label else channel


def _rfm(session: Session, p: Params, o: Options, now: datetime, s: Speaker) -> Board:
    _ = s.gettext
    grid = rfm.grid(session, kind=p.kind)
    names = {c: _(rfm.CELL_LABELS[c]) for c in rfm.CELLS}
    cells = Table("cells", _("Customers and revenue by cell"), [
        Column("cell", _("Cell")), Column("customers", _("Customers"), INT), Column("share", _("Share"), SHARE),
        Column("revenue", _("Revenue"), MONEY), Column("revenue_share", _("Share of revenue"), SHARE),
        Column("predicted_value", _("Predicted value"), MONEY)],
        [[c.cell, c.customers, c.share, c.revenue, c.revenue_share, c.predicted_value] for c in grid.cells])
    board = Board("rfm", [cells], values={"grid": grid, "names": names, "advice": rfm.CELL_ADVICE, "currency": o.currency,
                                          "run": latest_run(session, "scores")})
    board.charts["grid"] = charts.rfm_grid_svg(grid.squares, rfm.GRID, names, title=_("The RFM grid"),
                                               axis=(_("FM: frequency and money, low → high"), _("R: recency, up = recent")))
    return board


def _value(session: Session, p: Params, o: Options, now: datetime, s: Speaker) -> Board:
    _ = s.gettext
    owner = Account.name if p.kind == "account" else Contact.display_name
    target = Account.id if p.kind == "account" else Contact.id
    top = session.execute(
        select(RfmScore.owner_id, owner, RfmScore.orders, RfmScore.revenue, RfmScore.expected_orders,
               RfmScore.p_alive, RfmScore.predicted_value, RfmScore.cell)
        .join_from(RfmScore, Account if p.kind == "account" else Contact, target == RfmScore.owner_id)
        .where(RfmScore.owner_kind == p.kind)
        .order_by(sa.case((RfmScore.predicted_value.is_(None), 1), else_=0), RfmScore.predicted_value.desc(),
                  RfmScore.revenue.desc(), RfmScore.owner_id)
        .limit(50)).all()
    base = "/accounts/" if p.kind == "account" else "/contacts/"
    table = Table("customers", _("Customers by predicted value"), [
        Column("id", "#", INT), Column("name", _("Name")), Column("orders", _("Orders"), INT),
        Column("lifetime_value", _("Lifetime value so far"), MONEY),
        Column("expected_orders", _("Expected orders"), NUMBER), Column("p_alive", _("Still a customer"), SHARE),
        Column("predicted_value", _("Predicted value"), MONEY), Column("cell", _("RFM cell"))],
        [[i, name or f"#{i}", n, rev, None if e is None else round(e, 2), pa, pv, _(rfm.CELL_LABELS[cell])]
         for i, name, n, rev, e, pa, pv, cell in top], [f"{base}{row[0]}" for row in top])
    run = latest_run(session, "value")
    holdout = (run.details or {}).get("holdout") if run else None
    check = Table("holdout", _("Hold-out check of the model"), [
        Column("measure", _("Measure")), Column("predicted", _("Predicted"), NUMBER),
        Column("actual", _("Actual"), NUMBER), Column("error", _("Error"), SHARE)])
    if holdout:
        check.rows = [
            [_("Orders (BG/NBD)"), round(holdout["predicted_orders"], 1), holdout["actual_orders"],
             holdout["orders_error"]],
            [_("Revenue (BG/NBD × Gamma-Gamma)"), round(holdout["predicted_revenue"]), round(holdout["actual_revenue"]),
             holdout["revenue_error"]],
            [_("Orders (naive: past rate)"), round(holdout["baseline_orders"], 1), holdout["actual_orders"],
             holdout["baseline_error"]]]
    return Board("value", [check, table], values={"run": run, "holdout": holdout, "currency": o.currency})


def _acquisition(session: Session, p: Params, o: Options, now: datetime, s: Speaker) -> Board:
    _ = s.gettext
    data = processes.acquisition(session, since=now - timedelta(days=p.days), until=now)
    cols = [Column("contacts", _("New contacts"), INT), Column("converted", _("Ordered"), INT),
            Column("conversion", _("Conversion"), SHARE), Column("days_to_first_order", _("Days to first order"), NUMBER)]

    def figures(r: processes.SourceRow) -> list[Any]:
        return [r.contacts, r.converted, r.rate, None if r.days_to_order is None else round(r.days_to_order, 1)]

    sources = Table("sources", _("New contacts by source"), [Column("channel", _("Channel")),
                                                              Column("source", _("Source")), *cols],
                    [[_channel_name(s, r.key[0]), r.key[1], *figures(r)] for r in data.by_source])
    utm = Table("utm", _("New contacts by UTM parameters"), [
        Column("utm_source", "utm_source"), Column("utm_medium", "utm_medium"), Column("utm_campaign", "utm_campaign"),
        *cols], [[*r.key, *figures(r)] for r in data.by_utm])
    months = sorted(data.by_month)
    channels = sorted({c for m in data.by_month.values() for c in m})
    board = Board("acquisition", [sources, utm], values={"total": data.total})
    if months:
        span = list(range(months[0], months[-1] + 1))
        board.charts["new"] = charts.bars_svg([s.month(m) for m in span],
                                              [(_channel_name(s, c), [data.by_month.get(m, {}).get(c, 0) for m in span])
                                               for c in channels], title=_("New contacts per month by channel"),
                                              fmt=lambda v: f"{v:.0f}")
    return board


def _retention(session: Session, p: Params, o: Options, now: datetime, s: Speaker) -> Board:
    _ = s.gettext
    rows = processes.cohorts(session, now=now, months=p.months)
    cohort = Table("cohorts", _("Customers still ordering, by first-order month"), [
        Column("cohort", _("First order")), Column("customers", _("Customers"), INT),
        *(Column(f"m{k}", f"+{k}", SHARE) for k in range(p.months))],
        [[sql_month(r.cohort), r.size, *(r.share(k) for k in range(p.months))] for r in rows])
    counts = Table("cohort_counts", _("The same, in customers"), [
        Column("cohort", _("First order")), *(Column(f"m{k}", f"+{k}", INT) for k in range(p.months))],
        [[sql_month(r.cohort), *r.customers] for r in rows])
    figures = processes.month_figures(session, now=now, months=p.months)
    moves = Table("movements", _("New, churned and reactivated customers"), [
        Column("month", _("Month")), Column("customers", _("Ordered"), INT), Column("new", _("New"), INT),
        Column("reactivated", _("Reactivated"), INT), Column("churned", _("Churned"), INT)],
        [[sql_month(f.month), f.customers, f.new_customers, f.reactivated, f.churned] for f in figures])
    board = Board("retention", [cohort, counts, moves], values={"churn_days": o.churn_days})
    recent = [r for r in rows if r.size][-6:]
    board.charts["curves"] = charts.lines_svg([f"+{k}" for k in range(p.months)],
                                              [(s.month(r.cohort), [None if r.share(k) is None else 100 * r.share(k)  # type: ignore[operator]
                                                                    for k in range(p.months)]) for r in recent],
                                              title=_("Retention curves of the latest cohorts, %"),
                                              fmt=lambda v: f"{v:.0f}%", low=0, high=100)
    board.charts["moves"] = charts.bars_svg([s.month(f.month) for f in figures],
                                            [(_("New"), [f.new_customers for f in figures]),
                                             (_("Reactivated"), [f.reactivated for f in figures]),
                                             (_("Churned"), [f.churned for f in figures])],
                                            title=_("New, reactivated and churned customers per month"),
                                            fmt=lambda v: f"{v:.0f}")
    return board


def _growth(session: Session, p: Params, o: Options, now: datetime, s: Speaker) -> Board:
    _ = s.gettext
    figures = processes.month_figures(session, now=now, months=p.months)
    table = Table("months", _("Orders and revenue per month"), [
        Column("month", _("Month")), Column("customers", _("Customers"), INT), Column("orders", _("Orders"), INT),
        Column("revenue", _("Revenue"), MONEY), Column("revenue_per_customer", _("Revenue per customer"), MONEY),
        Column("repeat_customers", _("Repeat customers"), INT), Column("repeat_rate", _("Repeat-purchase rate"), SHARE)],
        [[sql_month(f.month), f.customers, f.orders, f.revenue,
          (Decimal(f.revenue) / f.customers).quantize(Decimal("0.01")) if f.customers else None,
          f.repeat_customers, f.repeat_customers / f.customers if f.customers else None] for f in figures])
    base = processes.growth(session)
    board = Board("growth", [table], values={"base": base, "currency": o.currency})
    labels = [s.month(f.month) for f in figures]
    board.charts["revenue"] = charts.lines_svg(labels, [(_("Revenue per customer"), [
        float(r[4]) if r[4] is not None else None for r in table.rows])],
        title=_("Revenue per customer per month"), fmt=lambda v: f"{v:,.0f}")
    board.charts["repeat"] = charts.lines_svg(labels, [(_("Repeat-purchase rate"), [
        100 * r[6] if r[6] is not None else None for r in table.rows])],
        title=_("Share of the month's customers who had ordered before, %"), fmt=lambda v: f"{v:.0f}%", low=0, high=100)
    return board


def _satisfaction(session: Session, p: Params, o: Options, now: datetime, s: Speaker) -> Board:
    _ = s.gettext
    ids = None
    segment = None
    if p.segment_id is not None:
        from campaigns.segments.compiler import contact_ids_query
        from campaigns.segments.models import Segment

        segment = session.get(Segment, p.segment_id)
        if segment is None:
            raise LookupError("segment")
        ids = contact_ids_query(segment.definition, now=now).order_by(None)
    data = processes.satisfaction(session, since=now - timedelta(days=p.days), until=now, contact_ids=ids)
    cols = [Column("answers", _("Answers"), INT), Column("nps", "NPS", NUMBER), Column("nps_answers", _("NPS answers"), INT),
            Column("csat", _("CSAT, % satisfied"), NUMBER), Column("csat_answers", _("CSAT answers"), INT)]

    def figures(x: processes.Scores) -> list[Any]:
        return [x.answers, x.nps, x.nps_answers, x.csat, x.csat_answers]

    cell_names = {c: _(rfm.CELL_LABELS[c]) for c in rfm.CELLS}
    tables = [
        Table("months", _("By month"), [Column("month", _("Month")), *cols],
              [[sql_month(x.key[0]), *figures(x)] for x in data.by_month]),
        Table("channels", _("By channel of the invitation"), [Column("channel", _("Channel")), *cols],
              [[_channel_name(s, x.key[0]) if x.key[0] else "—", *figures(x)] for x in data.by_channel]),
        Table("cells", _("By RFM cell"), [Column("cell", _("RFM cell")), *cols],
              [[cell_names.get(x.key[0], _("Not a customer yet")), *figures(x)] for x in data.by_cell])]
    board = Board("satisfaction", tables, values={"total": data.total, "segment": segment})
    months = [x.key[0] for x in data.by_month]
    if months:
        span = list(range(months[0], months[-1] + 1))
        channels = sorted({k[1] for k in data.by_month_channel})
        series = [("NPS", [next((x.nps for x in data.by_month if x.key[0] == m), None) for m in span])]
        series += [(f"NPS · {_channel_name(s, ch) if ch else '—'}", [
            data.by_month_channel[(m, ch)].nps if (m, ch) in data.by_month_channel else None for m in span])
            for ch in channels if len(channels) > 1]
        board.charts["nps"] = charts.lines_svg([s.month(m) for m in span], series, title=_("NPS per month and channel"),
                                               fmt=lambda v: f"{v:.0f}", low=-100, high=100)
    return board


def _activity(session: Session, p: Params, o: Options, now: datetime, s: Speaker) -> Board:
    _ = s.gettext
    span, rows = activity.channels(session, now=now, months=p.months)
    volume = Table("channels", _("Events per channel and month, in / out"), [
        Column("channel", _("Channel")), Column("direction", _("Direction")),
        *(Column(sql_month(m), s.month(m), INT) for m in span), Column("total", _("Total"), INT)])
    directions = (("incoming", _("in")), ("outgoing", _("out")), ("internal", _("internal")))
    for row in rows:
        for attr, label in directions:
            values = getattr(row, attr)
            if values:
                volume.rows.append([_channel_name(s, row.channel), label, *(values.get(m, 0) for m in span),
                                    sum(values.values())])
    team_span, people = activity.team(session, now=now, months=p.months)
    team = Table("team", _("Team: events each person sent or logged"), [
        Column("user", _("Person")), *(Column(sql_month(m), s.month(m), INT) for m in team_span),
        Column("total", _("Total"), INT)], [[r.name, *(r.by_month.get(m, 0) for m in team_span), r.total] for r in people])
    reply_span, replies = activity.responses(session, now=now, months=p.months)
    speed = Table("responses", _("Replies and mean hours to reply, per channel and month"), [
        Column("channel", _("Channel")), Column("month", _("Month")), Column("replies", _("Replies"), INT),
        Column("mean_hours", _("Mean hours to reply"), NUMBER)],
        [[_channel_name(s, ch), sql_month(m), by[m][0], round(by[m][1], 1)]
         for ch, by in sorted(replies.items()) for m in reply_span if m in by])
    board = Board("activity", [volume, team, speed])
    labels = [s.month(m) for m in span]
    board.charts["in"] = charts.bars_svg(labels, [(_channel_name(s, r.channel), [r.incoming.get(m, 0) for m in span])
                                                  for r in rows if r.incoming], title=_("Incoming per channel"),
                                         fmt=lambda v: f"{v:.0f}")
    board.charts["out"] = charts.bars_svg(labels, [(_channel_name(s, r.channel), [r.outgoing.get(m, 0) for m in span])
                                                   for r in rows if r.outgoing], title=_("Outgoing per channel"),
                                          fmt=lambda v: f"{v:.0f}")
    if replies:
        board.charts["replies"] = charts.lines_svg(
            labels, [(_channel_name(s, ch), [by[m][1] if m in by else None for m in reply_span])
                     for ch, by in sorted(replies.items())],
            title=_("Mean hours to reply"), fmt=lambda v: f"{v:.1f}", low=0)
    return board


def sql_month(month: int) -> str:
    """The month as the CSV and the documented queries write it: 2026-12."""
    return f"{month // 12:04d}-{month % 12 + 1:02d}"


_BUILDERS: dict[str, Callable[..., Board]] = {
    "rfm": _rfm, "value": _value, "acquisition": _acquisition, "retention": _retention, "growth": _growth,
    "satisfaction": _satisfaction, "activity": _activity}
