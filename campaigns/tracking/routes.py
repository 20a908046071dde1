"""Public tracking routes: `GET /t/o/{token}.gif` (the open pixel) and `GET /t/c/{token}` (a click
redirect). Both never fail the customer: if recording fails, the error is logged and the pixel is
still served, the redirect still made. A forged or altered token gets 404 and goes nowhere.
"""

from __future__ import annotations

import base64
import logging
from urllib.parse import quote

from fastapi import APIRouter, Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from campaigns.tracking import service
from campaigns.tracking.links import read_click, read_open
from hub.runtime import Hub
from hub.signing import BadLink
from hub.web.public import public_locale, render_public

log = logging.getLogger("campaigns.tracking")
router = APIRouter(include_in_schema=False)

# The smallest transparent GIF (1×1).
PIXEL = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")
NO_STORE = {"cache-control": "no-store, no-cache, must-revalidate, private", "pragma": "no-cache",
            "referrer-policy": "no-referrer", "x-robots-tag": "noindex, nofollow"}
# Characters left as they are when a signed URL goes into the Location header (the rest, such as
# non-ASCII letters, are percent-encoded, which names the same resource).
URL_SAFE = ":/?#[]@!$&'()*+,;=%~-._"


def _hub(request: Request) -> Hub:
    return request.app.state.hub


@router.get("/t/o/{token}.gif")
def open_pixel(request: Request, token: str) -> Response:
    try:
        key = read_open(_hub(request).settings, token)
    except BadLink:
        return Response(PIXEL, status_code=404, media_type="image/gif", headers=NO_STORE)
    try:
        service.track_open(_hub(request), key)
    except Exception:  # the reader's mail client must still get its image
        log.exception("could not record an open")
    return Response(PIXEL, media_type="image/gif", headers=NO_STORE)


@router.get("/t/c/{token}", response_model=None)
def click(request: Request, token: str) -> Response | HTMLResponse:
    try:
        target = read_click(_hub(request).settings, token)
    except BadLink:
        return render_public(request, "public/unsubscribe/invalid.html", locale=public_locale(request), status=404)
    try:
        service.track_click(_hub(request), target.delivery_key, target.url)
    except Exception:  # the customer still goes where the link said
        log.exception("could not record a click")
    return RedirectResponse(quote(target.url, safe=URL_SAFE), status_code=302, headers=NO_STORE)
