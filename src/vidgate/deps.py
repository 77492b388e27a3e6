"""What every endpoint may ask for: the runtime, the unit of work, the caller's address."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request

from vidgate.db.session import Session
from vidgate.runtime import Runtime


async def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


async def get_db_session(runtime: RuntimeDep) -> AsyncIterator[Session]:
    """The request's unit of work: committed when the endpoint returns (its after-commit hooks
    then run), rolled back when it raises. Endpoints never commit; a flow that must keep a step
    before a later one can fail commits that step itself."""
    async with runtime.db.transaction() as session:
        yield session


# `scope="function"`: the commit happens before the response is sent, so a failed commit is
# answered as an error, never after a 200 went out.
DbSession = Annotated[Session, Depends(get_db_session, scope="function")]


async def client_ip(request: Request) -> str | None:
    """The caller's address (uvicorn applies trusted X-Forwarded-For before we see it)."""
    return request.client.host if request.client else None


ClientIp = Annotated[str | None, Depends(client_ip)]
