"""A failed task is retried once: a double click, or a client retrying a lost answer, gets the same
new task and pays once."""

from __future__ import annotations

import asyncio

import httpx

from ..fixtures.app import Live
from ..fixtures.tasks import (
    BONUS,
    CHARGE_20,
    REFUND_20,
    account,
    bearer,
    new_caller,
    tasks_of,
    text_to_video,
    wait_for,
)


async def test_parallel_retries_of_one_task_make_one_task_and_one_charge(
    live: Live, http: httpx.AsyncClient
) -> None:
    caller = await new_caller(http)
    failed = await text_to_video(http, caller, "refused [fault:moderation]")
    assert (await wait_for(http, caller, failed))["status"] == "FAILED"

    retry = f"/api/tasks/{failed}/retry"
    answers = await asyncio.gather(*(http.post(retry, headers=bearer(caller)) for _ in range(6)))
    assert [a.status_code for a in answers] == [200] * 6, [a.text for a in answers]
    new_ids = {a.json()["new_task_id"] for a in answers}
    assert len(new_ids) == 1
    [new_id] = new_ids
    assert [a.headers.get("idempotent-replayed") for a in answers].count("true") == 5
    assert all(a.json()["credits_estimated"] == 20 for a in answers)
    assert await tasks_of(live.runtime.db, caller.user_id) == [failed, new_id]

    # Later, once the retry has finished (failed again here), the same task still names it:
    # the one to retry now is the new task.
    assert (await wait_for(http, caller, new_id))["status"] == "FAILED"
    again = await http.post(retry, headers=bearer(caller))
    assert again.status_code == 200, again.text
    assert again.json()["new_task_id"] == new_id
    assert again.headers["idempotent-replayed"] == "true"
    assert await account(live.runtime.db, caller.user_id) == (
        100,
        0,
        [BONUS, CHARGE_20, REFUND_20, CHARGE_20, REFUND_20],
    )
    onwards = await http.post(f"/api/tasks/{new_id}/retry", headers=bearer(caller))
    assert onwards.status_code == 200, onwards.text
    assert onwards.json()["new_task_id"] not in (failed, new_id)
    assert "idempotent-replayed" not in onwards.headers
