"""Signing secrets, recording task events as deliveries, retry timing, and the delivery log.

A task event becomes a `webhook_deliveries` row in the same transaction as the task's change,
and its first job is queued in that transaction too (procrastinate's defer function, called on
the same connection): an event can neither be lost between the commit and the queueing nor sent
for a change that rolled back.
"""

from __future__ import annotations

import base64
import os
import random
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import structlog
from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from standardwebhooks import Webhook

from vidgate.jobs import defer_in_transaction, defer_once
from vidgate.tasks.models import Task, TaskStatus
from vidgate.webhooks.models import WebhookAttempt, WebhookDelivery, WebhookSecret

if TYPE_CHECKING:
    from procrastinate import App

logger = structlog.get_logger(__name__)

DELIVER = "webhooks:deliver_webhook"
# A rotated secret keeps signing alongside the new one this long.
ROTATION_OVERLAP = timedelta(hours=24)
# Waits after the 1st, 2nd, … failed attempt (Standard Webhooks' example schedule); the first
# attempt is immediate, and after the last wait's attempt fails the delivery gives up.
RETRY_DELAYS = (5, 300, 1800, 7200, 18000, 36000, 50400, 72000, 86400)
JITTER = 0.1  # ± this share of each wait, so retries of many deliveries spread out
ATTEMPT_TIMEOUT = 15.0
# How long an attempt's claim on its delivery lasts: the request's timeout and some slack.
CLAIM = timedelta(seconds=ATTEMPT_TIMEOUT + 30)
MAX_RETRY_AFTER = 86400
EVENT_OF_STATUS = {
    TaskStatus.RUNNING: "task.running",
    TaskStatus.SUCCEEDED: "task.succeeded",
    TaskStatus.FAILED: "task.failed",
    TaskStatus.TIMEOUT: "task.timeout",
    TaskStatus.CANCELED: "task.canceled",
}


async def schedule_delivery(app: App, delivery_id: uuid.UUID | str, delay: float = 0.0) -> bool:
    """Queue an attempt; False when one is queued already (that one will do)."""
    lock = queueing_lock(delivery_id)
    return await defer_once(app, DELIVER, lock, delay, delivery_id=str(delivery_id))


def queueing_lock(delivery_id: uuid.UUID | str) -> str:
    return f"webhook:{delivery_id}"


# --- secrets ----------------------------------------------------------------------------------


def new_secret() -> str:
    return "whsec_" + base64.b64encode(os.urandom(32)).decode()


async def current_secret(session: AsyncSession, user_id: uuid.UUID) -> WebhookSecret:
    """The user's signing secret, made on first use (concurrent first uses agree on one)."""
    await session.execute(
        insert(WebhookSecret)
        .values(user_id=user_id, secret=new_secret())
        .on_conflict_do_nothing(
            index_elements=[WebhookSecret.user_id],
            index_where=WebhookSecret.retired_at.is_(None),
        )
    )
    secret = await session.scalar(
        select(WebhookSecret).where(
            WebhookSecret.user_id == user_id, WebhookSecret.retired_at.is_(None)
        )
    )
    assert secret is not None
    return secret


async def previous_secret(
    session: AsyncSession, user_id: uuid.UUID, now: datetime
) -> WebhookSecret | None:
    """The last rotated-out secret while it still signs."""
    result: WebhookSecret | None = await session.scalar(
        select(WebhookSecret)
        .where(WebhookSecret.user_id == user_id, WebhookSecret.signs_until > now)
        .order_by(WebhookSecret.id.desc())
        .limit(1)
    )
    return result


async def rotate(session: AsyncSession, user_id: uuid.UUID, now: datetime) -> WebhookSecret:
    """Retire the current secret (it signs for another day) and make a new one."""
    old = await current_secret(session, user_id)
    await session.execute(
        update(WebhookSecret)
        .where(WebhookSecret.id == old.id, WebhookSecret.retired_at.is_(None))
        .values(retired_at=now, signs_until=now + ROTATION_OVERLAP)
    )
    return await current_secret(session, user_id)


async def signing_secrets(session: AsyncSession, user_id: uuid.UUID, now: datetime) -> list[str]:
    """Every secret that signs now: the current one first, then any still in their overlap."""
    current = await current_secret(session, user_id)
    rows = await session.scalars(
        select(WebhookSecret.secret)
        .where(WebhookSecret.user_id == user_id, WebhookSecret.signs_until > now)
        .order_by(WebhookSecret.id.desc())
    )
    return [current.secret, *rows]


