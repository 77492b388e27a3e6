"""Fixed-window counters in PostgreSQL, shared by every API process.

One `INSERT … ON CONFLICT DO UPDATE … RETURNING` per hit: atomic across processes, no Redis needed.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import BigInteger, DateTime, Integer, String, delete, func
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from vidgate.db.base import Base
from vidgate.db.engine import Database


class RateLimitCounter(Base):
    __tablename__ = "rate_limit_counters"

    bucket: Mapped[str] = mapped_column(String(200), primary_key=True)
    window_start: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    hits: Mapped[int] = mapped_column(Integer)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)


@dataclass(frozen=True)
class RateLimitResult:
    allowed: bool
    hits: int
    limit: int
    retry_after: int


async def hit(
    conn: AsyncConnection | AsyncSession, bucket: str, *, limit: int, window_seconds: int
) -> RateLimitResult:
    """Count one hit against `bucket` in the current window; tell whether it is within `limit`."""
    now = time.time()
    window_start = int(now // window_seconds) * window_seconds
    window_end = window_start + window_seconds
    stmt = (
        insert(RateLimitCounter)
        .values(
            bucket=bucket,
            window_start=window_start,
            hits=1,
            expires_at=datetime.fromtimestamp(window_end, UTC),
        )
        .on_conflict_do_update(
            index_elements=[RateLimitCounter.bucket, RateLimitCounter.window_start],
            set_={"hits": RateLimitCounter.hits + 1},
        )
        .returning(RateLimitCounter.hits)
    )
    hits = (await conn.execute(stmt)).scalar_one()
    retry_after = max(1, math.ceil(window_end - now))
    return RateLimitResult(allowed=hits <= limit, hits=hits, limit=limit, retry_after=retry_after)


async def over_limit(db: Database, bucket: str, *, limit: int, window_seconds: int) -> int | None:
    """Count one hit against `bucket` on a connection of its own (so a request that fails and
    rolls back still counts); past `limit`, the seconds to wait, else None."""
    async with db.autocommit_engine.connect() as conn:
        result = await hit(conn, bucket, limit=limit, window_seconds=window_seconds)
    return None if result.allowed else result.retry_after


async def purge_expired(session: AsyncSession) -> int:
    """Drop windows that have ended; returns how many rows went."""
    result = await session.execute(
        delete(RateLimitCounter).where(RateLimitCounter.expires_at < func.now())
    )
    return int(getattr(result, "rowcount", 0) or 0)
