"""Files on disk: attachments and raw messages, named by their SHA-256 under data_dir/email/.

A name made from the content, never from the sender's file name, cannot climb out of the folder,
and writing the same file twice (a replayed message) is harmless. Files are written before the
transaction that records them commits, so a crash can leave an unreferenced file, never a row
without its file.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

CHUNK = 1024 * 1024
_HEX = re.compile(r"^[0-9a-f]{64}$")


class FileStore:
    """Content-addressed files in one folder (attachments or raw messages)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, sha256: str) -> Path:
        if not _HEX.match(sha256):
            raise ValueError("not a SHA-256 hex digest")
        return self.root / sha256[:2] / sha256

    def exists(self, sha256: str) -> bool:
        return self.path(sha256).is_file()

    def put_bytes(self, data: bytes) -> str:
        """Store bytes; returns their SHA-256."""
        digest = hashlib.sha256(data).hexdigest()
        target = self.path(digest)
        if not target.exists():
            self._write(target, lambda out: out.write(data))
        return digest

    def put_file(self, source: Path) -> tuple[str, int]:
        """Copy a file in chunks (never whole in memory); returns its SHA-256 and size."""
        digest, size = hash_file(source)
        target = self.path(digest)
        if not target.exists():
            def copy(out: BinaryIO) -> None:
                with source.open("rb") as src:
                    shutil.copyfileobj(src, out, CHUNK)

            self._write(target, copy)
        return digest, size

    def read(self, sha256: str) -> bytes:
        return self.path(sha256).read_bytes()

    def _write(self, target: Path, write) -> None:  # type: ignore[no-untyped-def]
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".part-")
        try:
            with os.fdopen(fd, "wb") as out:
                write(out)
                out.flush()
                os.fsync(out.fileno())
            os.chmod(tmp, 0o640)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


def hash_file(path: Path) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as src:
        while chunk := src.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def read_header_block(path: Path, *, limit: int = 256 * 1024) -> bytes:
    """The header section of a message file (up to the first empty line), at most `limit` bytes."""
    with path.open("rb") as src:
        head = src.read(limit)
    for sep in (b"\r\n\r\n", b"\n\n"):
        end = head.find(sep)
        if end != -1:
            return head[: end + len(sep)]
    return head


class EmailFiles:
    """The email channel's folders under the hub's data_dir."""

    def __init__(self, data_dir: Path) -> None:
        self.base = data_dir / "email"
        self.attachments = FileStore(self.base / "attachments")
        self.raw = FileStore(self.base / "raw")
        self.tmp = self.base / "tmp"

    @contextmanager
    def spool(self) -> Iterator[tuple[Path, BinaryIO]]:
        """A temporary file to stream an incoming message into; removed afterwards."""
        self.tmp.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=self.tmp, prefix="in-", suffix=".eml")
        path = Path(name)
        try:
            with os.fdopen(fd, "w+b") as handle:
                yield path, handle
        finally:
            path.unlink(missing_ok=True)
