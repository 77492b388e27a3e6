"""A local model of kie.ai's market jobs API, for development and tests without internet.

It serves `createTask`, `recordInfo` and `chat/credit` at kie's paths with kie's envelope
(`{"code", "msg", "data"}`, errors as HTTP 200 with the real code inside) for the models vidgate
maps: the Sora 2 models, `wan/2-2-animate-move|replace`, `wan/2-6-text|image-to-video` and
`kling-2.6/text|image-to-video`, each with its own field rules. It fetches and decodes the
input images (and reference videos) as kie would, walks `waiting → queuing → generating →
success | fail` over time read from an injectable clock (non-Sora records carry a `progress`),
renders a real H.264 MP4 (marked EMULATED) as long as the task asked for (an animate task as
long as its reference video), serves it at an expiring URL and POSTs kie's callback body once on
completion, signed with kie's HMAC headers when a key is configured. Models in `paused_models`
answer 505 ("feature disabled"), as a paused model does. Faults are chosen per request by a
marker in the prompt (`[fault:moderation]`, …) or in an input URL's file name
(`fault-moderation`), or for the next submit(s) through `POST /_control/faults`. Nothing is
persisted. Protocol facts: docs/vendors.md §2; where kie's behaviour is unconfirmed the choice is
noted beside the code.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import io
import json
import logging
import re
import secrets
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit

import av
import httpx
from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, JSONResponse, Response
from PIL import Image, UnidentifiedImageError

from vidgate.emulators.background import Background

from .render import render_animation

PREFIX = "/_emulator/kie"
CREATE_PATH = "/api/v1/jobs/createTask"
RECORD_PATH = "/api/v1/jobs/recordInfo"
CREDIT_PATH = "/api/v1/chat/credit"
TIMESTAMP_HEADER = "X-Webhook-Timestamp"
SIGNATURE_HEADER = "X-Webhook-Signature"

SORA_MODELS = frozenset(
    {
        "sora-2-text-to-video",
        "sora-2-image-to-video",
        "sora-2-pro-text-to-video",
        "sora-2-pro-image-to-video",
    }
)
# Each model served and its family, whose field rules `_validate` applies.
MODEL_FAMILIES: dict[str, str] = {
    **dict.fromkeys(SORA_MODELS, "sora"),
    "wan/2-2-animate-move": "wan-animate",
    "wan/2-2-animate-replace": "wan-animate",
    "wan/2-6-text-to-video": "wan-2.6",
    "wan/2-6-image-to-video": "wan-2.6",
    "kling-2.6/text-to-video": "kling-2.6",
    "kling-2.6/image-to-video": "kling-2.6",
}
MODELS = frozenset(MODEL_FAMILIES)
# What kie answers today: Sora 2 is paused. Not the constructor's default, because development
# and the existing Sora tests run on the emulator's Sora models; pass it to model kie as it is.
PAUSED_TODAY = SORA_MODELS
MAX_PROMPT_CHARS = 5000  # what vidgate enforces; kie's own limit per model is unconfirmed
MAX_IMAGE_BYTES = 10 * 1024 * 1024  # kie: JPEG/PNG/WEBP up to 10 MB
MAX_VIDEO_BYTES = 10 * 1024 * 1024  # kie animate: MP4/QuickTime/MKV up to 10 MB
IMAGE_FORMATS = frozenset({"JPEG", "PNG", "WEBP"})
# kie's market pages list accepted files by type; the emulator checks the URL's extension.
IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".webp"})
VIDEO_EXTENSIONS = frozenset({".mp4", ".mov", ".mkv"})
MAX_ANIMATE_SECONDS = 30.0  # longest reference video rendered in full (emulator's own cap)
TASK_COST_CREDITS = 30  # UNCONFIRMED; only makes `chat/credit` move and 402 reachable
# Answers decided before kie looks at the input: fault → (inner code, message).
_SUBMIT_FAULTS: dict[str, tuple[int, str]] = {
    "throttle": (429, "Rate limited: too many requests, please try again later"),
    "server_error": (500, "Server error, please try again later"),
    "insufficient_credits": (402, "The current credits are insufficient. Please top up."),
    "sub_key_limit": (433, "The usage limit of this API key has been exceeded"),
    "maintenance": (455, "Service unavailable: the system is under maintenance"),
    "feature_disabled": (505, "The feature is disabled"),
    "generation_failed": (501, "Generation failed, please try again later"),
    "invalid_input": (422, "input is invalid"),
}
FAULTS = (
    "moderation",
    "invalid_input",
    "throttle",
    "server_error",
    "stuck",
    "slow",
    "insufficient_credits",
    "sub_key_limit",
    "maintenance",
    "feature_disabled",
    "generation_failed",
    "model_unsupported",
    "fail",
)
# Prompt (`[fault:x]`) and URL (`fault-x`) markers and the control-endpoint fault each stands for.
_MARKERS = {
    "moderation": "moderation",
    "invalid": "invalid_input",
    "throttle": "throttle",
    "5xx": "server_error",
    "stuck": "stuck",
    "slow": "slow",
    "credits": "insufficient_credits",
    "subkey": "sub_key_limit",
    "maintenance": "maintenance",
    "disabled": "feature_disabled",
    "501": "generation_failed",
    "unsupported": "model_unsupported",
    "fail": "fail",
}
_MARKER = re.compile(r"\[fault:([a-z0-9]+)\]")
_URL_MARKER = re.compile(r"fault-([a-z0-9]+)")
_TASK_FAULTS = frozenset({"moderation", "stuck", "fail"})  # accepted, then shown over time
_MODERATION_FAIL = (
    "400",
    "Your prompt was flagged by Website as violating content policies.",
)
_GENERIC_FAIL = ("500", "Internal server error")
_CALLBACK_POLL_SECONDS = 0.05  # how often a completion watcher re-reads the (injectable) clock
_RENDER_FPS = 24
_RENDER_CONCURRENCY = 2  # renders are CPU-bound; more in parallel only slows each down

log = logging.getLogger(__name__)


class _KieError(Exception):
    """An answer kie gives as `{"code": code, "msg": msg}`."""

    def __init__(self, code: int, msg: str) -> None:
        super().__init__(msg)
        self.code = code
        self.msg = msg


@dataclass
class _Task:
    task_id: str
    model: str
    family: str
    param: dict[str, Any]
    prompt: str  # the render's caption source
    seconds: float  # the length asked for (an animate task: its reference video's)
    frame: tuple[int, int]  # output aspect, (width, height) in any unit
    image_path: Path | None
    callback_url: str | None
    fault: str | None  # "moderation", "fail" or "stuck": decided at submit, shown over time
    created_at: float  # emulator clock
    created_ms: int  # wall clock, for kie's epoch-ms timestamps
    done_at: float  # emulator clock instant the task leaves `generating`
    result_file: str | None = None
    render_failed: bool = False
    callback_sent: bool = False
    duration: float | None = None
    settled: asyncio.Event = field(default_factory=asyncio.Event)  # render done, failed or skipped


@dataclass
class _Result:
    path: Path
    expires_at: float


@dataclass
class _Inputs:
    """What `_validate` made of a createTask body, ready to become a task."""

    prompt: str
    seconds: float
    frame: tuple[int, int] | None  # None: follow the image (or video)
    images: list[Any] = field(default_factory=list)  # URLs to fetch and decode (unchecked)
    image_field: str = "input.image_urls"
    video: str | None = None
    follow_video: bool = False  # animate-replace: the output keeps the video's frame


class KieEmulator:
    """kie.ai's market endpoints for one API key. Mount `router()`; point the adapter at
    `<base>/_emulator/kie`. Call `aclose()` when done to stop renders and callback watchers.

    `paused_models` answer 505 (pass `PAUSED_TODAY` to model kie's paused Sora 2);
    `webhook_hmac_key` signs callbacks as kie does once a key is set in its dashboard.
    """

    def __init__(
        self,
        *,
        api_key: str,
        work_dir: Path,
        public_base_url: str,
        queue_seconds: float = 1.0,
        run_seconds: float = 3.0,
        result_ttl_seconds: float = 86400,
        render_height: int = 360,
        seconds: float | None = None,
        slow_seconds: float = 30.0,
        clock: Callable[[], float] | None = None,
        fetch: httpx.AsyncClient | None = None,
        mirror_http_status: bool = False,
        credits: float = 100_000,
        paused_models: Iterable[str] = (),
        webhook_hmac_key: str | None = None,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.api_key = api_key
        self.work_dir = work_dir
        self.public_base_url = public_base_url.rstrip("/")
        self.queue_seconds = queue_seconds
        self.run_seconds = run_seconds
        self.result_ttl_seconds = result_ttl_seconds
        self.render_height = render_height
        # Forces every render to this length (tests keep renders short); None: as asked.
        self.seconds = seconds
        self.slow_seconds = slow_seconds
        # kie answers errors as HTTP 200; True sends the inner code as the HTTP status as well.
        self.mirror_http_status = mirror_http_status
        self.credits = credits
        self.paused_models: set[str] = set(paused_models)
        self.webhook_hmac_key = webhook_hmac_key
        self._wall_clock = wall_clock
        self._clock = clock or time.monotonic
        self._fetch = fetch
        self._owns_fetch = fetch is None
        self._tasks: dict[str, _Task] = {}
        self._results: dict[str, _Result] = {}
        self._next_fault: str | None = None
        self._fault_count = 0
        self._log: list[dict[str, Any]] = []
        self._background = Background()
        self._render_slots: asyncio.Semaphore | None = None

    # -----------------------------------------------------------------------------------------
    # Hooks for tests and tools
    # -----------------------------------------------------------------------------------------

    def set_next_fault(self, fault: str | None, count: int = 1) -> None:
        """Make the next `count` `createTask` calls misbehave (one of `FAULTS`), or clear it."""
        if fault is not None and fault not in FAULTS:
            raise ValueError(f"unknown fault {fault!r}; one of {', '.join(FAULTS)}")
        self._next_fault = fault if count > 0 else None
        self._fault_count = count if fault is not None and count > 0 else 0

    @property
    def requests(self) -> list[dict[str, Any]]:
        """Every request the vendor endpoints received, oldest first."""
        return list(self._log)

    def task_ids(self) -> list[str]:
        """Ids of every task created so far, oldest first."""
        return list(self._tasks)

    def state_of(self, task_id: str) -> str | None:
        """kie's `state` for a task right now (None if unknown)."""
        task = self._tasks.get(task_id)
        return None if task is None else self._state(task)

    async def wait_rendered(self, task_id: str) -> None:
        """Block until the task's video is written (or rendering is not going to happen)."""
        await self._tasks[task_id].settled.wait()

    async def aclose(self) -> None:
        """Stop background work and close the image-fetching client if it is ours."""
        await self._background.cancel()
        if self._owns_fetch and self._fetch is not None:
            await self._fetch.aclose()
            self._fetch = None

    # -----------------------------------------------------------------------------------------
    # HTTP
    # -----------------------------------------------------------------------------------------

    def router(self) -> APIRouter:
        """kie's endpoints under /_emulator/kie, plus the result host and control endpoints."""
        router = APIRouter(prefix=PREFIX, tags=["emulators"], include_in_schema=False)
        router.add_api_route(CREATE_PATH, self._create, methods=["POST"], response_model=None)
        router.add_api_route(RECORD_PATH, self._record, methods=["GET"], response_model=None)
        router.add_api_route(CREDIT_PATH, self._credit, methods=["GET"], response_model=None)
        router.add_api_route(
            "/results/{file}", self._result, methods=["GET", "HEAD"], response_model=None
        )
        router.add_api_route(
            "/_control/faults", self._control_faults, methods=["POST"], response_model=None
        )
        router.add_api_route(
            "/_control/paused", self._control_paused, methods=["POST"], response_model=None
        )
        router.add_api_route(
            "/_control/requests", self._control_requests, methods=["GET"], response_model=None
        )
        return router

    async def _create(self, request: Request) -> Response:
        raw = await request.body()
        body: Any = None
        with contextlib.suppress(ValueError):
            body = json.loads(raw) if raw else None
        try:
            self._check_auth(request)
            task, slow = await self._accept(body)
        except _KieError as exc:
            return self._answer(request, body, exc.code, exc.msg)
        if slow:
            # The task exists already: the caller cannot tell whether it was accepted.
            await asyncio.sleep(self.slow_seconds)
        return self._answer(request, body, 200, "success", {"taskId": task.task_id})

    async def _record(self, request: Request) -> Response:
        try:
            self._check_auth(request)
            task_id = request.query_params.get("taskId", "")
            if not task_id:
                raise _KieError(422, "taskId is required")
            task = self._tasks.get(task_id)
            if task is None:
                # kie's answer for an unknown id is undocumented; 404 is in its code enum.
                raise _KieError(404, "recordInfo is null")
        except _KieError as exc:
            return self._answer(request, None, exc.code, exc.msg)
        return self._answer(request, None, 200, "success", self._record_data(task))

    async def _credit(self, request: Request) -> Response:
        try:
            self._check_auth(request)
        except _KieError as exc:
            return self._answer(request, None, exc.code, exc.msg)
        return self._answer(request, None, 200, "success", self.credits)

    async def _result(self, file: str) -> Response:
        result = self._results.get(file)
        if result is None:
            return _s3_error(404, "NoSuchKey", "The specified key does not exist.")
        if self._clock() >= result.expires_at:
            # What an expired presigned S3 URL answers.
            return _s3_error(403, "AccessDenied", "Request has expired")
        return FileResponse(result.path, media_type="video/mp4")

    async def _control_faults(self, request: Request) -> Response:
        """`{"next_submit": fault | null, "count"?: n}` arms a fault for the next n submits."""
        try:
            body = await request.json()
        except ValueError:
            body = None
        fault = body.get("next_submit") if isinstance(body, dict) else None
        count = body.get("count", 1) if isinstance(body, dict) else 1
        if (fault is not None and fault not in FAULTS) or not _is_int(count):
            return JSONResponse(
                {"detail": f"next_submit must be one of {', '.join(FAULTS)} or null"},
                status_code=422,
            )
        self.set_next_fault(fault, count)
        return JSONResponse({"next_submit": self._next_fault, "count": self._fault_count})

    async def _control_paused(self, request: Request) -> Response:
        """`{"models": [...]}` replaces the set of paused models (they answer 505)."""
        try:
            body = await request.json()
        except ValueError:
            body = None
        models = body.get("models") if isinstance(body, dict) else None
        if not isinstance(models, list) or not all(isinstance(m, str) for m in models):
            return JSONResponse({"detail": "models must be a list of model ids"}, status_code=422)
        self.paused_models = set(models)
        return JSONResponse({"models": sorted(self.paused_models)})

    async def _control_requests(self) -> Response:
        return JSONResponse({"requests": self.requests})

    # -----------------------------------------------------------------------------------------
    # createTask
    # -----------------------------------------------------------------------------------------

    def _check_auth(self, request: Request) -> None:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not secrets.compare_digest(
            token.strip().encode(), self.api_key.encode()
        ):
            raise _KieError(401, "You do not have access permissions")

    def _take_fault(self, inputs: Any) -> str | None:
        """The armed fault (used up one submit at a time), else a marker in the input."""
        if self._next_fault is not None:
            fault = self._next_fault
            self._fault_count -= 1
            if self._fault_count <= 0:
                self._next_fault, self._fault_count = None, 0
            return fault
        if not isinstance(inputs, dict):
            return None
        prompt = inputs.get("prompt")
        if isinstance(prompt, str) and (marker := _MARKER.search(prompt)) is not None:
            return _MARKERS.get(marker.group(1))
        urls = [inputs.get("image_url"), inputs.get("video_url")]
        if isinstance(inputs.get("image_urls"), list):
            urls.extend(inputs["image_urls"])
        for url in urls:
            if isinstance(url, str):
                name = PurePosixPath(urlsplit(url).path).name
                if (marker := _URL_MARKER.search(name)) is not None:
                    return _MARKERS.get(marker.group(1))
        return None

    async def _accept(self, body: Any) -> tuple[_Task, bool]:
        """Validate a createTask body the way kie does and start the task; (task, slow?)."""
        inputs = body.get("input") if isinstance(body, dict) else None
        fault = self._take_fault(inputs)
        if not isinstance(body, dict):
            raise _KieError(422, "request body must be a JSON object")
        # Throttling, outages and billing are decided before kie looks at the input.
        if fault == "insufficient_credits" or (
            fault not in _SUBMIT_FAULTS and self.credits < TASK_COST_CREDITS
        ):
            raise _KieError(*_SUBMIT_FAULTS["insufficient_credits"])
        if fault in _SUBMIT_FAULTS:
            raise _KieError(*_SUBMIT_FAULTS[fault])

        model = body.get("model")
        if not isinstance(model, str) or not model:
            raise _KieError(422, "model is required")
        if model not in MODELS or fault == "model_unsupported":
            raise _KieError(422, f"model {model} is not supported")
        if model in self.paused_models:
            raise _KieError(505, f"The feature is disabled: {model} is currently unavailable")
        if not isinstance(inputs, dict):
            raise _KieError(422, "input is required")
        callback = body.get("callBackUrl")
        if callback is not None and not _is_http_url(callback):
            raise _KieError(422, "callBackUrl must be an http(s) URL")
        wanted = _validate(model, MODEL_FAMILIES[model], inputs)
        # Unknown fields (the wrapper's `quality`, for one) are accepted silently.

        task_id = secrets.token_hex(16)  # kie's ids are 32 hex digits
        image_path: Path | None = None
        frame = wanted.frame
        for index, url in enumerate(wanted.images):
            where = (
                f"{wanted.image_field}[{index}]"
                if wanted.image_field.endswith("s")
                else wanted.image_field
            )
            data = await self._fetch_image(where, url)
            if image_path is None:
                image_path = self.work_dir / "inputs" / task_id
                image_path.parent.mkdir(parents=True, exist_ok=True)
                image_path.write_bytes(data)
                if frame is None and not wanted.follow_video:
                    with Image.open(io.BytesIO(data)) as image:
                        frame = image.size
        seconds = wanted.seconds
        if wanted.video is not None:
            width, height, seconds = await self._fetch_video(task_id, wanted.video)
            seconds = min(seconds, MAX_ANIMATE_SECONDS)
            if wanted.follow_video:
                frame = (width, height)

        self.credits -= TASK_COST_CREDITS
        now = self._clock()
        task = _Task(
            task_id=task_id,
            model=model,
            family=MODEL_FAMILIES[model],
            param=body,
            prompt=wanted.prompt or model,
            seconds=seconds,
            frame=frame or (16, 9),
            image_path=image_path,
            callback_url=callback,
            fault=fault if fault in _TASK_FAULTS else None,
            created_at=now,
            created_ms=int(time.time() * 1000),
            done_at=now + self.queue_seconds + self.run_seconds,
        )
        self._tasks[task_id] = task
        self._background.spawn(self._run(task))
        return task, fault == "slow"

    async def _download(self, where: str, url: Any, limit: int, what: str) -> bytes:
        """Fetch one input file; it must be reachable and at most `limit` bytes."""
        if not isinstance(url, str) or not _is_http_url(url):
            raise _KieError(422, f"{where} must be a public http(s) URL")
        if self._fetch is None:
            self._fetch = httpx.AsyncClient(timeout=10.0, follow_redirects=True)
        chunks: list[bytes] = []
        size = 0
        try:
            async with self._fetch.stream("GET", url) as response:
                if response.status_code != 200:
                    raise _KieError(
                        422, f"Failed to fetch the {what} ({where}: HTTP {response.status_code})"
                    )
                async for chunk in response.aiter_bytes():
                    size += len(chunk)
                    if size > limit:
                        raise _KieError(422, f"{where} is larger than {limit // 2**20} MB")
                    chunks.append(chunk)
        except httpx.HTTPError as exc:
            raise _KieError(422, f"Failed to fetch the {what} ({where}: {exc!r})") from None
        return b"".join(chunks)

    async def _fetch_image(self, where: str, url: Any) -> bytes:
        """Download one input image; it must be reachable and a JPEG/PNG/WEBP ≤ 10 MB."""
        data = await self._download(where, url, MAX_IMAGE_BYTES, "image")
        try:
            with Image.open(io.BytesIO(data)) as image:
                image_format = image.format
                image.verify()
        except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
            raise _KieError(422, f"{where} is not a decodable image") from None
        if image_format not in IMAGE_FORMATS:
            raise _KieError(422, f"{where} must be JPEG, PNG or WEBP, not {image_format}")
        return data

    async def _fetch_video(self, task_id: str, url: Any) -> tuple[int, int, float]:
        """Download the reference video (≤ 10 MB) and read its frame size and length."""
        data = await self._download("input.video_url", url, MAX_VIDEO_BYTES, "video")
        path = self.work_dir / "inputs" / f"{task_id}.video"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        probed = await asyncio.to_thread(_probe_video, path)
        if probed is None:
            raise _KieError(422, "input.video_url is not a decodable video")
        return probed

    # -----------------------------------------------------------------------------------------
    # Task lifecycle
    # -----------------------------------------------------------------------------------------

    def _state(self, task: _Task) -> str:
        elapsed = self._clock() - task.created_at
        if elapsed < self.queue_seconds / 2:
            return "waiting"
        if elapsed < self.queue_seconds:
            return "queuing"
        if task.fault == "stuck" or elapsed < self.queue_seconds + self.run_seconds:
            return "generating"
        if task.fault in ("moderation", "fail") or task.render_failed:
            return "fail"
        # Finished by the clock but the file is not written yet: still generating, honestly.
        return "success" if task.result_file is not None else "generating"

    def _progress(self, task: _Task, state: str) -> int | None:
        """A percentage for the record: 0 while queued, rising while generating, 100 when done.

        Whether kie's market records carry `progress` is UNCONFIRMED; Sora records show none.
        """
        if task.family == "sora" or state == "fail":
            return None
        if state == "success":
            return 100
        if state in ("waiting", "queuing"):
            return 0
        ran = self._clock() - task.created_at - self.queue_seconds
        share = ran / self.run_seconds if self.run_seconds > 0 else 1.0
        return max(1, min(99, int(share * 100)))

    def _record_data(self, task: _Task) -> dict[str, Any]:
        state = self._state(task)
        now_ms = task.created_ms + int((self._clock() - task.created_at) * 1000)
        data: dict[str, Any] = {
            "taskId": task.task_id,
            "model": task.model,
            "state": state,
            "param": json.dumps(task.param),
            "resultJson": "",
            "failCode": "",
            "failMsg": "",
            "costTime": None,
            "completeTime": None,
            "createTime": task.created_ms,
            "updateTime": now_ms,
        }
        progress = self._progress(task, state)
        if progress is not None:
            data["progress"] = progress
        if state in ("success", "fail"):
            complete_ms = task.created_ms + int((task.done_at - task.created_at) * 1000)
            data["completeTime"] = complete_ms
            data["updateTime"] = complete_ms
            data["costTime"] = round(task.done_at - task.created_at)  # seconds, as kie shows
        if state == "success":
            url = f"{self.public_base_url}{PREFIX}/results/{task.result_file}"
            data["resultJson"] = json.dumps({"resultUrls": [url]})
        elif state == "fail":
            if task.fault == "moderation":
                data["failCode"], data["failMsg"] = _MODERATION_FAIL
            else:
                data["failCode"], data["failMsg"] = _GENERIC_FAIL
        return data

    async def _run(self, task: _Task) -> None:
        """Render the result (unless the task is doomed), then deliver the callback once."""
        if task.fault is None:
            try:
                await self._render(task)
            finally:
                task.settled.set()
        else:
            task.settled.set()
        if task.callback_url is None or task.fault == "stuck":
            return
        # Time is whatever the injectable clock says, so there is nothing to wait on but itself.
        while self._state(task) not in ("success", "fail"):  # noqa: ASYNC110
            await asyncio.sleep(
                min(max(task.done_at - self._clock(), _CALLBACK_POLL_SECONDS), 1.0)
                if self._clock is time.monotonic
                else _CALLBACK_POLL_SECONDS
            )
        await self._send_callback(task)

    async def _render(self, task: _Task) -> None:
        if self._render_slots is None:
            self._render_slots = asyncio.Semaphore(_RENDER_CONCURRENCY)
        short = _even(self.render_height)
        ratio_w, ratio_h = task.frame
        if ratio_w >= ratio_h:
            width, height = _even(round(short * ratio_w / ratio_h)), short
        else:
            width, height = short, _even(round(short * ratio_h / ratio_w))
        name = f"{secrets.token_urlsafe(24)}.mp4"  # unguessable, like a signed URL
        out = self.work_dir / "results" / name
        caption = _MARKER.sub("", task.prompt).strip()
        caption = caption if len(caption) <= 60 else caption[:59] + "…"
        try:
            async with self._render_slots:
                task.duration = await asyncio.to_thread(
                    render_animation,
                    task.image_path,
                    out,
                    # The requested length, so that what the adapter reports as billed is what
                    # was rendered; tests may force a shorter clip.
                    seconds=self.seconds or task.seconds,
                    fps=_RENDER_FPS,
                    width=width,
                    height=height,
                    caption=caption,
                )
        except Exception:
            log.exception("kie emulator: rendering task %s failed", task.task_id)
            task.render_failed = True
            return
        self._results[name] = _Result(out, task.done_at + self.result_ttl_seconds)
        task.result_file = name

    async def _send_callback(self, task: _Task) -> None:
        """POST kie's completion body to `callBackUrl`, once; failures are logged, not retried.

        With `webhook_hmac_key` set, the request carries `X-Webhook-Timestamp` (unix seconds)
        and `X-Webhook-Signature` (base64 HMAC-SHA256 of `taskId.timestamp`), as kie sends them.
        """
        if task.callback_sent or task.callback_url is None:
            return
        task.callback_sent = True
        data = self._record_data(task)
        if data["state"] == "success":
            code, msg = 200, "Playground task completed successfully."
            data.update(consumeCredits=TASK_COST_CREDITS, remainedCredits=self.credits)
        else:
            code, msg = 501, "Playground task failed."
            data.update(consumeCredits=0, remainedCredits=self.credits)
        headers: dict[str, str] = {}
        if self.webhook_hmac_key:
            timestamp = str(int(self._wall_clock()))
            message = f"{task.task_id}.{timestamp}".encode()
            digest = hmac.new(self.webhook_hmac_key.encode(), message, hashlib.sha256).digest()
            headers[TIMESTAMP_HEADER] = timestamp
            headers[SIGNATURE_HEADER] = base64.b64encode(digest).decode("ascii")
        if self._fetch is None:
            self._fetch = httpx.AsyncClient(timeout=10.0, follow_redirects=True)
        try:
            response = await self._fetch.post(
                task.callback_url, json={"code": code, "msg": msg, "data": data}, headers=headers
            )
        except httpx.HTTPError as exc:
            log.warning("kie emulator: callback for %s failed: %r", task.task_id, exc)
            return
        if response.status_code >= 300:
            log.warning(
                "kie emulator: callback for %s answered HTTP %s",
                task.task_id,
                response.status_code,
            )

    # -----------------------------------------------------------------------------------------
    # Answers
    # -----------------------------------------------------------------------------------------

    def _answer(
        self, request: Request, body: Any, code: int, msg: str, data: Any = None
    ) -> Response:
        """kie's envelope, logged; HTTP 200 unless kie itself failed (or mirroring is on).

        Only a server error (500, 502-504) changes the HTTP status on its own; 455, 501 and 505
        are business answers inside HTTP 200 (the real HTTP status for them is UNCONFIRMED).
        """
        if code == 200:
            http_status = 200
        elif code in (500, 502, 503, 504) or self.mirror_http_status:
            http_status = code if 400 <= code <= 599 else 500
        else:
            http_status = 200
        self._log.append(
            {
                "at": self._clock(),
                "method": request.method,
                "path": request.url.path,
                "query": dict(request.query_params),
                "body": body,
                "authorized": code != 401,
                "http_status": http_status,
                "code": code,
            }
        )
        return JSONResponse({"code": code, "msg": msg, "data": data}, status_code=http_status)


# ---------------------------------------------------------------------------------------------
# Field rules per model family
# ---------------------------------------------------------------------------------------------


def _validate(model: str, family: str, inputs: dict[str, Any]) -> _Inputs:
    """Check `input` against the family's rules (422 on the first problem)."""
    if family == "wan-animate":
        return _validate_animate(model, inputs)
    prompt = _prompt(inputs)
    image_to_video = model.endswith("image-to-video")
    if family == "sora":
        aspect = inputs.get("aspect_ratio", "landscape")
        if aspect not in ("landscape", "portrait"):
            raise _KieError(422, "input.aspect_ratio must be landscape or portrait")
        n_frames = inputs.get("n_frames", "10")
        if str(n_frames) not in ("10", "15"):
            raise _KieError(422, "input.n_frames must be 10 or 15")
        size = inputs.get("size")
        if size is not None and size not in ("standard", "high"):
            raise _KieError(422, "input.size must be standard or high")
        return _Inputs(
            prompt=prompt,
            seconds=float(str(n_frames)),
            frame=(16, 9) if aspect == "landscape" else (9, 16),
            images=_image_urls(inputs) if image_to_video else [],
        )

    # wan/2-6-* and kling-2.6/*: durations as strings, one image for image-to-video.
    durations = ("5", "10", "15") if family == "wan-2.6" else ("5", "10")
    duration = inputs.get("duration", "5")
    if not isinstance(duration, str) or duration not in durations:
        raise _KieError(422, f"input.duration must be one of {', '.join(durations)} (a string)")
    frame: tuple[int, int] | None = None
    if family == "wan-2.6":
        resolution = inputs.get("resolution", "720p")
        if resolution not in ("720p", "1080p"):
            raise _KieError(422, "input.resolution must be 720p or 1080p")
    else:
        sound = inputs.get("sound")
        if not isinstance(sound, bool):
            raise _KieError(422, "input.sound is required (true or false)")
        if not image_to_video:
            aspect = inputs.get("aspect_ratio", "16:9")
            if aspect not in ("16:9", "9:16", "1:1"):
                raise _KieError(422, "input.aspect_ratio must be 16:9, 9:16 or 1:1")
            width, _, height = str(aspect).partition(":")
            frame = (int(width), int(height))
    urls: list[Any] = []
    if image_to_video:
        urls = _image_urls(inputs)
        if len(urls) > 1:
            raise _KieError(422, "input.image_urls takes exactly one image")
        _check_extension("input.image_urls[0]", urls[0], IMAGE_EXTENSIONS, "JPEG, PNG or WEBP")
    elif frame is None:
        frame = (16, 9)
    return _Inputs(prompt=prompt, seconds=float(duration), frame=frame, images=urls)


def _validate_animate(model: str, inputs: dict[str, Any]) -> _Inputs:
    """wan/2-2-animate-*: `video_url` and `image_url` required, `resolution` 480p/580p/720p."""
    video, image = inputs.get("video_url"), inputs.get("image_url")
    if not isinstance(video, str) or not video:
        raise _KieError(422, "input.video_url is required")
    if not isinstance(image, str) or not image:
        raise _KieError(422, "input.image_url is required")
    _check_extension("input.video_url", video, VIDEO_EXTENSIONS, "MP4, QuickTime or MKV")
    _check_extension("input.image_url", image, IMAGE_EXTENSIONS, "JPEG, PNG or WEBP")
    if inputs.get("resolution", "480p") not in ("480p", "580p", "720p"):
        raise _KieError(422, "input.resolution must be 480p, 580p or 720p")
    return _Inputs(
        prompt=model,
        seconds=0.0,  # the reference video's length, read once it is fetched
        frame=None,
        images=[image],
        image_field="input.image_url",
        video=video,
        follow_video=model.endswith("replace"),
    )


def _image_urls(inputs: dict[str, Any]) -> list[Any]:
    urls = inputs.get("image_urls")
    if not isinstance(urls, list) or not urls:
        raise _KieError(422, "input.image_urls is required")
    return urls


def _prompt(inputs: dict[str, Any]) -> str:
    prompt = inputs.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        raise _KieError(422, "input.prompt is required")
    if len(prompt) > MAX_PROMPT_CHARS:
        raise _KieError(422, f"input.prompt must be at most {MAX_PROMPT_CHARS} characters")
    return prompt


def _check_extension(where: str, url: Any, allowed: frozenset[str], names: str) -> None:
    if not isinstance(url, str) or not _is_http_url(url):
        raise _KieError(422, f"{where} must be a public http(s) URL")
    suffix = PurePosixPath(urlsplit(url).path).suffix.lower()
    if suffix not in allowed:
        raise _KieError(422, f"{where} must be a {names} file, not {suffix or 'no extension'}")


def _probe_video(path: Path) -> tuple[int, int, float] | None:
    """Width, height and length of a video file, or None when it does not decode."""
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                return None
            stream = container.streams.video[0]
            width, height = stream.codec_context.width, stream.codec_context.height
            if stream.duration is not None and stream.time_base is not None:
                seconds = float(stream.duration * stream.time_base)
            elif container.duration is not None:
                seconds = container.duration / av.time_base
            else:
                return None
    except (av.FFmpegError, OSError, ValueError):
        return None
    if not width or not height or seconds <= 0:
        return None
    return width, height, seconds


def _is_http_url(value: Any) -> bool:
    return isinstance(value, str) and value.startswith(("http://", "https://"))


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _even(n: int) -> int:
    return max(2, n - n % 2)


def _s3_error(status: int, code: str, message: str) -> Response:
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{code}</Code><Message>{message}</Message></Error>"
    )
    return Response(body, status_code=status, media_type="application/xml")
