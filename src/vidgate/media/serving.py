"""``GET /media/{key}``: the stable URL behind every media link vidgate hands out."""

from __future__ import annotations

import os
import stat
from collections.abc import Awaitable, Callable
from pathlib import PurePosixPath

import anyio.to_thread
from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse, Response

from .local import LocalStorage
from .s3 import S3Storage
from .storage import Storage, validate_key

CONTENT_TYPES = {
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".png": "image/png",
    ".webp": "image/webp",
    ".mp4": "video/mp4",
    ".mov": "video/quicktime",
    ".avi": "video/x-msvideo",
    ".webm": "video/webm",
}

# Keys are unguessable but the objects belong to someone: let browsers cache, not shared proxies.
CACHE_CONTROL = "private, max-age=3600"


def content_type_for(key: str) -> str:
    """The Content-Type served for ``key``, from its extension."""
    return CONTENT_TYPES.get(PurePosixPath(key).suffix.lower(), "application/octet-stream")


def _not_found() -> Response:
    return JSONResponse({"detail": "Not found"}, status_code=404)


# Whether a missing key is an object retention deleted (answered 410 rather than 404).
ExpiredCheck = Callable[[Request, str], Awaitable[bool]]

GONE_DETAIL = "This file has expired: it was kept for its retention period and then deleted"


async def _missing(key: str, request: Request, is_expired: ExpiredCheck | None) -> Response:
    """404, or 410 Gone for an object that existed and was deleted when its time was up."""
    if is_expired is not None and await is_expired(request, key):
        return JSONResponse({"detail": GONE_DETAIL}, status_code=410)
    return _not_found()


def _stat_file(path: os.PathLike[str]) -> os.stat_result | None:
    try:
        result = os.stat(path)
    except OSError:  # missing, a path through a file, a name too long …
        return None
    return result if stat.S_ISREG(result.st_mode) else None


def media_router(
    get_storage: Callable[[Request], Storage], is_expired: ExpiredCheck | None = None
) -> APIRouter:
    """The media route; ``get_storage`` picks the app's storage backend from the request, and
    ``is_expired`` (when there is a database to ask) tells a deleted object from one that never
    was."""
    router = APIRouter()

    @router.api_route("/media/{key:path}", methods=["GET", "HEAD"], include_in_schema=False)
    async def get_media(key: str, request: Request) -> Response:
        storage = get_storage(request)
        try:
            validate_key(key)
        except ValueError:
            return _not_found()
        headers = {"Cache-Control": CACHE_CONTROL, "X-Content-Type-Options": "nosniff"}
        if isinstance(storage, LocalStorage):
            path = storage.path_for(key)
            stat_result = await anyio.to_thread.run_sync(_stat_file, path)
            if stat_result is None:
                return await _missing(key, request, is_expired)
            # FileResponse answers Range (206 / multipart 206 / 416), If-Range and HEAD itself.
            return FileResponse(
                path,
                media_type=content_type_for(key),
                headers=headers,
                stat_result=stat_result,
            )
        if isinstance(storage, S3Storage):
            if not await storage.exists(key):
                return await _missing(key, request, is_expired)
            # The presigned URL expires, so the redirect itself must not be cached.
            return RedirectResponse(
                storage.presigned_get_url(key),
                status_code=307,
                headers={"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"},
            )
        return _not_found()

    return router
