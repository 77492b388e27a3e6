"""A local model of fal.ai's queue API for the Wan video models vidgate routes there.

Mounted under `/_emulator/fal` (point `FalAdapter(base_url=<app>/_emulator/fal)` at it), it answers
`POST /{model}` with absolute status/response/cancel URLs that drop the model's sub-path as fal's
do, walks IN_QUEUE → IN_PROGRESS → COMPLETED on an injectable clock with `queue_position` and
runner logs, and caps how many requests of the account run at once (fal starts accounts at 2;
the rest wait IN_QUEUE, never refused). Like fal, the queue takes any JSON body: the model checks
its input when it runs, so bad input is a COMPLETED request whose result is `422 {"detail": [...]}`.
Inputs are fetched and decoded as the runner would; the result is a real H.264 MP4 marked
EMULATED. A request submitted with `?fal_webhook=` gets one POST of fal's webhook body, signed
with the emulator's Ed25519 key, whose JWKS is served at `/_emulator/fal/.well-known/jwks.json`.

Faults: `POST /_control/faults` arms one for the next submit(s) (`{"next_submit", "count",
"slow_seconds", "concurrency"}`), or a marker `fault-<name>` in the prompt or an input URL picks
one per request. Nothing is persisted. Protocol facts: docs/vendors.md §7; where
fal's behaviour is unconfirmed the choice is noted beside the code.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import logging
import math
import re
import secrets
import shutil
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import unquote, urlsplit

import av
import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, JSONResponse, Response
from PIL import Image, UnidentifiedImageError

from vidgate.emulators.background import Background

from .render import render_animation

__all__ = [
    "ANIMATE_MOVE",
    "ANIMATE_REPLACE",
    "FAULTS",
    "JWKS_PATH",
    "MODELS",
    "PREFIX",
    "WAN27_I2V",
    "WAN27_T2V",
    "FalEmulator",
    "Fault",
]

PREFIX = "/_emulator/fal"
JWKS_PATH = "/.well-known/jwks.json"

ANIMATE_MOVE = "fal-ai/wan/v2.2-14b/animate/move"
ANIMATE_REPLACE = "fal-ai/wan/v2.2-14b/animate/replace"
WAN27_T2V = "fal-ai/wan/v2.7/text-to-video"
WAN27_I2V = "fal-ai/wan/v2.7/image-to-video"
_Family = Literal["animate", "t2v", "i2v"]
MODELS: dict[str, _Family] = {
    ANIMATE_MOVE: "animate",
    ANIMATE_REPLACE: "animate",
    WAN27_T2V: "t2v",
    WAN27_I2V: "i2v",
}

Fault = Literal[
    "throttle",
    "server_error",
    "unauthorized",
    "credits",
    "content_policy",
    "runner_error",
    "stuck",
    "slow",
    "ignore_cancel",
]
FAULTS: frozenset[str] = frozenset(
    {
        "throttle",
        "server_error",
        "unauthorized",
        "credits",
        "content_policy",
        "runner_error",
        "stuck",
        "slow",
        "ignore_cancel",
    }
)
# `fault-<marker>` in the prompt or an input URL's file name, and the fault it stands for.
_MARKERS: dict[str, Fault] = {
    "throttle": "throttle",
    "5xx": "server_error",
    "401": "unauthorized",
    "credits": "credits",
    "content": "content_policy",
    "runner": "runner_error",
    "stuck": "stuck",
    "slow": "slow",
    "nocancel": "ignore_cancel",
}
_MARKER = re.compile(r"fault-([a-z0-9]+)")

# Input limits from fal's model pages (docs/vendors.md §7.2).
PROMPT_MAX = 5000
NEGATIVE_PROMPT_MAX = 500
ASPECTS = ("16:9", "9:16", "1:1", "4:3", "3:4")
WAN27_RESOLUTIONS = ("720p", "1080p")
ANIMATE_RESOLUTIONS = ("480p", "580p", "720p")
DURATION_RANGE = (2, 15)
IMAGE_MAX_BYTES = 20 * 1024 * 1024
VIDEO_MAX_BYTES = 200 * 1024 * 1024  # UNCONFIRMED for fal's animate; DashScope's limit
IMAGE_FORMATS = frozenset({"JPEG", "PNG", "BMP", "WEBP"})
ANIMATE_MAX_SECONDS = 30.0  # UNCONFIRMED; output follows the driving video, capped here
FPS = {"animate": 16, "t2v": 16, "i2v": 16}  # Wan renders at 16 fps; the emulator follows

_POLL_SECONDS = 0.05  # how often a webhook watcher re-reads the (injectable) clock
_RENDER_CONCURRENCY = 2
_ERROR_DOC = "https://docs.fal.ai/errors#"

log = logging.getLogger(__name__)


class _Answer(Exception):
    """An HTTP answer fal gives at the queue (not a model result)."""

    def __init__(
        self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(str(body))
        self.status = status
        self.body = body
        self.headers = headers or {}

    def response(self) -> JSONResponse:
        return JSONResponse(self.body, status_code=self.status, headers=self.headers)


def _field_error(field_name: str, msg: str, kind: str, value: Any = None) -> dict[str, Any]:
    """One entry of a model error's `detail[]`, shaped as fal documents it."""
    entry: dict[str, Any] = {
        "loc": ["body", field_name],
        "msg": msg,
        "type": kind,
        "url": _ERROR_DOC + kind,
    }
    if value is not None:
        entry["input"] = value
    return entry


