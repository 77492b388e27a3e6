"""Storage backends (local disk, and S3 against a moto server on loopback) and the media route."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import re
import secrets
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request
from moto.server import ThreadedMotoServer
from sqlalchemy import select

from vidgate.db.engine import Database
from vidgate.media import inventory
from vidgate.media import local as local_module
from vidgate.media.backends import build_storage
from vidgate.media.local import LocalStorage
from vidgate.media.models import Upload
from vidgate.media.s3 import PART_SIZE, S3Storage, attachment_disposition
from vidgate.media.serving import media_router
from vidgate.media.storage import (
    ObjectNotFound,
    ObjectTooLarge,
    Storage,
    StoredObject,
    new_object_key,
    validate_key,
)
from vidgate.tasks.models import Task
from vidgate.users.models import User

BASE_URL = "http://vidgate.test"
BUCKET = "vidgate-media"
MiB = 1024 * 1024


def payload(size: int, seed: int = 0) -> bytes:
    """Deterministic, non-repeating-looking bytes of ``size``."""
    block = hashlib.sha256(str(seed).encode()).digest() * 2048  # 64 KiB
    return (block * (size // len(block) + 1))[:size]


async def chunked(data: bytes, chunk: int = 64 * 1024) -> AsyncIterator[bytes]:
    for i in range(0, len(data), chunk):
        yield data[i : i + chunk]


async def generated(total: int, chunk: int = 256 * 1024) -> AsyncIterator[bytes]:
    """``total`` bytes made on the fly, so the test itself never holds them all."""
    sent = 0
    n = 0
    while sent < total:
        piece = payload(min(chunk, total - sent), seed=n)
        sent += len(piece)
        n += 1
        yield piece


def generated_digest(total: int, chunk: int = 256 * 1024) -> str:
    digest = hashlib.sha256()
    sent = 0
    n = 0
    while sent < total:
        piece = payload(min(chunk, total - sent), seed=n)
        digest.update(piece)
        sent += len(piece)
        n += 1
    return digest.hexdigest()


async def read_all(storage: Storage, key: str) -> bytes:
    return b"".join([chunk async for chunk in storage.open(key)])


# --- fixtures ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def s3_storage(moto_endpoint: str) -> S3Storage:
    storage = build_storage(
        backend="s3",
        data_dir=Path("/nonexistent"),
        public_base_url=BASE_URL + "/",
        s3_bucket=BUCKET,
        s3_endpoint_url=moto_endpoint,
        s3_region="us-east-1",
        s3_access_key_id="test",
        s3_secret_access_key="test",
        s3_addressing_style="path",
        presign_seconds=300,
    )
    assert isinstance(storage, S3Storage)
    with contextlib.suppress(storage.client.exceptions.BucketAlreadyOwnedByYou):
        storage.client.create_bucket(Bucket=BUCKET)
    return storage


@pytest.fixture
def local_storage(tmp_path: Path) -> LocalStorage:
    storage = build_storage(backend="local", data_dir=tmp_path, public_base_url=BASE_URL)
    assert isinstance(storage, LocalStorage)
    assert storage.root == (tmp_path / "media").resolve()
    return storage


@pytest.fixture(params=["local", "s3"])
def storage(request: pytest.FixtureRequest) -> Storage:
    name = request.param
    return request.getfixturevalue(f"{name}_storage")  # type: ignore[no-any-return]


def files_under(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


def leftovers(storage: Storage, key: str) -> list[Any]:
    """What the backend still holds for ``key``: files, temp files, objects, multipart uploads."""
    if isinstance(storage, LocalStorage):
        return files_under(storage.root)
    assert isinstance(storage, S3Storage)
    objects = storage.client.list_objects_v2(Bucket=BUCKET, Prefix=key).get("Contents", [])
    uploads = storage.client.list_multipart_uploads(Bucket=BUCKET).get("Uploads", [])
    return [*objects, *uploads]


# --- both backends -------------------------------------------------------------------------------


async def test_put_stream_round_trip(storage: Storage) -> None:
    data = payload(300_001)
    key = new_object_key("upload", ".mp4")
    stored = await storage.put_stream(key, chunked(data), content_type="video/mp4")
    assert stored == StoredObject(
        key=key, size=len(data), sha256=hashlib.sha256(data).hexdigest(), content_type="video/mp4"
    )
    assert await storage.exists(key)
    assert await read_all(storage, key) == data
    assert storage.public_url(key) == f"{BASE_URL}/media/{key}"


async def test_empty_object(storage: Storage) -> None:
    key = new_object_key("upload", ".png")
    stored = await storage.put_stream(key, chunked(b""), content_type="image/png")
    assert stored.size == 0
    assert stored.sha256 == hashlib.sha256(b"").hexdigest()
    assert await read_all(storage, key) == b""


async def test_large_stream_round_trips(storage: Storage) -> None:
    """20 MiB: three multipart parts on S3 (8 + 8 + 4 MiB)."""
    total = 20 * MiB
    key = new_object_key("result", ".mp4")
    stored = await storage.put_stream(key, generated(total), content_type="video/mp4")
    assert stored.size == total
    assert stored.sha256 == generated_digest(total)
    digest = hashlib.sha256()
    size = 0
    async for chunk in storage.open(key):
        digest.update(chunk)
        size += len(chunk)
    assert (size, digest.hexdigest()) == (total, stored.sha256)
    if isinstance(storage, S3Storage):
        head = storage.client.head_object(Bucket=BUCKET, Key=key)
        assert head["ContentType"] == "video/mp4"
        assert head["ETag"].endswith('-3"')  # a multipart ETag: three parts


async def test_local_write_buffering_is_bounded(
    local_storage: LocalStorage, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Writing 20 MiB never holds more than the write buffer plus one chunk in memory.

    Measured as bytes handed to ``put_stream`` but not yet written to the file, at every write:
    exact, and unaffected by whatever else the process allocates meanwhile.
    """
    chunk = 256 * 1024
    produced = 0
    written = 0
    backlog: list[int] = []

    class CountingFile:
        def __init__(self, inner: Any) -> None:
            self.inner = inner

        def write(self, data: bytes) -> int:
            nonlocal written
            backlog.append(produced - written)
            written += len(data)
            return int(self.inner.write(data))

        def __getattr__(self, name: str) -> Any:
            return getattr(self.inner, name)

    real_open_temp = local_module._open_temp
    monkeypatch.setattr(
        local_module,
        "_open_temp",
        lambda target: (lambda pair: (CountingFile(pair[0]), pair[1]))(real_open_temp(target)),
    )

    async def counted() -> AsyncIterator[bytes]:
        nonlocal produced
        async for piece in generated(20 * MiB, chunk):
            produced += len(piece)
            yield piece

    key = new_object_key("result", ".mp4")
    await local_storage.put_stream(key, counted(), content_type="video/mp4")
    assert written == 20 * MiB
    assert len(backlog) >= 20 * MiB // (local_module.WRITE_BUFFER + chunk)
    assert max(backlog) <= local_module.WRITE_BUFFER + chunk
    assert local_storage.path_for(key).stat().st_size == 20 * MiB


