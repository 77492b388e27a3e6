"""`/api/users/webhook-secret` and `/api/tasks/{task_id}/webhook-deliveries`."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime

from fastapi import APIRouter
from sqlalchemy.ext.asyncio import AsyncSession

from vidgate.auth.dependencies import CurrentUser
from vidgate.deps import DbSession, RuntimeDep
from vidgate.errors import documented
from vidgate.tasks.errors import TaskNotFound
from vidgate.tasks.service import owned_task
from vidgate.webhooks import flows, service
from vidgate.webhooks.errors import NoWebhookEvents, NoWebhookUrl
from vidgate.webhooks.models import WebhookAttempt, WebhookDelivery
from vidgate.webhooks.schemas import (
    AttemptView,
    DeliveryList,
    DeliveryView,
    RedeliverResponse,
    WebhookSecretView,
)

secrets = APIRouter(prefix="/api/users", tags=["webhooks"])
deliveries = APIRouter(prefix="/api/tasks", tags=["webhooks"])


async def _secret_view(session: AsyncSession, user_id: uuid.UUID) -> WebhookSecretView:
    now = datetime.now(UTC)
    current = await service.current_secret(session, user_id)
    previous = await service.previous_secret(session, user_id, now)
    return WebhookSecretView(
        secret=current.secret,
        created_at=current.created_at,
        previous_secret_expires_at=previous.signs_until if previous else None,
    )


@secrets.get("/webhook-secret", response_model=WebhookSecretView)
async def get_webhook_secret(user: CurrentUser, session: DbSession) -> WebhookSecretView:
    """The secret that signs your webhooks (made on first request)."""
    return await _secret_view(session, user.id)


@secrets.post("/webhook-secret/rotate", response_model=WebhookSecretView)
async def rotate_webhook_secret(user: CurrentUser, session: DbSession) -> WebhookSecretView:
    """A new secret; the old one keeps signing alongside it for 24 h."""
    await service.rotate(session, user.id, datetime.now(UTC))
    return await _secret_view(session, user.id)


def _views(
    rows: Sequence[WebhookDelivery], attempts: dict[uuid.UUID, list[WebhookAttempt]]
) -> list[DeliveryView]:
    return [
        DeliveryView(
            id=str(d.id),
            event_id=d.event_id,
            event_type=d.event_type,
            url=d.url,
            status=d.status,
            attempts=d.attempts,
            next_attempt_at=d.next_attempt_at if d.status == "pending" else None,
            last_status_code=d.last_status_code,
            last_error=d.last_error,
            created_at=d.created_at,
            delivered_at=d.delivered_at,
            attempt_log=[
                AttemptView(
                    attempted_at=a.attempted_at,
                    status_code=a.status_code,
                    error=a.error,
                    duration_ms=a.duration_ms,
                )
                for a in attempts.get(d.id, [])
            ],
        )
        for d in rows
    ]


@deliveries.get(
    "/{task_id}/webhook-deliveries",
    response_model=DeliveryList,
    responses=documented(TaskNotFound),
)
async def list_deliveries(task_id: str, user: CurrentUser, session: DbSession) -> DeliveryList:
    """Every event sent (or being sent) for your task: attempts, status codes, next try."""
    task = await owned_task(session, task_id, user.id)
    return DeliveryList(deliveries=_views(*await service.deliveries_of(session, task.id)))


@deliveries.post(
    "/{task_id}/webhook-deliveries/redeliver",
    response_model=RedeliverResponse,
    responses=documented(TaskNotFound, NoWebhookUrl, NoWebhookEvents),
)
async def redeliver(
    task_id: str, user: CurrentUser, session: DbSession, runtime: RuntimeDep
) -> RedeliverResponse:
    """Send every event of your task again, with the same `webhook-id`s."""
    task = await owned_task(session, task_id, user.id)
    rows = await flows.redeliver_task(runtime, session, task)
    views = _views(rows, await service.attempts_of(session, rows))
    return RedeliverResponse(message="Webhook redelivery scheduled", deliveries=views)
