"""The app's routes as served: the route index finds what Starlette's scan in order would, and a
route whose dependencies are resolved directly answers exactly as FastAPI's handler does."""

from __future__ import annotations

import itertools
import re
import tempfile
from pathlib import Path
from typing import Annotated, Any

import httpx
import pytest
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request
from fastapi.responses import PlainTextResponse
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel
from starlette.routing import BaseRoute, Match

from vidgate.app import create_app, keyless_development_settings
from vidgate.http_routes import RouteIndex, add_routes, direct_handler, index_routes

METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")


@pytest.fixture(scope="module")
def dev_app() -> FastAPI:
    """The development app with every optional router (emulators, development routes)."""
    with tempfile.TemporaryDirectory() as data_dir:
        settings = keyless_development_settings(Path(data_dir))
        return create_app(settings, "postgresql://unused/unused")


def _scope(method: str, path: str) -> dict[str, Any]:
    return {"type": "http", "method": method, "path": path, "root_path": "", "headers": []}


def _in_order(routes: list[BaseRoute], scope: dict[str, Any]) -> BaseRoute | None:
    """What Starlette's router picks: the first route that matches in full."""
    for route in routes:
        if route.matches(scope)[0] is Match.FULL:
            return route
    return None


def _paths(routes: list[BaseRoute]) -> set[str]:
    """Every route's path with sample values, and near misses of each."""
    samples: set[str] = {"/", "/api", "/api/", "/api/nothing", "/nothing/at/all", "/media/a/b.mp4"}
    for route in routes:
        template = getattr(route, "path", None)
        if template is None:
            continue
        concrete = re.sub(r"\{[^}:]+:path\}", "a/b", template)
        concrete = re.sub(r"\{[^}]+\}", "x1", concrete)
        samples |= {
            concrete,
            concrete + "/",
            concrete.rstrip("/") + "/extra",
            concrete.rsplit("/", 1)[0] or "/",
            concrete.upper(),
        }
    return samples


def test_the_index_finds_what_the_routes_in_order_would(dev_app: FastAPI) -> None:
    index, *routes = dev_app.router.routes
    assert isinstance(index, RouteIndex)
    compared = 0
    for path, method in itertools.product(sorted(_paths(routes)), METHODS):
        scope = _scope(method, path)
        expected = _in_order(routes, scope)
        match, child = index.matches(scope)
        if isinstance(expected, APIRoute):
            assert match is Match.FULL, (method, path)
            assert child["route"] is expected, (method, path, expected.path)
            compared += 1
        else:  # nothing, or a documentation page: left to the router's own scan
            assert match is Match.NONE, (method, path)
    assert compared > 150


def test_the_index_leaves_what_it_cannot_judge_to_the_router(dev_app: FastAPI) -> None:
    index = dev_app.router.routes[0]
    assert index.matches(_scope("GET", "/healthz"))[0] is Match.FULL
    for odd in (
        {**_scope("GET", "/healthz"), "root_path": "/behind-a-proxy"},
        {**_scope("GET", "/healthz"), "fastapi.telemetry": object()},
        {**_scope("GET", "/healthz"), "type": "websocket"},
    ):
        assert index.matches(odd)[0] is Match.NONE


def test_the_hot_reads_are_served_directly(dev_app: FastAPI) -> None:
    served = {
        (route.path, method): route
        for route in dev_app.router.routes
        if isinstance(route, APIRoute)
        for method in route.methods
    }
    for key in [
        ("/healthz", "GET"),
        ("/api/auth/me", "GET"),
        ("/api/videos/tasks/{task_id}", "GET"),
        ("/api/tasks/{task_id}", "GET"),
    ]:
        assert direct_handler(served[key]) is not None, key
    # A body, a database session (a dependency with yield) or a query parameter: FastAPI's.
    assert direct_handler(served[("/api/videos/text-to-video", "POST")]) is None
    assert direct_handler(served[("/api/users/profile", "GET")]) is None
    assert direct_handler(served[("/api/admin/audit", "GET")]) is None


