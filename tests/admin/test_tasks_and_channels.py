"""The console's tasks and channels: every user's tasks with filters, a task's vendor attempts,
a force-cancel that returns every credit even where the vendor cannot stop the task, and the
channels with their state, switched off and on for every process (audited)."""

from __future__ import annotations

import uuid

import httpx
from sqlalchemy import select

from vidgate.admin.models import AuditEntry

from ..fixtures.app import Live
from ..fixtures.operators import operator
from ..fixtures.tasks import account, new_caller, text_to_video, wait_for


async def _audit_actions(live: Live, target: str) -> list[str]:
    async with live.runtime.db.session() as session:
        rows = await session.scalars(
            select(AuditEntry.action).where(AuditEntry.target_id == target).order_by(AuditEntry.id)
        )
        return list(rows)


async def test_tasks_are_listed_read_with_attempts_and_force_canceled_with_a_refund(
    live: Live, http: httpx.AsyncClient
) -> None:
    support = await operator(http, live.runtime, "support")
    caller = await new_caller(http)
    # kie.ai cannot cancel a running task: only an operator's cancel gives the charge back.
    task_id = await text_to_video(http, caller, "a lighthouse [fault:stuck]")
    await wait_for(http, caller, task_id, {"RUNNING"})
    assert (await account(live.runtime.db, caller.user_id))[:2] == (80, 0)

    listed = await http.get(
        "/api/admin/tasks",
        params={"user_id": str(caller.user_id), "status": "RUNNING"},
        headers=support.headers,
    )
    assert listed.status_code == 200, listed.text
    assert [t["task_id"] for t in listed.json()["tasks"]] == [task_id]
    none = await http.get(
        "/api/admin/tasks",
        params={"user_id": str(caller.user_id), "kind": "animate-move"},
        headers=support.headers,
    )
    assert none.json()["total"] == 0
    bad = await http.get("/api/admin/tasks", params={"status": "DONE"}, headers=support.headers)
    assert bad.status_code == 422

    read = await http.get(f"/api/admin/tasks/{task_id}", headers=support.headers)
    assert read.status_code == 200, read.text
    body = read.json()
    assert (body["channel"], body["provider"]) == ("test-kie-sora-t2v", "kie")
    assert [(a["channel"], a["outcome"]) for a in body["attempts"]] == [
        ("test-kie-sora-t2v", "accepted")
    ]
    assert body["upstream_id"] == body["attempts"][0]["upstream_id"]

    canceled = await http.post(
        f"/api/admin/tasks/{task_id}/cancel",
        json={"reason": "stuck at the vendor for an hour"},
        headers=support.headers,
    )
    assert canceled.status_code == 200, canceled.text
    assert (canceled.json()["status"], canceled.json()["credits_refunded"]) == ("CANCELED", 20)
    credits, reserved, rows = await account(live.runtime.db, caller.user_id)
    assert (credits, reserved) == (100, 0)
    assert [kind for kind, _, _ in rows] == ["signup_bonus", "charge", "refund"]
    again = await http.post(
        f"/api/admin/tasks/{task_id}/cancel", json={"reason": "twice"}, headers=support.headers
    )
    assert again.status_code == 400
    assert (await http.get(f"/api/tasks/{task_id}", headers=caller.headers)).json()[
        "status"
    ] == "CANCELED"
    assert await _audit_actions(live, task_id) == ["task.canceled"]
    missing = await http.get(f"/api/admin/tasks/{uuid.uuid4()}", headers=support.headers)
    assert missing.status_code == 404


async def test_channels_show_their_state_and_switch_for_every_process(
    live: Live, http: httpx.AsyncClient
) -> None:
    support = await operator(http, live.runtime, "support")
    admin = await operator(http, live.runtime, "admin")
    listed = await http.get("/api/admin/channels", headers=support.headers)
    assert listed.status_code == 200, listed.text
    by_id = {c["channel"]: c for c in listed.json()["channels"]}
    assert by_id["test-single"]["model"] == "one-at-a-time"
    assert by_id["test-single"]["max_concurrency"] == 1
    assert by_id["fal-wan27-t2v"]["adapter"] == "fal"

    refused = await http.post(
        "/api/admin/channels/test-single/disable", json={"reason": "x" * 5}, headers=support.headers
    )
    assert refused.status_code == 403 and refused.json() == {"detail": "Admins only"}
    unknown = await http.post(
        "/api/admin/channels/no-such-channel/disable",
        json={"reason": "vendor down"},
        headers=admin.headers,
    )
    assert unknown.status_code == 404
    try:
        off = await http.post(
            "/api/admin/channels/test-single/disable",
            json={"reason": "vendor incident #12"},
            headers=admin.headers,
        )
        assert off.status_code == 200, off.text
        state = {c["channel"]: c for c in off.json()["channels"]}["test-single"]
        assert state["disabled"] is True
    finally:
        on = await http.post(
            "/api/admin/channels/test-single/enable",
            json={"reason": "incident over"},
            headers=admin.headers,
        )
    assert on.status_code == 200
    assert {c["channel"]: c for c in on.json()["channels"]}["test-single"]["disabled"] is False
    assert (await _audit_actions(live, "test-single"))[-2:] == [
        "channel.disabled",
        "channel.enabled",
    ]
