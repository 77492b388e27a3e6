"""The kie.ai Sora 2 adapter against the kie emulator, both over real HTTP on loopback.

A second tiny app plays the public internet: it serves input images (and a text file posing as
one) and receives callbacks. Time in the emulator is a fake clock the tests move by hand.
"""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import av
import httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from PIL import Image
from starlette.types import Receive, Scope, Send

from vidgate.emulators.kie import PREFIX, KieEmulator
from vidgate.providers.base import (
    Ambiguous,
    NotSent,
    Rejected,
    Throttled,
    UpstreamStatus,
    VideoRequest,
)
from vidgate.providers.kie import KieSoraAdapter

from ..fixtures.clock import FakeClock
from ..fixtures.loopback import Switch, closed_port_url, serve_on_loopback

API_KEY = "kie-test-key-0123456789"
SECONDS = 1.0  # rendered length: short, so renders stay fast
QUEUE = 1.0
RUN = 3.0


@dataclass
class Env:
    emulator: KieEmulator
    clock: FakeClock
    base: str  # the emulator's kie base URL
    web: str  # the "public internet" app
    callbacks: list[dict[str, Any]]
    arrived: asyncio.Event  # set whenever a callback comes in

    def adapter(self, **kwargs: Any) -> KieSoraAdapter:
        kwargs.setdefault("api_key", API_KEY)
        kwargs.setdefault("base_url", self.base)
        return KieSoraAdapter(**kwargs)


def _image(fmt: str, size: tuple[int, int] = (320, 240)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, (200, 120, 40)).save(buf, format=fmt)
    return buf.getvalue()


@dataclass
class Web:
    """The app playing the public internet: input images and a callback receiver."""

    callbacks: list[dict[str, Any]] = field(default_factory=list)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    def app(self) -> FastAPI:
        app = FastAPI()
        files = {
            "frame.png": (_image("PNG"), "image/png"),
            "frame.jpg": (_image("JPEG"), "image/jpeg"),
            "notes.png": (b"just some text, not an image\n" * 10, "image/png"),
            "anim.gif": (_image("GIF"), "image/gif"),
        }

        @app.get("/{name}")
        async def serve(name: str) -> Response:
            found = files.get(name)
            if found is None:
                return Response("not found", status_code=404)
            return Response(found[0], media_type=found[1])

        @app.post("/callback")
        async def callback(request: Request) -> Response:
            self.callbacks.append(await request.json())
            self.arrived.set()
            return JSONResponse({"ok": True})

        return app


@dataclass
class Servers:
    switch: Switch
    base: str
    web: Web
    web_base: str


@pytest.fixture(scope="module")
async def servers() -> AsyncIterator[Servers]:
    switch, web = Switch(), Web()
    async with serve_on_loopback(switch) as base, serve_on_loopback(web.app()) as web_base:
        yield Servers(switch, base, web, web_base)


@pytest.fixture
async def env(servers: Servers, tmp_path: Path) -> AsyncIterator[Env]:
    clock = FakeClock()
    emulator = KieEmulator(
        api_key=API_KEY,
        work_dir=tmp_path,
        public_base_url=servers.base,
        queue_seconds=QUEUE,
        run_seconds=RUN,
        result_ttl_seconds=600,
        render_height=144,
        seconds=SECONDS,
        slow_seconds=1.0,
        clock=clock,
    )
    app = FastAPI()
    app.include_router(emulator.router())
    servers.switch.target = app
    servers.web.callbacks.clear()
    servers.web.arrived.clear()
    yield Env(
        emulator,
        clock,
        servers.base + PREFIX,
        servers.web_base,
        servers.web.callbacks,
        servers.web.arrived,
    )
    await emulator.aclose()
    servers.switch.target = None


async def _finish(env: Env, task_id: str) -> None:
    """Move the clock past the end of the task and wait for its render."""
    env.clock.advance(QUEUE + RUN + 0.1)
    async with asyncio.timeout(30):
        await env.emulator.wait_rendered(task_id)


async def _wait_callbacks(env: Env, count: int) -> None:
    async with asyncio.timeout(5):
        while len(env.callbacks) < count:
            await env.arrived.wait()
            env.arrived.clear()
    await asyncio.sleep(0.2)  # long enough for a duplicate to show up if there were one


