"""Idempotency keys are forgotten once they are older than they are kept."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from vidgate.db.engine import Database
from vidgate.tasks import idempotency
from vidgate.tasks.models import IdempotencyKey
from vidgate.users import service as users


async def test_purge_drops_only_keys_older_than_the_keep_window(rollback_db: Database) -> None:
    async with rollback_db.session() as session:
        phone = f"+86138{uuid.uuid4().int % 10**8:08d}"
        user, _ = await users.sign_in_by_phone(
            session, phone, username="keys", region="CN", signup_bonus=0
        )
        now = datetime.now(UTC)
        for key, age in (("old", timedelta(hours=25)), ("fresh", timedelta(hours=23))):
            session.add(
                IdempotencyKey(
                    user_id=user.id,
                    key=key,
                    fingerprint="f",
                    locked_until=now,
                    created_at=now - age,
                )
            )
        await session.commit()
        user_id = user.id

    async with rollback_db.session() as session:
        assert await idempotency.purge(session, keep_hours=24) >= 1
        await session.commit()
    async with rollback_db.session() as session:
        left = await session.scalars(
            select(IdempotencyKey.key).where(IdempotencyKey.user_id == user_id)
        )
        assert list(left) == ["fresh"]
