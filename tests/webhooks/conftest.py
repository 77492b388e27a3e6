"""A webhook receiver on loopback: records what it gets and answers as told."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..fixtures.signin import serve_on_loopback


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    url: str
    received: list[Received] = field(default_factory=list)
    # Answers for the next requests, in order: (status, headers); then 200.
    answers: list[tuple[int, dict[str, str]]] = field(default_factory=list)
    # When set: requests are recorded, then wait for it before they are answered.
    hold: asyncio.Event | None = None

    def at(self, path: str) -> str:
        return self.url + path

    def to(self, path: str) -> list[Received]:
        return [r for r in self.received if r.path == path]

    async def wait_for(self, path: str, count: int, within: float = 20.0) -> list[Received]:
        async with asyncio.timeout(within):
            while len(self.to(path)) < count:  # noqa: ASYNC110
                await asyncio.sleep(0.02)
        return self.to(path)


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


def json_of(received: Received) -> Any:
    import json

    return json.loads(received.body)
