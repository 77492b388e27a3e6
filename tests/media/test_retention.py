"""Retention: expired uploads and results are deleted and their rows marked, views say so, and
deleted accounts lose their media. Time is moved by backdating the rows under test, so uploads
and tasks of other tests (all fresh) are never due."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update

from vidgate.db.engine import Database
from vidgate.media import retention
from vidgate.media.local import LocalStorage
from vidgate.media.models import Upload
from vidgate.media.storage import Storage, new_object_key
from vidgate.runtime import Runtime
from vidgate.tasks.models import Task, TaskStatus
from vidgate.users.models import User
from vidgate.users.service import anonymize_due_accounts

from ..fixtures.app import DEV_CLIENT_KEY
from ..fixtures.samples import png_bytes
from ..fixtures.tasks import Caller, new_caller

# Every field docs/api.md §4.1 promises in a task's status body.
CONTRACT_FIELDS = {
    "task_id",
    "user_id",
    "task_type",
    "status",
    "progress",
    "result_url",
    "error_message",
    "created_at",
    "updated_at",
    "completed_at",
    "error_code",
    "billing_mode",
    "credits_estimated",
    "credits_reserved",
    "credits_charged",
    "credits_refunded",
    "estimated_time",
    "result_duration_seconds",
    "inputs",
    "retry_of",
    "cancel_requested",
    "cancel_outcome",
    "cancel_message",
}


async def upload(client: httpx.AsyncClient, who: Caller) -> tuple[str, str]:
    """Upload a small image; its (key, URL)."""
    response = await client.post(
        "/api/videos/upload",
        headers=who.headers,
        files={"file": ("face.png", png_bytes())},
        data={"file_type": "image"},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    return body["storage_key"], body["file_url"]


async def backdate_upload(db: Database, key: str, days: float) -> None:
    async with db.transaction() as s:
        await s.execute(
            update(Upload)
            .where(Upload.storage_key == key)
            .values(created_at=datetime.now(UTC) - timedelta(days=days))
        )


async def add_task(
    db: Database,
    storage: Storage,
    who: Caller,
    status: TaskStatus,
    *,
    inputs: dict[str, Any] | None = None,
    ended_days_ago: float | None = None,
    with_result: bool = False,
) -> tuple[uuid.UUID, str | None]:
    """A task row as the worker leaves it (and its result object); its id and result key."""
    now = datetime.now(UTC)
    key = None
    size = None
    if with_result:
        key = new_object_key("results", ".mp4")
        stored = await storage.put_stream(key, _chunks(b"video" * 100), content_type="video/mp4")
        size = stored.size
    ended = now - timedelta(days=ended_days_ago) if ended_days_ago is not None else None
    task = Task(
        id=uuid.uuid4(),
        user_id=who.user_id,
        kind="t2v",
        provider="fal",
        model="test-model",
        params=inputs or {"prompt": "a cat"},
        upstream_request={},
        status=status,
        billing_mode="prepaid",
        unit_price=10,
        credits_estimated=10,
        credits_charged=10,
        estimated_seconds=60,
        deadline_at=now + timedelta(hours=1),
        result_key=key,
        result_size=size,
        completed_at=ended,
    )
    async with db.transaction() as s:
        s.add(task)
    return task.id, key


async def _chunks(data: bytes) -> Any:
    yield data


def stored(runtime: Runtime, key: str) -> bool:
    return (runtime.settings.data_dir / "media" / key).is_file()


async def upload_row(db: Database, key: str) -> Upload:
    async with db.session() as s:
        row = await s.scalar(select(Upload).where(Upload.storage_key == key))
    assert row is not None
    return row


async def task_row(db: Database, task_id: uuid.UUID) -> Task:
    async with db.session() as s:
        return await s.get_one(Task, task_id)


# --- the expiry job ------------------------------------------------------------------------------


async def test_expiry_deletes_what_is_due_and_keeps_the_rest(
    client: httpx.AsyncClient, runtime: Runtime, db: Database
) -> None:
    settings = runtime.settings
    assert (settings.upload_retention_days, settings.result_retention_days) == (30, 90)
    assert settings.failed_input_retention_days == 7
    storage = runtime.storage
    who = await new_caller(client)
    old, _ = await upload(client, who)
    fresh, _ = await upload(client, who)
    in_use, in_use_url = await upload(client, who)
    failed_long_ago, failed_long_ago_url = await upload(client, who)
    failed_lately, failed_lately_url = await upload(client, who)
    for key in (old, in_use):
        await backdate_upload(db, key, 31)
    for key in (fresh, failed_long_ago, failed_lately):
        await backdate_upload(db, key, 10)
    await add_task(db, storage, who, TaskStatus.RUNNING, inputs={"image_urls": [in_use_url]})
    await add_task(
        db,
        storage,
        who,
        TaskStatus.FAILED,
        inputs={"image_url": failed_long_ago_url},
        ended_days_ago=8,
    )
    await add_task(
        db,
        storage,
        who,
        TaskStatus.FAILED,
        inputs={"image_url": failed_lately_url},
        ended_days_ago=1,
    )
    old_result_task, old_result = await add_task(
        db, storage, who, TaskStatus.SUCCEEDED, ended_days_ago=91, with_result=True
    )
    new_result_task, new_result = await add_task(
        db, storage, who, TaskStatus.SUCCEEDED, ended_days_ago=89, with_result=True
    )
    assert old_result is not None and new_result is not None

    await retention.expire_due(db, storage, settings)

    for key in (old, failed_long_ago):
        assert not stored(runtime, key)
        assert (await upload_row(db, key)).expired_at is not None
    for key in (fresh, in_use, failed_lately):
        assert stored(runtime, key)
        assert (await upload_row(db, key)).expired_at is None
    assert not stored(runtime, old_result)
    assert (await task_row(db, old_result_task)).result_expired_at is not None
    assert stored(runtime, new_result)
    assert (await task_row(db, new_result_task)).result_expired_at is None

    # Running again changes nothing: what is marked is not deleted twice, the rest is not due.
    marked_at = (await upload_row(db, old)).expired_at
    await retention.expire_due(db, storage, settings)
    assert (await upload_row(db, old)).expired_at == marked_at
    assert stored(runtime, fresh) and stored(runtime, in_use) and stored(runtime, new_result)


async def test_expired_result_and_media_answer_as_expired(
    client: httpx.AsyncClient, runtime: Runtime, db: Database
) -> None:
    who = await new_caller(client)
    task_id, result = await add_task(
        db, runtime.storage, who, TaskStatus.SUCCEEDED, ended_days_ago=100, with_result=True
    )
    old_upload, old_url = await upload(client, who)
    await backdate_upload(db, old_upload, 40)
    before = await client.get(f"/api/tasks/{task_id}", headers=who.headers)
    assert before.json()["result_url"].endswith(f"/media/{result}")
    assert (await client.get(f"/media/{result}")).status_code == 200

    await retention.expire_due(db, runtime.storage, runtime.settings)

    view = await client.get(f"/api/tasks/{task_id}", headers=who.headers)
    assert view.status_code == 200
    body = view.json()
    assert body.keys() >= CONTRACT_FIELDS
    assert body["status"] == "SUCCEEDED"
    assert body["result_url"] is None
    assert body["result_expired"] is True and body["result_expired_at"] is not None
    # A client key alone sees the same outcome.
    reduced = await client.get(f"/api/tasks/{task_id}", headers={"X-API-Key": DEV_CLIENT_KEY})
    assert reduced.json()["result_expired"] is True and reduced.json()["result_url"] is None
    for key in (result, old_upload):
        gone = await client.get(f"/media/{key}")
        assert gone.status_code == 410
        assert "expired" in gone.json()["detail"]
    never = await client.get(f"/media/{new_object_key('uploads', '.png')}")
    assert never.status_code == 404 and never.json() == {"detail": "Not found"}
    # A task asking for the expired upload is told so, not sent off with a dead link.
    refused = await client.post(
        "/api/videos/image-to-video",
        headers=who.headers,
        json={"prompt": "a cat", "image_urls": [old_url]},
    )
    assert refused.status_code == 400, refused.text
    assert "expired" in refused.json()["detail"]


class FailingStorage:
    """The runtime's storage, except that deleting fails (a process dying mid-batch)."""

    def __init__(self, inner: Storage) -> None:
        self.inner = inner

    async def delete(self, key: str) -> None:
        raise OSError("storage unreachable")

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


