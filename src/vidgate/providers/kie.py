"""kie.ai's Sora 2 Market API (`createTask` / `recordInfo`) behind the `VideoProvider` protocol.

kie.ai answers most errors with HTTP 200 and the real status in the body's `code` field, so every
answer is classified by that inner code first and by the HTTP status only when the body has none.
Protocol facts: docs/vendors.md §2.
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
    ProviderError,
    Rejected,
    Submitted,
    TaskState,
    Throttled,
    UpstreamStatus,
    VideoRequest,
)

DEFAULT_BASE_URL = "https://api.kie.ai"
CREATE_PATH = "/api/v1/jobs/createTask"
RECORD_PATH = "/api/v1/jobs/recordInfo"

# kie's `state` values (docs/vendors.md §2.1).
_STATES = {
    "waiting": UpstreamStatus.PENDING,
    "queuing": UpstreamStatus.PENDING,
    "generating": UpstreamStatus.RUNNING,
    "success": UpstreamStatus.SUCCEEDED,
    "fail": UpstreamStatus.FAILED,
}
# Inner codes that mean "busy or down, try later": 429 rate limit, 455 service unavailable
# (UNCONFIRMED meaning), 500 internal error. Other 5xx are also treated as transient, except
# 501 "generation failed" and 505 "feature disabled", which will not change on retry.
_PERMANENT_5XX = frozenset({501, 505})


class KieSoraAdapter:
    """Sora 2 text/image-to-video through kie.ai.

    `quality="hd"` selects the `sora-2-pro-*` model with `input.size="high"`: kie's documented
    Sora 2 schema has no `quality` field, and `size` (standard|high) exists on the pro models only.
    The output length is pinned with `input.n_frames` (10 or 15 seconds) so that the billed
    duration is known instead of relying on kie's undocumented default.
    """

    name = "kie"

    def __init__(
        self,
        api_key: str,
        base_url: str = DEFAULT_BASE_URL,
        *,
        timeout: float = 30.0,
        max_concurrency: int = 8,
        callback_url: str | None = None,
        client: httpx.AsyncClient | None = None,
        seconds: Literal[10, 15] = 10,
    ) -> None:
        self._base_url = base_url.rstrip("/")
        self._headers = {"Authorization": f"Bearer {api_key}"}
        self._callback_url = callback_url
        self._seconds = seconds
        self._owns_client = client is None
        self._client = client or httpx.AsyncClient(timeout=timeout)
        self._timeout = httpx.Timeout(timeout)
        self._limit = asyncio.Semaphore(max_concurrency)

    # -----------------------------------------------------------------------------------------
    # VideoProvider
    # -----------------------------------------------------------------------------------------

    async def submit(self, request: VideoRequest) -> Submitted:
        """Create a task; returns kie's `taskId`. Never retried here: kie has no idempotency key."""
        body = self.build_body(request)
        try:
            async with self._limit:
                response = await self._client.post(
                    self._base_url + CREATE_PATH,
                    json=body,
                    headers=self._headers,
                    timeout=self._timeout,
                )
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            raise NotSent(f"kie.ai unreachable: {exc!r}") from exc
        except (
            httpx.TimeoutException,
            httpx.NetworkError,
            httpx.RemoteProtocolError,
            httpx.DecodingError,
        ) as exc:
            # The request may have been accepted (and billed) before the connection died.
            raise Ambiguous(f"kie.ai createTask outcome unknown: {exc!r}") from exc
        except httpx.HTTPError as exc:
            raise NotSent(f"kie.ai request not sent: {exc!r}") from exc

        envelope = _envelope(response)
        if envelope is None:
            if response.status_code == 200:
                # A 200 we cannot read may still have created a task.
                raise Ambiguous("kie.ai createTask: unreadable answer", status=200)
            raise _error_for(response.status_code, response.status_code, response, "createTask")
        code = _inner_code(envelope, response.status_code)
        if code != 200:
            raise _error_for(code, response.status_code, response, "createTask", envelope)
        data = envelope.get("data")
        task_id = data.get("taskId") if isinstance(data, dict) else None
        if not isinstance(task_id, str) or not task_id:
            raise Ambiguous("kie.ai createTask: success without a taskId", status=200)
        return Submitted(upstream_id=task_id, raw=envelope)

    async def fetch(self, upstream_id: str) -> TaskState:
        """The task's state from `recordInfo`; an id kie does not know is `UNKNOWN`."""
        try:
            async with self._limit:
                response = await self._client.get(
                    self._base_url + RECORD_PATH,
                    params={"taskId": upstream_id},
                    headers=self._headers,
                    timeout=self._timeout,
                )
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            raise NotSent(f"kie.ai unreachable: {exc!r}") from exc
        except httpx.HTTPError as exc:
            # Reading a task is idempotent, so a lost answer only means "ask again later".
            raise Throttled(f"kie.ai recordInfo failed: {exc!r}") from exc

        envelope = _envelope(response)
        if envelope is None:
            if response.status_code == 200:
                raise Throttled("kie.ai recordInfo: unreadable answer", status=200)
            raise _error_for(response.status_code, response.status_code, response, "recordInfo")
        code = _inner_code(envelope, response.status_code)
        if code == 404:
            return TaskState(upstream_id, UpstreamStatus.UNKNOWN, raw=envelope)
        if code != 200:
            raise _error_for(code, response.status_code, response, "recordInfo", envelope)
        data = envelope.get("data")
        if not isinstance(data, dict):
            # No record to read: as good as an id kie does not know.
            return TaskState(upstream_id, UpstreamStatus.UNKNOWN, raw=envelope)
        return self._task_state(upstream_id, data, envelope)

    async def cancel(self, upstream_id: str) -> bool:
        """kie.ai has no cancel endpoint; the task runs (and bills) to the end. Calls nothing."""
        return False

    async def aclose(self) -> None:
        if self._owns_client:
            await self._client.aclose()

    # -----------------------------------------------------------------------------------------
    # Wire format
    # -----------------------------------------------------------------------------------------

    def build_body(self, request: VideoRequest) -> dict[str, Any]:
        """The `createTask` body for a vidgate request (`Rejected` for kinds Sora cannot do)."""
        if request.kind == "text-to-video":
            suffix = "text-to-video"
        elif request.kind == "image-to-video":
            suffix = "image-to-video"
        else:
            raise Rejected(f"kie.ai Sora cannot do {request.kind!r}", code="UNSUPPORTED_KIND")
        pro = request.quality == "hd"
        inputs: dict[str, Any] = {
            "prompt": request.prompt or "",
            "aspect_ratio": request.aspect_ratio,
            "n_frames": str(self._seconds),
            "remove_watermark": not request.watermark,
        }
        if pro:
            inputs["size"] = "high"
        if request.kind == "image-to-video":
            urls = request.image_urls or ((request.image_url,) if request.image_url else ())
            inputs["image_urls"] = list(urls)
        body: dict[str, Any] = {
            "model": f"sora-2-pro-{suffix}" if pro else f"sora-2-{suffix}",
            "input": inputs,
        }
        if self._callback_url:
            body["callBackUrl"] = self._callback_url
        return body

    def _task_state(
        self, upstream_id: str, data: dict[str, Any], envelope: dict[str, Any]
    ) -> TaskState:
        state = str(data.get("state") or "").lower()
        status = _STATES.get(state, UpstreamStatus.RUNNING if state else UpstreamStatus.PENDING)
        progress = _progress(data.get("progress"))
        if status is UpstreamStatus.SUCCEEDED:
            urls = _result_urls(data.get("resultJson"))
            if not urls:
                # "success" without a file is useless to the caller; report it as a failure.
                return TaskState(
                    upstream_id,
                    UpstreamStatus.FAILED,
                    error_code="NO_RESULT",
                    error_message="kie.ai reported success without a result URL",
                    raw=envelope,
                )
            return TaskState(
                upstream_id,
                status,
                progress=100,
                result_url=urls[0],
                billed_seconds=float(self._billed_seconds(data)),
                raw=envelope,
            )
        if status is UpstreamStatus.FAILED:
            return TaskState(
                upstream_id,
                status,
                progress=progress,
                error_code=str(data.get("failCode") or "") or None,
                error_message=str(data.get("failMsg") or "") or None,
                raw=envelope,
            )
        return TaskState(upstream_id, status, progress=progress, raw=envelope)

    def _billed_seconds(self, data: dict[str, Any]) -> int:
        """The output length: `n_frames` as the task recorded it, else what this adapter sends."""
        param = _json_object(data.get("param"))
        inputs = param.get("input") if param else None
        if isinstance(inputs, dict):
            try:
                return int(str(inputs.get("n_frames")))
            except ValueError:
                pass
        return self._seconds


