"""The protocol every upstream video provider adapter implements, and its typed outcomes.

Errors say what the caller may do next, because money depends on it:
- `NotSent`: the request never reached the provider (connect error, DNS) — safe to retry.
- `Rejected`: the provider refused it (bad input, moderation, auth) — permanent; refund.
- `Throttled`: the provider is busy or down (429, 5xx before acceptance) — retry later.
- `Ambiguous`: sent, outcome unknown (read timeout, connection lost after sending) — never
  resubmit automatically; reconcile or fail and refund.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from enum import StrEnum
from typing import Any, Literal, Protocol

from vidgate.kit import TaskKind


class UpstreamStatus(StrEnum):
    PENDING = "PENDING"  # accepted, queued
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    CANCELED = "CANCELED"
    UNKNOWN = "UNKNOWN"  # the provider no longer knows the task (expired id)


@dataclass(frozen=True)
class VideoRequest:
    """What vidgate asks a provider for; each adapter maps it to its own wire format.

    `model` is the vendor's model id on the channel the task is routed to (an adapter that serves
    several models picks its wire dialect by it; None: the adapter's own default). `duration` is
    the output length asked for, in seconds (text and image to video; None: the model's default).
    `extra` holds fields the channel fixes for every request (catalog `extra`), sent as given on
    top of what the adapter maps.
    """

    kind: TaskKind
    image_url: str | None = None
    video_url: str | None = None
    image_urls: tuple[str, ...] = ()
    prompt: str | None = None
    mode: Literal["wan-std", "wan-pro"] = "wan-std"
    check_image: bool = True
    aspect_ratio: Literal["landscape", "portrait"] = "landscape"
    quality: Literal["standard", "hd"] = "standard"
    watermark: bool = False
    model: str | None = None
    duration: int | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Submitted:
    upstream_id: str
    raw: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TaskState:
    upstream_id: str
    status: UpstreamStatus
    progress: int | None = None  # 0-100 when the provider says
    result_url: str | None = None
    billed_seconds: float | None = None  # output duration the provider bills
    error_code: str | None = None
    error_message: str | None = None
    raw: dict[str, Any] = field(default_factory=dict)


def retry_after_seconds(headers: Mapping[str, str]) -> float | None:
    """The `Retry-After` of an answer's headers as seconds from now, in either form RFC 9110
    allows (seconds or an HTTP date); None when absent or unreadable."""
    value = headers.get("Retry-After") or headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


class ProviderError(Exception):
    def __init__(self, message: str, *, code: str | None = None, status: int | None = None):
        super().__init__(message)
        self.code = code
        self.status = status


class NotSent(ProviderError):
    """Never reached the provider: retrying cannot double-submit."""


class Rejected(ProviderError):
    """The provider said no for good."""


class Throttled(ProviderError):
    """Busy or unavailable; try again later (`retry_after` seconds if the provider said)."""

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        status: int | None = None,
        retry_after: float | None = None,
    ):
        super().__init__(message, code=code, status=status)
        self.retry_after = retry_after


class Ambiguous(ProviderError):
    """Sent, but whether the provider accepted it is unknown."""


class VideoProvider(Protocol):
    name: str

    async def submit(self, request: VideoRequest) -> Submitted: ...

    async def fetch(self, upstream_id: str) -> TaskState: ...

    async def cancel(self, upstream_id: str) -> bool:
        """True if the provider canceled it; False if it cannot (already running/finished)."""
        ...

    async def aclose(self) -> None: ...
