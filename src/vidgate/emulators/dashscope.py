"""A local model of DashScope's async video APIs, for work without internet: Wan2.2-Animate
(`image2video/video-synthesis`) and Wan text-to-video / image-to-video (`video-generation/
video-synthesis`, the legacy wan2.1–2.6 dialect and the wan2.7 one).

It speaks the vendor's paths, headers, error envelope and task state machine, fetches and checks
the input media the way the vendor does, and renders a real (EMULATED-marked) MP4 as the result.
Tasks live in memory; time is read from an injectable clock so tests can skip ahead, and the
state is computed from elapsed time whenever a task is read.

Faults: `POST /_control/faults` arms one for the next submit(s) (and can set which models the
account has not enabled: `unpurchased_models`); a marker in an input URL's file name or in the
prompt (`fault-moderation`, `fault-invalid`, `fault-size`, `fault-arrearage`, `fault-throttle`,
`fault-5xx`, `fault-stuck`, `fault-slow`) selects one per request.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import json
import math
import random
import re
import secrets
import shutil
import time
import uuid
from collections import deque
from collections.abc import Callable, Coroutine, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Literal
from urllib.parse import unquote, urlsplit

import av
import httpx
from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, JSONResponse, Response
from PIL import Image, UnidentifiedImageError

from vidgate.emulators.background import Background

from .render import render_animation

__all__ = ["PREFIX", "VIDEO_MODELS", "VIDEO_PATH", "DashScopeEmulator", "Fault"]

PREFIX = "/_emulator/dashscope"
SUBMIT_PATH = "/api/v1/services/aigc/image2video/video-synthesis"
VIDEO_PATH = "/api/v1/services/aigc/video-generation/video-synthesis"

# invalid_input: a synchronous 400 InvalidParameter; task_invalid: the task is accepted and ends
# FAILED with InvalidParameter "The size is not match …" (the vendor's documented failure);
# arrearage: 400 Arrearage (the account is overdue); unavailable: 503 before taking the task.
Fault = Literal[
    "moderation",
    "invalid_input",
    "task_invalid",
    "arrearage",
    "throttle",
    "server_error",
    "unavailable",
    "stuck",
    "slow",
]
_FAULTS: frozenset[str] = frozenset(
    {
        "moderation",
        "invalid_input",
        "task_invalid",
        "arrearage",
        "throttle",
        "server_error",
        "unavailable",
        "stuck",
        "slow",
    }
)
_MARKERS: dict[str, Fault] = {
    "fault-moderation": "moderation",
    "fault-invalid": "invalid_input",
    "fault-size": "task_invalid",
    "fault-arrearage": "arrearage",
    "fault-throttle": "throttle",
    "fault-5xx": "server_error",
    "fault-503": "unavailable",
    "fault-stuck": "stuck",
    "fault-slow": "slow",
}

MODELS = frozenset({"wan2.2-animate-move", "wan2.2-animate-mix"})
FPS = {"wan-std": 15, "wan-pro": 25}

# Input limits from DashScope's documentation (docs/vendors.md §1.3).
IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp"})
VIDEO_EXTENSIONS = frozenset({".mp4", ".avi", ".mov"})
IMAGE_MAX_BYTES = 5 * 1024 * 1024
VIDEO_MAX_BYTES = 200 * 1024 * 1024
IMAGE_SIDE = (200, 4096)
VIDEO_SIDE = (200, 2048)
MAX_ASPECT = 3.0
VIDEO_SECONDS = (2.0, 30.0)

_CHINA = timezone(timedelta(hours=8))  # DashScope's timestamps carry no zone; they read as UTC+8

# -- text-to-video / image-to-video (docs/vendors.md §1.4–1.6) -----------------------------------

_SIZE_MISMATCH = ("InvalidParameter", "The size is not match the requirement.")
_UNPURCHASED = "Access to model denied. Please make sure you are eligible for using the model."


@dataclass(frozen=True)
class _VideoModel:
    """What one Wan video model accepts."""

    kind: Literal["t2v", "i2v"]
    dialect: Literal["legacy", "wan2.7"]
    tiers: tuple[str, ...]  # resolution tiers it renders
    default_tier: str
    durations: frozenset[int]
    prompt_limit: int  # longer prompts are cut, not refused
    usage: Literal["wan2.7", "wan2.6", "older"]  # the shape of its `usage`
    audio_switch: bool = False  # `parameters.audio` (wan2.6-i2v-flash only)
    shot_type: bool = False  # `parameters.shot_type` (wan2.6 only)


_ANY_2_15 = frozenset(range(2, 16))
_FIVE = frozenset({5})
_HD = ("720P", "1080P")


def _wan27(kind: Literal["t2v", "i2v"]) -> _VideoModel:
    return _VideoModel(kind, "wan2.7", _HD, "1080P", _ANY_2_15, 5000, "wan2.7")


def _wan26(kind: Literal["t2v", "i2v"], *, flash: bool = False) -> _VideoModel:
    return _VideoModel(
        kind, "legacy", _HD, "1080P", _ANY_2_15, 1500, "wan2.6", audio_switch=flash, shot_type=True
    )


VIDEO_MODELS: dict[str, _VideoModel] = {
    "wan2.7-t2v": _wan27("t2v"),
    "wan2.7-t2v-2026-04-25": _wan27("t2v"),
    "wan2.7-i2v": _wan27("i2v"),
    "wan2.7-i2v-2026-04-25": _wan27("i2v"),
    "wan2.6-t2v": _wan26("t2v"),
    "wan2.6-i2v": _wan26("i2v"),
    "wan2.6-i2v-flash": _wan26("i2v", flash=True),
    "wan2.5-t2v-preview": _VideoModel(
        "t2v", "legacy", ("480P", *_HD), "1080P", frozenset({5, 10}), 1500, "older"
    ),
    "wan2.5-i2v-preview": _VideoModel(
        "i2v", "legacy", ("480P", *_HD), "1080P", frozenset({5, 10}), 1500, "older"
    ),
    "wan2.2-t2v-plus": _VideoModel(
        "t2v", "legacy", ("480P", "1080P"), "1080P", _FIVE, 800, "older"
    ),
    "wan2.2-i2v-plus": _VideoModel(
        "i2v", "legacy", ("480P", "1080P"), "1080P", _FIVE, 800, "older"
    ),
    "wan2.2-i2v-flash": _VideoModel("i2v", "legacy", ("480P", *_HD), "720P", _FIVE, 800, "older"),
    "wanx2.1-t2v-turbo": _VideoModel(
        "t2v", "legacy", ("480P", "720P"), "720P", _FIVE, 800, "older"
    ),
    "wanx2.1-t2v-plus": _VideoModel("t2v", "legacy", ("720P",), "720P", _FIVE, 800, "older"),
    "wanx2.1-i2v-turbo": _VideoModel(
        "i2v", "legacy", ("480P", "720P"), "720P", frozenset({3, 4, 5}), 800, "older"
    ),
    "wanx2.1-i2v-plus": _VideoModel("i2v", "legacy", ("720P",), "720P", _FIVE, 800, "older"),
}

# Legacy text-to-video: the exact "W*H" sizes of each tier.
TIER_SIZES: dict[str, tuple[str, ...]] = {
    "480P": ("832*480", "480*832", "624*624"),
    "720P": ("1280*720", "720*1280", "960*960", "1088*832", "832*1088"),
    "1080P": ("1920*1080", "1080*1920", "1440*1440", "1632*1248", "1248*1632"),
}
# wan2.7 text-to-video: the output size of each tier and ratio.
RATIO_SIZES: dict[str, dict[str, tuple[int, int]]] = {
    "720P": {
        "16:9": (1280, 720),
        "9:16": (720, 1280),
        "1:1": (960, 960),
        "4:3": (1104, 832),
        "3:4": (832, 1104),
    },
    "1080P": {
        "16:9": (1920, 1080),
        "9:16": (1080, 1920),
        "1:1": (1440, 1440),
        "4:3": (1648, 1248),
        "3:4": (1248, 1648),
    },
}
_TIER_PIXELS = {"480P": 832 * 480, "720P": 1280 * 720, "1080P": 1920 * 1080}
_SIZE_FORM = re.compile(r"^([1-9][0-9]{1,4})\*([1-9][0-9]{1,4})$")

# wan2.7 image-to-video: media types and the combinations it takes.
MEDIA_TYPES = frozenset({"first_frame", "last_frame", "driving_audio", "first_clip"})
MEDIA_COMBINATIONS: frozenset[frozenset[str]] = frozenset(
    frozenset(combo)
    for combo in (
        {"first_frame"},
        {"first_frame", "driving_audio"},
        {"first_frame", "last_frame"},
        {"first_frame", "last_frame", "driving_audio"},
        {"first_clip"},
        {"first_clip", "last_frame"},
    )
)
FRAME_SIDE = (240, 8000)
FRAME_MAX_BYTES = {"legacy": 10 * 1024 * 1024, "wan2.7": 20 * 1024 * 1024}
FRAME_MAX_ASPECT = 8.0  # wan2.7; the legacy models state no aspect limit
CLIP_SIDE = (240, 4096)
CLIP_SECONDS = (2.0, 10.0)
CLIP_MAX_BYTES = 100 * 1024 * 1024
CLIP_EXTENSIONS = frozenset({".mp4", ".mov"})
SEED_MAX = 2147483647
VIDEO_FPS = 16  # the emulator's choice, kept low so renders stay quick


class _ApiError(Exception):
    """An answer in DashScope's synchronous error envelope."""

    def __init__(
        self, status: int, code: str, message: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}