async def test_exactly_one_part(storage: Storage) -> None:
    key = new_object_key("upload", ".mp4")
    data = payload(PART_SIZE)
    stored = await storage.put_stream(key, chunked(data, MiB), content_type="video/mp4")
    assert stored.size == PART_SIZE
    assert await read_all(storage, key) == data


@pytest.mark.parametrize("total", [1000, 9 * MiB, 20 * MiB])
async def test_too_large_leaves_nothing(storage: Storage, total: int) -> None:
    """Over the limit, on the single-PUT path and after multipart parts went up: nothing remains."""
    key = new_object_key("upload", ".mp4")
    limit = total - 1
    with pytest.raises(ObjectTooLarge) as caught:
        await storage.put_stream(key, generated(total), content_type="video/mp4", max_bytes=limit)
    assert caught.value.limit == limit
    assert not await storage.exists(key)
    assert leftovers(storage, key) == []


async def test_exactly_max_bytes_is_accepted(storage: Storage) -> None:
    key = new_object_key("upload", ".jpg")
    stored = await storage.put_stream(
        key, chunked(payload(5000)), content_type="image/jpeg", max_bytes=5000
    )
    assert stored.size == 5000


async def test_failing_source_leaves_nothing(storage: Storage) -> None:
    key = new_object_key("upload", ".mp4")

    async def broken() -> AsyncIterator[bytes]:
        async for chunk in generated(10 * MiB):
            yield chunk
        raise ConnectionResetError("client went away")

    with pytest.raises(ConnectionResetError):
        await storage.put_stream(key, broken(), content_type="video/mp4")
    assert leftovers(storage, key) == []


