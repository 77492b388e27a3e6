"""A new task's first step is queued in the transaction that creates it: a task never exists
without its job (waiting for the sweeper), and a rolled-back create leaves no job behind."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text

from vidgate.db.engine import Database
from vidgate.tasks import service
from vidgate.tasks.jobs import ADVANCE, queue_first_step
from vidgate.tasks.schemas import TextToVideoRequest
from vidgate.users import service as users

from ..fixtures.app import Live
from ..fixtures.databases import database_of_its_own


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    """A database no worker watches, so a queued job stays where the create left it."""
    async with database_of_its_own(database_url, "vidgate_queueing") as url:
        database = Database(url, pool_size=2, max_overflow=0)
        try:
            yield database
        finally:
            await database.dispose()


async def _jobs_of(db: Database, task_id: uuid.UUID) -> list[tuple[str, str, dict[str, str]]]:
    async with db.reads() as session:
        rows = await session.execute(
            text(
                "SELECT task_name, status, args FROM procrastinate_jobs WHERE queueing_lock = :lock"
            ),
            {"lock": f"task:{task_id}"},
        )
        return [(r.task_name, r.status, r.args) for r in rows]


async def test_the_first_step_is_queued_with_the_task_or_not_at_all(
    live: Live, db: Database
) -> None:
    async with db.session() as session:
        user, _ = await users.sign_in_by_phone(
            session, "+8613800000001", username="queue", region="CN", signup_bonus=100
        )
        await session.commit()
    prepared = await service.prepare(
        live.runtime.media_resolver,
        live.runtime.catalog,
        user.id,
        "text-to-video",
        TextToVideoRequest(prompt="queued with its task"),
    )

    async with db.session() as session:
        dropped = await service.create(session, live.settings, user.id, prepared)
        await queue_first_step(session, dropped.id)
        await session.rollback()
    assert await _jobs_of(db, dropped.id) == []

    async with db.session() as session:
        kept = await service.create(session, live.settings, user.id, prepared)
        await queue_first_step(session, kept.id)
        # Not visible outside the transaction until it commits.
        assert await _jobs_of(db, kept.id) == []
        await session.commit()
    assert await _jobs_of(db, kept.id) == [(ADVANCE, "todo", {"task_id": str(kept.id)})]