async def test_a_batch_that_fails_is_retried_and_a_missing_object_is_fine(
    client: httpx.AsyncClient, runtime: Runtime, db: Database
) -> None:
    who = await new_caller(client)
    first, _ = await upload(client, who)
    already_gone, _ = await upload(client, who)
    for key in (first, already_gone):
        await backdate_upload(db, key, 45)
    with pytest.raises(OSError):
        await retention.expire_due(db, FailingStorage(runtime.storage), runtime.settings)  # type: ignore[arg-type]
    assert (await upload_row(db, first)).expired_at is None  # the mark was rolled back
    assert stored(runtime, first)

    await runtime.storage.delete(already_gone)
    await retention.expire_due(db, runtime.storage, runtime.settings)
    for key in (first, already_gone):
        assert (await upload_row(db, key)).expired_at is not None
        assert not stored(runtime, key)


class CountingStorage:
    """The runtime's storage, counting deletions per key, each one slow enough to overlap."""

    def __init__(self, inner: Storage) -> None:
        self.inner = inner
        self.deleted: Counter[str] = Counter()

    async def delete(self, key: str) -> None:
        self.deleted[key] += 1
        await asyncio.sleep(0.01)
        await self.inner.delete(key)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


async def test_concurrent_runs_share_the_work_without_deleting_twice(
    client: httpx.AsyncClient, runtime: Runtime, db: Database
) -> None:
    who = await new_caller(client)
    keys = [(await upload(client, who))[0] for _ in range(6)]
    for key in keys:
        await backdate_upload(db, key, 60)
    counting = CountingStorage(runtime.storage)
    runs = await asyncio.gather(
        *(
            retention.expire_due(db, counting, runtime.settings, batch=2)  # type: ignore[arg-type]
            for _ in range(3)
        )
    )
    assert sum(run.uploads for run in runs) == len(keys)
    assert {key: counting.deleted[key] for key in keys} == dict.fromkeys(keys, 1)
    for key in keys:
        assert (await upload_row(db, key)).expired_at is not None
        assert not stored(runtime, key)


