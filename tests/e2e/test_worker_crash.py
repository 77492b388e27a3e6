"""A `vidgate worker` process killed (SIGKILL) in the middle of a task: a second worker finishes
the task and it is charged exactly once, while an API process of the same database follows it
over Server-Sent Events (changes reach it only through PostgreSQL's notifications).

The worker runs against a database of its own, holding one user and one task created the way the
API creates them; its emulated providers are the ones the live test app serves on loopback.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from vidgate.app import create_app
from vidgate.credits import service as ledger
from vidgate.credits.models import LedgerEntry
from vidgate.db.engine import Database
from vidgate.tasks import service
from vidgate.tasks.models import Task
from vidgate.tasks.schemas import TextToVideoRequest
from vidgate.users import service as users

from ..fixtures.app import DEV_CLIENT_KEY, TEST_CATALOG, Live
from ..fixtures.databases import database_of_its_own
from ..fixtures.loopback import serve_on_loopback
from ..fixtures.tasks import read_events

pytestmark = pytest.mark.e2e

VIDGATE = Path(sys.executable).with_name("vidgate")


@pytest.fixture
async def own_database(database_url: str) -> AsyncIterator[str]:
    async with database_of_its_own(database_url, "vidgate_crash") as url:
        yield url


def _start_worker(live: Live, url: str, data_dir: Path, log: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VIDGATE_")}
    env.update(
        VIDGATE_ENV="development",
        VIDGATE_DATABASE_URL=url,
        VIDGATE_DATA_DIR=str(data_dir),
        VIDGATE_SECRET_KEY=live.settings.secret_key,  # the emulators' keys derive from it
        VIDGATE_PUBLIC_BASE_URL=live.url,
        VIDGATE_TASK_STALL_SECONDS="5",
        VIDGATE_TASK_POLL_INITIAL_SECONDS="0.3",
        VIDGATE_TASK_POLL_MAX_SECONDS="0.5",
        VIDGATE_CATALOG=str(TEST_CATALOG),  # the task's model is the test catalog's
    )
    with log.open("ab") as out:
        return subprocess.Popen(
            [str(VIDGATE), "worker", "--concurrency", "2"], env=env, stdout=out, stderr=out
        )


@contextlib.asynccontextmanager
async def _api(live: Live, url: str, data_dir: Path) -> AsyncIterator[str]:
    """The vidgate app on `url` (no worker) served on loopback; its base URL."""
    settings = live.settings.model_copy(update={"data_dir": data_dir})
    app = create_app(settings, url, run_worker=False)
    async with app.router.lifespan_context(app), serve_on_loopback(app) as base:
        yield base


async def _status(db: Database, task_id: uuid.UUID) -> str:
    async with db.session() as session:
        return (await session.get_one(Task, task_id)).status


async def test_killed_worker_task_finishes_once(
    live: Live, own_database: str, tmp_path: Path
) -> None:
    db = Database(own_database, pool_size=2, max_overflow=0)
    try:
        async with db.session() as session:
            user, _ = await users.sign_in_by_phone(
                session, "+8613800000000", username="crash", region="CN", signup_bonus=100
            )
            prepared = await service.prepare(
                live.runtime.media_resolver,
                live.runtime.catalog,
                user.id,
                "text-to-video",
                TextToVideoRequest(prompt="survives a crash"),
            )
            task = await service.create(session, live.settings, user.id, prepared)
            await session.commit()
            user_id, task_id = user.id, task.id

        log = tmp_path / "worker.log"
        first = _start_worker(live, own_database, tmp_path / "data", log)
        try:
            # The first worker picks the task up through the sweeper (no job was queued), sends it
            # upstream, and is killed while the task runs.
            try:
                async with asyncio.timeout(60):
                    while await _status(db, task_id) != "RUNNING":  # noqa: ASYNC110 (polls)
                        await asyncio.sleep(0.02)
            except TimeoutError:
                pytest.fail("never RUNNING; worker log:\n" + log.read_text()[-4000:])
        finally:
            first.send_signal(signal.SIGKILL)
            first.wait()
        assert await _status(db, task_id) == "RUNNING"

        # An API process of this database (here: an app in the test process, no worker) follows
        # the task over SSE while the second worker process finishes it.
        events: list[dict[str, Any]] = []
        async with (
            _api(live, own_database, tmp_path / "data") as api_url,
            httpx.AsyncClient(base_url=api_url, timeout=30) as client,
            client.stream(
                "GET", f"/api/tasks/{task_id}/events", headers={"X-API-Key": DEV_CLIENT_KEY}
            ) as stream,
        ):
            assert stream.status_code == 200
            following = asyncio.create_task(read_events(stream, events))
            second = _start_worker(live, own_database, tmp_path / "data", log)
            try:
                async with asyncio.timeout(90):
                    await following
            except TimeoutError:
                tail = log.read_text()[-4000:]
                pytest.fail(f"stream never ended ({events}); worker log:\n{tail}")
            finally:
                second.send_signal(signal.SIGTERM)
                await asyncio.to_thread(second.wait, 30)
        assert events[0]["status"] == "RUNNING"
        assert events[-1]["status"] == "SUCCEEDED"
        assert events[-1]["result_url"] and events[-1]["progress"] == 100
        async with db.session() as session:
            task = await session.get_one(Task, task_id)
            rows = (
                await session.execute(
                    select(LedgerEntry.kind, LedgerEntry.delta)
                    .where(LedgerEntry.user_id == user_id)
                    .order_by(LedgerEntry.id)
                )
            ).all()
            drift = await ledger.find_drift(session)
        assert task.status == "SUCCEEDED", log.read_text()[-3000:]
        assert [(k, d) for k, d in rows] == [("signup_bonus", 100), ("charge", -20)]
        assert drift == []
        assert task.result_key is not None
        assert (tmp_path / "data" / "media" / task.result_key).is_file()
    finally:
        await db.dispose()
