"""`/api/uploads/tus/`: resumable uploads with the tus 1.0 protocol (docs/api.md, "Resumable
uploads"). The same caller, type and size rules as `POST /api/videos/upload`; the PATCH that
brings the last byte answers 200 with the same body the plain upload answers, and
`GET /api/uploads/tus/{id}` answers it again later."""

from __future__ import annotations

import uuid
from datetime import datetime

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from vidgate.auth.dependencies import UserWithKey
from vidgate.deps import RuntimeDep
from vidgate.errors import documented
from vidgate.media.errors import (
    EmptyFile,
    ExtensionNotAllowed,
    NotWhatExtensionSays,
    StorageQuotaExceeded,
    TusChecksumMismatch,
    TusHeaderInvalid,
    TusNotOctetStream,
    TusOffsetMismatch,
    TusTooManyUnfinished,
    TusUploadBusy,
    TusUploadIncomplete,
    TusUploadNotFound,
    TusVersionUnsupported,
    UnknownFileType,
)
from vidgate.media.flows import upload_response
from vidgate.media.models import TusUpload
from vidgate.media.multipart import UploadTooLarge
from vidgate.media.schemas import UploadResponse
from vidgate.media.tus import flows as tus
from vidgate.runtime import Runtime

router = APIRouter(prefix="/api/uploads/tus", tags=["media"])

# What a browser on another origin (VIDGATE_CORS_ORIGINS) must be let send and read.
REQUEST_HEADERS = [
    "Tus-Resumable",
    "Upload-Length",
    "Upload-Metadata",
    "Upload-Offset",
    "Upload-Checksum",
]
RESPONSE_HEADERS = [
    "Location",
    "Tus-Resumable",
    "Tus-Version",
    "Tus-Extension",
    "Tus-Max-Size",
    "Tus-Checksum-Algorithm",
    "Upload-Offset",
    "Upload-Length",
    "Upload-Expires",
]

PATCH_ERRORS = documented(
    TusHeaderInvalid,
    TusVersionUnsupported,
    TusUploadNotFound,
    TusOffsetMismatch,
    TusUploadBusy,
    TusNotOctetStream,
    UploadTooLarge,
    StorageQuotaExceeded,
    TusChecksumMismatch,
    EmptyFile,
    NotWhatExtensionSays,
)


def _resumable(request: Request) -> None:
    if request.headers.get("tus-resumable") != tus.TUS_VERSION:
        raise TusVersionUnsupported()


def _octet_stream(request: Request) -> None:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != tus.OFFSET_STREAM:
        raise TusNotOctetStream()


def _has_body(request: Request) -> bool:
    return request.headers.get("content-length", "0") != "0" or (
        "transfer-encoding" in request.headers
    )


def _headers(**values: object) -> dict[str, str]:
    """tus response headers: always Tus-Resumable, plus the given ones (Upload_Offset →
    Upload-Offset; datetimes as HTTP dates)."""
    headers = {"Tus-Resumable": tus.TUS_VERSION}
    for name, value in values.items():
        text = tus.expires_header(value) if isinstance(value, datetime) else str(value)
        headers[name.replace("_", "-")] = text
    return headers


async def _write(
    request: Request, runtime: Runtime, row: TusUpload, token: uuid.UUID, checksum: bytes | None
) -> tuple[int, datetime]:
    """Receive one PATCH's bytes into a claimed upload and release it at the new offset (at the
    old one when the bytes were refused)."""
    try:
        offset = await tus.receive(request, runtime, row, token, checksum)
    except BaseException:
        await tus.release(runtime, row, token, row.upload_offset)
        raise
    if offset == row.length:
        return offset, row.expires_at
    return offset, await tus.release(runtime, row, token, offset)


async def _finish(
    runtime: Runtime, row: TusUpload, token: uuid.UUID, status_code: int, headers: dict[str, str]
) -> Response:
    upload = await tus.finish(runtime, row, token)
    body = upload_response(runtime, upload).model_dump(mode="json")
    return JSONResponse(body, status_code=status_code, headers=headers)


@router.options("/", status_code=204, responses=documented())
async def discover(runtime: RuntimeDep) -> Response:
    """What this tus server supports (no credentials needed): version, extensions, the size
    limit and the checksum algorithm."""
    headers = _headers(
        Tus_Version=tus.TUS_VERSION,
        Tus_Extension=tus.TUS_EXTENSIONS,
        Tus_Max_Size=runtime.settings.max_upload_bytes,
        Tus_Checksum_Algorithm=tus.CHECKSUM_ALGORITHMS,
    )
    return Response(status_code=204, headers=headers)