def _probe(data: bytes, path: Path) -> tuple[int, int, float]:
    path.write_bytes(data)
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264"
        frames = sum(1 for _ in container.decode(stream))
        assert frames > 0
        assert stream.duration is not None and stream.time_base is not None
        return stream.width, stream.height, float(stream.duration * stream.time_base)


# ---------------------------------------------------------------------------------------------
# States
# ---------------------------------------------------------------------------------------------


async def test_text_to_video_walks_every_state_and_renders_landscape(
    env: Env, tmp_path: Path
) -> None:
    adapter = env.adapter(callback_url=env.web + "/callback")
    try:
        submitted = await adapter.submit(
            VideoRequest(kind="text-to-video", prompt="A red fox in the snow")
        )
        sent = env.emulator.requests[-1]["body"]
        assert sent["model"] == "sora-2-text-to-video"
        assert sent["input"]["aspect_ratio"] == "landscape"
        assert sent["input"]["n_frames"] == "10"
        assert sent["callBackUrl"] == env.web + "/callback"

        waiting = await adapter.fetch(submitted.upstream_id)
        assert waiting.status is UpstreamStatus.PENDING
        assert waiting.raw["data"]["state"] == "waiting"

        env.clock.advance(QUEUE * 0.75)
        queuing = await adapter.fetch(submitted.upstream_id)
        assert (queuing.status, queuing.raw["data"]["state"]) == (UpstreamStatus.PENDING, "queuing")

        env.clock.advance(RUN / 2)
        generating = await adapter.fetch(submitted.upstream_id)
        assert generating.status is UpstreamStatus.RUNNING
        assert generating.raw["data"]["state"] == "generating"

        await _finish(env, submitted.upstream_id)
        done = await adapter.fetch(submitted.upstream_id)
        assert done.status is UpstreamStatus.SUCCEEDED
        assert done.billed_seconds == 10.0
        assert done.progress == 100
        assert done.result_url is not None
        assert done.result_url.startswith(env.base + "/results/")

        async with httpx.AsyncClient() as client:
            video = await client.get(done.result_url)
        assert video.status_code == 200
        assert video.headers["content-type"] == "video/mp4"
        width, height, duration = _probe(video.content, tmp_path / "t2v.mp4")
        assert width * 9 == height * 16
        assert height == 144
        assert duration == pytest.approx(SECONDS, abs=0.1)

        await _wait_callbacks(env, 1)
        assert len(env.callbacks) == 1
        callback = env.callbacks[0]
        assert callback["code"] == 200
        assert callback["data"]["taskId"] == submitted.upstream_id
        assert callback["data"]["state"] == "success"
        assert isinstance(callback["data"]["resultJson"], str)
        assert done.result_url in callback["data"]["resultJson"]
    finally:
        await adapter.aclose()


async def test_image_to_video_portrait_hd_pans_over_the_image(env: Env, tmp_path: Path) -> None:
    adapter = env.adapter()
    try:
        submitted = await adapter.submit(
            VideoRequest(
                kind="image-to-video",
                prompt="Camera slowly zooms in",
                image_urls=(env.web + "/frame.jpg",),
                aspect_ratio="portrait",
                quality="hd",
            )
        )
        sent = env.emulator.requests[-1]["body"]
        assert sent["model"] == "sora-2-pro-image-to-video"
        assert sent["input"]["size"] == "high"
        assert sent["input"]["image_urls"] == [env.web + "/frame.jpg"]
        assert "callBackUrl" not in sent

        await _finish(env, submitted.upstream_id)
        done = await adapter.fetch(submitted.upstream_id)
        assert done.status is UpstreamStatus.SUCCEEDED and done.result_url
        async with httpx.AsyncClient() as client:
            video = await client.get(done.result_url)
        width, height, duration = _probe(video.content, tmp_path / "i2v.mp4")
        assert (width, height) == (144, 256)  # 9:16, with even dimensions for H.264
        assert duration == pytest.approx(SECONDS, abs=0.1)
    finally:
        await adapter.aclose()


