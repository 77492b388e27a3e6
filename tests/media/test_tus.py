"""Resumable uploads (tus 1.0) at /api/uploads/tus/, over real HTTP against the live app: the
protocol's flows, its refusals, and the end in the same `uploads` row and body as the plain
upload."""

from __future__ import annotations

import base64
import hashlib
import uuid
from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy import select, update

from vidgate.media.models import TusUpload, Upload
from vidgate.media.tus import flows as tus

from ..fixtures.app import Live
from ..fixtures.samples import mp4_bytes, png_bytes
from ..fixtures.tasks import Caller, new_caller

TUS = "/api/uploads/tus/"
RESUMABLE = {"Tus-Resumable": "1.0.0"}
OCTETS = {**RESUMABLE, "Content-Type": "application/offset+octet-stream"}


def _metadata(**values: str) -> str:
    return ",".join(f"{k} {base64.b64encode(v.encode()).decode()}" for k, v in values.items())


async def _create(
    http: httpx.AsyncClient,
    caller: Caller,
    length: int,
    filename: str = "clip.mp4",
    file_type: str = "video",
    **extra: str,
) -> httpx.Response:
    headers = {
        **caller.headers,
        **RESUMABLE,
        "Upload-Length": str(length),
        "Upload-Metadata": _metadata(filename=filename, filetype=file_type),
        **extra,
    }
    return await http.post(TUS, headers=headers)


async def _patch(
    http: httpx.AsyncClient, caller: Caller, location: str, offset: int, data: bytes, **extra: str
) -> httpx.Response:
    headers = {**caller.headers, **OCTETS, "Upload-Offset": str(offset), **extra}
    return await http.patch(location, headers=headers, content=data)


async def _head(http: httpx.AsyncClient, caller: Caller, location: str) -> httpx.Response:
    return await http.head(location, headers={**caller.headers, **RESUMABLE})


def _checksum(data: bytes) -> str:
    return "sha256 " + base64.b64encode(hashlib.sha256(data).digest()).decode()


async def _row(live: Live, location: str) -> TusUpload | None:
    async with live.runtime.db.session() as session:
        return await session.get(TusUpload, uuid.UUID(location.rsplit("/", 1)[1]))


async def test_options_says_what_the_server_supports(http: httpx.AsyncClient, live: Live) -> None:
    r = await http.options(TUS)
    assert r.status_code == 204
    assert r.headers["Tus-Version"] == "1.0.0"
    assert set(r.headers["Tus-Extension"].split(",")) == {
        "creation",
        "creation-with-upload",
        "termination",
        "expiration",
        "checksum",
    }
    assert r.headers["Tus-Max-Size"] == str(live.settings.max_upload_bytes)
    assert r.headers["Tus-Checksum-Algorithm"] == "sha256"


async def test_chunks_resume_after_head_and_end_in_the_plain_uploads_row_and_body(
    http: httpx.AsyncClient, live: Live
) -> None:
    caller = await new_caller(http)
    content = mp4_bytes(seconds=1.0)
    created = await _create(http, caller, len(content), "dance.mp4")
    assert created.status_code == 201, created.text
    location = created.headers["Location"]
    assert location.startswith(f"{live.url}{TUS}")
    assert created.headers["Upload-Offset"] == "0" and "Upload-Expires" in created.headers
    assert (live.settings.data_dir / "tmp" / "tus" / location.rsplit("/", 1)[1]).exists()

    third = len(content) // 3
    first = await _patch(http, caller, location, 0, content[:third])
    assert first.status_code == 204, first.text
    assert first.headers["Upload-Offset"] == str(third)

    # A client that lost track asks where the upload stands, then goes on from there.
    head = await _head(http, caller, location)
    assert head.status_code == 200
    assert head.headers["Upload-Offset"] == str(third)
    assert head.headers["Upload-Length"] == str(len(content))
    assert head.headers["Cache-Control"] == "no-store"
    second = await _patch(
        http, caller, location, third, content[third : 2 * third], **{"Upload-Checksum": ""}
    )
    assert second.status_code == 400, second.text  # an empty checksum header is malformed
    second = await _patch(http, caller, location, third, content[third : 2 * third])
    assert second.status_code == 204
    last = await _patch(
        http,
        caller,
        location,
        2 * third,
        content[2 * third :],
        **{"Upload-Checksum": _checksum(content[2 * third :])},
    )
    assert last.status_code == 200, last.text
    assert last.headers["Upload-Offset"] == str(len(content))
    body = last.json()

    plain = await http.post(
        "/api/videos/upload",
        headers=caller.headers,
        files={"file": ("dance.mp4", content)},
        data={"file_type": "video"},
    )
    assert plain.status_code == 200, plain.text
    expected = plain.json()
    assert body.keys() == expected.keys()
    differs = {k for k in body if body[k] != expected[k]}
    assert differs == {"file_url", "storage_key", "upload_id"}
    assert body["sha256"] == hashlib.sha256(content).hexdigest()

    async with live.runtime.db.session() as session:
        row = await session.get(Upload, uuid.UUID(body["upload_id"]))
        plain_row = await session.get(Upload, uuid.UUID(expected["upload_id"]))
    assert row is not None and plain_row is not None
    assert row.user_id == caller.user_id and row.original_filename == "dance.mp4"
    for column in ("file_type", "content_type", "size", "sha256", "width", "height", "codec"):
        assert getattr(row, column) == getattr(plain_row, column), column
    stored = live.settings.data_dir / "media" / body["storage_key"]
    assert stored.read_bytes() == content
    assert not (live.settings.data_dir / "tmp" / "tus" / location.rsplit("/", 1)[1]).exists()

    again = await http.get(location, headers=caller.headers)
    assert again.status_code == 200 and again.json() == body
    more = await _patch(http, caller, location, len(content), b"x")
    assert more.status_code == 409, more.text