async def test_overwrite_replaces(storage: Storage) -> None:
    key = new_object_key("upload", ".png")
    await storage.put_stream(key, chunked(b"first"), content_type="image/png")
    await storage.put_stream(key, chunked(b"second"), content_type="image/png")
    assert await read_all(storage, key) == b"second"


async def test_open_missing(storage: Storage) -> None:
    with pytest.raises(ObjectNotFound):
        await read_all(storage, new_object_key("upload", ".mp4"))


async def test_delete_is_idempotent(storage: Storage) -> None:
    key = new_object_key("upload", ".mp4")
    await storage.put_stream(key, chunked(b"x" * 10), content_type="video/mp4")
    await storage.delete(key)
    assert not await storage.exists(key)
    await storage.delete(key)
    await storage.delete(new_object_key("upload", ".mp4"))


async def test_put_file(storage: Storage, tmp_path: Path) -> None:
    source = tmp_path / "result.mp4"
    data = payload(3 * MiB + 7)
    source.write_bytes(data)
    key = new_object_key("result", ".mp4")
    stored = await storage.put_file(key, source, content_type="video/mp4")
    assert (stored.size, stored.sha256) == (len(data), hashlib.sha256(data).hexdigest())
    assert await read_all(storage, key) == data


BAD_KEYS = [
    "",
    "../etc/passwd",
    "upload/../../etc/passwd",
    "/etc/passwd",
    "upload\\x.mp4",
    "upload/./x.mp4",
    "upload//x.mp4",
    "upload/x.mp4/",
    ".hidden",
    "upload/.x.mp4.abc.part",
    "upload/x y.mp4",
    "upload/x%2e.mp4",
    "upload/é.mp4",
    "upload/x\x00.mp4",
    "a" * 600,
]


@pytest.mark.parametrize("key", BAD_KEYS)
async def test_bad_keys_rejected(storage: Storage, key: str) -> None:
    with pytest.raises(ValueError):
        await storage.put_stream(key, chunked(b"x"), content_type="video/mp4")
    with pytest.raises(ValueError):
        await read_all(storage, key)
    with pytest.raises(ValueError):
        await storage.exists(key)
    with pytest.raises(ValueError):
        await storage.delete(key)
    with pytest.raises(ValueError):
        storage.public_url(key)


# --- keys ----------------------------------------------------------------------------------------


def test_new_object_key_shape_and_uniqueness() -> None:
    keys = {new_object_key("upload", ".mp4") for _ in range(1000)}
    assert len(keys) == 1000
    for key in keys:
        assert re.fullmatch(r"upload/\d{4}/\d{2}/[0-9a-f]{32}\.mp4", key)
        assert validate_key(key) == key
    assert re.fullmatch(r"result/\d{4}/\d{2}/[0-9a-f]{32}", new_object_key("result", ""))


@pytest.mark.parametrize(
    ("kind", "extension"),
    [("", ".mp4"), ("Upload", ".mp4"), ("up/load", ".mp4"), ("..", ".mp4"), ("upload", "mp4"),
     ("upload", ".MP4"), ("upload", "./x"), ("upload", ".mp4/../x")],
)  # fmt: skip
def test_new_object_key_validates(kind: str, extension: str) -> None:
    with pytest.raises(ValueError):
        new_object_key(kind, extension)


