"""Webhook work that spans transactions: one delivery attempt (claim, send, record) and a
redelivery whose jobs are queued once it commits."""

from __future__ import annotations

import json
import random
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import partial

import structlog
from sqlalchemy import select

from vidgate.db.engine import Database
from vidgate.db.session import Session
from vidgate.net.safe_http import FetchFailed, SafeHttpClient, UnsafeUrl
from vidgate.runtime import Runtime
from vidgate.tasks.models import Task
from vidgate.webhooks.errors import NoWebhookEvents, NoWebhookUrl
from vidgate.webhooks.models import WebhookAttempt, WebhookDelivery
from vidgate.webhooks.service import (
    ATTEMPT_TIMEOUT,
    CLAIM,
    Outcome,
    parse_retry_after,
    redeliver,
    retry_delay,
    schedule_delivery,
    sign,
    signing_secrets,
)

logger = structlog.get_logger(__name__)


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


async def redeliver_task(runtime: Runtime, session: Session, task: Task) -> list[WebhookDelivery]:
    """Send every event of the task again (same `webhook-id`s); each delivery's job is queued once
    the redelivery commits."""
    if not task.webhook_url:
        raise NoWebhookUrl()
    rows = await redeliver(session, task.id)
    if not rows:
        raise NoWebhookEvents()
    for row in rows:
        session.after_commit(partial(schedule_delivery, runtime.jobs, row.id))
    return rows
