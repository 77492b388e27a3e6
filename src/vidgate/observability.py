"""Request ids, access logs, Prometheus metrics, and the health endpoints.

The middleware is plain ASGI (not BaseHTTPMiddleware): it adds one contextvar, a header and two
metric updates to each request and nothing else.
"""

from __future__ import annotations

import asyncio
import hmac
import re
import time
import uuid
from contextvars import ContextVar
from typing import Any

import structlog
from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from structlog.typing import EventDict

from vidgate.db.migrate import current_revision
from vidgate.errors import DATABASE_RETRY_AFTER_SECONDS, NotAuthenticated, NotFound

logger = structlog.get_logger("vidgate.access")

REQUESTS = Counter(
    "vidgate_http_requests_total", "HTTP requests served", ["method", "route", "status"]
)
LATENCY = Histogram(
    "vidgate_http_request_duration_seconds",
    "Time to serve an HTTP request",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)

# A database that takes longer than this to answer a trivial query is not ready.
READY_TIMEOUT_SECONDS = 3.0

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")

# The id of the request being served; `add_request_id` puts it on every log line.
current_request_id: ContextVar[str | None] = ContextVar("request_id", default=None)


def add_request_id(logger: object, method: str, event: EventDict) -> EventDict:
    """structlog processor: one ContextVar read instead of a bind/unbind per request."""
    request_id = current_request_id.get()
    if request_id is not None:
        event.setdefault("request_id", request_id)
    return event


_Series = tuple[Any, Any]  # (counter child, histogram child) for one method, route and status
_series: dict[tuple[str, str, int], _Series] = {}


def _series_for(method: str, route: str, status: int) -> _Series:
    key = (method, route, status)
    series = _series.get(key)
    if series is None:
        series = (REQUESTS.labels(method, route, str(status)), LATENCY.labels(method, route))
        _series[key] = series
    return series


class RequestContextMiddleware:
    """Gives each request an id (the caller's sane `X-Request-ID`), echoes it, logs and counts."""

    def __init__(self, app: ASGIApp, *, access_log: bool = False) -> None:
        self.app = app
        self.access_log = access_log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = ""
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                candidate = value.decode("latin-1")
                if _REQUEST_ID.match(candidate):
                    request_id = candidate
                break
        request_id = request_id or uuid.uuid4().hex
        header = (b"x-request-id", request_id.encode())
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), header]
            await send(message)

        token = current_request_id.set(request_id)
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            route = scope.get("route")
            path = getattr(route, "path", None) or "unmatched"
            method = scope["method"]
            counter, histogram = _series_for(method, path, status)
            counter.inc()
            histogram.observe(elapsed)
            if status >= 500:
                logger.error(
                    "request",
                    method=method,
                    path=scope["path"],
                    status=status,
                    ms=round(elapsed * 1000, 1),
                )
            elif self.access_log or status >= 400:
                logger.info(
                    "request",
                    method=method,
                    path=scope["path"],
                    status=status,
                    ms=round(elapsed * 1000, 1),
                )
            current_request_id.reset(token)


router = APIRouter(tags=["operations"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is up (no dependencies checked)."""
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(request: Request, response: Response) -> dict[str, object]:
    """Ready to serve: the database answers, its schema is at the latest migration, and the job
    worker of this process (when it runs one) is running."""
    runtime = request.app.state.runtime
    head: str = request.app.state.migration_head
    checks: dict[str, object] = {}
    not_ready: list[str] = []
    try:
        async with asyncio.timeout(READY_TIMEOUT_SECONDS):
            current = await current_revision(runtime.db)
        checks.update(database="ok", migration=current, migration_head=head)
        if current != head:
            not_ready.append("migration behind")
    except Exception as exc:  # any failure to reach the database means "not ready"
        checks["database"] = f"error: {type(exc).__name__}"
        not_ready.append("database")
    if runtime.worker is not None:
        checks["worker"] = "ok" if runtime.worker.up else "down"
        if not runtime.worker.up:
            not_ready.append("worker")
    if not not_ready:
        return {"status": "ready", **checks}
    response.status_code = 503
    response.headers["Retry-After"] = str(DATABASE_RETRY_AFTER_SECONDS)
    return {"status": "not ready", "detail": f"Not ready: {', '.join(not_ready)}", **checks}


class MetricsOff(NotFound):
    """Metrics are off: a production server with no metrics token set answers as if absent."""

    detail = "Not Found"


class MetricsTokenWrong(NotAuthenticated):
    """The scraper sent no metrics token, or the wrong one."""

    detail = "Metrics need the metrics token"


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request) -> Response:
    """Prometheus metrics. In production they name request and payment counts, so a scraper
    must send `Authorization: Bearer <VIDGATE_METRICS_TOKEN>`; with no token set they are off."""
    settings = request.app.state.runtime.settings
    if not settings.is_development:
        token = settings.metrics_token
        if not token:
            raise MetricsOff()
        sent = request.headers.get("authorization", "")
        if not hmac.compare_digest(sent.encode(), f"Bearer {token}".encode()):
            raise MetricsTokenWrong()
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
