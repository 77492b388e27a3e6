"""fal.ai's queue API (`queue.fal.run`) as a `VideoProvider`, and its signed webhooks.

A submit is `POST {base}/{model}` with the model's input as the JSON body; fal answers with a
`request_id` and the URLs to ask about it. Those URLs name only the model's app (`fal-ai/wan`),
not its sub-path (`/v2.7/text-to-video`), and fal asks clients to use them rather than build
them. The upstream id this adapter returns is therefore `{app}:{request_id}`, where `app` is read
from the returned `status_url` (its path below the base URL, before `/requests/{id}`): `fetch`
and `cancel` rebuild exactly the returned URLs from it on the configured base, and the id stays
short (the tasks table holds 200 characters). When the answer carries no usable URL, the app is
taken from the model id the way fal's own clients do (owner/alias, after a `workflows/` or
`comfy/` namespace).

Failed requests also end `COMPLETED`; the failure is the result URL's non-2xx answer, read by
`fetch`. Protocol facts and the error table: docs/vendors.md §7.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import json
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit

import httpx
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

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

__all__ = [
    "ANIMATE_MOVE",
    "ANIMATE_REPLACE",
    "DEFAULT_BASE_URL",
    "DEFAULT_JWKS_URL",
    "DEFAULT_MODELS",
    "RETRYABLE_PREFIX",
    "WAN27_I2V",
    "WAN27_T2V",
    "FalAdapter",
    "JwksCache",
    "JwksUnavailable",
    "app_of",
    "split_upstream_id",
    "verify_webhook",
    "webhook_state",
]

DEFAULT_BASE_URL = "https://queue.fal.run"
DEFAULT_JWKS_URL = "https://rest.alpha.fal.ai/.well-known/jwks.json"

ANIMATE_MOVE = "fal-ai/wan/v2.2-14b/animate/move"
ANIMATE_REPLACE = "fal-ai/wan/v2.2-14b/animate/replace"
WAN27_T2V = "fal-ai/wan/v2.7/text-to-video"
WAN27_I2V = "fal-ai/wan/v2.7/image-to-video"
# The model a kind uses when the channel names none.
DEFAULT_MODELS: dict[str, str] = {
    "animate-move": ANIMATE_MOVE,
    "animate-mix": ANIMATE_REPLACE,
    "text-to-video": WAN27_T2V,
    "image-to-video": WAN27_I2V,
}
_ANIMATE_MODELS = frozenset({ANIMATE_MOVE, ANIMATE_REPLACE})
_ANIMATE_KINDS = frozenset({"animate-move", "animate-mix"})

# Failures a retry elsewhere may cure carry this prefix in `TaskState.error_code`
# (`retryable:runner_scheduling_failure`); every other failure code is final.
RETRYABLE_PREFIX = "retryable:"

DEFAULT_SECONDS = 5
_RESOLUTION = {"standard": "720p", "hd": "1080p"}
_ANIMATE_RESOLUTION = {"wan-std": "480p", "wan-pro": "720p"}
_ASPECT = {"landscape": "16:9", "portrait": "9:16"}

# fal's app namespaces: the app id is then namespace/owner/alias.
_NAMESPACES = frozenset({"workflows", "comfy"})
_SEGMENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._~-]*$")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")

# Infrastructure error types (flat `{"detail", "error_type"}` answers) that a new attempt may
# cure. 4xx-class types are not here: `bad_request` is a fault of ours, `client_cancelled` a
# cancel.
_RETRYABLE_ERROR_TYPES = frozenset(
    {
        "request_timeout",
        "startup_timeout",
        "runner_scheduling_failure",
        "runner_connection_timeout",
        "runner_disconnected",
        "runner_connection_refused",
        "runner_connection_error",
        "runner_incomplete_response",
        "runner_server_error",
        "internal_error",
        "client_disconnected",
    }
)
CONTENT_POLICY = "content_policy_violation"

# Exceptions raised before any byte of the request left this process: a retry cannot duplicate.
_NOT_SENT: tuple[type[Exception], ...] = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.PoolTimeout,
    httpx.UnsupportedProtocol,
    httpx.LocalProtocolError,
)

_Op = Literal["submit", "fetch", "cancel"]


# ---------------------------------------------------------------------------------------------
# Upstream ids
# ---------------------------------------------------------------------------------------------


def app_of(model: str) -> str:
    """The app part of a model id, as fal's clients take it: `fal-ai/wan/v2.7/x` → `fal-ai/wan`."""
    parts = model.strip("/").split("/")
    take = 3 if parts and parts[0] in _NAMESPACES else 2
    return "/".join(parts[:take])


