"""What a survey's answers say: response rate, NPS and CSAT with distribution and trend, breakdowns,
free-text answers, and a CSV export. Computed from the response rows on each request."""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from campaigns.surveys.models import QuestionKind, Survey, SurveyInvitation, SurveyResponse
from campaigns.surveys.questions import Question, parse_questions
from hub import clock
from hub.models import Contact

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


@dataclass
class Score:
    """Counts per value and the headline score (NPS: promoters − detractors, in %; CSAT: share of 4–5)."""

    kind: str
    counts: dict[int, int]
    total: int
    value: float | None

    @property
    def peak(self) -> int:
        return max(self.counts.values(), default=0)


def nps_of(values: Iterable[int]) -> Score:
    counts = {n: 0 for n in range(11)}
    for v in values:
        counts[v] = counts.get(v, 0) + 1
    total = sum(counts.values())
    value = None
    if total:
        promoters = sum(c for n, c in counts.items() if n >= 9)
        detractors = sum(c for n, c in counts.items() if n <= 6)
        value = round(100 * (promoters - detractors) / total, 1)
    return Score("nps", counts, total, value)


def csat_of(values: Iterable[int]) -> Score:
    counts = {n: 0 for n in range(1, 6)}
    for v in values:
        counts[v] = counts.get(v, 0) + 1
    total = sum(counts.values())
    value = round(100 * (counts[4] + counts[5]) / total, 1) if total else None
    return Score("csat", counts, total, value)


@dataclass
class TrendPoint:
    start: datetime
    nps: float | None
    csat: float | None
    responses: int


@dataclass
class Group:
    label: str
    responses: int
    nps: float | None
    csat: float | None


@dataclass
class Results:
    survey: Survey
    questions: list[Question]
    invited: int
    responded: int
    partial: int
    nps: Score
    csat: Score
    trend: list[TrendPoint]
    by_order: dict[str, list[Group]]
    by_segment: list[Group]
    texts: list[dict[str, Any]] = field(default_factory=list)
    choices: dict[str, dict[str, int]] = field(default_factory=dict)

    @property
    def rate(self) -> float | None:
        return round(100 * self.responded / self.invited, 1) if self.invited else None


def _rows(session: Session, survey_id: int) -> list[tuple[SurveyResponse, SurveyInvitation]]:
    return [(r, i) for r, i in session.execute(
        select(SurveyResponse, SurveyInvitation)
        .join(SurveyInvitation, SurveyInvitation.id == SurveyResponse.invitation_id)
        .where(SurveyResponse.survey_id == survey_id, SurveyResponse.completed.is_(True))
        .order_by(SurveyResponse.submitted_at, SurveyResponse.id)
    )]


def _group(label: str, responses: Sequence[SurveyResponse]) -> Group:
    return Group(label, len(responses), nps_of(r.nps for r in responses if r.nps is not None).value,
                 csat_of(r.csat for r in responses if r.csat is not None).value)


def _trend(responses: Sequence[SurveyResponse], *, weeks: int = 12) -> list[TrendPoint]:
    """NPS and CSAT per week (Monday to Sunday, UTC) over the last `weeks` weeks with answers."""
    if not responses:
        return []
    by_week: dict[datetime, list[SurveyResponse]] = defaultdict(list)
    for r in responses:
        when = r.submitted_at or r.created_at
        monday = (when - timedelta(days=when.weekday())).replace(hour=0, minute=0, second=0, microsecond=0)
        by_week[monday].append(r)
    last = max(by_week)
    starts = [last - timedelta(weeks=i) for i in reversed(range(weeks))]
    first_answer = min(by_week)
    points = []
    for start in starts:
        if start < first_answer:
            continue
        group = by_week.get(start, [])
        g = _group("", group)
        points.append(TrendPoint(start, g.nps, g.csat, len(group)))
    return points