@dataclass
class _Outcome:
    """What a finished request's result URL answers."""

    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class _Req:
    request_id: str
    model: str
    app: str
    family: _Family
    body: dict[str, Any]
    webhook_url: str | None
    fault: Fault | None
    created: float  # emulator clock
    ready_at: float  # earliest start (created + queue_seconds)
    errors: list[dict[str, Any]]  # input validation errors, found when the runner starts
    started: float | None = None
    ends_at: float | None = None  # None while queued, and forever for a stuck request
    finished: float | None = None
    canceled: bool = False
    work: asyncio.Task[None] | None = None  # input fetch + render
    work_done: bool = False
    failure: list[dict[str, Any]] | None = None  # model errors found by the work (422)
    result_file: str | None = None
    rendered: tuple[int, int, float, int] | None = None  # width, height, seconds, frames
    file_size: int = 0
    webhook_sent: bool = False
    seed: int = field(default_factory=lambda: secrets.randbelow(2**31))


@dataclass
class _Armed:
    fault: Fault
    remaining: int


def _app_of(model: str) -> str:
    parts = model.split("/")
    take = 3 if parts[0] in ("workflows", "comfy") else 2
    return "/".join(parts[:take])


def _file_name(url: str) -> str:
    return unquote(urlsplit(url).path.rsplit("/", 1)[-1])


def _even(n: float) -> int:
    return max(2, round(n / 2) * 2)


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _iso(wall: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(wall)) + f".{int(wall % 1 * 1e6):06d}"


