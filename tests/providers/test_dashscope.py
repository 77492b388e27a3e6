"""The DashScope adapter against the DashScope emulator, both over real HTTP on loopback.

The input media are real files (a Pillow image, a PyAV video) served by a static file app; the
emulator fetches them as the vendor would. Time is a fake clock, so no test waits out the queue.
Response shapes the emulator never produces (gateway pages, legacy fields) are checked against
httpx's MockTransport at the end.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
import httpx
import pytest
from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from PIL import Image

from vidgate.emulators.dashscope import PREFIX, SUBMIT_PATH, DashScopeEmulator
from vidgate.emulators.render import render_animation
from vidgate.providers.base import (
    Ambiguous,
    NotSent,
    Rejected,
    TaskState,
    Throttled,
    UpstreamStatus,
    VideoRequest,
)
from vidgate.providers.dashscope import DashScopeAdapter

from ..fixtures.clock import FakeClock
from ..fixtures.loopback import closed_port_url, serve_on_loopback

KEY = "sk-test-dashscope-0123456789"
REF_SECONDS = 2.0  # DashScope's minimum reference length


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Inputs: a character image, 2 s and 1 s reference videos, a text file posing as MP4."""
    root = tmp_path_factory.mktemp("dashscope-media")
    image = Image.new("RGB", (240, 320), (30, 90, 160))
    image.paste((230, 190, 150), (80, 40, 160, 140))  # a "face"
    image.save(root / "character.png")
    render_animation(
        None,
        root / "dance.mp4",
        seconds=REF_SECONDS,
        fps=10,
        width=320,
        height=240,
        caption="reference",
    )
    render_animation(
        None, root / "short.mp4", seconds=1.0, fps=10, width=320, height=240, caption="too short"
    )
    Image.new("RGB", (100, 100)).save(root / "tiny.png")
    (root / "notes.mp4").write_text("this is not a video\n")
    for marker in ("moderation", "invalid", "throttle", "5xx", "stuck", "slow"):
        shutil.copy(root / "character.png", root / f"fault-{marker}.png")
    return root


@dataclass
class Env:
    emulator: DashScopeEmulator
    clock: FakeClock
    base: str  # the app's root
    adapter: DashScopeAdapter
    raw: httpx.AsyncClient  # straight to the emulator, for what the adapter would never send

    @property
    def api(self) -> str:
        return self.base + PREFIX

    def request(
        self, image: str = "character.png", video: str = "dance.mp4", **kw: Any
    ) -> VideoRequest:
        kw.setdefault("kind", "animate-move")
        return VideoRequest(
            image_url=f"{self.base}/media/{image}", video_url=f"{self.base}/media/{video}", **kw
        )

    async def until(self, task_id: str, status: UpstreamStatus) -> TaskState:
        """Poll (the render runs for real) until the task reaches `status`."""
        async with asyncio.timeout(20):
            while True:
                state = await self.adapter.fetch(task_id)
                if state.status is status:
                    return state
                await asyncio.sleep(0.05)


@contextlib.asynccontextmanager
async def environment(media: Path, tmp_path: Path, **options: Any) -> AsyncIterator[Env]:
    clock = FakeClock()
    options.setdefault("render_height", 120)
    emulator = DashScopeEmulator(
        api_key=KEY,
        work_dir=tmp_path / "emulator",
        public_base_url="http://placeholder",
        queue_seconds=1.0,
        run_seconds=2.0,
        clock=clock,
        **options,
    )
    app = FastAPI()
    app.include_router(emulator.router())
    app.mount("/media", StaticFiles(directory=media), name="media")
    async with serve_on_loopback(app) as base:
        emulator.public_base_url = base  # known only once the port is
        adapter = DashScopeAdapter(KEY, base + PREFIX, timeout=10)
        async with httpx.AsyncClient(base_url=base + PREFIX, timeout=10) as raw:
            try:
                yield Env(emulator, clock, base, adapter, raw)
            finally:
                await adapter.aclose()
                await emulator.aclose()


