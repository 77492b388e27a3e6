"""The kie.ai market adapter (Wan animate, Wan 2.6, Kling 2.6, Sora 2) against the kie emulator,
both over real HTTP on loopback, and kie's signed completion callbacks.

A second tiny app plays the public internet: it serves input images and reference videos and
receives callbacks (headers and raw body). Time in the emulator is a fake clock moved by hand.
"""

from __future__ import annotations

import asyncio
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

from vidgate.emulators.kie import PAUSED_TODAY, PREFIX, KieEmulator
from vidgate.providers.base import (
    Ambiguous,
    NotSent,
    Rejected,
    Throttled,
    UpstreamStatus,
    VideoRequest,
)
from vidgate.providers.kie import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    KieMarketAdapter,
    KieSoraAdapter,
    callback_signature,
    classify,
    parse_callback,
    verify_callback,
)

from ..fixtures.clock import FakeClock
from ..fixtures.loopback import Switch, closed_port_url, serve_on_loopback
from ..fixtures.samples import jpeg_bytes, mp4_bytes, png_bytes

API_KEY = "kie-market-key-0123456789"
HMAC_KEY = "whk-0123456789abcdef"
WALL = 1_767_000_000.0  # the emulator's wall clock: callback timestamps
SECONDS = 1.0  # forced render length, so renders stay fast
QUEUE = 1.0
RUN = 3.0

WAN_T2V = "wan/2-6-text-to-video"
WAN_I2V = "wan/2-6-image-to-video"
KLING_T2V = "kling-2.6/text-to-video"
KLING_I2V = "kling-2.6/image-to-video"
MOVE = "wan/2-2-animate-move"
REPLACE = "wan/2-2-animate-replace"


@dataclass
class Callback:
    headers: dict[str, str]
    body: bytes


@dataclass
class Web:
    """The app playing the public internet: input files and a callback receiver."""

    callbacks: list[Callback] = field(default_factory=list)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    def app(self) -> FastAPI:
        app = FastAPI()
        files = {
            "frame.png": (png_bytes((320, 240)), "image/png"),
            "frame.jpg": (jpeg_bytes((320, 240)), "image/jpeg"),
            "tall.jpg": (jpeg_bytes((240, 320)), "image/jpeg"),
            "notes.png": (b"just some text, not an image\n" * 10, "image/png"),
            "dance.mp4": (mp4_bytes(seconds=1.0, fps=10, size=(64, 48)), "video/mp4"),
            "tall.mp4": (mp4_bytes(seconds=1.0, fps=10, size=(48, 80)), "video/mp4"),
            "fault-stuck.mp4": (mp4_bytes(seconds=1.0, fps=10, size=(64, 48)), "video/mp4"),
            "notes.mp4": (b"not a video at all\n" * 10, "video/mp4"),
        }

        @app.get("/{name}")
        async def serve(name: str) -> Response:
            found = files.get(name)
            if found is None:
                return Response("not found", status_code=404)
            return Response(found[0], media_type=found[1])

        @app.post("/callback")
        async def callback(request: Request) -> Response:
            self.callbacks.append(Callback(dict(request.headers), await request.body()))
            self.arrived.set()
            return JSONResponse({"ok": True})

        return app


@dataclass
class Servers:
    switch: Switch
    base: str
    web: Web
    web_base: str


@dataclass
class Env:
    emulator: KieEmulator
    clock: FakeClock
    base: str  # the emulator's kie base URL
    web: str  # the "public internet" app
    callbacks: list[Callback]
    arrived: asyncio.Event

    def adapter(self, **kwargs: Any) -> KieMarketAdapter:
        kwargs.setdefault("api_key", API_KEY)
        kwargs.setdefault("base_url", self.base)
        return KieMarketAdapter(**kwargs)

    def sent(self) -> dict[str, Any]:
        """The last createTask body the emulator received, and that it accepted it."""
        entry = self.emulator.requests[-1]
        assert entry["path"].endswith("/createTask")
        assert entry["code"] == 200, entry
        body: dict[str, Any] = entry["body"]
        return body


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
        paused_models=PAUSED_TODAY,
        webhook_hmac_key=HMAC_KEY,
        wall_clock=lambda: WALL,
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