async def test_moderation_failure_is_a_failed_task_with_kies_reason(env: Env) -> None:
    adapter = env.adapter(callback_url=env.web + "/callback")
    try:
        submitted = await adapter.submit(
            VideoRequest(kind="text-to-video", prompt="something [fault:moderation]")
        )
        env.clock.advance(QUEUE + 0.1)
        assert (await adapter.fetch(submitted.upstream_id)).status is UpstreamStatus.RUNNING
        env.clock.advance(RUN)
        failed = await adapter.fetch(submitted.upstream_id)
        assert failed.status is UpstreamStatus.FAILED
        assert failed.error_code == "400"
        assert failed.error_message is not None and "content policies" in failed.error_message
        assert failed.result_url is None and failed.billed_seconds is None

        await _wait_callbacks(env, 1)
        assert len(env.callbacks) == 1
        assert env.callbacks[0]["code"] == 501
        assert env.callbacks[0]["data"]["state"] == "fail"
        assert env.callbacks[0]["data"]["failCode"] == "400"
    finally:
        await adapter.aclose()


async def test_stuck_task_stays_running(env: Env) -> None:
    adapter = env.adapter(callback_url=env.web + "/callback")
    try:
        submitted = await adapter.submit(
            VideoRequest(kind="text-to-video", prompt="forever [fault:stuck]")
        )
        env.clock.advance(100 * (QUEUE + RUN))
        state = await adapter.fetch(submitted.upstream_id)
        assert state.status is UpstreamStatus.RUNNING
        await asyncio.sleep(0.2)
        assert env.callbacks == []
    finally:
        await adapter.aclose()


async def test_fault_through_control_endpoint_applies_to_next_submit_only(env: Env) -> None:
    adapter = env.adapter()
    try:
        async with httpx.AsyncClient() as client:
            bad = await client.post(env.base + "/_control/faults", json={"next_submit": "nope"})
            assert bad.status_code == 422
            ok = await client.post(env.base + "/_control/faults", json={"next_submit": "stuck"})
            assert ok.status_code == 200
        stuck = await adapter.submit(VideoRequest(kind="text-to-video", prompt="a"))
        normal = await adapter.submit(VideoRequest(kind="text-to-video", prompt="b"))
        env.clock.advance(QUEUE + RUN + 0.1)
        async with asyncio.timeout(30):
            await env.emulator.wait_rendered(normal.upstream_id)
        assert (await adapter.fetch(stuck.upstream_id)).status is UpstreamStatus.RUNNING
        assert (await adapter.fetch(normal.upstream_id)).status is UpstreamStatus.SUCCEEDED
    finally:
        await adapter.aclose()


async def test_unknown_task_id_is_unknown(env: Env) -> None:
    adapter = env.adapter()
    try:
        state = await adapter.fetch("0" * 32)
        assert state.status is UpstreamStatus.UNKNOWN
    finally:
        await adapter.aclose()


async def test_result_url_expires(env: Env) -> None:
    adapter = env.adapter()
    try:
        submitted = await adapter.submit(VideoRequest(kind="text-to-video", prompt="short-lived"))
        await _finish(env, submitted.upstream_id)
        done = await adapter.fetch(submitted.upstream_id)
        assert done.result_url
        async with httpx.AsyncClient() as client:
            assert (await client.get(done.result_url)).status_code == 200
            env.clock.advance(600)
            expired = await client.get(done.result_url)
            assert expired.status_code == 403
            assert "expired" in expired.text
            missing = await client.get(env.base + "/results/nothing.mp4")
            assert missing.status_code == 404
    finally:
        await adapter.aclose()


async def test_cancel_is_not_supported_and_calls_nothing(env: Env) -> None:
    adapter = env.adapter()
    try:
        submitted = await adapter.submit(VideoRequest(kind="text-to-video", prompt="keep going"))
        before = len(env.emulator.requests)
        assert await adapter.cancel(submitted.upstream_id) is False
        assert len(env.emulator.requests) == before
    finally:
        await adapter.aclose()


# ---------------------------------------------------------------------------------------------
# Error classes
# ---------------------------------------------------------------------------------------------


