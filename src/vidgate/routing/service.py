"""Which channel a task is sent through, and what a channel's failures do to the next tasks.

A task goes through its model's channels in catalog order. A channel is skipped when it is
disabled (in the catalog or by an operator), has no adapter configured on this server, was tried
already for this task in the current round, has its circuit breaker open, or has all its
concurrency slots taken. Every process sees the same breakers and slots: both live in PostgreSQL
(`channel_health`, and the count of open tasks on the channel). The common channel (no slot limit,
breaker closed) is chosen from an unlocked read, so sends through it never wait for one another;
a channel's health row is locked only while its slots are counted and taken or its half-open
breaker's one probe is handed out, so two workers cannot both take the last slot or both probe.

The breaker opens after `threshold` failures in a row (not sent, throttled, or a channel error
such as a refused key) and stays open for `cooldown` seconds; then one task may probe it (half
open) while the others still skip it; the probe's success closes it, its failure opens it again.
A user's input that the vendor refuses is not a channel failure: the channel answered, so
that closes a half-open breaker as a success does.

Nothing here commits: the caller's transaction takes the slot together with the task's claim.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Literal

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from vidgate.admin import service as audit
from vidgate.admin.service import Actor
from vidgate.catalog.schema import Catalog, Channel, Model
from vidgate.routing.errors import ChannelNotFound
from vidgate.routing.models import ChannelHealth
from vidgate.tasks.models import OPEN_STATUSES, Task, TaskAttempt


@dataclass(frozen=True)
class Breaker:
    threshold: int = 5  # failures in a row that open it
    cooldown: timedelta = timedelta(seconds=30)  # open this long before a probe
    probe_window: timedelta = timedelta(seconds=60)  # one probe at a time for this long


@dataclass(frozen=True)
class Taken:
    """A channel whose slot (and, half open, whose probe) the task now holds. `healthy`: its
    breaker had no failure counted when it was taken, so a success has nothing to reset."""

    channel: Channel
    healthy: bool = False


@dataclass(frozen=True)
class NoneFree:
    """No channel could take the task now: `busy` (slots or breakers: wait and try again), or
    `unavailable` (none is enabled, configured and untried: nothing will change by waiting)."""

    why: Literal["busy", "unavailable"]


@dataclass(frozen=True)
class NeedsLock:
    """The channel to try next counts slots or is half open: whether the task may take it is
    decided under the lock of its health row (`take_channel`)."""

    channel: Channel


def _candidates(
    model: Model, configured: Callable[[str], bool], tried: Collection[str]
) -> list[Channel]:
    return [c for c in model.channels if c.enabled and configured(c.adapter) and c.id not in tried]


async def choose_channel(
    session: AsyncSession,
    model: Model,
    *,
    configured: Callable[[str], bool],
    tried: Collection[str],
    now: datetime,
) -> Taken | NeedsLock | NoneFree:
    """The first channel of `model` that can take the task, read without a lock: the common
    case (no slot limit, breaker closed) needs nothing more, and the task's claim makes it its
    own. A channel that counts slots or is half open is answered `NeedsLock`."""
    candidates = _candidates(model, configured, tried)
    if not candidates:
        return NoneFree("unavailable")
    rows = await session.scalars(
        select(ChannelHealth).where(ChannelHealth.channel.in_([c.id for c in candidates]))
    )
    health = {h.channel: h for h in rows}
    busy = False
    for channel in candidates:
        row = health.get(channel.id)
        if row is not None and row.disabled:
            continue
        if row is not None and _breaker_holds(row, now):
            busy = True
            continue
        if channel.max_concurrency is not None or (row is not None and row.open_until is not None):
            return NeedsLock(channel)
        return Taken(channel, healthy=row is None or row.failures == 0)
    return NoneFree("busy" if busy else "unavailable")


async def _health(session: AsyncSession, channel_id: str) -> ChannelHealth:
    """The channel's health row, made if missing, locked for this transaction."""
    await session.execute(insert(ChannelHealth).values(channel=channel_id).on_conflict_do_nothing())
    return await session.get_one(
        ChannelHealth, channel_id, with_for_update=True, populate_existing=True
    )


async def _open_tasks(session: AsyncSession, channel_id: str, task_id: uuid.UUID) -> int:
    count = await session.scalar(
        select(func.count())
        .select_from(Task)
        .where(Task.channel == channel_id, Task.status.in_(OPEN_STATUSES), Task.id != task_id)
    )
    return count or 0


