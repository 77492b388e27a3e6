"""Engine and sessions: one pool per process, sized for the request concurrency."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine

from vidgate.db.session import Session


def sqlalchemy_url(url: str) -> str:
    """The given PostgreSQL URL with the psycopg 3 driver, whatever driver it named."""
    parsed = make_url(url)
    return parsed.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)


def libpq_url(url: str) -> str:
    """The given URL as plain libpq understands it (for procrastinate and psql)."""
    parsed = make_url(url)
    return parsed.set(drivername="postgresql").render_as_string(hide_password=False)


# A pooled connection idle longer than this is pinged before it is handed out. Under load
# connections come back within milliseconds and are never pinged; after a quiet spell (or a
# database restart) the stale ones are replaced before a request trips over them.
STALE_AFTER_SECONDS = 5.0


def ping_stale_connections(engine: AsyncEngine) -> None:
    """Pre-ping only what sat idle, instead of every checkout (`pool_pre_ping`): a round trip per
    request is what a hot read path cannot afford. A connection that breaks while in use is
    still caught: SQLAlchemy then invalidates the whole pool."""
    pool = engine.sync_engine.pool
    dialect = engine.sync_engine.dialect

    def on_checkin(dbapi_connection: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    def on_checkout(dbapi_connection: Any, record: Any, proxy: Any) -> None:
        idle_since = record.info.get("idle_since")
        if idle_since is None or time.monotonic() - idle_since < STALE_AFTER_SECONDS:
            return
        try:
            dialect.do_ping(dbapi_connection)
        except Exception as exc:  # the pool replaces it with a fresh connection
            raise DisconnectionError(f"stale pooled connection: {exc}") from exc

    event.listen(pool, "checkin", on_checkin)
    event.listen(pool, "checkout", on_checkout)


def share_disconnects(*engines: AsyncEngine) -> None:
    """When one engine finds the server gone, the others' idle connections died with it too:
    close them, so the first requests after a restart get fresh connections, not errors."""

    def on_error(context: Any) -> None:
        if not context.is_disconnect:
            return
        for engine in engines:
            if engine.sync_engine is not context.engine:
                engine.sync_engine.pool.dispose()

    for engine in engines:
        event.listen(engine.sync_engine, "handle_error", on_error)


class Database:
    """The process's engine plus the ways to use it.

    `transaction()` is a unit of work: a session committed when the block ends and rolled back if
    it raises. `session()` is a bare session for code that commits at steps of its own (a flow that
    must keep one step before calling a vendor). `autocommit_engine.connect()` hands out an
    autocommit connection for hot read paths: one round trip per query, no BEGIN/ROLLBACK;
    `reads()` is the same as an ORM session.
    """

    def __init__(
        self,
        url: str,
        *,
        pool_size: int = 20,
        max_overflow: int = 10,
        pool_timeout: float = 10.0,
    ) -> None:
        self.url = url
        # `pool_timeout`: a request waits this long for a connection, then answers 503.
        self.engine: AsyncEngine = create_async_engine(
            sqlalchemy_url(url),
            pool_size=pool_size,
            max_overflow=max_overflow,
            pool_timeout=pool_timeout,
            pool_recycle=1800,
        )
        # Its own pool: connections stay in autocommit, so a checkout costs no round trip. No
        # overflow: under load an overflow connection is opened and closed per request (a new
        # PostgreSQL backend each time), far dearer than waiting a moment for a pooled one.
        self.autocommit_engine: AsyncEngine = create_async_engine(
            sqlalchemy_url(url),
            pool_size=pool_size + max_overflow,
            max_overflow=0,
            pool_timeout=pool_timeout,
            pool_recycle=1800,
            isolation_level="AUTOCOMMIT",
            pool_reset_on_return=None,
        )
        ping_stale_connections(self.engine)
        ping_stale_connections(self.autocommit_engine)
        share_disconnects(self.engine, self.autocommit_engine)
        self.sessionmaker = async_sessionmaker(self.engine, class_=Session, expire_on_commit=False)
        self._readers = async_sessionmaker(
            self.autocommit_engine, class_=Session, expire_on_commit=False
        )

    @asynccontextmanager
    async def session(self) -> AsyncIterator[Session]:
        async with self.sessionmaker() as session:
            yield session

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Session]:
        """A unit of work: committed (then its after-commit hooks run) when the block ends
        normally, rolled back when it raises."""
        async with self.sessionmaker() as session:
            yield session
            await session.commit()

    @asynccontextmanager
    async def reads(self) -> AsyncIterator[Session]:
        """A session on an autocommit connection, for reads (and single guarded statements) that
        need no transaction: each statement is one round trip, with no BEGIN or ROLLBACK."""
        async with self._readers() as session:
            yield session

    async def dispose(self) -> None:
        await self.engine.dispose()
        await self.autocommit_engine.dispose()