@dataclass
class _Task:
    task_id: str
    model: str
    mode: str
    created: float  # emulator clock
    created_wall: float  # for the vendor-style timestamps only
    fault: Fault | None
    fps: int
    width: int
    height: int
    seconds: float  # intended output length
    image_path: Path | None
    failure: tuple[str, str] | None = None  # (code, message) once the task will end FAILED
    canceled_at: float | None = None
    render: asyncio.Task[float] | None = None
    result_file: str | None = None
    rendered_seconds: float | None = None
    rendered_at: float | None = None
    # text- and image-to-video only
    video: bool = False  # answers with output.video_url, orig_prompt and this usage
    usage: dict[str, Any] | None = None
    prompt: str | None = None
    actual_prompt: str | None = None
    caption: str | None = None


@dataclass
class _VideoPlan:
    """A checked text- or image-to-video request, before its media are fetched."""

    model: str
    spec: _VideoModel
    prompt: str | None
    duration: int
    tier: str
    size: tuple[int, int] | None  # t2v: the output size asked for
    size_text: str | None  # legacy t2v: `parameters.size` as sent
    size_mismatch: bool  # legacy t2v: a well-formed size the model does not render
    ratio: str | None  # wan2.7 t2v
    media: list[tuple[str, str]]  # i2v: (type, url); legacy img_url is ("first_frame", url)
    prompt_extend: bool
    audio: bool | None  # wan2.6-i2v-flash


@dataclass
class _Result:
    path: Path
    expires_at: float  # emulator clock


@dataclass
class _Armed:
    fault: Fault
    remaining: int
    ratio: float | None = None  # each submit gets the fault with this chance, until disarmed


@dataclass
class _Log:
    entries: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=1000))


def _fmt(wall: float) -> str:
    return datetime.fromtimestamp(wall, _CHINA).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def _request_id() -> str:
    return str(uuid.uuid4())


def _envelope(error: _ApiError) -> JSONResponse:
    return JSONResponse(
        {"request_id": _request_id(), "code": error.code, "message": error.message},
        status_code=error.status,
        headers=error.headers,
    )


def _file_name(url: str) -> str:
    return unquote(urlsplit(url).path.rsplit("/", 1)[-1])


def _even(n: float) -> int:
    return max(2, round(n / 2) * 2)