async def test_closed_port_is_not_sent() -> None:
    adapter = KieSoraAdapter(API_KEY, closed_port_url(), timeout=2)
    try:
        with pytest.raises(NotSent):
            await adapter.submit(VideoRequest(kind="text-to-video", prompt="hello"))
        with pytest.raises(NotSent):
            await adapter.fetch("0" * 32)
    finally:
        await adapter.aclose()


async def test_bad_key_is_rejected(env: Env) -> None:
    adapter = env.adapter(api_key="wrong-key")
    try:
        with pytest.raises(Rejected) as submit_error:
            await adapter.submit(VideoRequest(kind="text-to-video", prompt="hello"))
        assert submit_error.value.code == "401"
        assert submit_error.value.status == 200  # kie's errors come inside HTTP 200
        with pytest.raises(Rejected) as fetch_error:
            await adapter.fetch("0" * 32)
        assert fetch_error.value.code == "401"
    finally:
        await adapter.aclose()


async def test_bad_key_is_rejected_when_the_http_status_mirrors_the_code(env: Env) -> None:
    env.emulator.mirror_http_status = True
    adapter = env.adapter(api_key="wrong-key")
    try:
        with pytest.raises(Rejected) as error:
            await adapter.submit(VideoRequest(kind="text-to-video", prompt="hello"))
        assert (error.value.code, error.value.status) == ("401", 401)
    finally:
        await adapter.aclose()


@pytest.mark.parametrize(
    "request_",
    [
        VideoRequest(kind="text-to-video", prompt="x" * 5001),
        VideoRequest(kind="text-to-video", prompt=""),
        VideoRequest(kind="image-to-video", prompt="pan"),  # no image
        VideoRequest(kind="text-to-video", prompt="odd [fault:invalid]"),
    ],
    ids=["prompt-5001-chars", "empty-prompt", "no-image", "invalid-marker"],
)
async def test_invalid_input_is_rejected(env: Env, request_: VideoRequest) -> None:
    adapter = env.adapter()
    try:
        with pytest.raises(Rejected) as error:
            await adapter.submit(request_)
        assert error.value.code == "422"
    finally:
        await adapter.aclose()


@pytest.mark.parametrize("path", ["/missing.png", "/notes.png", "/anim.gif"])
async def test_bad_input_image_is_rejected(env: Env, path: str) -> None:
    adapter = env.adapter()
    try:
        with pytest.raises(Rejected) as error:
            await adapter.submit(
                VideoRequest(kind="image-to-video", prompt="pan", image_urls=(env.web + path,))
            )
        assert error.value.code == "422"
    finally:
        await adapter.aclose()


async def test_unreachable_image_host_is_rejected(env: Env) -> None:
    adapter = env.adapter()
    try:
        with pytest.raises(Rejected) as error:
            await adapter.submit(
                VideoRequest(
                    kind="image-to-video",
                    prompt="pan",
                    image_urls=(closed_port_url() + "/frame.png",),
                )
            )
        assert error.value.code == "422"
    finally:
        await adapter.aclose()


async def test_throttle_and_outage_are_throttled(env: Env) -> None:
    adapter = env.adapter()
    try:
        with pytest.raises(Throttled) as throttled:
            await adapter.submit(VideoRequest(kind="text-to-video", prompt="[fault:throttle]"))
        assert (throttled.value.code, throttled.value.status) == ("429", 200)
        with pytest.raises(Throttled) as outage:
            await adapter.submit(VideoRequest(kind="text-to-video", prompt="[fault:5xx]"))
        assert (outage.value.code, outage.value.status) == ("500", 500)
    finally:
        await adapter.aclose()


async def test_insufficient_credits_is_rejected(env: Env) -> None:
    adapter = env.adapter()
    try:
        with pytest.raises(Rejected) as error:
            await adapter.submit(VideoRequest(kind="text-to-video", prompt="[fault:credits]"))
        assert error.value.code == "402"
    finally:
        await adapter.aclose()


async def test_slow_submit_is_ambiguous(env: Env) -> None:
    adapter = env.adapter(timeout=0.3)
    try:
        with pytest.raises(Ambiguous):
            await adapter.submit(VideoRequest(kind="text-to-video", prompt="[fault:slow]"))
        # The task was created all the same: that is what makes the outcome ambiguous.
        assert len(env.emulator.task_ids()) == 1
    finally:
        await adapter.aclose()


