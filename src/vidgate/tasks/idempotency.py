"""`Idempotency-Key` for create and retry calls, with Stripe's semantics.

The first request with a key claims it (committed at once, so a concurrent duplicate sees the
claim and gets 409). The response is stored in the same transaction that creates the task, so a
key either has its task and response or has neither. A request that fails gives its key back, so
the caller may try again with the same key once the cause (say, too few credits) is fixed. The
same key with another request body is refused with 422; keys are forgotten after 24 hours.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import delete, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from vidgate.db.engine import Database
from vidgate.tasks.errors import (
    IdempotencyKeyInFlight,
    IdempotencyKeyMalformed,
    IdempotencyKeyReused,
)
from vidgate.tasks.models import IdempotencyKey

HEADER = "Idempotency-Key"
MAX_KEY_LENGTH = 255
# How long a claim holds before a request that died without answering is presumed gone.
CLAIM_SECONDS = 120


@dataclass(frozen=True)
class Replay:
    status: int
    body: dict[str, Any]


def validate_key(key: str) -> str:
    if not key or len(key) > MAX_KEY_LENGTH or not key.isascii() or not key.isprintable():
        raise IdempotencyKeyMalformed(MAX_KEY_LENGTH)
    return key


def fingerprint(method: str, path: str, body: Any) -> str:
    """The request a key is bound to: method, path and the body as parsed (key order ignored)."""
    canonical = orjson.dumps(body, option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(f"{method} {path}\n".encode() + canonical).hexdigest()


async def claim(
    db: Database, user_id: uuid.UUID, key: str, print_: str, *, keep_hours: int
) -> Replay | None:
    """Claim `key` for this request (None: go ahead) or return the response to replay."""
    now = datetime.now(UTC)
    async with db.transaction() as session:  # its own: the claim is kept whatever follows
        await session.execute(
            delete(IdempotencyKey).where(
                IdempotencyKey.user_id == user_id,
                IdempotencyKey.key == key,
                IdempotencyKey.created_at < now - timedelta(hours=keep_hours),
            )
        )
        inserted = await session.scalar(
            insert(IdempotencyKey)
            .values(
                user_id=user_id,
                key=key,
                fingerprint=print_,
                locked_until=now + timedelta(seconds=CLAIM_SECONDS),
            )
            .on_conflict_do_nothing()
            .returning(IdempotencyKey.key)
        )
        if inserted is not None:
            return None
        row = await session.scalar(
            select(IdempotencyKey)
            .where(IdempotencyKey.user_id == user_id, IdempotencyKey.key == key)
            .with_for_update()
        )
        if row is None:  # released between our insert and select: the caller may retry
            raise IdempotencyKeyInFlight(retry=True)
        if row.fingerprint != print_:
            raise IdempotencyKeyReused()
        if row.response_status is not None and row.response_body is not None:
            return Replay(row.response_status, row.response_body)
        if row.locked_until > now:
            raise IdempotencyKeyInFlight()
        row.locked_until = now + timedelta(seconds=CLAIM_SECONDS)  # its request died: take over
        return None


async def record(
    session: AsyncSession, user_id: uuid.UUID, key: str, status: int, body: dict[str, Any]
) -> None:
    """Store the response, in the caller's transaction (the one that creates the task)."""
    await session.execute(
        update(IdempotencyKey)
        .where(IdempotencyKey.user_id == user_id, IdempotencyKey.key == key)
        .values(response_status=status, response_body=body)
    )


async def release(db: Database, user_id: uuid.UUID, key: str) -> None:
    """Forget an unanswered claim after its request failed."""
    async with db.transaction() as session:
        await session.execute(
            delete(IdempotencyKey).where(
                IdempotencyKey.user_id == user_id,
                IdempotencyKey.key == key,
                IdempotencyKey.response_status.is_(None),
            )
        )


async def purge(session: AsyncSession, *, keep_hours: int) -> int:
    result = await session.execute(
        delete(IdempotencyKey).where(
            IdempotencyKey.created_at < datetime.now(UTC) - timedelta(hours=keep_hours)
        )
    )
    return int(getattr(result, "rowcount", 0) or 0)
