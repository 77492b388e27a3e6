"""Remote input URLs on a slow host: nobody else waits for them.

A host that sends one byte a second keeps a create busy until the download times out. Those
creates must hold no database connection meanwhile (a small pool would otherwise run dry and
stall every other request), and one account may keep only a couple of them in flight.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from vidgate.app import create_app
from vidgate.config import Settings

from ..fixtures.loopback import serve_on_loopback
from ..fixtures.samples import png_bytes
from ..fixtures.tasks import new_caller, upload


@contextlib.asynccontextmanager
async def dripping_host() -> AsyncIterator[str]:
    """An HTTP server that promises a PNG and sends it one byte a second; its URL."""

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError):
            await reader.readuntil(b"\r\n\r\n")
            writer.write(
                b"HTTP/1.1 200 OK\r\ncontent-type: image/png\r\ncontent-length: 4096\r\n\r\n"
            )
            for _ in range(4096):
                writer.write(b"\x89")
                await writer.drain()
                await asyncio.sleep(1)
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}/photo.png"
    finally:
        server.close()
        # Connections still dripping are abandoned with the server.


@pytest.fixture
async def small_pool_app(
    settings: Settings, database_url: str, tmp_path: Path
) -> AsyncIterator[str]:
    """The app with two connections per pool, served on loopback; its URL."""
    tight = settings.model_copy(
        update={
            "data_dir": tmp_path,
            "db_pool_size": 2,
            "db_max_overflow": 0,
            "db_pool_timeout_seconds": 3.0,
            "remote_media_timeout_seconds": 6.0,
            "remote_fetches_per_user": 2,
        }
    )
    (tmp_path / "tmp").mkdir()
    app = create_app(tight, database_url)
    async with app.router.lifespan_context(app), serve_on_loopback(app) as url:
        tight.public_base_url = url
        yield url


async def test_slow_remote_inputs_hold_no_connection(small_pool_app: str) -> None:
    async with (
        dripping_host() as slow_url,
        httpx.AsyncClient(base_url=small_pool_app, timeout=60) as http,
    ):
        callers = [await new_caller(http) for _ in range(8)]
        bystander = await new_caller(http)
        photos = [await upload(http, c, png_bytes((320, 400)), "a.png", "image") for c in callers]

        async def create(index: int) -> httpx.Response:
            caller = callers[index % len(callers)]
            return await http.post(
                "/api/videos/image-to-video",
                headers=caller.headers,
                json={"prompt": "slow", "image_urls": [photos[index % len(callers)], slow_url]},
            )

        # Two slow creates per account: every pooled connection would be taken several times over.
        creates = [asyncio.create_task(create(i)) for i in range(16)]
        await asyncio.sleep(1.5)  # all of them are downloading by now
        assert not any(c.done() for c in creates), [c.result().text for c in creates if c.done()]

        # Another user is served while every download is still in flight.
        credits = await http.get("/api/users/credits", headers=bystander.headers)
        assert credits.status_code == 200, credits.text
        assert credits.json()["credits"] == 100
        # A third concurrent fetch for the same account is refused at once.
        third = await create(0)
        assert third.status_code == 429, third.text
        assert "at a time" in third.json()["detail"]
        assert int(third.headers["retry-after"]) > 0
        assert not all(c.done() for c in creates)

        answers = await asyncio.gather(*creates)
        for answer in answers:
            assert answer.status_code == 400, answer.text
            assert answer.json()["detail"].startswith("image_urls[1]: could not fetch")
        for caller in callers:
            balance = await http.get("/api/users/credits", headers=caller.headers)
            assert balance.json()["credits"] == 100  # nothing charged for a failed create
