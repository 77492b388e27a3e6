"""The DashScope adapter's text-to-video and image-to-video paths against the DashScope emulator,
both over real HTTP on loopback.

Both body dialects (legacy wan2.6 and wan2.7) are driven through every documented task state, every
error class the adapter maps (with the `channel_…` codes a router relies on), the billed seconds,
and the exact bodies the adapter sent, read back from the emulator's `/_control/requests` log.
Input images and clips are real files served by a static file app; time is a fake clock.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
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

from vidgate.emulators.dashscope import PREFIX, VIDEO_PATH, DashScopeEmulator
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
from vidgate.providers.dashscope_video import build_video_body

from ..fixtures.clock import FakeClock
from ..fixtures.loopback import closed_port_url, serve_on_loopback

KEY = "sk-test-dashscope-video-0123456789"
FPS = 16  # the emulator's frame rate for these models
AUTH = {"Authorization": f"Bearer {KEY}"}
ASYNC = {**AUTH, "X-DashScope-Async": "enable"}


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Inputs: a 16:9 still, a 3:4 portrait, a too-small image, a transparent PNG, a text file
    posing as an image, a 3 s clip, and copies of the still whose names carry fault markers."""
    root = tmp_path_factory.mktemp("dashscope-video-media")
    still = Image.new("RGB", (640, 360), (20, 80, 140))
    still.paste((240, 200, 60), (260, 120, 380, 240))
    still.save(root / "still.png")
    Image.new("RGB", (750, 1000), (120, 40, 90)).save(root / "portrait.jpg")
    Image.new("RGB", (100, 100)).save(root / "tiny.png")
    Image.new("RGBA", (400, 400), (0, 0, 0, 0)).save(root / "alpha.png")
    (root / "notes.png").write_text("not an image\n")
    render_animation(
        None, root / "clip.mp4", seconds=3.0, fps=10, width=320, height=240, caption="clip"
    )
    for marker in ("moderation", "size", "invalid", "throttle", "5xx", "stuck", "slow"):
        shutil.copy(root / "still.png", root / f"fault-{marker}.png")
    return root


@dataclass
class Env:
    emulator: DashScopeEmulator
    clock: FakeClock
    base: str  # the app's root
    adapter: DashScopeAdapter
    raw: httpx.AsyncClient  # straight to the emulator

    @property
    def api(self) -> str:
        return self.base + PREFIX

    def url(self, name: str) -> str:
        return f"{self.base}/media/{name}"

    def t2v(self, model: str = "wan2.7-t2v", prompt: str = "a red kite", **kw: Any) -> VideoRequest:
        return VideoRequest(kind="text-to-video", model=model, prompt=prompt, **kw)

    def i2v(self, model: str = "wan2.7-i2v", image: str = "still.png", **kw: Any) -> VideoRequest:
        return VideoRequest(kind="image-to-video", model=model, image_urls=(self.url(image),), **kw)

    async def sent(self) -> list[dict[str, Any]]:
        """The bodies posted to the video-synthesis path, from the emulator's request log."""
        log = (await self.raw.get("/_control/requests")).json()["requests"]
        return [
            json.loads(entry["body"])
            for entry in log
            if entry["method"] == "POST" and entry["path"].endswith(VIDEO_PATH)
        ]

    async def until(self, task_id: str, status: UpstreamStatus) -> TaskState:
        """Poll (the render runs for real) until the task reaches `status`."""
        async with asyncio.timeout(30):
            while True:
                state = await self.adapter.fetch(task_id)
                if state.status is status:
                    return state
                await asyncio.sleep(0.05)

    async def finished(self, task_id: str) -> TaskState:
        self.clock.advance(3.5)  # past the queue (1 s) and the run (2 s)
        return await self.until(task_id, UpstreamStatus.SUCCEEDED)


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
        emulator.public_base_url = base
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


async def download(url: str) -> bytes:
    async with httpx.AsyncClient() as http:
        answer = await http.get(url)
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "video/mp4"
    return answer.content


