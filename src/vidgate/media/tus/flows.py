"""Resumable uploads with the tus 1.0 protocol: the bytes of an unfinished upload in a file under
the data directory, its state in `tus_uploads`, and at the last byte the same check, probe and
`uploads` row as `POST /api/videos/upload` (`flows.store_upload`).

Why not a library: tuspyserver (the maintained FastAPI one) keeps its state in JSON files beside
the bytes with file locks, has no notion of who owns an upload, no checksum extension, and calls a
synchronous hook at the end whose result cannot become the response. Here the state is a row, so
every API process on the host agrees on it, a user sees only their own uploads, and one PATCH at a
time is enforced by a guarded update (`claimed_by`), not a lock held in one process.

A PATCH's bytes are written at the upload's offset as they arrive. A cut connection keeps what
arrived (the client resumes after a HEAD) unless the PATCH carried an Upload-Checksum: bytes that
cannot be checked are dropped. The SHA-256 of the whole file is computed once at the end, from the
file: a hash's running state does not survive from one process to the next.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import os
import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import structlog
from sqlalchemy import ColumnElement, delete, func, or_, select, update
from starlette.requests import ClientDisconnect, Request

from vidgate.config import Settings
from vidgate.media import flows, quota
from vidgate.media.errors import (
    EmptyFile,
    TusChecksumMismatch,
    TusHeaderInvalid,
    TusOffsetMismatch,
    TusTooManyUnfinished,
    TusUploadBusy,
    TusUploadIncomplete,
    TusUploadNotFound,
)
from vidgate.media.models import TusUpload, Upload
from vidgate.media.multipart import UploadTooLarge, limit_message
from vidgate.media.probe import SNIFF_BYTES
from vidgate.media.writeback import start_writeback
from vidgate.runtime import Runtime
from vidgate.users.models import User

logger = structlog.get_logger(__name__)

TUS_VERSION = "1.0.0"
TUS_EXTENSIONS = "creation,creation-with-upload,termination,expiration,checksum"
CHECKSUM_ALGORITHMS = "sha256"
OFFSET_STREAM = "application/offset+octet-stream"
# Upload-Metadata carries a file name and a type; a few KB is plenty.
MAX_METADATA_BYTES = 4096
# A PATCH holds its claim while it receives, renewing it this often; a claim not renewed for
# CLAIM_STALE (its process died) may be taken over by the next PATCH.
CLAIM_RENEW_SECONDS = 15.0
CLAIM_STALE = timedelta(seconds=60)
# Received bytes go to the file in a worker thread in batches of about this size.
WRITE_BATCH = 1024 * 1024
HASH_BLOCK = 1024 * 1024

_METADATA_KEY = re.compile(r"[!-~]+")  # printable ASCII, no spaces or commas (checked apart)
_DIGITS = re.compile(r"[0-9]{1,19}")


def partial_path(settings: Settings, upload_id: uuid.UUID) -> Path:
    """Where the bytes received so far live (on the API host: a tus upload is one host's)."""
    return settings.data_dir / "tmp" / "tus" / str(upload_id)


# --- headers ---------------------------------------------------------------------------------


def parse_length(value: str | None, name: str) -> int:
    """A non-negative decimal integer header (Upload-Length, Upload-Offset)."""
    if value is None:
        raise TusHeaderInvalid(f"Missing {name} header")
    if not _DIGITS.fullmatch(value.strip()):
        raise TusHeaderInvalid(f"{name} must be a non-negative integer")
    return int(value)


def parse_metadata(value: str | None) -> dict[str, str]:
    """Upload-Metadata: comma-separated `key base64(value)` pairs, values UTF-8."""
    if not value:
        return {}
    if len(value) > MAX_METADATA_BYTES:
        raise TusHeaderInvalid(f"Upload-Metadata is longer than {MAX_METADATA_BYTES} bytes")
    pairs: dict[str, str] = {}
    for item in value.split(","):
        parts = item.strip().split(" ")
        key = parts[0]
        if len(parts) > 2 or not _METADATA_KEY.fullmatch(key) or key in pairs:
            raise TusHeaderInvalid(f"Upload-Metadata has a malformed or repeated key: {key!r}")
        try:
            encoded = parts[1] if len(parts) > 1 else ""
            pairs[key] = base64.b64decode(encoded, validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            raise TusHeaderInvalid(
                f"Upload-Metadata value of {key!r} is not base64-encoded UTF-8"
            ) from None
    return pairs


def parse_checksum(value: str | None) -> bytes | None:
    """Upload-Checksum: `sha256 <base64 digest>`; the digest, or None when not sent."""
    if value is None:
        return None
    algorithm, _, encoded = value.strip().partition(" ")
    if algorithm != "sha256":
        raise TusHeaderInvalid(f"Upload-Checksum algorithm must be one of: {CHECKSUM_ALGORITHMS}")
    try:
        digest = base64.b64decode(encoded, validate=True)
    except binascii.Error:
        digest = b""
    if len(digest) != hashlib.sha256().digest_size:
        raise TusHeaderInvalid("Upload-Checksum must be `sha256 <base64 of the 32-byte digest>`")
    return digest


def expires_header(moment: datetime) -> str:
    """Upload-Expires in the HTTP date format."""
    return moment.astimezone(UTC).strftime("%a, %d %b %Y %H:%M:%S GMT")


def declared_fields(metadata: dict[str, str]) -> dict[str, str]:
    """The multipart form's fields from the metadata: tus clients call the type `filetype`."""
    file_type = metadata.get("file_type", metadata.get("filetype"))
    return {"file_type": file_type} if file_type is not None else {}


# --- state -----------------------------------------------------------------------------------


async def create(
    runtime: Runtime, user_id: uuid.UUID, length: int, metadata: dict[str, str]
) -> TusUpload:
    """Check what the upload declares (type, name, size) as the plain upload would, then record
    it and make its empty file. Creations of one user are serialised on the user's row, so the
    cap on unfinished uploads holds under concurrency."""
    settings = runtime.settings
    flows.declared_type(declared_fields(metadata).get("file_type"), metadata.get("filename"))
    if length > settings.max_upload_bytes:
        raise UploadTooLarge(limit_message(settings.max_upload_bytes))
    if length == 0:
        raise EmptyFile()
    now = datetime.now(UTC)
    async with runtime.db.transaction() as session:
        await session.execute(select(User.id).where(User.id == user_id).with_for_update())
        unfinished = await session.scalar(
            select(func.count())
            .select_from(TusUpload)
            .where(
                TusUpload.user_id == user_id,
                TusUpload.upload_id.is_(None),
                TusUpload.expires_at > now,
            )
        )
        if (unfinished or 0) >= settings.tus_max_unfinished:
            raise TusTooManyUnfinished(settings.tus_max_unfinished)
        # Refused before any byte is sent; checked again when the last one arrives.
        await quota.ensure_room(session, user_id, length, settings)
        row = TusUpload(
            id=uuid.uuid4(),
            user_id=user_id,
            length=length,
            upload_offset=0,
            upload_metadata=metadata,
            expires_at=now + timedelta(seconds=settings.tus_expire_seconds),
        )
        path = partial_path(settings, row.id)
        await asyncio.to_thread(_make_empty, path)
        session.add(row)
    return row


def _make_empty(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600, exist_ok=False)


def _live(user_id: uuid.UUID, upload_id: uuid.UUID) -> tuple[ColumnElement[bool], ...]:
    """The caller's own upload, not expired (anyone else's is not found)."""
    return (
        TusUpload.id == upload_id,
        TusUpload.user_id == user_id,
        TusUpload.expires_at > func.now(),
    )


def _unclaimed() -> ColumnElement[bool]:
    """No PATCH holds the upload, or the one that did stalled past CLAIM_STALE."""
    return or_(TusUpload.claimed_by.is_(None), TusUpload.claimed_at < func.now() - CLAIM_STALE)


async def find(runtime: Runtime, user_id: uuid.UUID, upload_id: uuid.UUID) -> TusUpload:
    """The caller's own upload, not expired; anyone else's is not found."""
    async with runtime.db.reads() as session:
        row = await session.scalar(select(TusUpload).where(*_live(user_id, upload_id)))
    if row is None:
        raise TusUploadNotFound()
    return row


async def claim(
    runtime: Runtime, user_id: uuid.UUID, upload_id: uuid.UUID, offset: int
) -> tuple[TusUpload, uuid.UUID]:
    """Take the upload for one PATCH at `offset`: a guarded update that only one request can
    win. The loser learns why: not found, complete, wrong offset, or busy."""
    token = uuid.uuid4()
    async with runtime.db.transaction() as session:
        row = await session.scalar(
            update(TusUpload)
            .where(
                *_live(user_id, upload_id),
                TusUpload.upload_id.is_(None),
                TusUpload.upload_offset == offset,
                _unclaimed(),
            )
            .values(claimed_by=token, claimed_at=func.now())
            .returning(TusUpload)
        )
    if row is not None:
        return row, token
    current = await find(runtime, user_id, upload_id)
    if current.upload_id is not None or current.upload_offset != offset:
        raise TusOffsetMismatch(offset, current.upload_offset)
    raise TusUploadBusy()


async def _guarded_update(
    runtime: Runtime, tus_id: uuid.UUID, token: uuid.UUID, **values: object
) -> bool:
    """Change the row only while this request still holds its claim."""
    async with runtime.db.transaction() as session:
        result = await session.execute(
            update(TusUpload)
            .where(TusUpload.id == tus_id, TusUpload.claimed_by == token)
            .values(**values)
            .returning(TusUpload.id)
        )
        return result.first() is not None


async def release(runtime: Runtime, row: TusUpload, token: uuid.UUID, offset: int) -> datetime:
    """Record the new offset, push the expiry back and give up the claim; the new expiry."""
    expires_at = datetime.now(UTC) + timedelta(seconds=runtime.settings.tus_expire_seconds)
    kept = await _guarded_update(
        runtime,
        row.id,
        token,
        upload_offset=offset,
        expires_at=expires_at,
        claimed_by=None,
        claimed_at=None,
    )
    if not kept:  # taken over after this request stalled past CLAIM_STALE
        raise TusUploadBusy()
    return expires_at


async def terminate(runtime: Runtime, user_id: uuid.UUID, upload_id: uuid.UUID) -> None:
    """DELETE: drop an unfinished upload and its bytes (not while a PATCH is sending)."""
    async with runtime.db.transaction() as session:
        deleted = await session.scalar(
            delete(TusUpload)
            .where(
                *_live(user_id, upload_id),
                TusUpload.upload_id.is_(None),
                _unclaimed(),
            )
            .returning(TusUpload.id)
        )
    if deleted is None:
        current = await find(runtime, user_id, upload_id)
        if current.upload_id is not None:
            raise TusUploadIncomplete(
                f"The upload is complete and kept as upload {current.upload_id}"
            )
        raise TusUploadBusy()
    await asyncio.to_thread(partial_path(runtime.settings, upload_id).unlink, missing_ok=True)


async def _forget(runtime: Runtime, upload_id: uuid.UUID) -> None:
    """Remove an upload whose bytes are gone (refused at the end, or lost)."""
    async with runtime.db.transaction() as session:
        await session.execute(delete(TusUpload).where(TusUpload.id == upload_id))


# --- bytes -----------------------------------------------------------------------------------


@dataclass
class _Chunk:
    """What one PATCH wrote: how many bytes, and their SHA-256 when a checksum is to be checked."""

    received: int = 0
    hash: hashlib._Hash | None = None
    batch: list[bytes] = field(default_factory=list)
    batched: int = 0


async def receive(
    request: Request,
    runtime: Runtime,
    row: TusUpload,
    token: uuid.UUID,
    checksum: bytes | None,
) -> int:
    """Write the request body at the upload's offset; the new offset. Over the declared length
    is a 413 and a checksum mismatch a 460, both with the chunk dropped. A cut connection keeps
    the bytes that arrived, unless they came with a checksum that can no longer be checked."""
    path = partial_path(runtime.settings, row.id)
    try:
        fd = await asyncio.to_thread(os.open, path, os.O_WRONLY)
    except FileNotFoundError:
        await _forget(runtime, row.id)
        raise TusUploadNotFound() from None
    chunk = _Chunk(hash=hashlib.sha256() if checksum is not None else None)
    start, room = row.upload_offset, row.length - row.upload_offset
    keep = 0
    try:
        await asyncio.to_thread(os.ftruncate, fd, start)
        renewed = asyncio.get_running_loop().time()
        try:
            async for data in request.stream():
                if chunk.received + chunk.batched + len(data) > room:
                    raise UploadTooLarge(
                        f"The bytes go past Upload-Length ({row.length}); the chunk was dropped"
                    )
                chunk.batch.append(data)
                chunk.batched += len(data)
                if chunk.batched >= WRITE_BATCH:
                    await _write_batch(fd, start, chunk)
                if asyncio.get_running_loop().time() - renewed > CLAIM_RENEW_SECONDS:
                    if not await _guarded_update(runtime, row.id, token, claimed_at=func.now()):
                        raise TusUploadBusy()
                    renewed = asyncio.get_running_loop().time()
            await _write_batch(fd, start, chunk)
        except ClientDisconnect:
            if checksum is None:
                await _write_batch(fd, start, chunk)
                keep = chunk.received
            return start + keep
        if chunk.hash is not None and not hmac.compare_digest(chunk.hash.digest(), checksum or b""):
            raise TusChecksumMismatch()
        keep = chunk.received
        return start + keep
    finally:
        await asyncio.shield(asyncio.to_thread(_settle, fd, start + keep))


async def _write_batch(fd: int, start: int, chunk: _Chunk) -> None:
    if not chunk.batch:
        return
    data = b"".join(chunk.batch)
    chunk.batch, chunk.batched = [], 0
    await asyncio.to_thread(_hash_and_write, fd, start + chunk.received, data, chunk.hash)
    chunk.received += len(data)


def _hash_and_write(fd: int, position: int, data: bytes, digest: hashlib._Hash | None) -> None:
    if digest is not None:
        digest.update(data)
    view = memoryview(data)
    start = position
    while view:
        written = os.pwrite(fd, view, position)
        view, position = view[written:], position + written
    start_writeback(fd, start, len(data))


def _settle(fd: int, end: int) -> None:
    """Cut the file back to what is kept and make it durable before the offset is recorded."""
    try:
        os.ftruncate(fd, end)
        os.fsync(fd)
    finally:
        os.close(fd)


@dataclass
class FinishedFile:
    """A complete tus upload, in the shape `flows.store_upload` takes."""

    path: Path
    filename: str | None
    size: int
    sha256: str
    head: bytes
    fields: dict[str, str]

    def discard(self) -> None:
        self.path.unlink(missing_ok=True)


def _hash_file(path: Path) -> tuple[str, bytes]:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        head = file.read(SNIFF_BYTES)
        digest.update(head)
        while block := file.read(HASH_BLOCK):
            digest.update(block)
    return digest.hexdigest(), head


async def finish(runtime: Runtime, row: TusUpload, token: uuid.UUID) -> Upload:
    """The last byte arrived: store the file as the plain upload does (same checks, probe, row),
    then point the tus row at the `uploads` row. Whatever `store_upload` refuses, the bytes are
    gone with it, so the tus row goes too."""
    path = partial_path(runtime.settings, row.id)
    sha256, head = await asyncio.to_thread(_hash_file, path)
    received = FinishedFile(
        path=path,
        filename=row.upload_metadata.get("filename"),
        size=row.length,
        sha256=sha256,
        head=head,
        fields=declared_fields(row.upload_metadata),
    )
    try:
        async with runtime.db.session() as session:
            upload, _ = await flows.store_upload(runtime, session, row.user_id, received)
    except BaseException:
        await asyncio.shield(_forget(runtime, row.id))
        raise
    await _guarded_update(
        runtime,
        row.id,
        token,
        upload_offset=row.length,
        upload_id=upload.id,
        claimed_by=None,
        claimed_at=None,
    )
    return upload


async def finished_upload(runtime: Runtime, user_id: uuid.UUID, upload_id: uuid.UUID) -> Upload:
    """The `uploads` row a complete tus upload became."""
    row = await find(runtime, user_id, upload_id)
    if row.upload_id is None:
        raise TusUploadIncomplete(
            f"The upload is at {row.upload_offset} of {row.length} bytes: not complete yet"
        )
    async with runtime.db.reads() as session:
        upload = await session.get(Upload, row.upload_id)
    if upload is None:  # pragma: no cover - uploads rows are never deleted while tus rows point
        raise TusUploadNotFound()
    return upload


# --- expiry ----------------------------------------------------------------------------------


async def purge_expired(runtime: Runtime) -> int:
    """Delete expired tus rows that no PATCH holds, and the bytes of the unfinished ones; how
    many rows went. A finished upload's `uploads` row and object stay: only the record of how it
    arrived goes."""
    async with runtime.db.transaction() as session:
        result = await session.execute(
            delete(TusUpload)
            .where(
                TusUpload.expires_at <= func.now(),
                _unclaimed(),
            )
            .returning(TusUpload.id, TusUpload.upload_id)
        )
        gone = result.all()
    for upload_id, finished_as in gone:
        if finished_as is None:
            await asyncio.to_thread(
                partial_path(runtime.settings, upload_id).unlink, missing_ok=True
            )
    return len(gone)
