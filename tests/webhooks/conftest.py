"""A webhook receiver on loopback: records what it gets and answers as told."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..fixtures.loopback import serve_on_loopback
from ..fixtures.webhooks import Received, Receiver


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    state = Receiver(url="")

    async def hook(request: Request) -> Response:
        state.received.append(
            Received(request.url.path, dict(request.headers), await request.body())
        )
        if state.hold is not None:
            await state.hold.wait()
        status, headers = state.answers.pop(0) if state.answers else (200, {})
        return Response(status_code=status, headers=headers)

    app = Starlette(routes=[Route("/{path:path}", hook, methods=["POST", "GET"])])
    async with serve_on_loopback(app) as url:
        state.url = url
        yield state
