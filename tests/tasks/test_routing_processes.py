"""Two `vidgate worker` processes on one database: the circuit breaker one of them opens is the
one the other obeys, and the probe that closes it after the cool-down closes it for both. The
first channels fail the way vendors do when they surely did not take a job (a refused connection,
a rejected key), so every task still succeeds on the next channel, charged once.

The API runs in the test (with the emulators mounted); the workers are real processes, paused
with SIGSTOP and resumed with SIGCONT so that it is known which one ran each task.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from datetime import UTC, datetime
from pathlib import Path

import httpx

from vidgate.app import create_app
from vidgate.config import Settings
from vidgate.db.engine import Database
from vidgate.emulators.fal import FalEmulator
from vidgate.routing.models import ChannelHealth

from ..fixtures.app import DEV_CLIENT_KEY
from ..fixtures.databases import database_of_its_own
from ..fixtures.loopback import serve_on_loopback
from ..fixtures.tasks import Caller, account, attempts, new_caller, wait_for

VIDGATE = Path(sys.executable).with_name("vidgate")
FAL_KEY = "fal-key-of-the-workers"
# The cool-down outlasts the tasks run while the breaker is open, even on a busy machine.
THRESHOLD, COOLDOWN = 2, 20.0

CATALOG = """
[[models]]
id = "fal-first-t2v"
kinds = ["text-to-video"]
name = { en = "fal.ai first", zh = "先 fal.ai" }
description = { en = "fal.ai, then DashScope.", zh = "先 fal.ai，再 DashScope。" }
tiers = [{ name = "standard", credits = 20 }, { name = "hd", credits = 30 }]
limits = { durations = [5] }

[[models.channels]]
id = "procs-fal"
adapter = "fal"
vendor_model = "fal-ai/wan/v2.7/text-to-video"

[[models.channels]]
id = "procs-dashscope-a"
adapter = "dashscope"
vendor_model = "wan2.7-t2v"

[[models]]
id = "kie-first-t2v"
kinds = ["text-to-video"]
name = { en = "kie.ai first", zh = "先 kie.ai" }
description = { en = "kie.ai, then DashScope.", zh = "先 kie.ai，再 DashScope。" }
tiers = [{ name = "standard", credits = 20 }, { name = "hd", credits = 30 }]
limits = { durations = [5] }

[[models.channels]]
id = "procs-kie"
adapter = "kie"
vendor_model = "wan/2-6-text-to-video"

[[models.channels]]
id = "procs-dashscope-b"
adapter = "dashscope"
vendor_model = "wan2.6-t2v"
"""


def _bound_socket() -> socket.socket:
    """A bound loopback socket that does not listen yet: connecting to it is refused."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


class Workers:
    """`vidgate worker` processes, each paused or running on the test's say."""

    def __init__(self, env: dict[str, str], logs: Path) -> None:
        self.env, self.logs = env, logs
        self.processes: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str) -> None:
        with (self.logs / f"{name}.log").open("wb") as out:
            self.processes[name] = subprocess.Popen(
                [str(VIDGATE), "worker", "--concurrency", "2"],
                env=self.env,
                stdout=out,
                stderr=out,
            )

    def log(self, name: str) -> str:
        return (self.logs / f"{name}.log").read_text(errors="replace")

    async def ready(self, name: str) -> None:
        async with asyncio.timeout(60):
            while "vidgate worker on" not in self.log(name):
                assert self.processes[name].poll() is None, self.log(name)[-3000:]
                await asyncio.sleep(0.1)

    def only(self, name: str) -> None:
        """Let `name` run and pause every other worker."""
        for other, process in self.processes.items():
            process.send_signal(signal.SIGCONT if other == name else signal.SIGSTOP)

    def stop(self) -> None:
        for process in self.processes.values():
            process.send_signal(signal.SIGCONT)
            process.terminate()
        for process in self.processes.values():
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@contextmanager
def workers(env: dict[str, str], logs: Path) -> Iterator[Workers]:
    running = Workers(env, logs)
    try:
        yield running
    finally:
        running.stop()


@asynccontextmanager
async def fal_on(sock: socket.socket, settings: Settings) -> AsyncIterator[None]:
    """fal.ai's emulator, for the workers' key, served on `sock` from now on."""
    from fastapi import FastAPI

    base = f"http://127.0.0.1:{sock.getsockname()[1]}"
    emulator = FalEmulator(
        api_key=FAL_KEY,
        work_dir=settings.data_dir / "fal-revived",
        public_base_url=base,
        queue_seconds=0.1,
        run_seconds=0.2,
        render_height=144,
        seconds=2.0,
    )
    app = FastAPI()
    app.include_router(emulator.router())
    try:
        async with serve_on_loopback(app, sock):
            yield
    finally:
        await emulator.aclose()


async def _health(db: Database, channel: str) -> ChannelHealth | None:
    async with db.session() as session:
        return await session.get(ChannelHealth, channel)