def split_upstream_id(upstream_id: str) -> tuple[str, str]:
    """`(app, request_id)` of an id made by `FalAdapter.submit`; ValueError if it is not one."""
    app, sep, request_id = upstream_id.rpartition(":")
    if not sep or not _valid_app(app) or not _REQUEST_ID.match(request_id):
        raise ValueError(f"not a fal upstream id: {upstream_id!r}")
    return app, request_id


def _valid_app(app: str) -> bool:
    parts = app.split("/")
    return len(parts) >= 2 and all(_SEGMENT.match(p) and p not in (".", "..") for p in parts)


def _valid_model(model: str) -> bool:
    return _valid_app(model)  # same shape: at least owner/alias, plain segments


# ---------------------------------------------------------------------------------------------
# Small readers
# ---------------------------------------------------------------------------------------------


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None


def _detail_text(body: Any, fallback: str) -> str:
    """A readable message from fal's `detail` (a string, or a list of typed errors)."""
    detail = body.get("detail") if isinstance(body, dict) else None
    if isinstance(detail, str) and detail:
        return detail
    if isinstance(detail, list):
        parts = []
        for item in detail:
            if not isinstance(item, dict):
                continue
            loc = item.get("loc")
            where = ".".join(str(x) for x in loc if x != "body") if isinstance(loc, list) else ""
            msg = str(item.get("msg") or item.get("type") or "")
            parts.append(f"{where}: {msg}" if where else msg)
        if parts:
            return "; ".join(parts)
    return fallback


def _code(text: str) -> str:
    return text[:100]  # tasks.error_code holds 100 characters


# ---------------------------------------------------------------------------------------------
# Error outcomes shared by the result URL and webhooks
# ---------------------------------------------------------------------------------------------

_Verdict = Literal["rejected", "retryable", "canceled", "unknown", "again"]


@dataclass(frozen=True)
class _Outcome:
    verdict: _Verdict  # again: not an answer about the task; ask later
    code: str
    message: str


def _error_outcome(
    status: int | None,
    body: Any,
    *,
    retryable: str | None = None,
    error_type: str | None = None,
) -> _Outcome:
    """What a non-2xx answer of a completed request says about the task.

    `detail[]` (model errors): content policy is final; another type is final unless fal marks it
    retryable (`X-Fal-Retryable: true`) or it came with a 5xx. Flat `{"detail", "error_type"}`
    (request errors): a cancel, our own malformed request, or an outage worth another attempt.
    """
    flat_type = body.get("error_type") if isinstance(body, dict) else None
    kind = str(flat_type or error_type or "") or None
    detail = body.get("detail") if isinstance(body, dict) else None
    message = _detail_text(body, f"fal answered HTTP {status}" if status else "fal error")

    if kind == "client_cancelled" or (status == 499 and kind is None):
        # fal apps answer a cancel with 499 {"detail": "Request cancelled by the client."}.
        return _Outcome("canceled", "client_cancelled", message)
    if isinstance(detail, list) and detail:
        types = [
            str(item["type"]) for item in detail if isinstance(item, dict) and item.get("type")
        ]
        if CONTENT_POLICY in types:
            return _Outcome("rejected", CONTENT_POLICY, message)
        first = types[0] if types else "model_error"
        flag = (retryable or "").strip().lower()
        if flag == "true" or (flag != "false" and status is not None and status >= 500):
            return _Outcome("retryable", _code(RETRYABLE_PREFIX + first), message)
        return _Outcome("rejected", _code(first), message)
    if kind is not None:
        if kind == "bad_request":
            # Our request was malformed (a bad header, say): a fault of the channel, not the user.
            return _Outcome("rejected", "channel_bad_request", message)
        if kind in _RETRYABLE_ERROR_TYPES or (status is not None and status >= 500):
            return _Outcome("retryable", _code(RETRYABLE_PREFIX + kind), message)
        return _Outcome("rejected", _code(kind), message)
    if status is None:
        return _Outcome("again", "unreadable", message)
    if status in (401, 403):
        return _Outcome("rejected", "channel_auth", message)
    if status == 404:
        return _Outcome("unknown", "not_found", message)
    if status == 429:
        return _Outcome("again", "429", message)
    if status >= 500:
        if isinstance(detail, str):
            # fal's own JSON answer about the stored result: the run failed on its side.
            return _Outcome("retryable", _code(f"{RETRYABLE_PREFIX}http_{status}"), message)
        return _Outcome("again", str(status), message)  # a gateway page: ask again
    if status in (400, 422):
        return _Outcome("rejected", "invalid_input", message)
    return _Outcome("rejected", f"http_{status}", message)


