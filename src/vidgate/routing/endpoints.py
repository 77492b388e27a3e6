"""Completion callbacks from vendors: fal.ai's signed webhooks and kie.ai's signed callbacks.

A callback only wakes its task: once it verifies, the task's next step is queued at once, and
that step asks the vendor what became of the task as every poll does. So a callback can finish a
task sooner but can never settle one by itself, and one that does not verify changes nothing.
Polling stays the backstop for callbacks that never come.
"""

from __future__ import annotations

import time
from typing import Any

import structlog
from fastapi import APIRouter, Request
from pydantic import BaseModel
from sqlalchemy import select

from vidgate.db.session import Session
from vidgate.deps import DbSession, RuntimeDep
from vidgate.errors import documented
from vidgate.providers.fal import JwksUnavailable
from vidgate.providers.kie import verify_callback
from vidgate.routing.errors import (
    CallbackKeysUnavailable,
    CallbackNotVerified,
    CallbacksNotConfigured,
)
from vidgate.runtime import Runtime
from vidgate.tasks.jobs import schedule_advance
from vidgate.tasks.models import OPEN_STATUSES, Task

logger = structlog.get_logger(__name__)

router = APIRouter(prefix="/api/providers", tags=["providers"])


class Received(BaseModel):
    received: bool = True
    task_id: str | None = None  # the open task it woke, if any


async def _wake(
    runtime: Runtime, session: Session, provider: str, upstream_id: Any, *, suffix: bool
) -> Received:
    """Queue the next step of the open task the vendor's id names (`suffix`: fal's ids are
    stored as `{app}:{request_id}`)."""
    if not isinstance(upstream_id, str) or not upstream_id:
        return Received()
    match = (
        Task.upstream_id.endswith(f":{upstream_id}", autoescape=True)
        if suffix
        else Task.upstream_id == upstream_id
    )
    task_id = await session.scalar(
        select(Task.id).where(Task.provider == provider, match, Task.status.in_(OPEN_STATUSES))
    )
    if task_id is None:
        return Received()  # finished already, or not ours: acknowledged so it is not resent
    await schedule_advance(runtime.jobs, task_id)
    logger.info("providers.callback", provider=provider, task_id=str(task_id))
    return Received(task_id=str(task_id))


@router.post(
    "/fal/webhook",
    response_model=Received,
    responses=documented(CallbackNotVerified, CallbacksNotConfigured, CallbackKeysUnavailable),
)
async def fal_webhook(request: Request, runtime: RuntimeDep, session: DbSession) -> Received:
    """fal.ai's completion webhook, verified with fal's Ed25519 keys (JWKS)."""
    keys = runtime.providers.fal_jwks
    if keys is None:
        raise CallbacksNotConfigured()
    body = await request.body()
    try:
        event = await keys.verify(request.headers, body)
    except JwksUnavailable as exc:
        logger.warning("providers.fal_jwks_unavailable", error=str(exc))
        raise CallbackKeysUnavailable() from exc
    if event is None:
        raise CallbackNotVerified()
    return await _wake(runtime, session, "fal", event.get("request_id"), suffix=True)


@router.post(
    "/kie/callback",
    response_model=Received,
    responses=documented(CallbackNotVerified, CallbacksNotConfigured),
)
async def kie_callback(request: Request, runtime: RuntimeDep, session: DbSession) -> Received:
    """kie.ai's completion callback, verified with the HMAC key set in kie's dashboard."""
    key = runtime.providers.kie_hmac_key
    if not key:
        raise CallbacksNotConfigured()
    body = await request.body()
    payload = verify_callback(request.headers, body, key, now=time.time())
    if payload is None:
        raise CallbackNotVerified()
    inner = payload.get("data")
    data: dict[str, Any] = inner if isinstance(inner, dict) else payload
    task_id = data.get("taskId") or data.get("task_id")
    return await _wake(runtime, session, "kie", task_id, suffix=False)
