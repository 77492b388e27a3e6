"""A console app of the module's own (its own database), where a number may sign in again at
once: suspension, sign-out and role tests sign the same account in several times."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from vidgate.app import create_app
from vidgate.config import Settings
from vidgate.runtime import Runtime

from ..fixtures.databases import database_of_its_own


@pytest.fixture
async def console(
    settings: Settings, database_url: str
) -> AsyncIterator[tuple[httpx.AsyncClient, Runtime]]:
    async with database_of_its_own(database_url, "vidgate_console") as url:
        app = create_app(settings.model_copy(update={"sms_resend_interval_seconds": 0}), url)
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
                yield client, app.state.runtime
