"""Bodies of `POST /api/videos/upload` (docs/api.md §3.2)."""

from __future__ import annotations

from pydantic import BaseModel


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
