"""What storage holds against what the database says it holds: `vidgate storage report` and
`vidgate storage gc`.

Two kinds of object have rows: uploads (`uploads/…`, an `uploads` row) and task results
(`results/…`, `tasks.result_key`). An orphan is an object of those kinds with no row still
pointing at it (none, or one marked expired: a deletion that did not finish). A missing object is
a live row whose object is gone; gc marks such rows expired so views stop linking to them.
Keys under any other prefix belong to no row vidgate knows of and are counted, never touched.

Emulator renders (the development vendors' videos, under the data dir) are counted too; gc
removes those older than the longest time an emulator keeps a result link alive.

Objects younger than `min_age` are left alone: an upload or a result is written to storage a
moment before its row commits, so a fresh object without a row may be one about to get it.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select, union_all, update

from vidgate.media.models import Upload
from vidgate.media.storage import ListedObject, Storage
from vidgate.tasks.models import Task
from vidgate.users.models import User

if TYPE_CHECKING:
    from vidgate.db.engine import Database

# A fresh object without a row may be one whose row is about to commit.
DEFAULT_MIN_AGE = timedelta(hours=24)
# The longest an emulator keeps a result link alive (the fal emulator's 7 days).
EMULATOR_RENDER_TTL = timedelta(days=7)
TOP_USERS = 10
KINDS = ("uploads", "results")


@dataclass
class Tally:
    """A count of objects and their bytes."""

    count: int = 0
    bytes: int = 0

    def add(self, size: int) -> None:
        self.count += 1
        self.bytes += size


@dataclass
class KindReport:
    """One kind of object: what storage holds, what its live rows say, and where they differ."""

    kind: str
    stored: Tally = field(default_factory=Tally)
    live_rows: Tally = field(default_factory=Tally)
    expired_rows: int = 0
    orphans: list[ListedObject] = field(default_factory=list)  # old enough to delete
    young_orphans: int = 0  # without a row, but maybe about to get one
    missing: list[str] = field(default_factory=list)  # live rows' keys with no object

    @property
    def orphan_bytes(self) -> int:
        return sum(o.size for o in self.orphans)


@dataclass
class StorageReport:
    kinds: list[KindReport]
    other: Tally  # objects under prefixes no row refers to
    emulator_renders: Tally
    old_emulator_renders: list[Path]
    top_users: list[tuple[uuid.UUID, str, int]]  # id, username, bytes stored


@dataclass(frozen=True)
class _Row:
    size: int
    created: datetime


async def _live_rows(db: Database, kind: str) -> tuple[dict[str, _Row], int]:
    """The live rows of `kind` by key (size, when written), and how many rows are expired."""
    live: Any
    expired: Any
    if kind == "uploads":
        live = select(Upload.storage_key, Upload.size, Upload.created_at).where(
            Upload.expired_at.is_(None)
        )
        expired = select(func.count()).where(Upload.expired_at.is_not(None))
    else:
        live = select(
            Task.result_key,
            func.coalesce(Task.result_size, 0),
            func.coalesce(Task.completed_at, Task.updated_at),
        ).where(Task.result_key.is_not(None), Task.result_expired_at.is_(None))
        expired = select(func.count()).where(Task.result_expired_at.is_not(None))
    async with db.session() as session:
        result = await session.stream(live.execution_options(yield_per=5000))
        rows = {row[0]: _Row(row[1], row[2]) async for row in result}
        return rows, int(await session.scalar(expired) or 0)


async def _inspect_kind(
    db: Database, storage: Storage, kind: str, *, now: datetime, min_age: timedelta
) -> KindReport:
    report = KindReport(kind)
    started = datetime.now(UTC)
    rows, report.expired_rows = await _live_rows(db, kind)
    seen: set[str] = set()
    async for listed in storage.list_keys(f"{kind}/"):
        report.stored.add(listed.size)
        if listed.key in rows:
            seen.add(listed.key)
        elif listed.modified < now - min_age:
            report.orphans.append(listed)
        else:
            report.young_orphans += 1
    for key, row in rows.items():
        report.live_rows.add(row.size)
        # A row written after the listing began may have an object the listing passed by.
        if key not in seen and row.created < started and not await storage.exists(key):
            report.missing.append(key)
    return report


async def _other_prefixes(storage: Storage) -> Tally:
    other = Tally()
    async for listed in storage.list_keys(""):
        if listed.key.split("/", 1)[0] not in KINDS:
            other.add(listed.size)
    return other


def _emulator_renders(data_dir: Path) -> Iterator[tuple[Path, int, datetime]]:
    for path in (data_dir / "emulators").glob("*/results/*"):
        try:
            info = path.stat()
        except FileNotFoundError:
            continue
        if path.is_file():
            yield path, info.st_size, datetime.fromtimestamp(info.st_mtime, UTC)


async def top_users(db: Database, limit: int = TOP_USERS) -> list[tuple[uuid.UUID, str, int]]:
    """The accounts storing the most bytes (live uploads and results), largest first."""
    stored = union_all(
        select(Upload.user_id.label("user_id"), Upload.size.label("size")).where(
            Upload.expired_at.is_(None)
        ),
        select(Task.user_id, func.coalesce(Task.result_size, 0)).where(
            Task.result_key.is_not(None), Task.result_expired_at.is_(None)
        ),
    ).subquery()
    total = func.sum(stored.c.size).label("total")
    query = (
        select(stored.c.user_id, User.username, total)
        .join(User, User.id == stored.c.user_id)
        .group_by(stored.c.user_id, User.username)
        .order_by(total.desc())
        .limit(limit)
    )
    async with db.session() as session:
        return [(row[0], row[1], int(row[2])) for row in await session.execute(query)]


async def inspect(
    db: Database,
    storage: Storage,
    data_dir: Path,
    *,
    min_age: timedelta = DEFAULT_MIN_AGE,
    now: datetime | None = None,
) -> StorageReport:
    """Compare storage with the rows (reads only)."""
    now = now or datetime.now(UTC)
    kinds = [await _inspect_kind(db, storage, k, now=now, min_age=min_age) for k in KINDS]
    renders = Tally()
    old_renders: list[Path] = []
    for path, size, modified in _emulator_renders(data_dir):
        renders.add(size)
        if modified < now - EMULATOR_RENDER_TTL:
            old_renders.append(path)
    return StorageReport(
        kinds=kinds,
        other=await _other_prefixes(storage),
        emulator_renders=renders,
        old_emulator_renders=old_renders,
        top_users=await top_users(db),
    )


@dataclass(frozen=True)
class Collected:
    """What gc removed or marked."""

    objects_deleted: int
    bytes_freed: int
    rows_marked: Counter[str]
    renders_deleted: int


async def collect(db: Database, storage: Storage, report: StorageReport) -> Collected:
    """Act on a report: delete its orphans and old emulator renders, mark the rows whose object
    is missing (guarded: a row marked meanwhile is left as it is)."""
    now = datetime.now(UTC)
    deleted = freed = 0
    marked: Counter[str] = Counter()
    for kind in report.kinds:
        for orphan in kind.orphans:
            await storage.delete(orphan.key)
            deleted += 1
            freed += orphan.size
        if kind.missing:
            marked[kind.kind] = await _mark_missing(db, kind.kind, kind.missing, now)
    renders = 0
    for path in report.old_emulator_renders:
        path.unlink(missing_ok=True)
        renders += 1
    return Collected(deleted, freed, marked, renders)


async def _mark_missing(db: Database, kind: str, keys: list[str], now: datetime) -> int:
    statement: Any
    if kind == "uploads":
        statement = (
            update(Upload)
            .where(Upload.storage_key.in_(keys), Upload.expired_at.is_(None))
            .values(expired_at=now)
            .returning(Upload.id)
        )
    else:
        statement = (
            update(Task)
            .where(Task.result_key.in_(keys), Task.result_expired_at.is_(None))
            .values(result_expired_at=now)
            .returning(Task.id)
        )
    async with db.transaction() as session:
        return len((await session.execute(statement)).all())
