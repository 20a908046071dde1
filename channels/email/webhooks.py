"""Email routes under /channels/email: the mail server's pipe (bearer token), files for signed-in
users, the agents' compose API, and the suppression list."""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Request, UploadFile
from fastapi.responses import FileResponse, JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from hub.channel import SignatureError
from channels.email import suppression
from channels.email.compose import EmailDraft, EmailRefused, compose_email, store_upload
from channels.email.models import EmailAttachment, EmailRawMessage, SuppressionReason
from hub.api.deps import SessionDep, require
from hub.api.problems import Problem
from hub.auth import Principal
from hub.identities import InvalidIdentity

if TYPE_CHECKING:
    from channels.email.channel import EmailChannel

log = logging.getLogger("hub.channels.email")

# Types a browser may show inline-safely are still sent as downloads; anything else is opaque bytes.
_SERVED_TYPES = {"image/png", "image/jpeg", "image/gif", "image/webp", "application/pdf", "text/plain", "text/csv",
                 "text/calendar", "message/rfc822", "application/zip"}
_FILE_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; sandbox",
    "Cache-Control": "private, no-store",
}

Reader = Annotated[Principal, Depends(require("timeline:read"))]
Sender = Annotated[Principal, Depends(require("timeline:write"))]
ContactReader = Annotated[Principal, Depends(require("contacts:read"))]
ContactWriter = Annotated[Principal, Depends(require("contacts:write"))]


def content_disposition(filename: str) -> str:
    """RFC 6266: an ASCII fallback name and the real one in RFC 5987 encoding; always a download."""
    fallback = re.sub(r'[^A-Za-z0-9._ -]', "_", filename)[:150] or "download"
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"


class SuppressIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    address: str = Field(max_length=320)
    detail: str | None = Field(default=None, max_length=1000)


def _suppression_out(row: Any) -> dict[str, Any]:
    return {"address": row.address, "reason": row.reason, "source": row.source, "detail": row.detail,
            "suppressed_at": row.created_at.isoformat()}


def build_router(channel: EmailChannel) -> APIRouter:
    router = APIRouter()

    @router.post("/inbound", summary="A raw RFC 822 message from a mail server (Authorization: Bearer <inbound_token>)")
    async def inbound(request: Request) -> JSONResponse:
        try:
            channel.verify(url=str(request.url), headers=request.headers, body=b"")
        except SignatureError as exc:
            raise Problem(403, f"Refused: {exc}.") from None
        limit = channel.settings.max_raw_bytes
        with channel.files.spool() as (path, handle):
            size = 0
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise Problem(413, f"The message is larger than {limit} bytes, the most this hub keeps.")
                handle.write(chunk)
            handle.flush()
            if size == 0:
                raise Problem(400, "The body is empty; send the raw RFC 822 message as the request body.")
            # Not strict: bytes no parser can read are kept raw with the reason, never refused and lost.
            received = await run_in_threadpool(channel.receive_file, Path(path), origin={"via": "http"})
        body = {"event_id": received.event_id, "created": received.created, "kind": received.kind,
                "skipped": received.skipped, "raw_id": received.raw_id}
        return JSONResponse(body, status_code=201 if received.created else 200)

    @router.get("/attachments/{attachment_id}", summary="Download a stored attachment")
    def attachment(attachment_id: int, session: SessionDep, principal: Reader) -> FileResponse:
        row = session.get(EmailAttachment, attachment_id)
        if row is None or not channel.files.attachments.exists(row.sha256):
            raise Problem(404, f"There is no attachment {attachment_id}.")
        media = row.content_type if row.content_type in _SERVED_TYPES else "application/octet-stream"
        return FileResponse(channel.files.attachments.path(row.sha256), media_type=media,
                            headers={**_FILE_HEADERS, "Content-Disposition": content_disposition(row.filename)})

    @router.get("/raw/{raw_id}", summary="Download a message kept raw (too large or malformed)")
    def raw_message(raw_id: int, session: SessionDep, principal: Reader) -> FileResponse:
        row = session.get(EmailRawMessage, raw_id)
        if row is None or not channel.files.raw.exists(row.sha256):
            raise Problem(404, f"There is no raw message {raw_id}.")
        return FileResponse(channel.files.raw.path(row.sha256), media_type="application/octet-stream",
                            headers={**_FILE_HEADERS, "Content-Disposition": content_disposition(f"message-{raw_id}.eml")})

    @router.post("/attachments", status_code=201, summary="Upload a file to attach to an email")
    async def upload(file: UploadFile, session: SessionDep, principal: Sender) -> dict[str, Any]:
        data = await file.read(channel.settings.max_attachment_bytes + 1)
        try:
            row = await run_in_threadpool(store_upload, session, channel=channel, data=data, filename=file.filename,
                                          content_type=file.content_type, uploaded_by=principal.user_id)
        except EmailRefused as exc:
            raise Problem(exc.status, str(exc), slug=exc.slug) from None
        session.commit()
        return {"id": row.id, "filename": row.filename, "content_type": row.content_type, "size": row.size,
                "sha256": row.sha256}

    @router.post("/messages", status_code=202, summary="Queue an email from an agent (a reply keeps the thread)")
    def send_message(draft: EmailDraft, session: SessionDep, principal: Sender) -> dict[str, Any]:
        try:
            delivery = compose_email(session, draft=draft, actor=principal)
        except EmailRefused as exc:
            raise Problem(exc.status, str(exc), slug=exc.slug) from None
        session.commit()
        return {"delivery_id": delivery.id, "event_id": delivery.event_id, "status": delivery.status,
                "to": delivery.address, "thread_key": (delivery.content or {}).get("thread_key")}

    @router.get("/suppressions", summary="Suppressed addresses of a contact, with reason and time")
    def list_suppressions(contact_id: int, session: SessionDep, principal: ContactReader) -> dict[str, Any]:
        rows = suppression.suppressions_for_contact(session, contact_id=contact_id)
        return {"items": [_suppression_out(r) for r in rows]}

    @router.post("/suppressions", status_code=201, summary="Suppress an address by hand")
    def add_suppression(body: SuppressIn, session: SessionDep, principal: ContactWriter) -> dict[str, Any]:
        try:
            row = suppression.suppress(session, address=body.address, reason=SuppressionReason.MANUAL,
                                       source=f"by {principal.actor}", detail=body.detail, actor=principal)
        except InvalidIdentity as exc:
            raise Problem(422, str(exc), slug="invalid-identity") from None
        session.commit()
        return _suppression_out(row)

    @router.delete("/suppressions/{address}", status_code=204, summary="Take an address off the suppression list")
    def remove_suppression(address: str, session: SessionDep, principal: ContactWriter) -> None:
        try:
            removed = suppression.unsuppress(session, address=address, actor=principal)
        except InvalidIdentity as exc:
            raise Problem(422, str(exc), slug="invalid-identity") from None
        if not removed:
            raise Problem(404, f"{address} is not suppressed.")
        session.commit()

    return router

