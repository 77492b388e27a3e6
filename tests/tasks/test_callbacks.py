"""Vendors' completion callbacks: a verified one wakes its task at once, one that does not verify
is refused and changes nothing."""

from __future__ import annotations

import json
import time
import uuid

import httpx
from sqlalchemy import select

from vidgate.emulators.fal import FalEmulator
from vidgate.providers.kie import callback_signature
from vidgate.tasks.models import Task

from ..fixtures.app import Live
from ..fixtures.tasks import new_caller, text_to_video, wait_for

FAULTS = "/_emulator/dashscope/_control/faults"


def _fal(live: Live) -> FalEmulator:
    return next(e for e in live.runtime.providers.emulators if isinstance(e, FalEmulator))


async def test_a_task_on_fal_is_woken_by_fal_s_signed_webhook(
    live: Live, http: httpx.AsyncClient
) -> None:
    """DashScope is busy, fal.ai takes the task and calls back when it is done; the callback
    verifies (Ed25519, the emulator's JWKS) and the task ends SUCCEEDED."""
    emulator = _fal(live)
    armed = await http.post(FAULTS, json={"next_submit": "throttle", "count": 1})
    assert armed.status_code == 200, armed.text
    caller = await new_caller(http)
    body = {"prompt": "waves on a beach", "model": "wan2.7-t2v"}
    created = await http.post("/api/videos/text-to-video", headers=caller.headers, json=body)
    assert created.status_code == 200, created.text
    task_id = created.json()["task_id"]
    done = await wait_for(http, caller, task_id)
    assert done["status"] == "SUCCEEDED", done
    async with live.runtime.db.session() as session:
        upstream = await session.scalar(
            select(Task.upstream_id).where(Task.id == uuid.UUID(task_id))
        )
    assert upstream is not None
    await emulator.wait_webhooks()
    sent = [w for w in emulator.webhooks if upstream.endswith(json.loads(w["body"])["request_id"])]
    assert [w["status"] for w in sent] == [200]
    assert sent[0]["url"] == f"{live.url}/api/providers/fal/webhook"


async def test_a_fal_webhook_that_does_not_verify_is_refused(
    live: Live, http: httpx.AsyncClient
) -> None:
    emulator = _fal(live)
    body = json.dumps({"request_id": "r-1", "status": "OK", "payload": {}}).encode()
    headers = emulator.sign("r-1", body)
    forged = await http.post(
        "/api/providers/fal/webhook", content=body.replace(b"OK", b"ERROR"), headers=headers
    )
    assert forged.status_code == 401, forged.text
    assert forged.json() == {"detail": "The callback's signature does not verify"}
    stale = emulator.sign("r-1", body, timestamp=int(time.time()) - 3600)
    old = await http.post("/api/providers/fal/webhook", content=body, headers=stale)
    assert old.status_code == 401, old.text
    unknown = await http.post("/api/providers/fal/webhook", content=body, headers=headers)
    assert unknown.status_code == 200, unknown.text
    assert unknown.json() == {"received": True, "task_id": None}


async def test_kie_callbacks_verify_with_the_hmac_key_and_wake_the_task(
    live: Live, http: httpx.AsyncClient
) -> None:
    """A signed callback for an open task queues its next step; a wrong signature is 401."""
    key = live.runtime.providers.kie_hmac_key
    assert key
    caller = await new_caller(http)
    # Held generating at kie.ai, so the callback finds it open and settles nothing by itself.
    task_id = await text_to_video(http, caller, "a kite over a field [fault:stuck]")
    await wait_for(http, caller, task_id, {"RUNNING"})
    async with live.runtime.db.session() as session:
        upstream = await session.scalar(
            select(Task.upstream_id).where(Task.id == uuid.UUID(task_id))
        )
    assert upstream is not None
    stamp = str(int(time.time()))
    payload = json.dumps({"code": 200, "msg": "ok", "data": {"taskId": upstream}}).encode()
    signed = {
        "X-Webhook-Timestamp": stamp,
        "X-Webhook-Signature": callback_signature(upstream, stamp, key),
        "Content-Type": "application/json",
    }
    woken = await http.post("/api/providers/kie/callback", content=payload, headers=signed)
    assert woken.status_code == 200, woken.text
    assert woken.json() == {"received": True, "task_id": task_id}
    wrong = {**signed, "X-Webhook-Signature": callback_signature(upstream, stamp, key + "x")}
    refused = await http.post("/api/providers/kie/callback", content=payload, headers=wrong)
    assert refused.status_code == 401, refused.text
    still = await http.get(f"/api/tasks/{task_id}", headers=caller.headers)
    assert still.json()["status"] == "RUNNING"  # woken, asked kie.ai, still generating
    canceled = await http.delete(f"/api/tasks/{task_id}", headers=caller.headers)
    assert canceled.status_code == 200, canceled.text