def test_build_storage_rejects_bad_settings(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        build_storage(backend="gcs", data_dir=tmp_path, public_base_url=BASE_URL)
    with pytest.raises(ValueError):
        build_storage(backend="s3", data_dir=tmp_path, public_base_url=BASE_URL)
    with pytest.raises(ValueError):
        build_storage(
            backend="s3",
            data_dir=tmp_path,
            public_base_url=BASE_URL,
            s3_bucket="b",
            s3_addressing_style="sideways",
        )


# --- local specifics -----------------------------------------------------------------------------


async def test_local_layout_and_permissions(local_storage: LocalStorage) -> None:
    key = new_object_key("upload", ".mp4")
    await local_storage.put_stream(key, chunked(b"abc"), content_type="video/mp4")
    path = local_storage.path_for(key)
    assert path == local_storage.root / key
    assert path.read_bytes() == b"abc"
    assert path.stat().st_mode & 0o777 == 0o644
    assert files_under(local_storage.root) == [path]  # no temp file left beside it


async def test_local_directory_is_not_an_object(local_storage: LocalStorage) -> None:
    key = new_object_key("upload", ".mp4")
    await local_storage.put_stream(key, chunked(b"abc"), content_type="video/mp4")
    directory = key.rsplit("/", 1)[0]
    assert not await local_storage.exists(directory)
    with pytest.raises(ObjectNotFound):
        await read_all(local_storage, directory)
    await local_storage.delete(directory)  # not an object: nothing happens
    assert await local_storage.exists(key)


# --- the media route -----------------------------------------------------------------------------


def media_client(storage: Storage) -> httpx.AsyncClient:
    app = FastAPI()

    def get_storage(request: Request) -> Storage:
        return storage

    app.include_router(media_router(get_storage))
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE_URL)


@pytest.fixture
async def served(local_storage: LocalStorage) -> tuple[LocalStorage, str, bytes]:
    data = payload(1000, seed=7)
    key = new_object_key("upload", ".mp4")
    await local_storage.put_stream(key, chunked(data), content_type="video/mp4")
    return local_storage, key, data


async def test_serve_full_file(served: tuple[LocalStorage, str, bytes]) -> None:
    storage, key, data = served
    async with media_client(storage) as client:
        response = await client.get(f"/media/{key}")
    assert response.status_code == 200
    assert response.content == data
    assert response.headers["content-type"] == "video/mp4"
    assert response.headers["content-length"] == "1000"
    assert response.headers["accept-ranges"] == "bytes"
    assert response.headers["cache-control"] == "private, max-age=3600"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert "content-disposition" not in response.headers


@pytest.mark.parametrize(
    ("range_header", "start", "end"),
    [("bytes=0-99", 0, 99), ("bytes=-10", 990, 999), ("bytes=100-", 100, 999),
     ("bytes=500-5000", 500, 999), ("bytes=999-999", 999, 999)],
)  # fmt: skip
async def test_serve_range(
    served: tuple[LocalStorage, str, bytes], range_header: str, start: int, end: int
) -> None:
    storage, key, data = served
    async with media_client(storage) as client:
        response = await client.get(f"/media/{key}", headers={"Range": range_header})
    assert response.status_code == 206
    assert response.headers["content-range"] == f"bytes {start}-{end}/1000"
    assert response.headers["content-length"] == str(end - start + 1)
    assert response.headers["content-type"] == "video/mp4"
    assert response.content == data[start : end + 1]


@pytest.mark.parametrize("range_header", ["bytes=1000-", "bytes=5000-6000"])
async def test_serve_unsatisfiable_range(
    served: tuple[LocalStorage, str, bytes], range_header: str
) -> None:
    storage, key, _ = served
    async with media_client(storage) as client:
        response = await client.get(f"/media/{key}", headers={"Range": range_header})
    assert response.status_code == 416
    assert response.headers["content-range"] == "bytes */1000"


