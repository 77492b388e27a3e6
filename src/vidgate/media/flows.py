"""Storing an upload: the received file checked against its declared type, probed, moved into
storage and recorded. The row is committed here, so that an object whose row did not commit is
removed again rather than left in storage with nothing pointing at it."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import Protocol

from vidgate.db.session import Session
from vidgate.media.errors import (
    EmptyFile,
    ExtensionNotAllowed,
    NotWhatExtensionSays,
    UnknownFileType,
)
from vidgate.media.models import Upload
from vidgate.media.probe import EXTENSIONS, FileType, MediaInfo, MediaRejected
from vidgate.media.storage import new_object_key
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
        try:
            info = await runtime.prober.probe(received.path, received.head, kind)
        except MediaRejected as exc:
            raise NotWhatExtensionSays(str(exc)) from exc
        key = new_object_key("uploads", info.extension)
        stored = await runtime.storage.adopt_file(
            key, received.path, content_type=info.content_type, sha256=received.sha256
        )
    finally:
        received.discard()
    row = Upload(
        id=uuid.uuid4(),
        user_id=user_id,
        storage_key=stored.key,
        file_type=kind,
        content_type=info.content_type,
        size=stored.size,
        sha256=received.sha256,
        original_filename=(received.filename or "")[:255] or None,
        width=info.width,
        height=info.height,
        duration_seconds=info.duration_seconds,
        codec=info.codec,
        fps=info.fps,
    )
    session.add(row)
    try:
        await session.commit()
    except BaseException:
        # No row points at the object: remove it rather than leave an orphan in storage.
        await asyncio.shield(runtime.storage.delete(stored.key))
        raise
    return row, info
