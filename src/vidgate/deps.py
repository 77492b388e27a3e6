"""What every endpoint may ask for: the runtime, a database session, the caller's address."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from vidgate.auth.principal_cache import PrincipalCache
from vidgate.auth.tokens import AccessTokens
from vidgate.config import Settings
from vidgate.db.engine import Database
from vidgate.tasks.cache import TaskCache
from vidgate.tasks.events import TaskEvents

if TYPE_CHECKING:
    from procrastinate import App

    from vidgate.auth.google import GoogleSignIn
    from vidgate.auth.sms.base import SmsSender
    from vidgate.media.storage import Storage
    from vidgate.net.safe_http import SafeHttpClient
    from vidgate.payments.gateway import PaymentGateway
    from vidgate.providers.registry import Providers
    from vidgate.supervisor import WorkerSupervisor
    from vidgate.tasks.inputs import MediaResolver


@dataclass
class Runtime:
    """The process-wide objects built once at start-up and shared by all requests."""

    settings: Settings
    db: Database
    tokens: AccessTokens
    sms_sender: SmsSender
    storage: Storage
    providers: Providers
    outbound: SafeHttpClient
    media_resolver: MediaResolver
    jobs: App | None = None  # defers jobs; None only in tests that run without a queue
    worker: WorkerSupervisor | None = None  # the job worker run in this process, if any
    google: GoogleSignIn | None = None  # None: Google sign-in not configured
    principals: PrincipalCache = field(default_factory=PrincipalCache)
    task_views: TaskCache = field(default_factory=TaskCache)
    task_events: TaskEvents = field(default_factory=TaskEvents)
    payment_gateways: dict[str, PaymentGateway] = field(default_factory=dict)  # configured ones
    # api key id → monotonic time of its last `last_used_at` write (written once a minute at most)
    key_touches: dict[str, float] = field(default_factory=dict)


async def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


async def get_db_session(runtime: RuntimeDep) -> AsyncIterator[AsyncSession]:
    """An ORM session for the request; the endpoint commits what it wants kept."""
    async with runtime.db.session() as session:
        yield session


DbSession = Annotated[AsyncSession, Depends(get_db_session)]


async def client_ip(request: Request) -> str | None:
    """The caller's address (uvicorn applies trusted X-Forwarded-For before we see it)."""
    return request.client.host if request.client else None


ClientIp = Annotated[str | None, Depends(client_ip)]