async def test_creation_with_upload_takes_the_whole_file_in_one_request(
    http: httpx.AsyncClient, live: Live
) -> None:
    caller = await new_caller(http)
    content = png_bytes()
    headers = {
        **caller.headers,
        **OCTETS,
        "Upload-Length": str(len(content)),
        "Upload-Metadata": _metadata(filename="face.png", file_type="image"),
    }
    r = await http.post(TUS, headers=headers, content=content)
    assert r.status_code == 201, r.text
    assert r.json()["file_type"] == "image" and r.json()["width"] == 32
    assert r.json()["sha256"] == hashlib.sha256(content).hexdigest()


async def test_wrong_offset_is_a_conflict_and_changes_nothing(
    http: httpx.AsyncClient, live: Live
) -> None:
    caller = await new_caller(http)
    location = (await _create(http, caller, 100)).headers["Location"]
    assert (await _patch(http, caller, location, 0, b"a" * 10)).status_code == 204
    r = await _patch(http, caller, location, 5, b"b" * 10)
    assert r.status_code == 409
    assert r.json() == {"detail": "Upload-Offset is 5 but the upload is at 10: resume there"}
    row = await _row(live, location)
    assert row is not None and row.upload_offset == 10 and row.claimed_by is None


async def test_checksum_mismatch_discards_the_chunk(http: httpx.AsyncClient, live: Live) -> None:
    caller = await new_caller(http)
    location = (await _create(http, caller, 100)).headers["Location"]
    assert (await _patch(http, caller, location, 0, b"a" * 10)).status_code == 204
    r = await _patch(
        http, caller, location, 10, b"b" * 20, **{"Upload-Checksum": _checksum(b"c" * 20)}
    )
    assert r.status_code == 460
    assert "Checksum mismatch" in r.json()["detail"]
    assert (await _head(http, caller, location)).headers["Upload-Offset"] == "10"
    path = live.settings.data_dir / "tmp" / "tus" / location.rsplit("/", 1)[1]
    assert path.read_bytes() == b"a" * 10
    bad = await _patch(http, caller, location, 10, b"b", **{"Upload-Checksum": "md5 AAAA"})
    assert bad.status_code == 400 and "sha256" in bad.json()["detail"]


async def test_termination_removes_the_upload_and_its_bytes(
    http: httpx.AsyncClient, live: Live
) -> None:
    caller = await new_caller(http)
    location = (await _create(http, caller, 100)).headers["Location"]
    assert (await _patch(http, caller, location, 0, b"a" * 10)).status_code == 204
    r = await http.delete(location, headers={**caller.headers, **RESUMABLE})
    assert r.status_code == 204
    assert await _row(live, location) is None
    assert not (live.settings.data_dir / "tmp" / "tus" / location.rsplit("/", 1)[1]).exists()
    assert (await _head(http, caller, location)).status_code == 404