def video_facts(content: bytes, out: Path) -> tuple[float, int, int, int]:
    """Duration, width, height and decoded frame count of an H.264 MP4."""
    out.write_bytes(content)
    with av.open(str(out)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264"
        assert stream.duration is not None and stream.time_base is not None
        frames = sum(1 for _ in container.decode(stream))
        return (
            float(stream.duration * stream.time_base),
            stream.codec_context.width,
            stream.codec_context.height,
            frames,
        )


# ---------------------------------------------------------------------------------------------
# Both dialects, both kinds: the body sent, the states, the result, the bill
# ---------------------------------------------------------------------------------------------

CASES: list[tuple[str, dict[str, Any], dict[str, Any], dict[str, Any], tuple[int, int]]] = [
    (
        "legacy t2v, standard landscape",
        {"kind": "text-to-video", "model": "wan2.6-t2v", "prompt": "a red kite", "duration": 3},
        {
            "model": "wan2.6-t2v",
            "input": {"prompt": "a red kite"},
            "parameters": {"size": "1280*720", "duration": 3, "watermark": False},
        },
        {
            "duration": 3.0,
            "size": "1280*720",
            "input_video_duration": 0,
            "output_video_duration": 3,
            "video_count": 1,
            "SR": 720,
        },
        (214, 120),
    ),
    (
        "legacy t2v, hd portrait",
        {
            "kind": "text-to-video",
            "model": "wan2.6-t2v",
            "prompt": "a red kite",
            "quality": "hd",
            "aspect_ratio": "portrait",
            "duration": 2,
        },
        {
            "model": "wan2.6-t2v",
            "input": {"prompt": "a red kite"},
            "parameters": {"size": "1080*1920", "duration": 2, "watermark": False},
        },
        {
            "duration": 2.0,
            "size": "1080*1920",
            "input_video_duration": 0,
            "output_video_duration": 2,
            "video_count": 1,
            "SR": 1080,
        },
        (120, 214),
    ),
    (
        "wan2.7 t2v, standard landscape, default length",
        {"kind": "text-to-video", "model": "wan2.7-t2v", "prompt": "a red kite"},
        {
            "model": "wan2.7-t2v",
            "input": {"prompt": "a red kite"},
            "parameters": {
                "resolution": "720P",
                "ratio": "16:9",
                "duration": 5,
                "watermark": False,
            },
        },
        {
            "duration": 5,
            "input_video_duration": 0,
            "output_video_duration": 5,
            "video_count": 1,
            "ratio": "16:9",
            "SR": 720,
        },
        (214, 120),
    ),
    (
        "legacy i2v (flash), hd",
        {
            "kind": "image-to-video",
            "model": "wan2.6-i2v-flash",
            "image": "still.png",
            "quality": "hd",
            "duration": 2,
        },
        {
            "model": "wan2.6-i2v-flash",
            "input": {"img_url": "{still.png}"},
            "parameters": {"resolution": "1080P", "duration": 2, "watermark": False},
        },
        {
            "duration": 2.0,
            "input_video_duration": 0,
            "output_video_duration": 2,
            "video_count": 1,
            "SR": 1080,
            "audio": True,
        },
        (214, 120),  # follows the 16:9 image
    ),
    (
        "wan2.7 i2v, a 3:4 image with a prompt",
        {
            "kind": "image-to-video",
            "model": "wan2.7-i2v",
            "image": "portrait.jpg",
            "prompt": "she turns",
            "aspect_ratio": "landscape",  # no aspect field for i2v: the image decides
            "duration": 2,
        },
        {
            "model": "wan2.7-i2v",
            "input": {
                "prompt": "she turns",
                "media": [{"type": "first_frame", "url": "{portrait.jpg}"}],
            },
            "parameters": {"resolution": "720P", "duration": 2, "watermark": False},
        },
        {
            "duration": 2,
            "input_video_duration": 0,
            "output_video_duration": 2,
            "video_count": 1,
            "SR": 720,
        },
        (120, 162),  # 750x1000 at 720P is 816x1104 (the vendor's own example), scaled to 120
    ),
]


def _fill(value: Any, env: Env) -> Any:
    """Expected bodies name media files as "{file}"; turn them into the served URLs."""
    if isinstance(value, str) and value.startswith("{") and value.endswith("}"):
        return env.url(value[1:-1])
    if isinstance(value, dict):
        return {k: _fill(v, env) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, env) for v in value]
    return value