@pytest.fixture
async def adapter(env: Env) -> AsyncIterator[KieMarketAdapter]:
    adapter = env.adapter(callback_url=env.web + "/callback")
    yield adapter
    await adapter.aclose()


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


async def _download(url: str, path: Path) -> tuple[int, int, float]:
    """Fetch a result and read it: (width, height, seconds) of its H.264 stream."""
    async with httpx.AsyncClient() as client:
        video = await client.get(url)
    assert video.status_code == 200
    assert video.headers["content-type"] == "video/mp4"
    return _probe(video.content, path)


def _probe(data: bytes, path: Path) -> tuple[int, int, float]:
    path.write_bytes(data)
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264"
        assert sum(1 for _ in container.decode(stream)) > 0
        assert stream.duration is not None and stream.time_base is not None
        return stream.width, stream.height, float(stream.duration * stream.time_base)


# ---------------------------------------------------------------------------------------------
# Request bodies, per model family (as the emulator logged and accepted them)
# ---------------------------------------------------------------------------------------------


def _cases(web: str) -> list[tuple[VideoRequest, dict[str, Any]]]:
    image, tall, video = web + "/frame.png", web + "/tall.jpg", web + "/dance.mp4"
    return [
        (
            VideoRequest(
                kind="animate-move", image_url=image, video_url=video, mode="wan-pro", model=MOVE
            ),
            {
                "model": MOVE,
                "input": {"resolution": "720p", "video_url": video, "image_url": image},
            },
        ),
        (
            VideoRequest(kind="animate-mix", image_url=image, video_url=video, model=REPLACE),
            {
                "model": REPLACE,
                "input": {"resolution": "480p", "video_url": video, "image_url": image},
            },
        ),
        (
            VideoRequest(
                kind="text-to-video", prompt="A fox", quality="hd", duration=10, model=WAN_T2V
            ),
            {
                "model": WAN_T2V,
                "input": {"prompt": "A fox", "duration": "10", "resolution": "1080p"},
            },
        ),
        (
            VideoRequest(
                kind="image-to-video",
                prompt="Pan",
                image_urls=(tall, image),
                aspect_ratio="portrait",  # Wan 2.6 has no aspect field: the image decides
                duration=15,
                model=WAN_I2V,
            ),
            {
                "model": WAN_I2V,
                "input": {
                    "prompt": "Pan",
                    "duration": "15",
                    "image_urls": [tall],
                    "resolution": "720p",
                },
            },
        ),
        (
            VideoRequest(
                kind="text-to-video", prompt="Rain", aspect_ratio="portrait", model=KLING_T2V
            ),
            {
                "model": KLING_T2V,
                "input": {
                    "prompt": "Rain",
                    "duration": "5",
                    "sound": False,
                    "aspect_ratio": "9:16",
                },
            },
        ),
        (
            VideoRequest(
                kind="image-to-video",
                prompt="Zoom",
                image_url=image,
                quality="hd",  # Kling 2.6 has no resolution field
                duration=10,
                model=KLING_I2V,
            ),
            {
                "model": KLING_I2V,
                "input": {
                    "prompt": "Zoom",
                    "duration": "10",
                    "image_urls": [image],
                    "sound": False,
                },
            },
        ),
        (
            VideoRequest(
                kind="text-to-video",
                prompt="Waves",
                model=KLING_T2V,
                extra={"sound": True, "negative_prompt": "blur"},
            ),
            {
                "model": KLING_T2V,
                "input": {
                    "prompt": "Waves",
                    "duration": "5",
                    "sound": True,
                    "aspect_ratio": "16:9",
                    "negative_prompt": "blur",
                },
            },
        ),
    ]


@pytest.mark.parametrize(
    "case",
    range(7),
    ids=[
        "animate-move-pro",
        "animate-replace-std",
        "wan26-t2v-hd-10s",
        "wan26-i2v-first-image-only",
        "kling26-t2v-portrait",
        "kling26-i2v-10s",
        "kling26-extra-merged-last",
    ],
)
async def test_each_family_sends_its_own_input(env: Env, case: int) -> None:
    request, expected = _cases(env.web)[case]
    adapter = env.adapter()  # no callBackUrl: the body is exactly the mapped request
    try:
        submitted = await adapter.submit(request)
        assert env.sent() == expected
        assert len(submitted.upstream_id) == 32
    finally:
        await adapter.aclose()


