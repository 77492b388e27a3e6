"""The browser app's side of the server: its run-time configuration, the static export served at
`/`, and the OpenAPI document its typed client is generated from."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from tests.fixtures.app import DEV_CLIENT_KEY
from vidgate.app import create_app, openapi_document
from vidgate.config import Settings
from vidgate.web import DEFAULT_WEB_DIR, PACKAGED_WEB_DIR, default_web_dir, web_app

WEB = Path(__file__).resolve().parents[1] / "web"


async def test_config_tells_the_app_how_to_call_this_deployment(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/web/config")
    assert response.status_code == 200
    assert response.json() == {
        "api_base_url": "/api",
        "api_key": DEV_CLIENT_KEY,
        "environment": "development",
        "google_sign_in": True,
        "payment_methods": ["stripe", "wechat"],
        "sms_outbox": True,
        "prices": {
            "animate-move": {"wan-std": 10, "wan-pro": 14},
            "animate-mix": {"wan-std": 10, "wan-pro": 14},
            "text-to-video": {"standard": 20, "hd": 30},
            "image-to-video": {"standard": 25, "hd": 35},
        },
        "max_upload_bytes": 100 * 1024 * 1024,
        "signup_bonus_credits": 100,
    }


@pytest.fixture
def site(tmp_path: Path) -> Path:
    (tmp_path / "index.html").write_text("<h1>home</h1>")
    (tmp_path / "login").mkdir()
    (tmp_path / "login" / "index.html").write_text("<h1>sign in</h1>")
    (tmp_path / "404.html").write_text("<h1>no such page</h1>")
    (tmp_path / "_next" / "static").mkdir(parents=True)
    (tmp_path / "_next" / "static" / "app-1a2b.js").write_text("console.log(1)")
    (tmp_path.parent / "secret.txt").write_text("outside the site")
    return tmp_path


@pytest.fixture
async def web_client(
    settings: Settings, database_url: str, site: Path
) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings.model_copy(update={"web_dir": site}), database_url)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        yield c


async def test_pages_are_served_and_revalidated(web_client: httpx.AsyncClient) -> None:
    home = await web_client.get("/")
    assert home.status_code == 200
    assert home.text == "<h1>home</h1>"
    assert home.headers["content-type"].startswith("text/html")
    assert home.headers["cache-control"] == "no-cache"

    redirect = await web_client.get("/login")
    assert redirect.status_code in (307, 308)
    assert redirect.headers["location"].endswith("/login/")
    login = await web_client.get("/login/")
    assert (login.status_code, login.text) == (200, "<h1>sign in</h1>")


async def test_hashed_assets_are_cached_for_good(web_client: httpx.AsyncClient) -> None:
    asset = await web_client.get("/_next/static/app-1a2b.js")
    assert asset.status_code == 200
    assert asset.headers["cache-control"] == "public, max-age=31536000, immutable"


async def test_unknown_pages_get_the_apps_404_page(web_client: httpx.AsyncClient) -> None:
    missing = await web_client.get("/no/such/page/")
    assert (missing.status_code, missing.text) == (404, "<h1>no such page</h1>")
    outside = await web_client.get("/../secret.txt")
    assert outside.status_code == 404
    assert "outside the site" not in outside.text


@pytest.mark.parametrize("path", ["/api/no-such-endpoint", "/_emulator/nothing", "/docs/nothing"])
async def test_api_paths_keep_json_errors(web_client: httpx.AsyncClient, path: str) -> None:
    response = await web_client.get(path)
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/json"
    assert "detail" in response.json()


async def test_the_api_still_answers_beside_the_app(web_client: httpx.AsyncClient) -> None:
    response = await web_client.get("/openapi.json")
    assert response.status_code == 200
    assert "/api/web/config" in response.json()["paths"]


def test_no_app_is_mounted_before_it_is_built(tmp_path: Path) -> None:
    assert web_app(tmp_path) is None
    assert web_app(tmp_path / "missing") is None


def test_a_checkout_serves_its_own_web_out_built_or_not(tmp_path: Path) -> None:
    (tmp_path / "web").mkdir()
    (tmp_path / "web" / "package.json").write_text("{}")
    assert default_web_dir(tmp_path / "web" / "out") == tmp_path / "web" / "out"
    assert DEFAULT_WEB_DIR == WEB / "out"  # this checkout's, where `make web` builds it


def test_an_installed_package_serves_the_web_app_it_carries(tmp_path: Path) -> None:
    # Installed from a wheel there is no web/ beside the package: its webapp/ copy is served.
    assert default_web_dir(tmp_path / "web" / "out") == PACKAGED_WEB_DIR


def test_the_web_clients_openapi_document_is_current() -> None:
    committed = json.loads((WEB / "openapi.json").read_text(encoding="utf-8"))
    assert committed == openapi_document(), (
        "web/openapi.json is stale: run `make web-client` and commit web/openapi.json and "
        "web/src/lib/api/schema.d.ts"
    )