def _video(payload: Any) -> tuple[str | None, float | None]:
    """`video.url` and `video.duration` (seconds) of a model output."""
    video = payload.get("video") if isinstance(payload, dict) else None
    if not isinstance(video, dict):
        return None, None
    url = video.get("url")
    duration = video.get("duration")
    seconds = (
        float(duration)
        if isinstance(duration, int | float) and not isinstance(duration, bool) and duration > 0
        else None
    )
    return (url if isinstance(url, str) and url else None), seconds


def _success(upstream_id: str, payload: Any, raw: dict[str, Any]) -> TaskState:
    url, seconds = _video(payload)
    if url is None:
        return TaskState(
            upstream_id,
            UpstreamStatus.FAILED,
            error_code="no_result",
            error_message="fal reported success without video.url",
            raw=raw,
        )
    return TaskState(
        upstream_id,
        UpstreamStatus.SUCCEEDED,
        progress=100,
        result_url=url,
        billed_seconds=seconds,
        raw=raw,
    )


# ---------------------------------------------------------------------------------------------
# The adapter
# ---------------------------------------------------------------------------------------------


class FalAdapter:
    """`VideoProvider` for models on fal's queue. Share it between tasks; close with `aclose()`.

    `webhook_url`, when set, is passed as `?fal_webhook=` on every submit; fal then POSTs the
    signed outcome there (check it with `verify_webhook` / `JwksCache`, read it with
    `webhook_state`). Polling works with or without it.
    """

    name = "fal"

    def __init__(
        self,
        api_key: str,
        base_url: str = DEFAULT_BASE_URL,
        *,
        timeout: float = 30.0,
        max_concurrency: int = 8,
        webhook_url: str | None = None,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        if max_concurrency < 1:
            raise ValueError("max_concurrency must be at least 1")
        self.base_url = base_url.rstrip("/")
        self._base_path = urlsplit(self.base_url).path.rstrip("/")
        self._headers = {"Authorization": f"Key {api_key}"}
        self._webhook_url = webhook_url
        self._timeout = httpx.Timeout(timeout)
        self._owns_client = client is None
        self._client = client if client is not None else httpx.AsyncClient()
        self._slots = asyncio.Semaphore(max_concurrency)

    # -- protocol ------------------------------------------------------------------------------

    async def submit(self, request: VideoRequest) -> Submitted:
        """Queue a request; raises `NotSent`, `Rejected`, `Throttled` or `Ambiguous`."""
        model = request.model or DEFAULT_MODELS.get(request.kind)
        if model is None or not _valid_model(model):
            raise Rejected(
                f"fal: no usable model for {request.kind!r} (got {model!r})",
                code="channel_unavailable",
            )
        body = self.build_body(request, model)
        params = {"fal_webhook": self._webhook_url} if self._webhook_url else None
        response = await self._call("submit", "POST", f"{self.base_url}/{model}", body, params)
        if not response.is_success:
            raise _submit_error(response)
        data = _json(response)
        request_id = data.get("request_id") if isinstance(data, dict) else None
        if not isinstance(request_id, str) or not _REQUEST_ID.match(request_id):
            # The queue took the call but we cannot name what it made: never resend.
            raise Ambiguous(
                "fal accepted the submit but returned no request_id", status=response.status_code
            )
        assert isinstance(data, dict)
        app = self._app_from(data, request_id) or app_of(model)
        return Submitted(upstream_id=f"{app}:{request_id}", raw=data)

    async def fetch(self, upstream_id: str) -> TaskState:
        """The request's state; on COMPLETED its result (or its failure) from the result URL."""
        try:
            app, request_id = split_upstream_id(upstream_id)
        except ValueError:
            return TaskState(upstream_id, UpstreamStatus.UNKNOWN)
        base = f"{self.base_url}/{app}/requests/{request_id}"
        response = await self._call("fetch", "GET", base + "/status", None)
        if response.status_code == 404:
            return TaskState(upstream_id, UpstreamStatus.UNKNOWN, raw={"status": _json(response)})
        if not response.is_success:
            raise _poll_error("fetch", response)
        data = _json(response)
        if not isinstance(data, dict):
            raise Throttled("fal status: unreadable answer", status=response.status_code)
        status = str(data.get("status") or "").upper()
        if status == "IN_QUEUE":
            return TaskState(upstream_id, UpstreamStatus.PENDING, raw={"status": data})
        if status == "IN_PROGRESS":
            return TaskState(upstream_id, UpstreamStatus.RUNNING, raw={"status": data})
        if status in ("CANCELED", "CANCELLED"):  # not in fal's documented set; read if sent
            return TaskState(upstream_id, UpstreamStatus.CANCELED, raw={"status": data})
        if status in ("COMPLETED", "FAILED", "ERROR"):
            return await self._result(upstream_id, base, data)
        # An unforeseen value is not a verdict; poll again rather than guess.
        raise Throttled(f"fal status: unknown status {status!r}", status=response.status_code)

    async def cancel(self, upstream_id: str) -> bool:
        """Ask fal to cancel; True once the request reads as canceled.

        fal removes a queued request and only signals a running one (its app may finish anyway,
        and then bills), so `CANCELLATION_REQUESTED` is followed by one read of the request:
        only a request that ended canceled counts.
        """
        try:
            app, request_id = split_upstream_id(upstream_id)
        except ValueError:
            return False
        url = f"{self.base_url}/{app}/requests/{request_id}/cancel"
        response = await self._call("cancel", "PUT", url, None)
        data = _json(response)
        answer = str(data.get("status") or "").upper() if isinstance(data, dict) else ""
        if answer in ("CANCELLATION_REQUESTED", "OK"):
            try:
                state = await self.fetch(upstream_id)
            except Rejected:
                return False
            return state.status is UpstreamStatus.CANCELED
        if answer in ("ALREADY_COMPLETED", "NOT_FOUND") or response.status_code == 404:
            return False
        raise _poll_error("cancel", response)

    async def aclose(self) -> None:
        if self._owns_client:
            await self._client.aclose()

    # -- wire format ---------------------------------------------------------------------------

    @staticmethod
    def build_body(request: VideoRequest, model: str) -> dict[str, Any]:
        """The model input for `model`; `Rejected` when the request cannot be expressed in it."""
        image = request.image_urls[0] if request.image_urls else request.image_url
        duration = request.duration or DEFAULT_SECONDS
        body: dict[str, Any]
        if model in _ANIMATE_MODELS:
            if request.kind not in _ANIMATE_KINDS:
                raise Rejected(f"fal {model} cannot do {request.kind}", code="channel_unsupported")
            if not request.video_url or not image:
                raise Rejected(
                    f"{request.kind} needs video_url and image_url", code="invalid_input"
                )
            body = {
                "video_url": request.video_url,
                "image_url": image,
                "resolution": _ANIMATE_RESOLUTION[request.mode],
            }
        elif model == WAN27_T2V:
            if request.kind != "text-to-video":
                raise Rejected(f"fal {model} cannot do {request.kind}", code="channel_unsupported")
            if not request.prompt:
                raise Rejected("text-to-video needs a prompt", code="invalid_input")
            body = {
                "prompt": request.prompt,
                "aspect_ratio": _ASPECT[request.aspect_ratio],
                "resolution": _RESOLUTION[request.quality],
                "duration": duration,
            }
        elif model == WAN27_I2V:
            if request.kind != "image-to-video":
                raise Rejected(f"fal {model} cannot do {request.kind}", code="channel_unsupported")
            if not image:
                raise Rejected("image-to-video needs an image", code="invalid_input")
            # No aspect_ratio: the output follows the image.
            body = {
                "image_url": image,
                "resolution": _RESOLUTION[request.quality],
                "duration": duration,
            }
            if request.prompt:
                body["prompt"] = request.prompt
        else:
            # A model this adapter does not know: the fields most of fal's video models share;
            # the channel's `extra` adds or overrides the rest.
            body = {}
            if request.prompt:
                body["prompt"] = request.prompt
            if image:
                body["image_url"] = image
            if request.video_url:
                body["video_url"] = request.video_url
            if request.kind in _ANIMATE_KINDS:
                body["resolution"] = _ANIMATE_RESOLUTION[request.mode]
            else:
                if request.kind == "text-to-video":
                    body["aspect_ratio"] = _ASPECT[request.aspect_ratio]
                body["resolution"] = _RESOLUTION[request.quality]
                body["duration"] = duration
        body.update(request.extra)
        return body

    def _app_from(self, data: dict[str, Any], request_id: str) -> str | None:
        """The app path in the URLs fal returned (status first), relative to the base URL."""
        for key, tail in (
            ("status_url", "/status"),
            ("response_url", ""),
            ("cancel_url", "/cancel"),
        ):
            url = data.get(key)
            if not isinstance(url, str):
                continue
            path = urlsplit(url).path.rstrip("/")
            suffix = f"/requests/{request_id}{tail}"
            if not path.endswith(suffix):
                continue
            path = path[: -len(suffix)]
            if self._base_path:
                if not path.startswith(self._base_path + "/"):
                    continue
                path = path[len(self._base_path) :]
            app = path.strip("/")
            if _valid_app(app):
                return app
        return None

    async def _call(
        self,
        op: _Op,
        method: str,
        url: str,
        body: dict[str, Any] | None,
        params: dict[str, str] | None = None,
    ) -> httpx.Response:
        """Send one request and turn transport failures into the class the caller acts on."""
        headers = dict(self._headers)
        content = None
        if body is not None:
            content = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        async with self._slots:
            try:
                return await self._client.request(
                    method,
                    url,
                    content=content,
                    params=params,
                    headers=headers,
                    timeout=self._timeout,
                )
            except _NOT_SENT as exc:
                raise NotSent(f"fal {op}: not sent: {exc!r}") from exc
            except httpx.HTTPError as exc:
                # Read/write timeouts, dropped connections: the request may have been processed.
                if op == "submit":
                    raise Ambiguous(f"fal submit: outcome unknown: {exc!r}") from exc
                raise Throttled(f"fal {op}: {exc!r}") from exc

    async def _result(self, upstream_id: str, base: str, status_body: dict[str, Any]) -> TaskState:
        response = await self._call("fetch", "GET", base, None)
        payload = _json(response)
        raw = {"status": status_body, "result": payload}
        if response.is_success:
            return _success(upstream_id, payload, raw)
        outcome = _error_outcome(
            response.status_code,
            payload,
            retryable=response.headers.get("X-Fal-Retryable"),
            error_type=response.headers.get("X-Fal-Error-Type"),
        )
        text = f"fal result: HTTP {response.status_code} {outcome.code}: {outcome.message}"
        if outcome.verdict == "rejected":
            raise Rejected(text, code=outcome.code, status=response.status_code)
        if outcome.verdict == "again":
            raise Throttled(
                text,
                code=outcome.code,
                status=response.status_code,
                retry_after=retry_after_seconds(response.headers),
            )
        if outcome.verdict == "unknown":
            return TaskState(upstream_id, UpstreamStatus.UNKNOWN, raw=raw)
        if outcome.verdict == "canceled":
            return TaskState(
                upstream_id,
                UpstreamStatus.CANCELED,
                error_code=outcome.code,
                error_message=outcome.message,
                raw=raw,
            )
        return TaskState(
            upstream_id,
            UpstreamStatus.FAILED,
            error_code=outcome.code,
            error_message=outcome.message,
            raw=raw,
        )


def _submit_error(response: httpx.Response) -> Exception:
    """The typed error for a non-2xx submit answer (nothing was queued unless said otherwise)."""
    status = response.status_code
    body = _json(response)
    message = _detail_text(body, response.reason_phrase or f"HTTP {status}")
    text = f"fal submit: HTTP {status}: {message}"
    lowered = message.lower()
    if status in (401, 403):
        if "balance" in lowered or "top up" in lowered or "top_up" in lowered:
            return Rejected(text, code="channel_credits", status=status)
        if "locked" in lowered:
            return Rejected(text, code="channel_unavailable", status=status)
        return Rejected(text, code="channel_auth", status=status)
    if status == 402:
        return Rejected(text, code="channel_credits", status=status)
    if status == 404:
        return Rejected(text, code="channel_unavailable", status=status)  # no such model/app
    if status in (502, 504) and not isinstance(body, dict):
        # A gateway's own page, not fal's: the queue behind it may have taken the request, so
        # it is never sent again (anywhere).
        return Ambiguous(text, code=str(status), status=status)
    if status in (408, 409, 429) or status >= 500:
        # fal's own answers on these say the queue did not take the request.
        code = (body.get("error_type") if isinstance(body, dict) else None) or str(status)
        return Throttled(
            text,
            code=str(code),
            status=status,
            retry_after=retry_after_seconds(response.headers),
        )
    outcome = _error_outcome(status, body)
    if outcome.verdict in ("retryable", "again"):
        return Throttled(
            text,
            code=outcome.code,
            status=status,
            retry_after=retry_after_seconds(response.headers),
        )
    return Rejected(text, code=outcome.code, status=status)


def _poll_error(op: _Op, response: httpx.Response) -> Exception:
    """A non-2xx answer to a status read or a cancel: auth is final, the rest is asked again."""
    status = response.status_code
    message = _detail_text(_json(response), response.reason_phrase or f"HTTP {status}")
    text = f"fal {op}: HTTP {status}: {message}"
    if status in (401, 403):
        return Rejected(text, code="channel_auth", status=status)
    if status == 429 or status >= 500 or status == 408:
        return Throttled(
            text,
            code=str(status),
            status=status,
            retry_after=retry_after_seconds(response.headers),
        )
    return Rejected(text, code=f"http_{status}", status=status)


# ---------------------------------------------------------------------------------------------
# Webhooks
# ---------------------------------------------------------------------------------------------

_MAX_JWKS_AGE = 24 * 3600.0  # fal: cache the key set for at most a day
_MIN_REFRESH_SECONDS = 60.0  # an unknown signature refreshes the keys at most this often


def _b64url(value: str) -> bytes:
    return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))