@pytest.mark.parametrize(
    ("fields", "body", "usage", "size"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
async def test_dialects_walk_to_success(
    env: Env,
    tmp_path: Path,
    fields: dict[str, Any],
    body: dict[str, Any],
    usage: dict[str, Any],
    size: tuple[int, int],
) -> None:
    fields = dict(fields)
    image = fields.pop("image", None)
    if image is not None:
        fields["image_urls"] = (env.url(image),)
    submitted = await env.adapter.submit(VideoRequest(**fields))
    assert submitted.raw["output"]["task_status"] == "PENDING"
    assert await env.sent() == [_fill(body, env)]
    assert env.emulator.requests[-1]["headers"]["x-dashscope-async"] == "enable"
    task_id = submitted.upstream_id

    pending = await env.adapter.fetch(task_id)
    assert pending.status is UpstreamStatus.PENDING
    assert pending.progress is None and pending.result_url is None
    assert "submit_time" in pending.raw["output"]
    env.clock.advance(1.5)
    running = await env.adapter.fetch(task_id)
    assert running.status is UpstreamStatus.RUNNING
    assert "scheduled_time" in running.raw["output"]
    env.clock.advance(2)
    done = await env.until(task_id, UpstreamStatus.SUCCEEDED)

    seconds = body["parameters"]["duration"]
    assert done.progress == 100 and done.error_code is None
    assert done.raw["usage"] == usage
    assert done.billed_seconds == float(seconds)
    assert done.result_url == done.raw["output"]["video_url"]  # flat, not output.results
    assert "results" not in done.raw["output"]
    assert "end_time" in done.raw["output"]
    if fields.get("prompt"):
        assert done.raw["output"]["orig_prompt"] == fields["prompt"]
    assert done.result_url is not None
    content = await download(done.result_url)
    duration, width, height, frames = video_facts(content, tmp_path / "out.mp4")
    assert duration == pytest.approx(seconds, abs=0.01)
    assert frames == seconds * FPS
    assert (width, height) == size


async def test_wan27_prompt_rewrite_is_reported_but_not_for_wan26(env: Env) -> None:
    first = (await env.adapter.submit(env.t2v("wan2.7-t2v", duration=2))).upstream_id
    second = (await env.adapter.submit(env.t2v("wan2.6-t2v", duration=2))).upstream_id
    for task_id, rewritten in ((first, True), (second, False)):
        done = await env.finished(task_id)
        assert ("actual_prompt" in done.raw["output"]) is rewritten


async def test_first_clip_counts_in_the_billed_duration(env: Env) -> None:
    """wan2.7 continues a clip: `duration` = the clip's seconds + the generated ones."""
    answer = await env.raw.post(
        VIDEO_PATH,
        headers=ASYNC,
        json={
            "model": "wan2.7-i2v",
            "input": {"media": [{"type": "first_clip", "url": env.url("clip.mp4")}]},
            "parameters": {"resolution": "720P", "duration": 5},
        },
    )
    assert answer.status_code == 200, answer.text
    done = await env.finished(answer.json()["output"]["task_id"])
    usage = done.raw["usage"]
    assert (usage["duration"], usage["input_video_duration"], usage["output_video_duration"]) == (
        5,
        3,
        2,
    )
    assert done.billed_seconds == 5.0


@pytest.mark.parametrize(
    ("model", "limit"), [("wan2.6-t2v", 1500), ("wan2.7-t2v", 5000)], ids=["legacy", "wan2.7"]
)
async def test_long_prompts_are_cut_to_the_dialect_limit(env: Env, model: str, limit: int) -> None:
    prompt = "x" * (limit + 300)
    task_id = (await env.adapter.submit(env.t2v(model, prompt, duration=2))).upstream_id
    done = await env.finished(task_id)
    assert done.raw["output"]["orig_prompt"] == "x" * limit


async def test_extra_fields_land_where_they_belong(env: Env) -> None:
    request = env.t2v(
        "wan2.6-t2v",
        duration=2,
        extra={
            "prompt_extend": False,
            "shot_type": "single",
            "negative_prompt": "blur",
            "parameters": {"seed": 7},
        },
    )
    await env.adapter.submit(request)
    assert await env.sent() == [
        {
            "model": "wan2.6-t2v",
            "input": {"prompt": "a red kite", "negative_prompt": "blur"},
            "parameters": {
                "size": "1280*720",
                "duration": 2,
                "watermark": False,
                "prompt_extend": False,
                "shot_type": "single",
                "seed": 7,
            },
        }
    ]


# ---------------------------------------------------------------------------------------------
# Failed, stuck, canceled and forgotten tasks
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("request_of", "code", "words"),
    [
        (
            lambda e: e.t2v(prompt="a kite fault-moderation"),
            "DataInspectionFailed",
            "inappropriate",
        ),
        (lambda e: e.i2v("wan2.6-i2v", "fault-moderation.png"), "DataInspectionFailed", "content"),
        (lambda e: e.i2v("wan2.7-i2v", "fault-size.png"), "InvalidParameter", "size is not match"),
        (lambda e: e.t2v("wan2.6-t2v", extra={"size": "832*480"}), "InvalidParameter", "size"),
        (lambda e: e.t2v("wan2.6-t2v", extra={"size": "1000*1000"}), "InvalidParameter", "size"),
    ],
    ids=["moderation-t2v", "moderation-i2v", "size-fault", "tier-not-offered", "size-not-listed"],
)
async def test_tasks_that_fail(env: Env, request_of: Any, code: str, words: str) -> None:
    task_id = (await env.adapter.submit(request_of(env))).upstream_id
    assert (await env.adapter.fetch(task_id)).status is UpstreamStatus.PENDING
    env.clock.advance(3.5)
    state = await env.adapter.fetch(task_id)
    assert state.status is UpstreamStatus.FAILED
    assert state.error_code == code
    assert state.error_message and words in state.error_message
    assert state.billed_seconds is None and state.result_url is None
    assert "usage" not in state.raw


async def test_stuck_cancel_and_unknown(env: Env) -> None:
    stuck = (await env.adapter.submit(env.i2v(image="fault-stuck.png"))).upstream_id
    queued = (await env.adapter.submit(env.t2v())).upstream_id
    assert await env.adapter.cancel(queued) is True
    assert (await env.adapter.fetch(queued)).status is UpstreamStatus.CANCELED
    env.clock.advance(3600)
    assert (await env.adapter.fetch(stuck)).status is UpstreamStatus.RUNNING
    assert await env.adapter.cancel(stuck) is False  # only a queued task can be canceled
    assert (await env.adapter.fetch(queued)).status is UpstreamStatus.CANCELED
    env.clock.advance(86400)
    gone = await env.adapter.fetch(stuck)
    assert gone.status is UpstreamStatus.UNKNOWN and gone.upstream_id == stuck


# ---------------------------------------------------------------------------------------------
# Error classes
# ---------------------------------------------------------------------------------------------


async def test_not_sent_when_nothing_listens(env: Env) -> None:
    adapter = DashScopeAdapter(KEY, closed_port_url(), timeout=2)
    try:
        with pytest.raises(NotSent):
            await adapter.submit(env.t2v())
    finally:
        await adapter.aclose()


async def test_bad_key_is_a_channel_auth_error(env: Env) -> None:
    adapter = DashScopeAdapter("sk-wrong", env.api)
    try:
        with pytest.raises(Rejected) as caught:
            await adapter.submit(env.i2v())
    finally:
        await adapter.aclose()
    assert (caught.value.code, caught.value.status) == ("channel_auth", 401)
    assert "InvalidApiKey" in str(caught.value)


async def test_model_not_enabled_is_a_channel_error(media: Path, tmp_path: Path) -> None:
    async with environment(media, tmp_path, unpurchased_models=["wan2.7-t2v"]) as env:
        with pytest.raises(Rejected) as caught:
            await env.adapter.submit(env.t2v("wan2.7-t2v"))
        assert (caught.value.code, caught.value.status) == ("channel_unavailable", 403)
        assert "AccessDenied.Unpurchased" in str(caught.value)
        # Another model on the same account still works; the list can be changed at run time.
        await env.adapter.submit(env.t2v("wan2.6-t2v"))
        changed = await env.raw.post("/_control/faults", json={"unpurchased_models": []})
        assert changed.status_code == 200
        await env.adapter.submit(env.t2v("wan2.7-t2v"))
        bad = await env.raw.post("/_control/faults", json={"unpurchased_models": "wan2.7-t2v"})
        assert bad.status_code == 422


async def test_arrears_are_a_channel_credits_error(env: Env) -> None:
    armed = await env.raw.post("/_control/faults", json={"next_submit": "arrearage"})
    assert armed.json() == {"next_submit": "arrearage", "count": 1}
    with pytest.raises(Rejected) as caught:
        await env.adapter.submit(env.t2v())
    assert (caught.value.code, caught.value.status) == ("channel_credits", 400)
    assert "Arrearage" in str(caught.value)
    await env.adapter.submit(env.t2v())  # one submit only


async def test_unknown_model_is_a_channel_error(env: Env) -> None:
    with pytest.raises(Rejected) as caught:
        await env.adapter.submit(env.t2v("wan2.6-t2v-max"))
    assert (caught.value.code, caught.value.status) == ("channel_unavailable", 400)
    assert "Model not exist" in str(caught.value)


@pytest.mark.parametrize(
    ("request_", "code"),
    [
        (VideoRequest(kind="text-to-video", model="wan2.7-i2v", prompt="x"), "channel_config"),
        (
            VideoRequest(kind="image-to-video", model="wan2.6-t2v", image_url="https://x/a.png"),
            "channel_config",
        ),
        (VideoRequest(kind="text-to-video", model="qwen-vl-max", prompt="x"), "channel_config"),
        (VideoRequest(kind="text-to-video", model="wan2.7-t2v", prompt="  "), "invalid_request"),
        (VideoRequest(kind="image-to-video", model="wan2.7-i2v", prompt="x"), "invalid_request"),
    ],
    ids=["i2v-model-for-t2v", "t2v-model-for-i2v", "not-wan", "no-prompt", "no-image"],
)
async def test_refused_before_sending(env: Env, request_: VideoRequest, code: str) -> None:
    with pytest.raises(Rejected) as caught:
        await env.adapter.submit(request_)
    assert caught.value.code == code and caught.value.status is None
    assert await env.sent() == []


@pytest.mark.parametrize(
    ("request_of", "code"),
    [
        (lambda e: e.i2v(image="fault-invalid.png"), "InvalidParameter"),
        (lambda e: e.i2v(image="tiny.png"), "InvalidParameter"),
        (lambda e: e.i2v("wan2.6-i2v", image="alpha.png"), "InvalidParameter"),
        (lambda e: e.i2v(image="notes.png"), "InvalidParameter.DataInspection"),
        (lambda e: e.i2v("wan2.6-i2v", image="missing.png"), "InvalidParameter"),
        (lambda e: e.t2v("wan2.7-t2v", duration=20), "InvalidParameter"),
        (lambda e: e.t2v("wan2.6-t2v", duration=1), "InvalidParameter"),
    ],
    ids=["fault", "too-small", "transparent", "not-an-image", "404", "too-long", "too-short"],
)
async def test_invalid_input_is_rejected(env: Env, request_of: Any, code: str) -> None:
    with pytest.raises(Rejected) as caught:
        await env.adapter.submit(request_of(env))
    assert (caught.value.code, caught.value.status) == (code, 400)


async def test_throttled_with_retry_after(env: Env) -> None:
    with pytest.raises(Throttled) as caught:
        await env.adapter.submit(env.t2v(prompt="fault-throttle kite"))
    assert (caught.value.code, caught.value.status) == ("Throttling.RateQuota", 429)
    assert caught.value.retry_after == 1
    with pytest.raises(Throttled) as again:
        await env.adapter.submit(env.i2v(image="fault-throttle.png"))
    assert again.value.code == "Throttling.RateQuota"


async def test_internal_error_on_submit_is_throttled(env: Env) -> None:
    await env.raw.post("/_control/faults", json={"next_submit": "server_error", "count": 2})
    for request in (env.t2v(), env.i2v()):
        with pytest.raises(Throttled) as caught:
            await env.adapter.submit(request)
        assert (caught.value.code, caught.value.status) == ("InternalError", 500)


async def test_slow_submit_is_ambiguous(media: Path, tmp_path: Path) -> None:
    async with environment(media, tmp_path, slow_seconds=1.0) as env:
        impatient = DashScopeAdapter(KEY, env.api, timeout=0.3)
        try:
            with pytest.raises(Ambiguous):
                await impatient.submit(env.i2v(image="fault-slow.png"))
        finally:
            await impatient.aclose()
        created = [r for r in env.emulator.requests if r.get("task_id") and r["method"] == "POST"]
        assert len(created) == 1  # the task exists: a blind retry would bill twice


# ---------------------------------------------------------------------------------------------
# The emulator refuses what DashScope refuses
# ---------------------------------------------------------------------------------------------


async def test_requires_the_async_header(env: Env) -> None:
    answer = await env.raw.post(
        VIDEO_PATH, headers=AUTH, json={"model": "wan2.7-t2v", "input": {"prompt": "x"}}
    )
    assert answer.status_code == 403
    assert answer.json()["code"] == "AccessDenied"
    assert answer.json()["message"] == "current user api does not support synchronous calls"


IMG = "https://example.com/a.png"


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"input": {"prompt": "x"}}, 400, "BadRequest.EmptyModel"),
        ({"model": "wan2.6-t2v"}, 400, "BadRequest.EmptyInput"),
        ({"model": "wan2.2-animate-move", "input": {"prompt": "x"}}, 400, "InvalidParameter"),
        ({"model": "wan2.6-t2v", "input": {"negative_prompt": "x"}}, 400, "InvalidParameter"),
        (
            {"model": "wan2.6-t2v", "input": {"prompt": "x"}, "parameters": {"size": "1280x720"}},
            400,
            "InvalidParameter",
        ),
        (
            {"model": "wan2.6-t2v", "input": {"prompt": "x"}, "parameters": {"duration": 16}},
            400,
            "InvalidParameter",
        ),
        (
            {"model": "wan2.6-t2v", "input": {"prompt": "x"}, "parameters": {"watermark": "no"}},
            400,
            "InvalidParameter",
        ),
        (
            {"model": "wan2.6-t2v", "input": {"prompt": "x"}, "parameters": {"duration": 5.5}},
            400,
            "InvalidParameter",
        ),
        ({"model": "wan2.6-i2v", "input": {"prompt": "x"}}, 400, "InvalidParameter"),
        (
            {"model": "wan2.6-i2v", "input": {"img_url": IMG}, "parameters": {"resolution": "4K"}},
            400,
            "InvalidParameter",
        ),
        ({"model": "wan2.6-i2v", "input": {"img_url": "ftp://x/a.png"}}, 400, "InvalidURL"),
        (
            {"model": "wan2.7-t2v", "input": {"prompt": "x"}, "parameters": {"resolution": "480P"}},
            400,
            "InvalidParameter",
        ),
        (
            {"model": "wan2.7-t2v", "input": {"prompt": "x"}, "parameters": {"ratio": "21:9"}},
            400,
            "InvalidParameter",
        ),
        ({"model": "wan2.7-i2v", "input": {"img_url": IMG}}, 400, "InvalidParameter"),
        (
            {"model": "wan2.7-i2v", "input": {"media": [{"type": "last_frame", "url": IMG}]}},
            400,
            "InvalidParameter",
        ),
        (
            {
                "model": "wan2.7-i2v",
                "input": {
                    "media": [
                        {"type": "first_frame", "url": IMG},
                        {"type": "first_frame", "url": IMG},
                    ]
                },
            },
            400,
            "InvalidParameter",
        ),
        (
            {
                "model": "wan2.7-i2v",
                "input": {
                    "media": [
                        {"type": "first_frame", "url": IMG},
                        {"type": "first_clip", "url": "https://example.com/c.mp4"},
                    ]
                },
            },
            400,
            "InvalidParameter",
        ),
        (
            {"model": "wan2.7-i2v", "input": {"media": [{"type": "reference_image", "url": IMG}]}},
            400,
            "InvalidParameter",
        ),
        (
            {"model": "wan2.7-i2v", "input": {"media": [{"type": "first_clip", "url": IMG}]}},
            400,
            "InvalidParameter.UnsupportedFileFormat",
        ),
    ],
    ids=[
        "no-model",
        "no-input",
        "animate-model",
        "t2v-without-prompt",
        "size-form",
        "duration-range",
        "watermark-type",
        "duration-type",
        "i2v-without-img_url",
        "resolution",
        "img_url-scheme",
        "wan27-resolution",
        "wan27-ratio",
        "wan27-without-media",
        "last-frame-alone",
        "frame-twice",
        "frame-and-clip",
        "unknown-media-type",
        "clip-format",
    ],
)
async def test_rejects_bad_bodies(env: Env, body: dict[str, Any], status: int, code: str) -> None:
    answer = await env.raw.post(VIDEO_PATH, headers=ASYNC, json=body)
    assert answer.status_code == status, answer.text
    error = answer.json()
    assert error["code"] == code and error["request_id"] and error["message"]