class FalEmulator:
    """fal's queue for one API key. Mount `router()`; call `aclose()` to stop background work.

    `public_base_url` is the app's external root (absolute URLs are built from it). Time is read
    from `clock`; `wall_clock` stamps logs and signs webhooks. `concurrency` is how many requests
    run at once (fal's starting limit is 2). `honour_cancel` makes a running request stop when it
    is cancelled (fal only signals the runner; the `ignore_cancel` fault turns it off per request).
    """

    def __init__(
        self,
        *,
        api_key: str,
        work_dir: Path,
        public_base_url: str,
        queue_seconds: float = 1.0,
        run_seconds: float = 3.0,
        concurrency: int = 2,
        render_height: int = 360,
        seconds: float | None = None,
        slow_seconds: float = 30.0,
        throttle_retry_after: int = 1,
        result_ttl_seconds: float = 7 * 86400,
        honour_cancel: bool = True,
        user_id: str = "emulated-user",
        signing_key: Ed25519PrivateKey | None = None,
        fetch: httpx.AsyncClient | None = None,
        fetch_timeout: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self.api_key = api_key
        self.work_dir = work_dir
        self.public_base_url = public_base_url.rstrip("/")
        self.queue_seconds = queue_seconds
        self.run_seconds = run_seconds
        self.concurrency = concurrency
        self.render_height = render_height
        self.seconds = seconds  # forces every render's length (tests keep renders short)
        self.slow_seconds = slow_seconds
        self.throttle_retry_after = throttle_retry_after
        self.result_ttl_seconds = result_ttl_seconds
        self.honour_cancel = honour_cancel
        self.user_id = user_id
        self.clock = clock
        self.wall_clock = wall_clock
        self._key = signing_key or Ed25519PrivateKey.generate()
        self._kid = secrets.token_hex(8)
        self._fetch = fetch
        self._owns_fetch = fetch is None
        self._fetch_timeout = fetch_timeout
        self._reqs: dict[str, _Req] = {}
        self._open: list[_Req] = []  # not finished, in submission order: the queue is FIFO
        self._sim_time = float("-inf")
        self._results: dict[str, tuple[Path, float]] = {}
        self._armed: _Armed | None = None
        self._log: deque[dict[str, Any]] = deque(maxlen=1000)
        self._webhooks: list[dict[str, Any]] = []
        self._background = Background()
        self._render_slots: asyncio.Semaphore | None = None
        self._closing = asyncio.Event()

    # -- hooks for tests and tools ---------------------------------------------------------------

    def arm(self, fault: Fault | None, count: int = 1) -> None:
        """Make the next `count` submits behave as `fault` (None disarms)."""
        if fault is not None and fault not in FAULTS:
            raise ValueError(f"unknown fault {fault!r}; one of {', '.join(sorted(FAULTS))}")
        self._armed = _Armed(fault, count) if fault is not None and count > 0 else None

    @property
    def requests(self) -> list[dict[str, Any]]:
        """Every call the queue endpoints received, oldest first."""
        return list(self._log)

    @property
    def webhooks(self) -> list[dict[str, Any]]:
        """Every webhook delivery attempted: url, headers, body (bytes) and the answer's status."""
        return list(self._webhooks)

    @property
    def jwks(self) -> dict[str, Any]:
        public = self._key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        return {
            "keys": [
                {
                    "kty": "OKP",
                    "crv": "Ed25519",
                    "x": _b64url(public),
                    "kid": self._kid,
                    "use": "sig",
                    "alg": "EdDSA",
                }
            ]
        }

    @property
    def jwks_url(self) -> str:
        return f"{self.public_base_url}{PREFIX}{JWKS_PATH}"

    def request_ids(self) -> list[str]:
        return list(self._reqs)

    def status_of(self, request_id: str) -> str | None:
        req = self._reqs.get(request_id)
        if req is None:
            return None
        self._advance()
        return self._status(req)

    async def wait_settled(self, request_id: str) -> None:
        """Until the request's input fetch and render are over (or were never going to happen)."""
        work = self._reqs[request_id].work
        if work is not None:
            with contextlib.suppress(BaseException):
                await asyncio.shield(work)

    async def wait_webhooks(self) -> None:
        """Until every webhook watcher has delivered (or given up)."""
        await self._background.wait()

    async def aclose(self) -> None:
        self._closing.set()
        await self._background.cancel()
        if self._owns_fetch and self._fetch is not None:
            await self._fetch.aclose()
            self._fetch = None

    # -- routes ----------------------------------------------------------------------------------

    def router(self) -> APIRouter:
        router = APIRouter(prefix=PREFIX, tags=["emulators"], include_in_schema=False)
        router.add_api_route(
            "/_control/faults", self._control_faults, methods=["POST"], response_model=None
        )
        router.add_api_route(
            "/_control/requests", self._control_requests, methods=["GET"], response_model=None
        )
        router.add_api_route(JWKS_PATH, self._jwks, methods=["GET"], response_model=None)
        router.add_api_route(
            "/files/{name}", self._file, methods=["GET", "HEAD"], response_model=None
        )
        router.add_api_route(
            "/{app:path}/requests/{request_id}/status",
            self._status_route,
            methods=["GET"],
            response_model=None,
        )
        router.add_api_route(
            "/{app:path}/requests/{request_id}/cancel",
            self._cancel_route,
            methods=["PUT"],
            response_model=None,
        )
        router.add_api_route(
            "/{app:path}/requests/{request_id}",
            self._result_route,
            methods=["GET"],
            response_model=None,
        )
        router.add_api_route("/{model:path}", self._submit, methods=["POST"], response_model=None)
        return router

    async def _submit(self, model: str, request: Request) -> Response:
        raw = await request.body()
        body: Any = None
        with contextlib.suppress(ValueError):
            body = json.loads(raw) if raw else None
        entry = self._entry(request, body)
        try:
            req = await self._accept(model, request, body)
        except _Answer as answer:
            entry.update(status=answer.status)
            return answer.response()
        entry.update(status=200, request_id=req.request_id)
        if req.fault == "slow":
            # The request is queued already; only the answer is late, as when a gateway stalls.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._closing.wait(), timeout=self.slow_seconds)
        self._advance()
        return JSONResponse(self._view(req, logs=False))

    async def _status_route(self, app: str, request_id: str, request: Request) -> Response:
        entry = self._entry(request, None)
        try:
            self._check_key(request)
            req = self._find(app, request_id)
        except _Answer as answer:
            entry.update(status=answer.status)
            return answer.response()
        self._advance()
        logs = request.query_params.get("logs", "0").lower() in ("1", "true")
        view = self._view(req, logs=logs)
        status = 200 if view["status"] == "COMPLETED" else 202
        entry.update(status=status, state=view["status"])
        return JSONResponse(view, status_code=status)

    async def _result_route(self, app: str, request_id: str, request: Request) -> Response:
        entry = self._entry(request, None)
        try:
            self._check_key(request)
            req = self._find(app, request_id)
        except _Answer as answer:
            entry.update(status=answer.status)
            return answer.response()
        self._advance()
        if self._status(req) != "COMPLETED":
            # UNCONFIRMED: fal's answer for a result asked too early; 400 with a detail here.
            entry.update(status=400)
            return JSONResponse({"detail": "Request is still in progress"}, status_code=400)
        outcome = self._outcome(req)
        entry.update(status=outcome.status)
        return JSONResponse(outcome.body, status_code=outcome.status, headers=outcome.headers)

    async def _cancel_route(self, app: str, request_id: str, request: Request) -> Response:
        entry = self._entry(request, None)
        try:
            self._check_key(request)
            req = self._find(app, request_id)
        except _Answer as answer:
            if answer.status == 404:
                answer = _Answer(404, {"status": "NOT_FOUND"})
            entry.update(status=answer.status)
            return answer.response()
        self._advance()
        state = self._status(req)
        if state == "COMPLETED" or req.finished is not None:
            entry.update(status=400, answer="ALREADY_COMPLETED")
            # UNCONFIRMED: the HTTP status of each cancel answer; fal documents the bodies only.
            return JSONResponse({"status": "ALREADY_COMPLETED"}, status_code=400)
        now = self.clock()
        if req.started is None:
            # A queued request is removed: it never runs and is never billed.
            self._finish(req, now, canceled=True)
        elif self.honour_cancel and req.fault != "ignore_cancel":
            # The runner got the signal and stopped; the slot is free at once.
            self._finish(req, now, canceled=True)
        if req.work is not None and req.canceled:
            req.work.cancel()
        entry.update(status=202, answer="CANCELLATION_REQUESTED")
        return JSONResponse({"status": "CANCELLATION_REQUESTED"}, status_code=202)

    async def _file(self, name: str) -> Response:
        found = self._results.get(name)
        if found is None or not found[0].is_file() or self.clock() >= found[1]:
            return JSONResponse({"detail": "Not Found"}, status_code=404)
        return FileResponse(found[0], media_type="video/mp4")

    async def _jwks(self) -> Response:
        return JSONResponse(self.jwks, headers={"Cache-Control": "public, max-age=3600"})

    async def _control_faults(self, request: Request) -> Response:
        try:
            body = await request.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            return JSONResponse({"detail": "expected a JSON object"}, status_code=422)
        fault = body.get("next_submit")
        count = body.get("count", 1)
        concurrency = body.get("concurrency")
        if (
            (fault is not None and fault not in FAULTS)
            or not isinstance(count, int)
            or (concurrency is not None and (not isinstance(concurrency, int) or concurrency < 1))
        ):
            return JSONResponse(
                {
                    "detail": f"next_submit must be one of {sorted(FAULTS)} or null, count an "
                    "integer, concurrency a positive integer"
                },
                status_code=422,
            )
        if "slow_seconds" in body:
            self.slow_seconds = float(body["slow_seconds"])
        if concurrency is not None:
            self._advance()
            self.concurrency = concurrency
        if "next_submit" in body:
            self.arm(fault, count)
        armed = self._armed
        return JSONResponse(
            {
                "next_submit": armed.fault if armed else None,
                "count": armed.remaining if armed else 0,
                "concurrency": self.concurrency,
            }
        )

    async def _control_requests(self) -> Response:
        return JSONResponse({"requests": self.requests})

    # -- submit ----------------------------------------------------------------------------------

    def _entry(self, request: Request, body: Any) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "at": self.clock(),
            "method": request.method,
            "path": request.url.path,
            "query": dict(request.query_params),
            "body": body,
        }
        self._log.append(entry)
        return entry

    def _check_key(self, request: Request) -> None:
        scheme, _, key = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "key" or not secrets.compare_digest(
            key.strip().encode(), self.api_key.encode()
        ):
            # fal's answer to an unknown key; a missing header gets the same here (UNCONFIRMED).
            raise _Answer(401, {"detail": "No user found for Key ID and Secret"})

    def _take_fault(self, body: dict[str, Any]) -> Fault | None:
        armed = self._armed
        if armed is not None:
            armed.remaining -= 1
            if armed.remaining <= 0:
                self._armed = None
            return armed.fault
        for key in ("prompt", "image_url", "video_url"):
            value = body.get(key)
            if not isinstance(value, str):
                continue
            text = value if key == "prompt" else _file_name(value)
            marker = _MARKER.search(text)
            if marker is not None and marker.group(1) in _MARKERS:
                return _MARKERS[marker.group(1)]
        return None

    async def _accept(self, model: str, request: Request, body: Any) -> _Req:
        self._check_key(request)
        model = model.strip("/")
        family = MODELS.get(model)
        if family is None:
            # UNCONFIRMED wording; fal answers an unknown app or endpoint with a 404.
            raise _Answer(404, {"detail": f"Application '{model}' not found"})
        if not isinstance(body, dict):
            raise _Answer(
                422,
                {
                    "detail": [
                        {
                            "loc": ["body"],
                            "msg": "Input should be a valid object",
                            "type": "dict_type",
                        }
                    ]
                },
            )
        webhook = request.query_params.get("fal_webhook")
        if webhook is not None and not webhook.startswith(("http://", "https://")):
            raise _Answer(400, {"detail": "fal_webhook must be an http(s) URL"})
        fault = self._take_fault(body)
        if fault == "throttle":
            raise _Answer(
                429,
                {"detail": "Too many requests, please slow down"},
                {"Retry-After": str(self.throttle_retry_after)},
            )
        if fault == "server_error":
            raise _Answer(
                500,
                {"detail": "An unexpected internal error occurred", "error_type": "internal_error"},
                {"X-Fal-Error-Type": "internal_error"},
            )
        if fault == "unauthorized":
            raise _Answer(401, {"detail": "No user found for Key ID and Secret"})
        if fault == "credits":
            raise _Answer(
                403,
                {
                    "detail": "User is locked. Reason: Exhausted balance. "
                    "Top up your balance at fal.ai/dashboard/billing."
                },
            )

        now = self.clock()
        request_id = str(uuid.uuid4())
        req = _Req(
            request_id=request_id,
            model=model,
            app=_app_of(model),
            family=family,
            body=body,
            webhook_url=webhook,
            fault=fault,
            created=now,
            ready_at=now + self.queue_seconds,
            errors=_validate(family, body),
        )
        self._reqs[request_id] = req
        self._open.append(req)
        if not req.errors and fault not in ("content_policy", "runner_error", "stuck"):
            req.work = self._background.spawn(self._work(req))
        if req.work is None:
            req.work_done = True
        if webhook is not None:
            self._background.spawn(self._watch(req))
        self._sweep()
        return req

    # -- the queue -------------------------------------------------------------------------------

    def _run_length(self, req: _Req) -> float | None:
        if req.fault == "stuck":
            return None
        if req.errors:
            return 0.0  # the runner refuses the input as soon as it reads it
        return self.run_seconds

    def _advance(self) -> None:
        """Replay dispatches and completions up to now, in time order, under the concurrency cap."""
        now = self.clock()
        while True:
            running = [r for r in self._open if r.started is not None]
            queued = next((r for r in self._open if r.started is None), None)
            ends = [r for r in running if r.ends_at is not None]
            finish = min(ends, key=lambda r: r.ends_at or 0.0) if ends else None
            start_at = (
                max(queued.ready_at, self._sim_time)
                if queued is not None and len(running) < self.concurrency
                else math.inf
            )
            finish_at = (
                finish.ends_at if finish is not None and finish.ends_at is not None else math.inf
            )
            if min(start_at, finish_at) > now:
                self._sim_time = max(self._sim_time, now)
                return
            if finish is not None and finish_at <= start_at:
                self._sim_time = max(self._sim_time, finish_at)
                self._finish(finish, finish_at)
            else:
                assert queued is not None
                self._sim_time = max(self._sim_time, start_at)
                queued.started = start_at
                length = self._run_length(queued)
                queued.ends_at = None if length is None else start_at + length

    def _finish(self, req: _Req, at: float, *, canceled: bool = False) -> None:
        req.finished = at
        req.canceled = canceled
        req.ends_at = at  # a queued request keeps started=None: it never ran
        with contextlib.suppress(ValueError):
            self._open.remove(req)

    def _status(self, req: _Req) -> str:
        if req.finished is None:
            return "IN_QUEUE" if req.started is None else "IN_PROGRESS"
        if not req.canceled and not req.work_done:
            return "IN_PROGRESS"  # finished by the clock, but the file is not written yet
        return "COMPLETED"

    def _queue_position(self, req: _Req) -> int:
        position = 0
        for other in self._open:
            if other is req:
                break
            if other.started is None:
                position += 1
        return position

    def _urls(self, req: _Req) -> dict[str, str]:
        base = f"{self.public_base_url}{PREFIX}/{req.app}/requests/{req.request_id}"
        return {
            "response_url": base,
            "status_url": base + "/status",
            "cancel_url": base + "/cancel",
        }

    def _view(self, req: _Req, *, logs: bool) -> dict[str, Any]:
        status = self._status(req)
        view: dict[str, Any] = {"status": status, "request_id": req.request_id, **self._urls(req)}
        if status == "IN_QUEUE":
            view["queue_position"] = self._queue_position(req)
        view["logs"] = self._logs(req) if logs and status != "IN_QUEUE" else None
        if status == "COMPLETED":
            ran = 0.0
            if req.started is not None and req.finished is not None:
                ran = max(0.0, req.finished - req.started)
            view["metrics"] = {"inference_time": round(ran, 3)}
        return view

    def _logs(self, req: _Req) -> list[dict[str, Any]]:
        if req.started is None:
            return []
        wall = self.wall_clock() - (self.clock() - req.started)
        lines = [(0.0, "Loading model weights")]
        if req.errors:
            lines.append((0.0, "Input validation failed"))
        else:
            lines.append((0.0, f"Generating video with {req.model}"))
            elapsed = (req.finished if req.finished is not None else self.clock()) - req.started
            steps = 20
            done = steps
            if req.finished is None:
                done = min(steps, int(steps * elapsed / max(self.run_seconds, 1e-9)))
            lines.extend((elapsed * s / steps, f"Step {s}/{steps}") for s in range(1, done + 1))
        return [
            {"message": message, "level": "INFO", "source": "user", "timestamp": _iso(wall + at)}
            for at, message in lines
        ]

    def _find(self, app: str, request_id: str) -> _Req:
        req = self._reqs.get(request_id)
        if req is None or req.app != app.strip("/"):
            raise _Answer(404, {"detail": f"Request {request_id} not found"})
        return req

    def _sweep(self) -> None:
        now = self.clock()
        for name, (path, expires) in list(self._results.items()):
            if now >= expires:
                path.unlink(missing_ok=True)
                del self._results[name]

    # -- results ---------------------------------------------------------------------------------

    def _outcome(self, req: _Req) -> _Outcome:
        if req.canceled:
            # A fal app answers a cancel with 499; the platform adds error_type (UNCONFIRMED).
            return _Outcome(
                499,
                {"detail": "Request cancelled by the client.", "error_type": "client_cancelled"},
                {"X-Fal-Error-Type": "client_cancelled"},
            )
        if req.errors:
            return _Outcome(422, {"detail": req.errors}, {"X-Fal-Retryable": "false"})
        if req.fault == "content_policy":
            field_name = "prompt" if isinstance(req.body.get("prompt"), str) else "image_url"
            return _Outcome(
                422,
                {
                    "detail": [
                        _field_error(
                            field_name,
                            "The content could not be processed because it contained material "
                            "flagged by a content checker.",
                            "content_policy_violation",
                            req.body.get(field_name),
                        )
                    ]
                },
                {"X-Fal-Retryable": "false"},
            )
        if req.fault == "runner_error":
            return _Outcome(
                503,
                {
                    "detail": "No runner could be allocated to handle the request",
                    "error_type": "runner_scheduling_failure",
                },
                {"X-Fal-Error-Type": "runner_scheduling_failure"},
            )
        if req.failure is not None:
            return _Outcome(422, {"detail": req.failure}, {"X-Fal-Retryable": "false"})
        if req.result_file is None or req.rendered is None:
            return _Outcome(
                500,
                {
                    "detail": "The runner encountered an internal error",
                    "error_type": "runner_server_error",
                },
                {"X-Fal-Error-Type": "runner_server_error"},
            )
        width, height, seconds, frames = req.rendered
        video: dict[str, Any] = {
            "url": f"{self.public_base_url}{PREFIX}/files/{req.result_file}",
            "content_type": "video/mp4",
            "file_name": req.result_file,
            "file_size": req.file_size,
        }
        payload: dict[str, Any] = {"video": video, "seed": req.seed}
        if req.family == "animate":
            payload["prompt"] = "EMULATED: a person moving like the reference video"
        else:
            # Wan 2.7's output describes the file; animate's does not (fal's schemas).
            video.update(
                width=width,
                height=height,
                fps=FPS[req.family],
                duration=round(seconds, 3),
                num_frames=frames,
            )
            payload["actual_prompt"] = req.body.get("prompt") or ""
        return _Outcome(200, payload)

    # -- background work ---------------------------------------------------------------------------

    async def _work(self, req: _Req) -> None:
        """Fetch and decode the inputs as the runner would, then render the result."""
        folder = self.work_dir / "inputs" / req.request_id
        try:
            image_path: Path | None = None
            seconds = float(req.body.get("duration", 5)) if req.family != "animate" else 5.0
            image_url = req.body.get("image_url")
            if isinstance(image_url, str):
                image_path = await self._download(
                    req, "image_url", image_url, folder, IMAGE_MAX_BYTES
                )
                if image_path is None:
                    return
                if not await asyncio.to_thread(_is_image, image_path):
                    req.failure = [
                        _field_error(
                            "image_url", "Failed to load the image", "image_load_error", image_url
                        )
                    ]
                    return
            video_url = req.body.get("video_url")
            if req.family == "animate" and isinstance(video_url, str):
                video_path = await self._download(
                    req, "video_url", video_url, folder, VIDEO_MAX_BYTES
                )
                if video_path is None:
                    return
                probed = await asyncio.to_thread(_video_seconds, video_path)
                if probed is None:
                    req.failure = [
                        _field_error(
                            "video_url", "Failed to load the video", "video_load_error", video_url
                        )
                    ]
                    return
                seconds = min(probed, ANIMATE_MAX_SECONDS)
            await self._render(req, image_path, self.seconds or seconds)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("fal emulator: work for %s failed", req.request_id)
        finally:
            req.work_done = True
            shutil.rmtree(folder, ignore_errors=True)

    async def _download(
        self, req: _Req, field_name: str, url: str, folder: Path, limit: int
    ) -> Path | None:
        """The input on disk, or None with `req.failure` set (fal: `file_download_error`)."""
        if self._fetch is None:
            self._fetch = httpx.AsyncClient(follow_redirects=True)
        target = folder / field_name
        await asyncio.to_thread(folder.mkdir, parents=True, exist_ok=True)
        reason: str | None = None
        try:
            async with self._fetch.stream("GET", url, timeout=self._fetch_timeout) as response:
                if response.status_code != 200:
                    reason = f"HTTP {response.status_code}"
                else:
                    size = 0
                    with target.open("wb") as out:
                        async for chunk in response.aiter_bytes():
                            size += len(chunk)
                            if size > limit:
                                reason = f"larger than {limit // (1024 * 1024)} MB"
                                break
                            out.write(chunk)
        except httpx.HTTPError as exc:
            reason = type(exc).__name__
        if reason is None:
            return target
        req.failure = [
            _field_error(
                field_name, f"Failed to download the file: {reason}", "file_download_error", url
            )
        ]
        return None

    async def _render(self, req: _Req, image_path: Path | None, seconds: float) -> None:
        if self._render_slots is None:
            self._render_slots = asyncio.Semaphore(_RENDER_CONCURRENCY)
        short = self.render_height
        aspect = str(req.body.get("aspect_ratio", "16:9"))
        width, height = _frame_size(req.family, aspect, image_path, short)
        name = f"{secrets.token_urlsafe(18)}.mp4"  # unguessable, like fal's CDN names
        out = self.work_dir / "results" / name
        caption = str(req.body.get("prompt") or req.model)
        caption = caption if len(caption) <= 60 else caption[:59] + "…"
        fps = FPS[req.family]
        async with self._render_slots:
            written = await asyncio.to_thread(
                render_animation,
                image_path,
                out,
                seconds=seconds,
                fps=fps,
                width=width,
                height=height,
                caption=caption,
            )
        req.rendered = (width, height, written, max(1, round(seconds * fps)))
        req.file_size = out.stat().st_size
        req.result_file = name
        self._results[name] = (out, self.clock() + self.result_ttl_seconds)

    async def _watch(self, req: _Req) -> None:
        """POST the signed webhook once the request is COMPLETED (never for a stuck one)."""
        if req.fault == "stuck":
            return
        while True:
            self._advance()
            if self._status(req) == "COMPLETED":
                break
            await asyncio.sleep(_POLL_SECONDS)
        await self._send_webhook(req)

    async def _send_webhook(self, req: _Req) -> None:
        if req.webhook_sent or req.webhook_url is None:
            return
        req.webhook_sent = True
        outcome = self._outcome(req)
        event: dict[str, Any] = {
            "request_id": req.request_id,
            "gateway_request_id": req.request_id,
        }
        if outcome.status < 300:
            event.update(status="OK", payload=outcome.body, error=None)
        else:
            event.update(
                status="ERROR",
                payload=outcome.body,
                error=f"Invalid status code: {outcome.status}",
            )
        body = json.dumps(event).encode()
        headers = self.sign(req.request_id, body)
        headers["Content-Type"] = "application/json"
        record: dict[str, Any] = {"url": req.webhook_url, "headers": headers, "body": body}
        self._webhooks.append(record)
        if self._fetch is None:
            self._fetch = httpx.AsyncClient(follow_redirects=True)
        try:
            response = await self._fetch.post(
                req.webhook_url, content=body, headers=headers, timeout=10.0
            )
        except httpx.HTTPError as exc:
            # fal retries 10 times over 2 hours; the emulator tries once and logs.
            log.warning("fal emulator: webhook for %s failed: %r", req.request_id, exc)
            record["status"] = None
            return
        record["status"] = response.status_code

    def sign(self, request_id: str, body: bytes, *, timestamp: int | None = None) -> dict[str, str]:
        """fal's webhook signature headers for `body` (tests use it to build their own)."""
        stamp = str(int(self.wall_clock()) if timestamp is None else timestamp)
        message = "\n".join((request_id, self.user_id, stamp, hashlib.sha256(body).hexdigest()))
        signature = self._key.sign(message.encode()).hex()
        return {
            "X-Fal-Webhook-Request-Id": request_id,
            "X-Fal-Webhook-User-Id": self.user_id,
            "X-Fal-Webhook-Timestamp": stamp,
            "X-Fal-Webhook-Signature": signature,
        }


