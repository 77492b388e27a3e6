"""Each kind of task end to end against the emulators, with the worker running: what the caller
sees, the video that comes out, and the ledger rows the money leaves behind."""

from __future__ import annotations

import asyncio
import io
import math
import uuid

import av
import httpx
import pytest

from vidgate.emulators.kie import KieEmulator

from ..fixtures.app import Live
from ..fixtures.samples import png_bytes
from ..fixtures.tasks import account, animate_inputs, new_caller, upload, wait_for


async def play(http: httpx.AsyncClient, url: str) -> tuple[float, int, int]:
    """Download the result like a browser would and decode it: (seconds, width, height)."""
    response = await http.get(url, follow_redirects=True)
    assert response.status_code == 200
    assert response.headers["content-type"] == "video/mp4"
    with av.open(io.BytesIO(response.content)) as container:
        stream = container.streams.video[0]
        frames = sum(1 for _ in container.decode(stream))
        assert frames > 0
        seconds = float(container.duration / av.time_base) if container.duration else 0.0
        return seconds, stream.width, stream.height


async def test_text_to_video_charges_at_creation_and_delivers_a_playable_video(
    live: Live, http: httpx.AsyncClient
) -> None:
    caller = await new_caller(http)
    created = await http.post(
        "/api/videos/text-to-video",
        headers=caller.headers,
        json={"prompt": "a quiet harbour at dawn", "quality": "standard"},
    )
    assert created.status_code == 200, created.text
    body = created.json()
    assert body["success"] is True
    assert body["message"] == "Text-to-video task created successfully. Credits deducted."
    assert body["credits_estimated"] == 20
    assert body["estimated_time"] == 180
    credits, reserved, _ = await account(live.runtime.db, caller.user_id)
    assert (credits, reserved) == (80, 0)

    task = await wait_for(http, caller, body["task_id"])
    assert task["status"] == "SUCCEEDED", task
    assert task["progress"] == 100
    assert task["task_type"] == "text-to-video"
    assert task["user_id"] == str(caller.user_id)
    assert task["credits_charged"] == 20 and task["credits_refunded"] == 0
    assert task["completed_at"] is not None
    assert task["result_url"].startswith(live.url + "/media/results/")
    seconds, width, height = await play(http, task["result_url"])
    assert seconds == pytest.approx(2.0, abs=0.2)
    assert width > height  # landscape
    credits, reserved, rows = await account(live.runtime.db, caller.user_id)
    assert (credits, reserved) == (80, 0)
    assert rows == [("signup_bonus", 100, 0), ("charge", -20, 0)]


async def test_image_to_video_hd_portrait(live: Live, http: httpx.AsyncClient) -> None:
    caller = await new_caller(http)
    image = await upload(http, caller, png_bytes((400, 300)), "still.png", "image")
    created = await http.post(
        "/api/videos/image-to-video",
        headers=caller.headers,
        json={
            "prompt": "slow push in",
            "image_urls": [image],
            "aspect_ratio": "portrait",
            "quality": "hd",
        },
    )
    assert created.status_code == 200, created.text
    assert created.json()["credits_estimated"] == 35
    assert created.json()["message"] == (
        "Image-to-video task created successfully. Credits deducted."
    )
    task = await wait_for(http, caller, created.json()["task_id"])
    assert task["status"] == "SUCCEEDED", task
    _, width, height = await play(http, task["result_url"])
    assert height > width  # portrait
    assert task["inputs"]["image_urls"] == [image]
    _, _, rows = await account(live.runtime.db, caller.user_id)
    assert rows == [("signup_bonus", 100, 0), ("charge", -35, 0)]


@pytest.mark.parametrize(
    ("kind", "mode", "rate"), [("animate-move", "wan-std", 10), ("animate-mix", "wan-pro", 14)]
)
async def test_animate_reserves_the_estimate_and_charges_the_real_length(
    live: Live, http: httpx.AsyncClient, kind: str, mode: str, rate: int
) -> None:
    caller = await new_caller(http)
    inputs = await animate_inputs(http, caller, seconds=2.5)
    created = await http.post(
        f"/api/videos/{kind}", headers=caller.headers, json={**inputs, "mode": mode}
    )
    assert created.status_code == 200, created.text
    body = created.json()
    estimate = math.ceil(2.5 * rate)
    assert body["credits_estimated"] == estimate
    assert body["billing_mode"] == "metered"
    credits, reserved, _ = await account(live.runtime.db, caller.user_id)
    assert (credits, reserved) == (100, estimate)  # held, not taken

    task = await wait_for(http, caller, body["task_id"])
    assert task["status"] == "SUCCEEDED", task
    seconds, _, _ = await play(http, task["result_url"])
    assert task["result_duration_seconds"] == pytest.approx(seconds, abs=0.1)
    charged = task["credits_charged"]
    assert charged == pytest.approx(rate * seconds, abs=rate * 0.2)
    credits, reserved, rows = await account(live.runtime.db, caller.user_id)
    assert (credits, reserved) == (100 - charged, 0)
    assert rows == [
        ("signup_bonus", 100, 0),
        ("reserve", 0, estimate),
        ("charge", -charged, -estimate),
    ]


