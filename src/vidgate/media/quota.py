"""The per-user storage quota: what an account keeps stored (live uploads and live task results)
may not pass `storage_quota_bytes` through an upload.

Two uploads of one user at once must not both fit under the quota on the strength of the same
reading. `ensure_room` takes a transaction-scoped advisory lock on the user's quota before it
sums, and the caller inserts its `uploads` row and commits in that same transaction: the second
upload's sum waits for the first one's commit and counts it. An advisory lock rather than the
`users` row lock, so that an upload's check never waits behind (or holds up) the credit ledger,
which locks that row; and rather than a counter column, so that retention, account deletion and
`vidgate storage gc` need not keep a counter right: the sum is over two indexed columns of one
user's rows.

Results count towards what is stored but are never refused: the user paid for them.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from vidgate.media.errors import StorageQuotaExceeded
from vidgate.media.models import Upload
from vidgate.tasks.models import Task

if TYPE_CHECKING:
    from vidgate.config import Settings


async def stored_bytes(session: AsyncSession, user_id: uuid.UUID) -> int:
    """Bytes of the user's uploads and task results still in storage."""
    uploads = select(func.coalesce(func.sum(Upload.size), 0)).where(
        Upload.user_id == user_id, Upload.expired_at.is_(None)
    )
    results = select(func.coalesce(func.sum(Task.result_size), 0)).where(
        Task.user_id == user_id, Task.result_key.is_not(None), Task.result_expired_at.is_(None)
    )
    total = await session.scalar(select(uploads.scalar_subquery() + results.scalar_subquery()))
    return int(total or 0)


async def ensure_room(
    session: AsyncSession, user_id: uuid.UUID, size: int, settings: Settings
) -> None:
    """Refuse (413) a new object of `size` bytes that would take the user over the quota.

    Holds the user's quota lock until the caller's transaction ends: insert the row in it."""
    quota = settings.storage_quota_bytes
    if not quota:
        return
    await session.execute(
        text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"),
        {"key": f"storage-quota:{user_id}"},
    )
    used = await stored_bytes(session, user_id)
    if used + size > quota:
        raise StorageQuotaExceeded(
            f"Storage quota of {human_bytes(quota)} exceeded: {human_bytes(used)} used and this"
            f" file is {human_bytes(size)}; {_how_room_is_made(settings)}"
        )


def _how_room_is_made(settings: Settings) -> str:
    if settings.upload_retention_days:
        return f"uploads are deleted {settings.upload_retention_days} days after they are made"
    return "ask the operator to raise the quota"


def human_bytes(count: int) -> str:
    """`count` in the largest binary unit that keeps it at least 1, e.g. "1.5 GiB"."""
    value = float(count)
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if value < 1024:
            return f"{count} bytes" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TiB"