async def test_expired_uploads_are_refused_then_removed_by_the_periodic_job(
    http: httpx.AsyncClient, live: Live
) -> None:
    caller = await new_caller(http)
    location = (await _create(http, caller, 100)).headers["Location"]
    kept = (await _create(http, caller, 100)).headers["Location"]
    assert (await _patch(http, caller, location, 0, b"a" * 10)).status_code == 204
    upload_id = uuid.UUID(location.rsplit("/", 1)[1])
    async with live.runtime.db.transaction() as session:
        await session.execute(
            update(TusUpload)
            .where(TusUpload.id == upload_id)
            .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
    assert (await _head(http, caller, location)).status_code == 404
    assert (await _patch(http, caller, location, 10, b"a")).status_code == 404

    assert await tus.purge_expired(live.runtime) >= 1
    assert await _row(live, location) is None
    assert not tus.partial_path(live.settings, upload_id).exists()
    assert (await _head(http, caller, kept)).status_code == 200


async def test_someone_elses_upload_is_not_found(http: httpx.AsyncClient, live: Live) -> None:
    owner, other = await new_caller(http), await new_caller(http)
    location = (await _create(http, owner, 100)).headers["Location"]
    for response in (
        await _head(http, other, location),
        await _patch(http, other, location, 0, b"a" * 10),
        await http.delete(location, headers={**other.headers, **RESUMABLE}),
        await http.get(location, headers=other.headers),
    ):
        assert response.status_code == 404, response.text
    assert (await _head(http, owner, location)).headers["Upload-Offset"] == "0"
    assert (await http.head(location, headers=RESUMABLE)).status_code == 401


async def test_oversize_and_overlong_bodies_are_refused(
    http: httpx.AsyncClient, live: Live
) -> None:
    caller = await new_caller(http)
    limit = live.settings.max_upload_bytes
    r = await _create(http, caller, limit + 1)
    assert r.status_code == 413
    assert r.json() == {"detail": f"File too large: the limit is {limit // (1024 * 1024)} MB"}
    location = (await _create(http, caller, 10)).headers["Location"]
    over = await _patch(http, caller, location, 0, b"a" * 11)
    assert over.status_code == 413
    assert (await _head(http, caller, location)).headers["Upload-Offset"] == "0"


async def test_hostile_headers_are_clear_4xx(http: httpx.AsyncClient, live: Live) -> None:
    caller = await new_caller(http)
    no_version = await http.post(TUS, headers={**caller.headers, "Upload-Length": "10"})
    assert no_version.status_code == 412 and no_version.headers["Tus-Version"] == "1.0.0"
    for extra, status, detail in [
        ({"Upload-Length": "-1"}, 400, "Upload-Length must be a non-negative integer"),
        ({"Upload-Length": "ten"}, 400, "Upload-Length must be a non-negative integer"),
        ({"Upload-Metadata": "filename not-base64!"}, 400, "not base64-encoded UTF-8"),
        ({"Upload-Metadata": "a b c"}, 400, "malformed or repeated key"),
        ({"Upload-Metadata": "x" * 5000}, 400, "longer than"),
    ]:
        headers = {**caller.headers, **RESUMABLE, "Upload-Length": "10", **extra}
        r = await http.post(TUS, headers=headers)
        assert r.status_code == status, (extra, r.text)
        assert detail in r.json()["detail"], (extra, r.text)
    unknown = await _create(http, caller, 10, "clip.mp4", "audio")
    assert unknown.status_code == 422
    assert unknown.json() == {"detail": "file_type must be 'image' or 'video'"}
    wrong_extension = await _create(http, caller, 10, "clip.gif", "image")
    assert wrong_extension.status_code == 400
    assert "Unsupported image extension" in wrong_extension.json()["detail"]
    location = (await _create(http, caller, 10)).headers["Location"]
    plain_type = await http.patch(
        location,
        headers={**caller.headers, **RESUMABLE, "Upload-Offset": "0"},
        content=b"a",
    )
    assert plain_type.status_code == 415
    no_offset = await http.patch(location, headers={**caller.headers, **OCTETS}, content=b"a")
    assert no_offset.status_code == 400 and "Upload-Offset" in no_offset.json()["detail"]


async def test_a_fake_file_ends_in_the_plain_uploads_400_and_leaves_nothing(
    http: httpx.AsyncClient, live: Live
) -> None:
    caller = await new_caller(http)
    fake = b"just some text, not a video" * 100
    plain = await http.post(
        "/api/videos/upload",
        headers=caller.headers,
        files={"file": ("movie.mp4", fake)},
        data={"file_type": "video"},
    )
    location = (await _create(http, caller, len(fake), "movie.mp4")).headers["Location"]
    r = await _patch(http, caller, location, 0, fake)
    assert plain.status_code == r.status_code == 400
    assert r.json() == plain.json()
    assert await _row(live, location) is None
    async with live.runtime.db.session() as session:
        rows = await session.scalars(select(Upload).where(Upload.user_id == caller.user_id))
    assert list(rows) == []


async def test_a_second_patch_while_one_is_sending_is_refused(
    http: httpx.AsyncClient, live: Live
) -> None:
    caller = await new_caller(http)
    location = (await _create(http, caller, 100)).headers["Location"]
    # Held by a PATCH of another process that is still receiving.
    async with live.runtime.db.transaction() as session:
        await session.execute(
            update(TusUpload)
            .where(TusUpload.id == uuid.UUID(location.rsplit("/", 1)[1]))
            .values(claimed_by=uuid.uuid4(), claimed_at=datetime.now(UTC))
        )
    r = await _patch(http, caller, location, 0, b"a" * 10)
    assert r.status_code == 423, r.text
    assert (await http.delete(location, headers={**caller.headers, **RESUMABLE})).status_code == 423
    # A claim whose process stopped renewing it is taken over.
    async with live.runtime.db.transaction() as session:
        await session.execute(
            update(TusUpload)
            .where(TusUpload.id == uuid.UUID(location.rsplit("/", 1)[1]))
            .values(claimed_at=datetime.now(UTC) - timedelta(minutes=5))
        )
    assert (await _patch(http, caller, location, 0, b"a" * 10)).status_code == 204


async def test_unfinished_uploads_per_user_are_capped(http: httpx.AsyncClient, live: Live) -> None:
    caller = await new_caller(http)
    cap = live.settings.tus_max_unfinished
    for _ in range(cap):
        assert (await _create(http, caller, 10)).status_code == 201
    r = await _create(http, caller, 10)
    assert r.status_code == 409 and f"{cap} unfinished uploads" in r.json()["detail"]
