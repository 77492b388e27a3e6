"""The browser app: its run-time configuration, and the static export of `web/` served at `/`."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from fastapi import APIRouter, HTTPException
from pydantic import BaseModel, Field
from starlette.responses import Response
from starlette.staticfiles import StaticFiles
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocketClose

from vidgate.catalog.schema import Catalog
from vidgate.deps import RuntimeDep

# Where `make web` leaves the build, relative to a source checkout.
CHECKOUT_WEB_DIR = Path(__file__).resolve().parents[2] / "web" / "out"
# Where an installed wheel carries the build: `make dist` copies web/out into the package.
PACKAGED_WEB_DIR = Path(__file__).resolve().parent / "webapp"


def default_web_dir(checkout_web_dir: Path = CHECKOUT_WEB_DIR) -> Path:
    """The checkout's web/out when vidgate runs from a checkout (`make run`, an editable
    install), built or not: a copy left in the package (by an interrupted `make dist`, or in an
    unpacked sdist) never shadows a fresher `make web`. Otherwise, installed from a wheel, the
    app the package carries."""
    if (checkout_web_dir.parent / "package.json").is_file():
        return checkout_web_dir
    return PACKAGED_WEB_DIR


DEFAULT_WEB_DIR = default_web_dir()

# First path segments the static app never answers, so an unknown API path gets the API's JSON
# 404 rather than the app's 404 page.
RESERVED_SEGMENTS = frozenset({"api", "_emulator", "media", "docs", "openapi.json", "redoc"})

router = APIRouter(prefix="/api/web", tags=["web"])


class WebConfig(BaseModel):
    api_base_url: str = Field(
        description="Base of the API, e.g. /api or https://api.example.com/api"
    )
    api_key: str = Field(description="The client API key the web app sends as X-API-Key")
    environment: Literal["development", "production"]
    google_sign_in: bool = Field(description="Whether Google sign-in is configured")
    payment_methods: list[str] = Field(description="Configured gateways: wechat, stripe")
    sms_outbox: bool = Field(description="Development: SMS codes readable at /api/_dev/sms/outbox")
    prices: dict[str, dict[str, int]] = Field(
        description="Credits by kind and tier (mode or quality) of each kind's default model: per"
        " second of output for the animate kinds, per task of the default duration for the others"
    )
    max_upload_bytes: int
    signup_bonus_credits: int


@router.get("/config", response_model=WebConfig)
async def web_config(runtime: RuntimeDep) -> WebConfig:
    """What the browser app needs to know about this deployment; public, like the client key."""
    settings = runtime.settings
    return WebConfig(
        api_base_url=settings.web_api_base_url,
        api_key=settings.web_client_api_key or settings.dev_client_api_key,
        environment=settings.env,
        google_sign_in=runtime.google is not None,
        payment_methods=sorted(runtime.payment_gateways),
        sms_outbox=settings.is_development,
        prices=_price_table(runtime.catalog),
        max_upload_bytes=settings.max_upload_bytes,
        signup_bonus_credits=settings.signup_bonus_credits,
    )


def _price_table(catalog: Catalog) -> dict[str, dict[str, int]]:
    """Each kind's default model's price by tier (per second of output for animate kinds)."""
    table: dict[str, dict[str, int]] = {}
    for kind in ("animate-move", "animate-mix", "text-to-video", "image-to-video"):
        model = catalog.default_for(kind)
        table[kind] = {tier.name: model.price(tier.name).credits for tier in model.tiers}
    return table


class WebApp(StaticFiles):
    """The exported pages. Hashed assets under `_next/static` are cached for good; pages are
    revalidated on every visit so a new deployment shows at once.

    It is the API router's `default`, run only for a path no route matches with any method, and
    never a mount at `/`: a mount matches every path fully, so it would win over an API route
    that matches the path with another method, and a wrong method would be this app's 404
    instead of the API's 405 with `Allow`. As the default, the app answers exactly the requests
    the API would answer 404, and status codes do not depend on whether the app is built."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":  # a WebSocket to a path nothing serves: what Starlette does
            await WebSocketClose()(scope, receive, send)
            return
        await super().__call__(scope, receive, send)

    async def get_response(self, path: str, scope: Scope) -> Response:
        if path.split("/", 1)[0] in RESERVED_SEGMENTS:
            raise HTTPException(status_code=404, detail="Not Found")
        response = await super().get_response(path, scope)
        if path.startswith("_next/static/") and response.status_code == 200:
            response.headers["Cache-Control"] = "public, max-age=31536000, immutable"
        else:
            response.headers["Cache-Control"] = "no-cache"
        return response


def web_app(directory: Path) -> WebApp | None:
    """The static app in `directory` (to install as `app.router.default`), or None when it has
    not been built."""
    if not (directory / "index.html").is_file():
        return None
    return WebApp(directory=directory, html=True)
