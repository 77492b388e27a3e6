"""The suite's own fixtures: a rolled-back database keeps what its sessions commit to itself, and
leaves nothing behind."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from vidgate.db.engine import Database
from vidgate.users.models import User

from .fixtures.rollback import rolled_back


def a_user(user_id: uuid.UUID) -> User:
    return User(
        id=user_id, username="rolled back", region="CN", phone=f"+86139{user_id.int % 10**8:08d}"
    )


async def test_commits_are_seen_by_the_next_session_only_and_undone_at_the_end(
    db: Database,
) -> None:
    user_id = uuid.uuid4()
    async with rolled_back(db) as rolled:
        async with rolled.session() as s:
            s.add(a_user(user_id))
            await s.commit()
        async with rolled.session() as s:
            assert await s.get(User, user_id) is not None
        async with db.session() as s:  # another connection
            assert await s.get(User, user_id) is None
        async with rolled.session() as s:  # a failed session takes back only its own work
            s.add(a_user(user_id))
            with pytest.raises(IntegrityError):
                await s.flush()
            await s.rollback()
        async with rolled.session() as s:
            assert await s.get(User, user_id) is not None
    async with db.session() as s:
        assert await s.get(User, user_id) is None


async def test_rollback_session_joins_rollback_db(
    rollback_session: AsyncSession, rollback_db: Database
) -> None:
    user_id = uuid.uuid4()
    rollback_session.add(a_user(user_id))
    await rollback_session.commit()
    async with rollback_db.session() as s:
        assert await s.get(User, user_id) is not None