@router.post(
    "/",
    status_code=201,
    response_model=UploadResponse,
    responses=documented(
        TusHeaderInvalid,
        TusVersionUnsupported,
        UnknownFileType,
        ExtensionNotAllowed,
        EmptyFile,
        UploadTooLarge,
        StorageQuotaExceeded,
        TusTooManyUnfinished,
        TusNotOctetStream,
        TusChecksumMismatch,
        NotWhatExtensionSays,
    ),
)
async def create(request: Request, user: UserWithKey, runtime: RuntimeDep) -> Response:
    """Start a resumable upload: `Upload-Length` and `Upload-Metadata` (`filename`, and
    `file_type` or `filetype`: image or video), optionally with the first bytes
    (creation-with-upload). 201 with `Location`; 201 with the upload's JSON body when those
    bytes were the whole file."""
    _resumable(request)
    length = tus.parse_length(request.headers.get("upload-length"), "Upload-Length")
    metadata = tus.parse_metadata(request.headers.get("upload-metadata"))
    checksum = tus.parse_checksum(request.headers.get("upload-checksum"))
    if _has_body(request):
        _octet_stream(request)
    row = await tus.create(runtime, user.id, length, metadata)
    location = str(request.url_for("tus_upload", upload_id=str(row.id)))
    if not _has_body(request):
        headers = _headers(Location=location, Upload_Offset=0, Upload_Expires=row.expires_at)
        return Response(status_code=201, headers=headers)
    row, token = await tus.claim(runtime, user.id, row.id, 0)
    offset, expires = await _write(request, runtime, row, token, checksum)
    headers = _headers(Location=location, Upload_Offset=offset, Upload_Expires=expires)
    if offset == row.length:
        return await _finish(runtime, row, token, 201, headers)
    return Response(status_code=201, headers=headers)


@router.head("/{upload_id}", responses=documented(TusVersionUnsupported, TusUploadNotFound))
async def offset(
    request: Request, upload_id: uuid.UUID, user: UserWithKey, runtime: RuntimeDep
) -> Response:
    """Where the upload stands: `Upload-Offset` and `Upload-Length` (never cached)."""
    _resumable(request)
    row = await tus.find(runtime, user.id, upload_id)
    headers = _headers(
        Upload_Offset=row.upload_offset,
        Upload_Length=row.length,
        Upload_Expires=row.expires_at,
        Cache_Control="no-store",
    )
    return Response(status_code=200, headers=headers)


@router.patch("/{upload_id}", response_model=UploadResponse, responses=PATCH_ERRORS)
async def append(
    request: Request, upload_id: uuid.UUID, user: UserWithKey, runtime: RuntimeDep
) -> Response:
    """Send bytes from `Upload-Offset` as `application/offset+octet-stream`, optionally with
    `Upload-Checksum: sha256 <base64>`. 204 with the new `Upload-Offset`; the PATCH that completes
    the file answers 200 with the same JSON as `POST /api/videos/upload`."""
    _resumable(request)
    _octet_stream(request)
    sent = tus.parse_length(request.headers.get("upload-offset"), "Upload-Offset")
    checksum = tus.parse_checksum(request.headers.get("upload-checksum"))
    row, token = await tus.claim(runtime, user.id, upload_id, sent)
    offset, expires = await _write(request, runtime, row, token, checksum)
    headers = _headers(Upload_Offset=offset, Upload_Expires=expires)
    if offset == row.length:
        return await _finish(runtime, row, token, 200, headers)
    return Response(status_code=204, headers=headers)


@router.delete(
    "/{upload_id}",
    status_code=204,
    responses=documented(
        TusVersionUnsupported, TusUploadNotFound, TusUploadBusy, TusUploadIncomplete
    ),
)
async def terminate(
    request: Request, upload_id: uuid.UUID, user: UserWithKey, runtime: RuntimeDep
) -> Response:
    """Abandon an unfinished upload: its bytes are deleted (termination extension)."""
    _resumable(request)
    await tus.terminate(runtime, user.id, upload_id)
    return Response(status_code=204, headers=_headers())


@router.get(
    "/{upload_id}",
    name="tus_upload",
    response_model=UploadResponse,
    responses=documented(TusUploadNotFound, TusUploadIncomplete),
)
async def result(upload_id: uuid.UUID, user: UserWithKey, runtime: RuntimeDep) -> UploadResponse:
    """The finished upload, in the body `POST /api/videos/upload` answers (409 until the last
    byte has arrived)."""
    upload = await tus.finished_upload(runtime, user.id, upload_id)
    return upload_response(runtime, upload)
