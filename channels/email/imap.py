"""Polling IMAP mailboxes (stdlib imaplib) so that nothing is read twice or missed.

Per mailbox the hub stores UIDVALIDITY and the last UID it recorded. Each message is fetched, then
recorded in one transaction that also advances the stored UID: a crash between the fetch and the
commit leaves the UID where it was, the next poll fetches the message again, and the (channel,
Message-ID) uniqueness of timeline events makes that second pass a no-op. A changed UIDVALIDITY
(the mailbox was recreated) starts the mailbox over from UID 1, with the same protection against
duplicates. The poller only reads (EXAMINE, BODY.PEEK): it never deletes or flags mail, so a
message the hub refuses to download is still on the server.
"""

from __future__ import annotations

import imaplib
import logging
import re
import ssl
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import select

from channels.email.inbound import receive, receive_headers
from channels.email.models import EmailMailboxState, RawReason
from channels.email.settings import ImapMailbox
from hub import clock
from hub.db import insert_ignore

if TYPE_CHECKING:
    from channels.email.channel import EmailChannel

log = logging.getLogger("hub.channels.email.imap")

CHUNK = 1024 * 1024
# A message that fails to ingest this many polls in a row is passed over with a headers-only event
# (it stays on the server), so one poison message cannot stop a mailbox for good.
MAX_ATTEMPTS = 5
_SIZE = re.compile(rb"UID (\d+) RFC822\.SIZE (\d+)|RFC822\.SIZE (\d+) UID (\d+)")


class ImapError(RuntimeError):
    """A mailbox that cannot be polled now (connection, TLS, login, a missing folder)."""


@dataclass
class PollResult:
    mailbox: str
    fetched: int = 0
    created: int = 0
    skipped: int = 0
    uidvalidity_reset: bool = False
    error: str | None = None


def encode_folder(name: str) -> str:
    """A folder name as IMAP wants it: modified UTF-7 (RFC 3501 §5.1.3), quoted."""
    out, pending = [], []

    def flush() -> None:
        if pending:
            import base64

            raw = "".join(pending).encode("utf-16-be")
            out.append("&" + base64.b64encode(raw).decode().rstrip("=").replace("/", ",") + "-")
            pending.clear()

    for char in name:
        if 0x20 <= ord(char) <= 0x7E:
            flush()
            out.append("&-" if char == "&" else char)
        else:
            pending.append(char)
    flush()
    encoded = "".join(out)
    return '"' + encoded.replace("\\", "\\\\").replace('"', '\\"') + '"'


def connect(mailbox: ImapMailbox) -> imaplib.IMAP4:
    """A logged-in connection; TLS as configured, with certificates checked and no plain fallback."""
    context = ssl.create_default_context(cafile=str(mailbox.ca_file) if mailbox.ca_file else None)
    try:
        if mailbox.security == "tls":
            conn: imaplib.IMAP4 = imaplib.IMAP4_SSL(mailbox.host, mailbox.effective_port, ssl_context=context,
                                                    timeout=mailbox.timeout)
        else:
            conn = imaplib.IMAP4(mailbox.host, mailbox.effective_port, timeout=mailbox.timeout)
            if mailbox.security == "starttls":
                try:
                    conn.starttls(ssl_context=context)
                except imaplib.IMAP4.error as exc:
                    conn.shutdown()
                    raise ImapError(f"{mailbox.key}: STARTTLS is required but failed ({exc}); not logging in "
                                    "in plain text") from None
        conn.login(mailbox.username, mailbox.password.get_secret_value())
    except ImapError:
        raise
    except (OSError, imaplib.IMAP4.error, ssl.SSLError) as exc:
        raise ImapError(f"{mailbox.key}: {type(exc).__name__}: {exc}") from None
    return conn


def _check(typ: str, data: list, what: str) -> list:  # type: ignore[type-arg]
    if typ != "OK":
        detail = b" ".join(d for d in data if isinstance(d, bytes)).decode("utf-8", "replace")
        raise ImapError(f"{what} failed: {detail}")
    return data


def _literal(data: list) -> bytes:  # type: ignore[type-arg]
    for item in data:
        if isinstance(item, tuple) and len(item) == 2:
            return item[1]
    return b""