async def test_serve_head(served: tuple[LocalStorage, str, bytes]) -> None:
    storage, key, _ = served
    async with media_client(storage) as client:
        response = await client.head(f"/media/{key}")
        ranged = await client.head(f"/media/{key}", headers={"Range": "bytes=0-9"})
    assert response.status_code == 200
    assert response.content == b""
    assert response.headers["content-length"] == "1000"
    assert response.headers["content-type"] == "video/mp4"
    assert response.headers["accept-ranges"] == "bytes"
    assert ranged.status_code == 206
    assert ranged.headers["content-range"] == "bytes 0-9/1000"


@pytest.mark.parametrize(
    ("extension", "content_type"),
    [(".jpg", "image/jpeg"), (".jpeg", "image/jpeg"), (".png", "image/png"),
     (".webp", "image/webp"), (".mp4", "video/mp4"), (".mov", "video/quicktime"),
     (".avi", "video/x-msvideo"), (".webm", "video/webm"), (".bin", "application/octet-stream"),
     ("", "application/octet-stream"), (".html", "application/octet-stream")],
)  # fmt: skip
async def test_serve_content_types(
    local_storage: LocalStorage, extension: str, content_type: str
) -> None:
    key = new_object_key("upload", extension)
    await local_storage.put_stream(key, chunked(b"<html>hi</html>"), content_type="x/y")
    async with media_client(local_storage) as client:
        response = await client.get(f"/media/{key}")
    assert response.status_code == 200
    assert response.headers["content-type"] == content_type


TRAVERSALS = [
    "/media/..%2F..%2F..%2Fetc%2Fpasswd",
    "/media/upload%2F..%2F..%2Fsecret.txt",
    "/media/%2e%2e/secret.txt",
    "/media/%2E%2E%2Fsecret.txt",
    "/media/..%5Csecret.txt",
    "/media/%2Fetc%2Fpasswd",
    "/media//etc/passwd",
    "/media/upload/%2e%2e/%2e%2e/secret.txt",
    "/media/..%252F..%252Fsecret.txt",
    "/media/upload%00.mp4",
    "/media/.upload.mp4.abc.part",
]


@pytest.mark.parametrize("path", TRAVERSALS)
async def test_serve_rejects_traversal(local_storage: LocalStorage, path: str) -> None:
    # A file just outside the storage root that a traversal would reach.
    (local_storage.root.parent / "secret.txt").write_text("secret")
    local_storage.root.mkdir(parents=True, exist_ok=True)
    (local_storage.root / ".upload.mp4.abc.part").write_text("partial")
    async with media_client(local_storage) as client:
        response = await client.get(path)
    assert response.status_code == 404
    assert "secret" not in response.text
    assert response.json() == {"detail": "Not found"}


@pytest.mark.parametrize(
    "path", ["/media/upload/2025/01/" + "0" * 32 + ".mp4", "/media/upload", "/media/upload/2025"]
)
async def test_serve_missing(local_storage: LocalStorage, path: str) -> None:
    (local_storage.root / "upload" / "2025").mkdir(parents=True)
    async with media_client(local_storage) as client:
        response = await client.get(path)
        head = await client.head(path)
    assert response.status_code == 404
    assert response.json() == {"detail": "Not found"}
    assert head.status_code == 404


async def test_serve_s3_redirects_to_presigned_url(s3_storage: S3Storage) -> None:
    data = payload(4321, seed=3)
    key = new_object_key("result", ".mp4")
    await s3_storage.put_stream(key, chunked(data), content_type="video/mp4")
    async with media_client(s3_storage) as client:
        response = await client.get(f"/media/{key}")
        missing = await client.get(f"/media/{new_object_key('result', '.mp4')}")
        bad = await client.get("/media/..%2Fx.mp4")
    assert response.status_code == 307
    location = response.headers["location"]
    endpoint = s3_storage.client.meta.endpoint_url
    assert location.startswith(f"{endpoint}/{BUCKET}/{key}?")
    assert "X-Amz-Expires=300" in location
    assert response.headers["cache-control"] == "no-store"
    async with httpx.AsyncClient() as outside:
        fetched = await outside.get(location)
    assert fetched.status_code == 200
    assert fetched.content == data
    assert missing.status_code == 404
    assert missing.json() == {"detail": "Not found"}
    assert bad.status_code == 404


