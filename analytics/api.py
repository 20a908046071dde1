"""REST twins of the dashboards: the RFM grid, and any dashboard table as JSON (the CSV's rows)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field

from analytics import rfm
from analytics.compute import latest_run
from analytics.dashboards import DAYS, MONTHS, PAGES, Params, Speaker, build
from hub import clock
from hub.api.deps import HubDep, SessionDep, require
from hub.api.problems import Problem
from hub.auth import Principal

router = APIRouter(tags=["analytics"])
ReadAnalytics = Annotated[Principal, Depends(require("analytics:read"))]


class CellPublic(BaseModel):
    cell: str = Field(description=", ".join(rfm.CELLS))
    customers: int
    share: float = Field(description="Of all scored customers, 0–1")
    revenue: Decimal
    revenue_share: float
    predicted_value: Decimal | None = Field(description="Sum of the cell's predicted values (null before the model ran)")


class GridPublic(BaseModel):
    kind: str
    computed_at: datetime | None = Field(description="When the scheduler last recomputed the scores")
    customers: int
    revenue: Decimal
    cells: list[CellPublic]
    squares: list[list[int]] = Field(description="Customers per square: squares[5 − R][FM − 1]")


class TablePublic(BaseModel):
    page: str
    table: str
    columns: list[str]
    rows: list[list[Any]]


@router.get("/analytics/rfm", summary="The RFM grid: customers and revenue per cell", response_model=GridPublic)
def rfm_grid(session: SessionDep, _: ReadAnalytics,
             kind: Annotated[Literal["contact", "account"], Query()] = "contact") -> GridPublic:
    grid = rfm.grid(session, kind=kind)
    run = latest_run(session, "scores")
    return GridPublic(kind=kind, computed_at=run.started_at if run else None, customers=grid.total, revenue=grid.revenue,
                      cells=[CellPublic(**vars(c)) for c in grid.cells],
                      squares=[[grid.squares.get((r, fm), 0) for fm in range(1, 6)] for r in range(5, 0, -1)])


@router.get("/analytics/{page}/{table}", summary="One dashboard table as JSON (the same rows as its CSV export)",
            response_model=TablePublic, responses={404: {"description": "No such dashboard or table"},
                                                   422: {"description": "A parameter out of range"}})
def table(page: str, table: str, hub: HubDep, session: SessionDep, _: ReadAnalytics,
          kind: Annotated[Literal["contact", "account"], Query()] = "contact",
          days: Annotated[int | None, Query(description=f"Period ending now: one of {DAYS}")] = None,
          months: Annotated[int | None, Query(description=f"Months shown: one of {MONTHS}")] = None,
          segment_id: Annotated[int | None, Query(ge=1)] = None) -> TablePublic:
    if days is not None and days not in DAYS:
        raise Problem(422, f"days must be one of {', '.join(map(str, DAYS))}")
    if months is not None and months not in MONTHS:
        raise Problem(422, f"months must be one of {', '.join(map(str, MONTHS))}")
    if page not in PAGES:
        raise Problem(404, f"no dashboard {page!r}; there are {', '.join(PAGES)}")
    options = hub.extensions["analytics"].settings.options()  # type: ignore[attr-defined]
    params = Params(kind=kind, days=days or 365, months=months or 12, segment_id=segment_id)
    try:
        board = build(page, session, params=params, options=options, now=clock.now(), speaker=Speaker(str, "en"))
    except LookupError:
        raise Problem(404, f"no segment {segment_id}") from None
    found = board.table(table)
    if found is None:
        raise Problem(404, f"no table {table!r} on {page}; there are {', '.join(t.name for t in board.tables)}")
    return TablePublic(page=page, table=table, columns=[c.key for c in found.columns],
                       rows=[[_plain(v) for v in row] for row in found.rows])


def _plain(value: Any) -> Any:
    return str(value) if isinstance(value, Decimal) else value