async def test_fetch_timeout_is_throttled() -> None:
    release = asyncio.Event()

    async def hang(scope: Scope, receive: Receive, send: Send) -> None:
        await release.wait()
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    async with serve_on_loopback(hang) as base:
        adapter = KieSoraAdapter(API_KEY, base, timeout=0.2)
        try:
            with pytest.raises(Throttled):
                await adapter.fetch("0" * 32)
        finally:
            release.set()
            await adapter.aclose()


# ---------------------------------------------------------------------------------------------
# The emulator rejects what kie rejects
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        {"input": {"prompt": "a"}},
        {"model": "sora-3", "input": {"prompt": "a"}},
        {"model": "sora-2-text-to-video"},
        {"model": "sora-2-text-to-video", "input": {}},
        {"model": "sora-2-text-to-video", "input": {"prompt": "a", "aspect_ratio": "square"}},
        {"model": "sora-2-text-to-video", "input": {"prompt": "a", "n_frames": "7"}},
        {"model": "sora-2-image-to-video", "input": {"prompt": "a"}},
        {"model": "sora-2-image-to-video", "input": {"prompt": "a", "image_urls": []}},
        {"model": "sora-2-image-to-video", "input": {"prompt": "a", "image_urls": ["ftp://x"]}},
        {"model": "sora-2-text-to-video", "input": {"prompt": "a"}, "callBackUrl": "nope"},
        [1, 2, 3],
    ],
)
async def test_emulator_validates_create_task(env: Env, body: Any) -> None:
    async with httpx.AsyncClient(headers={"Authorization": f"Bearer {API_KEY}"}) as client:
        response = await client.post(env.base + "/api/v1/jobs/createTask", json=body)
    assert response.status_code == 200
    assert response.json()["code"] == 422


async def test_emulator_checks_auth_and_accepts_unknown_fields(env: Env) -> None:
    body = {
        "model": "sora-2-text-to-video",
        "input": {"prompt": "a", "aspect_ratio": "portrait", "quality": "hd"},
    }
    async with httpx.AsyncClient() as client:
        url = env.base + "/api/v1/jobs/createTask"
        for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": API_KEY}):
            denied = await client.post(url, json=body, headers=headers)
            assert denied.json()["code"] == 401
        auth = {"Authorization": f"Bearer {API_KEY}"}
        accepted = await client.post(url, json=body, headers=auth)
        assert accepted.json()["code"] == 200
        task_id = accepted.json()["data"]["taskId"]
        assert len(task_id) == 32

        record = await client.get(
            env.base + "/api/v1/jobs/recordInfo", params={"taskId": task_id}, headers=auth
        )
        data = record.json()["data"]
        assert isinstance(data["param"], str) and '"quality": "hd"' in data["param"]
        assert data["state"] == "waiting"
        missing = await client.get(env.base + "/api/v1/jobs/recordInfo", headers=auth)
        assert missing.json()["code"] == 422
        credit = await client.get(env.base + "/api/v1/chat/credit", headers=auth)
        assert credit.json()["code"] == 200 and isinstance(credit.json()["data"], int | float)

        log = (await client.get(env.base + "/_control/requests")).json()["requests"]
        assert [entry["code"] for entry in log] == [401, 401, 401, 200, 200, 422, 200]


# ---------------------------------------------------------------------------------------------
# Defensive parsing (kie's real answers vary more than the emulator's), without a server
# ---------------------------------------------------------------------------------------------


def _mocked(handler: Callable[[httpx.Request], httpx.Response], **kwargs: Any) -> KieSoraAdapter:
    client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    return KieSoraAdapter(API_KEY, "https://kie.test", client=client, **kwargs)