def _amount_bands(pairs: list[tuple[Decimal, SurveyResponse]]) -> list[tuple[str, list[SurveyResponse]]]:
    """Order amounts cut into quartiles of this survey's own orders (so the bands fit any currency)."""
    if len(pairs) < 4:
        return [("all", [r for _, r in pairs])] if pairs else []
    amounts = sorted(a for a, _ in pairs)
    cuts = [amounts[len(amounts) * q // 4] for q in (1, 2, 3)]
    bands: dict[int, list[SurveyResponse]] = defaultdict(list)
    for amount, r in pairs:
        bands[sum(amount >= c for c in cuts)].append(r)
    edges = [None, *cuts, None]
    out = []
    for i in sorted(bands):
        low, high = edges[i], edges[i + 1]
        label = f"< {high}" if low is None else (f"≥ {low}" if high is None else f"{low} – {high}")
        out.append((label, bands[i]))
    return out


def _by_order(rows: Sequence[tuple[SurveyResponse, SurveyInvitation]]) -> dict[str, list[Group]]:
    groups: dict[str, dict[str, list[SurveyResponse]]] = {"cause": defaultdict(list), "source": defaultdict(list),
                                                          "items": defaultdict(list)}
    amounts: dict[str, list[tuple[Decimal, SurveyResponse]]] = defaultdict(list)
    for response, invitation in rows:
        context = invitation.context or {}
        groups["cause"][str(context.get("kind") or "manual")].append(response)
        if context.get("source"):
            groups["source"][str(context["source"])].append(response)
        if "items" in context:
            n = int(context.get("items") or 0)
            groups["items"]["1" if n <= 1 else "2–3" if n <= 3 else "4+"].append(response)
        try:
            if context.get("amount") and context.get("currency"):
                amounts[str(context["currency"])].append((Decimal(str(context["amount"])), response))
        except InvalidOperation:
            pass
    out = {name: [_group(label, rs) for label, rs in sorted(found.items())] for name, found in groups.items() if found}
    for currency, pairs in sorted(amounts.items()):
        out[f"amount {currency}"] = [_group(label, rs) for label, rs in _amount_bands(pairs)]
    return out


def _by_segment(session: Session, responses: Sequence[SurveyResponse]) -> list[Group]:
    """Answers of the contacts each saved segment holds now (empty without the segments package)."""
    try:
        from campaigns.segments.compiler import iter_contact_ids
        from campaigns.segments.models import Segment
    except ImportError:
        return []
    by_contact: dict[int, list[SurveyResponse]] = defaultdict(list)
    for r in responses:
        by_contact[r.contact_id].append(r)
    if not by_contact:
        return []
    now = clock.now()
    out = []
    for segment in session.scalars(select(Segment).order_by(Segment.name).limit(50)):
        members: list[SurveyResponse] = []
        try:
            for batch in iter_contact_ids(session, segment.definition, now=now):
                for contact_id in batch:
                    members.extend(by_contact.get(contact_id, ()))
        except Exception:  # noqa: BLE001 - a definition the compiler no longer accepts is left out
            continue
        if members:
            out.append(_group(segment.name, members))
    return out


def survey_results(session: Session, *, survey: Survey, locale: str, text_limit: int = 200) -> Results:
    questions = parse_questions(survey.questions)
    rows = _rows(session, survey.id)  # type: ignore[arg-type]
    responses = [r for r, _ in rows]
    invited = session.scalar(select(func.count()).select_from(SurveyInvitation).where(
        SurveyInvitation.survey_id == survey.id, SurveyInvitation.sent_at.is_not(None))) or 0
    partial = session.scalar(select(func.count()).select_from(SurveyResponse).where(
        SurveyResponse.survey_id == survey.id, SurveyResponse.completed.is_(False))) or 0
    texts: list[dict[str, Any]] = []
    choices: dict[str, dict[str, int]] = {}
    text_questions = [q for q in questions if q.kind == QuestionKind.TEXT]
    for q in questions:
        if q.kind in (QuestionKind.SINGLE, QuestionKind.MULTIPLE):
            counts = {o.key: 0 for o in q.options}
            for r in responses:
                value = r.answers.get(q.key)
                for key in value if isinstance(value, list) else [value] if value else []:
                    if key in counts:
                        counts[key] += 1
            choices[q.key] = counts
    names = dict(session.execute(select(Contact.id, Contact.display_name).where(
        Contact.id.in_({r.contact_id for r in responses[-text_limit:]}))).all()) if responses else {}
    for r in reversed(responses):
        for q in text_questions:
            if r.answers.get(q.key):
                texts.append({"question": q.text.get(locale), "text": r.answers[q.key], "nps": r.nps, "csat": r.csat,
                              "at": r.submitted_at, "contact_id": r.contact_id,
                              "contact": names.get(r.contact_id, f"#{r.contact_id}")})
        if len(texts) >= text_limit:
            break
    return Results(
        survey=survey, questions=questions, invited=invited, responded=len(responses), partial=partial,
        nps=nps_of(r.nps for r in responses if r.nps is not None),
        csat=csat_of(r.csat for r in responses if r.csat is not None),
        trend=_trend(responses), by_order=_by_order(rows), by_segment=_by_segment(session, responses),
        texts=texts[:text_limit], choices=choices,
    )


def _cell(value: Any) -> str:
    text = "" if value is None else str(value)
    # A spreadsheet runs a cell starting with = + - @ as a formula: customers' text never does.
    return "'" + text if text.startswith(FORMULA_START) else text


def export_csv(session: Session, *, survey: Survey, locale: str) -> Iterator[str]:
    """One line per response (partial ones too, marked), a column per question; streamed."""
    questions = parse_questions(survey.questions)
    buffer = io.StringIO()
    writer = csv.writer(buffer)

    def flush() -> str:
        value = buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        return value

    writer.writerow(["response_id", "contact_id", "contact", "completed", "submitted_at", "updated_at", "locale",
                     "nps", "csat", "cause", "order_id", "amount", "currency", *[q.key for q in questions]])
    yield flush()
    stmt = (select(SurveyResponse, SurveyInvitation, Contact.display_name)
            .join(SurveyInvitation, SurveyInvitation.id == SurveyResponse.invitation_id)
            .join(Contact, Contact.id == SurveyResponse.contact_id)
            .where(SurveyResponse.survey_id == survey.id).order_by(SurveyResponse.id))
    for response, invitation, name in session.execute(stmt).yield_per(500):
        context = invitation.context or {}
        answers = response.answers or {}
        cells = []
        for q in questions:
            value = answers.get(q.key)
            cells.append(";".join(value) if isinstance(value, list) else value)
        writer.writerow([_cell(v) for v in [
            response.id, response.contact_id, name, "yes" if response.completed else "no",
            response.submitted_at.isoformat() if response.submitted_at else "", response.updated_at.isoformat(),
            response.locale, response.nps, response.csat, context.get("kind"), context.get("order_id"),
            context.get("amount"), context.get("currency"), *cells]])
        yield flush()


__all__ = ["Results", "Score", "csat_of", "export_csv", "nps_of", "survey_results"]