class DashScopeEmulator:
    """DashScope's Wan2.2-Animate and Wan text/image-to-video endpoints under `PREFIX`; mount
    `router()` in a FastAPI app.

    Point `DashScopeAdapter(base_url=<app>/_emulator/dashscope)` at it. `public_base_url` is the
    app's external root, used to build absolute result URLs.
    """

    def __init__(
        self,
        *,
        api_key: str,
        work_dir: Path,
        public_base_url: str,
        queue_seconds: float = 1.0,
        run_seconds: float = 2.0,
        task_ttl_seconds: float = 86400,
        result_ttl_seconds: float = 86400,
        fetch: httpx.AsyncClient | None = None,
        slow_seconds: float = 30.0,
        render_height: int = 360,
        legacy_video_url: bool = False,
        throttle_retry_after: int = 1,
        fetch_timeout: float = 30.0,
        unpurchased_models: Iterable[str] = (),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.api_key = api_key
        self.work_dir = work_dir
        self.public_base_url = public_base_url.rstrip("/")
        self.queue_seconds = queue_seconds
        self.run_seconds = run_seconds
        self.task_ttl_seconds = task_ttl_seconds
        self.result_ttl_seconds = result_ttl_seconds
        self.slow_seconds = slow_seconds
        self.render_height = render_height
        # Older Wan models answered with output.video_url; clients should read both.
        self.legacy_video_url = legacy_video_url
        self.throttle_retry_after = throttle_retry_after
        # Models this account has not enabled: a submit naming one answers 403 Unpurchased.
        self.unpurchased_models: set[str] = set(unpurchased_models)
        self.clock = clock
        self._fetch = fetch
        self._owns_fetch = fetch is None
        self._fetch_timeout = fetch_timeout
        self._tasks: dict[str, _Task] = {}
        self._results: dict[str, _Result] = {}
        self._armed: _Armed | None = None
        self._chance = random.Random()  # for faults armed with a ratio
        self._log = _Log()
        self._background = Background()
        # Rendering is CPU-bound and runs in threads; a few at a time keeps the server responsive.
        self._render_slots = asyncio.Semaphore(2)
        self._closing = asyncio.Event()

    # -- test and control hooks -----------------------------------------------------------------

    def arm(self, fault: Fault | None, count: int = 1) -> None:
        """Make the next `count` submits behave as `fault` (None disarms)."""
        self._armed = _Armed(fault, count) if fault is not None and count > 0 else None

    @property
    def requests(self) -> list[dict[str, Any]]:
        return list(self._log.entries)

    async def wait_rendered(self, task_id: str) -> None:
        """Block until the task's result file is written (or its render failed)."""
        task = self._tasks[task_id]
        if task.render is not None:
            with contextlib.suppress(Exception):
                await asyncio.shield(task.render)

    async def aclose(self) -> None:
        """Stop slow responses and renders, close the input fetcher."""
        self._closing.set()
        await self._background.cancel()
        if self._owns_fetch and self._fetch is not None:
            await self._fetch.aclose()

    # -- routes ---------------------------------------------------------------------------------

    def router(self) -> APIRouter:
        router = APIRouter(prefix=PREFIX, tags=["emulators"], include_in_schema=False)
        router.add_api_route(SUBMIT_PATH, self._submit, methods=["POST"])
        router.add_api_route(SUBMIT_PATH + "/", self._submit, methods=["POST"])
        router.add_api_route(VIDEO_PATH, self._submit_video, methods=["POST"])
        router.add_api_route(VIDEO_PATH + "/", self._submit_video, methods=["POST"])
        router.add_api_route("/api/v1/tasks/{task_id}", self._query, methods=["GET"])
        router.add_api_route("/api/v1/tasks/{task_id}/cancel", self._cancel, methods=["POST"])
        router.add_api_route("/results/{file_name}", self._result, methods=["GET", "HEAD"])
        router.add_api_route("/_control/faults", self._control_faults, methods=["POST"])
        router.add_api_route("/_control/requests", self._control_requests, methods=["GET"])
        return router

    async def _submit(self, request: Request) -> Response:
        return await self._accept(request, self._create)

    async def _submit_video(self, request: Request) -> Response:
        return await self._accept(request, self._create_video)

    async def _accept(
        self,
        request: Request,
        create: Callable[[Request, bytes], Coroutine[Any, Any, tuple[_Task, float]]],
    ) -> Response:
        raw = await request.body()
        entry: dict[str, Any] = {
            "at": time.time(),
            "method": "POST",
            "path": request.url.path,
            "headers": {
                k: v for k, v in request.headers.items() if k.lower().startswith("x-dashscope")
            },
            "body": raw.decode("utf-8", "replace")[:4000],
        }
        self._log.entries.append(entry)
        try:
            task, delay = await create(request, raw)
        except _ApiError as error:
            entry.update(status=error.status, code=error.code)
            return _envelope(error)
        entry.update(status=200, task_id=task.task_id)
        if delay:
            # The task exists already; only the answer is late, as when a gateway stalls.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._closing.wait(), timeout=delay)
        return JSONResponse(
            {
                "request_id": _request_id(),
                "output": {"task_id": task.task_id, "task_status": "PENDING"},
            }
        )

    async def _query(self, task_id: str, request: Request) -> Response:
        self._log.entries.append(
            {"at": time.time(), "method": "GET", "path": request.url.path, "task_id": task_id}
        )
        try:
            self._check_key(request)
        except _ApiError as error:
            return _envelope(error)
        return JSONResponse({"request_id": _request_id(), **self._view(task_id)})

    async def _cancel(self, task_id: str, request: Request) -> Response:
        self._log.entries.append(
            {"at": time.time(), "method": "POST", "path": request.url.path, "task_id": task_id}
        )
        try:
            self._check_key(request)
            task = self._live(task_id)
            if task is None or self._status(task) != "PENDING":
                raise _ApiError(
                    400,
                    "UnsupportedOperation",
                    "Failed to cancel the task, please confirm if the task is in PENDING status.",
                )
        except _ApiError as error:
            return _envelope(error)
        task.canceled_at = self.clock()
        if task.render is not None:
            task.render.cancel()
        return JSONResponse({"request_id": _request_id()})

    async def _result(self, file_name: str) -> Response:
        result = self._results.get(file_name)
        if result is not None and self.clock() >= result.expires_at:
            return _oss_error(403, "AccessDenied", "Request has expired.")
        if result is None or not result.path.is_file():
            return _oss_error(404, "NoSuchKey", "The specified key does not exist.")
        return FileResponse(result.path, media_type="video/mp4")

    async def _control_faults(self, request: Request) -> Response:
        try:
            body = await request.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            return JSONResponse({"detail": "expected a JSON object"}, status_code=422)
        fault = body.get("next_submit")
        count = body.get("count", 1)
        ratio = body.get("ratio")
        if ratio is not None and (
            isinstance(ratio, bool) or not isinstance(ratio, int | float) or not 0 <= ratio <= 1
        ):
            return JSONResponse({"detail": "ratio must be a number from 0 to 1"}, status_code=422)
        if (fault is not None and fault not in _FAULTS) or not isinstance(count, int):
            return JSONResponse(
                {"detail": f"next_submit must be one of {sorted(_FAULTS)} or null"},
                status_code=422,
            )
        unpurchased = body.get("unpurchased_models")
        if unpurchased is not None and (
            not isinstance(unpurchased, list) or not all(isinstance(m, str) for m in unpurchased)
        ):
            return JSONResponse(
                {"detail": "unpurchased_models must be a list of model names"}, status_code=422
            )
        if "slow_seconds" in body:
            self.slow_seconds = float(body["slow_seconds"])
        if unpurchased is not None:
            self.unpurchased_models = set(unpurchased)
        self.arm(fault, count)
        if self._armed is not None and ratio is not None:
            self._armed.ratio = float(ratio)
        armed = self._armed
        answer: dict[str, Any] = {
            "next_submit": armed.fault if armed else None,
            "count": armed.remaining if armed else 0,
        }
        if armed is not None and armed.ratio is not None:
            answer["ratio"] = armed.ratio
        return JSONResponse(answer)

    async def _control_requests(self) -> Response:
        return JSONResponse({"requests": self.requests})

    # -- submit ---------------------------------------------------------------------------------

    def _check_key(self, request: Request) -> None:
        auth = request.headers.get("authorization", "")
        if not auth:
            raise _ApiError(401, "InvalidApiKey", "No API-key provided.")
        scheme, _, key = auth.partition(" ")
        if scheme.lower() != "bearer" or not secrets.compare_digest(
            key.strip().encode(), self.api_key.encode()
        ):
            raise _ApiError(401, "InvalidApiKey", "Invalid API-key provided.")

    def _take_fault(self, body: dict[str, Any]) -> Fault | None:
        armed = self._armed
        if armed is not None and armed.ratio is not None:
            if self._chance.random() < armed.ratio:
                return armed.fault
        elif armed is not None:
            armed.remaining -= 1
            if armed.remaining <= 0:
                self._armed = None
            return armed.fault
        inputs = body.get("input")
        if isinstance(inputs, dict):
            # Input file names (animate's two URLs, img_url, media[].url), then the prompt.
            names: list[str] = []
            for key in ("image_url", "video_url", "img_url"):
                url = inputs.get(key)
                if isinstance(url, str):
                    names.append(_file_name(url))
            media = inputs.get("media")
            if isinstance(media, list):
                for item in media:
                    if isinstance(item, dict) and isinstance(item.get("url"), str):
                        names.append(_file_name(item["url"]))
            if isinstance(inputs.get("prompt"), str):
                names.append(inputs["prompt"])
            for name in names:
                for marker, fault in _MARKERS.items():
                    if marker in name:
                        return fault
        return None

    def _precheck(self, request: Request, raw: bytes) -> tuple[dict[str, Any], Fault | None]:
        """The checks every submit path makes first, in the vendor's order; returns the parsed
        body and the fault this request carries (answering the ones that refuse it at once)."""
        self._check_key(request)
        if request.headers.get("x-dashscope-async", "").lower() != "enable":
            # DashScope's HTTP API is async-only for video and says so with a 403.
            raise _ApiError(
                403, "AccessDenied", "current user api does not support synchronous calls"
            )
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise _ApiError(400, "InvalidParameter", "The request body is not a valid JSON object.")
        fault = self._take_fault(body)
        if fault == "throttle":
            raise _ApiError(
                429,
                "Throttling.RateQuota",
                "Requests rate limit exceeded, please try again later.",
                {"Retry-After": str(self.throttle_retry_after)},
            )
        if fault == "server_error":
            raise _ApiError(
                500,
                "InternalError",
                "An internal error has occured, please try again later or contact service support.",
            )
        if fault == "unavailable":
            raise _ApiError(503, "ServiceUnavailable", "The service is temporarily unavailable.")
        if fault == "arrearage":
            raise _ApiError(
                400,
                "Arrearage",
                "Access denied, please make sure your account is in good standing.",
            )
        return body, fault

    async def _create(self, request: Request, raw: bytes) -> tuple[_Task, float]:
        """Validate like the vendor, fetch the inputs, register the task; returns it and a delay."""
        body, fault = self._precheck(request, raw)
        model, mode, image_url, video_url = _validate_body(body)
        if model in self.unpurchased_models:
            raise _ApiError(403, "AccessDenied.Unpurchased", _UNPURCHASED)
        if fault == "invalid_input":
            raise _ApiError(400, "InvalidParameter", "The size is not match the requirement.")

        task_id = str(uuid.uuid4())
        folder = self.work_dir / "inputs" / task_id
        try:
            image_path = await self._download(image_url, folder, "image", IMAGE_MAX_BYTES)
            # Decoding is blocking work; keep the event loop serving other requests meanwhile.
            await asyncio.to_thread(_check_image, image_path)
            video_path = await self._download(video_url, folder, "video", VIDEO_MAX_BYTES)
            width, height, seconds = await asyncio.to_thread(_probe_video, video_path)
            await asyncio.to_thread(video_path.unlink)
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise

        short = self.render_height
        if width >= height:
            out_w, out_h = _even(short * width / height), _even(short)
        else:
            out_w, out_h = _even(short), _even(short * height / width)
        task = _Task(
            task_id=task_id,
            model=model,
            mode=mode,
            created=self.clock(),
            created_wall=time.time(),
            fault=fault,
            fps=FPS[mode],
            width=out_w,
            height=out_h,
            seconds=min(seconds, VIDEO_SECONDS[1]),
            image_path=image_path,
        )
        lo, hi = VIDEO_SECONDS
        if fault == "moderation":
            task.failure = ("DataInspectionFailed", "Input data may contain inappropriate content.")
        elif fault == "task_invalid":
            task.failure = _SIZE_MISMATCH
        elif not lo <= seconds <= hi:
            # The vendor checks the reference video's length while running, not at submit.
            task.failure = (
                "InvalidParameter",
                f"The duration of input video must be between {lo:g}s and {hi:g}s, "
                f"got {seconds:.2f}s.",
            )
        self._sweep()
        self._tasks[task_id] = task
        if task.failure is None and fault != "stuck":
            task.render = self._background.spawn(self._render(task))
        else:
            shutil.rmtree(folder, ignore_errors=True)
            task.image_path = None
        return task, self.slow_seconds if fault == "slow" else 0.0

    async def _download(self, url: str, folder: Path, kind: str, limit: int) -> Path:
        """Stream the input to disk as DashScope's fetcher would, within the size limit."""
        suffix = Path(_file_name(url)).suffix.lower()
        target = folder / f"{kind}{suffix}"
        await asyncio.to_thread(folder.mkdir, parents=True, exist_ok=True)
        client = self._client()
        failed = _ApiError(
            400,
            "InvalidParameter.DataInspection",
            f"Download the media resource timed out during the data inspection process. ({kind})",
        )
        try:
            async with client.stream("GET", url, timeout=self._fetch_timeout) as response:
                if response.status_code != 200:
                    raise _ApiError(
                        400,
                        "InvalidParameter",
                        f"The {kind} url can not be accessed: HTTP {response.status_code}.",
                    )
                size = 0
                with target.open("wb") as out:
                    async for chunk in response.aiter_bytes():
                        size += len(chunk)
                        if size > limit:
                            raise _ApiError(
                                400,
                                "InvalidParameter",
                                f"The {kind} file size exceeds the limit of "
                                f"{limit // (1024 * 1024)}MB.",
                            )
                        out.write(chunk)
        except httpx.TimeoutException as exc:
            raise failed from exc
        except httpx.HTTPError as exc:
            raise _ApiError(
                400, "InvalidParameter", f"The {kind} url can not be accessed: {exc!r}."
            ) from exc
        return target

    def _client(self) -> httpx.AsyncClient:
        if self._fetch is None:
            self._fetch = httpx.AsyncClient(follow_redirects=True)
        return self._fetch

    # -- text-to-video / image-to-video ---------------------------------------------------------

    async def _create_video(self, request: Request, raw: bytes) -> tuple[_Task, float]:
        """Text- or image-to-video: validate like the vendor, fetch and check the image and clip
        inputs, register the task; returns it and a delay."""
        body, fault = self._precheck(request, raw)
        model, spec = _video_model(body)
        if model in self.unpurchased_models:
            raise _ApiError(403, "AccessDenied.Unpurchased", _UNPURCHASED)
        plan = _validate_video(model, spec, body)
        if fault == "invalid_input":
            raise _ApiError(400, "InvalidParameter", "The size is not match the requirement.")

        task_id = str(uuid.uuid4())
        folder = self.work_dir / "inputs" / task_id
        image_path: Path | None = None
        source: tuple[int, int] | None = None  # the input's size: image-to-video follows it
        clip_seconds = 0.0
        try:
            for kind, url in plan.media:
                if kind in ("first_frame", "last_frame"):
                    path = await self._fetch_frame(url, folder, kind, FRAME_MAX_BYTES[spec.dialect])
                    size = await asyncio.to_thread(_check_frame, path, spec.dialect)
                    if kind == "first_frame":
                        image_path, source = path, size
                elif kind == "first_clip":
                    path = await self._download(url, folder, "video", CLIP_MAX_BYTES)
                    width, height, clip_seconds = await asyncio.to_thread(_probe_clip, path)
                    await asyncio.to_thread(path.unlink)
                    if clip_seconds >= plan.duration:
                        # Emulator's choice: the vendor documents no answer for this case.
                        raise _ApiError(
                            400,
                            "InvalidParameter",
                            f"parameters.duration ({plan.duration}s) must be longer than the "
                            f"input clip ({clip_seconds:.2f}s).",
                        )
                    if source is None:
                        source = (width, height)
                # driving_audio is not fetched: the emulator renders no sound.
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        if image_path is None:
            shutil.rmtree(folder, ignore_errors=True)

        if plan.size is not None:
            out_w, out_h = plan.size
        else:
            assert source is not None  # image-to-video always has a first frame or clip
            out_w, out_h = _follow_aspect(*source, plan.tier)
        short = min(self.render_height, out_w, out_h)
        if out_w >= out_h:
            render_w, render_h = _even(short * out_w / out_h), _even(short)
        else:
            render_w, render_h = _even(short), _even(short * out_h / out_w)
        rewritten = plan.prompt is not None and plan.prompt_extend and spec.usage != "wan2.6"
        task = _Task(
            task_id=task_id,
            model=model,
            mode=plan.tier,
            created=self.clock(),
            created_wall=time.time(),
            fault=fault,
            fps=VIDEO_FPS,
            width=render_w,
            height=render_h,
            seconds=float(plan.duration),
            image_path=image_path,
            video=True,
            usage=_video_usage(plan, out_w, out_h, clip_seconds),
            prompt=plan.prompt,
            # wan2.6 never returns the rewritten prompt; the others do when prompt_extend is on.
            actual_prompt=f"EMULATED rewrite: {plan.prompt}" if rewritten else None,
            caption=f"{model} {out_w}*{out_h} {plan.duration}s",
        )
        if fault == "moderation":
            task.failure = (
                "DataInspectionFailed",
                "Input or output data may contain inappropriate content.",
            )
        elif fault == "task_invalid" or plan.size_mismatch:
            # The vendor's documented failed task: accepted, then FAILED in the task.
            task.failure = _SIZE_MISMATCH
        self._sweep()
        self._tasks[task_id] = task
        if task.failure is None and fault != "stuck":
            task.render = self._background.spawn(self._render(task))
        else:
            shutil.rmtree(folder, ignore_errors=True)
            task.image_path = None
        return task, self.slow_seconds if fault == "slow" else 0.0

    async def _fetch_frame(self, url: str, folder: Path, kind: str, limit: int) -> Path:
        """An image input: a `data:` URI decoded, or a URL fetched as the vendor would."""
        if url.startswith("data:"):
            return await asyncio.to_thread(_decode_data_uri, url, folder / kind, limit)
        return await self._download(url, folder, kind, limit)

    # -- lifecycle ------------------------------------------------------------------------------

    async def _render(self, task: _Task) -> float:
        name = f"{secrets.token_urlsafe(24)}.mp4"
        out = self.work_dir / "results" / name
        try:
            async with self._render_slots:
                seconds = await asyncio.to_thread(
                    render_animation,
                    task.image_path,
                    out,
                    seconds=task.seconds,
                    fps=task.fps,
                    width=task.width,
                    height=task.height,
                    caption=task.caption or f"{task.model} {task.mode}",
                )
        finally:
            if task.image_path is not None:
                shutil.rmtree(task.image_path.parent, ignore_errors=True)
        task.result_file = name
        task.rendered_seconds = round(seconds, 2)
        task.rendered_at = self.clock()
        return seconds

    def _sweep(self) -> None:
        """Forget aged-out tasks and delete expired result files, so a long run stays small."""
        now = self.clock()
        for task_id in [
            k for k, t in self._tasks.items() if now - t.created >= self.task_ttl_seconds
        ]:
            del self._tasks[task_id]
        for result in self._results.values():
            if now >= result.expires_at:
                result.path.unlink(missing_ok=True)  # the record stays: the link keeps saying 403

    def _live(self, task_id: str) -> _Task | None:
        """The task, unless it never existed or has aged out (then it is forgotten)."""
        task = self._tasks.get(task_id)
        if task is not None and self.clock() - task.created >= self.task_ttl_seconds:
            del self._tasks[task_id]
            return None
        return task

    def _status(self, task: _Task) -> str:
        if task.canceled_at is not None:
            return "CANCELED"
        elapsed = self.clock() - task.created
        if elapsed < self.queue_seconds:
            return "PENDING"
        if task.fault == "stuck" or elapsed < self.queue_seconds + self.run_seconds:
            return "RUNNING"
        if task.failure is not None:
            return "FAILED"
        render = task.render
        if render is None or not render.done():
            return "RUNNING"  # the model is "still working" until the file exists
        if render.cancelled() or render.exception() is not None:
            task.failure = ("InternalError.Algo", "An internal error occurred in the algorithm.")
            return "FAILED"
        return "SUCCEEDED"

    def _view(self, task_id: str) -> dict[str, Any]:
        task = self._live(task_id)
        if task is None:
            return {"output": {"task_id": task_id, "task_status": "UNKNOWN"}}
        status = self._status(task)
        output: dict[str, Any] = {
            "task_id": task.task_id,
            "task_status": status,
            "submit_time": _fmt(task.created_wall),
        }
        if status not in ("PENDING", "CANCELED"):
            output["scheduled_time"] = _fmt(task.created_wall + self.queue_seconds)
        view: dict[str, Any] = {"output": output}
        if status == "FAILED" and task.failure is not None:
            done = task.created + self.queue_seconds + self.run_seconds
            output["end_time"] = _fmt(task.created_wall + (done - task.created))
            output["code"], output["message"] = task.failure
        elif status == "SUCCEEDED":
            assert task.result_file is not None and task.rendered_seconds is not None
            finished = max(
                task.created + self.queue_seconds + self.run_seconds, task.rendered_at or 0
            )
            output["end_time"] = _fmt(task.created_wall + (finished - task.created))
            if task.result_file not in self._results:
                # OSS links are signed at completion and die result_ttl_seconds later.
                self._results[task.result_file] = _Result(
                    self.work_dir / "results" / task.result_file,
                    finished + self.result_ttl_seconds,
                )
            # Shaped like a signed OSS link; the expiry is enforced server-side, by the record.
            expires = int(task.created_wall + (finished - task.created) + self.result_ttl_seconds)
            url = (
                f"{self.public_base_url}{PREFIX}/results/{task.result_file}"
                f"?Expires={expires}&OSSAccessKeyId=EMULATED&Signature=emulated"
            )
            if task.video:
                # video-synthesis answers flat, echoes the prompt and bills the asked length.
                output["video_url"] = url
                if task.prompt is not None:
                    output["orig_prompt"] = task.prompt
                if task.actual_prompt is not None:
                    output["actual_prompt"] = task.actual_prompt
                view["usage"] = dict(task.usage or {})
                return view
            if self.legacy_video_url:
                output["video_url"] = url
            else:
                output["results"] = {"video_url": url}
            view["usage"] = {"video_duration": task.rendered_seconds, "video_ratio": "standard"}
        return view


def _oss_error(status: int, code: str, message: str) -> Response:
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n<Error>\n'
        f"  <Code>{code}</Code>\n  <Message>{message}</Message>\n"
        f"  <RequestId>{uuid.uuid4().hex.upper()[:24]}</RequestId>\n"
        "  <HostId>dashscope-result-emulated.oss.local</HostId>\n</Error>\n"
    )
    return Response(body, status_code=status, media_type="application/xml")