def _public_keys(jwks: Sequence[Mapping[str, Any]]) -> list[Ed25519PublicKey]:
    keys = []
    for jwk in jwks:
        if not isinstance(jwk, Mapping):
            continue
        if jwk.get("kty") != "OKP" or jwk.get("crv") != "Ed25519":
            continue
        x = jwk.get("x")
        if not isinstance(x, str):
            continue
        try:
            keys.append(Ed25519PublicKey.from_public_bytes(_b64url(x)))
        except (ValueError, binascii.Error):
            continue
    return keys


def verify_webhook(
    headers: Mapping[str, str],
    body: bytes,
    jwks: Sequence[Mapping[str, Any]],
    *,
    now: float,
    tolerance: float = 300,
) -> dict[str, Any] | None:
    """The webhook's JSON body if fal signed it, else None.

    fal signs `request_id + "\\n" + user_id + "\\n" + timestamp + "\\n" + sha256_hex(body)` with
    Ed25519 (signature in `X-Fal-Webhook-Signature`, hex); any key of its JWKS may have signed it.
    Timestamps (unix seconds) more than `tolerance` seconds from `now` are refused, and so is a
    body whose `request_id` differs from the signed one.
    """
    lowered = {k.lower(): v for k, v in headers.items()}
    request_id = lowered.get("x-fal-webhook-request-id")
    user_id = lowered.get("x-fal-webhook-user-id")
    timestamp = lowered.get("x-fal-webhook-timestamp")
    signature = lowered.get("x-fal-webhook-signature")
    if request_id is None or user_id is None or timestamp is None or signature is None:
        return None
    try:
        sent_at = int(timestamp)
        signed = bytes.fromhex(signature)
    except ValueError:
        return None
    if abs(now - sent_at) > tolerance or len(signed) != 64:
        return None
    message = "\n".join((request_id, user_id, timestamp, hashlib.sha256(body).hexdigest()))
    for key in _public_keys(jwks):
        try:
            key.verify(signed, message.encode())
        except InvalidSignature:
            continue
        break
    else:
        return None
    try:
        event = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(event, dict):
        return None
    if event.get("request_id") not in (None, request_id):
        return None
    return event


