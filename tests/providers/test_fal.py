"""The fal.ai adapter against the fal emulator, both over real HTTP on loopback.

A second app plays the public internet: it serves the input media (real images and an MP4) and
receives webhooks. Time in the emulator is a fake clock the tests move by hand; renders and input
fetches run for real, so a test polls until the request is COMPLETED. Answers the emulator never
gives (gateway pages, other shapes fal documents) are checked against httpx's MockTransport.
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
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from PIL import Image
from starlette.types import Receive, Scope, Send

from vidgate.emulators.fal import PREFIX, FalEmulator
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
from vidgate.providers.fal import (
    ANIMATE_MOVE,
    ANIMATE_REPLACE,
    WAN27_I2V,
    WAN27_T2V,
    FalAdapter,
    JwksCache,
    JwksUnavailable,
    split_upstream_id,
    verify_webhook,
    webhook_state,
)

from ..fixtures.clock import FakeClock
from ..fixtures.loopback import Switch, closed_port_url, serve_on_loopback

KEY = "fal-key-id:fal-key-secret-0123456789"
QUEUE = 1.0
RUN = 3.0
SECONDS = 1.0  # forced render length, so renders stay fast


def _image(fmt: str, size: tuple[int, int]) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (200, 120, 40)).save(buffer, format=fmt)
    return buffer.getvalue()


@dataclass
class Web:
    """The app playing the public internet: input media and a webhook receiver."""

    root: Path
    hooks: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    def app(self) -> FastAPI:
        app = FastAPI()
        files = {
            "portrait.png": (_image("PNG", (180, 320)), "image/png"),
            "wide.jpg": (_image("JPEG", (320, 180)), "image/jpeg"),
            "fault-content.png": (_image("PNG", (180, 320)), "image/png"),
            "notes.png": (b"just text, not an image\n" * 10, "image/png"),
            "dance.mp4": ((self.root / "dance.mp4").read_bytes(), "video/mp4"),
        }

        @app.get("/media/{name}")
        async def media(name: str) -> Response:
            found = files.get(name)
            if found is None:
                return Response("not found", status_code=404)
            return Response(found[0], media_type=found[1])

        @app.post("/hooks/fal")
        async def hook(request: Request) -> Response:
            self.hooks.append((dict(request.headers), await request.body()))
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
async def servers(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Servers]:
    root = tmp_path_factory.mktemp("fal-media")
    render_animation(
        None, root / "dance.mp4", seconds=1.5, fps=10, width=160, height=120, caption="reference"
    )
    switch, web = Switch(), Web(root)
    async with serve_on_loopback(switch) as base, serve_on_loopback(web.app()) as web_base:
        yield Servers(switch, base, web, web_base)


@dataclass
class Env:
    emulator: FalEmulator
    clock: FakeClock
    base: str  # the emulator's queue base URL
    web: str
    hooks: list[tuple[dict[str, str], bytes]]
    arrived: asyncio.Event
    adapters: list[FalAdapter] = field(default_factory=list)

    def adapter(self, **kwargs: Any) -> FalAdapter:
        kwargs.setdefault("api_key", KEY)
        kwargs.setdefault("base_url", self.base)
        kwargs.setdefault("timeout", 10)
        adapter = FalAdapter(**kwargs)
        self.adapters.append(adapter)
        return adapter

    def media(self, name: str) -> str:
        return f"{self.web}/media/{name}"

    def sent(self) -> dict[str, Any]:
        """The body of the last submit the emulator received."""
        submits = [r for r in self.emulator.requests if r["method"] == "POST"]
        body = submits[-1]["body"]
        assert isinstance(body, dict)
        return body

    async def until(
        self, adapter: FalAdapter, upstream_id: str, status: UpstreamStatus
    ) -> TaskState:
        """Poll until the request reads as `status` (fetches and renders run for real)."""
        async with asyncio.timeout(30):
            while True:
                state = await adapter.fetch(upstream_id)
                if state.status is status:
                    return state
                await asyncio.sleep(0.05)

    async def finish(self, adapter: FalAdapter, upstream_id: str) -> TaskState:
        self.clock.advance(QUEUE + RUN + 0.1)
        async with asyncio.timeout(30):
            await self.emulator.wait_settled(split_upstream_id(upstream_id)[1])
            while True:
                try:
                    state = await adapter.fetch(upstream_id)
                except Rejected:
                    raise
                if state.status not in (UpstreamStatus.PENDING, UpstreamStatus.RUNNING):
                    return state
                await asyncio.sleep(0.05)


@pytest.fixture
async def env(servers: Servers, tmp_path: Path) -> AsyncIterator[Env]:
    clock = FakeClock()
    emulator = FalEmulator(
        api_key=KEY,
        work_dir=tmp_path,
        public_base_url=servers.base,
        queue_seconds=QUEUE,
        run_seconds=RUN,
        render_height=144,
        seconds=SECONDS,
        slow_seconds=1.0,
        clock=clock,
    )
    app = FastAPI()
    app.include_router(emulator.router())
    servers.switch.target = app
    servers.web.hooks.clear()
    servers.web.arrived.clear()
    e = Env(
        emulator,
        clock,
        servers.base + PREFIX,
        servers.web_base,
        servers.web.hooks,
        servers.web.arrived,
    )
    yield e
    for adapter in e.adapters:
        await adapter.aclose()
    await emulator.aclose()
    servers.switch.target = None


def _probe(data: bytes, path: Path) -> tuple[int, int, float]:
    path.write_bytes(data)
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264"
        assert sum(1 for _ in container.decode(stream)) > 0
        assert stream.duration is not None and stream.time_base is not None
        return stream.width, stream.height, float(stream.duration * stream.time_base)


async def _download(url: str) -> bytes:
    async with httpx.AsyncClient() as client:
        response = await client.get(url)
    assert response.status_code == 200
    assert response.headers["content-type"] == "video/mp4"
    return response.content


# ---------------------------------------------------------------------------------------------
# Every model: body, states, result
# ---------------------------------------------------------------------------------------------


async def test_text_to_video_walks_every_state_and_renders(env: Env, tmp_path: Path) -> None:
    adapter = env.adapter()
    submitted = await adapter.submit(
        VideoRequest(
            kind="text-to-video",
            prompt="A red fox in the snow",
            model=WAN27_T2V,
            extra={"enable_prompt_expansion": False},
        )
    )
    assert env.sent() == {
        "prompt": "A red fox in the snow",
        "aspect_ratio": "16:9",
        "resolution": "720p",
        "duration": 5,
        "enable_prompt_expansion": False,
    }
    submit = [r for r in env.emulator.requests if r["method"] == "POST"][-1]
    assert submit["path"] == PREFIX + "/" + WAN27_T2V
    # The URLs fal returns name the app, not the model's sub-path; the id carries the app.
    request_id = submitted.raw["request_id"]
    assert submitted.raw["status_url"] == f"{env.base}/fal-ai/wan/requests/{request_id}/status"
    assert submitted.raw["response_url"] == f"{env.base}/fal-ai/wan/requests/{request_id}"
    assert submitted.raw["cancel_url"].endswith(f"/fal-ai/wan/requests/{request_id}/cancel")
    assert submitted.upstream_id == f"fal-ai/wan:{request_id}"
    assert submitted.raw["status"] == "IN_QUEUE" and submitted.raw["queue_position"] == 0

    queued = await adapter.fetch(submitted.upstream_id)
    assert queued.status is UpstreamStatus.PENDING
    assert queued.raw["status"]["queue_position"] == 0
    env.clock.advance(QUEUE + RUN / 2)
    running = await adapter.fetch(submitted.upstream_id)
    assert running.status is UpstreamStatus.RUNNING and running.progress is None
    status_reads = [r for r in env.emulator.requests if r["path"].endswith("/status")]
    assert [r["status"] for r in status_reads] == [202, 202]

    done = await env.finish(adapter, submitted.upstream_id)
    assert done.status is UpstreamStatus.SUCCEEDED and done.progress == 100
    assert done.result_url is not None and done.result_url.startswith(env.base + "/files/")
    assert done.raw["status"]["status"] == "COMPLETED"
    assert done.raw["status"]["metrics"]["inference_time"] == pytest.approx(RUN)
    width, height, duration = _probe(await _download(done.result_url), tmp_path / "t2v.mp4")
    assert (width, height) == (256, 144)  # 16:9, H.264-even
    assert done.billed_seconds == pytest.approx(duration, abs=0.1)
    assert duration == pytest.approx(SECONDS, abs=0.1)


async def test_text_to_video_portrait_hd_with_a_duration(env: Env, tmp_path: Path) -> None:
    env.emulator.seconds = None  # render the asked length: what is billed is what was made
    adapter = env.adapter()
    submitted = await adapter.submit(
        VideoRequest(
            kind="text-to-video",
            prompt="Rain on a window",
            aspect_ratio="portrait",
            quality="hd",
            duration=2,
        )
    )
    assert env.sent() == {
        "prompt": "Rain on a window",
        "aspect_ratio": "9:16",
        "resolution": "1080p",
        "duration": 2,
    }
    done = await env.finish(adapter, submitted.upstream_id)
    assert done.status is UpstreamStatus.SUCCEEDED and done.result_url
    width, height, duration = _probe(await _download(done.result_url), tmp_path / "p.mp4")
    assert (width, height) == (144, 256)
    assert duration == pytest.approx(2.0, abs=0.1)
    assert done.billed_seconds == pytest.approx(duration, abs=0.1)


async def test_image_to_video_sends_the_first_image_and_follows_its_shape(
    env: Env, tmp_path: Path
) -> None:
    adapter = env.adapter()
    submitted = await adapter.submit(
        VideoRequest(
            kind="image-to-video",
            prompt="Slow push in",
            image_urls=(env.media("portrait.png"), env.media("wide.jpg")),
            aspect_ratio="landscape",  # i2v has no aspect field: the image decides
            quality="hd",
            duration=10,
            model=WAN27_I2V,
        )
    )
    assert env.sent() == {
        "image_url": env.media("portrait.png"),
        "resolution": "1080p",
        "duration": 10,
        "prompt": "Slow push in",
    }
    done = await env.finish(adapter, submitted.upstream_id)
    assert done.status is UpstreamStatus.SUCCEEDED and done.result_url
    width, height, _ = _probe(await _download(done.result_url), tmp_path / "i2v.mp4")
    assert width < height  # follows the portrait image
    assert done.raw["result"]["video"]["width"] == width


@pytest.mark.parametrize(
    ("kind", "model", "mode", "resolution"),
    [
        ("animate-move", ANIMATE_MOVE, "wan-std", "480p"),
        ("animate-mix", ANIMATE_REPLACE, "wan-pro", "720p"),
    ],
)
async def test_animate_maps_the_mode_to_a_resolution(
    env: Env, tmp_path: Path, kind: Any, model: str, mode: Any, resolution: str
) -> None:
    env.emulator.seconds = None  # the output follows the reference video's length
    adapter = env.adapter()
    submitted = await adapter.submit(
        VideoRequest(
            kind=kind,
            image_url=env.media("portrait.png"),
            video_url=env.media("dance.mp4"),
            mode=mode,
            prompt="ignored: animate has no prompt",
        )
    )
    assert env.sent() == {
        "video_url": env.media("dance.mp4"),
        "image_url": env.media("portrait.png"),
        "resolution": resolution,
    }
    assert [r["path"] for r in env.emulator.requests][-1] == PREFIX + "/" + model
    assert submitted.upstream_id.startswith("fal-ai/wan:")
    done = await env.finish(adapter, submitted.upstream_id)
    assert done.status is UpstreamStatus.SUCCEEDED and done.result_url
    assert set(done.raw["result"]["video"]) == {"url", "content_type", "file_name", "file_size"}
    assert done.billed_seconds is None  # animate's output carries no duration: vidgate probes
    _, _, duration = _probe(await _download(done.result_url), tmp_path / "anim.mp4")
    assert duration == pytest.approx(1.5, abs=0.15)


def test_unknown_models_get_the_common_fields_and_the_channels_extra() -> None:
    t2v = FalAdapter.build_body(
        VideoRequest(
            kind="text-to-video",
            prompt="a",
            aspect_ratio="portrait",
            duration=6,
            extra={"duration": "6", "generate_audio": False},
        ),
        "fal-ai/kling-video/v3/standard/text-to-video",
    )
    assert t2v == {
        "prompt": "a",
        "aspect_ratio": "9:16",
        "resolution": "720p",
        "duration": "6",
        "generate_audio": False,
    }
    i2v = FalAdapter.build_body(
        VideoRequest(kind="image-to-video", image_urls=("https://x/a.png",), quality="hd"),
        "bytedance/seedance-2.0/image-to-video",
    )
    assert i2v == {"image_url": "https://x/a.png", "resolution": "1080p", "duration": 5}
    animate = FalAdapter.build_body(
        VideoRequest(kind="animate-move", image_url="https://x/a.png", video_url="https://x/v.mp4"),
        "someone/animate",
    )
    assert animate == {
        "image_url": "https://x/a.png",
        "video_url": "https://x/v.mp4",
        "resolution": "480p",
    }


@pytest.mark.parametrize(
    ("request_", "model", "code"),
    [
        (VideoRequest(kind="text-to-video", prompt="a"), ANIMATE_MOVE, "channel_unsupported"),
        (VideoRequest(kind="image-to-video", prompt="a"), WAN27_T2V, "channel_unsupported"),
        (
            VideoRequest(kind="animate-move", image_url="https://x/a.png"),
            ANIMATE_MOVE,
            "invalid_input",
        ),
        (VideoRequest(kind="image-to-video", prompt="a"), WAN27_I2V, "invalid_input"),
        (VideoRequest(kind="text-to-video", prompt=""), WAN27_T2V, "invalid_input"),
        (VideoRequest(kind="text-to-video", prompt="a"), "no-slash", "channel_unavailable"),
        (VideoRequest(kind="text-to-video", prompt="a"), "../../admin", "channel_unavailable"),
    ],
)
async def test_requests_the_model_cannot_take_are_rejected_without_a_call(
    request_: VideoRequest, model: str, code: str
) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise AssertionError("nothing should be sent")

    adapter = _mocked(handler)
    with pytest.raises(Rejected) as error:
        await adapter.submit(VideoRequest(**{**request_.__dict__, "model": model}))
    assert error.value.code == code
    await adapter.aclose()


# ---------------------------------------------------------------------------------------------
# Failed requests: the result URL's errors
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("request_", "code", "field"),
    [
        (VideoRequest(kind="text-to-video", prompt="x" * 5001), "string_too_long", "prompt"),
        (
            VideoRequest(kind="text-to-video", prompt="a", extra={"duration": 20}),
            "less_than_equal",
            "duration",
        ),
        (
            VideoRequest(kind="text-to-video", prompt="a", extra={"aspect_ratio": "21:9"}),
            "literal_error",
            "aspect_ratio",
        ),
        (
            VideoRequest(
                kind="animate-move",
                image_url="https://x/a.png",
                video_url="x",
                extra={"resolution": "1080p"},
            ),
            "url_parsing",
            "video_url",
        ),
    ],
)
async def test_bad_input_completes_with_a_422_and_is_rejected(
    env: Env, request_: VideoRequest, code: str, field: str
) -> None:
    adapter = env.adapter()
    # fal's queue takes any JSON: the model refuses the input when it runs.
    submitted = await adapter.submit(request_)
    env.clock.advance(QUEUE + 0.01)
    with pytest.raises(Rejected) as error:
        await adapter.fetch(submitted.upstream_id)
    assert error.value.code == code and error.value.status == 422
    assert field in str(error.value)
    assert not error.value.code.startswith("channel_")


async def test_content_policy_is_rejected(env: Env) -> None:
    adapter = env.adapter()
    submitted = await adapter.submit(
        VideoRequest(kind="text-to-video", prompt="something fault-content")
    )
    env.clock.advance(QUEUE + 0.1)
    assert (await adapter.fetch(submitted.upstream_id)).status is UpstreamStatus.RUNNING
    env.clock.advance(RUN)
    with pytest.raises(Rejected) as error:
        await adapter.fetch(submitted.upstream_id)
    assert (error.value.code, error.value.status) == ("content_policy_violation", 422)


async def test_content_policy_on_an_image_is_rejected(env: Env) -> None:
    adapter = env.adapter()
    submitted = await adapter.submit(
        VideoRequest(kind="image-to-video", image_urls=(env.media("fault-content.png"),))
    )
    env.clock.advance(QUEUE + RUN + 0.1)
    with pytest.raises(Rejected) as error:
        await adapter.fetch(submitted.upstream_id)
    assert error.value.code == "content_policy_violation"
    assert "image_url" in str(error.value)


@pytest.mark.parametrize(
    ("name", "code"),
    [("missing.png", "file_download_error"), ("notes.png", "image_load_error")],
)
async def test_inputs_the_runner_cannot_read_are_rejected(env: Env, name: str, code: str) -> None:
    adapter = env.adapter()
    submitted = await adapter.submit(
        VideoRequest(kind="image-to-video", image_urls=(env.media(name),))
    )
    with pytest.raises(Rejected) as error:
        await env.finish(adapter, submitted.upstream_id)
    assert error.value.code == code


async def test_an_infrastructure_failure_is_a_failed_task_with_a_retryable_code(env: Env) -> None:
    adapter = env.adapter()
    env.emulator.arm("runner_error")
    submitted = await adapter.submit(VideoRequest(kind="text-to-video", prompt="a"))
    failed = await env.finish(adapter, submitted.upstream_id)
    assert failed.status is UpstreamStatus.FAILED
    assert failed.error_code == "retryable:runner_scheduling_failure"
    assert failed.error_message is not None and "runner" in failed.error_message
    assert failed.result_url is None


async def test_a_stuck_request_stays_running(env: Env) -> None:
    adapter = env.adapter(webhook_url=env.web + "/hooks/fal")
    submitted = await adapter.submit(VideoRequest(kind="text-to-video", prompt="fault-stuck"))
    env.clock.advance(100 * (QUEUE + RUN))
    assert (await adapter.fetch(submitted.upstream_id)).status is UpstreamStatus.RUNNING
    await asyncio.sleep(0.2)
    assert env.hooks == []


# ---------------------------------------------------------------------------------------------
# Submit and read errors → exception classes
# ---------------------------------------------------------------------------------------------


async def test_bad_key_is_a_channel_auth_rejection(env: Env) -> None:
    adapter = env.adapter(api_key="wrong")
    with pytest.raises(Rejected) as submit_error:
        await adapter.submit(VideoRequest(kind="text-to-video", prompt="a"))
    assert (submit_error.value.code, submit_error.value.status) == ("channel_auth", 401)
    good = env.adapter()
    submitted = await good.submit(VideoRequest(kind="text-to-video", prompt="a"))
    with pytest.raises(Rejected) as fetch_error:
        await adapter.fetch(submitted.upstream_id)
    assert fetch_error.value.code == "channel_auth"
    with pytest.raises(Rejected):
        await adapter.cancel(submitted.upstream_id)


@pytest.mark.parametrize(
    ("fault", "error", "code", "status"),
    [
        ("unauthorized", Rejected, "channel_auth", 401),
        ("credits", Rejected, "channel_credits", 403),
        ("throttle", Throttled, "429", 429),
        ("server_error", Throttled, "internal_error", 500),
    ],
)
async def test_submit_faults_are_classified(
    env: Env, fault: Any, error: type[Exception], code: str, status: int
) -> None:
    adapter = env.adapter()
    async with httpx.AsyncClient() as client:
        armed = await client.post(env.base + "/_control/faults", json={"next_submit": fault})
        assert armed.status_code == 200 and armed.json()["next_submit"] == fault
    with pytest.raises(error) as raised:
        await adapter.submit(VideoRequest(kind="text-to-video", prompt="a"))
    assert isinstance(raised.value, Rejected | Throttled)
    assert (raised.value.code, raised.value.status) == (code, status)
    if fault == "throttle":
        assert isinstance(raised.value, Throttled) and raised.value.retry_after == 1.0
    assert env.emulator.request_ids() == []  # nothing was queued
    # Armed for one submit only.
    await adapter.submit(VideoRequest(kind="text-to-video", prompt="a"))


async def test_unknown_model_is_a_channel_rejection(env: Env) -> None:
    adapter = env.adapter()
    with pytest.raises(Rejected) as error:
        await adapter.submit(
            VideoRequest(kind="text-to-video", prompt="a", model="fal-ai/wan/v9/text-to-video")
        )
    assert (error.value.code, error.value.status) == ("channel_unavailable", 404)


async def test_closed_port_is_not_sent() -> None:
    adapter = FalAdapter(KEY, closed_port_url(), timeout=2)
    try:
        with pytest.raises(NotSent):
            await adapter.submit(VideoRequest(kind="text-to-video", prompt="a"))
        with pytest.raises(NotSent):
            await adapter.fetch("fal-ai/wan:0f8a6c1e-1111-4222-8333-444455556666")
    finally:
        await adapter.aclose()


async def test_slow_submit_is_ambiguous_and_the_request_exists(env: Env) -> None:
    adapter = env.adapter(timeout=0.3)
    with pytest.raises(Ambiguous):
        await adapter.submit(VideoRequest(kind="text-to-video", prompt="take your time fault-slow"))
    assert len(env.emulator.request_ids()) == 1


async def test_unknown_and_malformed_ids_are_unknown(env: Env) -> None:
    adapter = env.adapter()
    missing = await adapter.fetch("fal-ai/wan:0f8a6c1e-1111-4222-8333-444455556666")
    assert missing.status is UpstreamStatus.UNKNOWN
    for bad in ("no-colon", "fal-ai:abc", "fal-ai/../x:abc", "fal-ai/wan:a/b"):
        assert (await adapter.fetch(bad)).status is UpstreamStatus.UNKNOWN
        assert await adapter.cancel(bad) is False


async def test_read_timeouts_are_throttled_and_submit_timeouts_ambiguous() -> None:
    release = asyncio.Event()

    async def hang(scope: Scope, receive: Receive, send: Send) -> None:
        await release.wait()
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    async with serve_on_loopback(hang) as base:
        adapter = FalAdapter(KEY, base, timeout=0.2)
        try:
            with pytest.raises(Throttled):
                await adapter.fetch("fal-ai/wan:abc")
            with pytest.raises(Throttled):
                await adapter.cancel("fal-ai/wan:abc")
            with pytest.raises(Ambiguous):
                await adapter.submit(VideoRequest(kind="text-to-video", prompt="a"))
        finally:
            release.set()
            await adapter.aclose()


# ---------------------------------------------------------------------------------------------
# Cancel
# ---------------------------------------------------------------------------------------------


async def test_cancel_a_queued_request(env: Env) -> None:
    adapter = env.adapter()
    submitted = await adapter.submit(VideoRequest(kind="text-to-video", prompt="a"))
    assert await adapter.cancel(submitted.upstream_id) is True
    put = [r for r in env.emulator.requests if r["method"] == "PUT"][-1]
    assert put["path"].endswith("/fal-ai/wan/requests/" + submitted.raw["request_id"] + "/cancel")
    assert put["answer"] == "CANCELLATION_REQUESTED"
    state = await adapter.fetch(submitted.upstream_id)
    assert (state.status, state.error_code) == (UpstreamStatus.CANCELED, "client_cancelled")
    # A second cancel hears that it is over.
    assert await adapter.cancel(submitted.upstream_id) is False
    assert env.emulator.requests[-1]["answer"] == "ALREADY_COMPLETED"


async def test_cancel_a_running_request_that_stops(env: Env) -> None:
    adapter = env.adapter()
    submitted = await adapter.submit(VideoRequest(kind="text-to-video", prompt="a"))
    env.clock.advance(QUEUE + 0.5)
    assert (await adapter.fetch(submitted.upstream_id)).status is UpstreamStatus.RUNNING
    assert await adapter.cancel(submitted.upstream_id) is True
    assert (await adapter.fetch(submitted.upstream_id)).status is UpstreamStatus.CANCELED


async def test_cancel_a_running_request_whose_runner_ignores_it(env: Env) -> None:
    adapter = env.adapter()
    submitted = await adapter.submit(VideoRequest(kind="text-to-video", prompt="go fault-nocancel"))
    env.clock.advance(QUEUE + 0.5)
    # Only a signal: the request runs on, and bills, so the cancel did not happen.
    assert await adapter.cancel(submitted.upstream_id) is False
    done = await env.finish(adapter, submitted.upstream_id)
    assert done.status is UpstreamStatus.SUCCEEDED


async def test_cancel_after_completion_and_of_an_unknown_request(env: Env) -> None:
    adapter = env.adapter()
    submitted = await adapter.submit(VideoRequest(kind="text-to-video", prompt="a"))
    assert (await env.finish(adapter, submitted.upstream_id)).status is UpstreamStatus.SUCCEEDED
    assert await adapter.cancel(submitted.upstream_id) is False
    assert env.emulator.requests[-1]["answer"] == "ALREADY_COMPLETED"
    assert await adapter.cancel("fal-ai/wan:0f8a6c1e-1111-4222-8333-444455556666") is False
    assert env.emulator.requests[-1]["status"] == 404


# ---------------------------------------------------------------------------------------------
# The account's concurrency cap
# ---------------------------------------------------------------------------------------------


async def test_requests_over_the_concurrency_cap_wait_in_the_queue(env: Env) -> None:
    adapter = env.adapter()
    ids = [
        (await adapter.submit(VideoRequest(kind="text-to-video", prompt=f"n{i}"))).upstream_id
        for i in range(4)
    ]
    positions = [(await adapter.fetch(i)).raw["status"]["queue_position"] for i in ids]
    assert positions == [0, 1, 2, 3]

    env.clock.advance(QUEUE + 0.1)
    states = [await adapter.fetch(i) for i in ids]
    assert [s.status for s in states] == [
        UpstreamStatus.RUNNING,
        UpstreamStatus.RUNNING,
        UpstreamStatus.PENDING,
        UpstreamStatus.PENDING,
    ]
    assert [s.raw["status"].get("queue_position") for s in states[2:]] == [0, 1]

    env.clock.advance(RUN)  # the first two end; the next two take their slots
    async with asyncio.timeout(30):
        for i in ids[:2]:
            await env.emulator.wait_settled(split_upstream_id(i)[1])
    states = [await adapter.fetch(i) for i in ids]
    assert [s.status for s in states] == [
        UpstreamStatus.SUCCEEDED,
        UpstreamStatus.SUCCEEDED,
        UpstreamStatus.RUNNING,
        UpstreamStatus.RUNNING,
    ]
    # They started when the slots freed, not when they were submitted.
    env.clock.advance(RUN - 0.2)
    assert (await adapter.fetch(ids[2])).status is UpstreamStatus.RUNNING


async def test_the_cap_is_set_through_the_control_endpoint(env: Env) -> None:
    adapter = env.adapter()
    async with httpx.AsyncClient() as client:
        bad = await client.post(env.base + "/_control/faults", json={"concurrency": 0})
        assert bad.status_code == 422
        ok = await client.post(env.base + "/_control/faults", json={"concurrency": 1})
        assert ok.json()["concurrency"] == 1
    ids = [
        (await adapter.submit(VideoRequest(kind="text-to-video", prompt=f"n{i}"))).upstream_id
        for i in range(2)
    ]
    env.clock.advance(QUEUE + 0.1)
    assert [(await adapter.fetch(i)).status for i in ids] == [
        UpstreamStatus.RUNNING,
        UpstreamStatus.PENDING,
    ]
    # A cancel frees the slot at once.
    assert await adapter.cancel(ids[0]) is True
    assert (await adapter.fetch(ids[1])).status is UpstreamStatus.RUNNING


# ---------------------------------------------------------------------------------------------
# Webhooks
# ---------------------------------------------------------------------------------------------


async def _hooks(env: Env, count: int) -> list[tuple[dict[str, str], bytes]]:
    async with asyncio.timeout(30):
        while len(env.hooks) < count:
            await env.arrived.wait()
            env.arrived.clear()
    await asyncio.sleep(0.2)  # long enough for a duplicate to show up if there were one
    assert len(env.hooks) == count
    return env.hooks


async def test_signed_webhook_verifies_and_reads_as_the_task_state(env: Env) -> None:
    adapter = env.adapter(webhook_url=env.web + "/hooks/fal")
    submitted = await adapter.submit(VideoRequest(kind="text-to-video", prompt="hooked"))
    submit = [r for r in env.emulator.requests if r["method"] == "POST"][-1]
    assert submit["query"] == {"fal_webhook": env.web + "/hooks/fal"}
    polled = await env.finish(adapter, submitted.upstream_id)
    [(headers, body)] = await _hooks(env, 1)

    async with httpx.AsyncClient() as client:
        cache = JwksCache(client, env.emulator.jwks_url)
        event = await cache.verify(headers, body)
    assert event is not None and event["status"] == "OK"
    assert event["request_id"] == submitted.raw["request_id"]
    state = webhook_state(event, upstream_id=submitted.upstream_id)
    assert state is not None and state.status is UpstreamStatus.SUCCEEDED
    assert state.upstream_id == submitted.upstream_id
    assert (state.result_url, state.billed_seconds) == (polled.result_url, polled.billed_seconds)


async def test_webhook_verification_refuses_tampering_wrong_keys_and_stale_stamps(
    env: Env,
) -> None:
    adapter = env.adapter(webhook_url=env.web + "/hooks/fal")
    submitted = await adapter.submit(VideoRequest(kind="text-to-video", prompt="hooked"))
    await env.finish(adapter, submitted.upstream_id)
    [(headers, body)] = await _hooks(env, 1)
    keys = env.emulator.jwks["keys"]
    now = float(headers["x-fal-webhook-timestamp"])

    assert verify_webhook(headers, body, keys, now=now) is not None
    # Header names are case-insensitive.
    upper = {k.upper(): v for k, v in headers.items()}
    assert verify_webhook(upper, body, keys, now=now) is not None
    # A changed body, a changed header, or a missing one.
    assert verify_webhook(headers, body.replace(b'"OK"', b'"ERROR"'), keys, now=now) is None
    assert verify_webhook(headers, body + b" ", keys, now=now) is None
    for name in ("x-fal-webhook-request-id", "x-fal-webhook-user-id", "x-fal-webhook-timestamp"):
        changed = {**headers, name: headers[name] + "0"}
        assert verify_webhook(changed, body, keys, now=now) is None
        missing = {k: v for k, v in headers.items() if k != name}
        assert verify_webhook(missing, body, keys, now=now) is None
    assert verify_webhook({**headers, "x-fal-webhook-signature": "zz"}, body, keys, now=now) is None
    # Another key set (fal's, or an attacker's) does not accept the emulator's signature.
    other = FalEmulator(
        api_key=KEY,
        work_dir=Path("."),
        public_base_url="http://x",
        signing_key=Ed25519PrivateKey.generate(),
    )
    assert verify_webhook(headers, body, other.jwks["keys"], now=now) is None
    assert verify_webhook(headers, body, other.jwks["keys"] + keys, now=now) is not None
    assert verify_webhook(headers, body, [], now=now) is None
    assert (
        verify_webhook(headers, body, [{"kty": "RSA", "n": "x"}, {"kty": "OKP"}], now=now) is None
    )
    # ±300 s around the signed timestamp, and no more.
    assert verify_webhook(headers, body, keys, now=now + 300) is not None
    assert verify_webhook(headers, body, keys, now=now - 300) is not None
    assert verify_webhook(headers, body, keys, now=now + 301) is None
    assert verify_webhook(headers, body, keys, now=now - 301) is None
    assert verify_webhook(headers, body, keys, now=now + 1000, tolerance=2000) is not None
    # A body signed for one request cannot be replayed as another's.
    forged = json.dumps({**json.loads(body), "request_id": "someone-else"}).encode()
    signed = env.emulator.sign(headers["x-fal-webhook-request-id"], forged)
    assert (
        verify_webhook(signed, forged, keys, now=float(signed["X-Fal-Webhook-Timestamp"])) is None
    )


async def test_error_webhooks_carry_the_failure(env: Env) -> None:
    adapter = env.adapter(webhook_url=env.web + "/hooks/fal")
    policy = await adapter.submit(VideoRequest(kind="text-to-video", prompt="fault-content"))
    env.emulator.arm("runner_error")
    outage = await adapter.submit(VideoRequest(kind="text-to-video", prompt="b"))
    canceled = await adapter.submit(VideoRequest(kind="text-to-video", prompt="c"))
    assert await adapter.cancel(canceled.upstream_id) is True
    env.clock.advance(2 * (QUEUE + RUN) + 0.1)
    hooks = await _hooks(env, 3)
    keys = env.emulator.jwks["keys"]
    states: dict[str, TaskState] = {}
    for headers, body in hooks:
        event = verify_webhook(headers, body, keys, now=float(headers["x-fal-webhook-timestamp"]))
        assert event is not None and event["status"] == "ERROR"
        state = webhook_state(event)
        assert state is not None
        states[state.upstream_id] = state
    assert states[policy.raw["request_id"]].status is UpstreamStatus.FAILED
    assert states[policy.raw["request_id"]].error_code == "content_policy_violation"
    assert states[outage.raw["request_id"]].error_code == "retryable:runner_scheduling_failure"
    assert states[canceled.raw["request_id"]].status is UpstreamStatus.CANCELED


async def test_jwks_cache_fetches_once_a_day_and_on_unknown_signatures(env: Env) -> None:
    clock = FakeClock()
    fetched: list[int] = []
    keys = env.emulator.jwks
    rotated = FalEmulator(api_key=KEY, work_dir=Path("."), public_base_url="http://x")

    def handler(request: httpx.Request) -> httpx.Response:
        fetched.append(1)
        return httpx.Response(200, json=keys if len(fetched) == 1 else rotated.jwks)

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
        cache = JwksCache(client, "https://jwks.test/keys", max_age=7 * 86400, clock=clock)
        body = json.dumps({"request_id": "r1", "status": "OK", "payload": {}}).encode()
        signed = env.emulator.sign("r1", body)
        now = float(signed["X-Fal-Webhook-Timestamp"])
        assert await cache.verify(signed, body, now=now) is not None
        assert await cache.verify(signed, body, now=now) is not None
        assert len(fetched) == 1
        clock.advance(86400)  # a week was asked for; a day is the most it keeps
        await cache.keys()
        assert len(fetched) == 2
        # A signature of a key no longer listed: one refresh at most per minute, then no.
        assert await cache.verify(signed, body, now=now) is None
        assert len(fetched) == 2
        clock.advance(61)
        assert await cache.verify(signed, body, now=now) is None
        assert len(fetched) == 3
        theirs = rotated.sign("r1", body)
        assert await cache.verify(theirs, body, now=now) is not None


async def test_jwks_cache_reports_an_unreachable_key_set() -> None:
    async with httpx.AsyncClient() as client:
        cache = JwksCache(client, closed_port_url() + "/jwks.json")
        with pytest.raises(JwksUnavailable):
            await cache.keys()


def test_webhook_state_reads_every_shape() -> None:
    ok = {"request_id": "r1", "status": "OK", "payload": {"video": {"url": "https://v/x.mp4"}}}
    state = webhook_state(ok, upstream_id="fal-ai/wan:r1")
    assert state is not None and (state.status, state.result_url, state.billed_seconds) == (
        UpstreamStatus.SUCCEEDED,
        "https://v/x.mp4",
        None,
    )
    with pytest.raises(ValueError):
        webhook_state(ok, upstream_id="fal-ai/wan:r2")
    # fal could not serialise the payload: the result URL has it, so poll.
    assert webhook_state({"request_id": "r1", "status": "OK", "payload": None}) is None
    assert webhook_state({"status": "OK"}) is None
    no_video = webhook_state({"request_id": "r1", "status": "OK", "payload": {"seed": 1}})
    assert no_video is not None and no_video.error_code == "no_result"
    invalid = webhook_state(
        {
            "request_id": "r1",
            "status": "ERROR",
            "error": "Invalid status code: 422",
            "payload": {
                "detail": [{"loc": ["body", "prompt"], "msg": "required", "type": "missing"}]
            },
        }
    )
    assert invalid is not None and (invalid.status, invalid.error_code) == (
        UpstreamStatus.FAILED,
        "missing",
    )
    timeout = webhook_state(
        {
            "request_id": "r1",
            "status": "ERROR",
            "error": "Invalid status code: 504",
            "payload": {"detail": "Request timed out", "error_type": "request_timeout"},
        }
    )
    assert timeout is not None and timeout.error_code == "retryable:request_timeout"
    # An error with nothing to read settles nothing.
    assert webhook_state({"request_id": "r1", "status": "ERROR", "payload": None}) is None


# ---------------------------------------------------------------------------------------------
# The emulator answers what fal answers
# ---------------------------------------------------------------------------------------------


async def test_emulator_status_logs_result_and_jwks(env: Env) -> None:
    auth = {"Authorization": f"Key {KEY}"}
    async with httpx.AsyncClient(headers=auth) as client:
        for headers in ({"Authorization": ""}, {"Authorization": f"Bearer {KEY}"}):
            denied = await client.post(
                env.base + "/" + WAN27_T2V, json={"prompt": "a"}, headers=headers
            )
            assert denied.status_code == 401
            assert denied.json() == {"detail": "No user found for Key ID and Secret"}
        hook = await client.post(
            env.base + "/" + WAN27_T2V, params={"fal_webhook": "ftp://x"}, json={"prompt": "a"}
        )
        assert hook.status_code == 400
        submitted = (await client.post(env.base + "/" + WAN27_T2V, json={"prompt": "a"})).json()
        early = await client.get(submitted["response_url"])
        assert early.status_code == 400
        env.clock.advance(QUEUE + RUN / 2)
        status = await client.get(submitted["status_url"], params={"logs": "1"})
        assert status.status_code == 202
        view = status.json()
        assert view["status"] == "IN_PROGRESS" and "queue_position" not in view
        assert [line["message"] for line in view["logs"][:2]] == [
            "Loading model weights",
            f"Generating video with {WAN27_T2V}",
        ]
        assert all({"message", "level", "timestamp"} <= set(line) for line in view["logs"])
        quiet = await client.get(submitted["status_url"])
        assert quiet.json()["logs"] is None
        # Another app's path does not find the request.
        other = submitted["status_url"].replace("/fal-ai/wan/", "/fal-ai/kling-video/")
        assert (await client.get(other)).status_code == 404

        jwks = (await client.get(env.emulator.jwks_url)).json()
        [key] = jwks["keys"]
        assert (key["kty"], key["crv"]) == ("OKP", "Ed25519") and len(key["x"]) == 43

        bad = await client.post(env.base + "/_control/faults", json={"next_submit": "nope"})
        assert bad.status_code == 422
        log = (await client.get(env.base + "/_control/requests")).json()["requests"]
        assert [entry["status"] for entry in log[:4]] == [401, 401, 400, 200]


# ---------------------------------------------------------------------------------------------
# Answers the emulator never gives, through a mock transport
# ---------------------------------------------------------------------------------------------


def _mocked(handler: Callable[[httpx.Request], httpx.Response], **kwargs: Any) -> FalAdapter:
    client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    return FalAdapter(KEY, "https://queue.fal.test", client=client, **kwargs)


@pytest.mark.parametrize(
    ("response", "error", "code"),
    [
        # A gateway's own page may hide a queued request: never sent again.
        (httpx.Response(502, text="<html>nginx</html>"), Ambiguous, "502"),
        (httpx.Response(504, text="<html>nginx</html>"), Ambiguous, "504"),
        (
            httpx.Response(502, json={"detail": "x", "error_type": "runner_error"}),
            Throttled,
            "runner_error",
        ),
        (httpx.Response(503, text="<html>nginx</html>"), Throttled, "503"),
        (
            httpx.Response(503, json={"detail": "x", "error_type": "runner_scheduling_failure"}),
            Throttled,
            "runner_scheduling_failure",
        ),
        (httpx.Response(408, text="timeout"), Throttled, "408"),
        (httpx.Response(200, text="<html>?</html>"), Ambiguous, None),
        (httpx.Response(200, json={"status": "IN_QUEUE"}), Ambiguous, None),
        (
            httpx.Response(403, json={"detail": "User is locked. Reason: Admin lock."}),
            Rejected,
            "channel_unavailable",
        ),
        (httpx.Response(403, json={"detail": "Forbidden"}), Rejected, "channel_auth"),
        (httpx.Response(402, json={"detail": "Payment required"}), Rejected, "channel_credits"),
        (
            httpx.Response(
                422,
                json={
                    "detail": [
                        {"loc": ["body", "prompt"], "msg": "m", "type": "content_policy_violation"}
                    ]
                },
            ),
            Rejected,
            "content_policy_violation",
        ),
        (
            httpx.Response(400, json={"detail": "bad timeout header", "error_type": "bad_request"}),
            Rejected,
            "channel_bad_request",
        ),
        (httpx.Response(400, json={"detail": "nope"}), Rejected, "invalid_input"),
    ],
)
async def test_submit_classifies_odd_answers(
    response: httpx.Response, error: type[Exception], code: str | None
) -> None:
    adapter = _mocked(lambda request: response)
    with pytest.raises(error) as raised:
        await adapter.submit(VideoRequest(kind="text-to-video", prompt="hi"))
    assert getattr(raised.value, "code", None) == code
    await adapter.aclose()


async def test_submit_without_urls_names_the_app_from_the_model() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"request_id": "abc-123", "gateway_request_id": "abc-123"})

    adapter = _mocked(handler, webhook_url="https://vidgate.test/hooks/fal?x=1")
    plain = await adapter.submit(VideoRequest(kind="text-to-video", prompt="a"))
    assert plain.upstream_id == "fal-ai/wan:abc-123"
    spaced = await adapter.submit(
        VideoRequest(kind="text-to-video", prompt="a", model="workflows/me/flow/run")
    )
    assert spaced.upstream_id == "workflows/me/flow:abc-123"
    assert seen[0].headers["authorization"] == f"Key {KEY}"
    assert seen[0].url.params["fal_webhook"] == "https://vidgate.test/hooks/fal?x=1"
    assert str(seen[1].url).startswith("https://queue.fal.test/workflows/me/flow/run?")
    await adapter.aclose()


async def test_submit_reads_the_app_from_a_returned_url_on_another_path() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            200,
            json={
                "request_id": "r-1",
                "status_url": "https://queue.fal.test/fal-ai/kling-video/requests/r-1/status",
                "response_url": "https://queue.fal.test/fal-ai/kling-video/requests/r-1",
            },
        )

    adapter = _mocked(handler)
    submitted = await adapter.submit(
        VideoRequest(
            kind="text-to-video", prompt="a", model="fal-ai/kling-video/v3/pro/text-to-video"
        )
    )
    assert submitted.upstream_id == "fal-ai/kling-video:r-1"
    await adapter.aclose()


def _queue(status: httpx.Response, result: httpx.Response | None = None) -> FalAdapter:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/status"):
            return status
        assert result is not None, "the result URL should not be read"
        assert request.url.path == "/fal-ai/wan/requests/r-1"
        return result

    return _mocked(handler)


@pytest.mark.parametrize(
    ("status", "result", "expected", "code"),
    [
        (
            httpx.Response(200, json={"status": "COMPLETED"}),
            httpx.Response(499, json={"detail": "Request cancelled by the client."}),
            UpstreamStatus.CANCELED,
            "client_cancelled",
        ),
        (
            httpx.Response(200, json={"status": "COMPLETED"}),
            httpx.Response(
                500,
                json={"detail": [{"loc": ["body"], "msg": "x", "type": "generation_timeout"}]},
                headers={"X-Fal-Retryable": "true"},
            ),
            UpstreamStatus.FAILED,
            "retryable:generation_timeout",
        ),
        (
            httpx.Response(200, json={"status": "COMPLETED"}),
            httpx.Response(
                504,
                json={"detail": "Request timed out"},
                headers={"X-Fal-Error-Type": "request_timeout"},
            ),
            UpstreamStatus.FAILED,
            "retryable:request_timeout",
        ),
        (
            httpx.Response(200, json={"status": "COMPLETED"}),
            httpx.Response(500, json={"detail": "Internal Server Error"}),
            UpstreamStatus.FAILED,
            "retryable:http_500",
        ),
        (
            httpx.Response(200, json={"status": "COMPLETED"}),
            httpx.Response(404, json={"detail": "Not found"}),
            UpstreamStatus.UNKNOWN,
            None,
        ),
        (
            httpx.Response(200, json={"status": "COMPLETED"}),
            httpx.Response(200, json={"video": {"url": "https://v/x.mp4", "duration": 5.04}}),
            UpstreamStatus.SUCCEEDED,
            None,
        ),
        (
            httpx.Response(200, json={"status": "COMPLETED"}),
            httpx.Response(200, json={"images": []}),
            UpstreamStatus.FAILED,
            "no_result",
        ),
        (
            httpx.Response(200, json={"status": "FAILED"}),
            httpx.Response(
                422,
                json={"detail": [{"loc": ["body", "x"], "msg": "x", "type": "other"}]},
                headers={"X-Fal-Retryable": "true"},
            ),
            UpstreamStatus.FAILED,
            "retryable:other",
        ),
        (httpx.Response(200, json={"status": "CANCELLED"}), None, UpstreamStatus.CANCELED, None),
        (
            httpx.Response(404, json={"detail": "Request not found"}),
            None,
            UpstreamStatus.UNKNOWN,
            None,
        ),
    ],
)
async def test_fetch_reads_every_result_shape(
    status: httpx.Response,
    result: httpx.Response | None,
    expected: UpstreamStatus,
    code: str | None,
) -> None:
    adapter = _queue(status, result)
    state = await adapter.fetch("fal-ai/wan:r-1")
    assert (state.status, state.error_code) == (expected, code)
    if expected is UpstreamStatus.SUCCEEDED:
        assert (state.result_url, state.billed_seconds) == ("https://v/x.mp4", 5.04)
    await adapter.aclose()


@pytest.mark.parametrize(
    ("status", "result", "error", "code"),
    [
        (httpx.Response(200, json={"status": "SOMETHING_NEW"}), None, Throttled, None),
        (httpx.Response(200, text="<html>"), None, Throttled, None),
        (httpx.Response(503, text="<html>"), None, Throttled, "503"),
        (
            httpx.Response(429, json={"detail": "slow"}, headers={"Retry-After": "3"}),
            None,
            Throttled,
            "429",
        ),
        (
            httpx.Response(200, json={"status": "COMPLETED"}),
            httpx.Response(502, text="<html>bad gateway</html>"),
            Throttled,
            "502",
        ),
        (
            httpx.Response(200, json={"status": "COMPLETED"}),
            httpx.Response(
                422,
                json={
                    "detail": [
                        {
                            "loc": ["body", "image_url"],
                            "msg": "m",
                            "type": "content_policy_violation",
                        }
                    ]
                },
                headers={"X-Fal-Retryable": "true"},
            ),
            Rejected,
            "content_policy_violation",
        ),
        (
            httpx.Response(200, json={"status": "COMPLETED"}),
            httpx.Response(400, json={"detail": "bad header", "error_type": "bad_request"}),
            Rejected,
            "channel_bad_request",
        ),
    ],
)
async def test_fetch_classifies_odd_answers(
    status: httpx.Response,
    result: httpx.Response | None,
    error: type[Exception],
    code: str | None,
) -> None:
    adapter = _queue(status, result)
    with pytest.raises(error) as raised:
        await adapter.fetch("fal-ai/wan:r-1")
    assert getattr(raised.value, "code", None) == code
    if code == "429":
        assert isinstance(raised.value, Throttled) and raised.value.retry_after == 3.0
    await adapter.aclose()


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        (httpx.Response(200, json={"status": "OK"}), True),
        (httpx.Response(400, json={"status": "ALREADY_COMPLETED"}), False),
        (httpx.Response(404, json={"status": "NOT_FOUND"}), False),
        (httpx.Response(404, text="not found"), False),
    ],
)
async def test_cancel_answers(answer: httpx.Response, expected: bool) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "PUT":
            assert request.url.path == "/fal-ai/wan/requests/r-1/cancel"
            return answer
        if request.url.path.endswith("/status"):
            return httpx.Response(200, json={"status": "COMPLETED"})
        return httpx.Response(499, json={"detail": "Request cancelled by the client."})

    adapter = _mocked(handler)
    assert await adapter.cancel("fal-ai/wan:r-1") is expected
    await adapter.aclose()


async def test_cancel_outage_is_throttled() -> None:
    adapter = _mocked(lambda request: httpx.Response(503, text="<html>"))
    with pytest.raises(Throttled):
        await adapter.cancel("fal-ai/wan:r-1")
    await adapter.aclose()


async def test_concurrent_upstream_calls_are_capped() -> None:
    in_flight = peak = 0

    async def handler(request: httpx.Request) -> httpx.Response:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(0.02)
        in_flight -= 1
        return httpx.Response(202, json={"status": "IN_QUEUE", "queue_position": 0})

    client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    adapter = FalAdapter(KEY, client=client, max_concurrency=3)
    await asyncio.gather(*(adapter.fetch(f"fal-ai/wan:r-{i}") for i in range(12)))
    assert peak == 3
    await adapter.aclose()
    await client.aclose()
