"""One error format for every 4xx and 5xx: RFC 9457 problem details."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DataError
from starlette.exceptions import HTTPException as StarletteHTTPException

from hub.identities import InvalidIdentity
from hub.ingest import ContactNotFound
from hub.timeline import InvalidCursor

log = logging.getLogger("hub.api")
MEDIA_TYPE = "application/problem+json"

_TITLES = {
    400: "Bad request",
    401: "Authentication required",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    413: "Request body too large",
    415: "Unsupported media type",
    422: "Invalid input",
    429: "Too many requests",
    500: "Internal server error",
    503: "Service unavailable",
}


class Problem(Exception):
    """Raise from a route to answer with problem details."""

    def __init__(self, status: int, detail: str, *, slug: str | None = None, title: str | None = None,
                 headers: dict[str, str] | None = None, **extra: Any) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.slug = slug or _slug(status)
        self.title = title or _TITLES.get(status, "Error")
        self.headers = headers
        self.extra = extra


def _slug(status: int) -> str:
    return _TITLES.get(status, "error").lower().replace(" ", "-")


def problem_response(request: Request | None, status: int, detail: str, *, slug: str | None = None,
                     title: str | None = None, headers: dict[str, str] | None = None, **extra: Any) -> JSONResponse:
    body = {
        "type": f"/problems/{slug or _slug(status)}",
        "title": title or _TITLES.get(status, "Error"),
        "status": status,
        "detail": detail,
        **({"instance": request.url.path} if request is not None else {}),
        **extra,
    }
    return JSONResponse(body, status_code=status, media_type=MEDIA_TYPE, headers=headers)


def _validation_errors(exc: RequestValidationError) -> tuple[int, str, list[dict[str, Any]]]:
    errors = []
    status = 422
    for err in exc.errors():
        if err.get("type") == "json_invalid":
            status = 400
        loc = [str(p) for p in err.get("loc", ())]
        where = loc[0] if loc and loc[0] in {"body", "query", "path", "header", "cookie"} else "body"
        field = ".".join(loc[1:] if loc and loc[0] == where else loc)
        errors.append({"field": field, "in": where, "message": err.get("msg", ""), "type": err.get("type", "")})
    if status == 400:
        return 400, "The request body is not valid JSON.", errors
    summary = "; ".join(f"{e['field'] or e['in']}: {e['message']}" for e in errors[:5])
    return 422, f"The request has invalid fields: {summary}", errors


def http_problem(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    detail = exc.detail if isinstance(exc.detail, str) else _TITLES.get(exc.status_code, "Error")
    return problem_response(request, exc.status_code, detail, headers=getattr(exc, "headers", None))


def validation_problem(request: Request, exc: RequestValidationError) -> JSONResponse:
    status, detail, errors = _validation_errors(exc)
    return problem_response(request, status, detail, slug="invalid-json" if status == 400 else "validation",
                            errors=errors)


def crash_problem(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return problem_response(request, 500, "The hub hit an unexpected error; it is in the server log.")


def install(app: FastAPI) -> None:
    """Route every error through problem details (the workspace answers pages with HTML instead)."""

    @app.exception_handler(Problem)
    async def _problem(request: Request, exc: Problem) -> JSONResponse:
        return problem_response(request, exc.status, exc.detail, slug=exc.slug, title=exc.title,
                                headers=exc.headers, **exc.extra)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return http_problem(request, exc)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return validation_problem(request, exc)

    @app.exception_handler(InvalidIdentity)
    async def _identity(request: Request, exc: InvalidIdentity) -> JSONResponse:
        return problem_response(request, 422, str(exc), slug="invalid-identity")

    @app.exception_handler(ContactNotFound)
    async def _contact(request: Request, exc: ContactNotFound) -> JSONResponse:
        return problem_response(request, 404, str(exc))

    @app.exception_handler(InvalidCursor)
    async def _cursor(request: Request, exc: InvalidCursor) -> JSONResponse:
        return problem_response(request, 400, str(exc), slug="invalid-cursor")

    # A value the store cannot hold (an id past 64 bits, a number out of a column's range): the
    # request is wrong, not the hub. Found by the schemathesis fuzz (tests/fuzz/test_api_fuzz.py).
    @app.exception_handler(OverflowError)
    @app.exception_handler(DataError)
    async def _out_of_range(request: Request, exc: Exception) -> JSONResponse:
        log.warning("value out of range on %s %s: %s", request.method, request.url.path, type(exc).__name__)
        return problem_response(request, 422, "A value in the request is out of range for the store "
                                "(ids and numbers are at most 64-bit integers).", slug="out-of-range")

    @app.exception_handler(Exception)
    async def _crash(request: Request, exc: Exception) -> JSONResponse:
        return crash_problem(request, exc)
