"""Task status reads are served from a per-process cache that every change evicts."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
from sqlalchemy import func, update

from vidgate.tasks.models import Task

from ..fixtures.app import DEV_CLIENT_KEY, Live
from ..fixtures.tasks import account, new_caller, text_to_video


async def _status(http: httpx.AsyncClient, task_id: str, headers: dict[str, str]) -> Any:
    response = await http.get(f"/api/videos/tasks/{task_id}", headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


async def _until(http: httpx.AsyncClient, task_id: str, check: Any) -> dict[str, Any]:
    key = {"X-API-Key": DEV_CLIENT_KEY}
    for _ in range(200):
        body: dict[str, Any] = await _status(http, task_id, key)
        if check(body):
            return body
        await asyncio.sleep(0.02)
    raise AssertionError(f"never satisfied; last: {body}")


async def test_a_change_made_elsewhere_shows_up_and_owners_are_still_checked(
    live: Live, http: httpx.AsyncClient
) -> None:
    caller = await new_caller(http)
    task_id = await text_to_video(http, caller, "stays running [fault:stuck]")
    await _until(http, task_id, lambda t: t["status"] == "RUNNING")
    cache = live.runtime.task_views
    for _ in range(100):  # kept by a read that no other eviction overlapped
        await _status(http, task_id, {"X-API-Key": DEV_CLIENT_KEY})
        if cache.get(uuid.UUID(task_id)) is not None:
            break
    assert cache.get(uuid.UUID(task_id)) is not None

    # Another user cannot read it through the cache either.
    stranger = await new_caller(http)
    refused = await http.get(f"/api/videos/tasks/{task_id}", headers=stranger.headers)
    assert refused.status_code == 404
    assert refused.json() == {"detail": "Task not found"}

    # A write by another connection (as a worker process would make) evicts it.
    async with live.runtime.db.session() as session:
        await session.execute(update(Task).where(Task.id == uuid.UUID(task_id)).values(progress=77))
        await session.commit()
    seen = await _until(http, task_id, lambda t: t["progress"] == 77)
    assert seen["status"] == "RUNNING"

    # A cancel kie.ai refuses changes the row, not the status: the cached view shows it too.
    refused = await http.delete(
        f"/api/tasks/{task_id}", headers={"Authorization": caller.headers["Authorization"]}
    )
    assert refused.status_code == 200, refused.text
    assert refused.json()["cancel_outcome"] == "not_cancelable"
    seen = await _until(http, task_id, lambda t: t["cancel_outcome"] == "not_cancelable")
    assert seen["status"] == "RUNNING"

    async with live.runtime.db.session() as session:  # its deadline passes
        await session.execute(
            update(Task).where(Task.id == uuid.UUID(task_id)).values(deadline_at=func.now())
        )
        await session.commit()
    await _until(http, task_id, lambda t: t["status"] == "TIMEOUT")
    final = await _status(http, task_id, caller.headers)  # the money: for its owner's eyes
    assert (final["credits_charged"], final["credits_refunded"]) == (20, 20)
    credits, reserved, _ = await account(live.runtime.db, caller.user_id)
    assert (credits, reserved) == (100, 0)
