"""Sending over SMTP with aiosmtplib: a few connections per batch, each reused message after message.

TLS is what the settings say, never less: "starttls" makes aiosmtplib require the STARTTLS
extension (it raises rather than carry on in plain text), "tls" is implicit TLS, and the default
SSL context checks certificates and host names. Replies map to the outbox's two outcomes: 4xx and
network trouble are transient (retried with backoff), 5xx is permanent (dead, with the server's
words).
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Callable, Sequence

import aiosmtplib

from hub.channel import OutboundMessage, PermanentSendError, SendError, SendResult, TransientSendError
from channels.email.settings import EmailSettings

log = logging.getLogger("hub.channels.email.smtp")

# A prepared message: envelope recipient, the exact bytes, and its Message-ID.
Prepared = tuple[str, bytes, str]


class SessionFailure(Exception):
    """The connection (not one message) failed: the messages not yet sent on it are transient."""

    def __init__(self, error: SendError) -> None:
        super().__init__(error.reason)
        self.error = error


def tls_context(settings: EmailSettings) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(settings.smtp_ca_file) if settings.smtp_ca_file else None)


def _reply(code: int, message: str) -> str:
    return f"{code} {' '.join(str(message).split())}"[:1000]


def classify(exc: BaseException) -> SendError:
    """An aiosmtplib error as the outbox's transient or permanent failure."""
    if isinstance(exc, SendError):
        return exc
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        refused = exc.recipients[0] if exc.recipients else None
        if refused is None:
            return TransientSendError("every recipient was refused")
        return classify(refused)
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        reply = _reply(exc.code, exc.message)
        if 500 <= exc.code < 600:
            return PermanentSendError(f"the SMTP server refused the message: {reply}")
        return TransientSendError(f"the SMTP server deferred the message: {reply}")
    if isinstance(exc, (aiosmtplib.SMTPServerDisconnected, aiosmtplib.SMTPConnectError,
                        aiosmtplib.SMTPTimeoutError, asyncio.TimeoutError, OSError)):
        return TransientSendError(f"SMTP connection problem: {type(exc).__name__}: {exc}")
    return TransientSendError(f"SMTP error: {type(exc).__name__}: {exc}")


class SmtpSender:
    """Delivers prepared messages over a handful of connections."""

    def __init__(self, settings: EmailSettings) -> None:
        self.settings = settings

    def _client(self) -> aiosmtplib.SMTP:
        s = self.settings
        return aiosmtplib.SMTP(
            hostname=s.smtp_host,
            port=s.effective_smtp_port,
            use_tls=s.smtp_security == "tls",
            start_tls=True if s.smtp_security == "starttls" else False,
            validate_certs=True,
            tls_context=tls_context(s) if s.smtp_security != "none" else None,
            username=s.smtp_username,
            password=s.smtp_password.get_secret_value() if s.smtp_password else None,
            timeout=s.smtp_timeout,
        )

    async def _open(self) -> aiosmtplib.SMTP:
        client = self._client()
        try:
            await client.connect()
        except aiosmtplib.SMTPAuthenticationError as exc:
            raise SessionFailure(TransientSendError(
                f"SMTP login as {self.settings.smtp_username!r} failed: {_reply(exc.code, exc.message)}")) from None
        except aiosmtplib.SMTPResponseException as exc:
            raise SessionFailure(TransientSendError(f"the SMTP server refused the session: {_reply(exc.code, exc.message)}")) from None
        except (aiosmtplib.SMTPException, OSError, asyncio.TimeoutError, ssl.SSLError) as exc:
            text = str(exc)
            if "STARTTLS" in text.upper():
                text = f"{text} (smtp_security is 'starttls', so the hub will not send in plain text)"
            raise SessionFailure(TransientSendError(
                f"cannot connect to {self.settings.smtp_host}:{self.settings.effective_smtp_port}: "
                f"{type(exc).__name__}: {text}")) from None
        return client

    async def deliver(self, prepared: Sequence[Prepared | SendError]) -> list[SendResult | BaseException]:
        """Send each prepared message; errors in `prepared` (bad content) pass through unchanged."""
        results: list[SendResult | BaseException | None] = [p if isinstance(p, BaseException) else None for p in prepared]
        todo = [i for i, p in enumerate(prepared) if not isinstance(p, BaseException)]
        lanes = max(1, min(self.settings.smtp_connections, len(todo)))
        groups = [todo[n::lanes] for n in range(lanes)]
        await asyncio.gather(*(self._lane(group, prepared, results) for group in groups if group))
        return [r if r is not None else TransientSendError("not attempted") for r in results]

    async def _lane(self, indexes: list[int], prepared: Sequence[Prepared | SendError],
                    results: list[SendResult | BaseException | None]) -> None:
        client: aiosmtplib.SMTP | None = None
        reconnects = 0
        position = 0
        try:
            while position < len(indexes):
                index = indexes[position]
                recipient, data, message_id = prepared[index]  # type: ignore[misc]
                try:
                    if client is None:
                        client = await self._open()
                    _, reply = await client.sendmail(self.settings.envelope_sender, [recipient], data)
                    results[index] = SendResult(provider_id=message_id, detail=str(reply)[:500] or None)
                    position += 1
                except SessionFailure as failure:
                    for rest in indexes[position:]:
                        results[rest] = failure.error
                    return
                except (aiosmtplib.SMTPServerDisconnected, aiosmtplib.SMTPTimeoutError, OSError, asyncio.TimeoutError) as exc:
                    # The connection dropped: this message is retried later; the rest get one fresh connection.
                    results[index] = classify(exc)
                    position += 1
                    await _close(client)
                    client = None
                    reconnects += 1
                    if reconnects > 1:
                        for rest in indexes[position:]:
                            results[rest] = TransientSendError(f"SMTP connection lost twice in one batch: {exc}")
                        return
                except aiosmtplib.SMTPResponseException as exc:
                    results[index] = classify(exc)
                    position += 1
                    if exc.code == 421:
                        # RFC 5321: 421 means the server is closing the session. The rest of the batch
                        # waits for the next pass with the server's own reason, not "not connected".
                        for rest in indexes[position:]:
                            results[rest] = classify(exc)
                        return
                except (aiosmtplib.SMTPException, ValueError) as exc:
                    results[index] = classify(exc) if not isinstance(exc, ValueError) else PermanentSendError(
                        f"the address cannot be sent to: {exc}")
                    position += 1
        finally:
            await _close(client, quit=True)


async def _close(client: aiosmtplib.SMTP | None, *, quit: bool = False) -> None:
    if client is None:
        return
    try:
        if quit and client.is_connected:
            await client.quit()
    except (aiosmtplib.SMTPException, OSError, asyncio.TimeoutError):
        pass
    finally:
        if client.is_connected:
            client.close()


def prepare_all(messages: Sequence[OutboundMessage], build: Callable[[OutboundMessage], Prepared]) -> list[Prepared | SendError]:
    """Build each message's bytes; a message that cannot be built fails alone and permanently."""
    out: list[Prepared | SendError] = []
    for message in messages:
        try:
            out.append(build(message))
        except SendError as exc:
            out.append(exc)
        except (ValueError, OSError) as exc:
            out.append(PermanentSendError(f"the message could not be built: {exc}"))
    return out