def _validate_body(body: dict[str, Any]) -> tuple[str, str, str, str]:
    """The vendor's synchronous checks, in its order; returns model, mode and the two URLs."""
    model = body.get("model")
    if not model or not isinstance(model, str):
        raise _ApiError(
            400,
            "BadRequest.EmptyModel",
            'Required parameter "model" missing from request.',
        )
    inputs = body.get("input")
    if not isinstance(inputs, dict) or not inputs:
        raise _ApiError(
            400, "BadRequest.EmptyInput", 'Required parameter "input" missing from request.'
        )
    params = body.get("parameters")
    if not isinstance(params, dict) or not params:
        raise _ApiError(
            400,
            "BadRequest.EmptyParameters",
            'Required parameter "parameters" missing from request.',
        )
    if model not in MODELS:
        raise _ApiError(400, "InvalidParameter", "Model not exist.")
    urls: list[str] = []
    for key, allowed in (("image_url", IMAGE_EXTENSIONS), ("video_url", VIDEO_EXTENSIONS)):
        url = inputs.get(key)
        if not isinstance(url, str) or not url:
            raise _ApiError(400, "InvalidParameter", f"Field required: input.{key}")
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise _ApiError(400, "InvalidURL", f"The input.{key} is not a valid http(s) URL.")
        if Path(_file_name(url)).suffix.lower() not in allowed:
            # DashScope infers the media type from the URL path's suffix.
            raise _ApiError(
                400, "InvalidParameter.UnsupportedFileFormat", "Input files format not supported."
            )
        urls.append(url)
    watermark = inputs.get("watermark", False)
    if not isinstance(watermark, bool):
        raise _ApiError(400, "InvalidParameter", "input.watermark must be a boolean.")
    mode = params.get("mode")
    if mode not in FPS:
        raise _ApiError(
            400, "InvalidParameter", f"parameters.mode must be one of {sorted(FPS)}, got {mode!r}."
        )
    check = params.get("check_image", True)
    if not isinstance(check, bool):
        raise _ApiError(400, "InvalidParameter", "parameters.check_image must be a boolean.")
    assert isinstance(mode, str)
    return model, mode, urls[0], urls[1]


