"""Alibaba Cloud DashScope over its async HTTP API: Wan2.2-Animate (`wan2.2-animate-move` /
`-mix`) for the animate kinds, and Wan text-to-video / image-to-video (`video-synthesis`, both body
dialects: providers/dashscope_video.py) for the other two, with one key and one base URL.

Submit creates a task (there is no idempotency key, so a resubmit bills twice: the error classes
below decide when a retry is safe), fetch polls it, cancel works only while it is queued.
Both regions speak the same protocol; pick one with `base_url` (Beijing `dashscope.aliyuncs.com`,
Singapore `dashscope-intl.aliyuncs.com`) and a key from that region.
"""

from __future__ import annotations

import asyncio
import json
import math
from typing import Any, Literal

import httpx

from .base import (
    Ambiguous,
    NotSent,
    Rejected,
    Submitted,
    TaskState,
    Throttled,
    UpstreamStatus,
    VideoRequest,
    retry_after_seconds,
)
from .dashscope_video import (
    VIDEO_KINDS,
    VIDEO_PATH,
    ChannelModelError,
    build_video_body,
    channel_rejection,
)

__all__ = ["DEFAULT_BASE_URL", "INTL_BASE_URL", "MODELS", "DashScopeAdapter"]

DEFAULT_BASE_URL = "https://dashscope.aliyuncs.com"
INTL_BASE_URL = "https://dashscope-intl.aliyuncs.com"
SUBMIT_PATH = "/api/v1/services/aigc/image2video/video-synthesis"

MODELS: dict[str, str] = {
    "animate-move": "wan2.2-animate-move",
    "animate-mix": "wan2.2-animate-mix",
}

# Exceptions raised before any byte of the request left this process: a retry cannot duplicate.
_NOT_SENT: tuple[type[Exception], ...] = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.PoolTimeout,
    httpx.UnsupportedProtocol,
    httpx.InvalidURL,
    httpx.LocalProtocolError,
)
# DashScope's answer to cancelling a task that is no longer queued (or unknown).
_CANNOT_CANCEL = "UnsupportedOperation"

_Op = Literal["submit", "fetch", "cancel"]


def _json(response: httpx.Response) -> dict[str, Any] | None:
    try:
        body = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None
    return body if isinstance(body, dict) else None


