"""Signing secrets, recording task events as deliveries, and one delivery attempt.

A task event becomes a `webhook_deliveries` row in the same transaction as the task's change,
and its first job is queued in that transaction too (procrastinate's defer function, called on
the same connection): an event can neither be lost between the commit and the queueing nor sent
for a change that rolled back.
"""

from __future__ import annotations

import base64
import json
import os
import random
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import structlog
from sqlalchemy import select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from standardwebhooks import Webhook

from vidgate.net.safe_http import FetchFailed, SafeHttpClient, UnsafeUrl
from vidgate.tasks.models import Task, TaskStatus
from vidgate.webhooks.models import WebhookAttempt, WebhookDelivery, WebhookSecret

if TYPE_CHECKING:
    from vidgate.db.engine import Database

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

_DEFER_IN_TRANSACTION = text(
    "SELECT procrastinate_defer_jobs_v1(ARRAY[ROW('default', :task_name, 0, NULL,"
    " :queueing_lock, CAST(:args AS jsonb), NULL)::procrastinate_job_to_defer_v1])"
)


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
    await session.execute(
        _DEFER_IN_TRANSACTION,
        {
            "task_name": DELIVER,
            "queueing_lock": queueing_lock(delivery_id),
            "args": json.dumps({"delivery_id": str(delivery_id)}),
        },
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


async def attempt(
    db: Database,
    client: SafeHttpClient,
    delivery_id: uuid.UUID,
    *,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
    rand: Callable[[], float] = random.random,
) -> Outcome | None:
    """Send a pending delivery once and record the attempt.

    One short transaction claims the delivery for the length of a request (`sending_until`),
    another records what came back: no row lock or database connection waits on a slow
    receiver. None when there is nothing to do: the delivery is done or unknown, another worker
    holds a live claim (a dead worker's claim lapses after `CLAIM`), or it was redelivered while
    this request was out (the attempt is logged; the new one decides the status).
    """
    at = now()
    claim = at + CLAIM
    async with db.session() as session:
        delivery = await session.scalar(
            select(WebhookDelivery)
            .where(WebhookDelivery.id == delivery_id)
            .with_for_update(skip_locked=True)
        )
        if delivery is None or delivery.status != "pending":
            return None
        if delivery.sending_until is not None and delivery.sending_until > at:
            return None
        delivery.sending_until = claim
        secrets = await signing_secrets(session, delivery.user_id, at)
        url, event_id, event_type = delivery.url, delivery.event_id, delivery.event_type
        body = json.dumps(delivery.payload, separators=(",", ":"), ensure_ascii=False)
        await session.commit()

    headers = {
        "content-type": "application/json",
        "webhook-id": event_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": sign(secrets, event_id, at, body),
    }
    status_code: int | None = None
    error: str | None = None
    retry_after: float | None = None
    started = time.perf_counter()
    try:
        response = await client.request(
            "POST",
            url,
            content=body.encode(),
            headers=headers,
            timeout=ATTEMPT_TIMEOUT,
            max_bytes=64 * 1024,
        )
        status_code = response.status_code
        retry_after = parse_retry_after(response.headers.get("retry-after"), at)
    except UnsafeUrl as exc:
        error = f"Refused: {exc}"
    except FetchFailed as exc:
        error = str(exc)
    duration_ms = round((time.perf_counter() - started) * 1000)

    async with db.session() as session:
        delivery = await session.get_one(WebhookDelivery, delivery_id, with_for_update=True)
        session.add(
            WebhookAttempt(
                delivery_id=delivery_id,
                attempted_at=at,
                status_code=status_code,
                error=error,
                duration_ms=duration_ms,
            )
        )
        outcome: Outcome | None = None
        attempts = delivery.attempts
        if delivery.sending_until == claim:  # still ours
            delivery.sending_until = None
            delivery.attempts = attempts = attempts + 1
            delivery.last_status_code = status_code
            delivery.last_error = error
            outcome = _outcome(delivery.attempts, status_code, retry_after, rand)
            delivery.status = outcome.status
            if outcome.status == "succeeded":
                delivery.delivered_at = at
            delivery.next_attempt_at = (
                at + timedelta(seconds=outcome.retry_in) if outcome.retry_in is not None else None
            )
        await session.commit()
    logger.info(
        "webhooks.attempt",
        delivery_id=str(delivery_id),
        event_type=event_type,
        attempt=attempts,
        status_code=status_code,
        error=error,
        outcome=outcome.status if outcome else "superseded by a redelivery",
    )
    return outcome


def _outcome(
    attempts: int, status_code: int | None, retry_after: float | None, rand: Callable[[], float]
) -> Outcome:
    if status_code is not None and 200 <= status_code < 300:
        return Outcome("succeeded")
    if status_code == 410:  # the receiver says this endpoint is gone: stop
        return Outcome("failed")
    wait = retry_delay(attempts, retry_after, rand)
    return Outcome("failed") if wait is None else Outcome("pending", wait)


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