def sign(secrets: Sequence[str], event_id: str, at: datetime, body: str) -> str:
    """The `webhook-signature` header: one `v1,<base64>` per secret, space-separated."""
    return " ".join(Webhook(secret).sign(event_id, at, body) for secret in secrets)


# --- recording events ---------------------------------------------------------------------------


async def record_task_event(
    session: AsyncSession, task: Task, describe: Callable[[Task], dict[str, Any]]
) -> bool:
    """Record the event for the task's current status, if it has a webhook URL; queue it.

    `describe` gives the event's `data` (the task's public view, as JSON) from the task as
    refreshed here; the caller supplies it, so this module does not depend on the tasks service.
    False when there is nothing to send or the event was already recorded.
    """
    event_type = EVENT_OF_STATUS.get(TaskStatus(task.status))
    if not task.webhook_url or event_type is None:
        return False
    await session.refresh(task)  # server-set columns (updated_at) as of this change
    now = datetime.now(UTC)
    payload = {
        "type": event_type,
        "timestamp": now.isoformat().replace("+00:00", "Z"),
        "data": describe(task),
    }
    delivery_id = await session.scalar(
        insert(WebhookDelivery)
        .values(
            id=uuid.uuid4(),
            event_id=f"msg_{uuid.uuid4().hex}",
            user_id=task.user_id,
            task_id=task.id,
            event_type=event_type,
            url=task.webhook_url,
            payload=payload,
            status="pending",
            attempts=0,
        )
        .on_conflict_do_nothing(constraint="uq_webhook_deliveries_task_event")
        .returning(WebhookDelivery.id)
    )
    if delivery_id is None:
        return False
    await defer_in_transaction(
        session, DELIVER, queueing_lock(delivery_id), delivery_id=str(delivery_id)
    )
    return True


# --- delivering -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    """What one attempt led to: the delivery's new status and, if pending, when to try again."""

    status: str
    retry_in: float | None = None


def retry_delay(
    failed_attempts: int, retry_after: float | None, rand: Callable[[], float] = random.random
) -> float | None:
    """Seconds until the next attempt after `failed_attempts` failures; None: give up."""
    if failed_attempts > len(RETRY_DELAYS):
        return None
    base = RETRY_DELAYS[failed_attempts - 1]
    wait = base * (1 + JITTER * (2 * rand() - 1))
    if retry_after is not None:
        wait = max(wait, min(retry_after, MAX_RETRY_AFTER))
    return wait


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """`Retry-After` as seconds (delta-seconds or an HTTP date); None if absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    from email.utils import parsedate_to_datetime

    try:
        at = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return max(0.0, (at - now).total_seconds())


async def redeliver(session: AsyncSession, task_id: uuid.UUID) -> list[WebhookDelivery]:
    """Send every event of the task again (same `webhook-id`s: receivers drop what they have)."""
    rows = list(
        await session.scalars(
            select(WebhookDelivery)
            .where(WebhookDelivery.task_id == task_id)
            .order_by(WebhookDelivery.created_at, WebhookDelivery.id)
            .with_for_update()
        )
    )
    for delivery in rows:
        delivery.status = "pending"
        delivery.next_attempt_at = datetime.now(UTC)
        delivery.sending_until = None  # an attempt still out no longer decides the status
    await session.flush()
    return rows


async def deliveries_of(
    session: AsyncSession, task_id: uuid.UUID
) -> tuple[list[WebhookDelivery], dict[uuid.UUID, list[WebhookAttempt]]]:
    """A task's deliveries, oldest first, and each one's attempts in order."""
    rows = list(
        await session.scalars(
            select(WebhookDelivery)
            .where(WebhookDelivery.task_id == task_id)
            .order_by(WebhookDelivery.created_at, WebhookDelivery.id)
        )
    )
    return rows, await attempts_of(session, rows)


async def attempts_of(
    session: AsyncSession, rows: Sequence[WebhookDelivery]
) -> dict[uuid.UUID, list[WebhookAttempt]]:
    """Each delivery's attempts, in the order they were made."""
    attempts = await session.scalars(
        select(WebhookAttempt)
        .where(WebhookAttempt.delivery_id.in_([d.id for d in rows]))
        .order_by(WebhookAttempt.id)
    )
    by_delivery: dict[uuid.UUID, list[WebhookAttempt]] = {}
    for a in attempts:
        by_delivery.setdefault(a.delivery_id, []).append(a)
    return by_delivery
