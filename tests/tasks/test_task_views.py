"""Who sees what of a task: its owner everything, a client key alone (public: the web app's
configuration serves it) only progress and outcome."""

from __future__ import annotations

from typing import Any

import httpx

from ..fixtures.app import DEV_CLIENT_KEY, Live
from ..fixtures.tasks import new_caller, read_events, text_to_video, wait_for

PRIVATE = (
    "user_id",
    "inputs",
    "billing_mode",
    "credits_estimated",
    "credits_reserved",
    "credits_charged",
    "credits_refunded",
    "retry_of",
)


async def test_a_client_key_alone_sees_progress_and_outcome_only(
    live: Live, http: httpx.AsyncClient
) -> None:
    caller = await new_caller(http)
    task_id = await text_to_video(http, caller, "a private prompt")
    done = await wait_for(http, caller, task_id)
    assert done["status"] == "SUCCEEDED"
    assert (done["user_id"], done["inputs"]["prompt"], done["credits_charged"]) == (
        str(caller.user_id),
        "a private prompt",
        20,
    )
    created = await http.post(
        "/api/users/api-keys", headers=caller.headers, json={"name": "server"}
    )
    assert created.status_code == 201, created.text
    personal = {"X-API-Key": created.json()["key"]}

    for path in (f"/api/tasks/{task_id}", f"/api/videos/tasks/{task_id}"):
        public = await http.get(path, headers={"X-API-Key": DEV_CLIENT_KEY})
        assert public.status_code == 200, public.text
        seen = public.json()
        for name in PRIVATE:
            assert seen[name] is None, (name, seen)
        for name in ("task_id", "task_type", "status", "progress", "result_url", "created_at"):
            assert seen[name] == done[name], name
        # Its owner, by token or by personal key, sees it all.
        assert (await http.get(path, headers=caller.headers)).json() == done
        assert (await http.get(path, headers=personal)).json() == done

    events: list[dict[str, Any]] = []
    async with http.stream(
        "GET", f"/api/tasks/{task_id}/events", headers={"X-API-Key": DEV_CLIENT_KEY}
    ) as stream:
        assert stream.status_code == 200
        await read_events(stream, events)
    assert events[-1]["status"] == "SUCCEEDED"
    assert all(event[name] is None for event in events for name in PRIVATE)
