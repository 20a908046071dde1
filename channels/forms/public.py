"""The visitor's side, mounted at /channels/forms/: the hosted page, the plain POST that the hosted page
and the embed snippet use (works without JavaScript), the JSON endpoint the inline script uses, and a
fresh render stamp for that script. Forms are addressed by their random key, never by id.

CORS is answered only for a form's allow-listed origins (preflight included); any other origin gets
no CORS headers at all, and its posts are refused before anything is read.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from starlette.concurrency import run_in_threadpool
from starlette.responses import JSONResponse, RedirectResponse, Response

from hub.api.problems import problem_response
from hub.web import i18n
from hub.web.csrf import trusted_origins
from hub.web.i18n import N_
from hub.web.public import public_locale, render_public
from hub.web.security import PAGE_CSP

from channels.forms import spam
from channels.forms.definitions import origin_of, parse_fields, redirect_allowed
from channels.forms.models import Form, FormSubmission
from channels.forms.service import FormNotFound, InvalidAnswers, clean_client_id, form_by_key, submit

if TYPE_CHECKING:
    from channels.forms.channel import FormsChannel

PREFIX = "/channels/forms"
# Names the hub reads besides the form's own fields (a form field may not start with "_").
CLIENT_ID, SOURCE, LANG, REDIRECT = "_client_id", "_source", "_lang", "_redirect"
LIMITED = N_("Too many submissions from your address. Try again later.")
NEEDS_CORRECTING = N_("Some answers need correcting.")
THANKS = N_("Thank you! We have received your message.")


def form_url(base: str, key: str) -> str:
    return f"{base.rstrip('/')}{PREFIX}/f/{key}"


@dataclass(frozen=True)
class Handled:
    status: str  # accepted | replay | spam | invalid | limited | refused
    errors: dict[str, str] | None = None
    retry_after: timedelta | None = None
    submission_id: int | None = None


def _locale(request: Request, raw: dict[str, Any], form: Form | None = None) -> str:
    """The form's own language when it has one (its labels are written in it, so the button and the
    messages speak it too), else the language the page was shown in, else the visitor's."""
    if form is not None and form.locale in i18n.LOCALES:
        return form.locale  # type: ignore[return-value]
    asked = raw.get(LANG)
    if isinstance(asked, str) and asked in i18n.LOCALES:
        return asked
    return public_locale(request)


def _one_language(form: Form) -> dict[str, Any]:
    """A form written in one language offers no other: the switcher would change only the button."""
    return {"languages": {form.locale: i18n.LANGUAGE_NAMES[form.locale]}} if form.locale in i18n.LOCALES else {}


def _cors(request: Request, form: Form) -> dict[str, str]:
    """CORS headers for an allow-listed origin; nothing at all for any other."""
    origin = (request.headers.get("origin") or "").rstrip("/").lower()
    if origin and origin in form.allowed_origins:
        return {"access-control-allow-origin": origin, "vary": "Origin"}
    return {"vary": "Origin"}


def _origin_refused(request: Request, form: Form) -> bool:
    """A browser post from a site that is neither this hub nor one the form allows."""
    origin = request.headers.get("origin")
    if not origin or origin == "null":
        return False  # no Origin (a server) or an opaque one (a sandboxed page): the stamp still applies
    origin = origin.rstrip("/").lower()
    return origin not in form.allowed_origins and origin not in trusted_origins(request)


def _source_url(request: Request, raw: dict[str, Any], key: str) -> str | None:
    """The page the form was on: what the script or page says, else the Referer."""
    for candidate in (raw.get(SOURCE), request.headers.get("referer")):
        if isinstance(candidate, str) and len(candidate) <= 2000 and origin_of(candidate):
            return candidate
    return None


