"""Direct uploads to an S3-compatible bucket: the client POSTs the file to the bucket under a
presigned policy, then asks vidgate to check it and record it. The steps, for the flows
(`media.flows`) that put them together, and the sweeper's.

The policy fixes the key, the exact size and the Content-Type, but a bucket checks only that
much (and S3-compatibles differ in how much of it they enforce): `complete` checks everything
again, as `POST /api/videos/upload` would. The client's key is a staging key it may write to
again until the policy expires, so the checked object is pinned by its ETag from the first HEAD
to the server-side copy under a new key that only vidgate can write: what is recorded is
exactly what was checked. The staging object and the intent are removed by the sweeper.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Protocol, runtime_checkable

import anyio.to_thread
from sqlalchemy import delete, select

from vidgate.db.session import Session
from vidgate.media.errors import (
    ContentTypeNotAllowed,
    DirectUploadsNeedS3,
    EmptyFile,
    FileChanged,
    FileNotUploaded,
    NotWhatExtensionSays,
    SizeNotAsDeclared,
    UploadIntentNotFound,
)
from vidgate.media.models import Upload, UploadIntent
from vidgate.media.multipart import UploadTooLarge, limit_message
from vidgate.media.probe import SNIFF_BYTES, SNIFFED, FileType, MediaInfo, MediaRejected, sniff
from vidgate.media.storage import (
    ObjectChanged,
    ObjectTooLarge,
    Storage,
    StoredObject,
    new_object_key,
)
from vidgate.runtime import Runtime

# How long after its policy expired an intent may still be completed (an upload that started
# in time may finish late), and is kept for a repeated `complete`; then the sweeper removes it.
COMPLETE_GRACE = timedelta(hours=1)
# Staging keys live apart from recorded uploads: a lifecycle rule may expire this prefix.
STAGING_KIND = "incoming"
# How many expired intents one sweep removes (the next run takes the rest).
SWEEP_BATCH = 500

# The content types a direct upload may declare, and the extension its keys get: the sniffed
# types, less the Matroska alias that `sniff` reports as WebM.
DIRECT_TYPES: dict[FileType, dict[str, str]] = {
    kind: {mime: ext for mime, ext in types.items() if mime != "video/x-matroska"}
    for kind, types in SNIFFED.items()
}


@runtime_checkable
class DirectStorage(Storage, Protocol):
    """A storage that clients can upload to directly (S3)."""

    def presigned_post(
        self, key: str, *, content_type: str, size: int, expires_in: int
    ) -> tuple[str, dict[str, str]]: ...

    async def stat(self, key: str) -> tuple[int, str] | None: ...

    async def read_head(self, key: str, length: int, *, etag: str) -> bytes: ...

    async def download(self, key: str, path: Path, *, etag: str, max_bytes: int) -> str: ...

    async def copy(self, source: str, target: str, *, etag: str) -> None: ...


def direct_storage(runtime: Runtime) -> DirectStorage:
    """The storage, if clients can upload to it directly; else the 409 that says to use
    `POST /api/videos/upload`."""
    storage = runtime.storage
    if not isinstance(storage, DirectStorage):
        raise DirectUploadsNeedS3()
    return storage


@dataclass(frozen=True)
class Declared:
    """What a client declared for a direct upload, and where the policy let it store the file."""

    key: str
    kind: FileType
    filename: str
    size: int
    content_type: str

    @classmethod
    def of(cls, intent: UploadIntent) -> Declared:
        kind: FileType = "image" if intent.file_type == "image" else "video"
        return cls(intent.storage_key, kind, intent.filename, intent.size, intent.content_type)


@dataclass(frozen=True)
class Staged:
    """The checked version of a staging object (`etag`), downloaded to `path`."""

    etag: str
    size: int
    head: bytes
    path: Path
    sha256: str


def new_intent(
    runtime: Runtime,
    user_id: uuid.UUID,
    kind: FileType,
    *,
    filename: str,
    size: int,
    content_type: str,
) -> tuple[UploadIntent, str, dict[str, str]]:
    """An intent for a file of the declared content type and size, and the URL and fields of
    the POST that may store it; refused as `POST /api/videos/upload` would refuse the file."""
    storage = direct_storage(runtime)
    accepted = DIRECT_TYPES[kind]
    if content_type not in accepted:
        raise ContentTypeNotAllowed(kind, content_type, accepted)
    if size == 0:
        raise EmptyFile()
    limit = runtime.settings.max_upload_bytes
    if size > limit:
        raise UploadTooLarge(limit_message(limit))
    seconds = runtime.settings.direct_upload_seconds
    intent = UploadIntent(
        id=uuid.uuid4(),
        user_id=user_id,
        storage_key=new_object_key(STAGING_KIND, accepted[content_type]),
        file_type=kind,
        filename=filename,
        size=size,
        content_type=content_type,
        expires_at=datetime.now(UTC) + timedelta(seconds=seconds),
    )
    url, fields = storage.presigned_post(
        intent.storage_key, content_type=content_type, size=size, expires_in=seconds
    )
    return intent, url, fields


async def owned_intent(
    session: Session, user_id: uuid.UUID, intent_id: uuid.UUID, *, lock: bool = False
) -> UploadIntent:
    """The caller's intent, while it may still be completed; else 404."""
    intent = await session.get(UploadIntent, intent_id, with_for_update=lock or None)
    if (
        intent is None
        or intent.user_id != user_id
        or datetime.now(UTC) > intent.expires_at + COMPLETE_GRACE
    ):
        raise UploadIntentNotFound()
    return intent


