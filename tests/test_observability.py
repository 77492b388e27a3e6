"""Health, readiness, metrics, request ids, the access log and the OpenAPI document."""

from __future__ import annotations

import contextlib
import gc
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime

import httpx
import pytest
from prometheus_client import CollectorRegistry, generate_latest

from vidgate.observability import HttpMetrics
from vidgate.runtime import Runtime


async def test_health_and_readiness(client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    ready = await client.get("/readyz")
    assert ready.status_code == 200
    body = ready.json()
    assert body["status"] == "ready"
    assert body["migration"] == body["migration_head"]


async def test_request_id_is_echoed_or_generated(client: httpx.AsyncClient) -> None:
    mine = await client.get("/healthz", headers={"X-Request-ID": "abc-123"})
    assert mine.headers["X-Request-ID"] == "abc-123"
    generated = await client.get("/healthz")
    assert len(generated.headers["X-Request-ID"]) == 32
    hostile = await client.get("/healthz", headers={"X-Request-ID": "bad id\twith spaces"})
    assert hostile.headers["X-Request-ID"] != "bad id\twith spaces"


async def test_metrics_count_requests_by_route(client: httpx.AsyncClient) -> None:
    await client.get("/api/auth/me")
    text = (await client.get("/metrics")).text
    assert 'vidgate_http_requests_total{method="GET",route="/api/auth/me",status="401"}' in text
    assert "vidgate_http_request_duration_seconds_bucket" in text


@contextlib.contextmanager
def production_metrics(runtime: Runtime, token: str) -> Iterator[None]:
    """The running app as production would see its metrics settings."""
    saved = runtime.settings
    runtime.settings = saved.model_copy(update={"env": "production", "metrics_token": token})
    try:
        yield
    finally:
        runtime.settings = saved


async def test_metrics_in_production_need_the_metrics_token(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    with production_metrics(runtime, "s3cret-metrics-token"):
        anonymous = await client.get("/metrics")
        assert anonymous.status_code == 401
        assert anonymous.json() == {"detail": "Metrics need the metrics token"}
        wrong = await client.get("/metrics", headers={"Authorization": "Bearer guess"})
        assert wrong.status_code == 401
        right = await client.get(
            "/metrics", headers={"Authorization": "Bearer s3cret-metrics-token"}
        )
        assert right.status_code == 200
        assert "vidgate_http_requests_total" in right.text
    with production_metrics(runtime, ""):  # no token set: no metrics at all
        off = await client.get("/metrics", headers={"Authorization": "Bearer "})
        assert (off.status_code, off.json()) == (404, {"detail": "Not Found"})


async def test_readiness_reports_the_worker_when_this_process_runs_one(
    client: httpx.AsyncClient,
) -> None:
    """The test app runs no worker here: readiness does not mention one (the worker's own
    readiness under an outage is tested in test_faults.py)."""
    assert "worker" not in (await client.get("/readyz")).json()


async def test_openapi_and_docs(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    for path in (
        "/api/auth/sms/send",
        "/api/auth/sms/login",
        "/api/auth/refresh",
        "/api/auth/logout",
        "/api/auth/me",
        "/api/users/profile",
        "/api/users/credits",
        "/api/users/account",
        "/api/users/api-keys",
    ):
        assert path in spec["paths"], path
    assert (await client.get("/docs")).status_code == 200


async def test_unknown_route_is_404_with_detail(client: httpx.AsyncClient) -> None:
    r = await client.get("/api/nothing-here")
    assert r.status_code == 404
    assert r.json() == {"detail": "Not Found"}


def test_what_start_up_built_is_left_out_of_full_collections(
    app_and_runtime: tuple[object, Runtime],
) -> None:
    """The app's lifespan froze the heap it started with: the cyclic collector's full passes
    would otherwise walk every module, route and model on each run."""
    assert gc.get_freeze_count() > 50_000


async def test_generated_request_ids_are_new_each_time(client: httpx.AsyncClient) -> None:
    ids = {(await client.get("/healthz")).headers["X-Request-ID"] for _ in range(20)}
    assert len(ids) == 20
    assert all(re.fullmatch(r"[0-9a-f]{32}", request_id) for request_id in ids)


def test_latency_is_counted_into_prometheus_buckets() -> None:
    metrics = HttpMetrics()
    registry = CollectorRegistry()
    registry.register(metrics)
    for seconds in (0.001, 0.005, 0.0051, 0.3, 11.0):  # a bound is in its own bucket ("le")
        metrics.observe("GET", "/api/things/{id}", 200, seconds)
    metrics.observe("GET", "/api/things/{id}", 404, 0.002)
    text = generate_latest(registry).decode()
    series = 'method="GET",route="/api/things/{id}"'
    assert f'vidgate_http_requests_total{{{series},status="200"}} 5.0' in text
    assert f'vidgate_http_requests_total{{{series},status="404"}} 1.0' in text
    counts = {"0.005": 3, "0.01": 4, "0.25": 4, "0.5": 5, "10.0": 5, "+Inf": 6}
    for bound, count in counts.items():
        line = f'vidgate_http_request_duration_seconds_bucket{{le="{bound}",{series}}} {count}.0'
        assert line in text
    assert f"vidgate_http_request_duration_seconds_count{{{series}}} 6.0" in text
    total = f"vidgate_http_request_duration_seconds_sum{{{series}}} "
    sums = [line.removeprefix(total) for line in text.splitlines() if line.startswith(total)]
    assert [float(value) for value in sums] == [
        pytest.approx(0.001 + 0.005 + 0.0051 + 0.3 + 11 + 0.002)
    ]


# Run in a process of its own: logging is configured as `vidgate serve` does, for good.
ACCESS_LOG = """
import asyncio, httpx, structlog
from fastapi import FastAPI
from vidgate.logging import configure_logging
from vidgate.observability import RequestContextMiddleware, current_request_id

configure_logging("INFO", "{fmt}")
app = FastAPI()
app.get("/things/{{thing}}")(lambda thing: {{"thing": thing}})
app.add_middleware(RequestContextMiddleware, access_log=True)

async def main():
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        await client.get("/things/a1", headers={{"X-Request-ID": "req-1"}})
        await client.get("/nothing", headers={{"X-Request-ID": "req-2"}})
    current_request_id.set("req-3")  # the line as structlog itself renders it, for comparison
    structlog.get_logger("vidgate.access").info(
        "request", method="GET", path="/things/a1", status=200, ms=0.5
    )

asyncio.run(main())
"""


def _access_lines(fmt: str) -> list[str]:
    script = ACCESS_LOG.format(fmt=fmt)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return done.stderr.splitlines()


def test_the_access_log_has_one_json_line_per_request_as_structlog_renders_it() -> None:
    first, missing, rendered = (json.loads(line) for line in _access_lines("json"))
    assert first["ms"] >= 0 and rendered["ms"] == 0.5
    assert datetime.fromisoformat(first["timestamp"]).tzinfo is not None
    assert first["timestamp"].endswith("Z")
    assert {**first, "ms": 0, "timestamp": ""} == {
        "method": "GET",
        "path": "/things/a1",
        "status": 200,
        "ms": 0,
        "event": "request",
        "request_id": "req-1",
        "level": "info",
        "logger": "vidgate.access",
        "timestamp": "",
    }
    assert (missing["path"], missing["status"], missing["request_id"]) == ("/nothing", 404, "req-2")
    assert list(first) == list(rendered)  # the same keys in the same order as structlog's line
    assert {k: v for k, v in rendered.items() if k not in ("ms", "timestamp", "request_id")} == {
        k: v for k, v in first.items() if k not in ("ms", "timestamp", "request_id")
    }


def test_the_access_log_in_the_console_format_goes_through_structlog() -> None:
    first, missing, _ = _access_lines("console")
    assert "request" in first and "path=/things/a1" in first and "request_id=req-1" in first
    assert "status=404" in missing
