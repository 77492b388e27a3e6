"""Bodies of `POST /api/videos/upload` (docs/api.md §3.2) and of direct uploads to the bucket."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from pydantic import BaseModel, Field

if TYPE_CHECKING:
    from vidgate.media.models import Upload


class UploadResponse(BaseModel):
    success: bool = True
    file_url: str
    storage_key: str
    file_size: int
    content_type: str
    file_type: str
    message: str = "File uploaded successfully"
    # Additions to the base API (docs/api.md §1.4):
    upload_id: str
    sha256: str
    width: int | None = None
    height: int | None = None
    duration_seconds: float | None = None

    @classmethod
    def of(cls, upload: Upload, file_url: str) -> UploadResponse:
        """The body for a recorded upload, whichever way its file arrived."""
        return cls(
            file_url=file_url,
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


# The multipart body, described for the OpenAPI document (the endpoint parses it as a stream).
UPLOAD_REQUEST_BODY = {
    "required": True,
    "content": {
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "required": ["file", "file_type"],
                "properties": {
                    "file": {"type": "string", "format": "binary"},
                    "file_type": {"type": "string", "enum": ["image", "video"]},
                },
            }
        }
    },
}


class PresignRequest(BaseModel):
    """A file the client is about to upload straight to the bucket (`POST /api/uploads/presign`)."""

    filename: str = Field(min_length=1, max_length=255)
    file_type: str = Field(max_length=16, description="image or video")
    size: int = Field(ge=0, description="The file's exact size in bytes")
    content_type: str = Field(max_length=100, description="e.g. image/png, video/mp4")


class PresignResponse(BaseModel):
    """Where and how to POST the file: a multipart/form-data POST to `url` with every one of
    `fields` and then the file as the last part, named `file`."""

    upload_id: str
    url: str
    fields: dict[str, str]
    expires_at: datetime
