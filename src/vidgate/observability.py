"""Request ids, access logs, Prometheus metrics, and the health endpoints.

The middleware is plain ASGI (not BaseHTTPMiddleware): it adds one contextvar, a header and one
metrics update to each request and nothing else.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import os
import re
import time
from bisect import bisect_left
from contextvars import ContextVar
from datetime import UTC, datetime
from random import getrandbits
from time import perf_counter
from typing import Any

import orjson
import structlog
from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from structlog.typing import EventDict

from vidgate.db.migrate import current_revision
from vidgate.errors import DATABASE_RETRY_AFTER_SECONDS, NotAuthenticated, NotFound

logger = structlog.get_logger("vidgate.access")

# A database that takes longer than this to answer a trivial query is not ready.
READY_TIMEOUT_SECONDS = 3.0

# A caller's X-Request-ID is kept when it is this sane (checked on the raw header bytes).
_REQUEST_ID = re.compile(rb"[A-Za-z0-9._:\-]{1,128}")

# The id of the request being served; `add_request_id` puts it on every log line.
current_request_id: ContextVar[str | None] = ContextVar("request_id", default=None)


def add_request_id(logger: object, method: str, event: EventDict) -> EventDict:
    """structlog processor: one ContextVar read instead of a bind/unbind per request."""
    request_id = current_request_id.get()
    if request_id is not None:
        event.setdefault("request_id", request_id)
    return event


LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
_BUCKET_LABELS = (*map(floatToGoString, LATENCY_BUCKETS), "+Inf")
# prometheus_client's own switch for the `_created` series, honoured here too.
_DISABLE_CREATED = os.environ.get("PROMETHEUS_DISABLE_CREATED_SERIES", "").lower()
_CREATED_SERIES = _DISABLE_CREATED not in ("true", "1", "t")


class _Latency:
    """One (method, route)'s latency histogram: a count per bucket (the last is +Inf), the sum."""

    __slots__ = ("counts", "created", "sum")

    def __init__(self) -> None:
        self.counts = [0] * (len(LATENCY_BUCKETS) + 1)
        self.sum = 0.0
        self.created = time.time()


class _Series:
    """One (method, route, status)'s request count, and its (method, route)'s histogram."""

    __slots__ = ("count", "created", "latency")

    def __init__(self, latency: _Latency) -> None:
        self.count = 0
        self.latency = latency
        self.created = time.time()


class HttpMetrics(Collector):
    """`vidgate_http_requests_total{method,route,status}` and
    `vidgate_http_request_duration_seconds{method,route}`, counted as plain numbers and handed
    to Prometheus when it scrapes.

    prometheus_client's Counter and Histogram take a lock and walk the buckets in Python on every
    observation, about 2 µs a request. Requests are only ever counted on the event loop's thread,
    so plain integers do, and the scrape (`collect`) reads a snapshot of them.
    """

    def __init__(self) -> None:
        self._series: dict[tuple[str, str, int], _Series] = {}
        self._latency: dict[tuple[str, str], _Latency] = {}

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        series = self._series.get((method, route, status))
        if series is None:
            latency = self._latency.setdefault((method, route), _Latency())
            series = self._series[(method, route, status)] = _Series(latency)
        series.count += 1
        latency = series.latency
        latency.counts[bisect_left(LATENCY_BUCKETS, seconds)] += 1
        latency.sum += seconds

    def describe(self) -> list[Metric]:
        return [
            CounterMetricFamily("vidgate_http_requests", "HTTP requests served"),
            HistogramMetricFamily(
                "vidgate_http_request_duration_seconds", "Time to serve an HTTP request"
            ),
        ]

    def collect(self) -> list[Metric]:
        requests = CounterMetricFamily(
            "vidgate_http_requests", "HTTP requests served", labels=("method", "route", "status")
        )
        for (method, route, status), series in list(self._series.items()):
            created = series.created if _CREATED_SERIES else None
            requests.add_metric((method, route, str(status)), series.count, created=created)
        latency = Metric(
            "vidgate_http_request_duration_seconds", "Time to serve an HTTP request", "histogram"
        )
        for (method, route), histogram in list(self._latency.items()):
            labels = {"method": method, "route": route}
            total = 0
            for bound, count in zip(_BUCKET_LABELS, list(histogram.counts), strict=True):
                total += count
                latency.add_sample(latency.name + "_bucket", {**labels, "le": bound}, total)
            latency.add_sample(latency.name + "_count", labels, total)
            latency.add_sample(latency.name + "_sum", labels, histogram.sum)
            if _CREATED_SERIES:
                latency.add_sample(latency.name + "_created", labels, histogram.created)
        return [requests, latency]


