"""Database outages: clean 503s while the database is away, and a job worker that comes back.

Each test has a database of its own and cuts it off (tests/outages.py), so the server other
tests share is never touched.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from vidgate.app import create_app
from vidgate.config import Settings
from vidgate.runtime import Runtime

from .fixtures.app import DEV_CLIENT_KEY, Live
from .fixtures.databases import cut_off, database_of_its_own, outage, restore
from .fixtures.loopback import serve_on_loopback
from .fixtures.signin import sign_in
from .fixtures.tasks import new_caller, text_to_video, wait_for

VIDGATE = Path(sys.executable).with_name("vidgate")


@pytest.fixture
async def own_database(database_url: str) -> AsyncIterator[str]:
    async with database_of_its_own(database_url, "vidgate_faults") as url:
        yield url


def _assert_unavailable(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["content-type"] == "application/json"
    assert isinstance(response.json()["detail"], str)
    assert int(response.headers["retry-after"]) > 0


async def test_database_outage_answers_json_503_and_recovers(
    settings: Settings, own_database: str
) -> None:
    app = create_app(settings, own_database)
    async with app.router.lifespan_context(app):
        runtime: Runtime = app.state.runtime
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            user = await sign_in(client)
            assert (await client.get("/api/users/credits", headers=user.headers)).json()
            runtime.principals.clear()  # the next reads must reach the database
            with outage(own_database):
                for response in [
                    await client.get("/api/users/credits", headers=user.headers),
                    await client.get("/api/auth/me", headers=user.headers),
                    await client.post(
                        "/api/auth/sms/send", json={"phone_number": "86-13900001111"}
                    ),
                    await client.get(
                        f"/api/tasks/{uuid.uuid4()}", headers={"X-API-Key": DEV_CLIENT_KEY}
                    ),
                    await client.get("/readyz"),
                ]:
                    _assert_unavailable(response)
            # Back: pooled connections that died with the outage are replaced, not served.
            credits = await client.get("/api/users/credits", headers=user.headers)
            assert credits.status_code == 200, credits.text
            assert (await client.get("/readyz")).status_code == 200


async def test_exhausted_pool_answers_503(settings: Settings, own_database: str) -> None:
    tight = settings.model_copy(
        update={"db_pool_size": 1, "db_max_overflow": 0, "db_pool_timeout_seconds": 0.3}
    )
    app = create_app(tight, own_database)
    async with app.router.lifespan_context(app):
        runtime: Runtime = app.state.runtime
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            user = await sign_in(client)
            runtime.principals.clear()
            # Someone else holds the one connection each pool has.
            async with (
                runtime.db.autocommit_engine.connect() as held,
                runtime.db.session() as session,
            ):
                await held.exec_driver_sql("SELECT 1")
                await session.connection()
                _assert_unavailable(await client.get("/api/users/credits", headers=user.headers))
            assert (await client.get("/api/users/credits", headers=user.headers)).status_code == 200


async def test_worker_in_serve_restarts_after_outage(
    live: Live, own_database: str, tmp_path: Path
) -> None:
    """The in-process worker dies with the database; it is run again once the database is back,
    `/readyz` says 503 while it is down, and jobs run afterwards."""
    settings = live.settings.model_copy(update={"data_dir": tmp_path})
    (tmp_path / "tmp").mkdir()
    app = create_app(settings, own_database, run_worker=True)
    async with (
        app.router.lifespan_context(app),
        serve_on_loopback(app) as url,
        httpx.AsyncClient(base_url=url, timeout=30) as client,
    ):
        runtime: Runtime = app.state.runtime
        supervisor = runtime.worker
        assert supervisor is not None
        async with asyncio.timeout(30):  # ready once the worker has registered
            while (ready := await client.get("/readyz")).status_code != 200:
                assert ready.json()["worker"] == "down", ready.text
                await asyncio.sleep(0.05)
        assert ready.json()["worker"] == "ok", ready.text

        cut_off(own_database)
        try:
            async with asyncio.timeout(60):
                while supervisor.restarts == 0:  # noqa: ASYNC110 (watching another task)
                    await asyncio.sleep(0.05)
            not_ready = await client.get("/readyz")
            assert not_ready.status_code == 503
            assert not_ready.headers["content-type"] == "application/json"
        finally:
            restore(own_database)

        # The worker comes back on its own and runs jobs again.
        async with asyncio.timeout(60):
            while (await client.get("/readyz")).status_code != 200:  # noqa: ASYNC110 (polls)
                await asyncio.sleep(0.2)
        assert supervisor.up
        metrics = (await client.get("/metrics")).text
        assert "vidgate_worker_up 1.0" in metrics
        caller = await new_caller(client)
        task_id = await text_to_video(client, caller, "after the outage")
        done = await wait_for(client, caller, task_id, within=60)
        assert done["status"] == "SUCCEEDED", done


def _start_worker(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(
            [str(VIDGATE), "worker", "--concurrency", "1"], env=env, stdout=out, stderr=out
        )


async def test_worker_command_exits_nonzero_when_the_database_stays_away(
    live: Live, own_database: str, tmp_path: Path
) -> None:
    """`vidgate worker` rides out a short outage, and exits 1 (for its process manager to
    restart it) once the database has been away longer than VIDGATE_WORKER_GIVE_UP_SECONDS."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("VIDGATE_")}
    env.update(
        VIDGATE_ENV="development",
        VIDGATE_DATABASE_URL=own_database,
        VIDGATE_DATA_DIR=str(tmp_path),
        VIDGATE_SECRET_KEY=live.settings.secret_key,
        VIDGATE_WORKER_GIVE_UP_SECONDS="10",
    )
    log = tmp_path / "worker.log"
    worker = _start_worker(env, log)
    try:
        async with asyncio.timeout(60):
            while "vidgate worker on" not in log.read_text():
                assert worker.poll() is None, log.read_text()[-3000:]
                await asyncio.sleep(0.1)
        await asyncio.sleep(2)
        # A short outage: the worker is restarted inside the process and keeps running (it may
        # notice only once the database is back, later on a busy machine).
        with outage(own_database):
            await asyncio.sleep(3)
        async with asyncio.timeout(30):
            while "worker.stopped" not in log.read_text():  # noqa: ASYNC110 (a file)
                await asyncio.sleep(0.2)
        await asyncio.sleep(10)
        assert worker.poll() is None, log.read_text()[-3000:]
        # A long one: it gives up.
        cut_off(own_database)
        started = time.monotonic()
        code = await asyncio.to_thread(worker.wait, 90)
        assert code == 1, log.read_text()[-3000:]
        assert time.monotonic() - started >= 10  # counted from the start of this outage
        assert "worker.gave_up" in log.read_text()
    finally:
        restore(own_database)
        if worker.poll() is None:
            worker.kill()
            worker.wait()


