"""The storage protocol shared by the local and S3 backends, object keys, and backend selection."""

from __future__ import annotations

import re
import secrets
from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, Protocol

import anyio.to_thread

if TYPE_CHECKING:
    from vidgate.config import Settings

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


@dataclass(frozen=True)
class StoredObject:
    """What was written: the key, its size in bytes, the hex SHA-256 and the content type."""

    key: str
    size: int
    sha256: str
    content_type: str


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


def storage_from_settings(settings: Settings) -> Storage:
    """The storage backend the settings configure."""
    return build_storage(
        backend=settings.storage_backend,
        data_dir=settings.data_dir,
        public_base_url=settings.public_base_url or "http://localhost:8000",
        s3_bucket=settings.s3_bucket,
        s3_endpoint_url=settings.s3_endpoint_url,
        s3_region=settings.s3_region,
        s3_access_key_id=settings.s3_access_key_id,
        s3_secret_access_key=settings.s3_secret_access_key,
        s3_addressing_style=settings.s3_addressing_style,
        presign_seconds=settings.storage_presign_seconds,
    )


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


def build_storage(
    *,
    backend: str,
    data_dir: Path,
    public_base_url: str,
    s3_bucket: str = "",
    s3_endpoint_url: str = "",
    s3_region: str = "",
    s3_access_key_id: str = "",
    s3_secret_access_key: str = "",
    s3_addressing_style: str = "auto",
    presign_seconds: int = 900,
) -> Storage:
    """The backend the settings ask for: ``local`` (files under ``data_dir/media``) or ``s3``."""
    if backend == "local":
        from .local import LocalStorage

        return LocalStorage(data_dir / "media", public_base_url)
    if backend == "s3":
        from .s3 import S3Storage

        if not s3_bucket:
            raise ValueError("the s3 storage backend needs a bucket")
        return S3Storage.connect(
            bucket=s3_bucket,
            public_base_url=public_base_url,
            endpoint_url=s3_endpoint_url,
            region=s3_region,
            access_key_id=s3_access_key_id,
            secret_access_key=s3_secret_access_key,
            addressing_style=s3_addressing_style,
            presign_seconds=presign_seconds,
        )
    raise ValueError(f"unknown storage backend {backend!r} (expected 'local' or 's3')")
