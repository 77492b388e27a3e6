"""One LISTEN connection per API process that keeps its caches in step with the database.

Triggers send `NOTIFY` in the writing transaction (migrations 0003, 0007, 0008); each cache names
its channel and is told every payload. While the connection is down every cache is off and
empty, so nothing stale is served; it reconnects with backoff.

`ChangeFedCache` is what the caches fed this way share (`tasks.cache.TaskCache`,
`auth.principal_cache.PrincipalCache`): the on/off switch, the generation check, the time to
live, and reading a payload.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Sequence
from typing import ClassVar, Protocol

import psycopg
import structlog

from vidgate.kit import parse_uuid

logger = structlog.get_logger(__name__)


class NotifiedCache(Protocol):
    channel: str
    enabled: bool

    def clear(self) -> None: ...

    def apply_notification(self, payload: str) -> None: ...


class ChangeFedCache:
    """The mechanics of a per-process cache that notifications keep fresh.

    - `enabled`: the listener sets it while it is connected; a disabled cache stores nothing.
    - `generation`: bumped by every eviction. A reader takes it before reading the database and
      hands it back when storing; a read that overlapped an eviction is not kept (`may_store`),
      so a value older than the last notification is never cached.
    - payloads: a bare id, or `<kind>:<id>` when `kinded_payloads`. One that is neither (not what
      the triggers send) clears the whole cache rather than guess.

    Subclasses hold the entries: they implement `drop_all` and `evict_changed`, call `evicted()`
    before dropping what a change touched, and check `expired` on read.
    """

    channel: str
    kinded_payloads: ClassVar[bool] = False

    def __init__(self, *, ttl_seconds: float, max_entries: int) -> None:
        self.ttl_seconds = ttl_seconds
        self.max_entries = max_entries
        self.enabled = False
        self.generation = 0

    def may_store(self, generation_before_read: int) -> bool:
        """The cache is on and nothing was evicted since the reader took `generation`."""
        return self.enabled and generation_before_read == self.generation

    def expired(self, cached_at: float) -> bool:
        """An entry stored at `cached_at` (`time.monotonic()`) has outlived the time to live."""
        return time.monotonic() - cached_at > self.ttl_seconds

    def evicted(self) -> None:
        """Count an eviction: reads in flight must not store what they read."""
        self.generation += 1

    def clear(self) -> None:
        self.evicted()
        self.drop_all()

    def apply_notification(self, payload: str) -> None:
        if self.kinded_payloads:
            kind, _, value = payload.partition(":")
        else:
            kind, value = "", payload
        target = parse_uuid(value)
        if target is None:
            self.clear()
        else:
            self.evict_changed(kind, target)

    def drop_all(self) -> None:
        """Forget every entry."""
        raise NotImplementedError

    def evict_changed(self, kind: str, target: uuid.UUID) -> None:
        """The row `target` changed (`kind` as the payload names it; "" for a bare id)."""
        raise NotImplementedError


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