def _unsupported(kind: str) -> _ApiError:
    return _ApiError(
        400,
        "InvalidParameter.DataInspection",
        f"The media format is not supported or incorrect for the data inspection. ({kind})",
    )


def _check_ratio(
    kind: str, width: int, height: int, side: tuple[int, int], max_aspect: float = MAX_ASPECT
) -> None:
    lo, hi = side
    if not (lo <= width <= hi and lo <= height <= hi):
        raise _ApiError(
            400,
            "InvalidParameter",
            f"The size of input {kind} is not match the requirement: width and height must be "
            f"within [{lo}, {hi}] pixels, got {width}x{height}.",
        )
    if max(width, height) / min(width, height) > max_aspect:
        raise _ApiError(
            400,
            "InvalidParameter",
            f"The aspect ratio of input {kind} must be between 1:{max_aspect:g} and "
            f"{max_aspect:g}:1, got {width}x{height}.",
        )


def _image_size(path: Path, *, alpha: bool = True) -> tuple[int, int]:
    """The decoded image's size, or the vendor's format error; `alpha=False` also refuses a PNG
    with transparency."""
    try:
        with Image.open(path) as image:
            image.verify()
        with Image.open(path) as image:
            if image.format not in ("JPEG", "PNG", "BMP", "WEBP"):
                raise _unsupported("image")
            if (
                not alpha
                and image.format == "PNG"
                and (image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info)
            ):
                raise _ApiError(
                    400, "InvalidParameter", "The input image must not have an alpha channel."
                )
            width, height = image.size
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise _unsupported("image") from exc
    return width, height