async def test_callback_url_is_sent_when_configured(env: Env, adapter: KieMarketAdapter) -> None:
    await adapter.submit(VideoRequest(kind="text-to-video", prompt="a", model=WAN_T2V))
    assert env.sent()["callBackUrl"] == env.web + "/callback"


async def test_sora_models_keep_the_sora_mapping(env: Env) -> None:
    env.emulator.paused_models.clear()  # as before Sora 2 was paused
    adapter = env.adapter()
    try:
        await adapter.submit(
            VideoRequest(
                kind="text-to-video",
                prompt="Snow",
                quality="hd",
                duration=15,
                model="sora-2-pro-text-to-video",
            )
        )
        assert env.sent() == {
            "model": "sora-2-pro-text-to-video",
            "input": {
                "prompt": "Snow",
                "aspect_ratio": "landscape",
                "n_frames": "15",
                "remove_watermark": True,
                "size": "high",
            },
        }
        # No model: Sora 2 chosen by quality, 10 s, as the original adapter did.
        await adapter.submit(VideoRequest(kind="text-to-video", prompt="Sun"))
        assert env.sent() == {
            "model": "sora-2-text-to-video",
            "input": {
                "prompt": "Sun",
                "aspect_ratio": "landscape",
                "n_frames": "10",
                "remove_watermark": True,
            },
        }
    finally:
        await adapter.aclose()


@pytest.mark.parametrize(
    "request_",
    [
        VideoRequest(kind="image-to-video", prompt="a", image_url="https://x/a.png", model=WAN_T2V),
        VideoRequest(kind="animate-move", image_url="https://x/a.png", model=KLING_I2V),
        VideoRequest(kind="text-to-video", prompt="a", duration=7, model=WAN_T2V),
        VideoRequest(kind="text-to-video", prompt="a", duration=15, model=KLING_T2V),
        VideoRequest(kind="text-to-video", prompt="a", duration=5, model="sora-2-text-to-video"),
        VideoRequest(kind="text-to-video", prompt="a", model="veo3_fast"),
        VideoRequest(kind="animate-mix", image_url="https://x/a.png"),  # no model: Sora
    ],
    ids=[
        "kind-mismatch",
        "animate-on-kling",
        "wan-7s",
        "kling-15s",
        "sora-5s",
        "unmapped-model",
        "sora-cannot-animate",
    ],
)
async def test_what_a_channel_cannot_do_is_refused_without_sending(request_: VideoRequest) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise AssertionError("nothing should be sent")

    adapter = _mocked(handler)
    with pytest.raises(Rejected) as error:
        await adapter.submit(request_)
    assert error.value.code == "channel_unsupported"
    await adapter.aclose()


# ---------------------------------------------------------------------------------------------
# States, progress and renders
# ---------------------------------------------------------------------------------------------


async def test_wan_text_to_video_walks_the_states_with_progress_and_renders_its_length(
    env: Env, adapter: KieMarketAdapter, tmp_path: Path
) -> None:
    env.emulator.seconds = None  # render the asked length
    submitted = await adapter.submit(
        VideoRequest(kind="text-to-video", prompt="A slow pan", duration=5, model=WAN_T2V)
    )
    task_id = submitted.upstream_id

    waiting = await adapter.fetch(task_id)
    assert (waiting.status, waiting.raw["data"]["state"], waiting.progress) == (
        UpstreamStatus.PENDING,
        "waiting",
        0,
    )
    env.clock.advance(QUEUE * 0.75)
    queuing = await adapter.fetch(task_id)
    assert (queuing.status, queuing.raw["data"]["state"]) == (UpstreamStatus.PENDING, "queuing")

    env.clock.advance(QUEUE * 0.25 + RUN * 0.25)
    early = await adapter.fetch(task_id)
    env.clock.advance(RUN * 0.5)
    late = await adapter.fetch(task_id)
    assert early.status is late.status is UpstreamStatus.RUNNING
    assert late.raw["data"]["state"] == "generating"
    assert early.progress is not None and late.progress is not None
    assert 0 < early.progress < late.progress < 100

    await _finish(env, task_id)
    done = await adapter.fetch(task_id)
    assert done.status is UpstreamStatus.SUCCEEDED
    assert (done.progress, done.billed_seconds) == (100, 5.0)
    assert done.result_url is not None and done.result_url.startswith(env.base + "/results/")
    width, height, seconds = await _download(done.result_url, tmp_path / "wan.mp4")
    assert (width, height) == (256, 144)  # 16:9: Wan 2.6 text-to-video has no aspect field
    assert seconds == pytest.approx(5.0, abs=0.1)
    assert done.billed_seconds == pytest.approx(seconds, abs=0.1)