# --- direct handling against FastAPI's own, on an app made for it -------------------------------

_bearer = HTTPBearer(auto_error=False)
calls: list[str] = []


class Item(BaseModel):
    id: str
    owner: str | None = None
    note: str | None = None


async def caller(request: Request) -> str:
    calls.append("caller")
    return request.headers.get("x-caller", "anyone")


async def checked(who: Annotated[str, Depends(caller)]) -> str:
    if who == "banned":
        raise HTTPException(status_code=403, detail="Banned")
    return who


async def credentials(
    token: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> str | None:
    return token.credentials if token else None


router = APIRouter(prefix="/items")


@router.get("/{item_id}", response_model=Item, response_model_exclude_none=True)
async def read_item(
    item_id: str,
    who: Annotated[str, Depends(caller)],  # also under `checked`: called once a request
    allowed: Annotated[str, Depends(checked)],
    token: Annotated[str | None, Depends(credentials)],
) -> Any:
    return {"id": item_id, "owner": who if allowed else None, "note": token, "secret": "x"}


@router.post("/{item_id}/flag", status_code=201)
async def flag_item(item_id: str, request: Request) -> dict[str, object]:
    return {"flagged": item_id, "method": request.method}


@router.get("/{item_id}/text")
async def item_text(item_id: str, who: Annotated[str, Depends(caller)]) -> PlainTextResponse:
    return PlainTextResponse(f"{item_id} for {who}", headers={"x-made": "by hand"})


@router.delete("/{item_id}", status_code=204)
async def delete_item(item_id: str, who: Annotated[str, Depends(checked)]) -> None:
    return None


@pytest.fixture(scope="module")
def items_app() -> FastAPI:
    app = FastAPI()
    add_routes(app, router)
    index_routes(app)
    return app


async def _answer(app: FastAPI, method: str, path: str, headers: dict[str, str]) -> tuple[Any, ...]:
    calls.clear()
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        r = await client.request(method, path, headers=headers)
    return (
        r.status_code,
        r.headers.get("content-type"),
        r.headers.get("x-made"),
        r.content,
        [*calls],
    )


REQUESTS = [
    ("GET", "/items/a1", {}),
    ("GET", "/items/a1", {"x-caller": "ann", "authorization": "Bearer t0k"}),
    ("GET", "/items/a1", {"x-caller": "banned"}),
    ("GET", "/items/a1", {"authorization": "Basic nope"}),
    ("POST", "/items/a1/flag", {}),
    ("GET", "/items/a%2F1/text", {"x-caller": "bo"}),
    ("DELETE", "/items/a1", {}),
    ("DELETE", "/items/a1", {"x-caller": "banned"}),
    ("PUT", "/items/a1", {}),
    ("GET", "/items/", {}),
]


@pytest.mark.parametrize(("method", "path", "headers"), REQUESTS)
async def test_direct_answers_are_fastapis(
    items_app: FastAPI, method: str, path: str, headers: dict[str, str]
) -> None:
    direct = await _answer(items_app, method, path, headers)
    # Any dependency override hands every request to FastAPI's own handler.
    items_app.dependency_overrides[object] = object
    try:
        fastapis = await _answer(items_app, method, path, headers)
    finally:
        items_app.dependency_overrides.clear()
    assert direct == fastapis


async def test_direct_handling_applies_overrides_through_fastapi(items_app: FastAPI) -> None:
    async def impostor() -> str:
        return "impostor"

    items_app.dependency_overrides[caller] = impostor
    try:
        status, _, _, body, _ = await _answer(items_app, "GET", "/items/z9", {"x-caller": "ann"})
    finally:
        items_app.dependency_overrides.clear()
    assert (status, body) == (200, b'{"id":"z9","owner":"impostor"}')
    assert all(direct_handler(r) is not None for r in items_app.routes if isinstance(r, APIRoute))
