"""Direct uploads to the S3 bucket (POST /api/uploads/presign, then .../complete), against a moto
server on loopback: the client POSTs the file to the presigned URL over real HTTP.

moto stores whatever a presigned POST sends: it checks neither the policy's signature nor its
conditions (size range, Content-Type, key). So the policy is checked here as signed (what S3 and
S3-compatibles enforce), and vidgate's own checks on `complete` are tested against the files
a bucket that enforces nothing lets through.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from moto.server import ThreadedMotoServer
from sqlalchemy import func, select, update

from vidgate.app import create_app
from vidgate.config import Settings
from vidgate.db.engine import Database
from vidgate.media.direct import COMPLETE_GRACE
from vidgate.media.jobs import sweep_upload_intents
from vidgate.media.models import Upload, UploadIntent
from vidgate.media.s3 import S3Storage
from vidgate.media.storage import ObjectChanged, new_object_key
from vidgate.runtime import Runtime

from ..fixtures.samples import jpeg_bytes, mp4_bytes, png_bytes
from ..fixtures.tasks import Caller, new_caller

BUCKET = "vidgate-direct"
PRESIGN = "/api/uploads/presign"


@dataclass
class S3App:
    client: httpx.AsyncClient
    runtime: Runtime
    storage: S3Storage


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture(scope="module")
async def s3_app(
    settings: Settings,
    database_url: str,
    moto_endpoint: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[S3App]:
    """The app storing media in a bucket of the moto server."""
    s3_settings = settings.model_copy(
        update={
            "data_dir": tmp_path_factory.mktemp("direct"),
            "storage_backend": "s3",
            "s3_bucket": BUCKET,
            "s3_endpoint_url": moto_endpoint,
            "s3_region": "us-east-1",
            "s3_access_key_id": "test",
            "s3_secret_access_key": "test",
            "s3_addressing_style": "path",
            "max_upload_bytes": 2 * 1024 * 1024,
        }
    )
    app = create_app(s3_settings, database_url)
    async with app.router.lifespan_context(app):
        runtime: Runtime = app.state.runtime
        storage = runtime.storage
        assert isinstance(storage, S3Storage)
        with contextlib.suppress(storage.client.exceptions.BucketAlreadyOwnedByYou):
            storage.client.create_bucket(Bucket=BUCKET)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield S3App(client, runtime, storage)


def _declared(
    filename: str, content: bytes, content_type: str, file_type: str = "image"
) -> dict[str, Any]:
    return {
        "filename": filename,
        "file_type": file_type,
        "size": len(content),
        "content_type": content_type,
    }


async def _presign(app: S3App, caller: Caller, body: dict[str, Any]) -> dict[str, Any]:
    r = await app.client.post(PRESIGN, headers=caller.headers, json=body)
    assert r.status_code == 200, r.text
    answer: dict[str, Any] = r.json()
    return answer


async def _post_to_bucket(
    presigned: dict[str, Any], content: bytes, content_type: str
) -> httpx.Response:
    """What a browser does: a multipart POST of the fields, then the file, to the bucket."""
    async with httpx.AsyncClient(timeout=30) as bucket:
        return await bucket.post(
            presigned["url"],
            data=presigned["fields"],
            files={"file": ("upload", content, content_type)},
        )


async def _complete(app: S3App, caller: Caller, upload_id: str) -> httpx.Response:
    return await app.client.post(f"/api/uploads/{upload_id}/complete", headers=caller.headers)


def _leftovers(app: S3App) -> list[Path]:
    """Temporary files of downloads that were not removed."""
    return list((app.runtime.settings.data_dir / "tmp").glob("direct-*"))


def _key(presigned: dict[str, Any]) -> str:
    key: str = presigned["fields"]["key"]
    return key


async def _rows(db: Database, user_id: uuid.UUID) -> int:
    async with db.session() as s:
        count = await s.scalar(select(func.count()).where(Upload.user_id == user_id))
    return int(count or 0)


async def test_presign_upload_complete_records_the_upload(s3_app: S3App, db: Database) -> None:
    caller = await new_caller(s3_app.client)
    content = png_bytes((48, 36))
    presigned = await _presign(s3_app, caller, _declared("face.png", content, "image/png"))
    assert presigned["url"].startswith(s3_app.runtime.settings.s3_endpoint_url)
    assert datetime.fromisoformat(presigned["expires_at"]) > datetime.now(UTC)

    posted = await _post_to_bucket(presigned, content, "image/png")
    assert posted.status_code == 204, posted.text
    r = await _complete(s3_app, caller, presigned["upload_id"])
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["success"] is True and body["message"] == "File uploaded successfully"
    assert body["file_type"] == "image" and body["content_type"] == "image/png"
    assert body["file_size"] == len(content)
    assert body["sha256"] == hashlib.sha256(content).hexdigest()
    assert (body["width"], body["height"]) == (48, 36)
    assert body["storage_key"].startswith("uploads/") and body["storage_key"].endswith(".png")
    assert body["file_url"] == f"http://test/media/{body['storage_key']}"
    # The recorded object is a copy the client cannot write to; the staging object is gone.
    stored = b"".join([c async for c in s3_app.storage.open(body["storage_key"])])
    assert stored == content
    assert not await s3_app.storage.exists(_key(presigned))
    assert _leftovers(s3_app) == []
    async with db.session() as s:
        row = await s.get(Upload, uuid.UUID(body["upload_id"]))
        intent = await s.get(UploadIntent, uuid.UUID(presigned["upload_id"]))
    assert row is not None and row.user_id == caller.user_id and row.original_filename == "face.png"
    assert row.storage_key == body["storage_key"] and row.size == len(content)
    assert intent is not None and intent.upload_id == row.id and intent.completed_at is not None

    again = await _complete(s3_app, caller, presigned["upload_id"])
    assert again.status_code == 200 and again.json() == body
    assert await _rows(db, caller.user_id) == 1


async def test_video_is_probed(s3_app: S3App) -> None:
    caller = await new_caller(s3_app.client)
    content = mp4_bytes(seconds=1.0)
    presigned = await _presign(
        s3_app, caller, _declared("clip.MP4", content, "video/mp4", file_type="video")
    )
    assert (await _post_to_bucket(presigned, content, "video/mp4")).status_code == 204
    r = await _complete(s3_app, caller, presigned["upload_id"])
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["file_type"] == "video" and body["storage_key"].endswith(".mp4")
    assert (body["width"], body["height"]) == (64, 48)
    assert body["duration_seconds"] == pytest.approx(1.0, abs=0.15)


async def test_policy_fixes_key_size_and_type(s3_app: S3App) -> None:
    """What the bucket is asked to enforce (moto does not: see the module)."""
    caller = await new_caller(s3_app.client)
    content = jpeg_bytes()
    presigned = await _presign(s3_app, caller, _declared("a.jpeg", content, "image/jpeg"))
    fields = presigned["fields"]
    policy = json.loads(base64.b64decode(fields["policy"]))
    conditions = policy["conditions"]
    assert {"key": _key(presigned)} in conditions
    assert {"bucket": BUCKET} in conditions
    assert ["content-length-range", len(content), len(content)] in conditions
    assert {"Content-Type": "image/jpeg"} in conditions
    assert fields["Content-Type"] == "image/jpeg"
    assert fields["x-amz-algorithm"] == "AWS4-HMAC-SHA256" and fields["x-amz-signature"]
    expires = datetime.fromisoformat(policy["expiration"].replace("Z", "+00:00"))
    assert abs(expires - datetime.fromisoformat(presigned["expires_at"])) < timedelta(seconds=2)
    assert _key(presigned).startswith("incoming/") and _key(presigned).endswith(".jpg")


async def test_larger_file_than_declared_is_refused_and_deleted(
    s3_app: S3App, db: Database
) -> None:
    caller = await new_caller(s3_app.client)
    declared = png_bytes()
    sent = png_bytes((64, 64))
    presigned = await _presign(s3_app, caller, _declared("a.png", declared, "image/png"))
    await _post_to_bucket(presigned, sent, "image/png")
    assert await s3_app.storage.exists(_key(presigned))  # moto let it through
    r = await _complete(s3_app, caller, presigned["upload_id"])
    assert r.status_code == 400
    assert r.json() == {
        "detail": f"The uploaded file is {len(sent)} bytes; {len(declared)} were declared"
    }
    assert not await s3_app.storage.exists(_key(presigned))
    assert await _rows(db, caller.user_id) == 0
    # Nothing is left to complete until a file is posted again.
    retry = await _complete(s3_app, caller, presigned["upload_id"])
    assert retry.status_code == 409
    assert retry.json() == {"detail": "The file has not been uploaded to storage yet"}


async def test_other_type_than_declared_is_refused_and_deleted(s3_app: S3App, db: Database) -> None:
    """A JPEG posted where a PNG was declared (and stored as image/png by a lax bucket)."""
    caller = await new_caller(s3_app.client)
    content = jpeg_bytes()
    presigned = await _presign(s3_app, caller, _declared("a.png", content, "image/png"))
    await _post_to_bucket(presigned, content, "image/jpeg")
    r = await _complete(s3_app, caller, presigned["upload_id"])
    assert r.status_code == 400
    assert r.json() == {"detail": "The file looks like image/jpeg; it was declared image/png"}
    assert not await s3_app.storage.exists(_key(presigned))
    assert await _rows(db, caller.user_id) == 0


async def test_fake_file_is_refused_as_by_the_plain_upload(s3_app: S3App, db: Database) -> None:
    caller = await new_caller(s3_app.client)
    content = b"MZ\x90\x00" + b"\x00" * 2000  # an executable named like a video
    presigned = await _presign(
        s3_app, caller, _declared("clip.mp4", content, "video/mp4", file_type="video")
    )
    assert (await _post_to_bucket(presigned, content, "video/mp4")).status_code == 204
    r = await _complete(s3_app, caller, presigned["upload_id"])
    assert r.status_code == 400
    plain = await s3_app.client.post(
        "/api/videos/upload",
        headers=caller.headers,
        files={"file": ("clip.mp4", content)},
        data={"file_type": "video"},
    )
    assert plain.status_code == 400 and r.json() == plain.json()
    assert not await s3_app.storage.exists(_key(presigned))
    assert await _rows(db, caller.user_id) == 0
    assert _leftovers(s3_app) == []


async def test_truncated_video_fails_the_probe_and_is_deleted(s3_app: S3App, db: Database) -> None:
    """Right magic bytes, unreadable file: refused by the probe, after the sniff passed."""
    caller = await new_caller(s3_app.client)
    content = mp4_bytes(seconds=1.0)[:600]
    presigned = await _presign(
        s3_app, caller, _declared("clip.mp4", content, "video/mp4", file_type="video")
    )
    await _post_to_bucket(presigned, content, "video/mp4")
    r = await _complete(s3_app, caller, presigned["upload_id"])
    assert r.status_code == 400, r.text
    assert "video" in r.json()["detail"]
    assert not await s3_app.storage.exists(_key(presigned))
    assert await _rows(db, caller.user_id) == 0


async def test_someone_elses_upload_is_not_found(s3_app: S3App, db: Database) -> None:
    owner, other = await new_caller(s3_app.client), await new_caller(s3_app.client)
    content = png_bytes()
    presigned = await _presign(s3_app, owner, _declared("a.png", content, "image/png"))
    await _post_to_bucket(presigned, content, "image/png")
    for upload_id in (presigned["upload_id"], str(uuid.uuid4())):
        r = await _complete(s3_app, other, upload_id)
        assert r.status_code == 404
        assert r.json() == {"detail": "Upload not found"}
    assert await s3_app.storage.exists(_key(presigned))
    assert await _rows(db, other.user_id) == 0 and await _rows(db, owner.user_id) == 0
    assert (await _complete(s3_app, owner, presigned["upload_id"])).status_code == 200


async def test_completing_before_uploading_changes_nothing(s3_app: S3App, db: Database) -> None:
    caller = await new_caller(s3_app.client)
    content = png_bytes()
    presigned = await _presign(s3_app, caller, _declared("a.png", content, "image/png"))
    r = await _complete(s3_app, caller, presigned["upload_id"])
    assert r.status_code == 409
    await _post_to_bucket(presigned, content, "image/png")
    assert (await _complete(s3_app, caller, presigned["upload_id"])).status_code == 200
    assert await _rows(db, caller.user_id) == 1


@pytest.mark.parametrize(
    ("body", "status", "detail"),
    [
        (
            {"filename": "a.gif", "file_type": "image", "size": 10, "content_type": "image/png"},
            400,
            "Unsupported image extension '.gif'; allowed: .jpeg, .jpg, .png, .webp",
        ),
        (
            {"filename": "a.png", "file_type": "audio", "size": 10, "content_type": "image/png"},
            422,
            "file_type must be 'image' or 'video'",
        ),
        (
            {"filename": "a.png", "file_type": "image", "size": 10, "content_type": "text/html"},
            400,
            "Unsupported image content type 'text/html'; allowed: image/jpeg, image/png, "
            "image/webp",
        ),
        (
            {"filename": "a.png", "file_type": "image", "size": 0, "content_type": "image/png"},
            400,
            "The file is empty",
        ),
        (
            {
                "filename": "a.mp4",
                "file_type": "video",
                "size": 2 * 1024 * 1024 + 1,
                "content_type": "video/mp4",
            },
            413,
            "File too large: the limit is 2 MB",
        ),
    ],
)
async def test_presign_refuses_what_the_upload_refuses(
    s3_app: S3App, db: Database, body: dict[str, Any], status: int, detail: str
) -> None:
    caller = await new_caller(s3_app.client)
    r = await s3_app.client.post(PRESIGN, headers=caller.headers, json=body)
    assert r.status_code == status
    assert r.json() == {"detail": detail}
    async with db.session() as s:
        intents = await s.scalar(select(func.count()).where(UploadIntent.user_id == caller.user_id))
    assert intents == 0


async def test_presign_needs_the_api_key(s3_app: S3App) -> None:
    caller = await new_caller(s3_app.client)
    body = _declared("a.png", png_bytes(), "image/png")
    bearer_only = {"Authorization": caller.headers["Authorization"]}
    r = await s3_app.client.post(PRESIGN, headers=bearer_only, json=body)
    assert r.status_code in (401, 403)


async def test_sweeper_removes_expired_intents_and_their_objects(
    s3_app: S3App, db: Database
) -> None:
    caller = await new_caller(s3_app.client)
    content = png_bytes()
    abandoned = await _presign(s3_app, caller, _declared("a.png", content, "image/png"))
    await _post_to_bucket(abandoned, content, "image/png")
    done = await _presign(s3_app, caller, _declared("b.png", content, "image/png"))
    await _post_to_bucket(done, content, "image/png")
    completed = (await _complete(s3_app, caller, done["upload_id"])).json()
    fresh = await _presign(s3_app, caller, _declared("c.png", content, "image/png"))
    await _post_to_bucket(fresh, content, "image/png")

    past = datetime.now(UTC) - COMPLETE_GRACE - timedelta(minutes=1)
    ids = [uuid.UUID(p["upload_id"]) for p in (abandoned, done)]
    async with db.transaction() as s:
        await s.execute(
            update(UploadIntent).where(UploadIntent.id.in_(ids)).values(expires_at=past)
        )
    late = await _complete(s3_app, caller, abandoned["upload_id"])
    assert late.status_code == 404  # past its grace, even before the sweeper ran
    context = SimpleNamespace(additional_context={"runtime": s3_app.runtime})
    assert await sweep_upload_intents(context, 0) >= 2  # type: ignore[arg-type]

    assert not await s3_app.storage.exists(_key(abandoned))
    assert await s3_app.storage.exists(_key(fresh))
    assert await s3_app.storage.exists(completed["storage_key"])
    async with db.session() as s:
        left = set(
            await s.scalars(select(UploadIntent.id).where(UploadIntent.user_id == caller.user_id))
        )
    assert left == {uuid.UUID(fresh["upload_id"])}
    assert await _rows(db, caller.user_id) == 1
    gone = await _complete(s3_app, caller, abandoned["upload_id"])
    assert gone.status_code == 404


async def test_local_storage_answers_409(client: httpx.AsyncClient, runtime: Runtime) -> None:
    assert runtime.storage.name == "local"
    caller = await new_caller(client)
    body = _declared("a.png", png_bytes(), "image/png")
    r = await client.post(PRESIGN, headers=caller.headers, json=body)
    assert r.status_code == 409
    assert r.json() == {"detail": "Direct uploads need S3 storage; use POST /api/videos/upload"}
    r = await client.post(f"/api/uploads/{uuid.uuid4()}/complete", headers=caller.headers)
    assert r.status_code == 404


async def test_reads_are_pinned_to_the_checked_version(s3_app: S3App, tmp_path: Path) -> None:
    storage = s3_app.storage
    key = new_object_key("incoming", ".png")
    await storage.put_stream(key, _once(png_bytes()), content_type="image/png")
    found = await storage.stat(key)
    assert found is not None and found[0] == len(png_bytes())
    await storage.put_stream(key, _once(jpeg_bytes()), content_type="image/png")
    with pytest.raises(ObjectChanged):
        await storage.read_head(key, 16, etag=found[1])
    with pytest.raises(ObjectChanged):
        await storage.download(key, tmp_path / "copy", etag=found[1], max_bytes=10**6)
    assert await storage.stat(new_object_key("incoming", ".png")) is None


async def test_file_replaced_while_checked_is_not_recorded(
    s3_app: S3App, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The client posts another file to its key between the sniff and the download."""
    caller = await new_caller(s3_app.client)
    content = png_bytes()
    presigned = await _presign(s3_app, caller, _declared("a.png", content, "image/png"))
    await _post_to_bucket(presigned, content, "image/png")
    download = s3_app.storage.download

    async def replaced_first(key: str, path: Path, *, etag: str, max_bytes: int) -> str:
        await _post_to_bucket(presigned, png_bytes((8, 8)), "image/png")
        return await download(key, path, etag=etag, max_bytes=max_bytes)

    monkeypatch.setattr(s3_app.storage, "download", replaced_first)
    r = await _complete(s3_app, caller, presigned["upload_id"])
    assert r.status_code == 409
    assert r.json() == {
        "detail": "The file in storage changed while it was being checked; complete the upload "
        "again"
    }
    assert await _rows(db, caller.user_id) == 0
    assert _leftovers(s3_app) == []
    monkeypatch.undo()
    # The replacement is checked like any file (here: smaller than declared, so refused).
    again = await _complete(s3_app, caller, presigned["upload_id"])
    assert again.status_code == 400 and "bytes" in again.json()["detail"]


