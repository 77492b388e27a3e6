"""Shared fixtures: a real PostgreSQL (embedded, or VIDGATE_TEST_DATABASE_URL), migrated once per
run into a database of its own; the app served in-process over httpx; helpers to sign people in.

Tests do not share rows: each one signs in its own random phone numbers.
"""

from __future__ import annotations

import secrets
import uuid
import warnings
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import psycopg
import pytest
from sqlalchemy.engine import make_url

from vidgate.app import create_app
from vidgate.config import Settings
from vidgate.db.engine import Database, libpq_url
from vidgate.db.migrate import upgrade_to_head
from vidgate.deps import Runtime

from .helpers import DEV_CLIENT_KEY


def _server_url(tmp_root: Path) -> tuple[str, object | None]:
    import os

    external = os.environ.get("VIDGATE_TEST_DATABASE_URL")
    if external:
        return external, None
    from vidgate.db.embedded import start_embedded_postgres

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return start_embedded_postgres(tmp_root)


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A new, migrated database on the test server, dropped at the end of the run."""
    server_url, embedded = _server_url(tmp_path_factory.mktemp("pg"))
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


@pytest.fixture(scope="session")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return Settings(
        env="development",
        data_dir=tmp_path_factory.mktemp("data"),
        secret_key=secrets.token_urlsafe(48),
        dev_client_api_key=DEV_CLIENT_KEY,
        public_base_url="http://test",
    )


@pytest.fixture(scope="session")
async def app_and_runtime(
    settings: Settings, database_url: str
) -> AsyncIterator[tuple[object, Runtime]]:
    app = create_app(settings, database_url)
    async with app.router.lifespan_context(app):
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
