"""Engine and sessions: one pool per process, sized for the request concurrency."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)


def sqlalchemy_url(url: str) -> str:
    """The given PostgreSQL URL with the psycopg 3 driver, whatever driver it named."""
    parsed = make_url(url)
    return parsed.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)


def libpq_url(url: str) -> str:
    """The given URL as plain libpq understands it (for procrastinate and psql)."""
    parsed = make_url(url)
    return parsed.set(drivername="postgresql").render_as_string(hide_password=False)


class Database:
    """The process's engine plus the two ways to use it.

    `session()` opens an ORM session for work that writes (the caller commits). `reader()` hands
    out an autocommit connection for hot read paths: one round trip per query, no BEGIN/ROLLBACK.
    """

    def __init__(self, url: str, *, pool_size: int = 20, max_overflow: int = 10) -> None:
        self.url = url
        self.engine: AsyncEngine = create_async_engine(
            sqlalchemy_url(url),
            pool_size=pool_size,
            max_overflow=max_overflow,
            pool_pre_ping=False,
            pool_recycle=1800,
        )
        # Its own pool: connections stay in autocommit, so a checkout costs no round trip. No
        # overflow: under load an overflow connection is opened and closed per request (a new
        # PostgreSQL backend each time), far dearer than waiting a moment for a pooled one.
        self.autocommit_engine: AsyncEngine = create_async_engine(
            sqlalchemy_url(url),
            pool_size=pool_size + max_overflow,
            max_overflow=0,
            pool_recycle=1800,
            isolation_level="AUTOCOMMIT",
            pool_reset_on_return=None,
        )
        self.sessionmaker = async_sessionmaker(self.engine, expire_on_commit=False)

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        async with self.sessionmaker() as session:
            yield session

    async def dispose(self) -> None:
        await self.engine.dispose()
        await self.autocommit_engine.dispose()