async def test_kling_image_to_video_follows_the_image(
    env: Env, adapter: KieMarketAdapter, tmp_path: Path
) -> None:
    submitted = await adapter.submit(
        VideoRequest(
            kind="image-to-video",
            prompt="Hair in the wind",
            image_urls=(env.web + "/tall.jpg",),
            duration=10,
            model=KLING_I2V,
        )
    )
    await _finish(env, submitted.upstream_id)
    done = await adapter.fetch(submitted.upstream_id)
    assert (done.status, done.billed_seconds) == (UpstreamStatus.SUCCEEDED, 10.0)
    assert done.result_url
    width, height, seconds = await _download(done.result_url, tmp_path / "kling.mp4")
    assert (width, height) == (144, 192)  # 3:4, like the image
    assert seconds == pytest.approx(SECONDS, abs=0.1)  # the emulator forces short renders here


@pytest.mark.parametrize(
    ("model", "kind", "video", "frame"),
    [
        (MOVE, "animate-move", "/tall.mp4", (192, 144)),  # move: the person image's frame
        (REPLACE, "animate-mix", "/tall.mp4", (144, 240)),  # replace: the video's frame
    ],
)
async def test_animate_renders_as_long_as_the_reference_video(
    env: Env,
    adapter: KieMarketAdapter,
    tmp_path: Path,
    model: str,
    kind: Any,
    video: str,
    frame: tuple[int, int],
) -> None:
    env.emulator.seconds = None
    submitted = await adapter.submit(
        VideoRequest(
            kind=kind, image_url=env.web + "/frame.png", video_url=env.web + video, model=model
        )
    )
    await _finish(env, submitted.upstream_id)
    done = await adapter.fetch(submitted.upstream_id)
    assert done.status is UpstreamStatus.SUCCEEDED and done.result_url
    assert done.billed_seconds is None  # vidgate measures the file for animate
    width, height, seconds = await _download(done.result_url, tmp_path / "animate.mp4")
    assert (width, height) == frame
    assert seconds == pytest.approx(1.0, abs=0.15)


@pytest.mark.parametrize(
    ("fault", "fail_code", "words"),
    [("moderation", "400", "content policies"), ("fail", "500", "Internal")],
)
async def test_a_failed_task_is_a_task_failure_not_an_error(
    env: Env, adapter: KieMarketAdapter, fault: str, fail_code: str, words: str
) -> None:
    env.emulator.set_next_fault(fault)
    submitted = await adapter.submit(
        VideoRequest(kind="text-to-video", prompt="x", model=KLING_T2V)
    )
    env.clock.advance(QUEUE + 0.1)
    assert (await adapter.fetch(submitted.upstream_id)).status is UpstreamStatus.RUNNING
    env.clock.advance(RUN)
    failed = await adapter.fetch(submitted.upstream_id)
    assert failed.status is UpstreamStatus.FAILED
    assert failed.error_code == fail_code
    assert failed.error_message is not None and words in failed.error_message
    assert failed.result_url is None and failed.billed_seconds is None

    await _wait_callbacks(env, 1)
    payload = verify_callback(env.callbacks[0].headers, env.callbacks[0].body, HMAC_KEY, now=WALL)
    assert payload is not None and payload["code"] == 501
    from_callback = adapter.parse_callback(payload)
    assert (from_callback.status, from_callback.error_code) == (UpstreamStatus.FAILED, fail_code)


