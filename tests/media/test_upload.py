"""POST /api/videos/upload: streamed, checked by content, stored, served back (docs/api.md §3.2)."""

from __future__ import annotations

import hashlib
import uuid
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from vidgate.db.engine import Database
from vidgate.media.models import Upload
from vidgate.runtime import Runtime

from ..fixtures.app import DEV_CLIENT_KEY
from ..fixtures.samples import jpeg_bytes, mp4_bytes, png_bytes
from ..fixtures.signin import SignedIn, sign_in

UPLOAD = "/api/videos/upload"


async def _upload(
    client: httpx.AsyncClient,
    user: SignedIn,
    content: bytes,
    filename: str,
    file_type: str | None,
    *,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    data = {"file_type": file_type} if file_type is not None else {}
    return await client.post(
        UPLOAD,
        headers=headers if headers is not None else {**user.headers, "X-API-Key": DEV_CLIENT_KEY},
        files={"file": (filename, content, "application/octet-stream")},
        data=data,
    )


def _stored_path(runtime: Runtime, key: str) -> Path:
    return runtime.settings.data_dir / "media" / key


async def test_image_upload_is_stored_and_served(
    client: httpx.AsyncClient, runtime: Runtime, db: Database
) -> None:
    user = await sign_in(client)
    content = png_bytes()
    r = await _upload(client, user, content, "face.png", "image")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["success"] is True
    assert body["file_type"] == "image"
    assert body["content_type"] == "image/png"
    assert body["file_size"] == len(content)
    assert body["sha256"] == hashlib.sha256(content).hexdigest()
    assert (body["width"], body["height"]) == (32, 24)
    assert body["file_url"] == f"http://test/media/{body['storage_key']}"
    assert {"message", "storage_key"} <= body.keys()
    assert _stored_path(runtime, body["storage_key"]).read_bytes() == content
    served = await client.get(f"/media/{body['storage_key']}")
    assert served.status_code == 200 and served.content == content
    assert served.headers["content-type"] == "image/png"
    async with db.session() as s:
        row = await s.scalar(select(Upload).where(Upload.storage_key == body["storage_key"]))
    assert row is not None and row.size == len(content) and row.original_filename == "face.png"


async def test_video_upload_is_probed_and_seekable(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    user = await sign_in(client)
    content = mp4_bytes(seconds=1.0)
    r = await _upload(client, user, content, "dance.MP4", "video")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["content_type"] == "video/mp4"
    assert body["storage_key"].endswith(".mp4")
    assert body["duration_seconds"] == pytest.approx(1.0, abs=0.15)
    assert (body["width"], body["height"]) == (64, 48)
    ranged = await client.get(f"/media/{body['storage_key']}", headers={"Range": "bytes=0-99"})
    assert ranged.status_code == 206
    assert ranged.content == content[:100]
    assert ranged.headers["content-range"] == f"bytes 0-99/{len(content)}"


async def test_png_named_jpg_is_stored_as_what_it_is(client: httpx.AsyncClient) -> None:
    user = await sign_in(client)
    r = await _upload(client, user, png_bytes(), "photo.jpg", "image")
    assert r.status_code == 200, r.text
    assert r.json()["content_type"] == "image/png"
    assert r.json()["storage_key"].endswith(".png")


@pytest.mark.parametrize(
    ("content", "filename", "file_type", "status", "fragment"),
    [
        (b"just some text, not a video" * 100, "movie.mp4", "video", 400, "not a recognised"),
        (b"GIF89a" + b"\x00" * 200, "anim.gif", "image", 400, "Unsupported image extension"),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 100, "broken.png", "image", 400, "could not be decoded"),
        (None, "clip.mp4", "image", 400, "Unsupported image extension"),
        (None, "clip.mp4", "audio", 422, "file_type"),
        (None, "clip.mp4", None, 422, "file_type"),
        (b"", "empty.png", "image", 400, "empty"),
    ],
)
async def test_bad_uploads_are_refused_and_nothing_is_kept(
    client: httpx.AsyncClient,
    runtime: Runtime,
    db: Database,
    content: bytes | None,
    filename: str,
    file_type: str | None,
    status: int,
    fragment: str,
) -> None:
    user = await sign_in(client)
    before = await _count_uploads(db)
    payload = content if content is not None else jpeg_bytes()
    r = await _upload(client, user, payload, filename, file_type)
    assert r.status_code == status, r.text
    assert fragment in str(r.json()["detail"])
    assert await _count_uploads(db) == before
    assert list((runtime.settings.data_dir / "tmp").iterdir()) == []


async def test_truncated_video_is_refused(client: httpx.AsyncClient) -> None:
    user = await sign_in(client)
    content = mp4_bytes(seconds=2.0)
    r = await _upload(client, user, content[: len(content) // 3], "cut.mp4", "video")
    assert r.status_code == 400, r.text
    assert "video" in r.json()["detail"]


async def test_oversize_upload_is_413_and_leaves_nothing(
    client: httpx.AsyncClient, runtime: Runtime, db: Database
) -> None:
    user = await sign_in(client)
    before = await _count_uploads(db)
    media_dir = runtime.settings.data_dir / "media"
    files_before = sorted(media_dir.rglob("*")) if media_dir.exists() else []
    original = runtime.settings.max_upload_bytes
    runtime.settings.max_upload_bytes = 1024 * 1024
    try:
        big = png_bytes() + b"\x00" * (2 * 1024 * 1024)
        r = await _upload(client, user, big, "huge.png", "image")
        assert r.status_code == 413
        assert r.json() == {"detail": "File too large: the limit is 1 MB"}

        # Without a Content-Length the limit is enforced while streaming.
        async def chunks() -> object:
            boundary = "vidgateboundary"
            yield (
                f'--{boundary}\r\nContent-Disposition: form-data; name="file_type"\r\n\r\n'
                f'image\r\n--{boundary}\r\nContent-Disposition: form-data; name="file"; '
                f'filename="huge.png"\r\nContent-Type: image/png\r\n\r\n'
            ).encode()
            for _ in range(40):
                yield b"\x00" * 65536
            yield f"\r\n--{boundary}--\r\n".encode()

        streamed = await client.post(
            UPLOAD,
            headers={
                **user.headers,
                "X-API-Key": DEV_CLIENT_KEY,
                "Content-Type": "multipart/form-data; boundary=vidgateboundary",
            },
            content=chunks(),  # type: ignore[arg-type]
        )
        assert streamed.status_code == 413
    finally:
        runtime.settings.max_upload_bytes = original
    assert await _count_uploads(db) == before
    assert list((runtime.settings.data_dir / "tmp").iterdir()) == []
    files_after = sorted(media_dir.rglob("*")) if media_dir.exists() else []
    assert files_after == files_before


async def test_upload_needs_the_contract_auth(client: httpx.AsyncClient) -> None:
    user = await sign_in(client)
    content = png_bytes()
    no_auth = await _upload(client, user, content, "a.png", "image", headers={})
    assert no_auth.status_code == 401
    jwt_only = await _upload(client, user, content, "a.png", "image", headers=user.headers)
    assert jwt_only.status_code == 401
    key = await client.post("/api/users/api-keys", headers=user.headers, json={"name": "server"})
    personal = {"X-API-Key": key.json()["key"]}
    assert (
        await _upload(client, user, content, "a.png", "image", headers=personal)
    ).status_code == 200


async def test_not_multipart_is_422(client: httpx.AsyncClient) -> None:
    user = await sign_in(client)
    r = await client.post(
        UPLOAD, headers={**user.headers, "X-API-Key": DEV_CLIENT_KEY}, json={"file": "x"}
    )
    assert r.status_code == 422
    missing_file = await client.post(
        UPLOAD,
        headers={**user.headers, "X-API-Key": DEV_CLIENT_KEY},
        files={"other": ("a.png", png_bytes(), "image/png")},
        data={"file_type": "image"},
    )
    assert missing_file.status_code == 422
    assert "file" in missing_file.json()["detail"]


async def _count_uploads(db: Database) -> int:
    async with db.session() as s:
        return int(await s.scalar(select(func.count()).select_from(Upload)) or 0)


def test_unique_keys() -> None:
    from vidgate.media.storage import new_object_key

    keys = {new_object_key("uploads", ".mp4") for _ in range(100)}
    assert len(keys) == 100
    assert all(uuid.UUID(k.split("/")[-1][:32]) for k in keys)


async def test_a_failed_commit_leaves_no_orphan_object(
    client: httpx.AsyncClient, runtime: Runtime, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The object is stored before its row is committed; if the commit fails, it goes too."""
    from sqlalchemy.ext.asyncio import AsyncSession

    user = await sign_in(client)
    media = runtime.settings.data_dir / "media" / "uploads"
    before = set(media.rglob("*")) if media.exists() else set()
    async with db.session() as session:
        rows_before = await session.scalar(select(func.count()).select_from(Upload))

    async def failing_commit(self: AsyncSession) -> None:
        raise ConnectionResetError("database went away")

    monkeypatch.setattr(AsyncSession, "commit", failing_commit)
    with pytest.raises(ConnectionResetError):
        await _upload(client, user, png_bytes(), "face.png", "image")
    monkeypatch.undo()

    after = set(media.rglob("*")) if media.exists() else set()
    assert {path for path in after - before if path.is_file()} == set()
    async with db.session() as session:
        assert await session.scalar(select(func.count()).select_from(Upload)) == rows_before
