"""The API answers the same whether or not the web app is built: `make run` serves the static
export at `/`, the test suite (and an API-only deployment) runs without it, and no status code may
depend on which. Every test here runs against both apps."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from vidgate.app import create_app
from vidgate.config import Settings

from .fixtures.app import DEV_CLIENT_KEY
from .fixtures.signin import sign_in

MOUNTED = "web app mounted"
NOT_MOUNTED = "web app not mounted"

ASSET = "/_next/static/chunks/app-3f9a.js"


def fake_export(root: Path) -> Path:
    """The shape of a Next.js static export: pages as index.html files, hashed assets."""
    (root / "index.html").write_text("<h1>vidgate</h1>")
    (root / "404.html").write_text("<h1>no such page</h1>")
    (root / "login").mkdir()
    (root / "login" / "index.html").write_text("<h1>sign in</h1>")
    (root / "_next" / "static" / "chunks").mkdir(parents=True)
    (root / ASSET.lstrip("/")).write_text("console.log('vidgate')")
    return root


@pytest.fixture(scope="module", params=[MOUNTED, NOT_MOUNTED])
async def api(
    request: pytest.FixtureRequest,
    settings: Settings,
    database_url: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[tuple[str, httpx.AsyncClient]]:
    """The whole app, with the web export in its web dir or with an empty one."""
    web_dir = tmp_path_factory.mktemp("web-out")
    if request.param == MOUNTED:
        fake_export(web_dir)
    app = create_app(settings.model_copy(update={"web_dir": web_dir}), database_url)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield request.param, client


@pytest.fixture
def client(api: tuple[str, httpx.AsyncClient]) -> httpx.AsyncClient:
    return api[1]


# --- the API ------------------------------------------------------------------------------------

# Ids of nothing, fixed so that test ids are the same in every run and process (--lf, xdist).
TASK = "5e1f0c2a-7d43-4b8e-9a61-0c9d2b7f4e10"
KEY = "a3c8e9d1-2b6f-4f0a-8e57-6d1b4c2a9f03"


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("GET", "/api/auth/sms/send", "POST"),
        ("PUT", "/api/auth/sms/login", "POST"),
        ("DELETE", "/api/users/credits", "GET"),
        ("POST", "/api/web/config", "GET"),
        ("PUT", f"/api/videos/tasks/{TASK}", "GET"),
        ("GET", f"/api/users/api-keys/{KEY}", "DELETE"),
        ("GET", "/api/payments/stripe/webhook", "POST"),
        ("POST", "/healthz", "GET"),
    ],
)
async def test_a_wrong_method_on_an_api_path_is_405_with_allow(
    client: httpx.AsyncClient, method: str, path: str, allowed: str
) -> None:
    response = await client.request(method, path)
    assert response.status_code == 405, response.text
    assert response.headers["allow"] == allowed
    assert response.json() == {"detail": "Method Not Allowed"}


@pytest.mark.parametrize(
    "path",
    ["/api/no-such-endpoint", "/api/users/nothing/here", "/api/", "/api", "/_emulator/nothing"],
)
async def test_an_unknown_api_path_is_the_apis_json_404(
    client: httpx.AsyncClient, path: str
) -> None:
    for method in ("GET", "POST", "HEAD"):
        response = await client.request(method, path)
        assert response.status_code == 404, (method, path)
        assert response.headers["content-type"] == "application/json"
        if method != "HEAD":
            assert response.json() == {"detail": "Not Found"}


async def test_a_trailing_slash_on_an_api_path_redirects_to_the_route(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/api/users/credits/")
    assert response.status_code == 307
    assert response.headers["location"] == "http://test/api/users/credits"


async def test_signing_in_and_reading_credits(client: httpx.AsyncClient) -> None:
    user = await sign_in(client)
    credits = await client.get("/api/users/credits", headers=user.headers)
    assert credits.status_code == 200
    assert (credits.json()["credits"], credits.json()["available"]) == (100, 100)
    anonymous = await client.get("/api/users/credits")
    assert anonymous.status_code == 401
    assert anonymous.headers["www-authenticate"] == "Bearer"
    assert "detail" in anonymous.json()


async def test_task_status_of_an_unknown_task_is_404(client: httpx.AsyncClient) -> None:
    user = await sign_in(client)
    headers = {**user.headers, "X-API-Key": DEV_CLIENT_KEY}
    response = await client.get(f"/api/videos/tasks/{uuid.uuid4()}", headers=headers)
    assert response.status_code == 404
    assert "detail" in response.json()
    not_an_id = await client.get("/api/videos/tasks/not-an-id", headers=headers)
    assert not_an_id.status_code == 404
    assert "detail" in not_an_id.json()
    assert (await client.get(f"/api/videos/tasks/{uuid.uuid4()}")).status_code == 401


async def test_operations_and_docs(client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz")).status_code == 200
    assert (await client.get("/openapi.json")).status_code == 200
    assert (await client.get("/docs")).status_code == 200


# --- the pages ----------------------------------------------------------------------------------


async def test_the_pages_are_served_only_when_built(api: tuple[str, httpx.AsyncClient]) -> None:
    mode, client = api
    home, head = await client.get("/"), await client.head("/")
    asset = await client.get(ASSET)
    if mode == NOT_MOUNTED:
        for response in (home, asset):
            assert response.status_code == 404
            assert response.json() == {"detail": "Not Found"}
        assert head.status_code == 404
        return
    assert (home.status_code, home.text) == (200, "<h1>vidgate</h1>")
    assert home.headers["cache-control"] == "no-cache"
    assert (head.status_code, head.content) == (200, b"")
    assert head.headers["content-length"] == str(len("<h1>vidgate</h1>"))
    assert asset.status_code == 200
    assert asset.headers["cache-control"] == "public, max-age=31536000, immutable"
    login = await client.get("/login/")
    assert (login.status_code, login.text) == (200, "<h1>sign in</h1>")
    assert (await client.head("/login/")).status_code == 200
    missing = await client.get("/no/such/page/")
    assert (missing.status_code, missing.text) == (404, "<h1>no such page</h1>")
