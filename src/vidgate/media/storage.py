"""The storage protocol shared by the local and S3 backends, and object keys.

Backend selection is `media.backends`: the backends import this module, not the reverse.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO, Protocol

import anyio.to_thread

# Chunk size for reading files and objects back out: big enough to keep thread hops rare, small
# enough that a video never sits in memory whole.
READ_CHUNK = 1024 * 1024

_KEY_SEGMENT = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]*")
_KEY_PART = re.compile(r"[a-z0-9.]+")
MAX_KEY_LENGTH = 512


class ObjectTooLarge(Exception):
    """More than the allowed number of bytes arrived; nothing was stored."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"object is larger than {limit} bytes")
        self.limit = limit


class ObjectNotFound(Exception):
    """No object is stored under the key."""

    def __init__(self, key: str) -> None:
        super().__init__(f"no object stored under {key!r}")
        self.key = key


class ObjectChanged(Exception):
    """The object is no longer the version that was looked at: it was replaced or removed."""

    def __init__(self, key: str) -> None:
        super().__init__(f"the object under {key!r} changed")
        self.key = key


@dataclass(frozen=True)
class StoredObject:
    """What was written: the key, its size in bytes, the hex SHA-256 and the content type."""

    key: str
    size: int
    sha256: str
    content_type: str


@dataclass(frozen=True)
class ListedObject:
    """One object found by `Storage.list_keys`: its key, size in bytes and last change."""

    key: str
    size: int
    modified: datetime


class Storage(Protocol):
    """A place to keep media. Keys look like ``upload/2025/01/<hex>.mp4``."""

    name: str  # "local" | "s3"

    async def put_stream(
        self,
        key: str,
        chunks: AsyncIterable[bytes],
        *,
        content_type: str,
        max_bytes: int | None = None,
    ) -> StoredObject:
        """Stream ``chunks`` into ``key``; over ``max_bytes`` → ObjectTooLarge, nothing stored."""
        ...

    async def put_file(self, key: str, path: Path, *, content_type: str) -> StoredObject:
        """Store a file from local disk (worker results)."""
        ...

    async def adopt_file(
        self, key: str, path: Path, *, content_type: str, sha256: str
    ) -> StoredObject:
        """Store a file the caller is done with (it is moved or removed), already hashed."""
        ...

    def open(self, key: str) -> AsyncIterator[bytes]:
        """Async generator of the object's bytes; ObjectNotFound (on first iteration) if missing."""
        ...

    async def exists(self, key: str) -> bool:
        """Whether an object is stored under ``key``."""
        ...

    async def delete(self, key: str) -> None:
        """Remove the object; deleting a missing key is not an error."""
        ...

    def public_url(self, key: str) -> str:
        """The absolute, stable vidgate URL of the object."""
        ...

    def list_keys(self, prefix: str) -> AsyncIterator[ListedObject]:
        """Async generator of the objects whose key starts with ``prefix`` (e.g. ``uploads/``),
        in no promised order; objects still being written are not listed."""
        ...


def fetchable_url(storage: Storage, key: str) -> str:
    """A URL a third party (an upstream vendor) can GET the object from without following
    vidgate's redirect: presigned on S3, the public vidgate URL for local files."""
    presign = getattr(storage, "presigned_get_url", None)
    return str(presign(key)) if presign is not None else storage.public_url(key)


def validate_key(key: str) -> str:
    """Return ``key`` if it is a safe relative object key, else raise ValueError.

    Segments may not start with a dot: that rules out ``.``/``..`` and keeps the local backend's
    hidden temp files unaddressable.
    """
    if not key or len(key) > MAX_KEY_LENGTH:
        raise ValueError("invalid object key")
    for segment in key.split("/"):
        if not _KEY_SEGMENT.fullmatch(segment):
            raise ValueError(f"invalid object key: {key!r}")
    return key


def new_object_key(kind: str, extension: str) -> str:
    """An unguessable key: ``{kind}/{yyyy}/{mm}/{32 hex}{extension}`` (extension like ``.mp4``)."""
    if not _KEY_PART.fullmatch(kind) or kind.startswith("."):
        raise ValueError(f"invalid object kind: {kind!r}")
    if extension and (not _KEY_PART.fullmatch(extension) or not extension.startswith(".")):
        raise ValueError(f"invalid extension: {extension!r}")
    now = datetime.now(UTC)
    return f"{kind}/{now:%Y}/{now:%m}/{secrets.token_hex(16)}{extension}"


def public_media_url(public_base_url: str, key: str) -> str:
    """The stable vidgate URL under which ``key`` is served."""
    return f"{public_base_url.rstrip('/')}/media/{key}"


async def iter_file(path: Path) -> AsyncIterator[bytes]:
    """Read a local file in chunks, off the event loop."""
    file: BinaryIO = await anyio.to_thread.run_sync(path.open, "rb")
    try:
        while chunk := await anyio.to_thread.run_sync(file.read, READ_CHUNK):
            yield chunk
    finally:
        await anyio.to_thread.run_sync(file.close)
