"""`POST /api/videos/upload`: one image or video, streamed, checked, stored (docs/api.md §3.2);
`POST /api/uploads/presign` and `.../complete`: the same, uploaded straight to the S3 bucket
and checked afterwards (§3.2b)."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Request

from vidgate.auth.dependencies import UserWithKey
from vidgate.deps import DbSession, RuntimeDep
from vidgate.errors import documented
from vidgate.media import flows
from vidgate.media.errors import (
    BoundaryInvalid,
    ContentTypeNotAllowed,
    DirectUploadsNeedS3,
    EmptyFile,
    ExtensionNotAllowed,
    FileChanged,
    FileMissing,
    FileNotUploaded,
    FileSentTwice,
    FormFieldTooLong,
    MalformedMultipart,
    NotMultipart,
    NotWhatExtensionSays,
    SizeNotAsDeclared,
    StorageQuotaExceeded,
    TooManyFormFields,
    UnknownFileType,
    UploadIntentNotFound,
)
from vidgate.media.multipart import UploadTooLarge, receive_file
from vidgate.media.schemas import (
    UPLOAD_REQUEST_BODY,
    PresignRequest,
    PresignResponse,
    UploadResponse,
)

router = APIRouter(prefix="/api/videos", tags=["media"])
direct_uploads = APIRouter(prefix="/api/uploads", tags=["media"])


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
        StorageQuotaExceeded,
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
    return flows.upload_response(runtime, upload)


@direct_uploads.post(
    "/presign",
    response_model=PresignResponse,
    responses=documented(
        ExtensionNotAllowed,
        ContentTypeNotAllowed,
        EmptyFile,
        DirectUploadsNeedS3,
        UploadTooLarge,
        StorageQuotaExceeded,
        UnknownFileType,
    ),
)
async def presign(
    body: PresignRequest, user: UserWithKey, runtime: RuntimeDep, session: DbSession
) -> PresignResponse:
    """Sign a browser POST that uploads one file straight to the S3 bucket.

    The policy fixes the object key, the exact size and the Content-Type. POST the `fields` and
    then the file (as `file`) to `url` before `expires_at`, then call `complete`. Only offered
    when media is stored in S3; otherwise 409 (use `POST /api/videos/upload`).
    """
    intent, url, fields = await flows.presign_direct_upload(
        runtime,
        session,
        user.id,
        filename=body.filename,
        file_type=body.file_type,
        size=body.size,
        content_type=body.content_type,
    )
    return PresignResponse(
        upload_id=str(intent.id), url=url, fields=fields, expires_at=intent.expires_at
    )


@direct_uploads.post(
    "/{upload_id}/complete",
    response_model=UploadResponse,
    responses=documented(
        SizeNotAsDeclared,
        NotWhatExtensionSays,
        UploadIntentNotFound,
        FileNotUploaded,
        FileChanged,
        DirectUploadsNeedS3,
        StorageQuotaExceeded,
    ),
)
async def complete(
    upload_id: uuid.UUID, user: UserWithKey, runtime: RuntimeDep, session: DbSession
) -> UploadResponse:
    """Check a file uploaded with `presign` and record it: the same checks and the same body as
    `POST /api/videos/upload`. A refused file is deleted from the bucket (400); completing again
    answers the same upload.
    """
    upload = await flows.complete_direct_upload(runtime, session, user.id, upload_id)
    return flows.upload_response(runtime, upload)