async def recorded_upload(session: Session, upload_id: uuid.UUID) -> Upload:
    """The upload a completed intent recorded."""
    upload = await session.get(Upload, upload_id)
    if upload is None:  # removed since (its intent goes with it)
        raise UploadIntentNotFound()
    return upload


@contextlib.asynccontextmanager
async def staged_object(
    storage: DirectStorage, declared: Declared, tmp_dir: Path
) -> AsyncIterator[Staged]:
    """The staging object, checked for its size and sniffed type and downloaded to a temporary
    file for the probe (removed afterwards); an object refused here is deleted.

    Videos are downloaded whole rather than probed by ranged reads: the row records the file's
    SHA-256, which needs every byte anyway, and the demuxer seeks freely (an MP4's index is
    often at the end), which over ranged GETs would cost a round trip per seek."""
    found = await storage.stat(declared.key)
    if found is None:
        raise FileNotUploaded()
    size, etag = found
    path = await anyio.to_thread.run_sync(_temporary_file, tmp_dir)
    try:
        try:
            if size != declared.size:
                raise SizeNotAsDeclared(size, declared.size)
            head = await storage.read_head(declared.key, SNIFF_BYTES, etag=etag)
            _check_sniffed(head, declared)
            try:
                sha256 = await storage.download(declared.key, path, etag=etag, max_bytes=size)
            except ObjectTooLarge:
                raise ObjectChanged(declared.key) from None
        except (SizeNotAsDeclared, NotWhatExtensionSays):
            await storage.delete(declared.key)
            raise
        except ObjectChanged:
            raise FileChanged() from None
        yield Staged(etag, size, head, path, sha256)
    finally:
        await anyio.to_thread.run_sync(lambda: path.unlink(missing_ok=True))


async def adopt(
    storage: DirectStorage, declared: Declared, staged: Staged, info: MediaInfo
) -> StoredObject:
    """Copy the checked version of the staging object under a new upload key, which only
    vidgate can write to."""
    target = new_object_key("uploads", info.extension)
    try:
        await storage.copy(declared.key, target, etag=staged.etag)
    except ObjectChanged:
        raise FileChanged() from None
    return StoredObject(target, staged.size, staged.sha256, info.content_type)


def _check_sniffed(head: bytes, declared: Declared) -> None:
    """The object's first bytes are of the type the policy stored it as."""
    try:
        sniffed, _ = sniff(head, declared.kind)
    except MediaRejected as exc:
        raise NotWhatExtensionSays(str(exc)) from exc
    if sniffed != declared.content_type:
        raise NotWhatExtensionSays(
            f"The file looks like {sniffed}; it was declared {declared.content_type}"
        )


def _temporary_file(tmp_dir: Path) -> Path:
    """A new empty file in `tmp_dir` (where `POST /api/videos/upload` keeps its own)."""
    tmp_dir.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix="direct-", dir=tmp_dir)
    os.close(fd)
    return Path(name)


async def sweep_expired(session: Session, storage: Storage, now: datetime) -> int:
    """Remove intents whose grace ended, and their staging objects (the recorded copy of a
    completed one stays); how many. The row goes only once its object is gone."""
    expired = await session.scalars(
        select(UploadIntent)
        .where(UploadIntent.expires_at < now - COMPLETE_GRACE)
        .order_by(UploadIntent.expires_at)
        .limit(SWEEP_BATCH)
    )
    intents = list(expired)
    for intent in intents:
        await storage.delete(intent.storage_key)
    if intents:
        await session.execute(
            delete(UploadIntent).where(UploadIntent.id.in_([i.id for i in intents]))
        )
    return len(intents)