@pytest.fixture
async def env(media: Path, tmp_path: Path) -> AsyncIterator[Env]:
    async with environment(media, tmp_path) as e:
        yield e


def video_facts(path: Path) -> tuple[float, float, int, int]:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        assert stream.duration is not None and stream.time_base is not None
        assert stream.average_rate is not None
        frames = sum(1 for _ in container.decode(stream))
        return (
            float(stream.average_rate),
            float(stream.duration * stream.time_base),
            stream.codec_context.width,
            frames,
        )


# ---------------------------------------------------------------------------------------------
# States
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "mode", "fps"), [("animate-move", "wan-std", 15), ("animate-mix", "wan-pro", 25)]
)
async def test_walks_to_success_with_a_real_video(
    env: Env, tmp_path: Path, kind: Any, mode: Any, fps: int
) -> None:
    submitted = await env.adapter.submit(env.request(kind=kind, mode=mode))
    assert submitted.raw["output"]["task_status"] == "PENDING"
    task_id = submitted.upstream_id

    pending = await env.adapter.fetch(task_id)
    assert pending.status is UpstreamStatus.PENDING and pending.result_url is None
    env.clock.advance(1.5)
    running = await env.adapter.fetch(task_id)
    assert running.status is UpstreamStatus.RUNNING
    assert "scheduled_time" in running.raw["output"]
    env.clock.advance(2)
    done = await env.until(task_id, UpstreamStatus.SUCCEEDED)

    assert done.progress == 100 and done.error_code is None
    assert done.result_url is not None
    assert done.result_url.startswith(f"{env.base}{PREFIX}/results/")
    assert done.raw["usage"]["video_ratio"] == "standard"
    assert done.billed_seconds == pytest.approx(REF_SECONDS, abs=1 / fps)

    async with httpx.AsyncClient() as http:
        download = await http.get(done.result_url)
    assert download.status_code == 200
    assert download.headers["content-type"] == "video/mp4"
    out = tmp_path / "result.mp4"
    out.write_bytes(download.content)
    rate, duration, width, frames = video_facts(out)
    assert rate == fps
    assert duration == pytest.approx(done.billed_seconds, abs=0.01)
    assert frames == round(REF_SECONDS * fps)
    assert width == 160  # 4:3 reference, short side render_height=120

    sent = [r for r in env.emulator.requests if r["method"] == "POST"]
    assert sent[-1]["headers"]["x-dashscope-async"] == "enable"


async def test_moderation_failure(env: Env) -> None:
    task_id = (await env.adapter.submit(env.request("fault-moderation.png"))).upstream_id
    env.clock.advance(3.5)
    state = await env.adapter.fetch(task_id)
    assert state.status is UpstreamStatus.FAILED
    assert state.error_code == "DataInspectionFailed"
    assert state.error_message and "inappropriate" in state.error_message
    assert state.billed_seconds is None and state.result_url is None


async def test_reference_too_short_fails_in_the_task(env: Env) -> None:
    task_id = (await env.adapter.submit(env.request(video="short.mp4"))).upstream_id
    env.clock.advance(3.5)
    state = await env.adapter.fetch(task_id)
    assert state.status is UpstreamStatus.FAILED
    assert state.error_code == "InvalidParameter"


async def test_cancel_only_while_pending(env: Env) -> None:
    first = (await env.adapter.submit(env.request())).upstream_id
    assert await env.adapter.cancel(first) is True
    assert (await env.adapter.fetch(first)).status is UpstreamStatus.CANCELED
    env.clock.advance(10)
    assert (await env.adapter.fetch(first)).status is UpstreamStatus.CANCELED

    second = (await env.adapter.submit(env.request())).upstream_id
    env.clock.advance(1.5)
    assert await env.adapter.cancel(second) is False
    assert (await env.adapter.fetch(second)).status is UpstreamStatus.RUNNING
    assert await env.adapter.cancel("no-such-task") is False


async def test_stuck_task_never_finishes(env: Env) -> None:
    task_id = (await env.adapter.submit(env.request("fault-stuck.png"))).upstream_id
    env.clock.advance(3600)
    assert (await env.adapter.fetch(task_id)).status is UpstreamStatus.RUNNING


