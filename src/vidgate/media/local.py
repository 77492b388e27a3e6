"""Local-filesystem storage: one file per key under a root directory."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import tempfile
from collections.abc import AsyncIterable, AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

import anyio
import anyio.to_thread

from .storage import (
    READ_CHUNK,
    ListedObject,
    ObjectNotFound,
    ObjectTooLarge,
    StoredObject,
    iter_file,
    public_media_url,
    validate_key,
)
from .writeback import start_writeback

# Incoming chunks (often a few KiB from a multipart parser) are gathered up to this size before a
# write, so a 100 MB upload costs ~100 thread hops rather than tens of thousands.
WRITE_BUFFER = 1024 * 1024
# Files listed per thread hop by `list_keys`.
LIST_BATCH = 500


class LocalStorage:
    """Files under ``root/<key>``, written atomically (temp file in the same directory + rename)."""

    name = "local"

    def __init__(self, root: Path, public_base_url: str) -> None:
        self.root = root.expanduser().resolve()
        self.public_base_url = public_base_url.rstrip("/")

    def path_for(self, key: str) -> Path:
        """The file that holds ``key``; ValueError for a key that is not safe."""
        return self.root / validate_key(key)

    async def put_stream(
        self,
        key: str,
        chunks: AsyncIterable[bytes],
        *,
        content_type: str,
        max_bytes: int | None = None,
    ) -> StoredObject:
        """Stream into a hidden temp file beside the target, then rename it into place."""
        target = self.path_for(key)
        file, temp = await anyio.to_thread.run_sync(_open_temp, target)
        digest = hashlib.sha256()
        size = 0
        buffer = bytearray()
        try:
            async for chunk in chunks:
                size += len(chunk)
                if max_bytes is not None and size > max_bytes:
                    raise ObjectTooLarge(max_bytes)
                digest.update(chunk)
                buffer += chunk
                if len(buffer) >= WRITE_BUFFER:
                    # anyio (unlike asyncio.to_thread) waits for the thread when cancelled, so the
                    # cleanup below never races a write still in flight.
                    await anyio.to_thread.run_sync(_write, file, bytes(buffer), size - len(buffer))
                    buffer.clear()
            await anyio.to_thread.run_sync(_finish, file, bytes(buffer), temp, target)
        except BaseException:
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(_discard, file, temp)
            raise
        return StoredObject(
            key=key, size=size, sha256=digest.hexdigest(), content_type=content_type
        )

    async def put_file(self, key: str, path: Path, *, content_type: str) -> StoredObject:
        """Copy a local file in (hashing it on the way)."""
        return await self.put_stream(key, iter_file(path), content_type=content_type)

    async def adopt_file(
        self, key: str, path: Path, *, content_type: str, sha256: str
    ) -> StoredObject:
        """Move the file into place: on the same filesystem a rename, no second read or write.
        Flushed to disk first, as `put_stream` does: a crash cannot leave a renamed but empty
        file behind a committed row."""
        target = self.path_for(key)

        def move() -> int | None:
            target.parent.mkdir(parents=True, exist_ok=True)
            size = path.stat().st_size
            fd = os.open(path, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
            try:
                os.replace(path, target)
            except OSError as exc:
                if exc.errno == errno.EXDEV:  # another filesystem: copy instead
                    return None
                raise
            return size

        size = await anyio.to_thread.run_sync(move)
        if size is None:
            stored = await self.put_file(key, path, content_type=content_type)
            await anyio.to_thread.run_sync(_unlink, path)
            return stored
        return StoredObject(key=key, size=size, sha256=sha256, content_type=content_type)

    async def open(self, key: str) -> AsyncIterator[bytes]:
        """Yield the file's bytes in chunks; ObjectNotFound if there is no such file."""
        path = self.path_for(key)
        try:
            file: BinaryIO = await anyio.to_thread.run_sync(path.open, "rb")
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise ObjectNotFound(key) from None
        try:
            while chunk := await anyio.to_thread.run_sync(file.read, READ_CHUNK):
                yield chunk
        finally:
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(file.close)

    async def exists(self, key: str) -> bool:
        """Whether a regular file is stored under ``key``."""
        return await anyio.to_thread.run_sync(self.path_for(key).is_file)

    async def delete(self, key: str) -> None:
        """Remove the file if it is there."""
        await anyio.to_thread.run_sync(_unlink, self.path_for(key))

    async def list_keys(self, prefix: str) -> AsyncIterator[ListedObject]:
        """Walk the directory tree (in a thread, a few hundred files per hop)."""
        walk = _walk(self.root, prefix)
        while batch := await anyio.to_thread.run_sync(_take, walk, LIST_BATCH):
            for listed in batch:
                yield listed

    def public_url(self, key: str) -> str:
        """The stable vidgate URL of ``key``."""
        return public_media_url(self.public_base_url, validate_key(key))


def _walk(root: Path, prefix: str) -> Iterator[ListedObject]:
    """The regular files under ``root`` whose key starts with ``prefix``; hidden names (temp
    files still being written) are skipped, as they are outside the key space."""
    start = root / prefix.rsplit("/", 1)[0] if "/" in prefix else root
    for directory, subdirectories, files in os.walk(start):
        subdirectories[:] = [name for name in subdirectories if not name.startswith(".")]
        for name in files:
            if name.startswith("."):
                continue
            path = Path(directory, name)
            key = path.relative_to(root).as_posix()
            if not key.startswith(prefix):
                continue
            try:
                info = path.stat()
            except FileNotFoundError:  # deleted since the directory was read
                continue
            modified = datetime.fromtimestamp(info.st_mtime, UTC)
            yield ListedObject(key=key, size=info.st_size, modified=modified)


def _take(items: Iterator[ListedObject], count: int) -> list[ListedObject]:
    return [item for _, item in zip(range(count), items, strict=False)]


def _open_temp(target: Path) -> tuple[BinaryIO, Path]:
    target.parent.mkdir(parents=True, exist_ok=True)
    # Same directory as the target so os.replace is an atomic rename on one filesystem; the leading
    # dot keeps it out of the key space (validate_key refuses dot-segments).
    fd, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    return os.fdopen(fd, "wb"), Path(name)


def _write(file: BinaryIO, data: bytes, offset: int) -> None:
    file.write(data)
    file.flush()
    start_writeback(file.fileno(), offset, len(data))


def _finish(file: BinaryIO, tail: bytes, temp: Path, target: Path) -> None:
    file.write(tail)
    file.flush()
    # Flush to disk before the rename so a crash cannot leave a renamed but empty file.
    os.fsync(file.fileno())
    file.close()
    os.chmod(temp, 0o644)  # mkstemp creates 0600; the file is meant to be served
    os.replace(temp, target)


def _discard(file: BinaryIO, temp: Path) -> None:
    file.close()
    temp.unlink(missing_ok=True)


def _unlink(path: Path) -> None:
    # A directory is not an object, so "deleting" one is a no-op rather than an error.
    with contextlib.suppress(FileNotFoundError, IsADirectoryError, NotADirectoryError):
        path.unlink()
