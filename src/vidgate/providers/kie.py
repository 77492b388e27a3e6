"""kie.ai's market jobs API (`createTask` / `recordInfo`) behind the `VideoProvider` protocol.

One pair of endpoints serves every model kie sells; the `model` field picks it and the `input`
object differs per model family. `KieMarketAdapter` takes the model from `VideoRequest.model`
(the channel's vendor model id) and maps the request into that family's `input`:

- `wan/2-2-animate-move`, `wan/2-2-animate-replace` (animate-move, animate-mix)
- `wan/2-6-text-to-video`, `wan/2-6-image-to-video`
- `kling-2.6/text-to-video`, `kling-2.6/image-to-video`
- `sora-2-*` (the four Sora 2 models), and Sora 2 chosen by quality when no model is given.

kie.ai answers most errors with HTTP 200 and the real status in the body's `code` field, so every
answer is classified by that inner code first and by the HTTP status only when the body has none.
Completion callbacks may carry kie's HMAC headers: `verify_callback` checks them and
`KieMarketAdapter.parse_callback` turns the body into the same `TaskState` `fetch` gives.
`KieSoraAdapter` is the original Sora-only adapter, kept with its error codes. Protocol facts:
docs/vendors.md §2.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import math
import re
from collections.abc import Mapping
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
    retry_after_seconds,
)

__all__ = [
    "CHANNEL_AUTH",
    "CHANNEL_CREDITS",
    "CHANNEL_UNAVAILABLE",
    "CHANNEL_UNSUPPORTED",
    "DEFAULT_BASE_URL",
    "MODELS",
    "SIGNATURE_HEADER",
    "SORA_MODELS",
    "TIMESTAMP_HEADER",
    "KieMarketAdapter",
    "KieSoraAdapter",
    "callback_signature",
    "classify",
    "parse_callback",
    "verify_callback",
]

DEFAULT_BASE_URL = "https://api.kie.ai"
CREATE_PATH = "/api/v1/jobs/createTask"
RECORD_PATH = "/api/v1/jobs/recordInfo"
TIMESTAMP_HEADER = "X-Webhook-Timestamp"
SIGNATURE_HEADER = "X-Webhook-Signature"

# `Rejected.code` values that blame the channel (key, account, model), not the user's input:
# the router may send the task to another channel.
CHANNEL_AUTH = "channel_auth"  # the key is missing, wrong or revoked
CHANNEL_CREDITS = "channel_credits"  # the kie account (or its sub-key) is out of credits
CHANNEL_UNAVAILABLE = "channel_unavailable"  # model not served, paused or under maintenance
CHANNEL_UNSUPPORTED = "channel_unsupported"  # the channel's model cannot do what was asked

_Family = Literal["sora", "wan-animate", "wan-2.6", "kling-2.6"]

SORA_MODELS: frozenset[str] = frozenset(
    {
        "sora-2-text-to-video",
        "sora-2-image-to-video",
        "sora-2-pro-text-to-video",
        "sora-2-pro-image-to-video",
    }
)
# Every model this adapter can map: its family and the one vidgate kind it serves.
MODELS: dict[str, tuple[_Family, str]] = {
    "wan/2-2-animate-move": ("wan-animate", "animate-move"),
    "wan/2-2-animate-replace": ("wan-animate", "animate-mix"),
    "wan/2-6-text-to-video": ("wan-2.6", "text-to-video"),
    "wan/2-6-image-to-video": ("wan-2.6", "image-to-video"),
    "kling-2.6/text-to-video": ("kling-2.6", "text-to-video"),
    "kling-2.6/image-to-video": ("kling-2.6", "image-to-video"),
    **{m: ("sora", m.removeprefix("sora-2-").removeprefix("pro-")) for m in sorted(SORA_MODELS)},
}
# Output lengths (seconds) each family accepts; kie takes them as strings.
_DURATIONS: dict[_Family, tuple[int, ...]] = {
    "sora": (10, 15),
    "wan-2.6": (5, 10, 15),
    "kling-2.6": (5, 10),
}
_DEFAULT_SECONDS = 5
_ANIMATE_RESOLUTION = {"wan-std": "480p", "wan-pro": "720p"}
_RESOLUTION = {"standard": "720p", "hd": "1080p"}
_ASPECT = {"landscape": "16:9", "portrait": "9:16"}

# kie's `state` values (docs/vendors.md §2.1).
_STATES = {
    "waiting": UpstreamStatus.PENDING,
    "queuing": UpstreamStatus.PENDING,
    "generating": UpstreamStatus.RUNNING,
    "success": UpstreamStatus.SUCCEEDED,
    "fail": UpstreamStatus.FAILED,
}
# A 422 whose message says the model itself is not served: the channel's fault, not the input's.
_MODEL_UNSUPPORTED = re.compile(
    r"\bmodel\b(?:(?!\.\s)[^;:\n]){0,80}?"  # "model", then words up to the end of a sentence
    r"\b(?:not\s+supported|unsupported|not\s+exists?|does\s+not\s+exist|doesn't\s+exist"
    r"|not\s+found|not\s+available|unavailable|not\s+enabled|disabled|offline)\b"
    r"|\b(?:unsupported|unknown|invalid)\s+model\b"
    r"|\bmodel\s+(?:name\s+)?(?:is\s+)?invalid\b",
    re.IGNORECASE,
)
# The original Sora adapter's table: 501 "generation failed" and 505 "feature disabled" will
# not change on retry; every other 5xx, 429 and 455 are transient.
_LEGACY_PERMANENT_5XX = frozenset({501, 505})


class KieMarketAdapter:
    """Any kie.ai market model vidgate maps, chosen per request by `VideoRequest.model`.

    Without a model, Sora 2 is used as the original adapter did: `quality="hd"` selects the
    `sora-2-pro-*` model with `input.size="high"` (kie's Sora 2 schema has no `quality` field,
    and `size` exists on the pro models only). Sora's length is pinned with `input.n_frames`
    (`seconds`, 10 by default, when the request asks for none) so the billed duration is known.
    A model, kind or duration the channel cannot serve is refused before anything is sent, as
    `Rejected(code="channel_unsupported")`.
    """

    name = "kie"
    _legacy = False

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
            if response.status_code in (200, 502, 504):
                # A 200 we cannot read, or a gateway's own page, may hide a created task.
                raise Ambiguous(
                    f"kie.ai createTask: unreadable answer (HTTP {response.status_code})",
                    status=response.status_code,
                )
            raise self._error(response.status_code, response, "createTask")
        code = _inner_code(envelope, response.status_code)
        if code != 200:
            raise self._error(code, response, "createTask", envelope)
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
            raise self._error(response.status_code, response, "recordInfo")
        code = _inner_code(envelope, response.status_code)
        if code == 404:
            return TaskState(upstream_id, UpstreamStatus.UNKNOWN, raw=envelope)
        if code != 200:
            raise self._error(code, response, "recordInfo", envelope)
        data = envelope.get("data")
        if not isinstance(data, dict):
            # No record to read: as good as an id kie does not know.
            return TaskState(upstream_id, UpstreamStatus.UNKNOWN, raw=envelope)
        return _task_state(upstream_id, data, envelope, self._seconds)

    async def cancel(self, upstream_id: str) -> bool:
        """kie.ai has no cancel endpoint; the task runs (and bills) to the end. Calls nothing."""
        return False

    async def aclose(self) -> None:
        if self._owns_client:
            await self._client.aclose()

    def parse_callback(self, payload: Mapping[str, Any]) -> TaskState:
        """The `TaskState` a (verified) completion callback body reports, as `fetch` would."""
        return parse_callback(payload, default_seconds=self._seconds)

    # -----------------------------------------------------------------------------------------
    # Wire format
    # -----------------------------------------------------------------------------------------

    def build_body(self, request: VideoRequest) -> dict[str, Any]:
        """The `createTask` body for a vidgate request; `request.extra` goes on top of `input`."""
        model = request.model or self._default_model(request)
        spec = MODELS.get(model)
        if spec is None:
            raise Rejected(f"kie.ai: no mapping for model {model!r}", code=CHANNEL_UNSUPPORTED)
        family, kind = spec
        if kind != request.kind:
            raise Rejected(
                f"kie.ai model {model!r} does {kind}, not {request.kind}",
                code=CHANNEL_UNSUPPORTED,
            )
        if family == "wan-animate":
            inputs = _animate_input(request)
        elif family == "sora":
            inputs = self._sora_input(request, model)
        else:
            inputs = _video_input(request, family, model)
        inputs.update(request.extra)
        body: dict[str, Any] = {"model": model, "input": inputs}
        if self._callback_url:
            body["callBackUrl"] = self._callback_url
        return body

    def _default_model(self, request: VideoRequest) -> str:
        """Sora 2 by kind and quality, as the original adapter chose it."""
        if request.kind not in ("text-to-video", "image-to-video"):
            raise Rejected(
                f"kie.ai Sora cannot do {request.kind!r}",
                code="UNSUPPORTED_KIND" if self._legacy else CHANNEL_UNSUPPORTED,
            )
        pro = "pro-" if request.quality == "hd" else ""
        return f"sora-2-{pro}{request.kind}"

    def _sora_input(self, request: VideoRequest, model: str) -> dict[str, Any]:
        seconds: int = self._seconds  # the original adapter always pinned its own length
        if not self._legacy:
            seconds = _duration(request, model, "sora", default=self._seconds)
        inputs: dict[str, Any] = {
            "prompt": request.prompt or "",
            "aspect_ratio": request.aspect_ratio,
            "n_frames": str(seconds),
            "remove_watermark": not request.watermark,
        }
        if model.startswith("sora-2-pro-") and request.quality == "hd":
            inputs["size"] = "high"
        if request.kind == "image-to-video":
            inputs["image_urls"] = list(_images(request))
        return inputs

    def _error(
        self,
        code: int,
        response: httpx.Response,
        what: str,
        envelope: dict[str, Any] | None = None,
    ) -> ProviderError:
        if self._legacy:
            return _legacy_error(code, response, what, envelope)
        return classify(code, response.status_code, _message(envelope), what, response)


class KieSoraAdapter(KieMarketAdapter):
    """The original Sora 2 adapter, kept for the channels and tasks that already use it.

    It maps requests as `KieMarketAdapter` does (Sora's length is always its own `seconds`), but
    keeps its original error codes:
    `Rejected.code` is kie's numeric code as a string ("401", "402", "422", "505", …; a kind Sora
    cannot do is "UNSUPPORTED_KIND"), and 501/505 are rejected while other 5xx are throttled.
    New channels use `KieMarketAdapter`, whose `channel_*` codes let the router fail over.
    """

    _legacy = True


# ---------------------------------------------------------------------------------------------
# Mapping per family
# ---------------------------------------------------------------------------------------------


def _images(request: VideoRequest) -> tuple[str, ...]:
    return request.image_urls or ((request.image_url,) if request.image_url else ())


def _duration(request: VideoRequest, model: str, family: _Family, *, default: int) -> int:
    allowed = _DURATIONS[family]
    seconds = request.duration if request.duration is not None else default
    if seconds not in allowed:
        raise Rejected(
            f"kie.ai model {model!r} cannot make {seconds} s "
            f"(only {', '.join(map(str, allowed))} s)",
            code=CHANNEL_UNSUPPORTED,
        )
    return seconds


def _animate_input(request: VideoRequest) -> dict[str, Any]:
    """wan/2-2-animate-*: the person image, the reference video and the output resolution."""
    inputs: dict[str, Any] = {"resolution": _ANIMATE_RESOLUTION[request.mode]}
    if request.video_url:
        inputs["video_url"] = request.video_url
    if request.image_url or request.image_urls:
        inputs["image_url"] = request.image_url or request.image_urls[0]
    return inputs


def _video_input(request: VideoRequest, family: _Family, model: str) -> dict[str, Any]:
    """wan/2-6-* and kling-2.6/*: prompt, one image for i2v, duration as a string."""
    seconds = _duration(request, model, family, default=_DEFAULT_SECONDS)
    inputs: dict[str, Any] = {"prompt": request.prompt or "", "duration": str(seconds)}
    if request.kind == "image-to-video":
        # Both families take exactly one image; the output follows its aspect ratio.
        inputs["image_urls"] = list(_images(request)[:1])
    if family == "wan-2.6":
        inputs["resolution"] = _RESOLUTION[request.quality]  # no aspect field on Wan 2.6
    else:
        inputs["sound"] = False  # Kling 2.6 has no resolution field; sound doubles the price
        if request.kind == "text-to-video":
            inputs["aspect_ratio"] = _ASPECT[request.aspect_ratio]
    return inputs


# ---------------------------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------------------------


def classify(
    code: int,
    http_status: int,
    message: str,
    what: str = "createTask",
    response: httpx.Response | None = None,
) -> ProviderError:
    """The typed error for kie's inner (or HTTP) code on a market answer.

    | code | error | `code` |
    |---|---|---|
    | 401, 403 | Rejected | channel_auth |
    | 402, 433 | Rejected | channel_credits |
    | 422 naming the model as not served | Rejected | channel_unavailable |
    | 422 otherwise, other 4xx | Rejected | the number |
    | 429 | Throttled (Retry-After) | 429 |
    | 455 (maintenance) | Throttled (Retry-After) | channel_unavailable |
    | 505 (feature disabled) | Rejected | channel_unavailable |
    | 500, 501 and every other 5xx | Throttled (Retry-After) | the number |
    """
    text = f"kie.ai {what}: {code} {message}".rstrip()
    retry_after = retry_after_seconds(response.headers) if response else None
    if code in (401, 403):
        return Rejected(text, code=CHANNEL_AUTH, status=http_status)
    if code in (402, 433):
        return Rejected(text, code=CHANNEL_CREDITS, status=http_status)
    if code == 422 and _MODEL_UNSUPPORTED.search(message):
        return Rejected(text, code=CHANNEL_UNAVAILABLE, status=http_status)
    if code == 455:
        return Throttled(
            text, code=CHANNEL_UNAVAILABLE, status=http_status, retry_after=retry_after
        )
    if code == 505:
        return Rejected(text, code=CHANNEL_UNAVAILABLE, status=http_status)
    if code == 429 or code >= 500:
        return Throttled(text, code=str(code), status=http_status, retry_after=retry_after)
    return Rejected(text, code=str(code), status=http_status)


def _legacy_error(
    code: int,
    response: httpx.Response,
    what: str,
    envelope: dict[str, Any] | None = None,
) -> ProviderError:
    """The original Sora adapter's classification, numeric codes only."""
    text = f"kie.ai {what}: {code} {_message(envelope)}".rstrip()
    http_status = response.status_code
    if code == 429 or (code >= 500 and code not in _LEGACY_PERMANENT_5XX) or code == 455:
        return Throttled(
            text,
            code=str(code),
            status=http_status,
            retry_after=retry_after_seconds(response.headers),
        )
    return Rejected(text, code=str(code), status=http_status)


# ---------------------------------------------------------------------------------------------
# Callbacks
# ---------------------------------------------------------------------------------------------


def callback_signature(task_id: str, timestamp: str | int, hmac_key: str) -> str:
    """kie's `X-Webhook-Signature`: base64(HMAC-SHA256(key, f"{taskId}.{timestamp}"))."""
    digest = hmac.new(hmac_key.encode(), f"{task_id}.{timestamp}".encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def verify_callback(
    headers: Mapping[str, str],
    body: bytes,
    hmac_key: str,
    *,
    now: float,
    tolerance: float = 300,
) -> dict[str, Any] | None:
    """The parsed callback body if kie's HMAC headers prove it came from kie, else None.

    The signed message is the task id and the `X-Webhook-Timestamp` value (unix seconds) joined
    by a dot; the id is read from `data.taskId` (kie's own example reads `task_id`, so that is
    accepted too, as is either at the top level). A timestamp further than `tolerance` seconds
    from `now` is refused, so a captured callback cannot be replayed later. The body itself is
    not covered by kie's signature: treat it as a hint and confirm the result with `fetch`
    where it matters.
    """
    timestamp = _header(headers, TIMESTAMP_HEADER)
    signature = _header(headers, SIGNATURE_HEADER)
    if not timestamp or not signature or not hmac_key:
        return None
    timestamp = timestamp.strip()
    if not timestamp.isdigit() or abs(now - int(timestamp)) > tolerance:
        return None
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(payload, dict):
        return None
    task_id = _callback_task_id(payload)
    if task_id is None:
        return None
    expected = callback_signature(task_id, timestamp, hmac_key)
    if not hmac.compare_digest(expected.encode("ascii"), signature.strip().encode("utf-8")):
        return None
    return payload


def parse_callback(payload: Mapping[str, Any], *, default_seconds: int = 10) -> TaskState:
    """The `TaskState` a completion callback reports (`ValueError` without a task id).

    The callback's `data` is the task record `recordInfo` returns (plus credit fields), so it is
    read the same way; its outer `code` (200 or 501) adds nothing the `state` does not say.
    """
    task_id = _callback_task_id(payload)
    data = payload.get("data")
    if task_id is None or not isinstance(data, dict):
        raise ValueError("kie.ai callback without data.taskId")
    return _task_state(task_id, data, dict(payload), default_seconds)


def _callback_task_id(payload: Mapping[str, Any]) -> str | None:
    data = payload.get("data")
    for holder in (data if isinstance(data, dict) else {}, payload):
        for key in ("taskId", "task_id"):
            value = holder.get(key)
            if isinstance(value, str) and value:
                return value
    return None


def _header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    if value is None:
        lowered = name.lower()
        value = next((v for k, v in headers.items() if k.lower() == lowered), None)
    return value


# ---------------------------------------------------------------------------------------------
# Task records
# ---------------------------------------------------------------------------------------------


def _task_state(
    upstream_id: str, data: dict[str, Any], envelope: dict[str, Any], default_seconds: int
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
        billed = _billed_seconds(data, default_seconds)
        return TaskState(
            upstream_id,
            status,
            progress=100,
            result_url=urls[0],
            billed_seconds=None if billed is None else float(billed),
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


def _billed_seconds(data: dict[str, Any], default_seconds: int) -> int | None:
    """The output length the task asked for (`n_frames` on Sora, `duration` elsewhere).

    None for animate (the output is as long as the reference video: vidgate measures the file)
    and for a known non-Sora model whose record lost its parameters. A record that names no
    model is read as Sora, as the original adapter did.
    """
    model = data.get("model")
    spec = MODELS.get(model) if isinstance(model, str) else None
    family = spec[0] if spec is not None else None
    if family == "wan-animate":
        return None
    param = _json_object(data.get("param"))
    inputs = param.get("input") if param else None
    if isinstance(inputs, dict):
        for key in ("n_frames", "duration"):
            try:
                return int(str(inputs.get(key)))
            except ValueError:
                continue
    return default_seconds if family in (None, "sora") else None


def _envelope(response: httpx.Response) -> dict[str, Any] | None:
    try:
        body = response.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def _message(envelope: dict[str, Any] | None) -> str:
    if envelope is None:
        return ""
    return str(envelope.get("msg") or envelope.get("message") or "")


def _inner_code(envelope: dict[str, Any], http_status: int) -> int:
    """The body's `code` (authoritative); the HTTP status when the body has none."""
    code = envelope.get("code")
    if isinstance(code, int) and not isinstance(code, bool):
        return code
    if isinstance(code, str) and code.isdigit():
        return int(code)
    return http_status


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