async def test_unknown_and_expired_tasks(env: Env) -> None:
    unknown = await env.adapter.fetch("00000000-0000-0000-0000-000000000000")
    assert unknown.status is UpstreamStatus.UNKNOWN
    assert unknown.upstream_id == "00000000-0000-0000-0000-000000000000"

    task_id = (await env.adapter.submit(env.request())).upstream_id
    env.clock.advance(4)
    done = await env.until(task_id, UpstreamStatus.SUCCEEDED)
    assert done.result_url is not None
    async with httpx.AsyncClient() as http:
        assert (await http.get(done.result_url)).status_code == 200
        env.clock.advance(86400)
        expired = await http.get(done.result_url)
    assert expired.status_code == 403
    assert "<Code>AccessDenied</Code>" in expired.text and "expired" in expired.text
    assert (await env.adapter.fetch(task_id)).status is UpstreamStatus.UNKNOWN


async def test_legacy_result_field(media: Path, tmp_path: Path) -> None:
    async with environment(media, tmp_path, legacy_video_url=True) as env:
        task_id = (await env.adapter.submit(env.request())).upstream_id
        env.clock.advance(4)
        done = await env.until(task_id, UpstreamStatus.SUCCEEDED)
        assert "results" not in done.raw["output"]
        assert done.result_url is not None
        assert done.result_url == done.raw["output"]["video_url"]
        async with httpx.AsyncClient() as http:
            assert (await http.get(done.result_url)).status_code == 200


# ---------------------------------------------------------------------------------------------
# Error classes
# ---------------------------------------------------------------------------------------------


async def test_not_sent_when_nothing_listens(env: Env) -> None:
    adapter = DashScopeAdapter(KEY, closed_port_url(), timeout=2)
    try:
        with pytest.raises(NotSent):
            await adapter.submit(env.request())
        with pytest.raises(NotSent):
            await adapter.fetch("x")
    finally:
        await adapter.aclose()


async def test_bad_key_is_rejected(env: Env) -> None:
    adapter = DashScopeAdapter("sk-wrong", env.api)
    try:
        with pytest.raises(Rejected) as caught:
            await adapter.submit(env.request())
        # The channel's problem, not the input's: a router may try another channel.
        assert (caught.value.code, caught.value.status) == ("channel_auth", 401)
        assert "InvalidApiKey" in str(caught.value)
        with pytest.raises(Rejected):
            await adapter.fetch("x")
    finally:
        await adapter.aclose()


@pytest.mark.parametrize(
    ("image", "video", "code"),
    [
        ("fault-invalid.png", "dance.mp4", "InvalidParameter"),
        ("character.png", "notes.mp4", "InvalidParameter.DataInspection"),
        ("missing.png", "dance.mp4", "InvalidParameter"),
        ("tiny.png", "dance.mp4", "InvalidParameter"),
    ],
)
async def test_invalid_input_is_rejected(env: Env, image: str, video: str, code: str) -> None:
    with pytest.raises(Rejected) as caught:
        await env.adapter.submit(env.request(image, video))
    assert (caught.value.code, caught.value.status) == (code, 400)


async def test_unreachable_input_is_rejected(env: Env) -> None:
    request = VideoRequest(
        kind="animate-move",
        image_url=closed_port_url() + "/a.png",
        video_url=f"{env.base}/media/dance.mp4",
    )
    with pytest.raises(Rejected) as caught:
        await env.adapter.submit(request)
    assert caught.value.code == "InvalidParameter"
    assert "can not be accessed" in str(caught.value)


async def test_throttled_with_retry_after(env: Env) -> None:
    with pytest.raises(Throttled) as caught:
        await env.adapter.submit(env.request("fault-throttle.png"))
    assert (caught.value.code, caught.value.status) == ("Throttling.RateQuota", 429)
    assert caught.value.retry_after == 1


async def test_internal_error_on_submit_is_throttled(env: Env) -> None:
    with pytest.raises(Throttled) as caught:
        await env.adapter.submit(env.request("fault-5xx.png"))
    assert (caught.value.code, caught.value.status) == ("InternalError", 500)