class JwksUnavailable(Exception):
    """fal's key set could not be fetched and no fresh copy is held: answer 5xx, fal resends."""


class JwksCache:
    """fal's webhook keys, fetched from `url` through `client` and kept at most `max_age` (≤ 24 h).

    A signature no cached key accepts makes one refresh (at most once a minute), so a key fal
    rotated in is picked up without waiting for the cache to age out.
    """

    def __init__(
        self,
        client: httpx.AsyncClient,
        url: str = DEFAULT_JWKS_URL,
        *,
        max_age: float = _MAX_JWKS_AGE,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.url = url
        self._client = client
        self._max_age = min(max_age, _MAX_JWKS_AGE)
        self._clock = clock
        self._keys: list[dict[str, Any]] | None = None
        self._fetched_at = 0.0
        self._lock = asyncio.Lock()

    async def keys(self, *, refresh: bool = False) -> list[dict[str, Any]]:
        async with self._lock:
            fresh = self._keys is not None and self._clock() - self._fetched_at < self._max_age
            if fresh and not refresh:
                assert self._keys is not None
                return self._keys
            try:
                response = await self._client.get(self.url, timeout=10.0)
                response.raise_for_status()
                data = response.json()
            except (httpx.HTTPError, ValueError) as exc:
                if fresh:
                    assert self._keys is not None
                    return self._keys  # a failed early refresh keeps the still-valid copy
                self._keys = None
                raise JwksUnavailable(f"fal JWKS fetch failed: {exc!r}") from exc
            keys = data.get("keys") if isinstance(data, dict) else None
            if not isinstance(keys, list):
                if fresh:
                    assert self._keys is not None
                    return self._keys
                raise JwksUnavailable("fal JWKS answer has no keys list")
            self._keys = [k for k in keys if isinstance(k, dict)]
            self._fetched_at = self._clock()
            return self._keys

    async def verify(
        self, headers: Mapping[str, str], body: bytes, *, now: float | None = None
    ) -> dict[str, Any] | None:
        """`verify_webhook` against the cached keys (refreshed once if none accepts)."""
        at = time.time() if now is None else now
        event = verify_webhook(headers, body, await self.keys(), now=at)
        if event is None and self._clock() - self._fetched_at >= _MIN_REFRESH_SECONDS:
            event = verify_webhook(headers, body, await self.keys(refresh=True), now=at)
        return event


_STATUS_IN_ERROR = re.compile(r"\b([1-5]\d\d)\b")


def webhook_state(event: Mapping[str, Any], *, upstream_id: str | None = None) -> TaskState | None:
    """The task state a verified webhook reports; None when it settles nothing (poll instead).

    `status: OK` carries the model output in `payload`; `ERROR` carries the error body there and
    `"Invalid status code: 422"` in `error`. Final refusals come back as FAILED with the error's
    type as code, failures worth another attempt with a `retryable:` code. `upstream_id` is the
    task's id (`{app}:{request_id}`); it must name the webhook's request.
    """
    request_id = event.get("request_id")
    if not isinstance(request_id, str) or not request_id:
        return None
    if upstream_id is None:
        upstream_id = request_id
    elif upstream_id.rpartition(":")[2] != request_id:
        raise ValueError(f"webhook for {request_id!r} does not belong to {upstream_id!r}")
    raw = dict(event)
    payload = event.get("payload")
    status = str(event.get("status") or "").upper()
    if status == "OK":
        if payload is None:
            return None  # `payload_error`: fal could not serialise it; the result URL has it
        return _success(upstream_id, payload, raw)
    if status != "ERROR":
        return None
    found = _STATUS_IN_ERROR.search(str(event.get("error") or ""))
    outcome = _error_outcome(int(found.group(1)) if found else None, payload)
    if outcome.verdict in ("again", "unknown"):
        return None
    if outcome.verdict == "canceled":
        return TaskState(
            upstream_id,
            UpstreamStatus.CANCELED,
            error_code=outcome.code,
            error_message=outcome.message,
            raw=raw,
        )
    return TaskState(
        upstream_id,
        UpstreamStatus.FAILED,
        error_code=outcome.code,
        error_message=outcome.message,
        raw=raw,
    )