async def test_accepts_a_data_uri_and_frame_pairs(env: Env, media: Path) -> None:
    data = base64.b64encode((media / "still.png").read_bytes()).decode()
    legacy = await env.raw.post(
        VIDEO_PATH,
        headers=ASYNC,
        json={"model": "wan2.6-i2v", "input": {"img_url": f"data:image/png;base64,{data}"}},
    )
    assert legacy.status_code == 200, legacy.text
    pair = await env.raw.post(
        VIDEO_PATH + "/",
        headers=ASYNC,
        json={
            "model": "wan2.7-i2v-2026-04-25",
            "input": {
                "media": [
                    {"type": "first_frame", "url": env.url("still.png")},
                    {"type": "last_frame", "url": env.url("portrait.jpg")},
                    {"type": "driving_audio", "url": "https://example.com/v.mp3"},
                ]
            },
        },
    )
    assert pair.status_code == 200, pair.text
    done = await env.finished(pair.json()["output"]["task_id"])
    assert done.raw["usage"]["SR"] == 1080  # the wan2.7 default tier
    assert done.billed_seconds == 5.0  # the default length


# ---------------------------------------------------------------------------------------------
# Shapes the emulator does not produce
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("usage", "billed"),
    [
        ({"duration": "5.0", "SR": "720"}, 5.0),
        ({"duration": 10, "video_duration": 0, "video_ratio": ""}, 10.0),  # the SDK's shape
        ({"video_duration": "4"}, 4.0),
        ({"video_duration": 5, "video_count": 1, "video_ratio": "832*480"}, 5.0),
        ({"duration": "n/a"}, None),
        ({"duration": True}, None),
        ({"duration": 0}, 0.0),
        ("not-an-object", None),
    ],
)
async def test_billed_seconds_read_defensively(usage: Any, billed: float | None) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            200,
            json={
                "output": {
                    "task_id": "t",
                    "task_status": "SUCCEEDED",
                    "video_url": "https://oss/x.mp4",
                },
                "usage": usage,
            },
        )

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
        adapter = DashScopeAdapter(KEY, "https://dashscope.example", client=client)
        state = await adapter.fetch("t")
    assert state.billed_seconds == billed
    assert state.result_url == "https://oss/x.mp4"