async def test_slow_submit_is_ambiguous(media: Path, tmp_path: Path) -> None:
    async with environment(media, tmp_path, slow_seconds=1.0) as env:
        impatient = DashScopeAdapter(KEY, env.api, timeout=0.3)
        try:
            with pytest.raises(Ambiguous):
                await impatient.submit(env.request("fault-slow.png"))
        finally:
            await impatient.aclose()
        # The task was created all the same: exactly why a blind retry would bill twice.
        created = [r for r in env.emulator.requests if r.get("task_id") and r["method"] == "POST"]
        assert len(created) == 1


def test_kinds_animate_cannot_do() -> None:
    with pytest.raises(ValueError):
        DashScopeAdapter.build_body(VideoRequest(kind="text-to-video", prompt="a cat"))
    with pytest.raises(ValueError):
        DashScopeAdapter.build_body(VideoRequest(kind="animate-mix", image_url="http://x/a.png"))
    body = DashScopeAdapter.build_body(
        VideoRequest(
            kind="animate-mix",
            image_url="https://x/a.png",
            video_url="https://x/b.mp4",
            mode="wan-pro",
            check_image=False,
            watermark=True,
        )
    )
    assert body == {
        "model": "wan2.2-animate-mix",
        "input": {
            "image_url": "https://x/a.png",
            "video_url": "https://x/b.mp4",
            "watermark": True,
        },
        "parameters": {"mode": "wan-pro", "check_image": False},
    }


# ---------------------------------------------------------------------------------------------
# The emulator refuses what DashScope refuses
# ---------------------------------------------------------------------------------------------


def _body(env: Env, **override: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": "wan2.2-animate-move",
        "input": {
            "image_url": f"{env.base}/media/character.png",
            "video_url": f"{env.base}/media/dance.mp4",
        },
        "parameters": {"mode": "wan-std"},
    }
    body.update(override)
    return {k: v for k, v in body.items() if v is not None}


AUTH = {"Authorization": f"Bearer {KEY}"}
ASYNC = {**AUTH, "X-DashScope-Async": "enable"}


async def test_requires_the_async_header(env: Env) -> None:
    answer = await env.raw.post(SUBMIT_PATH, json=_body(env), headers=AUTH)
    assert answer.status_code == 403
    error = answer.json()
    assert error["code"] == "AccessDenied"
    assert error["message"] == "current user api does not support synchronous calls"
    assert error["request_id"]


async def test_accepts_the_trailing_slash(env: Env) -> None:
    answer = await env.raw.post(SUBMIT_PATH + "/", json=_body(env), headers=ASYNC)
    assert answer.status_code == 200, answer.text
    assert answer.json()["output"]["task_status"] == "PENDING"


@pytest.mark.parametrize(
    ("override", "status", "code"),
    [
        ({"model": "wan2.2-animate-dance"}, 400, "InvalidParameter"),
        ({"model": None}, 400, "BadRequest.EmptyModel"),
        ({"input": None}, 400, "BadRequest.EmptyInput"),
        ({"parameters": None}, 400, "BadRequest.EmptyParameters"),
        ({"parameters": {"mode": "wan-max"}}, 400, "InvalidParameter"),
        (
            {"input": {"image_url": "ftp://x/a.png", "video_url": "https://x/b.mp4"}},
            400,
            "InvalidURL",
        ),
        (
            {"input": {"image_url": "https://x/a.gif", "video_url": "https://x/b.mp4"}},
            400,
            "InvalidParameter.UnsupportedFileFormat",
        ),
        ({"input": {"video_url": "https://x/b.mp4"}}, 400, "InvalidParameter"),
    ],
)
async def test_rejects_bad_bodies(
    env: Env, override: dict[str, Any], status: int, code: str
) -> None:
    answer = await env.raw.post(SUBMIT_PATH, json=_body(env, **override), headers=ASYNC)
    assert answer.status_code == status
    assert answer.json()["code"] == code