async def _once(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def test_concurrent_completes_record_one_upload(
    s3_app: S3App, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two completes check the same file; the second reads on only after the first recorded it
    and removed the staging object, and answers the same upload."""
    caller = await new_caller(s3_app.client)
    content = mp4_bytes(seconds=0.5)
    presigned = await _presign(
        s3_app, caller, _declared("clip.mp4", content, "video/mp4", file_type="video")
    )
    await _post_to_bucket(presigned, content, "video/mp4")
    download = s3_app.storage.download
    both_in, first_done = asyncio.Event(), asyncio.Event()
    arrivals = 0

    async def one_after_the_other(key: str, path: Path, *, etag: str, max_bytes: int) -> str:
        nonlocal arrivals
        arrivals += 1
        if arrivals == 1:
            await both_in.wait()
        else:
            both_in.set()
            await first_done.wait()
        return await download(key, path, etag=etag, max_bytes=max_bytes)

    monkeypatch.setattr(s3_app.storage, "download", one_after_the_other)
    tasks = [
        asyncio.create_task(_complete(s3_app, caller, presigned["upload_id"])) for _ in range(2)
    ]
    done, _ = await asyncio.wait(tasks, timeout=60, return_when=asyncio.FIRST_COMPLETED)
    assert len(done) == 1
    first_done.set()
    answers = [await task for task in tasks]
    assert [r.status_code for r in answers] == [200, 200], [r.text for r in answers]
    assert answers[0].json() == answers[1].json()
    assert await _rows(db, caller.user_id) == 1
    listed = s3_app.storage.client.list_objects_v2(Bucket=BUCKET, Prefix="uploads/")
    copies = [o["Key"] for o in listed.get("Contents", []) if o["Size"] == len(content)]
    assert copies == [answers[0].json()["storage_key"]]  # the loser's copy was never made
    assert _leftovers(s3_app) == []