# ---------------------------------------------------------------------------------------------
# The models' input rules (what their runners check)
# ---------------------------------------------------------------------------------------------


def _validate(family: _Family, body: dict[str, Any]) -> list[dict[str, Any]]:
    """The model's input errors (pydantic's types, as fal's runners answer them); [] if none.

    The type names besides `content_policy_violation` follow pydantic v2 and are UNCONFIRMED
    for fal's Wan apps.
    """
    errors: list[dict[str, Any]] = []

    def url(name: str, required: bool) -> None:
        value = body.get(name)
        if value is None:
            if required:
                errors.append(_field_error(name, "Field required", "missing"))
            return
        if not isinstance(value, str) or not value.startswith(("http://", "https://", "data:")):
            errors.append(_field_error(name, "Input should be a valid URL", "url_parsing", value))

    def text(name: str, required: bool, limit: int) -> None:
        value = body.get(name)
        if value is None:
            if required:
                errors.append(_field_error(name, "Field required", "missing"))
            return
        if not isinstance(value, str):
            errors.append(
                _field_error(name, "Input should be a valid string", "string_type", value)
            )
        elif len(value) > limit:
            errors.append(
                _field_error(
                    name, f"String should have at most {limit} characters", "string_too_long", value
                )
            )

    def choice(name: str, allowed: tuple[str, ...]) -> None:
        value = body.get(name)
        if value is not None and value not in allowed:
            listed = ", ".join(f"'{a}'" for a in allowed)
            errors.append(_field_error(name, f"Input should be {listed}", "literal_error", value))

    def duration() -> None:
        value = body.get("duration")
        if value is None:
            return
        number: int | None = None
        if isinstance(value, int) and not isinstance(value, bool):
            number = value
        elif isinstance(value, str) and value.isdigit():
            number = int(value)  # pydantic's lax mode takes "5"
        if number is None:
            errors.append(
                _field_error("duration", "Input should be a valid integer", "int_type", value)
            )
            return
        lo, hi = DURATION_RANGE
        if number < lo:
            errors.append(
                _field_error("duration", f"Input should be >= {lo}", "greater_than_equal", value)
            )
        elif number > hi:
            errors.append(
                _field_error("duration", f"Input should be <= {hi}", "less_than_equal", value)
            )

    if family == "animate":
        url("video_url", True)
        url("image_url", True)
        choice("resolution", ANIMATE_RESOLUTIONS)
    elif family == "t2v":
        text("prompt", True, PROMPT_MAX)
        text("negative_prompt", False, NEGATIVE_PROMPT_MAX)
        choice("aspect_ratio", ASPECTS)
        choice("resolution", WAN27_RESOLUTIONS)
        duration()
    else:
        url("image_url", True)
        url("end_image_url", False)
        text("prompt", False, PROMPT_MAX)
        text("negative_prompt", False, NEGATIVE_PROMPT_MAX)
        choice("resolution", WAN27_RESOLUTIONS)
        duration()
        if body.get("video_url") is not None and body.get("image_url") is not None:
            errors.append(
                _field_error(
                    "video_url", "video_url cannot be combined with image_url", "value_error"
                )
            )
    return errors


def _is_image(path: Path) -> bool:
    try:
        with Image.open(path) as image:
            image.verify()
        with Image.open(path) as image:
            return image.format in IMAGE_FORMATS
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        return False


def _video_seconds(path: Path) -> float | None:
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                return None
            stream = container.streams.video[0]
            if stream.duration is not None and stream.time_base is not None:
                return float(stream.duration * stream.time_base)
            if container.duration is not None:
                return container.duration / av.time_base
    except (av.error.FFmpegError, OSError, ValueError):
        return None
    return None


def _frame_size(
    family: _Family, aspect: str, image_path: Path | None, short: int
) -> tuple[int, int]:
    """Output size: t2v from `aspect_ratio`; i2v and animate follow the image."""
    ratio = 16 / 9
    if family == "t2v":
        a, _, b = aspect.partition(":")
        with contextlib.suppress(ValueError, ZeroDivisionError):
            ratio = int(a) / int(b)
    elif image_path is not None:
        with contextlib.suppress(OSError, UnidentifiedImageError), Image.open(image_path) as image:
            width, height = image.size
            ratio = width / height if height else ratio
    if ratio >= 1:
        return _even(short * ratio), _even(short)
    return _even(short), _even(short / ratio)