async def test_markers_in_prompt_and_file_names_choose_faults(
    env: Env, adapter: KieMarketAdapter
) -> None:
    with pytest.raises(Throttled) as raised:
        await adapter.submit(
            VideoRequest(kind="text-to-video", prompt="[fault:maintenance]", model=WAN_T2V)
        )
    assert raised.value.code == "channel_unavailable"
    stuck = await adapter.submit(
        VideoRequest(
            kind="animate-move",
            image_url=env.web + "/frame.png",
            video_url=env.web + "/fault-stuck.mp4",
            model=MOVE,
        )
    )
    env.clock.advance(100 * (QUEUE + RUN))
    state = await adapter.fetch(stuck.upstream_id)
    assert (state.status, state.progress) == (UpstreamStatus.RUNNING, 99)
    await asyncio.sleep(0.2)
    assert env.callbacks == []


# ---------------------------------------------------------------------------------------------
# Inner codes → error classes
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fault", "error", "code", "status"),
    [
        ("insufficient_credits", Rejected, "channel_credits", 200),
        ("sub_key_limit", Rejected, "channel_credits", 200),
        ("invalid_input", Rejected, "422", 200),
        ("model_unsupported", Rejected, "channel_unavailable", 200),
        ("throttle", Throttled, "429", 200),
        ("maintenance", Throttled, "channel_unavailable", 200),
        ("feature_disabled", Rejected, "channel_unavailable", 200),
        ("server_error", Throttled, "500", 500),
        ("generation_failed", Throttled, "501", 200),
    ],
)
async def test_inner_codes_are_classified(
    env: Env, fault: str, error: type[Exception], code: str, status: int
) -> None:
    adapter = env.adapter()
    try:
        async with httpx.AsyncClient() as client:
            armed = await client.post(env.base + "/_control/faults", json={"next_submit": fault})
        assert armed.json() == {"next_submit": fault, "count": 1}
        with pytest.raises(error) as raised:
            await adapter.submit(VideoRequest(kind="text-to-video", prompt="a", model=WAN_T2V))
        assert isinstance(raised.value, Rejected | Throttled)
        assert (raised.value.code, raised.value.status) == (code, status)
        assert env.emulator.task_ids() == []
        # Armed for one submit only.
        await adapter.submit(VideoRequest(kind="text-to-video", prompt="a", model=WAN_T2V))
        assert len(env.emulator.task_ids()) == 1
    finally:
        await adapter.aclose()


async def test_a_fault_can_be_armed_for_several_submits(env: Env) -> None:
    adapter = env.adapter()
    try:
        env.emulator.set_next_fault("throttle", count=2)
        request = VideoRequest(kind="text-to-video", prompt="a", model=KLING_T2V)
        for _ in range(2):
            with pytest.raises(Throttled):
                await adapter.submit(request)
        await adapter.submit(request)
        async with httpx.AsyncClient() as client:
            bad = await client.post(env.base + "/_control/faults", json={"next_submit": "nope"})
        assert bad.status_code == 422
    finally:
        await adapter.aclose()


async def test_bad_key_is_a_channel_auth_error(env: Env) -> None:
    adapter = env.adapter(api_key="wrong-key")
    try:
        with pytest.raises(Rejected) as submit_error:
            await adapter.submit(VideoRequest(kind="text-to-video", prompt="a", model=WAN_T2V))
        assert (submit_error.value.code, submit_error.value.status) == ("channel_auth", 200)
        with pytest.raises(Rejected) as fetch_error:
            await adapter.fetch("0" * 32)
        assert fetch_error.value.code == "channel_auth"
    finally:
        await adapter.aclose()


async def test_paused_sora_is_channel_unavailable(env: Env) -> None:
    adapter = env.adapter()
    try:
        request = VideoRequest(
            kind="text-to-video", prompt="a", duration=10, model="sora-2-text-to-video"
        )
        with pytest.raises(Rejected) as error:
            await adapter.submit(request)
        assert error.value.code == "channel_unavailable"
        assert env.emulator.requests[-1]["code"] == 505
        # The original adapter keeps its numeric code for the same answer.
        legacy = KieSoraAdapter(API_KEY, env.base)
        try:
            with pytest.raises(Rejected) as legacy_error:
                await legacy.submit(VideoRequest(kind="text-to-video", prompt="a"))
            assert legacy_error.value.code == "505"
        finally:
            await legacy.aclose()
        # Unpausing through the control endpoint brings Sora back.
        async with httpx.AsyncClient() as client:
            answer = await client.post(env.base + "/_control/paused", json={"models": []})
            assert answer.json() == {"models": []}
            assert (
                await client.post(env.base + "/_control/paused", json={"models": "all"})
            ).status_code == 422
        await adapter.submit(request)
    finally:
        await adapter.aclose()