async def _run(
    http: httpx.AsyncClient, db: Database, caller: Caller, model: str
) -> list[tuple[str, str]]:
    """Create a text-to-video task on `model`, see it succeed; the attempts it took."""
    created = await http.post(
        "/api/videos/text-to-video",
        headers=caller.headers,
        json={"prompt": "a lighthouse at dusk", "model": model},
    )
    assert created.status_code == 200, created.text
    task_id = str(created.json()["task_id"])
    done = await wait_for(http, caller, task_id, within=90)
    assert done["status"] == "SUCCEEDED", done
    return await attempts(db, task_id)


async def test_a_breaker_one_worker_opens_is_obeyed_and_closed_by_the_other(
    settings: Settings, database_url: str, tmp_path: Path
) -> None:
    catalog = tmp_path / "catalog.toml"
    catalog.write_text(CATALOG)
    api_sock, fal_sock = _bound_socket(), _bound_socket()
    api_url = f"http://127.0.0.1:{api_sock.getsockname()[1]}"
    fal_url = f"http://127.0.0.1:{fal_sock.getsockname()[1]}/_emulator/fal"
    data_dir = tmp_path / "data"
    (data_dir / "tmp").mkdir(parents=True)
    api_settings = settings.model_copy(
        update={
            "data_dir": data_dir,
            "public_base_url": api_url,
            "catalog": catalog,
            "emulator_queue_seconds": 0.1,
            "emulator_run_seconds": 0.2,
            "emulator_render_height": 144,
        }
    )
    async with database_of_its_own(database_url, "vidgate_breaker") as url:
        env = {k: v for k, v in os.environ.items() if not k.startswith("VIDGATE_")}
        env.update(
            VIDGATE_ENV="development",
            VIDGATE_DATABASE_URL=url,
            VIDGATE_DATA_DIR=str(data_dir),
            VIDGATE_SECRET_KEY=settings.secret_key,
            VIDGATE_DEV_CLIENT_API_KEY=DEV_CLIENT_KEY,
            VIDGATE_PUBLIC_BASE_URL=api_url,
            VIDGATE_CATALOG=str(catalog),
            VIDGATE_FAL_API_KEY=FAL_KEY,
            VIDGATE_FAL_BASE_URL=fal_url,  # nothing listens there yet: refused
            VIDGATE_KIE_API_KEY="a-key-kie-does-not-know",
            VIDGATE_KIE_BASE_URL=f"{api_url}/_emulator/kie",
            VIDGATE_PROVIDER_CALLBACKS="false",
            VIDGATE_CHANNEL_BREAKER_FAILURES=str(THRESHOLD),
            VIDGATE_CHANNEL_BREAKER_COOLDOWN_SECONDS=str(COOLDOWN),
            VIDGATE_TASK_POLL_INITIAL_SECONDS="0.05",
            VIDGATE_TASK_POLL_MAX_SECONDS="0.3",
        )
        app = create_app(api_settings, url)  # the API alone: the workers run the tasks
        async with app.router.lifespan_context(app), serve_on_loopback(app, api_sock):
            db: Database = app.state.runtime.db
            async with httpx.AsyncClient(base_url=api_url, timeout=30) as http:
                with workers(env, tmp_path) as pool:
                    for name in ("one", "two"):
                        pool.start(name)
                    for name in ("one", "two"):
                        await pool.ready(name)
                    first, second = await new_caller(http), await new_caller(http)

                    # Worker one meets a refused connection twice: the breaker opens.
                    pool.only("one")
                    for _ in range(THRESHOLD):
                        assert await _run(http, db, first, "fal-first-t2v") == [
                            ("procs-fal", "not_sent"),
                            ("procs-dashscope-a", "accepted"),
                        ]
                    health = await _health(db, "procs-fal")
                    assert health is not None and health.open_until is not None
                    assert health.failures == THRESHOLD

                    # Worker two obeys it: straight to the next channel.
                    pool.only("two")
                    assert datetime.now(UTC) < health.open_until
                    assert await _run(http, db, first, "fal-first-t2v") == [
                        ("procs-dashscope-a", "accepted")
                    ]
                    # A key the vendor rejects hands the task on too.
                    assert await _run(http, db, second, "kie-first-t2v") == [
                        ("procs-kie", "channel_error"),
                        ("procs-dashscope-b", "accepted"),
                    ]

                    # fal.ai comes back; after the cool-down worker two's probe closes the
                    # breaker, and worker one, resumed, sends to fal.ai again.
                    async with fal_on(fal_sock, api_settings):
                        wait = (health.open_until - datetime.now(UTC)).total_seconds()
                        await asyncio.sleep(max(0.0, wait) + 0.2)
                        assert await _run(http, db, second, "fal-first-t2v") == [
                            ("procs-fal", "accepted")
                        ]
                        closed = await _health(db, "procs-fal")
                        assert closed is not None
                        assert (closed.failures, closed.open_until) == (0, None)
                        pool.only("one")
                        assert await _run(http, db, second, "fal-first-t2v") == [
                            ("procs-fal", "accepted")
                        ]
                    for process in pool.processes.values():
                        assert process.poll() is None

            # Charged once per task, whatever the number of channels tried.
            for caller in (first, second):
                credits, reserved, rows = await account(db, caller.user_id)
                assert (credits, reserved) == (40, 0)
                assert [kind for kind, _, _ in rows] == ["signup_bonus", *["charge"] * 3]
