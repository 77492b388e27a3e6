"""Health, readiness, metrics, request ids and the OpenAPI document."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator

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