async def test_unknown_task_unknown_and_transport_errors(env: Env) -> None:
    adapter = env.adapter(timeout=0.3)
    try:
        assert (await adapter.fetch("0" * 32)).status is UpstreamStatus.UNKNOWN
        env.emulator.set_next_fault("slow")
        with pytest.raises(Ambiguous):
            await adapter.submit(VideoRequest(kind="text-to-video", prompt="a", model=WAN_T2V))
        assert len(env.emulator.task_ids()) == 1  # created all the same
    finally:
        await adapter.aclose()
    closed = KieMarketAdapter(API_KEY, closed_port_url(), timeout=2)
    try:
        with pytest.raises(NotSent):
            await closed.submit(VideoRequest(kind="text-to-video", prompt="a", model=WAN_T2V))
    finally:
        await closed.aclose()


def _mocked(handler: Callable[[httpx.Request], httpx.Response]) -> KieMarketAdapter:
    client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    return KieMarketAdapter(API_KEY, "https://kie.test", client=client)


@pytest.mark.parametrize(
    ("response", "error", "code"),
    [
        (httpx.Response(200, json={"code": 401, "msg": "no"}), Rejected, "channel_auth"),
        (httpx.Response(401, json={"msg": "no"}), Rejected, "channel_auth"),
        (httpx.Response(200, json={"code": "433", "msg": "sub-key"}), Rejected, "channel_credits"),
        (
            httpx.Response(200, json={"code": 422, "msg": "The model is not supported"}),
            Rejected,
            "channel_unavailable",
        ),
        (
            httpx.Response(200, json={"code": 422, "msg": "Unsupported model: sora-2"}),
            Rejected,
            "channel_unavailable",
        ),
        (
            httpx.Response(200, json={"code": 422, "msg": "input.duration is not supported"}),
            Rejected,
            "422",
        ),
        (
            httpx.Response(200, json={"code": 422, "msg": "Invalid input for model x: prompt"}),
            Rejected,
            "422",
        ),
        (httpx.Response(200, json={"code": 400, "msg": "flagged"}), Rejected, "400"),
        (
            httpx.Response(505, json={"code": 505, "msg": "disabled"}),
            Rejected,
            "channel_unavailable",
        ),
        # A gateway's own page may hide a created task: never sent again.
        (httpx.Response(502, text="<html>Bad Gateway</html>"), Ambiguous, None),
        (httpx.Response(504, text="<html>Gateway Timeout</html>"), Ambiguous, None),
        (httpx.Response(503, text="<html>Unavailable</html>"), Throttled, "503"),
        (httpx.Response(200, text="<html>?</html>"), Ambiguous, None),
    ],
)
async def test_submit_classifies_odd_answers(
    response: httpx.Response, error: type[Exception], code: str | None
) -> None:
    adapter = _mocked(lambda request: response)
    with pytest.raises(error) as raised:
        await adapter.submit(VideoRequest(kind="text-to-video", prompt="hi", model=WAN_T2V))
    assert getattr(raised.value, "code", None) == code
    await adapter.aclose()


@pytest.mark.parametrize("code", [429, 455, 500])
async def test_throttled_answers_carry_retry_after(code: int) -> None:
    adapter = _mocked(
        lambda request: httpx.Response(
            200, json={"code": code, "msg": "later"}, headers={"Retry-After": "7"}
        )
    )
    with pytest.raises(Throttled) as raised:
        await adapter.submit(VideoRequest(kind="text-to-video", prompt="hi", model=KLING_T2V))
    assert raised.value.retry_after == 7.0
    await adapter.aclose()


def test_classify_table() -> None:
    assert classify(403, 200, "forbidden").code == "channel_auth"
    assert classify(402, 200, "").code == "channel_credits"
    assert isinstance(classify(504, 504, ""), Throttled)
    assert classify(404, 200, "").code == "404"


# ---------------------------------------------------------------------------------------------
# Callbacks: signed by the emulator, verified and parsed by the adapter's helpers
# ---------------------------------------------------------------------------------------------