async def test_worker_started_while_the_database_is_away_waits_for_it(
    live: Live, own_database: str, tmp_path: Path
) -> None:
    """A process manager may start the worker before PostgreSQL, or during an outage: it waits
    (saying so) and starts once the database answers; one that never answers ends in exit 1."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("VIDGATE_")}
    env.update(
        VIDGATE_ENV="development",
        VIDGATE_DATABASE_URL=own_database,
        VIDGATE_DATA_DIR=str(tmp_path),
        VIDGATE_SECRET_KEY=live.settings.secret_key,
        VIDGATE_WORKER_GIVE_UP_SECONDS="10",
    )
    log = tmp_path / "worker.log"
    cut_off(own_database)
    try:
        worker = _start_worker(env, log)
        async with asyncio.timeout(60):
            while "database unreachable" not in log.read_text():
                assert worker.poll() is None, log.read_text()[-3000:]
                await asyncio.sleep(0.1)
    finally:
        restore(own_database)
    try:
        async with asyncio.timeout(60):
            while "vidgate worker on" not in log.read_text():
                assert worker.poll() is None, log.read_text()[-3000:]
                await asyncio.sleep(0.1)
    finally:
        worker.terminate()
        worker.wait(30)

    cut_off(own_database)
    try:
        never = _start_worker(env, tmp_path / "never.log")
        code = await asyncio.to_thread(never.wait, 90)
        text = (tmp_path / "never.log").read_text()
        assert code == 1, text[-3000:]
        assert "the database stayed unreachable; giving up" in text
        assert "Traceback" not in text
    finally:
        restore(own_database)