def _seconds(value: Any) -> float | None:
    """A non-negative number of seconds from a JSON number or numeric string, else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        try:
            seconds = float(value.strip())
        except ValueError:
            return None
    else:
        return None
    return seconds if math.isfinite(seconds) and seconds >= 0 else None


def _billed_seconds(usage: Any) -> float | None:
    """The billed length from `usage`: `duration` (video-synthesis, wan2.6+) or `video_duration`
    (animate, older Wan). Either may come as a string; some answers carry both, one of them 0, so
    the first positive value wins."""
    if not isinstance(usage, dict):
        return None
    found = [
        seconds
        for seconds in (_seconds(usage.get("duration")), _seconds(usage.get("video_duration")))
        if seconds is not None
    ]
    positive = [seconds for seconds in found if seconds > 0]
    if positive:
        return positive[0]
    return found[0] if found else None


class DashScopeAdapter:
    """`VideoProvider` for DashScope: Wan2.2-Animate for `animate-move` / `animate-mix`, Wan
    video-synthesis for `text-to-video` / `image-to-video` (the model, and so the body dialect, is
    `VideoRequest.model`). Safe to share between tasks; close with `aclose()`."""

    name = "dashscope"

    def __init__(
        self,
        api_key: str,
        base_url: str = DEFAULT_BASE_URL,
        *,
        timeout: float = 30.0,
        max_concurrency: int = 8,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        if max_concurrency < 1:
            raise ValueError("max_concurrency must be at least 1")
        self.base_url = base_url.rstrip("/")
        self._api_key = api_key
        # Per request, so a shared client's own timeout does not silently win.
        self._timeout = httpx.Timeout(timeout)
        self._owns_client = client is None
        self._client = client if client is not None else httpx.AsyncClient()
        # DashScope limits per root account and in-flight tasks; callers share this cap.
        self._slots = asyncio.Semaphore(max_concurrency)

    # -- protocol ------------------------------------------------------------------------------

    async def submit(self, request: VideoRequest) -> Submitted:
        """Create a task; raises `NotSent`, `Rejected`, `Throttled` or `Ambiguous`."""
        if request.kind in VIDEO_KINDS:
            return await self._submit_video(request)
        body = self.build_body(request)
        try:
            response = await self._call("submit", "POST", SUBMIT_PATH, body)
        except Rejected as exc:  # the channel's own problems are told apart, as for video
            recoded = channel_rejection(exc)
            if recoded is exc:
                raise
            raise recoded from exc
        return self._submitted(response)

    async def _submit_video(self, request: VideoRequest) -> Submitted:
        """Text- or image-to-video. Refusals about the channel itself (key, model access, account
        in arrears, a model id that cannot do the kind) come back `Rejected` with a `channel_…`
        code, so a router can try another channel; the vendor's code stays in the message."""
        try:
            body = build_video_body(request)
        except ChannelModelError as exc:
            raise Rejected(f"DashScope: {exc}", code="channel_config") from exc
        except ValueError as exc:
            raise Rejected(f"DashScope: {exc}", code="invalid_request") from exc
        try:
            response = await self._call("submit", "POST", VIDEO_PATH, body)
        except Rejected as exc:
            recoded = channel_rejection(exc)
            if recoded is exc:
                raise
            raise recoded from exc
        return self._submitted(response)

    @staticmethod
    def _submitted(response: httpx.Response) -> Submitted:
        data = _json(response) or {}
        output = data.get("output")
        task_id = output.get("task_id") if isinstance(output, dict) else None
        if not isinstance(task_id, str) or not task_id:
            # A 200 without a task id: the request was processed, but we cannot find the task.
            raise Ambiguous("DashScope accepted the request but returned no task_id")
        return Submitted(upstream_id=task_id, raw=data)

    async def fetch(self, upstream_id: str) -> TaskState:
        """The task's current state; `UNKNOWN` once DashScope forgot it (24 h)."""
        response = await self._call("fetch", "GET", f"/api/v1/tasks/{upstream_id}", None)
        data = _json(response)
        output = data.get("output") if data else None
        if not isinstance(output, dict):
            raise Throttled("DashScope task query returned no output", status=response.status_code)
        assert data is not None
        raw_status = output.get("task_status")
        try:
            status = UpstreamStatus(str(raw_status))
        except ValueError:
            # An unforeseen value is not a verdict; poll again rather than guess.
            raise Throttled(
                f"DashScope returned unknown task_status {raw_status!r}",
                status=response.status_code,
            ) from None
        result_url: str | None = None
        results = output.get("results")
        if isinstance(results, dict) and isinstance(results.get("video_url"), str):
            result_url = results["video_url"]
        elif isinstance(output.get("video_url"), str):
            result_url = output["video_url"]  # video-synthesis and older Wan models put it here
        billed = _billed_seconds(data.get("usage"))
        code = output.get("code")
        message = output.get("message")
        return TaskState(
            upstream_id=str(output.get("task_id") or upstream_id),
            status=status,
            # DashScope reports no progress; only the terminal success pins it.
            progress=100 if status is UpstreamStatus.SUCCEEDED else None,
            result_url=result_url,
            billed_seconds=billed,
            error_code=str(code) if code is not None else None,
            error_message=str(message) if message is not None else None,
            raw=data,
        )

    async def cancel(self, upstream_id: str) -> bool:
        """Cancel a queued task; False when DashScope says it is past PENDING."""
        try:
            await self._call("cancel", "POST", f"/api/v1/tasks/{upstream_id}/cancel", None)
        except Rejected as exc:
            if exc.code is not None and exc.code.startswith(_CANNOT_CANCEL):
                return False
            raise
        return True

    async def aclose(self) -> None:
        if self._owns_client:
            await self._client.aclose()

    # -- wire format ---------------------------------------------------------------------------

    @staticmethod
    def build_body(request: VideoRequest) -> dict[str, Any]:
        """The create-task body; `ValueError` for kinds or inputs animate cannot take."""
        model = MODELS.get(request.kind)
        if model is None:
            raise ValueError(f"DashScope Wan2.2-Animate cannot do {request.kind!r}")
        if not request.image_url or not request.video_url:
            raise ValueError(f"{request.kind} needs both image_url and video_url")
        return {
            "model": model,
            # watermark belongs in input for animate, not in parameters.
            "input": {
                "image_url": request.image_url,
                "video_url": request.video_url,
                "watermark": request.watermark,
            },
            "parameters": {"mode": request.mode, "check_image": request.check_image},
        }

    def _headers(self, op: _Op) -> dict[str, str]:
        headers = {"Authorization": f"Bearer {self._api_key}"}
        if op == "submit":
            # HTTP callers must opt in to async; without it DashScope refuses the call.
            headers["X-DashScope-Async"] = "enable"
            headers["Content-Type"] = "application/json"
        return headers

    async def _call(
        self, op: _Op, method: str, path: str, body: dict[str, Any] | None
    ) -> httpx.Response:
        """Send one request and turn every failure into the error class the caller acts on."""
        content = json.dumps(body).encode() if body is not None else None
        async with self._slots:
            try:
                response = await self._client.request(
                    method,
                    self.base_url + path,
                    content=content,
                    headers=self._headers(op),
                    timeout=self._timeout,
                )
            except _NOT_SENT as exc:
                raise NotSent(f"DashScope {op}: not sent: {exc!r}") from exc
            except httpx.TransportError as exc:
                # Read/write timeouts, dropped connections: the request may have been processed.
                if op == "submit":
                    raise Ambiguous(f"DashScope submit: outcome unknown: {exc!r}") from exc
                raise Throttled(f"DashScope {op}: {exc!r}") from exc
        if response.is_success:
            return response
        raise self._classify(op, response)

    def _classify(self, op: _Op, response: httpx.Response) -> Exception:
        status = response.status_code
        envelope = _json(response) or {}
        code = envelope.get("code")
        code = str(code) if code else None
        message = str(envelope.get("message") or response.reason_phrase or f"HTTP {status}")
        text = f"DashScope {op}: HTTP {status} {code or ''}: {message}".replace("  ", " ")
        if status == 429 or (code is not None and code.startswith("Throttling")):
            return Throttled(
                text,
                code=code,
                status=status,
                retry_after=retry_after_seconds(response.headers),
            )
        if status >= 500 or status == 408:
            if op != "submit":
                return Throttled(
                    text,
                    code=code,
                    status=status,
                    retry_after=retry_after_seconds(response.headers),
                )
            # Submit: DashScope's own error table lists 500 InternalError as retryable, and a
            # JSON envelope without output.task_id means its API layer answered with no task made;
            # 503 means the service refused to take work. Both are "busy before acceptance".
            # A 502/504 or a bare gateway page may hide a request the backend did process, and
            # 408 is a timeout on DashScope's side: those stay ambiguous.
            if (status == 500 and code is not None and code.startswith("InternalError")) or (
                status == 503
            ):
                return Throttled(
                    text,
                    code=code,
                    status=status,
                    retry_after=retry_after_seconds(response.headers),
                )
            return Ambiguous(text, code=code, status=status)
        # 4xx with the {request_id, code, message} envelope (InvalidParameter, InvalidApiKey,
        # AccessDenied, DataInspectionFailed, Arrearage, ...): the provider said no.
        return Rejected(text, code=code or f"HTTP{status}", status=status)
