"""Segments compiled to SQL: one Select of contact ids, streamed in keyset batches, never loaded whole.

Each condition becomes a boolean SQL expression over the `contact` row, mostly correlated EXISTS or
scalar subqueries on the timeline, which its index (contact_id, occurred_at, id) serves. JSON values
go through `hub.json_sql`, which compiles for SQLite or PostgreSQL, so the same Select
runs on both stores. Relative times ("the last 30 days") are taken from the `now` the caller passes,
so a campaign run computes its audience against its own clock.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy import column as sa_column
from sqlalchemy import table as sa_table
from sqlalchemy import and_, exists, false, func, not_, or_, select, true
from sqlalchemy.orm import Session, aliased

from campaigns.segments.definition import (
    AccountCondition,
    ActivityCondition,
    AndGroup,
    AttributeCondition,
    CampaignCondition,
    ConsentCondition,
    FieldCondition,
    IdentityCondition,
    InvalidDefinition,
    LastCampaignCondition,
    NotGroup,
    OrdersCondition,
    OrGroup,
    RfmCondition,
    SegmentDefinition,
    SurveyCondition,
    TagCondition,
    TopSpendersCondition,
    parse_definition,
)
from hub.json_sql import folded_contains, json_array_has, json_kind, json_number, json_text
from hub.channel_hooks import contact_channels
from hub.models import Account, ConsentRecord, Contact, Direction, Identity, TimelineEvent

__all__ = ["SegmentDefinition", "InvalidDefinition", "parse_definition", "contact_ids_query", "iter_contact_ids",
           "count_contacts", "sample_contacts", "condition_sql"]

# What other parts of the hub write on the timeline, and segments read back.
COMMERCE_CHANNEL = "commerce"
ORDER_COMPLETED = "order.completed"
ORDER_REFUNDED = "order.refunded"
CAMPAIGN_MESSAGE = "campaign.message"
CAMPAIGN_OPENED = "campaign.opened"
CAMPAIGN_CLICKED = "campaign.clicked"
CAMPAIGN_UNSUBSCRIBED = "campaign.unsubscribed"
SURVEY_ANSWERED = "survey.answered"


def reply_channels() -> list[str]:
    """Where a contact's reply can come from: the installed channels that send to contacts (email,
    SMS, Telegram…), as a reply arrives on the channel the message went out on."""
    return list(contact_channels())


_CAMPAIGN_EVENTS = {"received": CAMPAIGN_MESSAGE, "opened": CAMPAIGN_OPENED, "clicked": CAMPAIGN_CLICKED,
                    "unsubscribed": CAMPAIGN_UNSUBSCRIBED}
_FIELD_COLUMNS = {"display_name": Contact.display_name, "locale": Contact.locale, "time_zone": Contact.time_zone,
                  "lifecycle_stage": Contact.lifecycle_stage, "owner_id": Contact.owner_id,
                  "created_at": Contact.created_at}


def contact_ids_query(definition: SegmentDefinition | dict[str, Any], *, now: datetime) -> sa.Select[Any]:
    """SELECT contact.id of every live (not merged) contact the definition matches, in id order."""
    if now.tzinfo is None:
        raise ValueError("now needs a time zone (use hub.clock.now())")
    definition = parse_definition(definition)
    return (select(Contact.id)
            .where(Contact.merged_into.is_(None), _group("and" if definition.type == "and" else "or",
                                                         definition.conditions, now))
            .order_by(Contact.id))


def iter_contact_ids(session: Session, definition: SegmentDefinition | dict[str, Any], *, now: datetime,
                     batch_size: int = 1000) -> Iterator[list[int]]:
    """The matching contact ids in ascending batches, each read by keyset (id > last seen)."""
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    query = contact_ids_query(definition, now=now)
    last = 0
    while True:
        batch = list(session.scalars(query.where(Contact.id > last).limit(batch_size)))
        if not batch:
            return
        yield batch
        if len(batch) < batch_size:
            return
        last = batch[-1]


def contains(session: Session, definition: SegmentDefinition | dict[str, Any], contact_id: int, *,
             now: datetime) -> bool:
    """Whether one contact is in the segment (a triggered campaign's audience check)."""
    query = contact_ids_query(definition, now=now).where(Contact.id == contact_id).order_by(None).limit(1)
    return session.scalar(query) is not None


def count_contacts(session: Session, definition: SegmentDefinition | dict[str, Any], *, now: datetime) -> int:
    """How many live contacts the definition matches."""
    ids = contact_ids_query(definition, now=now).order_by(None).subquery()
    return int(session.scalar(select(func.count()).select_from(ids)) or 0)


def sample_contacts(session: Session, definition: SegmentDefinition | dict[str, Any], *, now: datetime,
                    limit: int = 10) -> list[Contact]:
    """Up to `limit` matching contacts, the newest first (a preview, not a random sample)."""
    ids = contact_ids_query(definition, now=now).order_by(None)
    return list(session.scalars(
        select(Contact).where(Contact.id.in_(ids.scalar_subquery())).order_by(Contact.id.desc()).limit(limit)))


# --- compiling ---------------------------------------------------------------------------------

def _group(kind: str, conditions: list[Any], now: datetime) -> Any:
    parts = [condition_sql(c, now=now) for c in conditions]
    if kind == "and":
        return and_(true(), *parts) if parts else true()
    return or_(false(), *parts) if parts else false()


def condition_sql(node: Any, *, now: datetime) -> Any:
    """The SQL boolean for one node of a definition (a group or a condition)."""
    if isinstance(node, AndGroup):
        return _group("and", node.conditions, now)
    if isinstance(node, OrGroup):
        return _group("or", node.conditions, now)
    if isinstance(node, NotGroup):
        return _negate(condition_sql(node.condition, now=now))
    compile_one = _COMPILERS.get(type(node))
    if compile_one is None:
        raise TypeError(f"no SQL for {type(node).__name__}")
    return compile_one(node, now)


def _negate(expression: Any) -> Any:
    """NOT that treats SQL's unknown as false: "not (NPS <= 6)" includes those who never answered."""
    return not_(sa.case((expression, true()), else_=false()))


def _field(c: FieldCondition, now: datetime) -> Any:
    column = _FIELD_COLUMNS[c.field]
    if c.field == "display_name":
        if c.op == "contains":
            # search_name holds the case-folded name, so this folds Cyrillic on SQLite too.
            escaped = str(c.value).casefold().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            return Contact.search_name.like(f"%{escaped}%", escape="\\")
        if c.op in ("eq", "ne"):
            same = Contact.search_name == " ".join(str(c.value).split()).casefold()
            return same if c.op == "eq" else _negate(same)
        empty = Contact.display_name == ""
        return empty if c.op == "is_empty" else not_(empty)
    if c.op == "is_set":
        return column.is_not(None)
    if c.op == "is_empty":
        return column.is_(None)
    if c.op == "eq":
        return column == c.value
    if c.op == "ne":  # "not Russian" includes contacts whose locale is unknown
        return or_(column.is_(None), column != c.value)
    if c.op == "in":
        return column.in_(list(c.value))  # type: ignore[arg-type]
    if c.op == "not_in":
        return or_(column.is_(None), column.not_in(list(c.value)))  # type: ignore[arg-type]
    if c.op == "before":
        return column < c.value
    if c.op == "after":
        return column > c.value
    if c.op == "within_days":
        return column >= now - timedelta(days=int(c.value))  # type: ignore[arg-type]
    return column < now - timedelta(days=int(c.value))  # older_than_days


def _tag(c: TagCondition, now: datetime) -> Any:
    has = json_array_has(Contact.tags, c.tag.strip())
    return has if c.op == "has" else not_(has)


def _attribute(c: AttributeCondition, now: datetime) -> Any:
    column, key = Contact.attributes, c.key
    kind = func.coalesce(json_kind(column, key), "missing")
    present = kind.not_in(["missing", "null"])
    if c.op == "exists":
        return present
    if c.op == "not_exists":
        return _negate(present)
    if c.op == "contains":
        return and_(kind == "string", folded_contains(json_text(column, key), str(c.value)))
    if c.op in ("gt", "gte", "lt", "lte"):
        return _compare(json_number(column, key), c.op, c.value)
    value = c.value
    if isinstance(value, bool):
        same = kind == ("true" if value else "false")
    elif isinstance(value, (int, Decimal)):
        same = and_(kind == "number", json_number(column, key) == value)
    else:
        same = and_(kind == "string", json_text(column, key) == value)
    return same if c.op == "eq" else _negate(same)


def _compare(left: Any, op: str, right: Any) -> Any:
    return {"eq": left == right, "ne": left != right, "gt": left > right, "gte": left >= right,
            "lt": left < right, "lte": left <= right}[op]


def _consent(c: ConsentCondition, now: datetime) -> Any:
    latest = (select(ConsentRecord.status)
              .where(ConsentRecord.contact_id == Contact.id, ConsentRecord.channel == c.channel,
                     ConsentRecord.purpose == c.purpose)
              .order_by(ConsentRecord.occurred_at.desc(), ConsentRecord.id.desc())
              .limit(1).correlate(Contact).scalar_subquery())
    if c.status == "none":
        return latest.is_(None)
    return latest == c.status


def _identity(c: IdentityCondition, now: datetime) -> Any:
    found = exists().where(Identity.contact_id == Contact.id, Identity.kind == c.kind).correlate(Contact)
    return found if c.has else not_(found)


def _events(alias: Any = TimelineEvent) -> Any:
    return alias.contact_id == Contact.id


def _activity(c: ActivityCondition, now: datetime) -> Any:
    filters = [_events()]
    if c.kind:
        filters.append(TimelineEvent.kind == c.kind)
    if c.channel:
        filters.append(TimelineEvent.channel == c.channel)
    if c.direction:
        filters.append(TimelineEvent.direction == c.direction)
    if c.days:
        filters.append(TimelineEvent.occurred_at >= now - timedelta(days=c.days))
    if c.min_count == 1:
        return exists().where(*filters).correlate(Contact)
    counted = select(func.count()).select_from(TimelineEvent).where(*filters).correlate(Contact).scalar_subquery()
    return counted >= c.min_count


def _campaign_event(campaign_id: int, kind: str) -> Any:
    return exists().where(_events(), TimelineEvent.thread_key == f"campaign:{campaign_id}",
                          TimelineEvent.kind == kind).correlate(Contact)


def _reply_after(when: Any) -> Any:
    reply = aliased(TimelineEvent)
    return exists().where(_events(reply), reply.direction == Direction.IN.value,
                          reply.channel.in_(reply_channels()), reply.occurred_at > when).correlate(Contact)


def _campaign(c: CampaignCondition, now: datetime) -> Any:
    if c.event == "opened_not_clicked":
        return and_(_campaign_event(c.campaign_id, CAMPAIGN_OPENED), not_(_campaign_event(c.campaign_id, CAMPAIGN_CLICKED)))
    if c.event == "replied":
        first = (select(func.min(TimelineEvent.occurred_at))
                 .where(_events(), TimelineEvent.thread_key == f"campaign:{c.campaign_id}",
                        TimelineEvent.kind == CAMPAIGN_MESSAGE)
                 .correlate(Contact).scalar_subquery())
        return and_(first.is_not(None), _reply_after(first))
    return _campaign_event(c.campaign_id, _CAMPAIGN_EVENTS[c.event])


def _last_campaign(c: LastCampaignCondition, now: datetime) -> Any:
    last = (select(func.max(TimelineEvent.occurred_at))
            .where(_events(), TimelineEvent.kind == CAMPAIGN_MESSAGE)
            .correlate(Contact).scalar_subquery())
    replied = _reply_after(last)
    # No campaign ever: neither "replied to" nor "did not reply to" the last one.
    return and_(last.is_not(None), replied if c.replied else not_(replied))


def _order_totals(currency: str) -> Any:
    """(contact_id, total) for everyone who bought in `currency`: each order counted once (its latest
    report, picked with row_number() in one pass rather than a self-join), minus refunds."""
    event = aliased(TimelineEvent)
    amount = json_number(event.data, "order", "amount")
    in_currency = [event.channel == COMMERCE_CHANNEL, json_text(event.data, "order", "currency") == currency]
    reports = (select(event.contact_id.label("contact_id"), amount.label("amount"),
                      func.row_number().over(
                          partition_by=(event.contact_id, json_text(event.data, "source"),
                                        json_text(event.data, "order", "order_id")),
                          order_by=(event.occurred_at.desc(), event.id.desc())).label("nth"))
               .where(event.kind == ORDER_COMPLETED, *in_currency).subquery())
    refunds = select(event.contact_id.label("contact_id"), (-amount).label("amount")).where(
        event.kind == ORDER_REFUNDED, *in_currency)
    moves = sa.union_all(select(reports.c.contact_id, reports.c.amount).where(reports.c.nth == 1), refunds).subquery()
    return (select(moves.c.contact_id, func.coalesce(func.sum(moves.c.amount), 0).label("total"))
            .group_by(moves.c.contact_id))


def _by_aggregate(grouped: Any, measure: Any, op: str, value: Any, *, zero: Any) -> Any:
    """Compare a per-contact aggregate computed once for everyone (a semi-join, not a subquery per
    contact). Contacts with no rows count as `zero`; when zero satisfies the comparison they are
    found as "not among those who fail it"."""
    if zero is None or not _compare_values(zero, op, value):
        return Contact.id.in_(grouped.having(_compare(measure, op, value)))
    return Contact.id.not_in(grouped.having(not_(_compare(measure, op, value))))


def _compare_values(left: Any, op: str, right: Any) -> bool:
    return {"eq": left == right, "ne": left != right, "gt": left > right, "gte": left >= right,
            "lt": left < right, "lte": left <= right}[op]


def _orders(c: OrdersCondition, now: datetime) -> Any:
    completed = [TimelineEvent.channel == COMMERCE_CHANNEL, TimelineEvent.kind == ORDER_COMPLETED]
    if c.metric == "count":
        key = (func.coalesce(json_text(TimelineEvent.data, "source"), "") + ":"
               + func.coalesce(json_text(TimelineEvent.data, "order", "order_id"), ""))
        counted = func.count(sa.distinct(key))
        grouped = select(TimelineEvent.contact_id).where(*completed).group_by(TimelineEvent.contact_id)
        return _by_aggregate(grouped, counted, c.op, int(c.value), zero=0)
    if c.metric == "total":
        totals = _order_totals(c.currency or "").subquery()
        if _compare_values(Decimal(0), c.op, c.value):
            failing = select(totals.c.contact_id).where(not_(_compare(totals.c.total, c.op, c.value)))
            return Contact.id.not_in(failing)
        return Contact.id.in_(select(totals.c.contact_id).where(_compare(totals.c.total, c.op, c.value)))
    last = func.max(TimelineEvent.occurred_at)
    since = now - timedelta(days=int(c.value))
    # More days since the last order means an earlier last order; no order at all matches nothing.
    inverse = {"lt": "gt", "lte": "gte", "gt": "lt", "gte": "lte"}[c.op]
    grouped = select(TimelineEvent.contact_id).where(*completed).group_by(TimelineEvent.contact_id)
    return _by_aggregate(grouped, last, inverse, since, zero=None)


def _top_spenders(c: TopSpendersCondition, now: datetime) -> Any:
    totals = _order_totals(c.currency).subquery()
    ranked = (select(totals.c.contact_id,
                     func.percent_rank().over(order_by=totals.c.total.desc()).label("share"))
              .where(totals.c.total > 0).subquery())
    return Contact.id.in_(select(ranked.c.contact_id).where(ranked.c.share < c.percent / 100
                                                            if c.percent < 100 else true()))


def _survey(c: SurveyCondition, now: datetime) -> Any:
    latest = (select(json_number(TimelineEvent.data, c.metric))
              .where(_events(), TimelineEvent.kind == SURVEY_ANSWERED,
                     json_kind(TimelineEvent.data, c.metric) == "number")
              .order_by(TimelineEvent.occurred_at.desc(), TimelineEvent.id.desc())
              .limit(1).correlate(Contact).scalar_subquery())
    return _compare(latest, c.op, c.value)


def _account(c: AccountCondition, now: datetime) -> Any:
    """A semi-join on the account row: contacts whose account matches (none without an account)."""
    if c.field == "any":
        return Contact.account_id.is_not(None) if c.op == "is_set" else Contact.account_id.is_(None)
    if c.field == "attribute":
        kind = func.coalesce(json_kind(Account.attributes, c.key or ""), "missing")
        if c.op == "exists":
            match = kind.not_in(["missing", "null"])
        elif c.op == "contains":
            match = and_(kind == "string", folded_contains(json_text(Account.attributes, c.key or ""), str(c.value)))
        else:
            match = and_(kind == "string", json_text(Account.attributes, c.key or "") == c.value)
    elif c.field == "name":
        folded = " ".join(str(c.value).split()).casefold()
        if c.op == "eq":
            match = Account.search_name == folded
        else:
            escaped = folded.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            match = Account.search_name.like(f"%{escaped}%", escape="\\")
    elif c.field == "is_key":
        match = Account.is_key.is_(bool(c.value))
    else:
        column = {"kind": Account.kind, "owner_id": Account.owner_id, "profit_band": Account.profit_band,
                  "temperature": Account.temperature}[c.field]
        if c.op == "is_set":
            match = column.is_not(None)
        elif c.op == "is_empty":
            match = column.is_(None)
        elif c.op == "in":
            match = column.in_(list(c.value))  # type: ignore[arg-type]
        elif c.op == "not_in":
            match = or_(column.is_(None), column.not_in(list(c.value)))  # type: ignore[arg-type]
        elif c.op == "ne":
            match = or_(column.is_(None), column != c.value)
        else:
            match = _compare(column, c.op, c.value)
    return Contact.account_id.in_(select(Account.id).where(match))


_RFM_SCORES = sa_table("analytics_rfm_score", sa_column("owner_kind"), sa_column("owner_id"), sa_column("cell"),
                       sa_column("r"), sa_column("f"), sa_column("m"), sa_column("revenue"),
                       sa_column("predicted_value"))


def _rfm(c: RfmCondition, now: datetime) -> Any:
    """Through the analytics extension's precomputed scores; "is not <cell>" includes the unscored.

    The scores are read by table name, not through the analytics package's model: a plug-in does not
    import another's modules (tests/test_plugin_boundary.py). With analytics not installed the
    condition matches nobody (no scores)."""
    rfm = _RFM_SCORES.c
    column = {"cell": rfm.cell, "r": rfm.r, "f": rfm.f, "m": rfm.m,
              "lifetime_value": rfm.revenue, "predicted_value": rfm.predicted_value}[c.measure]
    scored = select(rfm.owner_id).where(rfm.owner_kind == "contact")
    if c.op == "ne":
        return Contact.id.not_in(scored.where(column == c.value))
    return Contact.id.in_(scored.where(_compare(column, c.op, c.value)))


_COMPILERS: dict[type, Any] = {
    FieldCondition: _field, TagCondition: _tag, AttributeCondition: _attribute, ConsentCondition: _consent,
    IdentityCondition: _identity, ActivityCondition: _activity, CampaignCondition: _campaign,
    LastCampaignCondition: _last_campaign, OrdersCondition: _orders, TopSpendersCondition: _top_spenders,
    SurveyCondition: _survey, AccountCondition: _account, RfmCondition: _rfm,
}