def _form_data(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    data: dict[str, Any] = {}
    for name, value in pairs:
        if not isinstance(value, str):
            continue  # an uploaded file: forms take none
        if name in data:
            data[name] = [*data[name], value] if isinstance(data[name], list) else [data[name], value]
        else:
            data[name] = value
    return data


def build_router(channel: FormsChannel) -> APIRouter:
    router = APIRouter()
    hub = channel.hub
    settings = channel.settings

    def load(key: str) -> Form:
        with hub.session(read_only=True) as session:
            form = form_by_key(session, key)
            session.expunge(form)
            return form

    def handle(request: Request, form: Form, raw: dict[str, Any], locale: str) -> Handled:
        """Rate limit, spam checks, then the submission itself: blocking database work."""
        address = request.client.host if request.client else ""
        with hub.session() as session, session.begin():
            wait = spam.rate_limited(session, address=address, limit=settings.rate_limit,
                                     window=timedelta(seconds=settings.rate_window_seconds))
        if wait is not None:
            return Handled("limited", retry_after=wait)
        verdict = spam.judge(hub.settings, form_key=form.key, raw=raw, min_fill_seconds=settings.min_fill_seconds,
                             max_age_seconds=settings.max_form_age_hours * 3600)
        if verdict.spam:
            return Handled("spam")
        client_id = clean_client_id(raw.get(CLIENT_ID))
        try:
            with hub.session() as session, session.begin():
                outcome = submit(session, form=session.get(Form, form.id), raw=raw, region=hub.settings.default_region,
                                 locale=locale, source_url=_source_url(request, raw, form.key), address=address,
                                 user_agent=request.headers.get("user-agent"), client_id=client_id)
                submission_id = outcome.submission.id
                replay = outcome.replay
        except InvalidAnswers as exc:
            return Handled("invalid", errors=exc.errors)
        except IntegrityError:  # the same client id committed by a concurrent request
            with hub.session(read_only=True) as session:
                submission_id = session.scalars(select(FormSubmission.id).where(
                    FormSubmission.form_id == form.id, FormSubmission.client_id == client_id)).first()
            if submission_id is None:
                raise
            replay = True
        return Handled("replay" if replay else "accepted", submission_id=submission_id)

    def next_url(request: Request, form: Form, raw: dict[str, Any], locale: str) -> str:
        """Where the visitor goes after submitting: an allow-listed page, or the thank-you page."""
        asked = raw.get(REDIRECT)
        if isinstance(asked, str) and redirect_allowed(asked, form.allowed_origins):
            return asked
        if redirect_allowed(form.redirect_url, form.allowed_origins):
            return form.redirect_url  # type: ignore[return-value]
        return f"{PREFIX}/f/{form.key}/thanks?{urlencode({'lang': locale})}"

    def page(request: Request, form: Form, *, locale: str, values: dict[str, Any] | None = None,
             errors: dict[str, str] | None = None, status: int = 200, client_id: str | None = None,
             token: str | None = None) -> Response:
        # Redirects after the post must be allowed by the page's own form-action.
        targets = " ".join(form.allowed_origins)
        csp = PAGE_CSP.replace("form-action 'self'", f"form-action 'self' {targets}".strip())
        raw_values = values or {}
        return render_public(
            request, "public/forms/form.html", locale=locale, status=status, headers={"content-security-policy": csp},
            form=form, fields=parse_fields(form.fields), values=raw_values, errors=errors or {},
            action=f"{PREFIX}/f/{form.key}", token=token or spam.render_token(hub.settings, form.key),
            client_id=client_id or clean_client_id(None), source=raw_values.get(SOURCE) or "",
            redirect=raw_values.get(REDIRECT) or "", honeypot=spam.HONEYPOT, **_one_language(form),
        )

    def missing(request: Request) -> Response:
        return render_public(request, "public/forms/missing.html", locale=public_locale(request), status=404)

    @router.get("/f/{key}", summary="The hosted page of a form")
    async def hosted(request: Request, key: str) -> Response:
        try:
            form = await run_in_threadpool(load, key)
        except FormNotFound:
            return missing(request)
        # The page sends no Referer (its URL is public anyway): it names itself as the source.
        source = str(request.url.remove_query_params("lang"))
        return page(request, form, locale=_locale(request, {}, form), values={SOURCE: source})

    @router.post("/f/{key}", summary="A submission from the hosted page or the embed snippet (no JavaScript)")
    async def post_form(request: Request, key: str) -> Response:
        try:
            form = await run_in_threadpool(load, key)
        except FormNotFound:
            return missing(request)
        raw = _form_data(list((await request.form()).multi_items()))
        locale = _locale(request, raw, form)
        if _origin_refused(request, form):
            return render_public(request, "public/forms/refused.html", locale=locale, status=403)
        result = await run_in_threadpool(handle, request, form, raw, locale)
        if result.status == "limited":
            seconds = int(result.retry_after.total_seconds()) if result.retry_after else 60
            return render_public(request, "public/forms/limited.html", locale=locale, status=429,
                                 headers={"retry-after": str(seconds)}, minutes=max(1, -(-seconds // 60)))
        if result.status == "invalid":
            # Keep the first render's stamp: a person correcting a typo quickly is still a person.
            kept = raw.get(spam.TOKEN) if isinstance(raw.get(spam.TOKEN), str) else None
            # The corrected post comes from the hub's page (which sends no Referer): carry the original source.
            raw[SOURCE] = _source_url(request, raw, form.key) or ""
            return page(request, form, locale=locale, values=raw, errors=result.errors, status=422,
                        client_id=clean_client_id(raw.get(CLIENT_ID)), token=kept)
        return RedirectResponse(next_url(request, form, raw, locale), status_code=303)

    @router.get("/f/{key}/thanks", summary="The thank-you page")
    async def thanks(request: Request, key: str) -> Response:
        try:
            form = await run_in_threadpool(load, key)
        except FormNotFound:
            return missing(request)
        return render_public(request, "public/forms/thanks.html", locale=_locale(request, {}, form), form=form,
                             **_one_language(form))

    def problem(request: Request, form: Form | None, status: int, detail: str, *,
                headers: dict[str, str] | None = None, **extra: Any) -> JSONResponse:
        all_headers = {**(_cors(request, form) if form is not None else {}), **(headers or {})}
        return problem_response(request, status, detail, headers=all_headers, **extra)

    @router.options("/f/{key}/json", include_in_schema=False)
    @router.options("/f/{key}/token", include_in_schema=False)
    async def preflight(request: Request, key: str) -> Response:
        try:
            form = await run_in_threadpool(load, key)
        except FormNotFound:
            return Response(status_code=404)
        headers = _cors(request, form)
        if "access-control-allow-origin" not in headers:
            return Response(status_code=403, headers=headers)
        headers.update({"access-control-allow-methods": "GET, POST", "access-control-allow-headers": "Content-Type",
                        "access-control-max-age": "600"})
        return Response(status_code=204, headers=headers)

    @router.get("/f/{key}/token", summary="A fresh render stamp for the inline script")
    async def token(request: Request, key: str) -> Response:
        try:
            form = await run_in_threadpool(load, key)
        except FormNotFound:
            return problem(request, None, 404, "There is no such form.")
        return JSONResponse({"token": spam.render_token(hub.settings, form.key)},
                            headers={**_cors(request, form), "cache-control": "no-store"})

    @router.post("/f/{key}/json", status_code=201, summary="A submission as JSON (the inline script)")
    async def post_json(request: Request, key: str) -> Response:
        try:
            form = await run_in_threadpool(load, key)
        except FormNotFound:
            return problem(request, None, 404, "There is no such form.")
        if _origin_refused(request, form):
            return problem(request, form, 403, "This site may not submit this form.")
        if not request.headers.get("content-type", "").split(";")[0].strip().lower() == "application/json":
            return problem(request, form, 415, "Send the submission as application/json.")
        try:
            raw = json.loads(await request.body())
        except ValueError:
            return problem(request, form, 400, "The request body is not valid JSON.")
        if not isinstance(raw, dict):
            return problem(request, form, 400, "The request body must be a JSON object of field names and values.")
        locale = _locale(request, raw, form)
        translate = i18n.package_translations(locale, "forms").gettext
        result = await run_in_threadpool(handle, request, form, raw, locale)
        if result.status == "limited":
            seconds = int(result.retry_after.total_seconds()) if result.retry_after else 60
            return problem(request, form, 429, translate(LIMITED),
                           headers={"retry-after": str(seconds)})
        if result.status == "invalid":
            errors = [{"field": name, "in": "body", "message": translate(message), "type": "invalid"}
                      for name, message in (result.errors or {}).items()]
            response = problem(request, form, 422, translate(NEEDS_CORRECTING), errors=errors)
            response.headers["content-language"] = locale
            return response
        target = next_url(request, form, raw, locale)
        body = {
            "status": "accepted",
            "message": form.thank_you or translate(THANKS),
            "redirect": None if target.startswith(PREFIX) else target,
        }
        return JSONResponse(body, status_code=200 if result.status == "replay" else 201,
                            headers={**_cors(request, form), "content-language": locale})

    return router