def _breaker_holds(health: ChannelHealth, now: datetime) -> bool:
    """Open, or half open with its one probe already out."""
    if health.open_until is None:
        return False
    return health.open_until > now or (
        health.probing_until is not None and health.probing_until > now
    )


async def _full(session: AsyncSession, channel: Channel, task_id: uuid.UUID) -> bool:
    if channel.max_concurrency is None:
        return False
    return await _open_tasks(session, channel.id, task_id) >= channel.max_concurrency


async def take_channel(
    session: AsyncSession,
    model: Model,
    task_id: uuid.UUID,
    *,
    configured: Callable[[str], bool],
    tried: Collection[str],
    now: datetime,
    breaker: Breaker,
) -> Taken | NoneFree:
    """The first channel of `model` that can take the task now, its slot taken in the caller's
    transaction (the caller records it on the task before committing). Each channel's health row
    is locked while its slots are counted and its breaker read, so two workers cannot both take
    its last slot or both probe it."""
    busy = False
    for channel in _candidates(model, configured, tried):
        health = await _health(session, channel.id)
        if health.disabled:
            continue
        if _breaker_holds(health, now) or await _full(session, channel, task_id):
            busy = True
            continue
        if health.open_until is not None:  # half open: this task is the probe
            health.probing_until = now + breaker.probe_window
        await session.flush()
        return Taken(channel, healthy=health.failures == 0 and health.open_until is None)
    return NoneFree("busy" if busy else "unavailable")


async def succeeded(session: AsyncSession, channel_id: str) -> None:
    """The channel took a task: its breaker closes."""
    await session.execute(
        update(ChannelHealth)
        .where(ChannelHealth.channel == channel_id)
        .values(failures=0, open_until=None, probing_until=None)
    )


async def failed(
    session: AsyncSession, channel_id: str, error: str, *, now: datetime, breaker: Breaker
) -> bool:
    """Count a failure of the channel; True when this one opened its breaker."""
    health = await _health(session, channel_id)
    health.failures += 1
    health.last_error = error[:1000]
    health.probing_until = None
    opened = health.failures >= breaker.threshold
    if opened:
        health.open_until = now + breaker.cooldown
    await session.flush()
    return opened


async def set_disabled(session: AsyncSession, channel_id: str, disabled: bool) -> None:
    """An operator's switch: a disabled channel takes no new task until enabled again."""
    health = await _health(session, channel_id)
    health.disabled = disabled
    await session.flush()


async def usable_channels(
    session: AsyncSession,
    channels: Collection[Channel],
    *,
    configured: Callable[[str], bool],
    now: datetime | None = None,
) -> set[str]:
    """The ids of the channels that could take a task now: enabled, configured on this server,
    not disabled by an operator, breaker not open (busy slots do not count: a task waits)."""
    at = now or datetime.now(UTC)
    candidates = [c for c in channels if c.enabled and configured(c.adapter)]
    rows = await session.scalars(
        select(ChannelHealth).where(ChannelHealth.channel.in_([c.id for c in candidates]))
    )
    held = {h.channel for h in rows if h.disabled or _breaker_holds(h, at)}
    return {c.id for c in candidates if c.id not in held}


@dataclass(frozen=True)
class ChannelState:
    """A channel as an operator sees it."""

    model: str
    channel: Channel
    configured: bool
    disabled: bool
    breaker: Literal["closed", "open", "half-open"]
    failures: int
    last_error: str | None
    open_tasks: int


async def channel_states(
    session: AsyncSession,
    catalog: Catalog,
    *,
    configured: Callable[[str], bool],
    now: datetime | None = None,
) -> list[ChannelState]:
    """Every channel of every model in catalog order, with its health and its open tasks."""
    at = now or datetime.now(UTC)
    health = {h.channel: h for h in await session.scalars(select(ChannelHealth))}
    counts = dict(
        (
            await session.execute(
                select(Task.channel, func.count())
                .where(Task.channel.is_not(None), Task.status.in_(OPEN_STATUSES))
                .group_by(Task.channel)
            )
        ).all()
    )
    states = []
    for model in catalog.models:
        for channel in model.channels:
            row = health.get(channel.id)
            breaker: Literal["closed", "open", "half-open"] = "closed"
            if row is not None and row.open_until is not None:
                breaker = "open" if row.open_until > at else "half-open"
            states.append(
                ChannelState(
                    model=model.id,
                    channel=channel,
                    configured=configured(channel.adapter),
                    disabled=bool(row and row.disabled),
                    breaker=breaker,
                    failures=row.failures if row else 0,
                    last_error=row.last_error if row else None,
                    open_tasks=counts.get(channel.id, 0),
                )
            )
    return states


