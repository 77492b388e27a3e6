"""The per-user storage quota, over real HTTP: an upload that would pass it is 413 with nothing
stored, and two uploads at once cannot both squeeze under it."""

from __future__ import annotations

import asyncio
import base64
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from vidgate.app import create_app
from vidgate.config import Settings
from vidgate.db.engine import Database
from vidgate.media import quota
from vidgate.media.models import TusUpload, Upload

from ..fixtures.app import DEV_CLIENT_KEY
from ..fixtures.loopback import serve_on_loopback
from ..fixtures.samples import png_bytes
from ..fixtures.signin import sign_in

IMAGE = png_bytes((64, 64))
# Room for exactly two of the images.
QUOTA = 2 * len(IMAGE) + len(IMAGE) // 2


@dataclass
class Served:
    url: str
    db: Database
    media: Path


@pytest.fixture(scope="module")
async def served(
    settings: Settings, database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Served]:
    quota_settings = settings.model_copy(
        update={"data_dir": tmp_path_factory.mktemp("quota"), "storage_quota_bytes": QUOTA}
    )
    app = create_app(quota_settings, database_url)
    async with app.router.lifespan_context(app), serve_on_loopback(app) as url:
        yield Served(url, app.state.runtime.db, quota_settings.data_dir / "media")


async def new_user(http: httpx.AsyncClient) -> tuple[uuid.UUID, dict[str, str]]:
    signed = await sign_in(http)
    headers = {**signed.headers, "X-API-Key": DEV_CLIENT_KEY}
    me = await http.get("/api/auth/me", headers=headers)
    return uuid.UUID(me.json()["id"]), headers


async def post_image(http: httpx.AsyncClient, headers: dict[str, str]) -> httpx.Response:
    return await http.post(
        "/api/videos/upload",
        headers=headers,
        files={"file": ("face.png", IMAGE)},
        data={"file_type": "image"},
    )


async def uploads_of(db: Database, user_id: uuid.UUID) -> int:
    async with db.session() as s:
        count = await s.scalar(select(func.count()).where(Upload.user_id == user_id))
    return int(count or 0)


def files_in(media: Path) -> int:
    return sum(1 for path in media.rglob("*") if path.is_file())


async def test_an_upload_over_the_quota_is_413_and_stores_nothing(served: Served) -> None:
    async with httpx.AsyncClient(base_url=served.url, timeout=30) as http:
        user_id, headers = await new_user(http)
        for _ in range(2):
            assert (await post_image(http, headers)).status_code == 200
        files_before = files_in(served.media)

        refused = await post_image(http, headers)

        assert refused.status_code == 413
        detail = refused.json()["detail"]
        assert detail.startswith("Storage quota of ")
        assert f"{2 * len(IMAGE)} bytes used and this file is {len(IMAGE)} bytes" in detail
        assert await uploads_of(served.db, user_id) == 2
        assert files_in(served.media) == files_before
        # Another account has its own quota.
        _, other = await new_user(http)
        assert (await post_image(http, other)).status_code == 200


async def test_uploads_at_once_cannot_both_fit_the_last_room(
    served: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with httpx.AsyncClient(base_url=served.url, timeout=30) as http:
        user_id, headers = await new_user(http)
        assert (await post_image(http, headers)).status_code == 200
        files_before = files_in(served.media)
        # Each check dwells between reading the sum and its insert: without the quota lock,
        # every upload would read the same sum and fit.
        read_sum = quota.stored_bytes

        async def slow_sum(session: AsyncSession, user: uuid.UUID) -> int:
            used = await read_sum(session, user)
            await asyncio.sleep(0.2)
            return used

        monkeypatch.setattr(quota, "stored_bytes", slow_sum)

        answers = await asyncio.gather(*(post_image(http, headers) for _ in range(4)))

        assert sorted(a.status_code for a in answers) == [200, 413, 413, 413]
        assert await uploads_of(served.db, user_id) == 2
        async with served.db.session() as s:
            assert await read_sum(s, user_id) == 2 * len(IMAGE) <= QUOTA
        assert files_in(served.media) == files_before + 1


async def test_a_resumable_upload_past_the_quota_is_refused_before_any_byte(
    served: Served,
) -> None:
    """A tus creation declares its length: one that cannot fit is 413 at once, and nothing is
    recorded for it."""
    async with httpx.AsyncClient(base_url=served.url, timeout=30) as http:
        user_id, headers = await new_user(http)
        for _ in range(2):
            assert (await post_image(http, headers)).status_code == 200
        metadata = ",".join(
            f"{key} {base64.b64encode(value.encode()).decode()}"
            for key, value in {"filename": "face.png", "file_type": "image"}.items()
        )
        refused = await http.post(
            "/api/uploads/tus/",
            headers={
                **headers,
                "Tus-Resumable": "1.0.0",
                "Upload-Length": str(len(IMAGE)),
                "Upload-Metadata": metadata,
            },
        )
        assert refused.status_code == 413, refused.text
        assert refused.json()["detail"].startswith("Storage quota of ")
        async with served.db.session() as s:
            pending = await s.scalar(select(func.count()).where(TusUpload.user_id == user_id))
        assert pending == 0
