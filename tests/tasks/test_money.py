"""Money under stress: racing creates against a small balance, several workers advancing one task,
and the same task closed by competing paths. The ledger must balance after every test."""

from __future__ import annotations

import asyncio
import uuid

import httpx
from sqlalchemy import func, select

from vidgate.emulators.kie import KieEmulator
from vidgate.tasks import lifecycle, service
from vidgate.tasks.models import Task, TaskStatus
from vidgate.tasks.schemas import TextToVideoRequest

from ..fixtures.app import Live
from ..fixtures.tasks import account, new_caller, text_to_video, wait_for


async def test_fifty_concurrent_creates_with_credits_for_five(
    live: Live, http: httpx.AsyncClient
) -> None:
    """100 credits buy exactly five 20-credit tasks: five are created, 45 get 402, none overdraw."""
    caller = await new_caller(http)

    async def create(i: int) -> httpx.Response:
        return await http.post(
            "/api/videos/text-to-video",
            headers=caller.headers,
            json={"prompt": f"race {i} [fault:throttle]"},  # never sent: a cancel refunds it
        )

    responses = await asyncio.gather(*(create(i) for i in range(50)))
    codes = sorted(r.status_code for r in responses)
    assert codes == [200] * 5 + [402] * 45, codes
    refused = next(r for r in responses if r.status_code == 402)
    assert refused.json()["detail"].startswith("Insufficient credits. Required: 20 credits")
    credits, reserved, rows = await account(live.runtime.db, caller.user_id)
    assert (credits, reserved) == (0, 0)
    assert [kind for kind, _, _ in rows] == ["signup_bonus"] + ["charge"] * 5
    async with live.runtime.db.session() as session:
        count = await session.scalar(
            select(func.count()).select_from(Task).where(Task.user_id == caller.user_id)
        )
    assert count == 5

    created = [r.json()["task_id"] for r in responses if r.status_code == 200]
    for task_id in created:
        canceled = await http.delete(f"/api/tasks/{task_id}", headers=caller.headers)
        assert canceled.status_code == 200, canceled.text
    for task_id in created:
        task = await wait_for(http, caller, task_id)
        assert task["status"] == "CANCELED"
    credits, reserved, rows = await account(live.runtime.db, caller.user_id)
    assert (credits, reserved) == (100, 0)
    assert sorted(kind for kind, _, _ in rows) == sorted(
        ["signup_bonus"] + ["charge"] * 5 + ["refund"] * 5
    )


async def _task_without_job(live: Live, user_id: uuid.UUID, prompt: str) -> uuid.UUID:
    """A task created the way the API does, minus the job: only this test's calls advance it
    (until the sweeper notices it, which only adds one more racer)."""
    runtime = live.runtime
    async with runtime.db.session() as session:
        body = TextToVideoRequest(prompt=prompt)
        prepared = await service.prepare(
            runtime.media_resolver, runtime.catalog, user_id, "text-to-video", body
        )
        task = await service.create(session, live.settings, user_id, prepared)
        await session.commit()
        return task.id


async def test_racing_workers_submit_once_and_settle_once(
    live: Live, http: httpx.AsyncClient
) -> None:
    caller = await new_caller(http)
    task_id = await _task_without_job(live, caller.user_id, "four workers, one video")
    deps = live.runtime
    kie = next(e for e in live.runtime.providers.emulators if isinstance(e, KieEmulator))
    submits_before = len(kie.task_ids())

    async with asyncio.timeout(60):
        while True:
            await asyncio.gather(*(lifecycle.advance(deps, task_id) for _ in range(4)))
            async with live.runtime.db.session() as session:
                task = await session.get_one(Task, task_id)
            if task.status not in ("PENDING", "RUNNING"):
                break
            await asyncio.sleep(0.05)

    assert task.status == TaskStatus.SUCCEEDED
    assert len(kie.task_ids()) - submits_before == 1  # one upstream task, however many workers
    credits, reserved, rows = await account(live.runtime.db, caller.user_id)
    assert (credits, reserved) == (80, 0)
    assert rows == [("signup_bonus", 100, 0), ("charge", -20, 0)]
    assert task.result_key is not None
    assert await live.runtime.storage.exists(task.result_key)


async def test_cancel_racing_failure_refunds_once(live: Live, http: httpx.AsyncClient) -> None:
    """Every path that can close a task tries at once; one wins, one refund is written."""
    caller = await new_caller(http)
    task_id = await _task_without_job(live, caller.user_id, "closed from all sides [fault:stuck]")
    db = live.runtime.db

    async def close(status: TaskStatus) -> bool:
        async with db.session() as session:
            closed = await service.close(
                session, task_id, status, live.runtime.storage, error_code=status.lower()
            )
            await session.commit()
            return closed is not None

    outcomes = await asyncio.gather(
        *(close(s) for s in (TaskStatus.FAILED, TaskStatus.TIMEOUT, TaskStatus.CANCELED) * 3)
    )
    assert sum(outcomes) == 1
    credits, reserved, rows = await account(db, caller.user_id)
    assert (credits, reserved) == (100, 0)
    assert rows == [("signup_bonus", 100, 0), ("charge", -20, 0), ("refund", 20, 0)]


async def test_deadline_turns_a_stuck_task_into_timeout_with_refund(
    live: Live, http: httpx.AsyncClient
) -> None:
    caller = await new_caller(http)
    task_id = await text_to_video(http, caller, "never finishes [fault:stuck]")
    await wait_for(http, caller, task_id, {"RUNNING"})
    async with live.runtime.db.session() as session:  # the deadline passes
        task = await session.get_one(Task, uuid.UUID(task_id))
        task.deadline_at = func.now()
        await session.commit()
    task_view = await wait_for(http, caller, task_id)
    assert task_view["status"] == "TIMEOUT"
    assert "did not finish" in task_view["error_message"]
    assert task_view["credits_refunded"] == 20
    credits, _, rows = await account(live.runtime.db, caller.user_id)
    assert credits == 100
    assert [kind for kind, _, _ in rows] == ["signup_bonus", "charge", "refund"]
