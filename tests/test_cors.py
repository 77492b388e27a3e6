"""A browser front end on another origin (`VIDGATE_CORS_ORIGINS`) may call the API; others not."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from pydantic import ValidationError

from vidgate.app import create_app
from vidgate.config import Settings

from .fixtures.app import DEV_CLIENT_KEY, FRONT_END_ORIGIN

PREFLIGHT = {
    "Access-Control-Request-Method": "POST",
    "Access-Control-Request-Headers": "authorization, content-type, x-api-key, idempotency-key",
}


async def test_a_preflight_from_the_front_end_is_allowed(client: httpx.AsyncClient) -> None:
    answer = await client.options(
        "/api/videos/text-to-video", headers={"Origin": FRONT_END_ORIGIN, **PREFLIGHT}
    )
    assert answer.status_code == 200, answer.text
    assert answer.headers["access-control-allow-origin"] == FRONT_END_ORIGIN
    assert "POST" in answer.headers["access-control-allow-methods"]
    allowed = answer.headers["access-control-allow-headers"].lower()
    for name in ("authorization", "content-type", "x-api-key", "idempotency-key"):
        assert name in allowed
    assert answer.headers["access-control-max-age"] == "600"
    assert "access-control-allow-credentials" not in answer.headers  # tokens are not cookies


async def test_a_preflight_from_elsewhere_is_refused(client: httpx.AsyncClient) -> None:
    for origin in ("https://app.example.evil", "http://app.example", "https://evil.example"):
        answer = await client.options(
            "/api/videos/text-to-video", headers={"Origin": origin, **PREFLIGHT}
        )
        assert answer.status_code == 400, origin
        assert "access-control-allow-origin" not in answer.headers


async def test_answers_and_errors_are_readable_by_the_front_end(
    client: httpx.AsyncClient,
) -> None:
    """An error is readable too (the browser would otherwise hide the 401 behind a CORS error),
    and so are the request id and Retry-After headers."""
    refused = await client.get("/api/auth/me", headers={"Origin": FRONT_END_ORIGIN})
    assert refused.status_code == 401
    assert refused.json()["detail"]
    assert refused.headers["access-control-allow-origin"] == FRONT_END_ORIGIN
    exposed = refused.headers["access-control-expose-headers"].lower()
    assert "x-request-id" in exposed and "retry-after" in exposed

    packs = await client.get(
        "/api/payments/packages", headers={"Origin": FRONT_END_ORIGIN, "X-API-Key": DEV_CLIENT_KEY}
    )
    assert packs.status_code == 200
    assert packs.headers["access-control-allow-origin"] == FRONT_END_ORIGIN

    foreign = await client.get("/api/payments/packages", headers={"Origin": "https://evil.example"})
    assert foreign.status_code == 200  # served, but the browser keeps it from the page
    assert "access-control-allow-origin" not in foreign.headers


@pytest.fixture
async def same_origin_only(
    settings: Settings, database_url: str
) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings.model_copy(update={"cors_origins": []}), database_url)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        yield c


async def test_by_default_no_other_origin_is_allowed(same_origin_only: httpx.AsyncClient) -> None:
    answer = await same_origin_only.options(
        "/api/videos/text-to-video", headers={"Origin": FRONT_END_ORIGIN, **PREFLIGHT}
    )
    assert answer.status_code == 405
    assert "access-control-allow-origin" not in answer.headers


@pytest.mark.parametrize(
    ("value", "origins"),
    [
        ("https://app.example.com", ["https://app.example.com"]),
        (
            " https://App.Example.com/ , http://localhost:3000,https://a.example:443",
            ["https://app.example.com", "http://localhost:3000", "https://a.example"],
        ),
        (
            '["https://app.example.com", "http://[::1]:3000"]',
            ["https://app.example.com", "http://[::1]:3000"],
        ),
        ("", []),
    ],
)
def test_origins_are_read_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, value: str, origins: list[str]
) -> None:
    monkeypatch.setenv("VIDGATE_CORS_ORIGINS", value)
    assert Settings().cors_origins == origins


@pytest.mark.parametrize(
    "value",
    [
        "ftp://app.example.com",
        "https://app.example.com/app",
        "app.example.com",
        "https://a.example?x=1",
        "*",
    ],
)
def test_what_is_not_an_origin_is_refused(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("VIDGATE_CORS_ORIGINS", value)
    with pytest.raises(ValidationError, match="origin"):
        Settings()