async def test_presigned_url_with_filename(s3_storage: S3Storage) -> None:
    key = new_object_key("result", ".mp4")
    await s3_storage.put_stream(key, chunked(b"video"), content_type="video/mp4")
    url = s3_storage.presigned_get_url(key, filename="my video.mp4")
    async with httpx.AsyncClient() as outside:
        fetched = await outside.get(url)
    assert fetched.content == b"video"
    assert fetched.headers["content-disposition"] == 'attachment; filename="my video.mp4"'


@pytest.mark.parametrize(
    ("filename", "expected"),
    [("a.mp4", 'attachment; filename="a.mp4"'),
     ('my "v".mp4', "attachment; filename=\"my v.mp4\"; filename*=UTF-8''my%20%22v%22.mp4"),
     ("视频.mp4", "attachment; filename=\".mp4\"; filename*=UTF-8''%E8%A7%86%E9%A2%91.mp4"),
     ("\r\n", "attachment; filename=\"download\"; filename*=UTF-8''%0D%0A")],
)  # fmt: skip
def test_attachment_disposition(filename: str, expected: str) -> None:
    assert attachment_disposition(filename) == expected


async def test_cancelled_upload_leaves_nothing(storage: Storage) -> None:
    """A request cancelled mid-upload (client gone, server shutting down) leaves nothing behind."""
    key = new_object_key("upload", ".mp4")
    stalled = asyncio.Event()

    async def stalls() -> AsyncIterator[bytes]:
        async for chunk in generated(9 * MiB):  # past one part on S3
            yield chunk
        stalled.set()
        await asyncio.Event().wait()
        yield b"never"

    task = asyncio.create_task(storage.put_stream(key, stalls(), content_type="video/mp4"))
    await asyncio.wait_for(stalled.wait(), 30)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert leftovers(storage, key) == []


async def test_adopt_file_takes_the_file_over(storage: Storage, tmp_path: Path) -> None:
    data = payload(300_000, seed=7)
    source = tmp_path / "received.tmp"
    source.write_bytes(data)
    key = new_object_key("uploads", ".mp4")
    digest = hashlib.sha256(data).hexdigest()
    stored = await storage.adopt_file(key, source, content_type="video/mp4", sha256=digest)
    assert (stored.key, stored.size, stored.sha256) == (key, len(data), digest)
    assert not source.exists()  # moved (local) or uploaded and removed (s3)
    assert await read_all(storage, key) == data


# --- listing, and the storage report and gc ------------------------------------------------------


async def test_list_keys_lists_a_prefix_with_sizes(storage: Storage) -> None:
    prefix = f"uploads/{secrets.token_hex(4)}/"
    sizes = {f"{prefix}a.png": 3, f"{prefix}b/c.mp4": 1000, f"{prefix}d.webp": 0}
    for key, size in sizes.items():
        await storage.put_stream(key, chunked(payload(size)), content_type="image/png")
    await storage.put_stream(f"results/{secrets.token_hex(4)}.mp4", chunked(b"x"), content_type="v")
    listed = [o async for o in storage.list_keys(prefix)]
    assert {o.key: o.size for o in listed} == sizes
    now = datetime.now(UTC)
    assert all(
        now - timedelta(minutes=5) < o.modified <= now + timedelta(seconds=5) for o in listed
    )
    assert [o async for o in storage.list_keys(f"{prefix}nothing/")] == []


