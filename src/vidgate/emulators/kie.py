"""A local model of kie.ai's Sora 2 Market API, for development and tests without internet.

It serves `createTask`, `recordInfo` and `chat/credit` at kie's paths with kie's envelope
(`{"code", "msg", "data"}`, errors as HTTP 200 with the real code inside), fetches and decodes the
input images as kie would, walks `waiting → queuing → generating → success | fail` over time
read from an injectable clock, renders a real H.264 MP4 (marked EMULATED) per task, serves it at
an expiring URL and POSTs kie's callback body once on completion. Faults are chosen per request
by a marker in the prompt (`[fault:moderation]`, …) or for the next submit through
`POST /_control/faults`. Nothing is persisted. Protocol facts: docs/vendors.md
§2; where kie's behaviour is unconfirmed the choice is noted beside the code.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import logging
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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

MODELS = frozenset(
    {
        "sora-2-text-to-video",
        "sora-2-image-to-video",
        "sora-2-pro-text-to-video",
        "sora-2-pro-image-to-video",
    }
)
MAX_PROMPT_CHARS = 5000  # what the target wrapper enforces; kie's own limit is unconfirmed
MAX_IMAGE_BYTES = 10 * 1024 * 1024  # kie: JPEG/PNG/WEBP up to 10 MB
IMAGE_FORMATS = frozenset({"JPEG", "PNG", "WEBP"})
TASK_COST_CREDITS = 30  # UNCONFIRMED; only makes `chat/credit` move and 402 reachable
FAULTS = (
    "moderation",
    "invalid_input",
    "throttle",
    "server_error",
    "stuck",
    "slow",
    "insufficient_credits",
)
# Prompt markers and the control-endpoint fault each one stands for.
_MARKERS = {
    "moderation": "moderation",
    "invalid": "invalid_input",
    "throttle": "throttle",
    "5xx": "server_error",
    "stuck": "stuck",
    "slow": "slow",
    "credits": "insufficient_credits",
}
_MARKER = re.compile(r"\[fault:([a-z0-9]+)\]")
_MODERATION_FAIL = (
    "400",
    "Your prompt was flagged by Website as violating content policies.",
)
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
    param: dict[str, Any]
    prompt: str
    aspect_ratio: str
    image_path: Path | None
    callback_url: str | None
    fault: str | None  # "moderation" or "stuck": decided at submit, shown over time
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


class KieEmulator:
    """kie.ai's Sora 2 endpoints for one API key. Mount `router()`; point the adapter at
    `<base>/_emulator/kie`. Call `aclose()` when done to stop renders and callback watchers.
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
    ) -> None:
        self.api_key = api_key
        self.work_dir = work_dir
        self.public_base_url = public_base_url.rstrip("/")
        self.queue_seconds = queue_seconds
        self.run_seconds = run_seconds
        self.result_ttl_seconds = result_ttl_seconds
        self.render_height = render_height
        self.seconds = seconds
        self.slow_seconds = slow_seconds
        # kie answers errors as HTTP 200; True sends the inner code as the HTTP status as well.
        self.mirror_http_status = mirror_http_status
        self.credits = credits
        self._clock = clock or time.monotonic
        self._fetch = fetch
        self._owns_fetch = fetch is None
        self._tasks: dict[str, _Task] = {}
        self._results: dict[str, _Result] = {}
        self._next_fault: str | None = None
        self._log: list[dict[str, Any]] = []
        self._background = Background()
        self._render_slots: asyncio.Semaphore | None = None

    # -----------------------------------------------------------------------------------------
    # Hooks for tests and tools
    # -----------------------------------------------------------------------------------------

    def set_next_fault(self, fault: str | None) -> None:
        """Make the next `createTask` misbehave (one of `FAULTS`), or clear it."""
        if fault is not None and fault not in FAULTS:
            raise ValueError(f"unknown fault {fault!r}; one of {', '.join(FAULTS)}")
        self._next_fault = fault

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
        try:
            body = await request.json()
        except ValueError:
            body = None
        fault = body.get("next_submit") if isinstance(body, dict) else None
        if fault is not None and fault not in FAULTS:
            return JSONResponse(
                {"detail": f"next_submit must be one of {', '.join(FAULTS)} or null"},
                status_code=422,
            )
        self._next_fault = fault
        return JSONResponse({"next_submit": fault})

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

    async def _accept(self, body: Any) -> tuple[_Task, bool]:
        """Validate a createTask body the way kie does and start the task; (task, slow?)."""
        fault, self._next_fault = self._next_fault, None
        if not isinstance(body, dict):
            raise _KieError(422, "request body must be a JSON object")
        inputs = body.get("input")
        prompt = inputs.get("prompt") if isinstance(inputs, dict) else None
        if fault is None and isinstance(prompt, str):
            marker = _MARKER.search(prompt)
            if marker is not None:
                fault = _MARKERS.get(marker.group(1))
        # Throttling, outages and billing are decided before kie looks at the input.
        if fault == "throttle":
            raise _KieError(429, "Rate limited: too many requests, please try again later")
        if fault == "server_error":
            raise _KieError(500, "Server error, please try again later")
        if fault == "insufficient_credits" or self.credits < TASK_COST_CREDITS:
            raise _KieError(402, "The current credits are insufficient. Please top up.")
        if fault == "invalid_input":
            raise _KieError(422, "input is invalid")

        model = body.get("model")
        if not isinstance(model, str) or not model:
            raise _KieError(422, "model is required")
        if model not in MODELS:
            raise _KieError(422, f"model {model} is not supported")
        if not isinstance(inputs, dict):
            raise _KieError(422, "input is required")
        if not isinstance(prompt, str) or not prompt.strip():
            raise _KieError(422, "input.prompt is required")
        if len(prompt) > MAX_PROMPT_CHARS:
            raise _KieError(422, f"input.prompt must be at most {MAX_PROMPT_CHARS} characters")
        aspect = inputs.get("aspect_ratio", "landscape")
        if aspect not in ("landscape", "portrait"):
            raise _KieError(422, "input.aspect_ratio must be landscape or portrait")
        n_frames = inputs.get("n_frames", "10")
        if str(n_frames) not in ("10", "15"):
            raise _KieError(422, "input.n_frames must be 10 or 15")
        size = inputs.get("size")
        if size is not None and size not in ("standard", "high"):
            raise _KieError(422, "input.size must be standard or high")
        callback = body.get("callBackUrl")
        if callback is not None and not _is_http_url(callback):
            raise _KieError(422, "callBackUrl must be an http(s) URL")
        # Unknown fields (the wrapper's `quality`, for one) are accepted silently.

        task_id = secrets.token_hex(16)  # kie's ids are 32 hex digits
        image_path: Path | None = None
        if model.endswith("image-to-video"):
            urls = inputs.get("image_urls")
            if not isinstance(urls, list) or not urls:
                raise _KieError(422, "input.image_urls is required")
            for index, url in enumerate(urls):
                data = await self._fetch_image(index, url)
                if image_path is None:
                    image_path = self.work_dir / "inputs" / task_id
                    image_path.parent.mkdir(parents=True, exist_ok=True)
                    image_path.write_bytes(data)

        self.credits -= TASK_COST_CREDITS
        now = self._clock()
        task = _Task(
            task_id=task_id,
            model=model,
            param=body,
            prompt=prompt,
            aspect_ratio=aspect,
            image_path=image_path,
            callback_url=callback,
            fault=fault if fault in ("moderation", "stuck") else None,
            created_at=now,
            created_ms=int(time.time() * 1000),
            done_at=now + self.queue_seconds + self.run_seconds,
        )
        self._tasks[task_id] = task
        self._background.spawn(self._run(task))
        return task, fault == "slow"

    async def _fetch_image(self, index: int, url: Any) -> bytes:
        """Download one input image; it must be reachable and a JPEG/PNG/WEBP ≤ 10 MB."""
        where = f"input.image_urls[{index}]"
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
                        422, f"Failed to fetch the image ({where}: HTTP {response.status_code})"
                    )
                async for chunk in response.aiter_bytes():
                    size += len(chunk)
                    if size > MAX_IMAGE_BYTES:
                        raise _KieError(422, f"{where} is larger than 10 MB")
                    chunks.append(chunk)
        except httpx.HTTPError as exc:
            raise _KieError(422, f"Failed to fetch the image ({where}: {exc!r})") from None
        data = b"".join(chunks)
        try:
            with Image.open(io.BytesIO(data)) as image:
                image_format = image.format
                image.verify()
        except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
            raise _KieError(422, f"{where} is not a decodable image") from None
        if image_format not in IMAGE_FORMATS:
            raise _KieError(422, f"{where} must be JPEG, PNG or WEBP, not {image_format}")
        return data

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
        if task.fault == "moderation" or task.render_failed:
            return "fail"
        # Finished by the clock but the file is not written yet: still generating, honestly.
        return "success" if task.result_file is not None else "generating"

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
                data["failCode"], data["failMsg"] = "500", "Internal server error"
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
        long = _even(round(short * 16 / 9))
        width, height = (long, short) if task.aspect_ratio == "landscape" else (short, long)
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
                    # The requested length (`n_frames`, in seconds), so that what the adapter
                    # reports as billed is what was rendered; tests may force a shorter clip.
                    seconds=self.seconds or float(task.param.get("input", {}).get("n_frames", 10)),
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
        """POST kie's completion body to `callBackUrl`, once; failures are logged, not retried."""
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
        if self._fetch is None:
            self._fetch = httpx.AsyncClient(timeout=10.0, follow_redirects=True)
        try:
            response = await self._fetch.post(
                task.callback_url, json={"code": code, "msg": msg, "data": data}
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
        """kie's envelope, logged; HTTP 200 unless kie itself failed (or mirroring is on)."""
        if code == 200:
            http_status = 200
        elif code >= 500 or self.mirror_http_status:
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


def _is_http_url(value: Any) -> bool:
    return isinstance(value, str) and value.startswith(("http://", "https://"))


def _even(n: int) -> int:
    return max(2, n - n % 2)


def _s3_error(status: int, code: str, message: str) -> Response:
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{code}</Code><Message>{message}</Message></Error>"
    )
    return Response(body, status_code=status, media_type="application/xml")
