"""A local model of DashScope's Wan2.2-Animate async API, for work without internet.

It speaks the vendor's paths, headers, error envelope and task state machine, fetches and checks
the input media the way the vendor does, and renders a real (EMULATED-marked) MP4 as the result.
Tasks live in memory; time is read from an injectable clock so tests can skip ahead, and the
state is computed from elapsed time whenever a task is read.

Faults: `POST /_control/faults` arms one for the next submit(s); a marker in the image or video
URL's file name (`fault-moderation`, `fault-invalid`, `fault-throttle`, `fault-5xx`,
`fault-stuck`, `fault-slow`) selects one per request.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import shutil
import time
import uuid
from collections import deque
from collections.abc import Callable
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

__all__ = ["PREFIX", "DashScopeEmulator", "Fault"]

PREFIX = "/_emulator/dashscope"
SUBMIT_PATH = "/api/v1/services/aigc/image2video/video-synthesis"

Fault = Literal["moderation", "invalid_input", "throttle", "server_error", "stuck", "slow"]
_FAULTS: frozenset[str] = frozenset(
    {"moderation", "invalid_input", "throttle", "server_error", "stuck", "slow"}
)
_MARKERS: dict[str, Fault] = {
    "fault-moderation": "moderation",
    "fault-invalid": "invalid_input",
    "fault-throttle": "throttle",
    "fault-5xx": "server_error",
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


@dataclass
class _Result:
    path: Path
    expires_at: float  # emulator clock


@dataclass
class _Armed:
    fault: Fault
    remaining: int


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
    """DashScope's Wan2.2-Animate endpoints under `PREFIX`; mount `router()` in a FastAPI app.

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
        self.clock = clock
        self._fetch = fetch
        self._owns_fetch = fetch is None
        self._fetch_timeout = fetch_timeout
        self._tasks: dict[str, _Task] = {}
        self._results: dict[str, _Result] = {}
        self._armed: _Armed | None = None
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
        router.add_api_route("/api/v1/tasks/{task_id}", self._query, methods=["GET"])
        router.add_api_route("/api/v1/tasks/{task_id}/cancel", self._cancel, methods=["POST"])
        router.add_api_route("/results/{file_name}", self._result, methods=["GET", "HEAD"])
        router.add_api_route("/_control/faults", self._control_faults, methods=["POST"])
        router.add_api_route("/_control/requests", self._control_requests, methods=["GET"])
        return router

    async def _submit(self, request: Request) -> Response:
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
            task, delay = await self._create(request, raw)
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
        if (fault is not None and fault not in _FAULTS) or not isinstance(count, int):
            return JSONResponse(
                {"detail": f"next_submit must be one of {sorted(_FAULTS)} or null"},
                status_code=422,
            )
        if "slow_seconds" in body:
            self.slow_seconds = float(body["slow_seconds"])
        self.arm(fault, count)
        armed = self._armed
        return JSONResponse(
            {
                "next_submit": armed.fault if armed else None,
                "count": armed.remaining if armed else 0,
            }
        )

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
        if armed is not None:
            armed.remaining -= 1
            if armed.remaining <= 0:
                self._armed = None
            return armed.fault
        inputs = body.get("input")
        if isinstance(inputs, dict):
            for key in ("image_url", "video_url"):
                url = inputs.get(key)
                if isinstance(url, str):
                    name = _file_name(url)
                    for marker, fault in _MARKERS.items():
                        if marker in name:
                            return fault
        return None

    async def _create(self, request: Request, raw: bytes) -> tuple[_Task, float]:
        """Validate like the vendor, fetch the inputs, register the task; returns it and a delay."""
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
        model, mode, image_url, video_url = _validate_body(body)
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
                    caption=f"{task.model} {task.mode}",
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


def _check_ratio(kind: str, width: int, height: int, side: tuple[int, int]) -> None:
    lo, hi = side
    if not (lo <= width <= hi and lo <= height <= hi):
        raise _ApiError(
            400,
            "InvalidParameter",
            f"The size of input {kind} is not match the requirement: width and height must be "
            f"within [{lo}, {hi}] pixels, got {width}x{height}.",
        )
    if max(width, height) / min(width, height) > MAX_ASPECT:
        raise _ApiError(
            400,
            "InvalidParameter",
            f"The aspect ratio of input {kind} must be between 1:3 and 3:1, got {width}x{height}.",
        )


def _check_image(path: Path) -> None:
    try:
        with Image.open(path) as image:
            image.verify()
        with Image.open(path) as image:
            if image.format not in ("JPEG", "PNG", "BMP", "WEBP"):
                raise _unsupported("image")
            width, height = image.size
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise _unsupported("image") from exc
    _check_ratio("image", width, height, IMAGE_SIDE)


def _probe_video(path: Path) -> tuple[int, int, float]:
    """Width, height and duration of the reference video, or the vendor's format error."""
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
    _check_ratio("video", width, height, VIDEO_SIDE)
    return width, height, seconds