async def test_nothing_expires_when_retention_is_off(
    client: httpx.AsyncClient, runtime: Runtime, db: Database
) -> None:
    who = await new_caller(client)
    key, _ = await upload(client, who)
    await backdate_upload(db, key, 3650)
    _, result = await add_task(
        db, runtime.storage, who, TaskStatus.SUCCEEDED, ended_days_ago=3650, with_result=True
    )
    forever = runtime.settings.model_copy(
        update={
            "upload_retention_days": 0,
            "result_retention_days": 0,
            "failed_input_retention_days": 0,
        }
    )
    assert await retention.expire_due(db, runtime.storage, forever) == retention.Expired()
    assert stored(runtime, key) and result is not None and stored(runtime, result)


# --- account deletion ----------------------------------------------------------------------------


async def test_anonymising_an_account_deletes_its_media(
    client: httpx.AsyncClient, runtime: Runtime, db: Database
) -> None:
    who = await new_caller(client)
    mine, _ = await upload(client, who)
    task_id, result = await add_task(
        db, runtime.storage, who, TaskStatus.SUCCEEDED, ended_days_ago=1, with_result=True
    )
    other = await new_caller(client)
    theirs, _ = await upload(client, other)
    assert result is not None
    deleted = await client.delete("/api/users/account", headers=who.headers)
    assert deleted.status_code == 200
    async with db.transaction() as s:
        await s.execute(
            update(User)
            .where(User.id == who.user_id)
            .values(purge_after=datetime.now(UTC) - timedelta(minutes=1))
        )
    async with db.transaction() as s:
        assert await anonymize_due_accounts(s, runtime.storage) >= 1

    assert not stored(runtime, mine) and not stored(runtime, result)
    assert (await upload_row(db, mine)).expired_at is not None
    assert (await task_row(db, task_id)).result_expired_at is not None
    assert stored(runtime, theirs)
    assert (await upload_row(db, theirs)).expired_at is None


async def test_local_listing_skips_files_being_written(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path, "http://test")
    (tmp_path / "uploads" / "2026" / "12").mkdir(parents=True)
    (tmp_path / "uploads" / "2026" / "12" / "a.png").write_bytes(b"12345")
    (tmp_path / "uploads" / "2026" / "12" / ".a.png.x.part").write_bytes(b"1")
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "b.mp4").write_bytes(b"1")

    async def listed(prefix: str) -> list[tuple[str, int]]:
        return sorted([(o.key, o.size) async for o in storage.list_keys(prefix)])

    assert await listed("uploads/") == [("uploads/2026/12/a.png", 5)]
    assert await listed("") == [("results/b.mp4", 1), ("uploads/2026/12/a.png", 5)]
    assert await listed("nothing/") == []