def _check_image(path: Path) -> None:
    width, height = _image_size(path)
    _check_ratio("image", width, height, IMAGE_SIDE)


def _video_facts(path: Path) -> tuple[int, int, float]:
    """Width, height and duration of a video, or the vendor's format error."""
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise _unsupported("video")
            stream = container.streams.video[0]
            width, height = stream.codec_context.width, stream.codec_context.height
            if stream.duration is not None and stream.time_base is not None:
                seconds = float(stream.duration * stream.time_base)
            elif container.duration is not None:
                seconds = container.duration / av.time_base
            else:
                raise _unsupported("video")
    except av.FFmpegError as exc:
        raise _unsupported("video") from exc
    if not width or not height:
        raise _unsupported("video")
    return width, height, seconds


def _probe_video(path: Path) -> tuple[int, int, float]:
    """Width, height and duration of the reference video, or the vendor's format error."""
    width, height, seconds = _video_facts(path)
    _check_ratio("video", width, height, VIDEO_SIDE)
    return width, height, seconds


# -- text-to-video / image-to-video checks --------------------------------------------------------


def _invalid(message: str) -> _ApiError:
    return _ApiError(400, "InvalidParameter", message)


def _video_model(body: dict[str, Any]) -> tuple[str, _VideoModel]:
    model = body.get("model")
    if not model or not isinstance(model, str):
        raise _ApiError(
            400, "BadRequest.EmptyModel", 'Required parameter "model" missing from request.'
        )
    spec = VIDEO_MODELS.get(model)
    if spec is None:
        raise _invalid("Model not exist.")
    return model, spec


