"""The development client key that `vidgate serve` makes sure of when it starts."""

from __future__ import annotations

import asyncio
import secrets

from sqlalchemy import func, select, text

from vidgate.apikeys.models import ApiKey
from vidgate.apikeys.service import ensure_client_key
from vidgate.auth.tokens import sha256_hex
from vidgate.db.engine import Database


async def _waiting_on_a_lock(db: Database) -> None:
    """Until a session of this database waits for a lock (the second insert, on the hash)."""
    async with asyncio.timeout(30):
        while True:
            async with db.session() as session:
                waiting = await session.scalar(
                    text(
                        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                        " AND wait_event_type = 'Lock'"
                    )
                )
            if waiting:
                return
            await asyncio.sleep(0.02)


async def test_api_processes_starting_at_once_make_the_key_once(db: Database) -> None:
    """Two API processes started together on a new database both look for the key, find none
    and add it: the second waits for the first and then finds it, and starts all the same."""
    secret = "vg_" + secrets.token_urlsafe(32)
    async with db.session() as first, db.session() as second:
        assert await ensure_client_key(first, secret, "development client") is True
        # The second process's look-up does not see the first one's uncommitted key; its
        # insert waits on the unique hash until the first commits.
        racing = asyncio.create_task(ensure_client_key(second, secret, "development client"))
        await _waiting_on_a_lock(db)
        assert not racing.done()
        await first.commit()
        assert await racing is False
        await second.commit()
    async with db.session() as session:
        count = await session.scalar(
            select(func.count()).select_from(ApiKey).where(ApiKey.key_hash == sha256_hex(secret))
        )
    assert count == 1