async def test_missing_key(env: Env) -> None:
    answer = await env.raw.post(
        SUBMIT_PATH, json=_body(env), headers={"X-DashScope-Async": "enable"}
    )
    assert (answer.status_code, answer.json()["code"]) == (401, "InvalidApiKey")


async def test_control_endpoint_and_request_log(env: Env) -> None:
    armed = await env.raw.post("/_control/faults", json={"next_submit": "throttle"})
    assert armed.json() == {"next_submit": "throttle", "count": 1}
    first = await env.raw.post(SUBMIT_PATH, json=_body(env), headers=ASYNC)
    second = await env.raw.post(SUBMIT_PATH, json=_body(env), headers=ASYNC)
    assert (first.status_code, second.status_code) == (429, 200)
    assert (await env.raw.post("/_control/faults", json={"next_submit": "nope"})).status_code == 422
    log = (await env.raw.get("/_control/requests")).json()["requests"]
    assert [entry["status"] for entry in log] == [429, 200]


# ---------------------------------------------------------------------------------------------
# Shapes the emulator does not produce
# ---------------------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def _mocked(handler: Any, **kw: Any) -> AsyncIterator[DashScopeAdapter]:
    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
        adapter = DashScopeAdapter(KEY, "https://dashscope.example", client=client, **kw)
        yield adapter
        await adapter.aclose()  # leaves the caller's client open
        assert not client.is_closed


REQUEST = VideoRequest(
    kind="animate-move", image_url="https://x/a.png", video_url="https://x/b.mp4"
)


async def test_legacy_video_url_and_gateway_errors() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/legacy"):
            return httpx.Response(
                200,
                json={
                    "output": {
                        "task_id": "legacy",
                        "task_status": "SUCCEEDED",
                        "video_url": "https://oss/x.mp4",
                    }
                },
            )
        if request.url.path.startswith("/api/v1/tasks/"):
            return httpx.Response(503, text="<html>busy</html>")
        return httpx.Response(502, text="<html>bad gateway</html>")

    async with _mocked(handler) as adapter:
        legacy = await adapter.fetch("legacy")
        assert legacy.result_url == "https://oss/x.mp4" and legacy.billed_seconds is None
        with pytest.raises(Throttled):
            await adapter.fetch("other")  # polling again is always safe
        with pytest.raises(Ambiguous):
            await adapter.submit(REQUEST)  # the backend may have made the task


async def test_retry_after_as_http_date_and_throttling_code() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            400,
            json={"request_id": "r", "code": "Throttling.AllocationQuota", "message": "quota"},
            headers={"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"},
        )

    async with _mocked(handler) as adapter:
        with pytest.raises(Throttled) as caught:
            await adapter.submit(REQUEST)
    assert caught.value.retry_after == 0.0  # a date in the past: retry now


async def test_concurrency_cap() -> None:
    in_flight = peak = 0

    async def handler(request: httpx.Request) -> httpx.Response:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(0.02)
        in_flight -= 1
        return httpx.Response(200, json={"output": {"task_id": "t", "task_status": "RUNNING"}})

    async with _mocked(handler, max_concurrency=2) as adapter:
        await asyncio.gather(*(adapter.fetch("t") for _ in range(8)))
    assert peak == 2


async def test_a_fault_armed_with_a_ratio_hits_that_share_of_submits(env: Env) -> None:
    armed = await env.raw.post("/_control/faults", json={"next_submit": "throttle", "ratio": 0.3})
    assert armed.json() == {"next_submit": "throttle", "count": 1, "ratio": 0.3}
    adapter = DashScopeAdapter(KEY, env.api)
    throttled = 0
    try:
        for _ in range(60):
            try:
                await adapter.submit(env.request())
            except Throttled:
                throttled += 1
    finally:
        await adapter.aclose()
        await env.raw.post("/_control/faults", json={"next_submit": None})
    assert 5 <= throttled <= 35  # about 18 of 60; never all, never none
    bad = await env.raw.post("/_control/faults", json={"next_submit": "throttle", "ratio": 2})
    assert bad.status_code == 422