async def test_sora_moderation_failure_refunds(live: Live, http: httpx.AsyncClient) -> None:
    caller = await new_caller(http)
    created = await http.post(
        "/api/videos/text-to-video",
        headers=caller.headers,
        json={"prompt": "something [fault:moderation]", "quality": "hd"},
    )
    assert created.status_code == 200, created.text
    task = await wait_for(http, caller, created.json()["task_id"])
    assert task["status"] == "FAILED"
    assert task["error_message"]
    assert task["result_url"] is None
    assert (task["credits_charged"], task["credits_refunded"]) == (30, 30)
    credits, reserved, rows = await account(live.runtime.db, caller.user_id)
    assert (credits, reserved) == (100, 0)
    assert rows == [("signup_bonus", 100, 0), ("charge", -30, 0), ("refund", 30, 0)]


async def test_sora_rejected_input_fails_at_submit_and_refunds(
    live: Live, http: httpx.AsyncClient
) -> None:
    caller = await new_caller(http)
    created = await http.post(
        "/api/videos/text-to-video",
        headers=caller.headers,
        json={"prompt": "bad [fault:invalid]"},
    )
    task = await wait_for(http, caller, created.json()["task_id"])
    assert task["status"] == "FAILED" and task["error_message"]
    credits, _, rows = await account(live.runtime.db, caller.user_id)
    assert credits == 100
    assert [r[0] for r in rows] == ["signup_bonus", "charge", "refund"]


async def test_upstream_5xx_then_success(live: Live, http: httpx.AsyncClient) -> None:
    """A 5xx on submit is retried (nothing was accepted) and the task still succeeds."""
    caller = await new_caller(http)
    armed = await http.post(
        "/_emulator/dashscope/_control/faults", json={"next_submit": "server_error", "count": 2}
    )
    assert armed.status_code == 200, armed.text
    inputs = await animate_inputs(http, caller)
    created = await http.post("/api/videos/animate-move", headers=caller.headers, json=inputs)
    task = await wait_for(http, caller, created.json()["task_id"])
    assert task["status"] == "SUCCEEDED", task
    _, _, rows = await account(live.runtime.db, caller.user_id)
    assert [r[0] for r in rows] == ["signup_bonus", "reserve", "charge"]


async def test_dashscope_moderation_releases_the_hold(live: Live, http: httpx.AsyncClient) -> None:
    caller = await new_caller(http)
    await http.post("/_emulator/dashscope/_control/faults", json={"next_submit": "moderation"})
    inputs = await animate_inputs(http, caller)
    created = await http.post("/api/videos/animate-mix", headers=caller.headers, json=inputs)
    task = await wait_for(http, caller, created.json()["task_id"])
    assert task["status"] == "FAILED"
    assert task["error_message"]
    assert (task["credits_charged"], task["credits_reserved"]) == (0, 0)
    credits, reserved, rows = await account(live.runtime.db, caller.user_id)
    assert (credits, reserved) == (100, 0)
    assert rows == [("signup_bonus", 100, 0), ("reserve", 0, 25), ("release", 0, -25)]


async def test_ambiguous_submit_fails_refunds_and_is_never_resent(
    live: Live, http: httpx.AsyncClient
) -> None:
    """The vendor accepts the task but answers after the client gave up: vidgate cannot know
    whether a task exists upstream, so it does not send a second one (that one would be billed
    too); the task fails with its credits returned."""
    emulator = next(e for e in live.runtime.providers.emulators if isinstance(e, KieEmulator))
    slow_before = emulator.slow_seconds
    emulator.slow_seconds = live.settings.provider_timeout_seconds + 2
    prompt = f"answers too late {uuid.uuid4().hex} [fault:slow]"
    try:
        caller = await new_caller(http)
        created = await http.post(
            "/api/videos/text-to-video", headers=caller.headers, json={"prompt": prompt}
        )
        assert created.status_code == 200, created.text
        task = await wait_for(http, caller, created.json()["task_id"], within=30)
    finally:
        emulator.slow_seconds = slow_before
    assert task["status"] == "FAILED", task
    assert task["error_message"] == (
        "The provider did not confirm the task in time; its credits were returned"
    )
    assert (task["credits_charged"], task["credits_refunded"]) == (20, 20)

    def sent() -> list[dict[str, object]]:
        return [
            r
            for r in emulator.requests
            if str(r["path"]).endswith("/createTask") and prompt in str(r["body"])
        ]

    async with asyncio.timeout(15):  # the emulator logs the request once it has answered
        while not sent():  # noqa: ASYNC110
            await asyncio.sleep(0.1)
    assert len(sent()) == 1, sent()
    credits, reserved, rows = await account(live.runtime.db, caller.user_id)
    assert (credits, reserved) == (100, 0)
    assert rows == [("signup_bonus", 100, 0), ("charge", -20, 0), ("refund", 20, 0)]