async def test_storage_gc_removes_orphans_and_marks_missing_objects(
    storage: Storage, rollback_db: Database, tmp_path: Path
) -> None:
    """Rows live in a rolled-back transaction: every other test's rows (whose objects are not in
    this storage) are marked missing in it too, and that goes with the rollback."""
    user_id = uuid.uuid4()
    kept, missing, leftover, orphan = (new_object_key("uploads", ".png") for _ in range(4))
    missing_result = new_object_key("results", ".mp4")
    other = f"incoming/{secrets.token_hex(8)}.bin"
    for key in (kept, leftover, orphan, other):
        await storage.put_stream(key, chunked(payload(10)), content_type="image/png")
    async with rollback_db.transaction() as s:
        s.add(User(id=user_id, username="stores a lot"))
        await s.flush()
        for key, expired in ((kept, None), (missing, None), (leftover, datetime.now(UTC))):
            s.add(_upload_row(user_id, key, size=10**12, expired_at=expired))
        s.add(_result_task(user_id, missing_result))
    render_dir = tmp_path / "emulators" / "fal" / "results"
    render_dir.mkdir(parents=True)
    old_render, new_render = render_dir / "old.mp4", render_dir / "new.mp4"
    for render in (old_render, new_render):
        render.write_bytes(b"render")
    eight_days_ago = (datetime.now(UTC) - timedelta(days=8)).timestamp()
    os.utime(old_render, (eight_days_ago, eight_days_ago))

    # Fresh objects without a row may be about to get one: not orphans yet.
    fresh = await inventory.inspect(rollback_db, storage, tmp_path)
    uploads = fresh.kinds[0]
    assert uploads.kind == "uploads"
    assert {orphan, leftover} & {o.key for o in uploads.orphans} == set()
    assert uploads.young_orphans >= 2
    # A day and more later they are.
    report = await inventory.inspect(
        rollback_db, storage, tmp_path, now=datetime.now(UTC) + timedelta(days=2)
    )
    uploads, results = report.kinds
    assert {orphan, leftover} <= {o.key for o in uploads.orphans}
    assert kept not in {o.key for o in uploads.orphans}
    assert missing in uploads.missing and kept not in uploads.missing
    assert missing_result in results.missing
    assert report.other.count >= 1
    assert (report.emulator_renders.count, report.old_emulator_renders) == (2, [old_render])
    assert report.top_users[0] == (user_id, "stores a lot", 2 * 10**12 + 10)  # + the result

    done = await inventory.collect(rollback_db, storage, report)

    assert done.objects_deleted >= 2 and done.renders_deleted == 1
    assert not await storage.exists(orphan) and not await storage.exists(leftover)
    assert await storage.exists(kept) and await storage.exists(other)
    assert not old_render.exists() and new_render.exists()
    async with rollback_db.session() as s:
        rows = await s.execute(
            select(Upload.storage_key, Upload.expired_at).where(Upload.user_id == user_id)
        )
        expired = {key: when for key, when in rows}
        result_expired = await s.scalar(
            select(Task.result_expired_at).where(Task.result_key == missing_result)
        )
    assert expired[kept] is None and expired[missing] is not None
    assert result_expired is not None
    again = await inventory.inspect(
        rollback_db, storage, tmp_path, now=datetime.now(UTC) + timedelta(days=2)
    )
    assert missing not in again.kinds[0].missing and orphan not in again.kinds[0].orphans


def _upload_row(user_id: uuid.UUID, key: str, *, size: int, expired_at: datetime | None) -> Upload:
    return Upload(
        user_id=user_id,
        storage_key=key,
        file_type="image",
        content_type="image/png",
        size=size,
        sha256="0" * 64,
        expired_at=expired_at,
    )


def _result_task(user_id: uuid.UUID, result_key: str) -> Task:
    now = datetime.now(UTC)
    return Task(
        user_id=user_id,
        kind="t2v",
        provider="fal",
        model="test-model",
        params={},
        upstream_request={},
        status="SUCCEEDED",
        billing_mode="prepaid",
        unit_price=10,
        credits_estimated=10,
        estimated_seconds=60,
        deadline_at=now,
        completed_at=now - timedelta(days=1),
        result_key=result_key,
        result_size=10,
    )
