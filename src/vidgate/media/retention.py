"""Retention: uploads and task results are deleted from storage when their time is up, and their
rows marked (`uploads.expired_at`, `tasks.result_expired_at`) so that views say "expired".

Each batch is one transaction: the due rows are locked (`FOR UPDATE SKIP LOCKED`, so several
workers share the work without waiting on each other), marked, their objects deleted, and only
then is the mark committed. A process that dies before the commit leaves the rows unmarked, and
the next run picks them up again; deleting an object already gone is not an error. An object is
only ever deleted for a row this transaction marked.

An upload that a PENDING or RUNNING task uses as an input is never deleted: the vendor may still
fetch it. A task names its uploads by URL in its parameters, so "uses" is the upload's key
appearing in the parameters of a task of the same user.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import structlog
from sqlalchemy import ColumnElement, Text, and_, cast, exists, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from vidgate.media.models import Upload
from vidgate.media.storage import Storage
from vidgate.tasks.models import OPEN_STATUSES, RETRYABLE_STATUSES, Task

if TYPE_CHECKING:
    from vidgate.config import Settings
    from vidgate.db.engine import Database

logger = structlog.get_logger(__name__)

# Rows per transaction: small enough that the locks and the transaction are short even when
# each deletion is a round trip to S3.
BATCH = 100


@dataclass(frozen=True)
class Expired:
    """How many uploads and results one run deleted."""

    uploads: int = 0
    results: int = 0

    def __add__(self, other: Expired) -> Expired:
        return Expired(self.uploads + other.uploads, self.results + other.results)


def _uses_upload(*conditions: Any) -> ColumnElement[bool]:
    """A task of the upload's owner whose parameters name the upload (and meets `conditions`)."""
    return exists().where(
        Task.user_id == Upload.user_id,
        func.strpos(cast(Task.params, Text), Upload.storage_key) > 0,
        *conditions,
    )


def _upload_due(settings: Settings, now: datetime) -> ColumnElement[bool] | None:
    """Uploads past their retention: older than `upload_retention_days`, or used only by tasks
    that failed (none succeeded, none open) the last of which ended `failed_input_retention_days`
    ago. None when both are off."""
    rules: list[ColumnElement[bool]] = []
    if settings.upload_retention_days:
        rules.append(Upload.created_at < now - timedelta(days=settings.upload_retention_days))
    if settings.failed_input_retention_days:
        cutoff = now - timedelta(days=settings.failed_input_retention_days)
        rules.append(
            and_(
                _uses_upload(),
                ~_uses_upload(
                    or_(
                        Task.status.not_in(RETRYABLE_STATUSES),
                        Task.completed_at.is_(None),
                        Task.completed_at >= cutoff,
                    )
                ),
            )
        )
    return or_(*rules) if rules else None


async def _expire_uploads(
    session: AsyncSession,
    storage: Storage,
    now: datetime,
    due: ColumnElement[bool],
    limit: int,
    *,
    skip_locked: bool = True,
) -> int:
    """Lock, mark and delete up to `limit` stored uploads matching `due`; how many. Rows another
    transaction holds are skipped unless `skip_locked` is off."""
    locked = (
        select(Upload.id)
        .where(Upload.expired_at.is_(None), due, ~_uses_upload(Task.status.in_(OPEN_STATUSES)))
        .order_by(Upload.created_at)
        .limit(limit)
        .with_for_update(of=Upload, skip_locked=skip_locked)
    )
    return await _mark_and_delete(
        session,
        storage,
        update(Upload)
        .where(Upload.id.in_(locked.scalar_subquery()))
        .values(expired_at=now)
        .returning(Upload.storage_key),
    )


async def _expire_results(
    session: AsyncSession,
    storage: Storage,
    now: datetime,
    due: ColumnElement[bool],
    limit: int,
    *,
    skip_locked: bool = True,
) -> int:
    """Lock, mark and delete up to `limit` stored results matching `due`; how many (as
    `_expire_uploads`)."""
    locked = (
        select(Task.id)
        .where(Task.result_key.is_not(None), Task.result_expired_at.is_(None), due)
        .order_by(Task.completed_at)
        .limit(limit)
        .with_for_update(skip_locked=skip_locked)
    )
    return await _mark_and_delete(
        session,
        storage,
        update(Task)
        .where(Task.id.in_(locked.scalar_subquery()))
        .values(result_expired_at=now)
        .returning(Task.result_key),
    )


async def _mark_and_delete(session: AsyncSession, storage: Storage, mark: Any) -> int:
    """Run `mark` (an UPDATE of the locked rows returning their object keys), then delete those
    objects before the caller's transaction commits (an error here rolls the marks back, and the
    next run tries again); how many."""
    keys = [key for key in await session.scalars(mark) if key is not None]
    for key in keys:
        await storage.delete(key)
    return len(keys)


async def expire_due(
    db: Database,
    storage: Storage,
    settings: Settings,
    *,
    now: datetime | None = None,
    batch: int = BATCH,
) -> Expired:
    """Delete every upload and result past its retention, a batch per transaction."""
    now = now or datetime.now(UTC)
    total = Expired()
    upload_due = _upload_due(settings, now)
    result_due = (
        Task.completed_at < now - timedelta(days=settings.result_retention_days)
        if settings.result_retention_days
        else None
    )
    while True:
        async with db.transaction() as session:
            done = Expired(
                uploads=await _expire_uploads(session, storage, now, upload_due, batch)
                if upload_due is not None
                else 0,
                results=await _expire_results(session, storage, now, result_due, batch)
                if result_due is not None
                else 0,
            )
        total += done
        if done.uploads < batch and done.results < batch:
            return total


async def expire_media_of(
    session: AsyncSession, storage: Storage, user_ids: Sequence[uuid.UUID], now: datetime
) -> Expired:
    """Delete every stored upload and result of these accounts (anonymisation), in the caller's
    transaction: the accounts' personal data and their media go together or not at all. Rows a
    retention run holds are waited for rather than skipped (that run may yet roll back). Uploads
    an open task still uses stay until a later retention run."""
    total = Expired()
    if not user_ids:
        return total
    while True:
        done = Expired(
            uploads=await _expire_uploads(
                session, storage, now, Upload.user_id.in_(user_ids), BATCH, skip_locked=False
            ),
            results=await _expire_results(
                session, storage, now, Task.user_id.in_(user_ids), BATCH, skip_locked=False
            ),
        )
        total += done
        if done.uploads < BATCH and done.results < BATCH:
            return total


async def expired_object(db: Database, key: str) -> bool:
    """Whether `key` belonged to an upload or a result that was deleted and marked (`/media`
    answers 410 Gone for it rather than 404). Asked only when the object is missing."""
    async with db.reads() as session:
        return await _expired_object(session, key)


async def _expired_object(session: AsyncSession, key: str) -> bool:
    if key.startswith("uploads/"):
        found = await session.scalar(select(Upload.expired_at).where(Upload.storage_key == key))
    elif key.startswith("results/"):
        found = await session.scalar(
            select(Task.result_expired_at).where(
                Task.result_key == key, Task.result_expired_at.is_not(None)
            )
        )
    else:
        return False
    return found is not None