HTTP_METRICS = HttpMetrics()
REGISTRY.register(HTTP_METRICS)


class RequestContextMiddleware:
    """Gives each request an id (the caller's sane `X-Request-ID`), echoes it, logs and counts.

    It runs on every request, so it does no more than it must: the id is checked on the raw
    header bytes; a new one is 128 random bits in hex, like `uuid4().hex` but from the process's
    pseudo-random generator (an id needs to be unique, not secret, and `os.urandom` is a system
    call per request); and a line is logged only for errors or with `VIDGATE_ACCESS_LOG`.
    """

    def __init__(self, app: ASGIApp, *, access_log: bool = False) -> None:
        self.app = app
        self.access_log = access_log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        sent_id = b""
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                if _REQUEST_ID.fullmatch(value):
                    sent_id = value
                break
        request_id = sent_id.decode("ascii") if sent_id else f"{getrandbits(128):032x}"
        header = (b"x-request-id", sent_id or request_id.encode("ascii"))
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), header]
            await send(message)

        token = current_request_id.set(request_id)
        started = perf_counter()
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            elapsed = perf_counter() - started
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            HTTP_METRICS.observe(scope["method"], route, status, elapsed)
            if status >= 400 or self.access_log:
                _log_request(scope, status, request_id, elapsed)
            current_request_id.reset(token)


# The log handler that renders JSON, when `configure_logging` set one up: the access line is then
# rendered here and written to it directly (`write_access_lines_to`).
_json_handler: logging.StreamHandler[Any] | None = None
_access = logging.getLogger("vidgate.access")  # the stdlib logger structlog's `logger` writes to


def write_access_lines_to(handler: logging.StreamHandler[Any] | None) -> None:
    """Called by `configure_logging` with its handler when the log is JSON (None otherwise).

    A request's info line then skips structlog's processor chain and the standard library's
    record (about 20 µs and two `LogRecord`s a line): it is the same JSON object, with the same
    keys in the same order, rendered by orjson and written to the handler's stream. Error lines,
    and every line in the console format, go through structlog as before.
    """
    global _json_handler
    _json_handler = handler


def _log_request(scope: Scope, status: int, request_id: str, elapsed: float) -> None:
    """The request's line: at error for a 5xx, info otherwise."""
    ms = round(elapsed * 1000, 1)
    handler = _json_handler
    if handler is not None and status < 500:
        if not _access.isEnabledFor(logging.INFO):
            return
        line = orjson.dumps(
            {
                "method": scope["method"],
                "path": scope["path"],
                "status": status,
                "ms": ms,
                "event": "request",
                "request_id": request_id,
                "level": "info",
                "logger": "vidgate.access",
                "timestamp": datetime.now(UTC),
            },
            option=orjson.OPT_UTC_Z,
        )
        with handler.lock or contextlib.nullcontext():
            try:
                handler.stream.write(line.decode() + handler.terminator)
                handler.stream.flush()
                return
            except (OSError, ValueError):
                pass  # a closed or broken stream: the logging module's own handling below
    log = logger.error if status >= 500 else logger.info
    log("request", method=scope["method"], path=scope["path"], status=status, ms=ms)


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
