"""`/api/admin/channels`: the catalog as loaded, each channel's health, breaker and last hour of
attempts; switching a channel off and on for every process (audited)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, Path
from pydantic import BaseModel

from vidgate.admin.access import GUARD_ERRORS, Admin, Support
from vidgate.admin.schemas import OperatorAction
from vidgate.admin.service import actor_of
from vidgate.catalog.schema import ID_PATTERN
from vidgate.deps import DbSession, RuntimeDep
from vidgate.errors import documented
from vidgate.routing import service
from vidgate.routing.errors import ChannelNotFound

router = APIRouter(prefix="/api/admin/channels", tags=["admin"])

WINDOW = timedelta(hours=1)  # the span the error rate and latency are measured over
ChannelId = Annotated[str, Path(max_length=64, pattern=ID_PATTERN)]


class ChannelOut(BaseModel):
    model: str
    channel: str
    adapter: str
    vendor_model: str
    enabled_in_catalog: bool
    configured: bool
    disabled: bool
    breaker: Literal["closed", "open", "half-open"]
    failures_in_a_row: int
    last_error: str | None
    open_tasks: int
    max_concurrency: int | None
    attempts_last_hour: int
    error_rate_last_hour: float
    median_submit_ms: float | None


class ChannelList(BaseModel):
    channels: list[ChannelOut]


async def _channels(session: DbSession, runtime: RuntimeDep) -> ChannelList:
    states = await service.channel_states(
        session, runtime.catalog, configured=runtime.providers.configured
    )
    activity = await service.recent_activity(session, datetime.now(UTC) - WINDOW)
    idle = service.ChannelActivity(0, 0, None)
    out = []
    for state in states:
        seen = activity.get(state.channel.id, idle)
        out.append(
            ChannelOut(
                model=state.model,
                channel=state.channel.id,
                adapter=state.channel.adapter,
                vendor_model=state.channel.vendor_model,
                enabled_in_catalog=state.channel.enabled,
                configured=state.configured,
                disabled=state.disabled,
                breaker=state.breaker,
                failures_in_a_row=state.failures,
                last_error=state.last_error,
                open_tasks=state.open_tasks,
                max_concurrency=state.channel.max_concurrency,
                attempts_last_hour=seen.attempts,
                error_rate_last_hour=round(seen.error_rate, 4),
                median_submit_ms=seen.median_submit_ms,
            )
        )
    return ChannelList(channels=out)


@router.get("", response_model=ChannelList, responses=documented(*GUARD_ERRORS))
async def list_channels(operator: Support, session: DbSession, runtime: RuntimeDep) -> ChannelList:
    """Every channel of every model, in catalog order, with its state now and its last hour."""
    return await _channels(session, runtime)


async def _switch(
    operator: Admin,
    session: DbSession,
    runtime: RuntimeDep,
    channel_id: str,
    disabled: bool,
    reason: str,
) -> ChannelList:
    await service.switch_channel(
        session, actor_of(operator), runtime.catalog, channel_id, disabled, reason
    )
    return await _channels(session, runtime)


@router.post(
    "/{channel_id}/disable",
    response_model=ChannelList,
    responses=documented(*GUARD_ERRORS, ChannelNotFound),
)
async def disable_channel(
    body: OperatorAction,
    operator: Admin,
    session: DbSession,
    runtime: RuntimeDep,
    channel_id: ChannelId,
) -> ChannelList:
    """Send no new task to the channel, from every process at once (tasks on it run on)."""
    return await _switch(operator, session, runtime, channel_id, True, body.reason)


@router.post(
    "/{channel_id}/enable",
    response_model=ChannelList,
    responses=documented(*GUARD_ERRORS, ChannelNotFound),
)
async def enable_channel(
    body: OperatorAction,
    operator: Admin,
    session: DbSession,
    runtime: RuntimeDep,
    channel_id: ChannelId,
) -> ChannelList:
    """Send tasks to the channel again."""
    return await _switch(operator, session, runtime, channel_id, False, body.reason)