@pytest.mark.parametrize(
    ("status", "envelope", "error", "code"),
    [
        (404, None, Rejected, "channel_unavailable"),
        (
            403,
            {"code": "AccessDenied", "message": "Access denied."},
            Rejected,
            "channel_unavailable",
        ),
        (
            400,
            {"code": "IPInfringementSuspect", "message": "ip"},
            Rejected,
            "IPInfringementSuspect",
        ),
        (400, {"code": "DataInspectionFailed", "message": "bad"}, Rejected, "DataInspectionFailed"),
        (429, {"code": "Throttling.AllocationQuota", "message": "quota"}, Throttled, None),
        (503, None, Throttled, None),
        (502, None, Ambiguous, None),
    ],
)
async def test_submit_answers_the_emulator_does_not_give(
    status: int, envelope: dict[str, str] | None, error: type[Exception], code: str | None
) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.path == VIDEO_PATH
        if envelope is None:
            return httpx.Response(status, text="<html>gateway</html>")
        return httpx.Response(status, json={"request_id": "r", **envelope})

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
        adapter = DashScopeAdapter(KEY, "https://dashscope.example", client=client)
        with pytest.raises(error) as caught:
            await adapter.submit(VideoRequest(kind="text-to-video", prompt="a kite"))
    if code is not None:
        assert getattr(caught.value, "code", None) == code


def test_bodies_without_a_server() -> None:
    # No model named: the wan2.7 default; image_urls wins over image_url; extra objects merge.
    body = build_video_body(
        VideoRequest(
            kind="image-to-video",
            image_url="https://x/ignored.png",
            image_urls=("https://x/a.png", "https://x/b.png"),
            quality="hd",
            watermark=True,
            extra={"input": {"negative_prompt": "blur"}, "audio": False},
        )
    )
    assert body == {
        "model": "wan2.7-i2v",
        "input": {
            "media": [{"type": "first_frame", "url": "https://x/a.png"}],
            "negative_prompt": "blur",
        },
        "parameters": {"resolution": "1080P", "duration": 5, "watermark": True, "audio": False},
    }
    with pytest.raises(ValueError):
        build_video_body(VideoRequest(kind="animate-move", image_url="a", video_url="b"))
