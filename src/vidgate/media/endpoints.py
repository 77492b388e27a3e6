"""`POST /api/videos/upload`: one image or video, streamed, checked, stored (docs/api.md §3.2)."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import PurePosixPath

from fastapi import APIRouter, Request

from vidgate.auth.dependencies import UserWithKey
from vidgate.deps import DbSession, RuntimeDep
from vidgate.errors import BadRequest, Unprocessable
from vidgate.media.models import Upload
from vidgate.media.multipart import receive_file
from vidgate.media.probe import EXTENSIONS, FileType, MediaRejected, probe
from vidgate.media.schemas import UPLOAD_REQUEST_BODY, UploadResponse
from vidgate.media.storage import new_object_key

router = APIRouter(prefix="/api/videos", tags=["media"])


@router.post(
    "/upload",
    response_model=UploadResponse,
    openapi_extra={"requestBody": UPLOAD_REQUEST_BODY},
    responses={413: {"description": "File too large"}},
)
async def upload(
    request: Request, user: UserWithKey, runtime: RuntimeDep, session: DbSession
) -> UploadResponse:
    """Upload an image (.jpg .jpeg .png .webp) or video (.mp4 .mov .avi .webm), at most 100 MB.

    The bytes must be what the extension says: images are decoded, videos probed.
    """
    settings = runtime.settings
    received = await receive_file(
        request,
        file_field="file",
        max_bytes=settings.max_upload_bytes,
        tmp_dir=settings.data_dir / "tmp",
    )
    try:
        file_type = received.fields.get("file_type")
        if file_type not in EXTENSIONS:
            raise Unprocessable("file_type must be 'image' or 'video'")
        kind: FileType = file_type
        extension = PurePosixPath(received.filename or "").suffix.lower()
        allowed = EXTENSIONS[kind]
        if extension not in allowed:
            raise BadRequest(
                f"Unsupported {kind} extension '{extension or '(none)'}'; "
                f"allowed: {', '.join(sorted(allowed))}"
            )
        if received.size == 0:
            raise BadRequest("The file is empty")
        try:
            info = await asyncio.to_thread(probe, received.path, received.head, kind)
        except MediaRejected as exc:
            raise BadRequest(str(exc)) from exc
        key = new_object_key("uploads", info.extension)
        stored = await runtime.storage.adopt_file(
            key, received.path, content_type=info.content_type, sha256=received.sha256
        )
    finally:
        received.discard()
    row = Upload(
        id=uuid.uuid4(),
        user_id=user.id,
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
    return UploadResponse(
        file_url=runtime.storage.public_url(stored.key),
        storage_key=stored.key,
        file_size=stored.size,
        content_type=info.content_type,
        file_type=kind,
        upload_id=str(row.id),
        sha256=received.sha256,
        width=info.width,
        height=info.height,
        duration_seconds=info.duration_seconds,
    )
