"""Storing an upload: the received file (or, for a direct upload, the object in the bucket)
checked against its declared type, probed, moved into storage and recorded. The row is committed
here, so that an object whose row did not commit is removed again rather than left in storage
with nothing pointing at it."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Protocol

from vidgate.db.session import Session
from vidgate.media import direct, quota
from vidgate.media.errors import (
    EmptyFile,
    ExtensionNotAllowed,
    FileChanged,
    FileNotUploaded,
    NotWhatExtensionSays,
    UnknownFileType,
)
from vidgate.media.models import Upload, UploadIntent
from vidgate.media.probe import EXTENSIONS, FileType, MediaInfo, MediaRejected
from vidgate.media.schemas import UploadResponse
from vidgate.media.storage import StoredObject, new_object_key
from vidgate.runtime import Runtime


class LocalFile(Protocol):
    """A complete file on local disk with what its sender declared: a multipart upload's
    `ReceivedFile`, or a finished resumable upload."""

    @property
    def path(self) -> Path: ...
    @property
    def filename(self) -> str | None: ...
    @property
    def size(self) -> int: ...
    @property
    def sha256(self) -> str: ...
    @property
    def head(self) -> bytes: ...
    @property
    def fields(self) -> Mapping[str, str]: ...
    def discard(self) -> None: ...


def declared_type(file_type: str | None, filename: str | None) -> FileType:
    """The file_type a sender declared, checked with its file name's extension; raised as the
    contract's 422 or 400 when they are not ones vidgate takes."""
    if file_type not in EXTENSIONS:
        raise UnknownFileType()
    kind: FileType = file_type
    extension = PurePosixPath(filename or "").suffix.lower()
    allowed = EXTENSIONS[kind]
    if extension not in allowed:
        raise ExtensionNotAllowed(kind, extension, allowed)
    return kind


async def store_upload(
    runtime: Runtime, session: Session, user_id: uuid.UUID, received: LocalFile
) -> tuple[Upload, MediaInfo]:
    """Check, probe and store a received file and commit its `uploads` row; the temporary file
    is discarded whatever happens."""
    try:
        kind = declared_type(received.fields.get("file_type"), received.filename)
        if received.size == 0:
            raise EmptyFile()
        info = await probe_upload(runtime, received.path, received.head, kind)
        key = new_object_key("uploads", info.extension)
        stored = await runtime.storage.adopt_file(
            key, received.path, content_type=info.content_type, sha256=received.sha256
        )
    finally:
        received.discard()
    row = upload_row(user_id, stored, kind, info, received.filename)
    try:
        await quota.ensure_room(session, user_id, stored.size, runtime.settings)
        session.add(row)
        await session.commit()
    except BaseException:
        # No row points at the object (over quota, or the commit failed): remove it rather than
        # leave an orphan in storage.
        await asyncio.shield(runtime.storage.delete(stored.key))
        raise
    return row, info


async def probe_upload(runtime: Runtime, path: Path, head: bytes, kind: FileType) -> MediaInfo:
    """Probe a file received for an upload in the probe sandbox: what it is, or the 400 every
    upload path answers."""
    try:
        return await runtime.prober.probe(path, head, kind)
    except MediaRejected as exc:
        raise NotWhatExtensionSays(str(exc)) from exc


def upload_row(
    user_id: uuid.UUID, stored: StoredObject, kind: FileType, info: MediaInfo, filename: str | None
) -> Upload:
    """The `uploads` row of a stored, probed file, whichever way it arrived."""
    return Upload(
        id=uuid.uuid4(),
        user_id=user_id,
        storage_key=stored.key,
        file_type=kind,
        content_type=info.content_type,
        size=stored.size,
        sha256=stored.sha256,
        original_filename=(filename or "")[:255] or None,
        width=info.width,
        height=info.height,
        duration_seconds=info.duration_seconds,
        codec=info.codec,
        fps=info.fps,
    )


async def presign_direct_upload(
    runtime: Runtime,
    session: Session,
    user_id: uuid.UUID,
    *,
    filename: str,
    file_type: str,
    size: int,
    content_type: str,
) -> tuple[UploadIntent, str, dict[str, str]]:
    """Record an intent for a direct upload to the bucket and sign its POST; the intent, URL
    and form fields. Refused as `POST /api/videos/upload` would refuse the file."""
    kind = declared_type(file_type, filename)
    # Refused before the client sends the file; checked again on `complete`.
    await quota.ensure_room(session, user_id, size, runtime.settings)
    intent, url, fields = direct.new_intent(
        runtime, user_id, kind, filename=filename, size=size, content_type=content_type
    )
    session.add(intent)
    return intent, url, fields


async def complete_direct_upload(
    runtime: Runtime, session: Session, user_id: uuid.UUID, intent_id: uuid.UUID
) -> Upload:
    """Check a direct upload's object as `store_upload` checks a received file, copy it under
    an upload key and commit its `uploads` row; the same row again for a completed intent.
    A refused object is deleted from the bucket."""
    intent = await direct.owned_intent(session, user_id, intent_id)
    if intent.upload_id is not None:
        return await direct.recorded_upload(session, intent.upload_id)
    declared = direct.Declared.of(intent)
    await session.rollback()  # no connection is held while the object is read and probed
    storage = direct.direct_storage(runtime)
    try:
        stored, info = await _check_direct_upload(runtime, storage, declared)
    except (FileChanged, FileNotUploaded):
        # A concurrent `complete` may have recorded the file and removed the staging object.
        intent = await direct.owned_intent(session, user_id, intent_id)
        if intent.upload_id is None:
            raise
        return await direct.recorded_upload(session, intent.upload_id)
    try:
        intent = await direct.owned_intent(session, user_id, intent_id, lock=True)
        if intent.upload_id is not None:  # a concurrent `complete` recorded it first
            await storage.delete(stored.key)
            return await direct.recorded_upload(session, intent.upload_id)
        await quota.ensure_room(session, user_id, stored.size, runtime.settings)
        row = upload_row(user_id, stored, declared.kind, info, declared.filename)
        session.add(row)
        await session.flush()
        intent.upload_id, intent.completed_at = row.id, datetime.now(UTC)
        await session.commit()
    except BaseException:
        # No row points at the copy; the staging object stays for another try (or the sweeper).
        await asyncio.shield(storage.delete(stored.key))
        raise
    await storage.delete(declared.key)
    return row


async def _check_direct_upload(
    runtime: Runtime, storage: direct.DirectStorage, declared: direct.Declared
) -> tuple[StoredObject, MediaInfo]:
    """Check the staging object and probe it; copy it under an upload key. A refused object is
    deleted."""
    async with direct.staged_object(storage, declared, runtime.settings.data_dir / "tmp") as staged:
        try:
            info = await probe_upload(runtime, staged.path, staged.head, declared.kind)
        except NotWhatExtensionSays:
            await storage.delete(declared.key)
            raise
        return await direct.adopt(storage, declared, staged, info), info


def upload_response(runtime: Runtime, upload: Upload) -> UploadResponse:
    """The body an upload is answered with, whichever way its file arrived (multipart,
    resumable or direct to the bucket)."""
    return UploadResponse.of(upload, runtime.storage.public_url(upload.storage_key))
