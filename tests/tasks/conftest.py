"""A second vidgate app for task tests, served over real HTTP on loopback with its worker running,
so the adapters, the emulators and media URLs all travel over the network as in production.
It shares the session's database; its emulators run fast and render small videos."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import httpx
import pytest
import uvicorn

from vidgate.app import create_app
from vidgate.config import Settings
from vidgate.deps import Runtime

from ..helpers import DEV_CLIENT_KEY


@dataclass
class Live:
    url: str
    runtime: Runtime
    settings: Settings


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:  # the test runner owns signals
        yield


@pytest.fixture(scope="session")
async def live(
    settings: Settings, database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Live]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    live_settings = settings.model_copy(
        update={
            "data_dir": tmp_path_factory.mktemp("live"),
            "public_base_url": url,
            "dev_client_api_key": DEV_CLIENT_KEY,
            "task_poll_initial_seconds": 0.05,
            "task_poll_max_seconds": 0.3,
            "task_timeout_sora_seconds": 600,
            "emulator_queue_seconds": 0.2,
            "emulator_run_seconds": 0.4,
            "emulator_render_height": 144,
            "emulator_sora_seconds": 2.0,
            "task_stall_seconds": 5,
        }
    )
    (live_settings.data_dir / "tmp").mkdir(parents=True, exist_ok=True)
    app = create_app(live_settings, database_url, run_worker=True)
    async with app.router.lifespan_context(app):
        server = _Server(uvicorn.Config(app, lifespan="off", log_level="warning"))
        serving = asyncio.create_task(server.serve(sockets=[sock]))
        async with asyncio.timeout(10):
            while not server.started:
                if serving.done():
                    serving.result()
                await asyncio.sleep(0.01)
        try:
            yield Live(url, app.state.runtime, live_settings)
        finally:
            server.should_exit = True
            await serving
            sock.close()


@pytest.fixture
async def http(live: Live) -> AsyncIterator[httpx.AsyncClient]:
    """A real HTTP client for the live app."""
    async with httpx.AsyncClient(base_url=live.url, timeout=30) as client:
        yield client
