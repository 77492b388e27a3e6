"""Database outages for fault tests: a database of its own, and a way to make it unreachable.

Refusing connections to one database (and cutting the ones it has) looks to vidgate exactly like
a server that went away, without disturbing the server other tests share.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Iterator

import psycopg
from sqlalchemy.engine import make_url

from vidgate.db.engine import libpq_url
from vidgate.db.migrate import upgrade_to_head


@contextlib.asynccontextmanager
async def database_of_its_own(server_url: str, prefix: str) -> AsyncIterator[str]:
    """A new migrated database on the server of `server_url`, dropped afterwards."""
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    admin = libpq_url(server_url)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = make_url(server_url).set(database=name).render_as_string(hide_password=False)
    try:
        await asyncio.to_thread(upgrade_to_head, url)
        yield url
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


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
