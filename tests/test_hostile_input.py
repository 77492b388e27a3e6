"""Hostile values in places that reach the database get a 4xx, never a 500."""

from __future__ import annotations

import httpx

from .fixtures.app import DEV_CLIENT_KEY
from .fixtures.samples import png_bytes
from .fixtures.signin import sign_in


async def test_huge_page_number_is_422(client: httpx.AsyncClient) -> None:
    user = await sign_in(client)
    r = await client.get(
        "/api/users/credits/transactions", headers=user.headers, params={"page": 10**20}
    )
    assert r.status_code == 422


async def test_nul_in_google_state_and_redirect_uri_is_422(client: httpx.AsyncClient) -> None:
    r = await client.post("/api/auth/google/login", json={"code": "x", "state": "a\x00b"})
    assert r.status_code == 422
    r = await client.get(
        "/api/auth/google/authorize-url", params={"redirect_uri": "https://app.example/\x00cb"}
    )
    assert r.status_code == 422
    r = await client.get("/api/_dev/google/callback", params={"code": "x", "state": "a\x00b"})
    assert r.status_code == 422


async def test_nul_in_upload_file_name_is_stored_without_it(client: httpx.AsyncClient) -> None:
    user = await sign_in(client)
    r = await client.post(
        "/api/videos/upload",
        headers={**user.headers, "X-API-Key": DEV_CLIENT_KEY},
        files={"file": ("fa\x00ce.png", png_bytes(), "image/png")},
        data={"file_type": "image"},
    )
    assert r.status_code == 200, r.text


async def test_empty_google_code_on_the_development_callback_is_422(
    client: httpx.AsyncClient,
) -> None:
    """An empty code is the caller's mistake, not a misconfigured server (was 503)."""
    r = await client.get("/api/_dev/google/callback", params={"code": "", "state": "s"})
    assert r.status_code == 422, r.text
    assert r.json()["detail"][0]["loc"] == ["query", "code"]
