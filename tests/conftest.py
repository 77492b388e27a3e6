"""Shared fixtures: a real PostgreSQL (embedded, or VIDGATE_TEST_DATABASE_URL), migrated once per
run into a database of its own; the app served in-process over httpx, and on loopback with its
worker; a rolled-back transaction for service-level tests. What they use lives in tests.fixtures.

Tests do not share rows: each one signs in its own random phone numbers.
"""

from __future__ import annotations

import secrets
import shutil
import socket
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import psycopg
import pytest
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession

from vidgate.app import create_app
from vidgate.config import Settings
from vidgate.db.engine import Database, libpq_url
from vidgate.db.migrate import upgrade_to_head
from vidgate.runtime import Runtime

from .fixtures.app import DEV_CLIENT_KEY, FRONT_END_ORIGIN, TEST_CATALOG, Live
from .fixtures.databases import SESSION_DATABASES, database_server
from .fixtures.loopback import serve_on_loopback
from .fixtures.rollback import rolled_back


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    """A new, migrated database on the test server, dropped at the end of the run."""
    # Not under pytest's own temporary directory: every new pytest session makes that 0700
    # again, which locks the embedded server's user out of a concurrent session's files.
    pg_root = Path(tempfile.mkdtemp(prefix="vidgate-test-pg-"))
    server_url, embedded = database_server(pg_root)
    name = f"vidgate_test_{secrets.token_hex(4)}"
    admin = libpq_url(server_url)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = make_url(server_url).set(database=name).render_as_string(hide_password=False)
    upgrade_to_head(url)
    yield url
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    if embedded is not None:
        from vidgate.db.embedded import stop_embedded_postgres

        stop_embedded_postgres(embedded)
    shutil.rmtree(pg_root, ignore_errors=True)


@pytest.fixture(scope="session")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return Settings(
        env="development",
        data_dir=tmp_path_factory.mktemp("data"),
        secret_key=secrets.token_urlsafe(48),
        dev_client_api_key=DEV_CLIENT_KEY,
        public_base_url="http://test",
        cors_origins=[FRONT_END_ORIGIN],  # a front end elsewhere: CORS, payments' way back
        web_dir=tmp_path_factory.mktemp("no-web-app"),  # the API alone, built web app or not
        catalog=TEST_CATALOG,
    )


@pytest.fixture(scope="session")
async def app_and_runtime(
    settings: Settings, database_url: str
) -> AsyncIterator[tuple[object, Runtime]]:
    app = create_app(settings, database_url)
    async with app.router.lifespan_context(app):
        SESSION_DATABASES.append(app.state.runtime.db)
        yield app, app.state.runtime


@pytest.fixture(scope="session")
def runtime(app_and_runtime: tuple[object, Runtime]) -> Runtime:
    return app_and_runtime[1]


@pytest.fixture(scope="session")
def db(runtime: Runtime) -> Database:
    return runtime.db


@pytest.fixture
async def client(app_and_runtime: tuple[object, Runtime]) -> AsyncIterator[httpx.AsyncClient]:
    app = app_and_runtime[0]
    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        yield c


@pytest.fixture
def new_id() -> uuid.UUID:
    return uuid.uuid4()


# --- service-level tests: a transaction rolled back after each test ---------------------------


@pytest.fixture
async def rollback_db(db: Database) -> AsyncIterator[Database]:
    """A `Database` whose sessions all join one transaction, rolled back after the test: commit
    as callers do, and nothing is left behind. Invisible to the app, the worker and every other
    connection, and one connection only: see tests/fixtures/rollback.py."""
    async with rolled_back(db) as rolled:
        yield rolled


@pytest.fixture
async def rollback_session(rollback_db: Database) -> AsyncIterator[AsyncSession]:
    """One session of `rollback_db`."""
    async with rollback_db.session() as session:
        yield session


# --- a live app on loopback, with its worker (task tests) -----------------------------------


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
            "provider_timeout_seconds": 4.0,  # the ambiguous-submit test outwaits it
            # One app serves every task test, and the `[fault:throttle]` tests leave tasks that
            # the emulated vendor refuses with 429 until they are canceled: counted against the
            # shared channels' breakers, they would open them for whichever test comes next. The
            # breaker is tested on its own rows (tests/tasks/test_routing.py) and processes.
            "channel_breaker_failures": 1000,
        }
    )
    (live_settings.data_dir / "tmp").mkdir(parents=True, exist_ok=True)
    app = create_app(live_settings, database_url, run_worker=True)
    async with app.router.lifespan_context(app), serve_on_loopback(app, sock):
        SESSION_DATABASES.append(app.state.runtime.db)
        yield Live(url, app.state.runtime, live_settings)


@pytest.fixture
async def http(live: Live) -> AsyncIterator[httpx.AsyncClient]:
    """A real HTTP client for the live app."""
    async with httpx.AsyncClient(base_url=live.url, timeout=30) as client:
        yield client