async def test_record_parsing_tolerates_kies_variants() -> None:
    records = {
        "ok": {
            "state": "success",
            "param": json.dumps({"input": {"n_frames": "15"}}),
            "resultJson": json.dumps({"resultUrls": ["https://cdn/x.mp4", "https://cdn/y.mp4"]}),
        },
        "empty": {"state": "success", "resultJson": ""},
        "odd": {"state": "rendering", "progress": "42"},
        "none": None,
    }

    def handler(request: httpx.Request) -> httpx.Response:
        assert request.headers["authorization"] == f"Bearer {API_KEY}"
        data = records[request.url.params["taskId"]]
        return httpx.Response(200, json={"code": 200, "message": "success", "data": data})

    adapter = _mocked(handler)
    ok = await adapter.fetch("ok")
    assert (ok.status, ok.result_url, ok.billed_seconds) == (
        UpstreamStatus.SUCCEEDED,
        "https://cdn/x.mp4",
        15.0,
    )
    empty = await adapter.fetch("empty")
    assert (empty.status, empty.error_code) == (UpstreamStatus.FAILED, "NO_RESULT")
    odd = await adapter.fetch("odd")
    assert (odd.status, odd.progress) == (UpstreamStatus.RUNNING, 42)
    assert (await adapter.fetch("none")).status is UpstreamStatus.UNKNOWN
    await adapter.aclose()


@pytest.mark.parametrize(
    ("response", "error", "code"),
    [
        # A gateway's own page may hide a created task: never sent again.
        (httpx.Response(502, text="<html>Bad Gateway</html>"), Ambiguous, None),
        (httpx.Response(504, text="<html>Gateway Timeout</html>"), Ambiguous, None),
        (httpx.Response(503, text="<html>Unavailable</html>"), Throttled, "503"),
        (httpx.Response(200, text="<html>?</html>"), Ambiguous, None),
        (httpx.Response(200, json={"code": 200, "msg": "success", "data": {}}), Ambiguous, None),
        (httpx.Response(200, json={"code": 455, "msg": "unavailable"}), Throttled, "455"),
        (httpx.Response(200, json={"code": 501, "msg": "generation failed"}), Rejected, "501"),
        (
            httpx.Response(
                429, json={"code": 429, "msg": "slow down"}, headers={"Retry-After": "7"}
            ),
            Throttled,
            "429",
        ),
        (httpx.Response(200, json={"code": "422", "msg": "bad"}), Rejected, "422"),
    ],
)
async def test_submit_classifies_odd_answers(
    response: httpx.Response, error: type[Exception], code: str | None
) -> None:
    adapter = _mocked(lambda request: response)
    with pytest.raises(error) as raised:
        await adapter.submit(VideoRequest(kind="text-to-video", prompt="hi"))
    assert getattr(raised.value, "code", None) == code
    if code == "429":
        assert isinstance(raised.value, Throttled) and raised.value.retry_after == 7.0
    await adapter.aclose()


async def test_submit_rejects_kinds_sora_cannot_do_without_calling() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise AssertionError("nothing should be sent")

    adapter = _mocked(handler)
    with pytest.raises(Rejected):
        await adapter.submit(VideoRequest(kind="animate-move", image_url="https://x/a.png"))
    await adapter.aclose()


async def test_concurrent_upstream_calls_are_capped() -> None:
    in_flight = peak = 0

    async def handler(request: httpx.Request) -> httpx.Response:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(0.02)
        in_flight -= 1
        return httpx.Response(200, json={"code": 200, "data": {"state": "waiting"}})

    client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    adapter = KieSoraAdapter(API_KEY, client=client, max_concurrency=3)
    await asyncio.gather(*(adapter.fetch(str(i)) for i in range(12)))
    assert peak == 3
    await adapter.aclose()
    await client.aclose()


async def test_default_render_is_as_long_as_what_is_billed(env: Env, tmp_path: Path) -> None:
    """Without a forced length the emulator renders the requested n_frames seconds."""
    env.emulator.seconds = None
    adapter = env.adapter()
    try:
        submitted = await adapter.submit(VideoRequest(kind="text-to-video", prompt="A long take"))
        await _finish(env, submitted.upstream_id)
        done = await adapter.fetch(submitted.upstream_id)
        assert done.status is UpstreamStatus.SUCCEEDED and done.result_url
        async with httpx.AsyncClient() as client:
            video = await client.get(done.result_url)
        _, _, duration = _probe(video.content, tmp_path / "long.mp4")
        assert done.billed_seconds == pytest.approx(duration, abs=0.1)
    finally:
        await adapter.aclose()