@dataclass(frozen=True)
class CostLine:
    """Tasks of one model, channel and tier since a date: what they earned and what they cost."""

    model: str
    channel: str
    tier: str
    tasks: int
    succeeded: int
    credits: int  # charged less refunded
    billed_seconds: float
    cost: Decimal | None  # in `currency`; None when the catalog names no price for it
    currency: str | None


async def cost_report(session: AsyncSession, catalog: Catalog, since: datetime) -> list[CostLine]:
    """Per model, channel and tier: tasks sent since `since`, credits earned, the vendor's cost
    (seconds of successful output × the channel's price for the tier) in its currency."""
    tier = func.coalesce(Task.params["mode"].astext, Task.params["quality"].astext)
    rows = await session.execute(
        select(
            Task.model,
            Task.channel,
            tier,
            func.count(),
            func.count().filter(Task.status == "SUCCEEDED"),
            func.coalesce(func.sum(Task.credits_charged - Task.credits_refunded), 0),
            func.coalesce(
                func.sum(Task.result_duration_seconds).filter(Task.status == "SUCCEEDED"), 0.0
            ),
        )
        .where(Task.created_at >= since, Task.channel.is_not(None))
        .group_by(Task.model, Task.channel, tier)
        .order_by(Task.model, Task.channel, tier)
    )
    lines = []
    for model_id, channel_id, tier_name, tasks, succeeded, credits, seconds in rows.all():
        found = catalog.channel(channel_id)
        price = found[1].cost if found else None
        per_second = price.per_second.get(tier_name) if price else None
        cost = None
        if per_second is not None:
            cost = (Decimal(str(seconds)) * per_second).quantize(Decimal("0.01"))
        lines.append(
            CostLine(
                model=model_id,
                channel=channel_id,
                tier=tier_name or "-",
                tasks=tasks,
                succeeded=succeeded,
                credits=int(credits),
                billed_seconds=float(seconds),
                cost=cost,
                currency=price.currency if price and per_second is not None else None,
            )
        )
    return lines


async def switch_channel(
    session: AsyncSession,
    actor: Actor,
    catalog: Catalog,
    channel_id: str,
    disabled: bool,
    reason: str,
) -> None:
    """Disable or enable a channel for every process, audited."""
    if catalog.channel(channel_id) is None:
        raise ChannelNotFound()
    health = await _health(session, channel_id)
    before = {"disabled": health.disabled}
    await set_disabled(session, channel_id, disabled)
    await audit.record(
        session,
        actor,
        "channel.disabled" if disabled else "channel.enabled",
        "channel",
        channel_id,
        reason=reason,
        before=before,
        after={"disabled": disabled},
    )


@dataclass(frozen=True)
class ChannelActivity:
    """A channel's vendor attempts over a recent window."""

    attempts: int
    failures: int  # not taken (not sent, throttled, the channel's own error) or ambiguous
    median_submit_ms: float | None  # accepted submits: from sending to the vendor's answer

    @property
    def error_rate(self) -> float:
        return self.failures / self.attempts if self.attempts else 0.0


FAILED_OUTCOMES = ("not_sent", "throttled", "channel_error", "ambiguous")


async def recent_activity(session: AsyncSession, since: datetime) -> dict[str, ChannelActivity]:
    """Per channel, the attempts since `since`: how many, how many failed, the median time an
    accepted submit took."""
    elapsed = func.extract("epoch", TaskAttempt.finished_at - TaskAttempt.started_at) * 1000
    rows = await session.execute(
        select(
            TaskAttempt.channel,
            func.count(),
            func.count().filter(TaskAttempt.outcome.in_(FAILED_OUTCOMES)),
            func.percentile_cont(0.5)
            .within_group(elapsed)
            .filter(TaskAttempt.outcome == "accepted"),
        )
        .where(TaskAttempt.started_at >= since)
        .group_by(TaskAttempt.channel)
    )
    return {
        channel: ChannelActivity(int(n), int(failed), float(median) if median is not None else None)
        for channel, n, failed, median in rows
    }