# ---------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------


def _envelope(response: httpx.Response) -> dict[str, Any] | None:
    try:
        body = response.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def _inner_code(envelope: dict[str, Any], http_status: int) -> int:
    """The body's `code` (authoritative); the HTTP status when the body has none."""
    code = envelope.get("code")
    if isinstance(code, int) and not isinstance(code, bool):
        return code
    if isinstance(code, str) and code.isdigit():
        return int(code)
    return http_status


def _error_for(
    code: int,
    http_status: int,
    response: httpx.Response,
    what: str,
    envelope: dict[str, Any] | None = None,
) -> ProviderError:
    """The typed error for an inner (or HTTP) error code."""
    msg = ""
    if envelope is not None:
        msg = str(envelope.get("msg") or envelope.get("message") or "")
    text = f"kie.ai {what}: {code} {msg}".rstrip()
    if code == 429 or (code >= 500 and code not in _PERMANENT_5XX) or code == 455:
        return Throttled(
            text,
            code=str(code),
            status=http_status,
            retry_after=_retry_after(response.headers.get("retry-after")),
        )
    return Rejected(text, code=str(code), status=http_status)


def _retry_after(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None  # an HTTP date; rare enough to ignore


def _json_object(value: Any) -> dict[str, Any] | None:
    """kie nests JSON documents as strings (`param`, `resultJson`); accept an object too."""
    if isinstance(value, dict):
        return value
    if not isinstance(value, str) or not value:
        return None
    try:
        decoded = json.loads(value)
    except ValueError:
        return None
    return decoded if isinstance(decoded, dict) else None


def _result_urls(value: Any) -> list[str]:
    result = _json_object(value) or {}
    urls = result.get("resultUrls")
    if not isinstance(urls, list):
        return []
    return [u for u in urls if isinstance(u, str) and u]


def _progress(value: Any) -> int | None:
    """A `progress` percentage if kie sends one (its Sora records show none so far)."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    return max(0, min(100, round(number))) if math.isfinite(number) else None
