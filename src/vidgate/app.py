"""The FastAPI application: routers, error handlers, middleware and the process lifecycle."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import tempfile
from collections.abc import AsyncIterator, Coroutine
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import structlog
from fastapi import FastAPI
from starlette.middleware.cors import CORSMiddleware

from vidgate import __version__
from vidgate.admin import endpoints as admin_endpoints
from vidgate.apikeys import endpoints as apikey_endpoints
from vidgate.apikeys.service import ensure_client_key
from vidgate.auth import endpoints as auth_endpoints
from vidgate.auth.google import EMULATOR_CLIENT_ID, EMULATOR_ISSUER, emulator_client_secret
from vidgate.catalog import endpoints as catalog_endpoints
from vidgate.codes import admin_endpoints as code_admin_endpoints
from vidgate.codes import endpoints as code_endpoints
from vidgate.composition import open_runtime, supervised_worker
from vidgate.config import Settings
from vidgate.db.changes import listen_for_changes
from vidgate.db.engine import libpq_url
from vidgate.db.migrate import head_revision
from vidgate.emulators.aliyun_green import AliyunGreenEmulator
from vidgate.emulators.google import GoogleEmulator
from vidgate.errors import install_error_handlers
from vidgate.http_routes import add_routes, index_routes
from vidgate.labels import endpoints as label_endpoints
from vidgate.media import endpoints as media_endpoints
from vidgate.media import retention
from vidgate.media.serving import media_router
from vidgate.media.tus import endpoints as tus_endpoints
from vidgate.moderation import admin_endpoints as moderation_admin_endpoints
from vidgate.moderation import screen as moderation_screen
from vidgate.observability import RequestContextMiddleware
from vidgate.observability import router as ops_router
from vidgate.openapi import install_openapi
from vidgate.payments import admin_endpoints as payment_admin_endpoints
from vidgate.payments import endpoints as payment_endpoints
from vidgate.payments.registry import build_payments
from vidgate.providers.registry import build_providers
from vidgate.routing import admin_endpoints as routing_admin_endpoints
from vidgate.routing import endpoints as routing_endpoints
from vidgate.runtime import WorkerState
from vidgate.tasks import admin_endpoints as task_admin_endpoints
from vidgate.tasks import endpoints as task_endpoints
from vidgate.tasks import idempotency
from vidgate.users import admin_endpoints as user_admin_endpoints
from vidgate.users import endpoints as user_endpoints
from vidgate.web import DEFAULT_WEB_DIR, web_app
from vidgate.web import router as web_router
from vidgate.webhooks import endpoints as webhook_endpoints

logger = structlog.get_logger(__name__)

DEV_CLIENT_KEY_NAME = "development web client"


def google_emulator_for(settings: Settings) -> GoogleEmulator:
    """The emulated Google that development sign-in talks to (mounted in the app itself)."""
    return GoogleEmulator(
        issuer=EMULATOR_ISSUER,
        client_id=EMULATOR_CLIENT_ID,
        client_secret=emulator_client_secret(settings),
    )


@asynccontextmanager
async def _background(*work: Coroutine[Any, Any, None] | None) -> AsyncIterator[None]:
    """Run each coroutine as a task for the duration of the block, cancelled on the way out."""
    running = [asyncio.create_task(w) for w in work if w is not None]
    try:
        yield
    finally:
        for task in reversed(running):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


def create_app(
    settings: Settings,
    database_url: str,
    *,
    run_worker: bool = False,
    worker_state: WorkerState | None = None,
) -> FastAPI:
    """Build the app for a migrated database; `run_worker` runs the job worker in-process. An API
    process of `vidgate serve --workers N` that does not run it gets the `worker_state` of the
    one that does, so `/readyz` reports the worker alike in every process."""
    providers = build_providers(settings)
    payments = build_payments(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with open_runtime(
            settings, database_url, providers=providers, payments=payments
        ) as runtime:
            app.state.runtime = runtime
            runtime.prober.start()  # uploads are probed in its workers: no wait for the first
            app.state.migration_head = head_revision()
            if worker_state is not None and not run_worker:
                runtime.worker = worker_state
            if settings.is_development and settings.dev_client_api_key:
                async with runtime.db.transaction() as session:
                    await ensure_client_key(
                        session, settings.dev_client_api_key, DEV_CLIENT_KEY_NAME
                    )
            async with _background(
                listen_for_changes(
                    libpq_url(database_url),
                    [runtime.principals, runtime.task_views, runtime.task_events],
                ),
                supervised_worker(runtime).run() if run_worker else None,
            ):
                # What is built so far lives as long as the process: the cyclic collector's full
                # passes leave it alone from here on. Walking it (~200k objects) took ~80 ms every
                # few seconds under load, a pause for every request in flight.
                gc.collect()
                gc.freeze()
                yield

    app = FastAPI(
        title="vidgate",
        version=__version__,
        summary="Sign-in, credits and AI video tasks behind one HTTP API.",
        lifespan=lifespan,
    )
    install_error_handlers(app)
    install_openapi(app)
    # Routes are matched in this order, router by router: the hottest paths come first (task
    # status, /api/auth/me), health checks before the rest. The routers' routes are added to the
    # app itself and an index by path goes in front (http_routes.py): FastAPI would walk each
    # included router route by route on every request.
    add_routes(
        app,
        task_endpoints.videos,
        auth_endpoints.router,
        task_endpoints.tasks,
        label_endpoints.router,
        catalog_endpoints.router,
        ops_router,
        webhook_endpoints.deliveries,
        webhook_endpoints.secrets,
        user_endpoints.router,
        code_endpoints.router,
        apikey_endpoints.router,
        media_endpoints.router,
        tus_endpoints.router,
        media_endpoints.direct_uploads,
        payment_endpoints.router,
        routing_endpoints.router,
        admin_endpoints.router,
        user_admin_endpoints.router,
        task_admin_endpoints.router,
        routing_admin_endpoints.router,
        code_admin_endpoints.router,
        payment_admin_endpoints.router,
        moderation_admin_endpoints.router,
        web_router,
        media_router(
            lambda request: request.app.state.runtime.storage,
            lambda request, key: retention.expired_object(request.app.state.runtime.db, key),
        ),
    )
    if settings.is_development:
        add_routes(app, auth_endpoints.dev_router)
    if settings.google_uses_emulator:
        add_routes(app, google_emulator_for(settings).router())
    if moderation_screen.uses_emulator(settings):
        key_id, secret = moderation_screen.emulator_credentials(settings)
        add_routes(app, AliyunGreenEmulator(key_id, secret).router())
    add_routes(app, *providers.emulator_routers, *payments.emulator_routers)
    index_routes(app)
    # The browser app answers only paths no route matches with any method (a mount at `/` would
    # take a wrong method on an API path away from the router's 405).
    pages = web_app(settings.web_dir or DEFAULT_WEB_DIR)
    if pages is not None:
        app.router.default = pages
    app.add_middleware(RequestContextMiddleware, access_log=settings.access_log)
    if settings.cors_origins:
        # Outermost, so error answers carry the CORS headers too and a browser can read them.
        # Tokens travel in headers, never cookies: no credentials mode.
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"],
            allow_headers=[
                "Authorization",
                "Content-Type",
                "X-API-Key",
                "X-Request-ID",
                idempotency.HEADER,
                *tus_endpoints.REQUEST_HEADERS,
            ],
            expose_headers=["X-Request-ID", "Retry-After", *tus_endpoints.RESPONSE_HEADERS],
            max_age=600,
        )
    return app


def keyless_development_settings(data_dir: Path) -> Settings:
    """Development settings with no vendor key: every optional router (emulators, development
    routes) mounted, whatever this machine's environment holds."""
    return Settings(
        env="development",
        data_dir=data_dir,
        google_client_id="",
        dashscope_api_key="",
        kie_api_key="",
        wechat_mchid="",
        stripe_secret_key="",
    )


def openapi_document() -> dict[str, Any]:
    """The API as a development server describes it (development adds only `/api/_dev/...`),
    independent of this machine's settings, keys and data."""
    with tempfile.TemporaryDirectory() as data_dir:
        settings = keyless_development_settings(Path(data_dir))
        return create_app(settings, "postgresql://unused/unused").openapi()
