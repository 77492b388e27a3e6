"""`POST /api/videos/upload`: one image or video, streamed, checked, stored (docs/api.md §3.2)."""

from __future__ import annotations

from fastapi import APIRouter, Request

from vidgate.auth.dependencies import UserWithKey
from vidgate.deps import DbSession, RuntimeDep
from vidgate.errors import documented
from vidgate.media import flows
from vidgate.media.errors import (
    BoundaryInvalid,
    EmptyFile,
    ExtensionNotAllowed,
    FileMissing,
    FileSentTwice,
    FormFieldTooLong,
    MalformedMultipart,
    NotMultipart,
    NotWhatExtensionSays,
    TooManyFormFields,
    UnknownFileType,
)
from vidgate.media.models import Upload
from vidgate.media.multipart import UploadTooLarge, receive_file
from vidgate.media.schemas import UPLOAD_REQUEST_BODY, UploadResponse
from vidgate.runtime import Runtime

router = APIRouter(prefix="/api/videos", tags=["media"])


@router.post(
    "/upload",
    response_model=UploadResponse,
    openapi_extra={"requestBody": UPLOAD_REQUEST_BODY},
    responses=documented(
        ExtensionNotAllowed,
        EmptyFile,
        NotWhatExtensionSays,
        MalformedMultipart,
        UploadTooLarge,
        NotMultipart,
        BoundaryInvalid,
        FileMissing,
        FileSentTwice,
        TooManyFormFields,
        FormFieldTooLong,
        UnknownFileType,
    ),
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
    upload, _ = await flows.store_upload(runtime, session, user.id, received)
    return upload_response(runtime, upload)


def upload_response(runtime: Runtime, upload: Upload) -> UploadResponse:
    """The body an upload is answered with: by this endpoint, and by the resumable upload that
    ends in the same row."""
    return UploadResponse(
        file_url=runtime.storage.public_url(upload.storage_key),
        storage_key=upload.storage_key,
        file_size=upload.size,
        content_type=upload.content_type,
        file_type=upload.file_type,
        upload_id=str(upload.id),
        sha256=upload.sha256,
        width=upload.width,
        height=upload.height,
        duration_seconds=upload.duration_seconds,
    )