def _check_media_url(field: str, url: str, *, image: bool) -> None:
    """http(s) URLs, and `data:` URIs for images, as the vendor takes them."""
    if image and url.startswith("data:"):
        return
    if url.startswith("oss://"):
        # The vendor takes its own temporary oss:// URLs; the emulator has no such store.
        raise _ApiError(400, "InvalidURL", f"The {field} oss:// URL is not served by the emulator.")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise _ApiError(400, "InvalidURL", f"The {field} is not a valid http(s) URL.")


def _check_media(media: Any) -> list[tuple[str, str]]:
    """wan2.7 image-to-video `input.media`: known types, each at most once, in a combination the
    model takes."""
    if not isinstance(media, list) or not media:
        raise _invalid("Field required: input.media")
    items: list[tuple[str, str]] = []
    for item in media:
        if not isinstance(item, dict):
            raise _invalid("input.media items must be objects with type and url.")
        kind, url = item.get("type"), item.get("url")
        if kind not in MEDIA_TYPES:
            raise _invalid(f"input.media type must be one of {sorted(MEDIA_TYPES)}, got {kind!r}.")
        assert isinstance(kind, str)
        if any(seen == kind for seen, _ in items):
            raise _invalid(f"input.media may hold at most one {kind}.")
        if not isinstance(url, str) or not url:
            raise _invalid(f"Field required: the url of the {kind} media.")
        _check_media_url(f"{kind} url", url, image=kind in ("first_frame", "last_frame"))
        if kind == "first_clip" and Path(_file_name(url)).suffix.lower() not in CLIP_EXTENSIONS:
            raise _ApiError(
                400, "InvalidParameter.UnsupportedFileFormat", "Input files format not supported."
            )
        items.append((kind, url))
    combination = frozenset(kind for kind, _ in items)
    if combination not in MEDIA_COMBINATIONS:
        raise _invalid(f"The combination of media types {sorted(combination)} is not supported.")
    return items