async def test_signed_callback_verifies_and_parses_like_fetch(
    env: Env, adapter: KieMarketAdapter
) -> None:
    submitted = await adapter.submit(
        VideoRequest(kind="text-to-video", prompt="Lanterns", duration=10, model=WAN_T2V)
    )
    await _finish(env, submitted.upstream_id)
    await _wait_callbacks(env, 1)
    assert len(env.callbacks) == 1
    callback = env.callbacks[0]
    assert callback.headers["x-webhook-timestamp"] == str(int(WALL))

    payload = verify_callback(callback.headers, callback.body, HMAC_KEY, now=WALL + 5)
    assert payload is not None
    assert payload["code"] == 200 and payload["data"]["taskId"] == submitted.upstream_id
    from_callback = adapter.parse_callback(payload)
    fetched = await adapter.fetch(submitted.upstream_id)
    assert from_callback.upstream_id == fetched.upstream_id
    assert (from_callback.status, from_callback.result_url, from_callback.billed_seconds) == (
        fetched.status,
        fetched.result_url,
        fetched.billed_seconds,
    )
    assert from_callback.status is UpstreamStatus.SUCCEEDED
    assert from_callback.billed_seconds == 10.0
    assert parse_callback(payload).result_url == fetched.result_url


async def test_tampered_or_stale_callbacks_are_refused(env: Env, adapter: KieMarketAdapter) -> None:
    submitted = await adapter.submit(VideoRequest(kind="text-to-video", prompt="a", model=WAN_T2V))
    await _finish(env, submitted.upstream_id)
    await _wait_callbacks(env, 1)
    headers, body = env.callbacks[0].headers, env.callbacks[0].body
    assert verify_callback(headers, body, HMAC_KEY, now=WALL) is not None

    # Another task's id in the body: the signature no longer matches.
    forged = json.loads(body)
    forged["data"]["taskId"] = "f" * 32
    assert verify_callback(headers, json.dumps(forged).encode(), HMAC_KEY, now=WALL) is None
    # A changed signature, a wrong key, a missing header.
    bad_sig = {**headers, "x-webhook-signature": callback_signature("x", int(WALL), HMAC_KEY)}
    assert verify_callback(bad_sig, body, HMAC_KEY, now=WALL) is None
    assert verify_callback(headers, body, "another-key", now=WALL) is None
    no_sig = {k: v for k, v in headers.items() if k != "x-webhook-signature"}
    assert verify_callback(no_sig, body, HMAC_KEY, now=WALL) is None
    assert verify_callback(headers, b"not json", HMAC_KEY, now=WALL) is None
    # A replay outside the tolerance, either way; inside it is fine.
    assert verify_callback(headers, body, HMAC_KEY, now=WALL + 301) is None
    assert verify_callback(headers, body, HMAC_KEY, now=WALL - 301) is None
    assert verify_callback(headers, body, HMAC_KEY, now=WALL + 299) is not None
    assert verify_callback(headers, body, HMAC_KEY, now=WALL + 50, tolerance=30) is None


def test_callback_task_id_may_be_spelled_task_id() -> None:
    body = json.dumps(
        {
            "code": 200,
            "msg": "ok",
            "data": {
                "task_id": "abc",
                "state": "success",
                "model": KLING_T2V,
                "param": json.dumps({"model": KLING_T2V, "input": {"duration": "5"}}),
                "resultJson": json.dumps({"resultUrls": ["https://cdn/v.mp4"]}),
            },
        }
    ).encode()
    headers = {
        TIMESTAMP_HEADER: "1700000000",
        SIGNATURE_HEADER: callback_signature("abc", "1700000000", HMAC_KEY),
    }
    payload = verify_callback(headers, body, HMAC_KEY, now=1_700_000_100)
    assert payload is not None
    state = parse_callback(payload)
    assert (state.upstream_id, state.status, state.result_url, state.billed_seconds) == (
        "abc",
        UpstreamStatus.SUCCEEDED,
        "https://cdn/v.mp4",
        5.0,
    )
    with pytest.raises(ValueError):
        parse_callback({"code": 200, "data": {"state": "success"}})


