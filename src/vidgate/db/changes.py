"""One LISTEN connection per API process that keeps its caches in step with the database.

Triggers send `NOTIFY` in the writing transaction (migrations 0003, 0007, 0008); each cache names
its channel and is told every payload. While the connection is down every cache is off and
empty, so nothing stale is served; it reconnects with backoff.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Protocol

import psycopg
import structlog

logger = structlog.get_logger(__name__)


class NotifiedCache(Protocol):
    channel: str
    enabled: bool

    def clear(self) -> None: ...

    def apply_notification(self, payload: str) -> None: ...


async def listen_for_changes(conninfo: str, caches: Sequence[NotifiedCache]) -> None:
    """Feed each cache the notifications of its channel until cancelled."""
    by_channel: dict[str, list[NotifiedCache]] = {}
    for cache in caches:  # in order: a cache evicts before a stream that follows it reads
        by_channel.setdefault(cache.channel, []).append(cache)
    delay = 0.5
    while True:
        try:
            async with await psycopg.AsyncConnection.connect(conninfo, autocommit=True) as conn:
                for channel in by_channel:
                    await conn.execute(f"LISTEN {channel}")
                for cache in caches:
                    cache.clear()
                    cache.enabled = True
                delay = 0.5
                async for note in conn.notifies():
                    for target in by_channel.get(note.channel, ()):
                        target.apply_notification(note.payload)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a lost connection: serve uncached until we are back
            logger.warning("changes.listener_lost", error=str(exc), retry_in=delay)
        finally:
            for cache in caches:
                cache.enabled = False
                cache.clear()
        await asyncio.sleep(delay)
        delay = min(delay * 2, 10.0)
