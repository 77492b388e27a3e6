"""Databases of a test's own on the test server, and outages of one.

Refusing connections to one database (and cutting the ones it has) looks to vidgate exactly like
a server that went away, without disturbing the server other tests share.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import AsyncIterator, Iterator

import psycopg
from sqlalchemy.engine import make_url

from vidgate.db.engine import libpq_url
from vidgate.db.migrate import upgrade_to_head


def create_database(server_url: str, prefix: str, *, migrated: bool = True) -> str:
    """A new database on the server of `server_url` (migrated to head unless told); its URL."""
    name = f"{prefix}_{secrets.token_hex(4)}"
    with psycopg.connect(libpq_url(server_url), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = make_url(server_url).set(database=name).render_as_string(hide_password=False)
    if migrated:
        upgrade_to_head(url)
    return url


def drop_database(url: str) -> None:
    admin, name = _admin(url)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextlib.contextmanager
def scratch_database(server_url: str, prefix: str, *, migrated: bool = True) -> Iterator[str]:
    """A database of the block's own, dropped afterwards."""
    url = create_database(server_url, prefix, migrated=migrated)
    try:
        yield url
    finally:
        drop_database(url)


@contextlib.asynccontextmanager
async def database_of_its_own(server_url: str, prefix: str) -> AsyncIterator[str]:
    """`scratch_database` for async tests: made and dropped off the event loop."""
    url = await asyncio.to_thread(create_database, server_url, prefix)
    try:
        yield url
    finally:
        await asyncio.to_thread(drop_database, url)


def _admin(url: str) -> tuple[str, str]:
    parsed = make_url(url)
    name = parsed.database
    assert name
    return libpq_url(parsed.set(database="postgres").render_as_string(hide_password=False)), name


def cut_off(url: str) -> None:
    """Refuse new connections to the database of `url` and end the ones it has."""
    admin, name = _admin(url)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
            (name,),
        )


def restore(url: str) -> None:
    admin, name = _admin(url)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')


@contextlib.contextmanager
def outage(url: str) -> Iterator[None]:
    """The database of `url` is unreachable inside the block."""
    cut_off(url)
    try:
        yield
    finally:
        restore(url)
