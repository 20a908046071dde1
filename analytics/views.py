"""The dashboards: RFM (the overview at /analytics), customer value, acquisition, retention, growth,
satisfaction, channels and team; every table as CSV at /analytics/<page>/<table>.csv; a cell of the
RFM grid becomes a segment with one POST."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from sqlalchemy import func, select
from starlette.responses import FileResponse, Response, StreamingResponse

from analytics import compute, rfm
from analytics.dashboards import DAYS, MONTHS, PAGE_TITLES, PAGES, Board, Params, Speaker, build
from analytics.tables import csv_lines
from campaigns.segments.models import Segment
from campaigns.segments.service import create_segment
from hub import clock
from hub.web.i18n import N_
from hub.web.pages import Agent, PageError, get_hub, redirect, render, require

router = APIRouter()
Reader = Annotated[Agent, Depends(require("analytics:read"))]
SegmentWriter = Annotated[Agent, Depends(require("campaigns:write"))]
Kind = Annotated[Literal["contact", "account"], Query(description="contact or account")]
BAD_DAYS = N_("Choose a period from the list.")
NO_PAGE = N_("There is no such dashboard.")
NO_TABLE = N_("There is no such table on this dashboard.")
NO_SEGMENT = N_("There is no such segment.")


def _options(request: Request) -> Any:
    return get_hub(request).extensions["analytics"].settings.options()


def _params(kind: str, days: int | None, months: int | None, segment_id: int | None) -> Params:
    if days is not None and days not in DAYS or months is not None and months not in MONTHS:
        raise PageError(422, BAD_DAYS)
    return Params(kind=kind, days=days or 365, months=months or 12, segment_id=segment_id)


def _board(request: Request, agent: Agent, page: str, params: Params) -> Board:
    if page not in PAGES:
        raise PageError(404, NO_PAGE)
    hub = get_hub(request)
    speaker = Speaker(agent.package_gettext("analytics"), agent.locale)
    with hub.session(read_only=True) as db:
        try:
            board = build(page, db, params=params, options=_options(request), now=clock.now(), speaker=speaker)
        except LookupError:
            raise PageError(404, NO_SEGMENT) from None
        if page == "satisfaction":
            board.values["segments"] = list(db.execute(select(Segment.id, Segment.name).order_by(Segment.name)))
    return board


def _page(request: Request, agent: Agent, page: str, params: Params) -> Response:
    board = _board(request, agent, page, params)
    return render(request, agent, f"analytics/{page}.html", board=board, params=params, page=page, pages=PAGES,
                  page_titles=PAGE_TITLES, days_choices=DAYS, months_choices=MONTHS, cell_labels=rfm.CELL_LABELS,
                  query=_query(params))


def _query(params: Params) -> str:
    parts = [f"kind={params.kind}", f"days={params.days}", f"months={params.months}"]
    if params.segment_id is not None:
        parts.append(f"segment_id={params.segment_id}")
    return "&".join(parts)


@router.get("/analytics")
def overview(request: Request, agent: Reader, kind: Kind = "contact") -> Response:
    return _page(request, agent, "rfm", _params(kind, None, None, None))


@router.get("/analytics/{page}")
def dashboard(request: Request, page: str, agent: Reader, kind: Kind = "contact",
              days: Annotated[int | None, Query(ge=1, le=3650)] = None,
              months: Annotated[int | None, Query(ge=1, le=120)] = None,
              segment_id: Annotated[int | None, Query(ge=1)] = None) -> Response:
    return _page(request, agent, page, _params(kind, days, months, segment_id))


@router.get("/analytics/{page}/{table}.csv")
def export(request: Request, page: str, table: str, agent: Reader, kind: Kind = "contact",
           days: Annotated[int | None, Query(ge=1, le=3650)] = None,
           months: Annotated[int | None, Query(ge=1, le=120)] = None,
           segment_id: Annotated[int | None, Query(ge=1)] = None) -> Response:
    """One table of a dashboard as CSV: the rows the page shows, unformatted."""
    board = _board(request, agent, page, _params(kind, days, months, segment_id))
    found = board.table(table)
    if found is None:
        raise PageError(404, NO_TABLE)
    name = f"analytics-{page}-{table}-{clock.now():%Y%m%d}.csv"
    return StreamingResponse(csv_lines(found), media_type="text/csv; charset=utf-8",
                             headers={"content-disposition": f'attachment; filename="{name}"',
                                      "cache-control": "no-store"})


@router.post("/analytics/rfm/{cell}/segment")
def cell_segment(request: Request, cell: str, agent: SegmentWriter) -> Response:
    """The contacts of one RFM cell as a saved segment (the existing one when it is already saved)."""
    if cell not in rfm.CELLS:
        raise PageError(404, N_("There is no such RFM cell."))
    definition = {"type": "and", "conditions": [{"type": "rfm", "measure": "cell", "op": "eq", "value": cell}]}
    label = agent.package_gettext("analytics")(rfm.CELL_LABELS[cell])
    hub = get_hub(request)
    with hub.session() as db:
        for segment in db.scalars(select(Segment).where(Segment.name.like("RFM:%"))):
            if segment.definition == definition:
                return redirect(request, f"/segments/{segment.id}")
        name, n = f"RFM: {label}", 1
        while db.scalar(select(Segment.id).where(func.lower(Segment.name) == name.lower())) is not None:
            n += 1
            name = f"RFM: {label} ({n})"
        segment = create_segment(db, actor=agent.principal, name=name, definition=definition,
                                 description=agent.package_gettext("analytics")(rfm.CELL_ADVICE[cell]))
        db.commit()
        return redirect(request, f"/segments/{segment.id}")


@router.post("/analytics/recompute")
def recompute(request: Request, agent: Reader) -> Response:
    """Run the scheduler's recompute now (it is idempotent), then show the fresh grid."""
    compute.run(get_hub(request), options=_options(request))
    return redirect(request, "/analytics")


STYLESHEET = Path(__file__).resolve().parent / "static" / "analytics.css"


@router.get("/analytics.css", include_in_schema=False)
def stylesheet() -> Response:
    return FileResponse(STYLESHEET, media_type="text/css", headers={"cache-control": "public, max-age=3600"})
