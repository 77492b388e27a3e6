"""`GET /api/tasks/{id}/events`: Server-Sent Events fed by the database's task notifications."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
from sqlalchemy import func, update

from vidgate.tasks.models import Task

from ..fixtures.app import DEV_CLIENT_KEY, Live
from ..fixtures.tasks import new_caller, read_events, text_to_video, wait_for


async def test_stream_follows_changes_made_elsewhere_until_the_end(
    live: Live, http: httpx.AsyncClient
) -> None:
    caller = await new_caller(http)
    task_id = await text_to_video(http, caller, "watched [fault:stuck]")
    events: list[dict[str, Any]] = []
    async with http.stream(
        "GET", f"/api/tasks/{task_id}/events", headers=caller.headers
    ) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.headers["cache-control"] == "no-cache"
        reading = asyncio.create_task(read_events(response, events))

        async def until(check: Any) -> None:
            async with asyncio.timeout(15):
                while not (events and check(events[-1])):  # noqa: ASYNC110
                    await asyncio.sleep(0.02)

        await until(lambda e: e["status"] == "RUNNING")
        # Changes written by another connection, as a worker process writes them.
        for progress in (40, 70):
            async with live.runtime.db.session() as session:
                await session.execute(
                    update(Task).where(Task.id == uuid.UUID(task_id)).values(progress=progress)
                )
                await session.commit()
            await until(lambda e, p=progress: e["progress"] == p)
        async with live.runtime.db.session() as session:  # its deadline passes
            await session.execute(
                update(Task).where(Task.id == uuid.UUID(task_id)).values(deadline_at=func.now())
            )
            await session.commit()
        async with asyncio.timeout(15):
            await reading  # the stream ends by itself after the terminal state
    assert events[0]["task_id"] == task_id
    assert events[-1]["status"] == "TIMEOUT"
    assert events[-1]["credits_refunded"] == 20
    assert [e["progress"] for e in events if e["status"] == "RUNNING"][-2:] == [40, 70]
    pairs = [(e["status"], e["progress"]) for e in events]
    assert len(pairs) == len(set(pairs))  # only changes are sent


async def test_a_finished_task_sends_its_state_once_and_ends(
    live: Live, http: httpx.AsyncClient
) -> None:
    caller = await new_caller(http)
    created = await http.post(  # stays PENDING with nothing sent, so a cancel stops it
        "/api/videos/text-to-video", headers=caller.headers, json={"prompt": "[fault:throttle]"}
    )
    task_id = created.json()["task_id"]
    await http.delete(
        f"/api/tasks/{task_id}", headers={"Authorization": caller.headers["Authorization"]}
    )
    assert (await wait_for(http, caller, task_id))["status"] == "CANCELED"
    events: list[dict[str, Any]] = []
    async with http.stream(
        "GET", f"/api/tasks/{task_id}/events", headers={"X-API-Key": DEV_CLIENT_KEY}
    ) as response:
        async with asyncio.timeout(10):
            await read_events(response, events)
    assert [e["status"] for e in events] == ["CANCELED"]


async def test_stream_is_authorised_like_task_status(live: Live, http: httpx.AsyncClient) -> None:
    caller = await new_caller(http)
    stranger = await new_caller(http)
    created = await http.post(
        "/api/videos/text-to-video", headers=caller.headers, json={"prompt": "[fault:stuck]"}
    )
    task_id = created.json()["task_id"]
    path = f"/api/tasks/{task_id}/events"
    assert (await http.get(path)).status_code == 401
    refused = await http.get(path, headers=stranger.headers)
    assert (refused.status_code, refused.json()) == (404, {"detail": "Task not found"})
    assert (
        await http.get(f"/api/tasks/{uuid.uuid4()}/events", headers=caller.headers)
    ).status_code == 404
    assert (
        await http.get("/api/tasks/not-a-task/events", headers=caller.headers)
    ).status_code == 404
    await http.delete(
        f"/api/tasks/{task_id}", headers={"Authorization": caller.headers["Authorization"]}
    )
