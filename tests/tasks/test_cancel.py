"""Cancel refunds only what the vendor does not bill (docs/api.md §4.4).

A cancel is confirmed (CANCELED, credits back) when the task never reached the vendor or the
vendor says it stopped it. kie.ai has no cancel at all and DashScope cancels only while a task is
queued: past that point the task keeps running, is polled as usual and is charged for what it
makes (refunded if it then fails), and its view says the cancel could not stop it. Every test
checks what a caller would: the DELETE answer, the task view, the balance and the ledger rows
(which `account` also checks against the user's counters).

The emulators' timings are stretched per test: a long DashScope queue keeps a task cancelable, a
long run keeps a task running at the vendor while the cancel arrives.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
from sqlalchemy import func, select, update

from vidgate.credits import service as ledger
from vidgate.emulators.dashscope import DashScopeEmulator
from vidgate.emulators.kie import KieEmulator
from vidgate.providers.dashscope import DashScopeAdapter
from vidgate.tasks.models import Task

from ..fixtures.app import Live
from ..fixtures.loopback import closed_port_url
from ..fixtures.tasks import Caller, account, animate_inputs, new_caller, text_to_video, wait_for

BONUS = ("signup_bonus", 100, 0)
CHARGE_20 = ("charge", -20, 0)
REFUND_20 = ("refund", 20, 0)
RESERVE_25 = ("reserve", 0, 25)  # 2.5 s of reference video at 10 credits/s (wan-std)
RELEASE_25 = ("release", 0, -25)
REQUESTED = "Task cancellation requested"


# --- helpers ----------------------------------------------------------------------------------


def kie_emulator(live: Live) -> KieEmulator:
    return next(e for e in live.runtime.providers.emulators if isinstance(e, KieEmulator))


def dashscope_emulator(live: Live) -> DashScopeEmulator:
    return next(e for e in live.runtime.providers.emulators if isinstance(e, DashScopeEmulator))


@contextmanager
def timing(
    emulator: DashScopeEmulator | KieEmulator,
    *,
    queue: float | None = None,
    run: float | None = None,
    slow: float | None = None,
) -> Iterator[None]:
    """Stretch how long the emulated vendor queues, runs or answers a submit, for one test."""
    before = emulator.queue_seconds, emulator.run_seconds, emulator.slow_seconds
    if queue is not None:
        emulator.queue_seconds = queue
    if run is not None:
        emulator.run_seconds = run
    if slow is not None:
        emulator.slow_seconds = slow
    try:
        yield
    finally:
        emulator.queue_seconds, emulator.run_seconds, emulator.slow_seconds = before


async def cancel(http: httpx.AsyncClient, caller: Caller, task_id: str) -> httpx.Response:
    return await http.delete(
        f"/api/tasks/{task_id}", headers={"Authorization": caller.headers["Authorization"]}
    )


async def get_task(http: httpx.AsyncClient, caller: Caller, task_id: str) -> dict[str, Any]:
    response = await http.get(f"/api/tasks/{task_id}", headers=caller.headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def animate(http: httpx.AsyncClient, caller: Caller) -> str:
    """An animate-move task on a 2.5 s reference video (25 credits held); its id."""
    inputs = await animate_inputs(http, caller, seconds=2.5)
    created = await http.post("/api/videos/animate-move", headers=caller.headers, json=inputs)
    assert created.status_code == 200, created.text
    task_id: str = created.json()["task_id"]
    return task_id


async def row(live: Live, task_id: str) -> Task:
    async with live.runtime.db.session() as session:
        return await session.get_one(Task, uuid.UUID(task_id))


async def until_vendor_says(
    live: Live, http: httpx.AsyncClient, task_id: str, status: str, within: float = 15
) -> str:
    """Wait until DashScope itself reports `status` for the task; its upstream id."""
    emulator = dashscope_emulator(live)
    async with asyncio.timeout(within):
        while (upstream_id := (await row(live, task_id)).upstream_id) is None:  # noqa: ASYNC110
            await asyncio.sleep(0.02)
        while True:
            answer = await http.get(
                f"/_emulator/dashscope/api/v1/tasks/{upstream_id}",
                headers={"Authorization": f"Bearer {emulator.api_key}"},
            )
            assert answer.status_code == 200, answer.text
            if answer.json()["output"]["task_status"] == status:
                return upstream_id
            await asyncio.sleep(0.02)


def vendor_calls(emulator: DashScopeEmulator, upstream_id: str) -> list[str]:
    """What DashScope was asked about one task, in order: "submit", "poll" or "cancel"."""
    return [
        "cancel"
        if entry["path"].endswith("/cancel")
        else "poll"
        if entry["method"] == "GET"
        else "submit"
        for entry in emulator.requests
        if entry.get("task_id") == upstream_id
    ]


def assert_not_cancelable(answer: httpx.Response) -> None:
    """The DELETE answer for a task the vendor keeps running: nothing in it says canceled."""
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["status"] == "RUNNING"
    assert body["cancel_outcome"] == "not_cancelable"
    assert body["message"].startswith(REQUESTED)
    assert "cannot stop" in body["message"]
    assert "charged" in body["cancel_message"]


# --- a running task the vendor cannot stop ------------------------------------------------------


async def test_a_running_sora_task_kie_cannot_stop_finishes_and_is_charged(
    live: Live, http: httpx.AsyncClient
) -> None:
    """(a) kie.ai has no cancel: the task runs on, is charged its price and nothing comes back."""
    caller = await new_caller(http)
    with timing(kie_emulator(live), run=2.0):
        task_id = await text_to_video(http, caller, "a lighthouse in the fog")
        await wait_for(http, caller, task_id, {"RUNNING"}, within=15)

        answer = await cancel(http, caller, task_id)
        assert_not_cancelable(answer)
        seen = await get_task(http, caller, task_id)
        assert seen["status"] == "RUNNING"
        assert seen["cancel_requested"] is True
        assert seen["cancel_outcome"] == "not_cancelable"
        assert "will finish and be charged" in seen["cancel_message"]
        # Asking again changes nothing and says the same.
        assert_not_cancelable(await cancel(http, caller, task_id))
        retry = await http.post(
            f"/api/tasks/{task_id}/retry",
            headers={"Authorization": caller.headers["Authorization"]},
        )
        assert retry.status_code == 400

        task = await wait_for(http, caller, task_id, within=30)
    assert task["status"] == "SUCCEEDED", task
    assert task["result_url"] is not None
    assert (task["credits_charged"], task["credits_refunded"]) == (20, 0)
    assert task["cancel_outcome"] == "not_cancelable"
    assert "ran to the end and was charged" in task["cancel_message"]
    assert await account(live.runtime.db, caller.user_id) == (80, 0, [BONUS, CHARGE_20])

    finished = await cancel(http, caller, task_id)
    assert finished.status_code == 400
    assert finished.json() == {
        "detail": "Task is already SUCCEEDED; only pending or running tasks can be canceled"
    }


async def test_a_task_the_vendor_cannot_stop_is_refunded_when_it_then_fails(
    live: Live, http: httpx.AsyncClient
) -> None:
    """A refused cancel changes nothing about failures: a failure upstream is refunded."""
    caller = await new_caller(http)
    with timing(kie_emulator(live), run=2.0):
        task_id = await text_to_video(http, caller, "turned down later [fault:moderation]")
        await wait_for(http, caller, task_id, {"RUNNING"}, within=15)
        assert_not_cancelable(await cancel(http, caller, task_id))
        task = await wait_for(http, caller, task_id, within=30)
    assert task["status"] == "FAILED", task
    assert (task["credits_charged"], task["credits_refunded"]) == (20, 20)
    assert task["cancel_outcome"] == "not_cancelable"
    assert await account(live.runtime.db, caller.user_id) == (
        100,
        0,
        [BONUS, CHARGE_20, REFUND_20],
    )


async def test_an_animate_task_dashscope_has_started_settles_on_its_seconds(
    live: Live, http: httpx.AsyncClient
) -> None:
    """(c) DashScope refuses to cancel a running task: it is asked once, vidgate keeps polling,
    and the task is charged for the seconds it produced."""
    caller = await new_caller(http)
    emulator = dashscope_emulator(live)
    with timing(emulator, run=3.0):
        task_id = await animate(http, caller)
        upstream_id = await until_vendor_says(live, http, task_id, "RUNNING")

        assert_not_cancelable(await cancel(http, caller, task_id))
        seen = await get_task(http, caller, task_id)
        assert (seen["status"], seen["cancel_outcome"]) == ("RUNNING", "not_cancelable")
        assert seen["credits_reserved"] == 25  # still held: the charge comes at the end

        task = await wait_for(http, caller, task_id, within=30)
    assert task["status"] == "SUCCEEDED", task
    assert task["cancel_outcome"] == "not_cancelable"
    seconds = task["result_duration_seconds"]
    assert 2.0 <= seconds <= 3.0
    charged = task["credits_charged"]
    assert abs(charged - 10 * seconds) <= 1
    assert (task["credits_reserved"], task["credits_refunded"]) == (0, 0)
    assert await account(live.runtime.db, caller.user_id) == (
        100 - charged,
        0,
        [BONUS, RESERVE_25, ("charge", -charged, -25)],
    )
    # The refusal was heard once (the worker may have asked in the same instant as the DELETE),
    # and polling went on after it until the result was collected.
    calls = vendor_calls(emulator, upstream_id)
    assert 1 <= calls.count("cancel") <= 2, calls
    last_cancel = len(calls) - 1 - calls[::-1].index("cancel")
    assert "poll" in calls[last_cancel:], calls


# --- tasks the vendor has not started, or never got ---------------------------------------------


async def test_an_animate_task_still_queued_at_dashscope_is_canceled_and_released(
    live: Live, http: httpx.AsyncClient
) -> None:
    """(b) DashScope cancels a queued task: the DELETE answers CANCELED and the hold is freed."""
    caller = await new_caller(http)
    emulator = dashscope_emulator(live)
    with timing(emulator, queue=30.0):
        task_id = await animate(http, caller)
        await wait_for(http, caller, task_id, {"RUNNING"}, within=15)
        assert await account(live.runtime.db, caller.user_id) == (100, 25, [BONUS, RESERVE_25])

        answer = await cancel(http, caller, task_id)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["message"], body["status"], body["cancel_outcome"]) == (
        REQUESTED,
        "CANCELED",
        "canceled",
    )
    task = await get_task(http, caller, task_id)
    assert task["status"] == "CANCELED"
    assert task["error_message"] == "Canceled by the user"
    assert (task["cancel_requested"], task["cancel_outcome"]) == (False, "canceled")
    assert (task["credits_reserved"], task["credits_charged"], task["credits_refunded"]) == (
        0,
        0,
        0,
    )
    assert await account(live.runtime.db, caller.user_id) == (
        100,
        0,
        [BONUS, RESERVE_25, RELEASE_25],
    )
    upstream_id = (await row(live, task_id)).upstream_id
    assert upstream_id is not None
    assert "cancel" in vendor_calls(emulator, upstream_id)


async def test_a_pending_task_never_sent_is_canceled_with_a_full_refund(
    live: Live, http: httpx.AsyncClient
) -> None:
    """(d) Nothing reached the vendor (kie keeps refusing the submit with 429): canceled at once,
    refunded in full."""
    caller = await new_caller(http)
    task_id = await text_to_video(http, caller, "never gets a slot [fault:throttle]")
    assert (await get_task(http, caller, task_id))["status"] == "PENDING"

    answer = await cancel(http, caller, task_id)
    assert answer.status_code == 200, answer.text
    assert answer.json()["message"] == REQUESTED
    # CANCELED at once, unless a submit attempt was out that instant: the worker then finishes it.
    assert (answer.json()["status"], answer.json()["cancel_outcome"]) in (
        ("CANCELED", "canceled"),
        ("PENDING", "pending"),
    )
    task = await wait_for(http, caller, task_id, within=20)
    assert task["status"] == "CANCELED"
    assert task["cancel_outcome"] == "canceled"
    assert (task["credits_charged"], task["credits_refunded"]) == (20, 20)
    assert await account(live.runtime.db, caller.user_id) == (
        100,
        0,
        [BONUS, CHARGE_20, REFUND_20],
    )


async def test_a_cancel_during_the_submit_waits_and_cancels_the_queued_animate_task(
    live: Live, http: httpx.AsyncClient
) -> None:
    """The submit is out when the cancel arrives: the worker waits for its answer, then asks
    DashScope, which still has the task queued: canceled and released."""
    caller = await new_caller(http)
    emulator = dashscope_emulator(live)
    with timing(emulator, queue=30.0):
        inputs = await animate_inputs(http, caller, seconds=2.5)
        armed = await http.post(
            "/_emulator/dashscope/_control/faults",
            json={"next_submit": "slow", "slow_seconds": 1.5},
        )
        assert armed.status_code == 200, armed.text
        try:
            created = await http.post(
                "/api/videos/animate-move", headers=caller.headers, json=inputs
            )
            assert created.status_code == 200, created.text
            task_id = created.json()["task_id"]
            async with asyncio.timeout(10):
                while (await row(live, task_id)).submit_started_at is None:  # noqa: ASYNC110
                    await asyncio.sleep(0.02)
        finally:
            await http.post("/_emulator/dashscope/_control/faults", json={"next_submit": None})
        answer = await cancel(http, caller, task_id)
        assert answer.status_code == 200, answer.text
        assert (answer.json()["status"], answer.json()["cancel_outcome"]) == (
            "PENDING",
            "pending",
        )
        seen = await get_task(http, caller, task_id)
        assert (seen["cancel_requested"], seen["cancel_outcome"]) == (True, "pending")
        assert "waiting for the provider" in seen["cancel_message"]

        task = await wait_for(http, caller, task_id, within=20)
    assert task["status"] == "CANCELED", task
    assert task["cancel_outcome"] == "canceled"
    assert await account(live.runtime.db, caller.user_id) == (
        100,
        0,
        [BONUS, RESERVE_25, RELEASE_25],
    )


async def test_a_cancel_the_vendor_cannot_hear_is_tried_again_later(
    live: Live, http: httpx.AsyncClient
) -> None:
    """DashScope unreachable when the cancel is asked (a network fault, not an answer): the task
    stays open with its cancel pending, and the worker asks again once DashScope is back."""
    caller = await new_caller(http)
    emulator = dashscope_emulator(live)
    providers = live.runtime.providers
    with timing(emulator, queue=30.0):
        task_id = await animate(http, caller)
        await wait_for(http, caller, task_id, {"RUNNING"}, within=15)
        reachable = providers.dashscope
        unreachable = DashScopeAdapter("key", closed_port_url())
        providers.dashscope = unreachable
        try:
            answer = await cancel(http, caller, task_id)
            assert answer.status_code == 200, answer.text
            body = answer.json()
            assert (body["message"], body["status"], body["cancel_outcome"]) == (
                REQUESTED,
                "RUNNING",
                "pending",
            )
            await asyncio.sleep(1.0)  # the worker tries (and fails) a few times meanwhile
            seen = await get_task(http, caller, task_id)
            assert (seen["status"], seen["cancel_outcome"]) == ("RUNNING", "pending")
            assert await account(live.runtime.db, caller.user_id) == (
                100,
                25,
                [BONUS, RESERVE_25],
            )
        finally:
            providers.dashscope = reachable
            await unreachable.aclose()
        task = await wait_for(http, caller, task_id, within=20)
    assert task["status"] == "CANCELED", task
    assert task["cancel_outcome"] == "canceled"
    assert await account(live.runtime.db, caller.user_id) == (
        100,
        0,
        [BONUS, RESERVE_25, RELEASE_25],
    )


# --- cancels racing each other ------------------------------------------------------------------


async def test_parallel_cancels_of_a_pending_task_refund_once(
    live: Live, http: httpx.AsyncClient
) -> None:
    caller = await new_caller(http)
    task_id = await text_to_video(http, caller, "cancel me eight times [fault:throttle]")
    answers = await asyncio.gather(*(cancel(http, caller, task_id) for _ in range(8)))
    codes = [a.status_code for a in answers]
    assert 200 in codes and set(codes) <= {200, 400}, [a.text for a in answers]
    for answer in answers:
        if answer.status_code == 400:
            assert answer.json()["detail"].startswith("Task is already CANCELED")
        else:
            assert answer.json()["cancel_outcome"] in ("canceled", "pending")
    assert (await wait_for(http, caller, task_id, within=20))["status"] == "CANCELED"
    assert await account(live.runtime.db, caller.user_id) == (
        100,
        0,
        [BONUS, CHARGE_20, REFUND_20],
    )


async def test_parallel_cancels_of_a_queued_animate_task_release_once_and_agree(
    live: Live, http: httpx.AsyncClient
) -> None:
    """Every DELETE that gets an answer from DashScope says CANCELED, including those that heard
    "cannot cancel" because another one had just canceled it; the hold is released once."""
    caller = await new_caller(http)
    with timing(dashscope_emulator(live), queue=30.0):
        task_id = await animate(http, caller)
        await wait_for(http, caller, task_id, {"RUNNING"}, within=15)
        answers = await asyncio.gather(*(cancel(http, caller, task_id) for _ in range(6)))
    for answer in answers:
        if answer.status_code == 400:
            assert answer.json()["detail"].startswith("Task is already CANCELED")
        else:
            assert answer.status_code == 200, answer.text
            assert (answer.json()["status"], answer.json()["cancel_outcome"]) == (
                "CANCELED",
                "canceled",
            )
    task = await get_task(http, caller, task_id)
    assert (task["status"], task["cancel_outcome"]) == ("CANCELED", "canceled")
    assert await account(live.runtime.db, caller.user_id) == (
        100,
        0,
        [BONUS, RESERVE_25, RELEASE_25],
    )


async def test_parallel_cancels_of_a_running_sora_task_refund_nothing(
    live: Live, http: httpx.AsyncClient
) -> None:
    caller = await new_caller(http)
    with timing(kie_emulator(live), run=2.0):
        task_id = await text_to_video(http, caller, "six cancels, one video")
        await wait_for(http, caller, task_id, {"RUNNING"}, within=15)
        answers = await asyncio.gather(*(cancel(http, caller, task_id) for _ in range(6)))
        for answer in answers:
            assert_not_cancelable(answer)
        task = await wait_for(http, caller, task_id, within=30)
    assert task["status"] == "SUCCEEDED", task
    assert await account(live.runtime.db, caller.user_id) == (80, 0, [BONUS, CHARGE_20])
    async with live.runtime.db.session() as session:
        refunds = await session.scalar(
            select(func.count())
            .select_from(Task)
            .where(Task.id == uuid.UUID(task_id), Task.credits_refunded > 0)
        )
        assert refunds == 0
        assert await ledger.find_drift(session) == []  # `vidgate credits verify` finds nothing


# --- the deadline ---------------------------------------------------------------------------------


async def test_a_task_the_vendor_cannot_stop_still_times_out_with_a_refund(
    live: Live, http: httpx.AsyncClient
) -> None:
    """Timeouts keep refunding (the product promises it), refused cancel or not."""
    caller = await new_caller(http)
    task_id = await text_to_video(http, caller, "never finishes [fault:stuck]")
    await wait_for(http, caller, task_id, {"RUNNING"}, within=15)
    assert_not_cancelable(await cancel(http, caller, task_id))
    async with live.runtime.db.session() as session:  # the deadline passes
        await session.execute(
            update(Task).where(Task.id == uuid.UUID(task_id)).values(deadline_at=func.now())
        )
        await session.commit()
    task = await wait_for(http, caller, task_id, within=20)
    assert task["status"] == "TIMEOUT"
    assert task["cancel_outcome"] == "not_cancelable"
    assert (task["credits_charged"], task["credits_refunded"]) == (20, 20)
    assert await account(live.runtime.db, caller.user_id) == (
        100,
        0,
        [BONUS, CHARGE_20, REFUND_20],
    )