async def test_callbacks_are_unsigned_without_a_key(env: Env, adapter: KieMarketAdapter) -> None:
    env.emulator.webhook_hmac_key = None
    submitted = await adapter.submit(VideoRequest(kind="text-to-video", prompt="a", model=WAN_T2V))
    await _finish(env, submitted.upstream_id)
    await _wait_callbacks(env, 1)
    assert "x-webhook-signature" not in env.callbacks[0].headers
    assert (
        verify_callback(env.callbacks[0].headers, env.callbacks[0].body, HMAC_KEY, now=WALL) is None
    )


# ---------------------------------------------------------------------------------------------
# The emulator rejects what kie rejects, per family
# ---------------------------------------------------------------------------------------------


def _bodies(web: str) -> list[dict[str, Any]]:
    png, jpg, mp4 = web + "/frame.png", web + "/frame.jpg", web + "/dance.mp4"
    return [
        {"model": WAN_T2V, "input": {"prompt": "a", "duration": 5}},  # not a string
        {"model": WAN_T2V, "input": {"prompt": "a", "duration": "7"}},
        {"model": WAN_T2V, "input": {"prompt": "a", "resolution": "480p"}},
        {"model": WAN_T2V, "input": {"duration": "5"}},
        {"model": WAN_T2V, "input": {"prompt": "x" * 5001}},
        {"model": WAN_I2V, "input": {"prompt": "a"}},
        {"model": WAN_I2V, "input": {"prompt": "a", "image_urls": [png, jpg]}},
        {"model": WAN_I2V, "input": {"prompt": "a", "image_urls": [web + "/anim.gif"]}},
        {"model": WAN_I2V, "input": {"prompt": "a", "image_urls": [web + "/notes.png"]}},
        {"model": WAN_I2V, "input": {"prompt": "a", "image_urls": [web + "/gone.png"]}},
        {"model": KLING_T2V, "input": {"prompt": "a", "duration": "5"}},  # no sound
        {"model": KLING_T2V, "input": {"prompt": "a", "sound": False, "aspect_ratio": "4:3"}},
        {"model": KLING_T2V, "input": {"prompt": "a", "sound": False, "duration": "15"}},
        {"model": KLING_I2V, "input": {"prompt": "a", "sound": "no", "image_urls": [png]}},
        {"model": MOVE, "input": {"image_url": png}},
        {"model": MOVE, "input": {"video_url": mp4}},
        {"model": MOVE, "input": {"video_url": web + "/dance.avi", "image_url": png}},
        {"model": MOVE, "input": {"video_url": mp4, "image_url": web + "/frame.bmp"}},
        {"model": REPLACE, "input": {"video_url": mp4, "image_url": png, "resolution": "1080p"}},
        {"model": REPLACE, "input": {"video_url": web + "/notes.mp4", "image_url": png}},
        {"model": "wan/9-9-text-to-video", "input": {"prompt": "a"}},
        {"model": KLING_T2V, "input": {"prompt": "a", "sound": False}, "callBackUrl": "nope"},
    ]


@pytest.mark.parametrize("index", range(22))
async def test_emulator_validates_each_family(env: Env, index: int) -> None:
    body = _bodies(env.web)[index]
    async with httpx.AsyncClient(headers={"Authorization": f"Bearer {API_KEY}"}) as client:
        response = await client.post(env.base + "/api/v1/jobs/createTask", json=body)
    assert response.status_code == 200
    assert response.json()["code"] == 422, response.json()
    assert env.emulator.task_ids() == []


async def test_emulator_record_echoes_the_request_and_reports_progress(env: Env) -> None:
    body = {"model": KLING_T2V, "input": {"prompt": "a", "sound": False, "mode": "pro"}}
    auth = {"Authorization": f"Bearer {API_KEY}"}
    async with httpx.AsyncClient(headers=auth) as client:
        created = await client.post(env.base + "/api/v1/jobs/createTask", json=body)
        task_id = created.json()["data"]["taskId"]
        record = await client.get(env.base + "/api/v1/jobs/recordInfo", params={"taskId": task_id})
    data = record.json()["data"]
    assert data["model"] == KLING_T2V
    assert json.loads(data["param"]) == body  # unknown fields kept, as kie echoes them
    assert (data["state"], data["progress"], data["resultJson"]) == ("waiting", 0, "")