class MailboxPoller:
    """One poll of one mailbox."""

    def __init__(self, channel: EmailChannel, mailbox: ImapMailbox) -> None:
        self.channel = channel
        self.hub = channel.hub
        self.mailbox = mailbox
        self.key = mailbox.key

    def poll(self) -> PollResult:
        result = PollResult(self.key)
        conn = connect(self.mailbox)
        try:
            typ, data = conn.select(encode_folder(self.mailbox.folder), readonly=True)
            _check(typ, data, f"selecting {self.mailbox.folder!r}")
            _, values = conn.response("UIDVALIDITY")
            if not values or values[-1] is None:
                raise ImapError(f"{self.key}: the server sent no UIDVALIDITY")
            uidvalidity = int(values[-1])
            last_uid = self._start(uidvalidity, result)
            typ, data = conn.uid("SEARCH", None, f"UID {last_uid + 1}:*")
            found = sorted(int(u) for u in (_check(typ, data, "searching")[0] or b"").split())
            # "n:*" always matches the highest UID, even one below n.
            uids = [u for u in found if u > last_uid][: self.channel.settings.poll_batch]
            sizes = self._sizes(conn, uids)
            for uid in uids:
                if not self._one(conn, uid, sizes.get(uid, 0), uidvalidity, result):
                    break
        finally:
            try:
                conn.logout()
            except (OSError, imaplib.IMAP4.error):
                pass
        return result

    def _start(self, uidvalidity: int, result: PollResult) -> int:
        with self.hub.session() as session, session.begin():
            insert_ignore(session, EmailMailboxState,
                          dict(mailbox=self.key, uidvalidity=uidvalidity, last_uid=0, failed_attempts=0,
                               updated_at=clock.now()), ["mailbox"])
            state = session.scalars(select(EmailMailboxState).where(EmailMailboxState.mailbox == self.key)).one()
            if state.uidvalidity != uidvalidity:
                log.warning("%s: UIDVALIDITY changed from %s to %s; reading the mailbox again from the start "
                            "(messages already recorded are skipped by Message-ID)", self.key, state.uidvalidity,
                            uidvalidity)
                state.uidvalidity, state.last_uid = uidvalidity, 0
                state.failed_uid, state.failed_attempts, state.updated_at = None, 0, clock.now()
                result.uidvalidity_reset = True
            return state.last_uid

    def _sizes(self, conn: imaplib.IMAP4, uids: list[int]) -> dict[int, int]:
        if not uids:
            return {}
        typ, data = conn.uid("FETCH", ",".join(map(str, uids)), "(UID RFC822.SIZE)")
        sizes = {}
        for item in _check(typ, data, "reading sizes"):
            line = item[0] if isinstance(item, tuple) else item
            match = _SIZE.search(line or b"")
            if match:
                uid, size = (match.group(1), match.group(2)) if match.group(1) else (match.group(4), match.group(3))
                sizes[int(uid)] = int(size)
        return sizes

    def _one(self, conn: imaplib.IMAP4, uid: int, size: int, uidvalidity: int, result: PollResult) -> bool:
        """Fetch and record one message; False stops this poll (it is retried at the next one)."""
        settings = self.channel.settings
        origin = {"mailbox": self.key, "uidvalidity": uidvalidity, "uid": uid}
        files = self.channel.files
        try:
            if size > settings.max_raw_bytes:
                typ, data = conn.uid("FETCH", str(uid), "(BODY.PEEK[HEADER])")
                head = _literal(_check(typ, data, f"fetching the header of UID {uid}"))
                self._commit(uid, lambda s: receive_headers(
                    s, channel=self.channel, header_block=head, size=size,
                    digest=_header_digest(self.key, uidvalidity, uid),
                    note=(f"This message is {size / 2**20:.0f} MB, over the {settings.max_raw_bytes / 2**20:.0f} MB "
                          f"the hub keeps; it was left on the server ({self.key}, UID {uid})."),
                    origin=origin), result)
            elif size > settings.max_message_bytes:
                with files.spool() as (path, handle):
                    self._fetch_chunks(conn, uid, size, handle)
                    handle.flush()
                    result.fetched += 1
                    self._commit(uid, lambda s: receive(s, channel=self.channel, path=path, origin=origin), result)
            else:
                typ, data = conn.uid("FETCH", str(uid), "(BODY.PEEK[])")
                raw = _literal(_check(typ, data, f"fetching UID {uid}"))
                result.fetched += 1
                self._commit(uid, lambda s: receive(s, channel=self.channel, raw=raw, origin=origin), result)
            return True
        except (ImapError, imaplib.IMAP4.error, OSError):
            raise  # the connection is gone or refused: the whole poll ends, the UID stays put
        except Exception as exc:  # noqa: BLE001 - this message could not be recorded; see _failed
            log.exception("%s: UID %s could not be recorded", self.key, uid)
            return self._failed(conn, uid, uidvalidity, exc, result, size)

    def _fetch_chunks(self, conn: imaplib.IMAP4, uid: int, size: int, handle) -> None:  # type: ignore[no-untyped-def]
        # Partial fetches (RFC 3501 BODY[]<offset.length>): a big message never sits whole in memory.
        offset = 0
        while True:
            typ, data = conn.uid("FETCH", str(uid), f"(BODY.PEEK[]<{offset}.{CHUNK}>)")
            chunk = _literal(_check(typ, data, f"fetching UID {uid} at {offset}"))
            handle.write(chunk)
            offset += len(chunk)
            if len(chunk) < CHUNK or offset >= size:
                break

    def _commit(self, uid: int, record, result: PollResult) -> None:  # type: ignore[no-untyped-def]
        with self.hub.session() as session, session.begin():
            state = session.scalars(
                select(EmailMailboxState).where(EmailMailboxState.mailbox == self.key).with_for_update()
            ).one()
            if state.last_uid >= uid:
                return  # another poller recorded it meanwhile
            received = record(session)
            state.last_uid, state.failed_uid, state.failed_attempts = uid, None, 0
            state.last_error, state.updated_at = None, clock.now()
        if received.created:
            result.created += 1
        else:
            result.skipped += 1

    def _failed(self, conn: imaplib.IMAP4, uid: int, uidvalidity: int, error: Exception, result: PollResult,
                size: int = 0) -> bool:
        """Count a failure; after MAX_ATTEMPTS pass the message over. True if the poll may go on."""
        with self.hub.session() as session, session.begin():
            state = session.scalars(
                select(EmailMailboxState).where(EmailMailboxState.mailbox == self.key).with_for_update()
            ).one()
            attempts = state.failed_attempts + 1 if state.failed_uid == uid else 1
            state.failed_uid, state.failed_attempts = uid, attempts
            state.last_error = f"UID {uid}: {type(error).__name__}: {error}"[:2000]
            state.updated_at = clock.now()
        result.error = f"UID {uid}: {type(error).__name__}: {error}"
        if attempts < MAX_ATTEMPTS:
            return False
        # Give up on it: an event with its headers says where it still is (the server), then move on.
        log.error("%s: UID %s failed %d times; recording its headers and moving on", self.key, uid, attempts)
        typ, data = conn.uid("FETCH", str(uid), "(BODY.PEEK[HEADER])")
        head = _literal(_check(typ, data, f"fetching the header of UID {uid}"))
        raw_digest = self._keep_raw(conn, uid, size)
        try:
            self._give_up(uid, uidvalidity, head, attempts, error, result, raw_digest, size)
        except Exception:  # noqa: BLE001 - even the headers would not record: the next poll tries again
            log.exception("%s: UID %s could not be passed over either", self.key, uid)
            return False
        result.error = None
        return True

    def _keep_raw(self, conn: imaplib.IMAP4, uid: int, size: int) -> str | None:
        """The message's bytes in the raw store (so admins can read what never recorded); None if too big or gone."""
        if not 0 < size <= self.channel.settings.max_message_bytes:
            return None
        try:
            typ, data = conn.uid("FETCH", str(uid), "(BODY.PEEK[])")
            return self.channel.files.raw.put_bytes(_literal(_check(typ, data, f"fetching UID {uid}")))
        except (ImapError, imaplib.IMAP4.error, OSError):
            raise
        except Exception:  # noqa: BLE001 - the headers-only event still says where it is
            log.exception("%s: UID %s could not be kept raw", self.key, uid)
            return None

    def _give_up(self, uid: int, uidvalidity: int, head: bytes, attempts: int, error: Exception,
                 result: PollResult, raw_digest: str | None = None, size: int = 0) -> None:
        self._commit(uid, lambda s: receive_headers(
            s, channel=self.channel, header_block=head, size=size, digest=_header_digest(self.key, uidvalidity, uid),
            note=(f"The hub could not record this message after {attempts} attempts ({type(error).__name__}); "
                  f"it is still on the server ({self.key}, UID {uid})."),
            origin={"mailbox": self.key, "uidvalidity": uidvalidity, "uid": uid, "error": str(error)[:500]},
            raw_digest=raw_digest, raw_reason=RawReason.UNRECORDED), result)


def _header_digest(key: str, uidvalidity: int, uid: int) -> str:
    import hashlib

    return hashlib.sha256(f"{key}/{uidvalidity}/{uid}".encode()).hexdigest()


def poll_all(channel: EmailChannel) -> list[PollResult]:
    """Poll every configured mailbox once; one mailbox failing does not stop the others."""
    results = []
    for mailbox in channel.settings.imap:
        try:
            results.append(MailboxPoller(channel, mailbox).poll())
        except ImapError as exc:
            log.error("polling %s failed: %s", mailbox.key, exc)
            results.append(PollResult(mailbox.key, error=str(exc)))
        except (OSError, imaplib.IMAP4.error) as exc:
            log.error("polling %s failed: %s: %s", mailbox.key, type(exc).__name__, exc)
            results.append(PollResult(mailbox.key, error=f"{type(exc).__name__}: {exc}"))
    return results