def _validate_video(model: str, spec: _VideoModel, body: dict[str, Any]) -> _VideoPlan:
    """The vendor's synchronous checks of a text- or image-to-video body, in the model's dialect."""
    inputs = body.get("input")
    if not isinstance(inputs, dict) or not inputs:
        raise _ApiError(
            400, "BadRequest.EmptyInput", 'Required parameter "input" missing from request.'
        )
    params = body.get("parameters")
    if params is None:
        params = {}  # optional for these models: every field has a default
    elif not isinstance(params, dict):
        raise _invalid("parameters must be a JSON object.")

    prompt = inputs.get("prompt")
    if prompt is not None and not isinstance(prompt, str):
        raise _invalid("input.prompt must be a string.")
    if not prompt or not prompt.strip():
        if spec.kind == "t2v":
            raise _invalid("Field required: input.prompt")
        prompt = None
    else:
        prompt = prompt[: spec.prompt_limit]  # the vendor cuts a longer prompt; it does not refuse
    if not isinstance(inputs.get("negative_prompt", ""), str):
        raise _invalid("input.negative_prompt must be a string.")
    for name in ("prompt_extend", "watermark", *(("audio",) if spec.audio_switch else ())):
        if name in params and not isinstance(params[name], bool):
            raise _invalid(f"parameters.{name} must be a boolean.")
    seed = params.get("seed")
    if seed is not None and (
        isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= SEED_MAX
    ):
        raise _invalid(f"parameters.seed must be an integer within [0, {SEED_MAX}].")
    if spec.shot_type and params.get("shot_type", "single") not in ("single", "multi"):
        raise _invalid("parameters.shot_type must be single or multi.")
    duration = params.get("duration", 5)
    if (
        isinstance(duration, bool)
        or not isinstance(duration, int)
        or duration not in spec.durations
    ):
        allowed = sorted(spec.durations)
        choices = (
            f"an integer within [{allowed[0]}, {allowed[-1]}]"
            if len(allowed) > 3
            else f"one of {allowed}"
        )
        raise _invalid(f"parameters.duration must be {choices} for {model}, got {duration!r}.")

    size: tuple[int, int] | None = None
    size_text: str | None = None
    mismatch = False
    ratio: str | None = None
    media: list[tuple[str, str]] = []
    if spec.kind == "t2v" and spec.dialect == "legacy":
        asked = params.get("size", TIER_SIZES[spec.default_tier][0])
        match = _SIZE_FORM.match(asked) if isinstance(asked, str) else None
        if match is None:
            raise _invalid(f'parameters.size must be "width*height", got {asked!r}.')
        size_text = str(asked)
        size = (int(match[1]), int(match[2]))
        known = next((t for t, sizes in TIER_SIZES.items() if size_text in sizes), None)
        # A well-formed size the model does not render is refused in the task, as documented.
        mismatch = known is None or known not in spec.tiers
        tier = known or spec.default_tier
    else:
        tier = params.get("resolution", spec.default_tier)
        if tier not in spec.tiers:
            raise _invalid(
                f"parameters.resolution must be one of {list(spec.tiers)} for {model}, "
                f"got {tier!r}."
            )
        if spec.kind == "t2v":
            ratio = params.get("ratio", "16:9")
            if ratio not in RATIO_SIZES[tier]:
                raise _invalid(
                    f"parameters.ratio must be one of {list(RATIO_SIZES[tier])}, got {ratio!r}."
                )
            size = RATIO_SIZES[tier][ratio]
        elif spec.dialect == "legacy":
            url = inputs.get("img_url")
            if not isinstance(url, str) or not url:
                raise _invalid("Field required: input.img_url")
            _check_media_url("img_url", url, image=True)
            media = [("first_frame", url)]
        else:
            media = _check_media(inputs.get("media"))
    audio = params.get("audio") if spec.audio_switch else None
    return _VideoPlan(
        model=model,
        spec=spec,
        prompt=prompt,
        duration=duration,
        tier=tier,
        size=size,
        size_text=size_text,
        size_mismatch=mismatch,
        ratio=ratio,
        media=media,
        prompt_extend=params.get("prompt_extend", True) is not False,
        audio=audio if isinstance(audio, bool) else None,
    )


def _decode_data_uri(uri: str, stem: Path, limit: int) -> Path:
    """A `data:image/…;base64,…` input written to disk."""
    header, comma, payload = uri.partition(",")
    if not comma or not header.startswith("data:image/") or not header.endswith(";base64"):
        raise _invalid("The image data URI must read data:image/<type>;base64,<data>.")
    try:
        data = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise _invalid("The image data URI is not valid base64.") from exc
    if len(data) > limit:
        raise _invalid(f"The image file size exceeds the limit of {limit // (1024 * 1024)}MB.")
    stem.parent.mkdir(parents=True, exist_ok=True)
    path = stem.with_suffix(".img")
    path.write_bytes(data)
    return path


def _check_frame(path: Path, dialect: str) -> tuple[int, int]:
    """An image-to-video frame: format, no transparency, 240–8000 px a side (and 1:8–8:1 for
    wan2.7); returns its size."""
    width, height = _image_size(path, alpha=False)
    max_aspect = FRAME_MAX_ASPECT if dialect == "wan2.7" else math.inf
    _check_ratio("image", width, height, FRAME_SIDE, max_aspect)
    return width, height


def _probe_clip(path: Path) -> tuple[int, int, float]:
    """wan2.7's `first_clip`: 240–4096 px a side, 1:8–8:1, 2–10 s."""
    width, height, seconds = _video_facts(path)
    _check_ratio("video", width, height, CLIP_SIDE, FRAME_MAX_ASPECT)
    lo, hi = CLIP_SECONDS
    if not lo <= seconds <= hi:
        raise _invalid(
            f"The duration of input video must be between {lo:g}s and {hi:g}s, got {seconds:.2f}s."
        )
    return width, height, seconds


def _follow_aspect(width: int, height: int, tier: str) -> tuple[int, int]:
    """Image-to-video output: the input's aspect at about the tier's pixel count, each side cut
    down to a multiple of 16 (the vendor's example: 750×1000 at 720P gives 816×1104)."""
    pixels = _TIER_PIXELS[tier]
    out_h = math.sqrt(pixels * height / width)
    out_w = out_h * width / height
    return max(16, int(out_w) // 16 * 16), max(16, int(out_h) // 16 * 16)


def _video_usage(plan: _VideoPlan, width: int, height: int, clip_seconds: float) -> dict[str, Any]:
    """The `usage` of a successful task, in the shape of the model's generation."""
    spec, seconds = plan.spec, plan.duration
    sr = int(plan.tier.removesuffix("P"))
    if spec.usage == "wan2.7":
        # A continued clip counts in `duration` (input + output seconds).
        clip = round(clip_seconds)
        usage: dict[str, Any] = {
            "duration": seconds,
            "input_video_duration": clip,
            "output_video_duration": seconds - clip,
            "video_count": 1,
        }
        if spec.kind == "t2v":
            usage["ratio"] = plan.ratio
        usage["SR"] = sr
        return usage
    if spec.usage == "wan2.6":
        usage = {"duration": float(seconds)}
        if spec.kind == "t2v":
            usage["size"] = plan.size_text
        usage.update(input_video_duration=0, output_video_duration=seconds, video_count=1, SR=sr)
        if spec.audio_switch:
            usage["audio"] = plan.audio is not False
        return usage
    return {
        "video_duration": seconds,
        "video_count": 1,
        "video_ratio": f"{width}*{height}",
        "SR": sr,
    }
