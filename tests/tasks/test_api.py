"""The task API as a caller uses it (docs/api.md §1, §3, §4): listing, status, cancel, retry,
Idempotency-Key, refused input and the active-task cap, each checked by status code, the
`{"detail": ...}` body, the task fields and the money (balance and ledger rows).

Tasks are kept in a chosen state with the kie emulator's prompt markers: `[fault:invalid]` fails
at submit at once (FAILED, refunded), `[fault:throttle]` is refused with 429 on every submit so
the task stays PENDING with nothing sent (a cancel stops it), `[fault:stuck]` stays RUNNING
forever (kie.ai cannot cancel it: it ends at its deadline) and `[fault:slow]` holds the submit
call open.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import func, update

from vidgate.credits import service as ledger
from vidgate.db.engine import Database
from vidgate.emulators.dashscope import DashScopeEmulator
from vidgate.emulators.kie import KieEmulator
from vidgate.tasks.models import Task

from ..fixtures.app import DEV_CLIENT_KEY, Live
from ..fixtures.loopback import closed_port_url
from ..fixtures.samples import mp4_bytes, png_bytes
from ..fixtures.tasks import (
    BONUS,
    CHARGE_20,
    REFUND_20,
    Caller,
    account,
    animate_inputs,
    bearer,
    new_caller,
    tasks_of,
    upload,
    wait_for,
)

T2V = "/api/videos/text-to-video"
I2V = "/api/videos/image-to-video"
MOVE = "/api/videos/animate-move"
LIST = "/api/tasks/user/tasks"
NOT_FOUND = {"detail": "Task not found"}
CONTRACT_FIELDS = {
    "task_id",
    "status",
    "progress",
    "result_url",
    "error_message",
    "created_at",
    "updated_at",
    "completed_at",
}


# --- helpers ----------------------------------------------------------------------------------


async def t2v(
    http: httpx.AsyncClient,
    caller: Caller,
    prompt: str,
    *,
    quality: str = "standard",
    key: str | None = None,
) -> httpx.Response:
    headers = dict(caller.headers)
    if key is not None:
        headers["Idempotency-Key"] = key
    return await http.post(T2V, headers=headers, json={"prompt": prompt, "quality": quality})


async def create(http: httpx.AsyncClient, caller: Caller, prompt: str) -> str:
    response = await t2v(http, caller, prompt)
    assert response.status_code == 200, response.text
    task_id: str = response.json()["task_id"]
    return task_id


async def get_task(http: httpx.AsyncClient, caller: Caller, task_id: str) -> dict[str, Any]:
    response = await http.get(f"/api/tasks/{task_id}", headers=caller.headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def cancel(http: httpx.AsyncClient, caller: Caller, task_id: str) -> httpx.Response:
    return await http.delete(f"/api/tasks/{task_id}", headers=bearer(caller))


async def spend(db: Database, user_id: uuid.UUID, amount: int) -> None:
    """Take credits straight through the ledger (a `charge` row), to set up a low balance."""
    async with db.session() as session:
        await ledger.charge(session, user_id, amount, key=f"test:{uuid.uuid4()}", note="test")
        await session.commit()


async def grant(db: Database, user_id: uuid.UUID, amount: int) -> None:
    """Give credits straight through the ledger (an `adjustment` row)."""
    async with db.session() as session:
        await ledger.grant(session, user_id, amount, key=f"test:{uuid.uuid4()}", note="test")
        await session.commit()


async def assert_untouched(live: Live, caller: Caller) -> None:
    """Nothing was charged or held and no task row exists for the caller."""
    assert await account(live.runtime.db, caller.user_id) == (100, 0, [BONUS])
    assert await tasks_of(live.runtime.db, caller.user_id) == []


def kie(live: Live) -> KieEmulator:
    return next(e for e in live.runtime.providers.emulators if isinstance(e, KieEmulator))


def dashscope(live: Live) -> DashScopeEmulator:
    return next(e for e in live.runtime.providers.emulators if isinstance(e, DashScopeEmulator))


def iso(value: str) -> datetime:
    parsed = datetime.fromisoformat(value)
    assert parsed.tzinfo is not None, value
    return parsed


@pytest.fixture(scope="module")
async def finished(live: Live) -> AsyncIterator[tuple[Caller, dict[str, Any]]]:
    """One text-to-video task that SUCCEEDED, shared by the tests that only read it."""
    async with httpx.AsyncClient(base_url=live.url, timeout=30) as http:
        caller = await new_caller(http)
        task_id = await create(http, caller, "a lighthouse at dusk")
        task = await wait_for(http, caller, task_id)
        assert task["status"] == "SUCCEEDED", task
        yield caller, task


# --- §3.2 listing -----------------------------------------------------------------------------


async def test_list_is_newest_first_paged_filtered_and_private(
    live: Live, http: httpx.AsyncClient
) -> None:
    caller = await new_caller(http)
    first = await create(http, caller, "one [fault:invalid]")
    second = await create(http, caller, "two [fault:invalid]")
    third = await create(http, caller, "three [fault:throttle]")
    for task_id in (first, second):
        assert (await wait_for(http, caller, task_id))["status"] == "FAILED"
    assert (await get_task(http, caller, third))["status"] == "PENDING"
    headers = bearer(caller)

    async def page(**params: Any) -> dict[str, Any]:
        response = await http.get(LIST, headers=headers, params=params)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    def ids(body: dict[str, Any]) -> list[str]:
        return [t["task_id"] for t in body["tasks"]]

    everything = await page()
    assert (everything["total"], everything["page"], everything["page_size"]) == (3, 1, 10)
    assert ids(everything) == [third, second, first]
    for task in everything["tasks"]:
        assert CONTRACT_FIELDS | {"user_id", "task_type"} <= task.keys()
        assert task["user_id"] == str(caller.user_id)
        assert task["task_type"] == "text-to-video"
    created = [iso(t["created_at"]) for t in everything["tasks"]]
    assert created == sorted(created, reverse=True)

    assert ids(await page(page=1, page_size=2)) == [third, second]
    last = await page(page=2, page_size=2)
    assert (ids(last), last["total"], last["page"], last["page_size"]) == ([first], 3, 2, 2)
    beyond = await page(page=3, page_size=2)
    assert (beyond["tasks"], beyond["total"], beyond["page"]) == ([], 3, 3)
    assert (await page(page=100_000))["tasks"] == []
    assert ids(await page(page_size=100)) == [third, second, first]
    assert ids(await page(page_size=1)) == [third]

    for bad in ({"page": 0}, {"page": -1}, {"page": "x"}, {"page_size": 0}, {"page_size": 101}):
        response = await http.get(LIST, headers=headers, params=bad)
        assert response.status_code == 422, (bad, response.text)
        assert response.json()["detail"][0]["loc"] == ["query", next(iter(bad))]

    failed = await page(status="FAILED")
    assert (ids(failed), failed["total"]) == ([second, first], 2)
    assert {t["status"] for t in failed["tasks"]} == {"FAILED"}
    only_older = await page(status="FAILED", page=2, page_size=1)
    assert (ids(only_older), only_older["total"]) == ([first], 2)
    pending = await page(status="PENDING")
    assert (ids(pending), pending["total"]) == ([third], 1)
    assert await page(status="SUCCEEDED") == {
        "tasks": [],
        "total": 0,
        "page": 1,
        "page_size": 10,
    }
    for bogus in ("BOGUS", "failed", ""):
        response = await http.get(LIST, headers=headers, params={"status": bogus})
        assert response.status_code == 422, (bogus, response.text)

    # Another user sees none of these, and only their own.
    other = await new_caller(http)
    response = await http.get(LIST, headers=bearer(other))
    assert response.json() == {"tasks": [], "total": 0, "page": 1, "page_size": 10}
    theirs = await create(http, other, "theirs [fault:invalid]")
    response = await http.get(LIST, headers=bearer(other))
    assert [t["task_id"] for t in response.json()["tasks"]] == [theirs]
    assert (await page())["total"] == 3

    # Bearer only: an API key does not list tasks.
    for no_bearer in ({"X-API-Key": DEV_CLIENT_KEY}, {}):
        response = await http.get(LIST, headers=no_bearer)
        assert response.status_code == 401, response.text
        assert isinstance(response.json()["detail"], str)

    assert (await cancel(http, caller, third)).status_code == 200
    assert (await wait_for(http, caller, third))["status"] == "CANCELED"
    assert (await wait_for(http, other, theirs))["status"] == "FAILED"
    credits, reserved, rows = await account(live.runtime.db, caller.user_id)
    assert (credits, reserved) == (100, 0)
    assert sorted(rows) == sorted([BONUS] + [CHARGE_20, REFUND_20] * 3)


# --- §2.6 / §3.1 status -----------------------------------------------------------------------


async def test_status_shows_the_contract_fields_to_the_owner(
    live: Live, http: httpx.AsyncClient, finished: tuple[Caller, dict[str, Any]]
) -> None:
    owner, task = finished
    task_id = task["task_id"]
    by_video = await http.get(f"/api/videos/tasks/{task_id}", headers=owner.headers)
    by_task = await http.get(f"/api/tasks/{task_id}", headers=owner.headers)
    assert by_video.status_code == by_task.status_code == 200, (by_video.text, by_task.text)
    body = by_task.json()
    assert by_video.json() == body
    assert CONTRACT_FIELDS | {"user_id", "task_type"} <= body.keys()
    assert body["task_id"] == task_id
    assert body["user_id"] == str(owner.user_id)
    assert body["task_type"] == "text-to-video"
    assert body["status"] == "SUCCEEDED"
    assert body["progress"] == 100
    assert body["result_url"].startswith(f"{live.url}/media/results/")
    assert body["error_message"] is None
    created, updated = iso(body["created_at"]), iso(body["updated_at"])
    completed = iso(body["completed_at"])
    assert created <= completed
    assert created <= updated
    assert body["inputs"]["prompt"] == "a lighthouse at dusk"
    assert (body["credits_charged"], body["credits_refunded"]) == (20, 0)
    # The result is there to download.
    video = await http.get(body["result_url"], follow_redirects=True)
    assert video.status_code == 200
    assert video.headers["content-type"] == "video/mp4"
    # The contract asks for an API key only: the client key alone finds a task by its id.
    alone = await http.get(f"/api/videos/tasks/{task_id}", headers={"X-API-Key": DEV_CLIENT_KEY})
    assert alone.status_code == 200
    assert alone.json()["task_id"] == task_id


async def test_status_hides_other_users_tasks_and_needs_a_key(
    live: Live, http: httpx.AsyncClient, finished: tuple[Caller, dict[str, Any]]
) -> None:
    owner, task = finished
    task_id = task["task_id"]
    other = await new_caller(http)
    for path in (f"/api/videos/tasks/{task_id}", f"/api/tasks/{task_id}"):
        response = await http.get(path, headers=other.headers)
        assert (response.status_code, response.json()) == (404, NOT_FOUND), path
        response = await http.get(path, headers=bearer(owner))  # no X-API-Key
        assert response.status_code == 401, path
        assert response.json() == {"detail": "Missing API key (X-API-Key header)"}
        response = await http.get(path, headers={**owner.headers, "X-API-Key": "vg_wrong_key"})
        assert (response.status_code, response.json()) == (401, {"detail": "Invalid API key"})
    for bad_id in ("not-a-uuid", "123", str(uuid.uuid4()), f"{task_id}x"):
        for prefix in ("/api/videos/tasks/", "/api/tasks/"):
            response = await http.get(prefix + bad_id, headers=owner.headers)
            assert (response.status_code, response.json()) == (404, NOT_FOUND), prefix + bad_id


async def test_a_personal_key_sees_only_its_owners_tasks(
    live: Live, http: httpx.AsyncClient, finished: tuple[Caller, dict[str, Any]]
) -> None:
    owner, task = finished
    other = await new_caller(http)
    theirs = await create(http, other, "someone else's [fault:invalid]")
    made = await http.post("/api/users/api-keys", headers=bearer(owner), json={"name": "server"})
    assert made.status_code == 201, made.text
    personal = {"X-API-Key": made.json()["key"]}

    for prefix in ("/api/videos/tasks/", "/api/tasks/"):
        mine = await http.get(prefix + task["task_id"], headers=personal)
        assert mine.status_code == 200, mine.text
        assert mine.json()["user_id"] == str(owner.user_id)
        assert mine.json()["status"] == "SUCCEEDED"
        response = await http.get(prefix + theirs, headers=personal)
        assert (response.status_code, response.json()) == (404, NOT_FOUND)
        # The owner's key with another user's token narrows to nobody.
        response = await http.get(prefix + theirs, headers={**personal, **bearer(other)})
        assert (response.status_code, response.json()) == (404, NOT_FOUND)
    assert (await wait_for(http, other, theirs))["status"] == "FAILED"


# --- §3.3 cancel ------------------------------------------------------------------------------


async def test_cancel_a_pending_task_refunds_once_and_it_can_be_retried(
    live: Live, http: httpx.AsyncClient
) -> None:
    caller = await new_caller(http)
    task_id = await create(http, caller, "waits for a slot [fault:throttle]")
    assert (await get_task(http, caller, task_id))["status"] == "PENDING"
    assert await account(live.runtime.db, caller.user_id) == (80, 0, [BONUS, CHARGE_20])

    # Three cancels at once: one cancels, the others find it canceled (or still canceling).
    responses = await asyncio.gather(*(cancel(http, caller, task_id) for _ in range(3)))
    codes = sorted(r.status_code for r in responses)
    assert codes[0] == 200 and set(codes) <= {200, 400}, [r.text for r in responses]
    for response in responses:
        if response.status_code == 200:
            assert response.json()["message"] == "Task cancellation requested"
        else:
            assert response.json()["detail"].startswith("Task is already CANCELED")
    task = await wait_for(http, caller, task_id)
    assert task["status"] == "CANCELED"
    assert task["error_message"] == "Canceled by the user"
    assert task["completed_at"] is not None
    assert (task["credits_charged"], task["credits_refunded"]) == (20, 20)
    assert await account(live.runtime.db, caller.user_id) == (
        100,
        0,
        [BONUS, CHARGE_20, REFUND_20],
    )

    again = await cancel(http, caller, task_id)
    assert again.status_code == 400
    assert again.json() == {
        "detail": "Task is already CANCELED; only pending or running tasks can be canceled"
    }
    assert await account(live.runtime.db, caller.user_id) == (
        100,
        0,
        [BONUS, CHARGE_20, REFUND_20],
    )

    # A canceled task may be retried: a new task, charged again.
    retried = await http.post(f"/api/tasks/{task_id}/retry", headers=bearer(caller))
    assert retried.status_code == 200, retried.text
    new_id = retried.json()["new_task_id"]
    assert (await get_task(http, caller, new_id))["retry_of"] == task_id
    assert (await cancel(http, caller, new_id)).status_code == 200
    assert (await wait_for(http, caller, new_id))["status"] == "CANCELED"
    assert await account(live.runtime.db, caller.user_id) == (
        100,
        0,
        [BONUS, CHARGE_20, REFUND_20, CHARGE_20, REFUND_20],
    )


async def test_cancel_a_running_sora_task_is_refused_and_it_cannot_be_retried_while_running(
    live: Live, http: httpx.AsyncClient
) -> None:
    """kie.ai cannot cancel: the task keeps running and keeps its charge (test_cancel.py follows
    such tasks to their end)."""
    caller = await new_caller(http)
    task_id = await create(http, caller, "never ends [fault:stuck]")
    running = await wait_for(http, caller, task_id, {"RUNNING"}, within=15)
    assert running["progress"] > 0
    assert (running["cancel_requested"], running["cancel_outcome"]) == (False, None)

    retried = await http.post(f"/api/tasks/{task_id}/retry", headers=bearer(caller))
    assert retried.status_code == 400
    assert retried.json() == {
        "detail": "Task is RUNNING; only FAILED, TIMEOUT or CANCELED tasks can be retried"
    }

    response = await cancel(http, caller, task_id)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["message"].startswith("Task cancellation requested, but the provider cannot")
    assert (body["status"], body["cancel_outcome"]) == ("RUNNING", "not_cancelable")
    seen = await get_task(http, caller, task_id)
    assert (seen["status"], seen["cancel_requested"], seen["cancel_outcome"]) == (
        "RUNNING",
        True,
        "not_cancelable",
    )
    assert seen["cancel_message"] == body["cancel_message"]
    # Asking twice changes nothing.
    assert (await cancel(http, caller, task_id)).json() == body
    retried = await http.post(f"/api/tasks/{task_id}/retry", headers=bearer(caller))
    assert retried.status_code == 400
    assert await account(live.runtime.db, caller.user_id) == (80, 0, [BONUS, CHARGE_20])

    async with live.runtime.db.session() as session:  # let its deadline end it
        await session.execute(
            update(Task).where(Task.id == uuid.UUID(task_id)).values(deadline_at=func.now())
        )
        await session.commit()
    assert (await wait_for(http, caller, task_id, within=20))["status"] == "TIMEOUT"


async def test_cancel_while_the_submission_is_in_flight(
    live: Live, http: httpx.AsyncClient
) -> None:
    """The vendor call is out when the cancel arrives: the task waits for it, then asks the
    vendor; kie.ai cannot cancel, so the task runs to its video and keeps its charge."""
    emulator = kie(live)
    slow_before = emulator.slow_seconds
    emulator.slow_seconds = 1.5
    try:
        caller = await new_caller(http)
        task_id = await create(http, caller, "takes a while to accept [fault:slow]")
        async with asyncio.timeout(10):
            while True:
                async with live.runtime.db.session() as session:
                    row = await session.get_one(Task, uuid.UUID(task_id))
                if row.submit_started_at is not None:
                    break
                await asyncio.sleep(0.02)
        assert row.status == "PENDING" and row.upstream_id is None

        response = await cancel(http, caller, task_id)
        assert response.status_code == 200, response.text
        assert response.json() == {
            "message": "Task cancellation requested",
            "status": "PENDING",
            "cancel_outcome": "pending",
            "cancel_message": "Cancellation requested; waiting for the provider to confirm it"
            " stopped the task.",
        }
        seen = await get_task(http, caller, task_id)
        assert (seen["status"], seen["cancel_requested"]) == ("PENDING", True)

        task = await wait_for(http, caller, task_id, within=20)
        assert task["status"] == "SUCCEEDED", task
        assert task["cancel_outcome"] == "not_cancelable"
        assert (task["credits_charged"], task["credits_refunded"]) == (20, 0)
        assert await account(live.runtime.db, caller.user_id) == (80, 0, [BONUS, CHARGE_20])
    finally:
        emulator.slow_seconds = slow_before


async def test_cancel_a_metered_animate_task_releases_the_hold(
    live: Live, http: httpx.AsyncClient
) -> None:
    """Still queued at DashScope: the vendor confirms the cancel and the hold is released."""
    caller = await new_caller(http)
    image = await upload(http, caller, png_bytes((320, 400)), "me.png", "image")
    video = await upload(
        http, caller, mp4_bytes(seconds=2.5, fps=10, size=(256, 256)), "ref.mp4", "video"
    )
    armed = await http.post("/_emulator/dashscope/_control/faults", json={"next_submit": "stuck"})
    assert armed.status_code == 200, armed.text
    emulator = dashscope(live)
    queue_before, emulator.queue_seconds = emulator.queue_seconds, 30.0  # cancelable until then
    try:
        created = await http.post(
            MOVE, headers=caller.headers, json={"image_url": image, "video_url": video}
        )
        assert created.status_code == 200, created.text
        assert (created.json()["billing_mode"], created.json()["credits_estimated"]) == (
            "metered",
            25,
        )
        task_id = created.json()["task_id"]
        assert await account(live.runtime.db, caller.user_id) == (
            100,
            25,
            [BONUS, ("reserve", 0, 25)],
        )
        await wait_for(http, caller, task_id, {"RUNNING"}, within=15)
        response = await cancel(http, caller, task_id)
    finally:
        await http.post("/_emulator/dashscope/_control/faults", json={"next_submit": None})
        emulator.queue_seconds = queue_before

    assert response.status_code == 200, response.text
    assert response.json()["message"] == "Task cancellation requested"
    assert (response.json()["status"], response.json()["cancel_outcome"]) == (
        "CANCELED",
        "canceled",
    )
    task = await get_task(http, caller, task_id)
    assert task["status"] == "CANCELED"
    assert (task["credits_reserved"], task["credits_charged"], task["credits_refunded"]) == (
        0,
        0,
        0,
    )
    assert await account(live.runtime.db, caller.user_id) == (
        100,
        0,
        [BONUS, ("reserve", 0, 25), ("release", 0, -25)],
    )


async def test_cancel_a_finished_task_is_refused_and_moves_no_money(
    live: Live, http: httpx.AsyncClient, finished: tuple[Caller, dict[str, Any]]
) -> None:
    owner, done = finished
    response = await cancel(http, owner, done["task_id"])
    assert response.status_code == 400
    assert response.json() == {
        "detail": "Task is already SUCCEEDED; only pending or running tasks can be canceled"
    }
    assert (await get_task(http, owner, done["task_id"]))["status"] == "SUCCEEDED"
    assert await account(live.runtime.db, owner.user_id) == (80, 0, [BONUS, CHARGE_20])

    caller = await new_caller(http)
    failed = await create(http, caller, "refused upstream [fault:invalid]")
    assert (await wait_for(http, caller, failed))["status"] == "FAILED"
    response = await cancel(http, caller, failed)
    assert response.status_code == 400
    assert response.json()["detail"].startswith("Task is already FAILED")
    assert await account(live.runtime.db, caller.user_id) == (
        100,
        0,
        [BONUS, CHARGE_20, REFUND_20],
    )


async def test_cancel_someone_elses_task_is_404_and_leaves_it_alone(
    live: Live, http: httpx.AsyncClient
) -> None:
    owner = await new_caller(http)
    task_id = await create(http, owner, "mine alone [fault:throttle]")
    other = await new_caller(http)
    response = await cancel(http, other, task_id)
    assert (response.status_code, response.json()) == (404, NOT_FOUND)
    for bad_id in ("not-a-uuid", str(uuid.uuid4())):
        response = await cancel(http, owner, bad_id)
        assert (response.status_code, response.json()) == (404, NOT_FOUND)
    response = await http.delete(f"/api/tasks/{task_id}", headers={"X-API-Key": DEV_CLIENT_KEY})
    assert response.status_code == 401

    task = await get_task(http, owner, task_id)
    assert (task["status"], task["cancel_requested"]) == ("PENDING", False)
    assert await account(live.runtime.db, owner.user_id) == (80, 0, [BONUS, CHARGE_20])
    assert await account(live.runtime.db, other.user_id) == (100, 0, [BONUS])

    assert (await cancel(http, owner, task_id)).status_code == 200
    assert (await wait_for(http, owner, task_id))["status"] == "CANCELED"


# --- §3.4 retry -------------------------------------------------------------------------------


async def test_retry_a_failed_task_makes_a_new_task_charged_and_refunded_again(
    live: Live, http: httpx.AsyncClient
) -> None:
    caller = await new_caller(http)
    old_id = await create(http, caller, "flagged [fault:invalid]")
    old = await wait_for(http, caller, old_id)
    assert old["status"] == "FAILED" and old["error_message"]

    response = await http.post(f"/api/tasks/{old_id}/retry", headers=bearer(caller))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["message"] == "Task retry initiated"
    new_id = body["new_task_id"]
    assert new_id != old_id
    uuid.UUID(new_id)

    new = await wait_for(http, caller, new_id)
    assert new["retry_of"] == old_id
    assert new["task_type"] == "text-to-video"
    assert new["inputs"] == old["inputs"]
    assert new["status"] == "FAILED"  # the same prompt fails the same way
    assert (new["credits_charged"], new["credits_refunded"]) == (20, 20)
    assert (await get_task(http, caller, old_id))["status"] == "FAILED"  # the old one stays
    assert await account(live.runtime.db, caller.user_id) == (
        100,
        0,
        [BONUS, CHARGE_20, REFUND_20, CHARGE_20, REFUND_20],
    )
    assert await tasks_of(live.runtime.db, caller.user_id) == [old_id, new_id]


async def test_retry_refuses_succeeded_pending_and_others_tasks(
    live: Live, http: httpx.AsyncClient, finished: tuple[Caller, dict[str, Any]]
) -> None:
    owner, done = finished
    response = await http.post(f"/api/tasks/{done['task_id']}/retry", headers=bearer(owner))
    assert response.status_code == 400
    assert response.json() == {
        "detail": "Task is SUCCEEDED; only FAILED, TIMEOUT or CANCELED tasks can be retried"
    }
    assert await account(live.runtime.db, owner.user_id) == (80, 0, [BONUS, CHARGE_20])

    caller = await new_caller(http)
    failed = await create(http, caller, "refused [fault:invalid]")
    pending = await create(http, caller, "queued [fault:throttle]")
    assert (await wait_for(http, caller, failed))["status"] == "FAILED"
    response = await http.post(f"/api/tasks/{pending}/retry", headers=bearer(caller))
    assert response.status_code == 400
    assert response.json()["detail"].startswith("Task is PENDING;")

    other = await new_caller(http)
    for task_id in (failed, done["task_id"], "not-a-uuid", str(uuid.uuid4())):
        response = await http.post(f"/api/tasks/{task_id}/retry", headers=bearer(other))
        assert (response.status_code, response.json()) == (404, NOT_FOUND), task_id
    response = await http.post(f"/api/tasks/{failed}/retry", headers={"X-API-Key": DEV_CLIENT_KEY})
    assert response.status_code == 401
    assert await account(live.runtime.db, other.user_id) == (100, 0, [BONUS])
    assert await tasks_of(live.runtime.db, other.user_id) == []
    assert len(await tasks_of(live.runtime.db, caller.user_id)) == 2

    assert (await cancel(http, caller, pending)).status_code == 200
    assert (await wait_for(http, caller, pending))["status"] == "CANCELED"


async def test_retry_with_an_idempotency_key_and_without_the_credits(
    live: Live, http: httpx.AsyncClient
) -> None:
    caller = await new_caller(http)
    old_id = await create(http, caller, "try again [fault:invalid]")
    assert (await wait_for(http, caller, old_id))["status"] == "FAILED"
    await spend(live.runtime.db, caller.user_id, 90)

    retry = f"/api/tasks/{old_id}/retry"
    key = {"Idempotency-Key": f"retry-{uuid.uuid4()}"}
    poor = await http.post(retry, headers={**bearer(caller), **key})
    assert poor.status_code == 402
    assert poor.json()["detail"].startswith("Insufficient credits. Required: 20 credits")
    assert poor.json()["detail"].endswith("Available: 10 credits.")
    assert await tasks_of(live.runtime.db, caller.user_id) == [old_id]

    await grant(live.runtime.db, caller.user_id, 90)
    first = await http.post(retry, headers={**bearer(caller), **key})
    second = await http.post(retry, headers={**bearer(caller), **key})
    assert first.status_code == second.status_code == 200, (first.text, second.text)
    assert first.json() == second.json()
    assert "idempotent-replayed" not in first.headers
    assert second.headers["idempotent-replayed"] == "true"
    new_id = first.json()["new_task_id"]
    assert await tasks_of(live.runtime.db, caller.user_id) == [old_id, new_id]
    assert (await wait_for(http, caller, new_id))["status"] == "FAILED"
    _, _, rows = await account(live.runtime.db, caller.user_id)
    assert rows == [
        BONUS,
        CHARGE_20,
        REFUND_20,
        ("charge", -90, 0),
        ("adjustment", 90, 0),
        CHARGE_20,
        REFUND_20,
    ]


# --- Idempotency-Key on create ----------------------------------------------------------------


async def test_same_key_and_body_replays_the_first_response_and_charges_once(
    live: Live, http: httpx.AsyncClient
) -> None:
    caller = await new_caller(http)
    key = str(uuid.uuid4())
    prompt = "only once [fault:invalid]"
    first = await t2v(http, caller, prompt, key=key)
    second = await t2v(http, caller, prompt, key=key)
    assert first.status_code == second.status_code == 200, (first.text, second.text)
    assert "idempotent-replayed" not in first.headers
    assert second.headers["idempotent-replayed"] == "true"
    assert second.json() == first.json()
    # The same request spelled out with its defaults is the same request.
    spelled = await http.post(
        T2V,
        headers={**caller.headers, "Idempotency-Key": key},
        json={"quality": "standard", "aspect_ratio": "landscape", "prompt": prompt},
    )
    assert spelled.status_code == 200
    assert spelled.json()["task_id"] == first.json()["task_id"]

    task_id = first.json()["task_id"]
    assert (await wait_for(http, caller, task_id))["status"] == "FAILED"
    assert await tasks_of(live.runtime.db, caller.user_id) == [task_id]
    assert await account(live.runtime.db, caller.user_id) == (
        100,
        0,
        [BONUS, CHARGE_20, REFUND_20],
    )


async def test_same_key_with_another_request_is_422_and_charges_nothing(
    live: Live, http: httpx.AsyncClient
) -> None:
    caller = await new_caller(http)
    key = str(uuid.uuid4())
    first = await t2v(http, caller, "the first [fault:invalid]", key=key)
    assert first.status_code == 200, first.text
    reused_detail = {
        "detail": "This Idempotency-Key was already used with a different request; use a new key"
    }
    other_prompt = await t2v(http, caller, "the second [fault:invalid]", key=key)
    assert (other_prompt.status_code, other_prompt.json()) == (422, reused_detail)
    other_quality = await t2v(http, caller, "the first [fault:invalid]", quality="hd", key=key)
    assert (other_quality.status_code, other_quality.json()) == (422, reused_detail)
    other_path = await http.post(
        I2V,
        headers={**caller.headers, "Idempotency-Key": key},
        json={"prompt": "the first [fault:invalid]", "image_urls": ["https://example.com/a.png"]},
    )
    assert (other_path.status_code, other_path.json()) == (422, reused_detail)

    task_id = first.json()["task_id"]
    assert (await wait_for(http, caller, task_id))["status"] == "FAILED"
    assert await tasks_of(live.runtime.db, caller.user_id) == [task_id]
    assert await account(live.runtime.db, caller.user_id) == (
        100,
        0,
        [BONUS, CHARGE_20, REFUND_20],
    )


async def test_a_create_refused_for_credits_does_not_burn_its_key(
    live: Live, http: httpx.AsyncClient
) -> None:
    caller = await new_caller(http)
    await spend(live.runtime.db, caller.user_id, 90)
    key = str(uuid.uuid4())
    prompt = "after the top-up [fault:invalid]"
    refused = await t2v(http, caller, prompt, key=key)
    assert refused.status_code == 402
    assert refused.json()["detail"].startswith("Insufficient credits. Required: 20 credits")
    assert await tasks_of(live.runtime.db, caller.user_id) == []

    await grant(live.runtime.db, caller.user_id, 90)
    accepted = await t2v(http, caller, prompt, key=key)
    assert accepted.status_code == 200, accepted.text
    assert "idempotent-replayed" not in accepted.headers
    replayed = await t2v(http, caller, prompt, key=key)
    assert replayed.headers["idempotent-replayed"] == "true"
    assert replayed.json()["task_id"] == accepted.json()["task_id"]
    assert await tasks_of(live.runtime.db, caller.user_id) == [accepted.json()["task_id"]]
    assert (await wait_for(http, caller, accepted.json()["task_id"]))["status"] == "FAILED"
    assert await account(live.runtime.db, caller.user_id) == (
        100,
        0,
        [BONUS, ("charge", -90, 0), ("adjustment", 90, 0), CHARGE_20, REFUND_20],
    )


async def test_a_create_refused_for_bad_input_does_not_burn_its_key(
    live: Live, http: httpx.AsyncClient
) -> None:
    caller = await new_caller(http)
    key = {**caller.headers, "Idempotency-Key": str(uuid.uuid4())}
    missing = f"{live.url}/media/uploads/2026/01/{'0' * 32}.png"
    body = {"prompt": "animate it [fault:invalid]", "image_urls": [missing]}
    refused = await http.post(I2V, headers=key, json=body)
    assert refused.status_code == 400
    assert refused.json() == {"detail": "image_urls[0]: no uploaded file at this URL"}
    await assert_untouched(live, caller)

    image = await upload(http, caller, png_bytes((64, 48)), "still.png", "image")
    accepted = await http.post(I2V, headers=key, json={**body, "image_urls": [image]})
    assert accepted.status_code == 200, accepted.text
    assert "idempotent-replayed" not in accepted.headers
    task_id = accepted.json()["task_id"]
    assert (await wait_for(http, caller, task_id))["status"] == "FAILED"
    assert await account(live.runtime.db, caller.user_id) == (
        100,
        0,
        [BONUS, ("charge", -25, 0), ("refund", 25, 0)],
    )


async def test_idempotency_keys_belong_to_one_user(live: Live, http: httpx.AsyncClient) -> None:
    alice, bob = await new_caller(http), await new_caller(http)
    key = f"shared-{uuid.uuid4()}"
    prompt = "same words [fault:invalid]"
    by_alice = await t2v(http, alice, prompt, key=key)
    by_bob = await t2v(http, bob, prompt, key=key)
    assert by_alice.status_code == by_bob.status_code == 200, (by_alice.text, by_bob.text)
    assert "idempotent-replayed" not in by_bob.headers
    assert by_alice.json()["task_id"] != by_bob.json()["task_id"]
    for caller, response in ((alice, by_alice), (bob, by_bob)):
        task_id = response.json()["task_id"]
        assert (await wait_for(http, caller, task_id))["status"] == "FAILED"
        assert await tasks_of(live.runtime.db, caller.user_id) == [task_id]
        assert await account(live.runtime.db, caller.user_id) == (
            100,
            0,
            [BONUS, CHARGE_20, REFUND_20],
        )


@pytest.mark.parametrize("key", ["k" * 256, "k" * 300, "", "tab\tinside"])
async def test_a_malformed_idempotency_key_is_400(
    live: Live, http: httpx.AsyncClient, key: str
) -> None:
    caller = await new_caller(http)
    response = await t2v(http, caller, "keyed [fault:invalid]", key=key)
    assert response.status_code == 400, response.text
    assert response.json() == {
        "detail": "Idempotency-Key must be 1-255 printable ASCII characters (a UUID is ideal)"
    }
    await assert_untouched(live, caller)


async def test_the_longest_idempotency_key_is_accepted(live: Live, http: httpx.AsyncClient) -> None:
    caller = await new_caller(http)
    response = await t2v(http, caller, "long key [fault:invalid]", key="k" * 255)
    assert response.status_code == 200, response.text
    assert (await wait_for(http, caller, response.json()["task_id"]))["status"] == "FAILED"


async def test_concurrent_duplicates_create_one_task_and_charge_once(
    live: Live, http: httpx.AsyncClient
) -> None:
    caller = await new_caller(http)
    key = str(uuid.uuid4())
    responses = await asyncio.gather(
        *(t2v(http, caller, "five clicks [fault:invalid]", key=key) for _ in range(5))
    )
    codes = [r.status_code for r in responses]
    assert set(codes) <= {200, 409}, [r.text for r in responses]
    ok = [r for r in responses if r.status_code == 200]
    assert len({r.json()["task_id"] for r in ok}) == 1
    assert [r.headers.get("idempotent-replayed") for r in ok].count(None) == 1
    for response in responses:
        if response.status_code == 409:
            assert "still being processed" in response.json()["detail"]

    task_id = ok[0].json()["task_id"]
    assert await tasks_of(live.runtime.db, caller.user_id) == [task_id]
    assert (await wait_for(http, caller, task_id))["status"] == "FAILED"
    assert await account(live.runtime.db, caller.user_id) == (
        100,
        0,
        [BONUS, CHARGE_20, REFUND_20],
    )
    # Once the first has answered, the same key replays for everyone.
    late = await t2v(http, caller, "five clicks [fault:invalid]", key=key)
    assert (late.status_code, late.json()["task_id"]) == (200, task_id)


# --- refused input: nothing charged, nothing created ------------------------------------------


@dataclass(frozen=True)
class Media:
    """Uploads the bad-input cases point at, and their owner, who sends those cases (another
    account's upload is not an input; that refusal is a case of its own)."""

    owner: Caller
    image: str  # 320x400 PNG
    tiny_image: str  # 100x100 PNG
    video: str  # 2.5 s, 256x256
    short_video: str  # 1 s, 256x256
    missing: str  # under the media prefix, never uploaded
    live_url: str


@pytest.fixture(scope="module")
async def media(live: Live) -> AsyncIterator[Media]:
    async with httpx.AsyncClient(base_url=live.url, timeout=30) as http:
        uploader = await new_caller(http)
        image = await upload(http, uploader, png_bytes((320, 400)), "ok.png", "image")
        tiny = await upload(http, uploader, png_bytes((100, 100)), "tiny.png", "image")
        video = await upload(
            http, uploader, mp4_bytes(seconds=2.5, fps=10, size=(256, 256)), "ok.mp4", "video"
        )
        short = await upload(
            http, uploader, mp4_bytes(seconds=1.0, size=(256, 256)), "short.mp4", "video"
        )
        missing = f"{live.url}/media/uploads/2026/01/{'0' * 32}.png"
        yield Media(uploader, image, tiny, video, short, missing, live.url)


URL = "https://example.com/a.png"
VIDEO_URL = "https://example.com/a.mp4"


@dataclass(frozen=True)
class Bad:
    """One refused create: where it goes, what it sends, what comes back."""

    path: str
    body: Callable[[Media], Any]  # JSON body, or bytes sent as is
    status: int
    detail: str | tuple[str, ...]  # 422: the loc's last part; else substrings of the detail


BAD_INPUT: dict[str, Bad] = {
    "malformed-json": Bad(T2V, lambda m: b'{"prompt": "unterminated', 422, "json"),
    "json-array": Bad(T2V, lambda m: [], 422, "body"),
    "prompt-missing": Bad(T2V, lambda m: {"quality": "hd"}, 422, "prompt"),
    "prompt-empty": Bad(T2V, lambda m: {"prompt": ""}, 422, "prompt"),
    "prompt-5001": Bad(T2V, lambda m: {"prompt": "x" * 5001}, 422, "prompt"),
    "prompt-number": Bad(T2V, lambda m: {"prompt": 42}, 422, "prompt"),
    "prompt-nul": Bad(T2V, lambda m: {"prompt": "a\x00b"}, 422, "prompt"),
    "aspect-ratio": Bad(
        T2V, lambda m: {"prompt": "p", "aspect_ratio": "square"}, 422, "aspect_ratio"
    ),
    "quality": Bad(T2V, lambda m: {"prompt": "p", "quality": "4k"}, 422, "quality"),
    "webhook-ftp": Bad(
        T2V, lambda m: {"prompt": "p", "webhook_url": "ftp://x/h"}, 422, "webhook_url"
    ),
    "image-urls-empty": Bad(I2V, lambda m: {"prompt": "p", "image_urls": []}, 422, "image_urls"),
    "image-urls-missing": Bad(I2V, lambda m: {"prompt": "p"}, 422, "image_urls"),
    "image-urls-eleven": Bad(
        I2V, lambda m: {"prompt": "p", "image_urls": [URL] * 11}, 422, "image_urls"
    ),
    "mode": Bad(
        MOVE, lambda m: {"image_url": URL, "video_url": VIDEO_URL, "mode": "wan-max"}, 422, "mode"
    ),
    "check-image-yes": Bad(
        MOVE,
        lambda m: {"image_url": URL, "video_url": VIDEO_URL, "check_image": "yes"},
        422,
        "check_image",
    ),
    "image-url-ftp": Bad(
        MOVE, lambda m: {"image_url": "ftp://x/y.png", "video_url": VIDEO_URL}, 422, "image_url"
    ),
    "image-url-not-a-url": Bad(
        MOVE, lambda m: {"image_url": "not a url", "video_url": VIDEO_URL}, 422, "image_url"
    ),
    "image-url-credentials": Bad(
        MOVE,
        lambda m: {"image_url": "http://user:pw@host/a.png", "video_url": VIDEO_URL},
        422,
        "image_url",
    ),
    "video-url-missing": Bad(MOVE, lambda m: {"image_url": URL}, 422, "video_url"),
    "upload-not-found": Bad(
        MOVE,
        lambda m: {"image_url": m.missing, "video_url": m.video},
        400,
        ("image_url", "no uploaded file"),
    ),
    "closed-port": Bad(
        I2V,
        lambda m: {"prompt": "p", "image_urls": [f"{closed_port_url()}/a.png"]},
        400,
        ("image_urls[0]", "could not fetch"),
    ),
    "not-an-image": Bad(
        I2V,
        lambda m: {"prompt": "p", "image_urls": [f"{m.live_url}/openapi.json"]},
        400,
        ("image_urls[0]",),
    ),
    "video-too-short": Bad(
        MOVE,
        lambda m: {"image_url": m.image, "video_url": m.short_video},
        400,
        ("video_url", "seconds"),
    ),
    "image-too-small": Bad(
        MOVE,
        lambda m: {"image_url": m.tiny_image, "video_url": m.video},
        400,
        ("image_url", "100x100", "pixels"),
    ),
    "video-as-image": Bad(
        MOVE,
        lambda m: {"image_url": m.video, "video_url": m.video},
        400,
        ("image_url", "video"),
    ),
    "image-as-video": Bad(
        MOVE,
        lambda m: {"image_url": m.image, "video_url": m.image},
        400,
        ("video_url", "image"),
    ),
    "video-for-sora": Bad(
        I2V,
        lambda m: {"prompt": "p", "image_urls": [m.image, m.video]},
        400,
        ("image_urls[1]", "video"),
    ),
}


@pytest.mark.parametrize("case", BAD_INPUT.values(), ids=BAD_INPUT.keys())
async def test_bad_input_is_refused_before_any_money_moves(
    live: Live, http: httpx.AsyncClient, media: Media, case: Bad
) -> None:
    caller = media.owner  # every case is refused, so the owner stays untouched throughout
    body = case.body(media)
    if isinstance(body, bytes):
        headers = {**caller.headers, "Content-Type": "application/json"}
        response = await http.post(case.path, headers=headers, content=body)
    else:
        response = await http.post(case.path, headers=caller.headers, json=body)
    assert response.status_code == case.status, response.text
    detail = response.json()["detail"]
    if case.status == 422:
        assert isinstance(detail, list) and detail, detail
        assert any(
            case.detail in [str(p) for p in e["loc"]] or case.detail in e["type"] for e in detail
        ), detail
    else:
        assert isinstance(detail, str)
        for part in case.detail:
            assert part in detail, detail
    await assert_untouched(live, caller)


async def test_another_accounts_upload_is_not_an_input(
    live: Live, http: httpx.AsyncClient, media: Media
) -> None:
    """Upload URLs are unguessable but public once shared; they still make nobody else's task."""
    stranger = await new_caller(http)
    for path, body, field in [
        (MOVE, {"image_url": media.image, "video_url": media.video}, "image_url"),
        (I2V, {"prompt": "p", "image_urls": [media.image]}, "image_urls[0]"),
    ]:
        response = await http.post(path, headers=stranger.headers, json=body)
        assert response.status_code == 400, response.text
        assert response.json() == {"detail": f"{field}: no uploaded file at this URL"}
    await assert_untouched(live, stranger)


async def test_too_few_credits_is_402_with_the_contract_message(
    live: Live, http: httpx.AsyncClient
) -> None:
    caller = await new_caller(http)
    inputs = await animate_inputs(http, caller)
    await spend(live.runtime.db, caller.user_id, 90)
    before = await account(live.runtime.db, caller.user_id)
    assert before == (10, 0, [BONUS, ("charge", -90, 0)])

    prepaid = await t2v(http, caller, "too dear")
    assert prepaid.status_code == 402
    assert prepaid.json() == {
        "detail": "Insufficient credits. Required: 20 credits (standard quality)."
        " Available: 10 credits."
    }
    metered = await http.post(MOVE, headers=caller.headers, json=inputs)
    assert metered.status_code == 402
    assert metered.json()["detail"].startswith("Insufficient credits. Required: 25 credits")
    assert metered.json()["detail"].endswith("Available: 10 credits.")
    assert await account(live.runtime.db, caller.user_id) == before
    assert await tasks_of(live.runtime.db, caller.user_id) == []


# --- the active-task cap ----------------------------------------------------------------------


async def test_a_sixth_active_task_is_429_with_retry_after_and_costs_nothing(
    live: Live, http: httpx.AsyncClient
) -> None:
    cap = live.settings.max_active_tasks_per_user
    assert cap == 5
    caller = await new_caller(http)
    await grant(live.runtime.db, caller.user_id, 40)  # 140: seven tasks' worth, so 429 is the cap

    responses = await asyncio.gather(
        *(t2v(http, caller, f"never sent {i} [fault:throttle]") for i in range(7))
    )
    codes = sorted(r.status_code for r in responses)
    assert codes == [200] * 5 + [429] * 2, [r.text for r in responses]
    waiting = [r.json()["task_id"] for r in responses if r.status_code == 200]
    for response in responses:
        if response.status_code == 429:
            assert response.json()["detail"].startswith("Too many active tasks: at most 5")
            assert int(response.headers["retry-after"]) > 0

    key = str(uuid.uuid4())
    sixth = await t2v(http, caller, "the sixth [fault:invalid]", key=key)
    assert sixth.status_code == 429
    assert int(sixth.headers["retry-after"]) > 0
    credits, reserved, rows = await account(live.runtime.db, caller.user_id)
    assert (credits, reserved) == (40, 0)
    assert rows == [BONUS, ("adjustment", 40, 0)] + [CHARGE_20] * 5
    assert sorted(await tasks_of(live.runtime.db, caller.user_id)) == sorted(waiting)

    for task_id in waiting:
        assert (await cancel(http, caller, task_id)).status_code == 200
    ended = await asyncio.gather(*(wait_for(http, caller, t, within=20) for t in waiting))
    assert {t["status"] for t in ended} == {"CANCELED"}

    # Room again, and the refused key was not used up.
    again = await t2v(http, caller, "the sixth [fault:invalid]", key=key)
    assert again.status_code == 200, again.text
    assert "idempotent-replayed" not in again.headers
    assert (await wait_for(http, caller, again.json()["task_id"]))["status"] == "FAILED"
    credits, reserved, rows = await account(live.runtime.db, caller.user_id)
    assert (credits, reserved) == (140, 0)
    assert sorted(rows) == sorted([BONUS, ("adjustment", 40, 0)] + [CHARGE_20, REFUND_20] * 6)
